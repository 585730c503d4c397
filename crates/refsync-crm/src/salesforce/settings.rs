//! `[crm.salesforce]`: how refsync signs in to Salesforce and how hard it may use the
//! org's API allocation. Every key has a default, so a config file names only what it
//! changes; secrets (the consumer secret) come from the environment, never the file,
//! and never appear in `Debug` output.

use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;
use url::Url;

/// Why a [`super::SalesforceConnector`] could not be built. Messages name the setting
/// at fault and never carry a secret or the private key.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// A setting is missing, out of range or contradicts another.
    #[error("[crm.salesforce] {0}")]
    Invalid(String),
    /// The JWT private key file could not be read or is not an RSA key in PEM form.
    #[error("[crm.salesforce] jwt_private_key_file {path}: {reason}")]
    PrivateKey {
        /// The file named by `jwt_private_key_file`.
        path: PathBuf,
        /// What was wrong (never the key's contents).
        reason: String,
    },
    /// The HTTP client could not be built.
    #[error("[crm.salesforce] HTTP client: {0}")]
    Http(String),
}

/// A REST API version such as `62.0`, written with or without the leading `v`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ApiVersion(String);

impl ApiVersion {
    /// Parses `62.0` or `v62.0`.
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
            Err(format!(
                "api_version {text:?} is not a version such as 62.0"
            ))
        }
    }

    /// The path segment: `v62.0`.
    pub fn path_segment(&self) -> String {
        format!("v{}", self.0)
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

/// How often a failed call is repeated in-process (503s, timeouts, dropped
/// connections, and only for calls that are safe to repeat). Anything longer is
/// the durable queue's job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetrySettings {
    /// Attempts in all, the first included. Default 4.
    pub max_attempts: u32,
    /// First backoff delay. Default 200 ms.
    #[serde(with = "humantime_serde")]
    pub min_backoff: Duration,
    /// Longest backoff delay. Default 10 s.
    #[serde(with = "humantime_serde")]
    pub max_backoff: Duration,
}

impl Default for RetrySettings {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            min_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(10),
        }
    }
}

/// The `[crm.salesforce]` section.
///
/// Sign-in is either the client-credentials flow (`client_id` + `client_secret`) or the
/// JWT-bearer flow (`client_id` + `jwt_username` + `jwt_private_key_file`), never both
/// (crm.md §2.1).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SalesforceSettings {
    /// Where tokens come from: `https://login.salesforce.com`, `https://test.salesforce.com`
    /// for sandboxes, or the org's My Domain (which the client-credentials flow may
    /// require, crm.md §2.1, unconfirmed). Default `https://login.salesforce.com`.
    pub login_url: String,
    /// REST API version. Default 62.0 (Winter '25), served by every org refsync targets.
    pub api_version: ApiVersion,
    /// The External Client App's consumer key.
    pub client_id: String,
    /// The consumer secret, for the client-credentials flow. Environment or file only.
    #[serde(default, skip_serializing)]
    pub client_secret: Option<SecretString>,
    /// The user the JWT-bearer flow signs in as (the assertion's `sub`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwt_username: Option<String>,
    /// PEM file holding the RSA private key whose certificate is uploaded to the app.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwt_private_key_file: Option<PathBuf>,
    /// The assertion's `aud`. Default: `login_url`. Salesforce expects
    /// `https://login.salesforce.com` (or `test.`) even when tokens are requested from a
    /// My Domain host (crm.md §2.1), so set this when `login_url` is a My Domain.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwt_audience: Option<String>,
    /// Limit for one HTTP attempt. Default 30 s.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// Steady request rate while the allocation is comfortable. Default 10 per second.
    pub requests_per_second: f64,
    /// Requests that may go at once before `requests_per_second` applies. Salesforce
    /// limits a day's calls and concurrent long requests, not calls per second
    /// (crm.md §2.7), so a few new referrals need not queue behind each other.
    /// Default 50; 1 spaces every request. Not applied once slowed down.
    pub burst: u32,
    /// The rate once usage passes `usage_slowdown_threshold`. Default 0.5 per second.
    pub slowed_requests_per_second: f64,
    /// Share of the daily allocation (0–1] past which the connector slows down and logs
    /// a warning. Default 0.8.
    pub usage_slowdown_threshold: f64,
    /// Lead `Status` written by `retire_lead`. The REST API cannot convert a lead, and a
    /// status with `IsConverted` describes a conversion that never happened, so the
    /// default is the standard non-converted closed status `Closed - Not Converted`
    /// (crm.md §2.8; the org's values are unconfirmed, so set yours).
    pub lead_closed_status: String,
    /// How long a token is used before a new one is fetched. Salesforce sends no
    /// `expires_in`; sessions end after the org's inactivity timeout (default 2 hours),
    /// so set this to that timeout. A session that still ends early answers 401
    /// `INVALID_SESSION_ID`, which is absorbed by signing in again once. Default 2 h.
    #[serde(with = "humantime_serde")]
    pub session_lifetime: Duration,
    /// In-process retries.
    pub retry: RetrySettings,
}

