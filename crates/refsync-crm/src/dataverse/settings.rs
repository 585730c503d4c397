//! `[crm.dynamics]`: where the Dataverse environment is, how refsync signs in to it
//! (Entra client credentials, crm.md §1.2) and how hard it may use the environment's
//! service-protection limits (§1.12). Every key but the environment URL, tenant and
//! client has a default; the client secret comes from the environment or a file, never
//! the config file, and never appears in `Debug` output.

use refsync_outbound::entra::PUBLIC_CLOUD_AUTHORITY;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;
use url::Url;

/// Why a [`super::DataverseConnector`] could not be built. Messages name the setting at
/// fault and never carry the secret.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// A setting is missing, out of range or contradicts another.
    #[error("[crm.dynamics] {0}")]
    Invalid(String),
    /// The HTTP or Entra client could not be built.
    #[error("[crm.dynamics] HTTP client: {0}")]
    Http(String),
}

/// A Web API version such as `9.2`, written with or without the leading `v`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ApiVersion(String);

impl ApiVersion {
    /// Parses `9.2` or `v9.2`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let bare = text.trim().trim_start_matches(['v', 'V']);
        let valid = bare.split_once('.').is_some_and(|(major, minor)| {
            !major.is_empty()
                && !minor.is_empty()
                && major.bytes().all(|b| b.is_ascii_digit())
                && minor.bytes().all(|b| b.is_ascii_digit())
        });
        if valid {
            Ok(Self(bare.to_owned()))
        } else {
            Err(format!("api_version {text:?} is not a version such as 9.2"))
        }
    }

    /// The path segment: `v9.2` (crm.md §1.1).
    pub fn path_segment(&self) -> String {
        format!("v{}", self.0)
    }
}

impl Default for ApiVersion {
    /// `9.2`, the current version (crm.md §1.1).
    fn default() -> Self {
        Self("9.2".to_owned())
    }
}

impl TryFrom<String> for ApiVersion {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Self::parse(&s)
    }
}

impl From<ApiVersion> for String {
    fn from(v: ApiVersion) -> String {
        v.0
    }
}

impl fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How often a failed call is repeated in-process (503s, timeouts, 429s within
/// `max_retry_after`, and only for calls that are safe to repeat). Anything longer is
/// the durable queue's job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetrySettings {
    /// Attempts in all, the first included. Default 5.
    pub max_attempts: u32,
    /// First backoff delay. Default 200 ms.
    #[serde(with = "humantime_serde")]
    pub min_backoff: Duration,
    /// Longest backoff delay. Default 10 s.
    #[serde(with = "humantime_serde")]
    pub max_backoff: Duration,
    /// Longest `Retry-After` waited out in-process; a longer one fails the call with
    /// `Throttled` so the queue comes back later instead of pinning a worker. Default 60 s.
    #[serde(with = "humantime_serde")]
    pub max_retry_after: Duration,
    /// No retry starts after this much time since the first attempt. Default 120 s.
    #[serde(with = "humantime_serde")]
    pub max_elapsed: Duration,
}

impl Default for RetrySettings {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            min_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(10),
            max_retry_after: Duration::from_secs(60),
            max_elapsed: Duration::from_secs(120),
        }
    }
}

/// The `[crm.dynamics]` section.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DataverseSettings {
    /// The environment URL, e.g. `https://contoso.crm.dynamics.com` (crm.md §1.1); the
    /// Web API is under `<url>/api/data/v<api_version>/`.
    pub url: String,
    /// The token audience, when it differs from `url` (Microsoft's sample uses the
    /// `.api.` host, `https://contoso.api.crm.dynamics.com`, crm.md §1.1). Default: `url`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// Web API version. Default 9.2.
    pub api_version: ApiVersion,
    /// Entra authority. Default `https://login.microsoftonline.com`.
    pub authority_url: String,
    /// The Entra tenant (id or domain) the app registration lives in.
    pub tenant: String,
    /// The app registration's application (client) id, bound to an Application User
    /// in the environment (crm.md §1.2).
    pub client_id: String,
    /// The client secret. Environment or file only.
    #[serde(default, skip_serializing)]
    pub client_secret: Option<SecretString>,
    /// Limit for one HTTP attempt. Default 2 minutes, Dataverse's own per-operation
    /// limit as Microsoft's sample sets it (crm.md §1.1).
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// Steady request rate. Default 19 per second: with [`Self::burst`] this stays
    /// inside the service-protection limit of 6000 requests per 300 s per user
    /// (crm.md §1.12) — 300 + 19 × 300 = 6000 — so a backfill paces itself instead
    /// of meeting 429s.
    pub requests_per_second: f64,
    /// Requests that may go at once before the steady rate applies. The limit is a
    /// sliding 300 s window, not a per-second one, so a quiet connector may spend
    /// part of it at once: a handful of new referrals reach the CRM without waiting
    /// behind each other. Default 300. Keep `burst + 300 × requests_per_second` at
    /// or under the window's 6000; 1 spaces every request evenly.
    pub burst: u32,
    /// Requests in flight at once. Default 52, the concurrency limit (crm.md §1.12).
    pub max_concurrent_requests: usize,
    /// Close opportunities (Won/Lost) with the `WinOpportunity`/`LoseOpportunity`
    /// actions rather than a PATCH of statecode/statuscode. Whether the plain PATCH is
    /// refused is **unconfirmed** (crm.md §1.4); the actions always work, so on by default.
    pub close_opportunities_with_actions: bool,
    /// Page size asked for with `Prefer: odata.maxpagesize` when reading changes
    /// (crm.md §1.8: at most 5000). Default 500.
    pub page_size: usize,
    /// Read changes with change tracking (crm.md §1.9) where the table has it on:
    /// each change is read once, where a poll by modified time reads its overlap
    /// again on every pass. Whether lead and opportunity track changes by default is
    /// **unconfirmed**, so the first read finds out and falls back to modified time
    /// for a table that does not. The first tracked read returns every record once.
    /// Default true; false always polls by modified time.
    pub change_tracking: bool,
    /// In-process retries.
    pub retry: RetrySettings,
}

