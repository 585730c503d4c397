//! Configuration of the callback verifier, with the documented defaults.
//!
//! Every field has a default, so an empty `[webhook.verifier]` table yields a
//! verifier for the real Partner Center. Prefixes are validated while the
//! configuration is deserialised, so a bad prefix is reported against the file or
//! environment variable it came from.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;

use super::allow_list::{AllowList, PlainHttp, PrefixError, UrlPrefix};

/// Microsoft's documented certificate location (reference §2.5, the sample's
/// `X-MS-Certificate-Url`; CIPP allows exactly this prefix).
pub const DEFAULT_CERTIFICATE_URL_PREFIX: &str =
    "https://3psostorageacct.blob.core.windows.net/cert/";

/// Where Microsoft's PKI publishes its intermediate CA certificates (the AIA
/// `caIssuers` location of Microsoft's TLS issuing CAs). Documented by Microsoft's
/// PKI repository but **unconfirmed** for the dispatch certificate's chain, so it
/// is only a default: set `intermediate_url_prefixes` to override it.
pub const DEFAULT_INTERMEDIATE_URL_PREFIX: &str = "http://www.microsoft.com/pkiops/certs/";

/// The DNS name the dispatch certificate is issued for (the name in the
/// documented certificate URL, reference §2.5).
pub const DEFAULT_DNS_NAME: &str = "pcnotifications-dispatch.microsoft.com";

/// The organization the dispatch certificate must name (reference §2.5 step 4).
pub const DEFAULT_ORGANIZATION: &str = "Microsoft Corporation";

/// Settings for [`CallbackVerifier`](super::CallbackVerifier).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct VerifierConfig {
    /// Where `x-ms-certificate-url` may point. `https` only, except `http` on a
    /// loopback IP literal written here explicitly (the emulator and tests).
    pub certificate_url_prefixes: Vec<CertificateUrlPrefix>,
    /// The roots a certificate chain must end in: `"webpki"` (the public web PKI
    /// roots compiled in from `webpki-roots`) or the path of a PEM bundle.
    pub trust_anchors: TrustAnchorSource,
    /// An optional PEM bundle of intermediate CA certificates to build chains with.
    pub intermediates: Option<PathBuf>,
    /// Where a leaf's AIA `caIssuers` URL may point for an intermediate to be
    /// fetched (`http` allowed: the chain signature protects what is fetched).
    pub intermediate_url_prefixes: Vec<IntermediateUrlPrefix>,
    /// The organization the leaf's subject O must name (or, only when the subject
    /// names no organization at all, its issuer's O).
    pub organization: String,
    /// The DNS name the leaf must be valid for.
    pub dns_name: String,
    /// Which extended key usage the leaf must allow.
    pub required_eku: EkuPolicy,
    /// Bodies larger than this are refused with 413 before anything else.
    pub max_body_bytes: usize,
    /// How long a verified certificate (and its parsed key) is reused per URL.
    #[serde(with = "humantime_serde")]
    pub certificate_cache_ttl: Duration,
    /// How long a failed fetch or verification is remembered per URL, so a flood
    /// of requests naming a bad URL causes one fetch per interval, not one each.
    #[serde(with = "humantime_serde")]
    pub negative_cache_ttl: Duration,
    /// Time limit for one certificate fetch, redirects included.
    #[serde(with = "humantime_serde")]
    pub fetch_timeout: Duration,
    /// Largest certificate file accepted (a real chain is a few KiB).
    pub max_certificate_bytes: usize,
    /// At most this many certificate URLs are cached; expired and failed entries
    /// are dropped first when it is reached.
    pub max_cached_certificates: usize,
    /// At most this many certificate fetches run at once, whatever the URLs.
    pub max_concurrent_fetches: usize,
}

impl Default for VerifierConfig {
    fn default() -> Self {
        Self {
            certificate_url_prefixes: vec![CertificateUrlPrefix(UrlPrefix::known(
                "https",
                "3psostorageacct.blob.core.windows.net",
                443,
                "/cert/",
                DEFAULT_CERTIFICATE_URL_PREFIX,
            ))],
            trust_anchors: TrustAnchorSource::WebPki,
            intermediates: None,
            intermediate_url_prefixes: vec![IntermediateUrlPrefix(UrlPrefix::known(
                "http",
                "www.microsoft.com",
                80,
                "/pkiops/certs/",
                DEFAULT_INTERMEDIATE_URL_PREFIX,
            ))],
            organization: DEFAULT_ORGANIZATION.to_owned(),
            dns_name: DEFAULT_DNS_NAME.to_owned(),
            required_eku: EkuPolicy::ServerAuth,
            max_body_bytes: 1024 * 1024,
            certificate_cache_ttl: Duration::from_secs(3600),
            negative_cache_ttl: Duration::from_secs(5),
            fetch_timeout: Duration::from_secs(5),
            max_certificate_bytes: 64 * 1024,
            max_cached_certificates: 256,
            max_concurrent_fetches: 8,
        }
    }
}

