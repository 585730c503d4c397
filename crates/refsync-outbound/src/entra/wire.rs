//! Entra ID's token-endpoint JSON, read leniently: the v1 endpoint sends
//! `expires_in`, `interval` and friends as strings, v2 as numbers; v1's device
//! authorization says `verification_url` where v2 says `verification_uri`.
//!
//! Nothing here implements `Debug` over a token value: the response types hold
//! tokens as [`SecretString`].

use crate::token::ReloginReason;
use secrecy::SecretString;
use serde::{Deserialize, Deserializer};
use std::time::Duration;

/// A successful token response.
#[derive(Debug, Deserialize)]
pub(crate) struct TokenResponse {
    pub(crate) access_token: SecretString,
    #[serde(default)]
    pub(crate) token_type: Option<String>,
    #[serde(default, deserialize_with = "lenient_secs")]
    pub(crate) expires_in: Option<Duration>,
    #[serde(default)]
    pub(crate) refresh_token: Option<SecretString>,
    #[serde(default, deserialize_with = "lenient_secs")]
    pub(crate) refresh_token_expires_in: Option<Duration>,
}

/// The device authorization response.
#[derive(Debug, Deserialize)]
pub(crate) struct DeviceAuthorization {
    pub(crate) device_code: SecretString,
    pub(crate) user_code: String,
    #[serde(alias = "verification_url")]
    pub(crate) verification_uri: String,
    #[serde(default, deserialize_with = "lenient_secs")]
    pub(crate) expires_in: Option<Duration>,
    #[serde(default, deserialize_with = "lenient_secs")]
    pub(crate) interval: Option<Duration>,
    #[serde(default)]
    pub(crate) message: Option<String>,
}

/// An Entra error body: `{"error","error_description":"AADSTSnnnn: …","error_codes":[n]}`.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ErrorBody {
    #[serde(default)]
    pub(crate) error: Option<String>,
    #[serde(default)]
    pub(crate) error_description: Option<String>,
    #[serde(default)]
    pub(crate) error_codes: Option<Vec<u32>>,
}

impl ErrorBody {
    /// The AADSTS number: from `error_codes`, else from the description's prefix.
    pub(crate) fn aadsts(&self) -> Option<u32> {
        self.error_codes
            .as_ref()
            .and_then(|c| c.first().copied())
            .or_else(|| {
                let d = self.error_description.as_deref()?;
                let rest = d.trim_start().strip_prefix("AADSTS")?;
                let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                digits.parse().ok()
            })
    }

    /// The first line of the description (Entra appends trace and correlation ids
    /// and a timestamp on further lines), shortened.
    pub(crate) fn summary(&self) -> Option<String> {
        let first = self.error_description.as_deref()?.lines().next()?.trim();
        let mut s: String = first.chars().take(300).collect();
        if first.chars().count() > 300 {
            s.push('…');
        }
        (!s.is_empty()).then_some(s)
    }

    /// The OAuth error name, or `unknown`.
    pub(crate) fn error_name(&self) -> &str {
        self.error.as_deref().unwrap_or("unknown")
    }
}

/// Why a refresh token was refused, from Entra's error and AADSTS number.
pub(crate) fn relogin_reason(body: &ErrorBody) -> Option<ReloginReason> {
    match (body.error_name(), body.aadsts()) {
        (_, Some(700082 | 700084 | 70043)) => Some(ReloginReason::Expired),
        (_, Some(50173 | 50133 | 70008 | 50089 | 700081 | 50132)) => Some(ReloginReason::Revoked),
        (_, Some(50076 | 50079 | 50078 | 50158 | 65001 | 53003)) => {
            Some(ReloginReason::InteractionRequired)
        }
        ("interaction_required", _) => Some(ReloginReason::InteractionRequired),
        ("invalid_grant", _) => Some(ReloginReason::Refused),
        _ => None,
    }
}