impl Default for DataverseSettings {
    fn default() -> Self {
        Self {
            url: String::new(),
            resource: None,
            api_version: ApiVersion::default(),
            authority_url: PUBLIC_CLOUD_AUTHORITY.to_owned(),
            tenant: String::new(),
            client_id: String::new(),
            client_secret: None,
            request_timeout: Duration::from_secs(120),
            requests_per_second: 19.0,
            burst: 300,
            max_concurrent_requests: 52,
            close_opportunities_with_actions: true,
            page_size: 500,
            change_tracking: true,
            retry: RetrySettings::default(),
        }
    }
}

/// `https`, or `http` to a loopback emulator.
fn secure_url(name: &str, text: &str) -> Result<Url, SetupError> {
    let url = Url::parse(text.trim())
        .map_err(|e| SetupError::Invalid(format!("{name} {text:?}: {e}")))?;
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d == "localhost",
        None => false,
    };
    match url.scheme() {
        "https" => Ok(url),
        "http" if loopback => Ok(url),
        _ => Err(SetupError::Invalid(format!(
            "{name} {text:?} must be https (http only to a local emulator)"
        ))),
    }
}

impl DataverseSettings {
    /// The environment URL, parsed (no trailing `/`).
    pub(crate) fn environment_url(&self) -> Result<Url, SetupError> {
        if self.url.trim().is_empty() {
            return Err(SetupError::Invalid(
                "url (the environment URL, e.g. https://contoso.crm.dynamics.com) is required"
                    .to_owned(),
            ));
        }
        secure_url("url", &self.url)
    }

    /// The Web API root: `<url>/api/data/v9.2/`.
    pub(crate) fn api_root(&self) -> Result<Url, SetupError> {
        let env = self.environment_url()?;
        let root = format!(
            "{}/api/data/{}/",
            env.as_str().trim_end_matches('/'),
            self.api_version.path_segment()
        );
        Url::parse(&root).map_err(|e| SetupError::Invalid(format!("url {:?}: {e}", self.url)))
    }

    /// The token audience (no trailing `/`).
    pub(crate) fn audience(&self) -> String {
        self.resource
            .as_deref()
            .unwrap_or(&self.url)
            .trim()
            .trim_end_matches('/')
            .to_owned()
    }

    /// The authority URL, parsed.
    pub(crate) fn authority(&self) -> Result<Url, SetupError> {
        secure_url("authority_url", &self.authority_url)
    }

