//! URL allow-lists: the only places refsync will ever fetch a certificate from.
//!
//! `x-ms-certificate-url` is chosen by whoever sends the request, so without this
//! check the webhook endpoint would fetch any URL an attacker names (SSRF) and
//! trust whatever key it found there. A URL is accepted only when, after parsing,
//! its scheme, host and port equal those of a configured prefix and its path
//! starts with the prefix's path on a segment boundary. Anything that could make
//! the parsed URL differ from what a reader of the raw string expects is refused
//! before that comparison: userinfo, query, fragment, `.`/`..` segments,
//! percent-encoded dots, slashes or backslashes, backslashes themselves, and any
//! character outside printable ASCII (the WHATWG parser silently drops tabs and
//! newlines, and treats `\` as `/`).

use std::fmt;
use std::net::IpAddr;

use thiserror::Error;
use url::{Host, Url};

/// Whether a prefix may use plain `http`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlainHttp {
    /// Only `https`, except `http` on a loopback IP literal (the emulator and tests).
    LoopbackOnly,
    /// `http` anywhere: for AIA intermediates, whose integrity comes from the chain
    /// signature rather than the transport (AIA URLs are conventionally `http`).
    Allowed,
}

/// Why a configured prefix was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PrefixError {
    /// Not an absolute URL.
    #[error("URL prefix {0:?} is not an absolute URL")]
    NotAUrl(String),
    /// A scheme other than `http`/`https`.
    #[error("URL prefix {0:?} must use https")]
    UnsupportedScheme(String),
    /// `http` where only loopback may use it.
    #[error(
        "URL prefix {0:?} uses plain http on a non-loopback host; only https is allowed \
         (http is accepted for 127.0.0.1/[::1] only, for the emulator and tests)"
    )]
    PlainHttpNotLoopback(String),
    /// Userinfo, query, fragment, dot segments or encoded separators.
    #[error(
        "URL prefix {0:?} must be a plain scheme://host[:port]/path/ without userinfo, query, fragment, dot segments or encoded separators"
    )]
    NotPlain(String),
}

/// Why a URL was refused by an [`AllowList`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum UrlRefusal {
    /// The string does not parse as an absolute URL.
    #[error("not an absolute URL")]
    NotAUrl,
    /// The raw string holds something the parser would rewrite (see the module docs).
    #[error("URL contains characters or segments that are refused")]
    Suspicious,
    /// Userinfo (`user@host`) is present.
    #[error("URL carries userinfo")]
    Userinfo,
    /// A query or fragment is present.
    #[error("URL carries a query or fragment")]
    QueryOrFragment,
    /// No configured prefix matches.
    #[error("URL is not under any allowed prefix")]
    NotAllowed,
}

/// One allowed URL prefix, parsed and normalised once at configuration time.
#[derive(Clone, PartialEq, Eq)]
pub struct UrlPrefix {
    scheme: String,
    host: String,
    port: u16,
    path: String,
    raw: String,
}

impl UrlPrefix {
    /// Parses a prefix such as `https://3psostorageacct.blob.core.windows.net/cert/`.
    pub fn parse(raw: &str, plain_http: PlainHttp) -> Result<Self, PrefixError> {
        let not_plain = || PrefixError::NotPlain(raw.to_owned());
        if raw_is_suspicious(raw) {
            return Err(not_plain());
        }
        let url = Url::parse(raw).map_err(|_| PrefixError::NotAUrl(raw.to_owned()))?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(not_plain());
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(not_plain());
        }
        let host = url
            .host()
            .ok_or_else(|| PrefixError::NotAUrl(raw.to_owned()))?;
        match url.scheme() {
            "https" => {}
            "http" => {
                if plain_http == PlainHttp::LoopbackOnly && !is_loopback_literal(&host) {
                    return Err(PrefixError::PlainHttpNotLoopback(raw.to_owned()));
                }
            }
            _ => return Err(PrefixError::UnsupportedScheme(raw.to_owned())),
        }
        let port = url
            .port_or_known_default()
            .ok_or_else(|| PrefixError::NotAUrl(raw.to_owned()))?;
        Ok(Self {
            scheme: url.scheme().to_owned(),
            host: host.to_string().to_ascii_lowercase(),
            port,
            path: url.path().to_owned(),
            raw: raw.to_owned(),
        })
    }

    /// A prefix from parts already in normal form, for compiled-in defaults (a
    /// unit test checks each one equals its parsed form).
    pub(crate) fn known(scheme: &str, host: &str, port: u16, path: &str, raw: &str) -> Self {
        Self {
            scheme: scheme.to_owned(),
            host: host.to_owned(),
            port,
            path: path.to_owned(),
            raw: raw.to_owned(),
        }
    }

    /// The prefix as configured.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// True when the (already vetted) URL lies under this prefix.
    fn covers(&self, url: &Url) -> bool {
        let Some(host) = url.host() else {
            return false;
        };
        if url.scheme() != self.scheme
            || host.to_string().to_ascii_lowercase() != self.host
            || url.port_or_known_default() != Some(self.port)
        {
            return false;
        }
        let path = url.path();
        if self.path.ends_with('/') {
            // Something must name a file below the directory, not the directory itself.
            path.len() > self.path.len() && path.starts_with(&self.path)
        } else {
            path == self.path
                || path
                    .strip_prefix(&self.path)
                    .is_some_and(|rest| rest.starts_with('/'))
        }
    }
}