/// Seconds as a number or a numeric string.
fn lenient_secs<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Secs {
        Number(u64),
        Float(f64),
        Text(String),
    }
    Ok(match Option::<Secs>::deserialize(d)? {
        None => None,
        Some(Secs::Number(n)) => Some(Duration::from_secs(n)),
        Some(Secs::Float(f)) if f.is_finite() && f >= 0.0 => Some(Duration::from_secs_f64(f)),
        Some(Secs::Float(_)) => None,
        Some(Secs::Text(s)) => s.trim().parse::<u64>().ok().map(Duration::from_secs),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn v1_and_v2_token_responses_both_parse() {
        let v1: TokenResponse = serde_json::from_str(
            r#"{"token_type":"Bearer","scope":"user_impersonation","expires_in":"3599","ext_expires_in":"3599","expires_on":"1700000000","not_before":"1699996400","resource":"https://api.partner.microsoft.com","access_token":"a1","refresh_token":"r1"}"#,
        )
        .unwrap();
        assert_eq!(v1.expires_in, Some(Duration::from_secs(3599)));
        assert_eq!(v1.access_token.expose_secret(), "a1");
        assert_eq!(v1.refresh_token.unwrap().expose_secret(), "r1");
        let v2: TokenResponse = serde_json::from_str(
            r#"{"token_type":"Bearer","expires_in":3599,"ext_expires_in":3599,"access_token":"a2","refresh_token_expires_in":86400}"#,
        )
        .unwrap();
        assert_eq!(v2.expires_in, Some(Duration::from_secs(3599)));
        assert_eq!(
            v2.refresh_token_expires_in,
            Some(Duration::from_secs(86400))
        );
        assert!(v2.refresh_token.is_none());
    }

    #[test]
    fn device_authorizations_of_both_versions_parse() {
        let v1: DeviceAuthorization = serde_json::from_str(
            r#"{"user_code":"ABC","device_code":"d","verification_url":"https://x/devicelogin","expires_in":"900","interval":"5","message":"m"}"#,
        )
        .unwrap();
        assert_eq!(v1.verification_uri, "https://x/devicelogin");
        assert_eq!(v1.interval, Some(Duration::from_secs(5)));
        let v2: DeviceAuthorization = serde_json::from_str(
            r#"{"user_code":"ABC","device_code":"d","verification_uri":"https://x/devicelogin","expires_in":900,"interval":5}"#,
        )
        .unwrap();
        assert_eq!(v2.expires_in, Some(Duration::from_secs(900)));
    }

    #[test]
    fn aadsts_codes_and_reasons() {
        let body: ErrorBody = serde_json::from_str(
            r#"{"error":"invalid_grant","error_description":"AADSTS50173: The provided grant has expired due to it being revoked.\r\nTrace ID: t\r\nCorrelation ID: c","error_codes":[50173]}"#,
        )
        .unwrap();
        assert_eq!(body.aadsts(), Some(50173));
        assert_eq!(
            body.summary().as_deref(),
            Some("AADSTS50173: The provided grant has expired due to it being revoked.")
        );
        assert_eq!(relogin_reason(&body), Some(ReloginReason::Revoked));
        let no_codes = ErrorBody {
            error: Some("invalid_grant".into()),
            error_description: Some("AADSTS700082: The refresh token has expired".into()),
            error_codes: None,
        };
        assert_eq!(no_codes.aadsts(), Some(700082));
        assert_eq!(relogin_reason(&no_codes), Some(ReloginReason::Expired));
        let mfa = ErrorBody {
            error: Some("invalid_grant".into()),
            error_codes: Some(vec![50076]),
            ..ErrorBody::default()
        };
        assert_eq!(
            relogin_reason(&mfa),
            Some(ReloginReason::InteractionRequired)
        );
        let other = ErrorBody {
            error: Some("invalid_client".into()),
            error_codes: Some(vec![7000215]),
            ..ErrorBody::default()
        };
        assert_eq!(relogin_reason(&other), None);
    }
}