    /// Checks everything but the URLs.
    pub(crate) fn validate(&self) -> Result<(), SetupError> {
        let invalid = |m: String| Err(SetupError::Invalid(m));
        if self.tenant.trim().is_empty() {
            return invalid("tenant (the Entra tenant id or domain) is required".to_owned());
        }
        if self.client_id.trim().is_empty() {
            return invalid("client_id (the app registration's client id) is required".to_owned());
        }
        if self.client_secret.is_none() {
            return invalid("client_secret is missing (set it in the environment)".to_owned());
        }
        let rate = self.requests_per_second;
        if !(rate.is_finite() && rate > 0.0) {
            return invalid(format!(
                "requests_per_second must be a positive number, got {rate}"
            ));
        }
        if self.max_concurrent_requests == 0 {
            return invalid("max_concurrent_requests must be at least 1".to_owned());
        }
        if self.request_timeout.is_zero() {
            return invalid("request_timeout must be positive".to_owned());
        }
        if !(1..=5000).contains(&self.page_size) {
            return invalid(format!(
                "page_size must be 1..=5000 (crm.md §1.8), got {}",
                self.page_size
            ));
        }
        if self.retry.max_attempts == 0 {
            return invalid("retry.max_attempts must be at least 1".to_owned());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn complete() -> DataverseSettings {
        DataverseSettings {
            url: "https://contoso.crm.dynamics.com/".into(),
            tenant: "contoso.onmicrosoft.com".into(),
            client_id: "app".into(),
            client_secret: Some(SecretString::from("s3cr3t-value")),
            ..DataverseSettings::default()
        }
    }

    #[test]
    fn versions_read_with_or_without_the_v() {
        assert_eq!(ApiVersion::parse("v9.2").unwrap().path_segment(), "v9.2");
        assert_eq!(ApiVersion::parse("9.0").unwrap().to_string(), "9.0");
        for bad in ["9", "v", "9.x", "../9.2", ""] {
            assert!(ApiVersion::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_api_root_and_audience_follow_the_url() {
        let s = complete();
        assert_eq!(
            s.api_root().unwrap().as_str(),
            "https://contoso.crm.dynamics.com/api/data/v9.2/"
        );
        assert_eq!(s.audience(), "https://contoso.crm.dynamics.com");
        let api_host = DataverseSettings {
            resource: Some("https://contoso.api.crm.dynamics.com".into()),
            ..complete()
        };
        assert_eq!(api_host.audience(), "https://contoso.api.crm.dynamics.com");
    }

    #[test]
    fn defaults_follow_the_service_protection_limits() {
        let s = DataverseSettings::default();
        assert_eq!(s.requests_per_second, 19.0);
        assert!(f64::from(s.burst) + 300.0 * s.requests_per_second <= 6000.0);
        assert_eq!(s.max_concurrent_requests, 52);
        assert!(s.close_opportunities_with_actions);
        assert_eq!(s.api_version.path_segment(), "v9.2");
    }

    #[test]
    fn bad_settings_are_refused_with_their_name() {
        assert!(complete().validate().is_ok());
        let cases = [
            (
                DataverseSettings {
                    tenant: " ".into(),
                    ..complete()
                },
                "tenant",
            ),
            (
                DataverseSettings {
                    client_secret: None,
                    ..complete()
                },
                "client_secret",
            ),
            (
                DataverseSettings {
                    requests_per_second: f64::NAN,
                    ..complete()
                },
                "requests_per_second",
            ),
            (
                DataverseSettings {
                    max_concurrent_requests: 0,
                    ..complete()
                },
                "max_concurrent_requests",
            ),
            (
                DataverseSettings {
                    page_size: 6000,
                    ..complete()
                },
                "page_size",
            ),
        ];
        for (s, name) in cases {
            let e = s.validate().unwrap_err().to_string();
            assert!(e.contains(name), "{e}");
        }
        let http = DataverseSettings {
            url: "http://contoso.crm.dynamics.com".into(),
            ..complete()
        };
        assert!(http.environment_url().is_err());
        let local = DataverseSettings {
            url: "http://127.0.0.1:8080".into(),
            ..complete()
        };
        assert!(local.environment_url().is_ok());
        assert!(DataverseSettings::default().environment_url().is_err());
    }

    #[test]
    fn the_secret_never_shows_and_the_section_reads_from_toml_shaped_values() {
        let s = complete();
        assert!(!format!("{s:?}").contains("s3cr3t-value"));
        let json = serde_json::to_string(&s).unwrap();
        assert!(!json.contains("s3cr3t-value"), "{json}");
        let parsed: DataverseSettings = serde_json::from_value(serde_json::json!({
            "url": "https://fabrikam.crm4.dynamics.com",
            "api_version": "v9.1",
            "tenant": "fabrikam.onmicrosoft.com",
            "client_id": "app",
            "client_secret": "from-env",
            "request_timeout": "30s",
            "requests_per_second": 5.0,
            "close_opportunities_with_actions": false,
            "retry": {"max_attempts": 2}
        }))
        .unwrap();
        assert_eq!(parsed.api_version.to_string(), "9.1");
        assert_eq!(parsed.request_timeout, Duration::from_secs(30));
        assert!(!parsed.close_opportunities_with_actions);
        assert_eq!(parsed.retry.max_attempts, 2);
        assert_eq!(parsed.retry.min_backoff, Duration::from_millis(200));
        assert_eq!(parsed.max_concurrent_requests, 52);
    }
}