impl VerifierConfig {
    /// A configuration for tests and the emulator: certificates under
    /// `certificate_url_prefix` (which may be loopback `http`), chains to the
    /// roots in `trust_anchors_pem`, no AIA fetching, other settings default.
    pub fn for_local(
        certificate_url_prefix: &str,
        trust_anchors_pem: impl Into<PathBuf>,
    ) -> Result<Self, PrefixError> {
        Ok(Self {
            certificate_url_prefixes: vec![CertificateUrlPrefix::parse(certificate_url_prefix)?],
            trust_anchors: TrustAnchorSource::PemFile(trust_anchors_pem.into()),
            intermediate_url_prefixes: Vec::new(),
            ..Self::default()
        })
    }

    /// The certificate URL allow-list.
    pub fn certificate_allow_list(&self) -> AllowList {
        AllowList::new(
            self.certificate_url_prefixes
                .iter()
                .map(|p| p.0.clone())
                .collect(),
        )
    }

    /// The AIA intermediate URL allow-list.
    pub fn intermediate_allow_list(&self) -> AllowList {
        AllowList::new(
            self.intermediate_url_prefixes
                .iter()
                .map(|p| p.0.clone())
                .collect(),
        )
    }
}

/// A prefix for `x-ms-certificate-url`: `https`, or `http` on loopback only.
#[derive(Clone, PartialEq, Eq)]
pub struct CertificateUrlPrefix(UrlPrefix);

impl CertificateUrlPrefix {
    /// Parses and validates a certificate URL prefix.
    pub fn parse(raw: &str) -> Result<Self, PrefixError> {
        UrlPrefix::parse(raw, PlainHttp::LoopbackOnly).map(Self)
    }
}

impl fmt::Debug for CertificateUrlPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.as_str())
    }
}

impl Serialize for CertificateUrlPrefix {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0.as_str())
    }
}

impl<'de> Deserialize<'de> for CertificateUrlPrefix {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// A prefix for AIA intermediate URLs: `http` or `https`.
#[derive(Clone, PartialEq, Eq)]
pub struct IntermediateUrlPrefix(UrlPrefix);

impl IntermediateUrlPrefix {
    /// Parses and validates an intermediate URL prefix.
    pub fn parse(raw: &str) -> Result<Self, PrefixError> {
        UrlPrefix::parse(raw, PlainHttp::Allowed).map(Self)
    }
}

impl fmt::Debug for IntermediateUrlPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.as_str())
    }
}

impl Serialize for IntermediateUrlPrefix {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0.as_str())
    }
}

impl<'de> Deserialize<'de> for IntermediateUrlPrefix {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// Where trust anchors come from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum TrustAnchorSource {
    /// The public web PKI roots from `webpki-roots` (config value `"webpki"`).
    #[default]
    WebPki,
    /// Every certificate in a PEM file (the emulator writes its root CA to one).
    PemFile(PathBuf),
}

impl Serialize for TrustAnchorSource {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::WebPki => s.serialize_str("webpki"),
            Self::PemFile(path) => s.serialize_str(&path.to_string_lossy()),
        }
    }
}

impl<'de> Deserialize<'de> for TrustAnchorSource {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        match raw.as_str() {
            "webpki" => Ok(Self::WebPki),
            "" => Err(serde::de::Error::custom(
                "trust_anchors must be \"webpki\" or the path of a PEM file",
            )),
            path => Ok(Self::PemFile(PathBuf::from(path))),
        }
    }
}

/// The extended key usage the leaf certificate must allow.
///
/// Microsoft's dispatch certificate is a TLS-style certificate from a public TLS
/// CA (it chains to the web PKI roots), so the default is the TLS server-auth
/// purpose in RFC 5280's sense: a certificate in the chain with an EKU extension
/// must list `id-kp-serverAuth`; one without the extension is unrestricted. That
/// refuses, say, a client-auth-only or code-signing certificate from the same
/// roots. Whether Microsoft's leaf carries serverAuth is **unconfirmed**, hence
/// the `any` setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
pub enum EkuPolicy {
    /// `"server-auth"`: `id-kp-serverAuth` wherever an EKU extension is present.
    #[default]
    #[serde(rename = "server-auth")]
    ServerAuth,
    /// `"any"`: the EKU extension is not checked (only that it is well-formed).
    #[serde(rename = "any")]
    Any,
}