impl Default for SalesforceSettings {
    fn default() -> Self {
        Self {
            login_url: "https://login.salesforce.com".to_owned(),
            api_version: ApiVersion("62.0".to_owned()),
            client_id: String::new(),
            client_secret: None,
            jwt_username: None,
            jwt_private_key_file: None,
            jwt_audience: None,
            request_timeout: Duration::from_secs(30),
            requests_per_second: 10.0,
            burst: 50,
            slowed_requests_per_second: 0.5,
            usage_slowdown_threshold: 0.8,
            lead_closed_status: "Closed - Not Converted".to_owned(),
            session_lifetime: Duration::from_secs(2 * 60 * 60),
            retry: RetrySettings::default(),
        }
    }
}

/// The sign-in the settings describe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Grant {
    /// OAuth client credentials.
    ClientCredentials,
    /// OAuth JWT bearer for `username`, signed with the key in `key_file`.
    JwtBearer {
        /// The user.
        username: String,
        /// The PEM file.
        key_file: PathBuf,
    },
}

impl SalesforceSettings {
    /// The login URL, parsed; only `https`, or `http` to a loopback emulator.
    pub(crate) fn login_url(&self) -> Result<Url, SetupError> {
        let url = Url::parse(self.login_url.trim())
            .map_err(|e| SetupError::Invalid(format!("login_url {:?}: {e}", self.login_url)))?;
        let loopback = matches!(
            url.host(),
            Some(url::Host::Ipv4(ip)) if ip.is_loopback()
        ) || matches!(url.host(), Some(url::Host::Ipv6(ip)) if ip.is_loopback())
            || url.host_str() == Some("localhost");
        match url.scheme() {
            "https" => Ok(url),
            "http" if loopback => Ok(url),
            _ => Err(SetupError::Invalid(format!(
                "login_url {:?} must be https (http only to a local emulator)",
                self.login_url
            ))),
        }
    }