impl fmt::Debug for UrlPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("UrlPrefix").field(&self.raw).finish()
    }
}

/// A set of allowed URL prefixes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList {
    prefixes: Vec<UrlPrefix>,
}

impl AllowList {
    /// An allow-list of the given prefixes (empty allows nothing).
    pub fn new(prefixes: Vec<UrlPrefix>) -> Self {
        Self { prefixes }
    }

    /// The configured prefixes.
    pub fn prefixes(&self) -> &[UrlPrefix] {
        &self.prefixes
    }

    /// Parses `raw` and returns the URL only if it lies under a configured prefix.
    pub fn check(&self, raw: &str) -> Result<Url, UrlRefusal> {
        if raw_is_suspicious(raw) {
            return Err(UrlRefusal::Suspicious);
        }
        let url = Url::parse(raw).map_err(|_| UrlRefusal::NotAUrl)?;
        self.check_parsed(url)
    }

    /// Checks an already parsed URL (e.g. a redirect target resolved against the
    /// previous URL). Its serialisation is vetted like a raw string.
    pub fn check_url(&self, url: &Url) -> Result<Url, UrlRefusal> {
        self.check(url.as_str())
    }

    fn check_parsed(&self, url: Url) -> Result<Url, UrlRefusal> {
        if !url.username().is_empty() || url.password().is_some() {
            return Err(UrlRefusal::Userinfo);
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(UrlRefusal::QueryOrFragment);
        }
        if self.prefixes.iter().any(|p| p.covers(&url)) {
            Ok(url)
        } else {
            Err(UrlRefusal::NotAllowed)
        }
    }
}

fn is_loopback_literal(host: &Host<&str>) -> bool {
    match host {
        Host::Ipv4(ip) => IpAddr::V4(*ip).is_loopback(),
        Host::Ipv6(ip) => IpAddr::V6(*ip).is_loopback(),
        Host::Domain(_) => false,
    }
}