/// Why a [`VerifierConfig`] could not become a verifier.
#[derive(Debug, Error)]
pub enum VerifierConfigError {
    /// A PEM file could not be read.
    #[error("cannot read {what} from {path}: {source}")]
    Read {
        /// What the file was for.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A PEM file holds no usable certificate, or a broken one.
    #[error("{path} holds no usable {what}: {detail}")]
    BadPem {
        /// What the file was for.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// `dns_name` is not a DNS name.
    #[error("dns_name {0:?} is not a valid DNS name")]
    BadDnsName(String),
    /// `organization` is empty.
    #[error("organization must not be empty")]
    EmptyOrganization,
    /// No certificate URL prefix is configured, so nothing could ever verify.
    #[error("certificate_url_prefixes must not be empty")]
    NoCertificatePrefixes,
    /// A limit is zero.
    #[error("{0} must be greater than zero")]
    ZeroLimit(&'static str),
    /// The HTTP client could not be built.
    #[error("cannot build the certificate HTTP client: {0}")]
    HttpClient(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compiled_in_defaults_equal_their_parsed_form() {
        let cfg = VerifierConfig::default();
        assert_eq!(
            cfg.certificate_url_prefixes[0].0,
            UrlPrefix::parse(DEFAULT_CERTIFICATE_URL_PREFIX, PlainHttp::LoopbackOnly).unwrap()
        );
        assert_eq!(
            cfg.intermediate_url_prefixes[0].0,
            UrlPrefix::parse(DEFAULT_INTERMEDIATE_URL_PREFIX, PlainHttp::Allowed).unwrap()
        );
    }

    #[test]
    fn empty_table_gives_documented_defaults() {
        let cfg: VerifierConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(cfg.trust_anchors, TrustAnchorSource::WebPki);
        assert_eq!(cfg.organization, "Microsoft Corporation");
        assert_eq!(cfg.dns_name, "pcnotifications-dispatch.microsoft.com");
        assert_eq!(cfg.max_body_bytes, 1024 * 1024);
        assert_eq!(cfg.certificate_cache_ttl, Duration::from_secs(3600));
        assert_eq!(cfg.fetch_timeout, Duration::from_secs(5));
        assert_eq!(cfg.max_certificate_bytes, 64 * 1024);
        assert_eq!(cfg.required_eku, EkuPolicy::ServerAuth);
        assert!(
            cfg.certificate_allow_list()
                .check("https://3psostorageacct.blob.core.windows.net/cert/pcnotifications-dispatch.microsoft.com.cer")
                .is_ok()
        );
    }

    #[test]
    fn values_parse() {
        let cfg: VerifierConfig = serde_json::from_value(serde_json::json!({
            "certificate_url_prefixes": ["http://127.0.0.1:7070/cert/"],
            "trust_anchors": "/etc/refsync/roots.pem",
            "intermediates": "/etc/refsync/intermediates.pem",
            "intermediate_url_prefixes": [],
            "required_eku": "any",
            "certificate_cache_ttl": "10m",
            "negative_cache_ttl": "2s",
            "fetch_timeout": "750ms",
        }))
        .unwrap();
        assert_eq!(
            cfg.trust_anchors,
            TrustAnchorSource::PemFile("/etc/refsync/roots.pem".into())
        );
        assert_eq!(cfg.required_eku, EkuPolicy::Any);
        assert_eq!(cfg.certificate_cache_ttl, Duration::from_secs(600));
        assert_eq!(cfg.fetch_timeout, Duration::from_millis(750));
        assert!(cfg.intermediate_allow_list().prefixes().is_empty());
    }

    #[test]
    fn non_loopback_http_certificate_prefix_is_refused_clearly() {
        let err = serde_json::from_value::<VerifierConfig>(serde_json::json!({
            "certificate_url_prefixes": ["http://3psostorageacct.blob.core.windows.net/cert/"],
        }))
        .unwrap_err()
        .to_string();
        assert!(err.contains("plain http"), "{err}");
        assert!(err.contains("3psostorageacct"), "{err}");
    }

    #[test]
    fn bad_values_are_refused() {
        for bad in [
            serde_json::json!({"required_eku": "serverAuth"}),
            serde_json::json!({"trust_anchors": ""}),
            serde_json::json!({"fetch_timeout": "soon"}),
            serde_json::json!({"certificate_url_prefixes": ["https://u@h/cert/"]}),
            serde_json::json!({"no_such_setting": 1}),
        ] {
            assert!(
                serde_json::from_value::<VerifierConfig>(bad.clone()).is_err(),
                "{bad}"
            );
        }
    }
}

#[cfg(test)]
mod serialize_tests {
    use super::*;

    #[test]
    fn a_serialized_config_reads_back_the_same() {
        let mut config = VerifierConfig {
            trust_anchors: TrustAnchorSource::PemFile("/etc/refsync/ca.pem".into()),
            ..VerifierConfig::default()
        };
        config
            .certificate_url_prefixes
            .push(CertificateUrlPrefix::parse("http://127.0.0.1:7070/cert/").unwrap());
        let text = serde_json::to_string(&config).unwrap();
        let back: VerifierConfig = serde_json::from_str(&text).unwrap();
        assert_eq!(serde_json::to_string(&back).unwrap(), text);
        assert_eq!(back.trust_anchors, config.trust_anchors);
        assert_eq!(
            back.certificate_url_prefixes,
            config.certificate_url_prefixes
        );
    }
}