    /// Checks the numbers and works out the grant.
    pub(crate) fn validate(&self) -> Result<Grant, SetupError> {
        let invalid = |m: String| Err(SetupError::Invalid(m));
        if self.client_id.trim().is_empty() {
            return invalid("client_id (the consumer key) is required".to_owned());
        }
        for (name, rate) in [
            ("requests_per_second", self.requests_per_second),
            (
                "slowed_requests_per_second",
                self.slowed_requests_per_second,
            ),
        ] {
            if !(rate.is_finite() && rate > 0.0) {
                return invalid(format!("{name} must be a positive number, got {rate}"));
            }
        }
        let t = self.usage_slowdown_threshold;
        if !(t.is_finite() && t > 0.0 && t <= 1.0) {
            return invalid(format!(
                "usage_slowdown_threshold must be in (0, 1], got {t}"
            ));
        }
        if self.request_timeout.is_zero() || self.session_lifetime.is_zero() {
            return invalid("request_timeout and session_lifetime must be positive".to_owned());
        }
        if self.retry.max_attempts == 0 {
            return invalid("retry.max_attempts must be at least 1".to_owned());
        }
        if self.lead_closed_status.trim().is_empty() {
            return invalid("lead_closed_status must name a Lead Status value".to_owned());
        }
        match (
            &self.client_secret,
            &self.jwt_username,
            &self.jwt_private_key_file,
        ) {
            (Some(_), None, None) => Ok(Grant::ClientCredentials),
            (None, Some(username), Some(key_file)) if !username.trim().is_empty() => {
                Ok(Grant::JwtBearer {
                    username: username.trim().to_owned(),
                    key_file: key_file.clone(),
                })
            }
            (Some(_), _, _) => invalid(
                "set either client_secret or jwt_username + jwt_private_key_file, not both"
                    .to_owned(),
            ),
            (None, None, None) => invalid(
                "no credentials: set client_secret (client credentials) or jwt_username + jwt_private_key_file (JWT bearer)"
                    .to_owned(),
            ),
            (None, _, _) => {
                invalid("the JWT bearer flow needs both jwt_username and jwt_private_key_file".to_owned())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_secret() -> SalesforceSettings {
        SalesforceSettings {
            client_id: "key".into(),
            client_secret: Some(SecretString::from("s3cr3t-value")),
            ..SalesforceSettings::default()
        }
    }

    #[test]
    fn versions_read_with_or_without_the_v() {
        assert_eq!(ApiVersion::parse("v62.0").unwrap().path_segment(), "v62.0");
        assert_eq!(ApiVersion::parse("59.0").unwrap().to_string(), "59.0");
        for bad in ["62", "v", "62.x", "../62.0", ""] {
            assert!(ApiVersion::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn exactly_one_grant_is_configured() {
        assert_eq!(with_secret().validate().unwrap(), Grant::ClientCredentials);
        let jwt = SalesforceSettings {
            client_id: "key".into(),
            jwt_username: Some("me@example.com".into()),
            jwt_private_key_file: Some("/k.pem".into()),
            ..SalesforceSettings::default()
        };
        assert!(matches!(jwt.validate().unwrap(), Grant::JwtBearer { .. }));
        let both = SalesforceSettings {
            client_secret: Some(SecretString::from("x")),
            ..jwt.clone()
        };
        assert!(
            both.validate()
                .unwrap_err()
                .to_string()
                .contains("not both")
        );
        let half = SalesforceSettings {
            jwt_private_key_file: None,
            ..jwt
        };
        assert!(half.validate().is_err());
        let none = SalesforceSettings {
            client_id: "key".into(),
            ..SalesforceSettings::default()
        };
        assert!(
            none.validate()
                .unwrap_err()
                .to_string()
                .contains("no credentials")
        );
    }

    #[test]
    fn numbers_out_of_range_are_refused() {
        for s in [
            SalesforceSettings {
                usage_slowdown_threshold: 1.5,
                ..with_secret()
            },
            SalesforceSettings {
                requests_per_second: 0.0,
                ..with_secret()
            },
            SalesforceSettings {
                slowed_requests_per_second: f64::NAN,
                ..with_secret()
            },
        ] {
            assert!(s.validate().is_err(), "{s:?}");
        }
    }

    #[test]
    fn login_urls_must_be_https_except_to_a_local_emulator() {
        let mut s = with_secret();
        assert!(s.login_url().is_ok());
        s.login_url = "http://login.salesforce.com".into();
        assert!(s.login_url().is_err());
        s.login_url = "http://127.0.0.1:8080".into();
        assert!(s.login_url().is_ok());
    }

    #[test]
    fn the_secret_never_shows_and_the_section_reads_from_toml() {
        let s = with_secret();
        assert!(!format!("{s:?}").contains("s3cr3t-value"));
        let json = serde_json::to_string(&s).unwrap();
        assert!(!json.contains("s3cr3t-value"), "{json}");
        let parsed: SalesforceSettings = serde_json::from_value(serde_json::json!({
            "login_url": "https://test.salesforce.com",
            "api_version": "v61.0",
            "client_id": "key",
            "client_secret": "from-env",
            "request_timeout": "10s",
            "session_lifetime": "15m",
            "retry": {"max_attempts": 2}
        }))
        .unwrap();
        assert_eq!(parsed.api_version.to_string(), "61.0");
        assert_eq!(parsed.session_lifetime, Duration::from_secs(900));
        assert_eq!(parsed.retry.max_attempts, 2);
        assert_eq!(parsed.retry.min_backoff, Duration::from_millis(200));
        assert_eq!(parsed.lead_closed_status, "Closed - Not Converted");
    }
}