/// True when the raw string holds anything the URL parser would rewrite or that
/// could hide a different path: see the module docs.
pub(crate) fn raw_is_suspicious(raw: &str) -> bool {
    if raw
        .bytes()
        .any(|b| !(0x21..=0x7e).contains(&b) || b == b'\\')
    {
        return true;
    }
    let lower = raw.to_ascii_lowercase();
    if ["%2e", "%2f", "%5c"].iter().any(|enc| lower.contains(enc)) {
        return true;
    }
    let after_scheme = raw.split_once("://").map_or(raw, |(_, rest)| rest);
    let before_query = after_scheme
        .split(['?', '#'])
        .next()
        .unwrap_or(after_scheme);
    // The authority ends at the first '/'; everything after it is the raw path.
    let raw_path = before_query.find('/').map_or("", |i| &before_query[i..]);
    raw_path.split('/').any(|seg| seg == "." || seg == "..")
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: &str = "https://3psostorageacct.blob.core.windows.net/cert/";
    const GOOD: &str = "https://3psostorageacct.blob.core.windows.net/cert/pcnotifications-dispatch.microsoft.com.cer";

    fn ms_list() -> AllowList {
        AllowList::new(vec![UrlPrefix::parse(MS, PlainHttp::LoopbackOnly).unwrap()])
    }

    #[test]
    fn the_documented_certificate_url_is_allowed() {
        let url = ms_list().check(GOOD).unwrap();
        assert_eq!(url.as_str(), GOOD);
    }

    #[test]
    fn uppercase_host_is_the_same_host() {
        assert!(
            ms_list()
                .check("https://3PSOSTORAGEACCT.Blob.Core.Windows.Net/cert/x.cer")
                .is_ok()
        );
    }

    #[test]
    fn explicit_default_port_is_the_same_port() {
        assert!(
            ms_list()
                .check("https://3psostorageacct.blob.core.windows.net:443/cert/x.cer")
                .is_ok()
        );
    }

    #[test]
    fn lookalike_hosts_are_refused() {
        let list = ms_list();
        for raw in [
            "https://3psostorageacct.blob.core.windows.net.evil.com/cert/x.cer",
            "https://evil3psostorageacct.blob.core.windows.net/cert/x.cer",
            "https://3psostorageacct.blob.core.windows.net./cert/x.cer",
            "https://evil.com/3psostorageacct.blob.core.windows.net/cert/x.cer",
        ] {
            assert_eq!(list.check(raw), Err(UrlRefusal::NotAllowed), "{raw}");
        }
    }

    #[test]
    fn userinfo_is_refused() {
        let list = ms_list();
        assert_eq!(
            list.check("https://evil.com@3psostorageacct.blob.core.windows.net/cert/x.cer"),
            Err(UrlRefusal::Userinfo)
        );
        assert_eq!(
            list.check("https://a:b@3psostorageacct.blob.core.windows.net/cert/x.cer"),
            Err(UrlRefusal::Userinfo)
        );
        // The other way round: the allowed host as userinfo of an evil host.
        assert_eq!(
            list.check("https://3psostorageacct.blob.core.windows.net@evil.com/cert/x.cer"),
            Err(UrlRefusal::Userinfo)
        );
    }

    #[test]
    fn dot_segments_and_encoded_separators_are_refused() {
        let list = ms_list();
        for raw in [
            "https://3psostorageacct.blob.core.windows.net/cert/../x.cer",
            "https://3psostorageacct.blob.core.windows.net/cert/a/../x.cer",
            "https://3psostorageacct.blob.core.windows.net/cert/./x.cer",
            "https://3psostorageacct.blob.core.windows.net/cert/%2e%2e/x.cer",
            "https://3psostorageacct.blob.core.windows.net/cert/%2E%2E/x.cer",
            "https://3psostorageacct.blob.core.windows.net/cert/.%2e/x.cer",
            "https://3psostorageacct.blob.core.windows.net/cert%2F..%2Fx.cer",
            "https://3psostorageacct.blob.core.windows.net/cert/a%2fb.cer",
            "https://3psostorageacct.blob.core.windows.net/cert/a%5cb.cer",
            "https://3psostorageacct.blob.core.windows.net/cert\\x.cer",
            "https://3psostorageacct.blob.core.windows.net/cert/\n../x.cer",
            "https://3psostorageacct.blob.core.windows.net/cert/ x.cer",
        ] {
            assert_eq!(list.check(raw), Err(UrlRefusal::Suspicious), "{raw:?}");
        }
    }

    #[test]
    fn other_ports_and_schemes_are_refused() {
        let list = ms_list();
        for raw in [
            "https://3psostorageacct.blob.core.windows.net:8443/cert/x.cer",
            "http://3psostorageacct.blob.core.windows.net/cert/x.cer",
            "ftp://3psostorageacct.blob.core.windows.net/cert/x.cer",
        ] {
            assert_eq!(list.check(raw), Err(UrlRefusal::NotAllowed), "{raw}");
        }
    }

    #[test]
    fn paths_match_on_segment_boundaries_only() {
        let list = ms_list();
        for raw in [
            "https://3psostorageacct.blob.core.windows.net/certificates/x.cer",
            "https://3psostorageacct.blob.core.windows.net/cert",
            "https://3psostorageacct.blob.core.windows.net/cert/",
            "https://3psostorageacct.blob.core.windows.net/Cert/x.cer",
            "https://3psostorageacct.blob.core.windows.net/x.cer",
        ] {
            assert_eq!(list.check(raw), Err(UrlRefusal::NotAllowed), "{raw}");
        }
        let no_slash = AllowList::new(vec![
            UrlPrefix::parse("https://h.example/cert", PlainHttp::LoopbackOnly).unwrap(),
        ]);
        assert!(no_slash.check("https://h.example/cert/x.cer").is_ok());
        assert!(no_slash.check("https://h.example/cert").is_ok());
        assert_eq!(
            no_slash.check("https://h.example/certificates/x.cer"),
            Err(UrlRefusal::NotAllowed)
        );
    }

    #[test]
    fn query_and_fragment_are_refused() {
        let list = ms_list();
        for raw in [
            "https://3psostorageacct.blob.core.windows.net/cert/x.cer?sv=1",
            "https://3psostorageacct.blob.core.windows.net/cert/x.cer?",
            "https://3psostorageacct.blob.core.windows.net/cert/x.cer#frag",
        ] {
            assert_eq!(list.check(raw), Err(UrlRefusal::QueryOrFragment), "{raw}");
        }
    }

    #[test]
    fn garbage_is_not_a_url() {
        assert_eq!(ms_list().check("/cert/x.cer"), Err(UrlRefusal::NotAUrl));
        assert_eq!(ms_list().check(""), Err(UrlRefusal::NotAUrl));
    }

    #[test]
    fn empty_allow_list_allows_nothing() {
        assert_eq!(
            AllowList::default().check(GOOD),
            Err(UrlRefusal::NotAllowed)
        );
    }

    #[test]
    fn plain_http_prefixes_need_loopback_unless_allowed() {
        assert!(UrlPrefix::parse("http://127.0.0.1:8080/cert/", PlainHttp::LoopbackOnly).is_ok());
        assert!(UrlPrefix::parse("http://127.9.9.9:8080/cert/", PlainHttp::LoopbackOnly).is_ok());
        assert!(UrlPrefix::parse("http://[::1]:8080/cert/", PlainHttp::LoopbackOnly).is_ok());
        for raw in [
            "http://example.com/cert/",
            "http://localhost:8080/cert/",
            "http://10.0.0.1/cert/",
        ] {
            assert_eq!(
                UrlPrefix::parse(raw, PlainHttp::LoopbackOnly),
                Err(PrefixError::PlainHttpNotLoopback(raw.to_owned()))
            );
        }
        assert!(
            UrlPrefix::parse("http://www.microsoft.com/pkiops/certs/", PlainHttp::Allowed).is_ok()
        );
    }

    #[test]
    fn unusual_prefixes_are_refused() {
        for raw in [
            "https://u@h.example/cert/",
            "https://h.example/cert/?x",
            "https://h.example/cert/#x",
            "https://h.example/a/../cert/",
            "https://h.example/%2e%2e/cert/",
        ] {
            assert_eq!(
                UrlPrefix::parse(raw, PlainHttp::LoopbackOnly),
                Err(PrefixError::NotPlain(raw.to_owned())),
                "{raw}"
            );
        }
        assert!(matches!(
            UrlPrefix::parse("ftp://h.example/cert/", PlainHttp::Allowed),
            Err(PrefixError::UnsupportedScheme(_))
        ));
        assert!(matches!(
            UrlPrefix::parse("cert/", PlainHttp::Allowed),
            Err(PrefixError::NotAUrl(_))
        ));
    }

    #[test]
    fn loopback_prefix_matches_its_own_port_only() {
        let list = AllowList::new(vec![
            UrlPrefix::parse("http://127.0.0.1:4000/cert/", PlainHttp::LoopbackOnly).unwrap(),
        ]);
        assert!(list.check("http://127.0.0.1:4000/cert/a.pem").is_ok());
        assert_eq!(
            list.check("http://127.0.0.1:4001/cert/a.pem"),
            Err(UrlRefusal::NotAllowed)
        );
        assert_eq!(
            list.check("http://127.0.0.2:4000/cert/a.pem"),
            Err(UrlRefusal::NotAllowed)
        );
        assert_eq!(
            list.check("https://127.0.0.1:4000/cert/a.pem"),
            Err(UrlRefusal::NotAllowed)
        );
    }
}
