//! How each token is doing, for `refsync status`, `/readyz` and the metrics.
//!
//! A refresh token that Entra refuses is the one failure refsync cannot heal by
//! itself: it stops every Partner Center write until a person runs
//! `refsync login`. So it is reported in three places at once — an error log
//! naming the command, a metric pair, and [`TokenHealth`].

use super::{ReloginReason, TokenError};
use chrono::{DateTime, Utc};
use serde::Serialize;

/// Metric: refresh-token grants refused, by `audience` and `reason`
/// (`expired`, `revoked`, `refused`, `interaction_required`, `missing`).
pub const REFRESH_FAILURES_TOTAL: &str = "refsync_token_refresh_failures_total";
/// Metric (gauge): 1 while the stored refresh token works, 0 once it was refused.
pub const REFRESH_TOKEN_HEALTHY: &str = "refsync_refresh_token_healthy";
/// Metric (gauge): when the refresh token expires (Unix seconds), where Entra says.
pub const REFRESH_TOKEN_EXPIRES_AT: &str = "refsync_refresh_token_expires_at_seconds";

/// The overall state of one token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthState {
    /// Nothing fetched yet.
    Unknown,
    /// The last fetch worked.
    Healthy,
    /// The last fetch failed in a way that may heal (network, 5xx, vault).
    Failing,
    /// The sign-in must be repeated: run `refsync login`.
    LoginRequired,
    /// The identity provider refused the configuration (client secret, resource).
    Misconfigured,
}

/// One token's health.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenHealth {
    /// The overall state.
    pub state: HealthState,
    /// When a token was last obtained.
    pub last_success: Option<DateTime<Utc>>,
    /// When a fetch last failed.
    pub last_failure: Option<DateTime<Utc>>,
    /// Why it failed (the error's message: codes and descriptions, no secrets).
    pub last_error: Option<String>,
    /// When login is required, why.
    pub relogin_reason: Option<&'static str>,
    /// When the refresh token expires, if Entra said (`refresh_token_expires_in`).
    pub refresh_token_expires_at: Option<DateTime<Utc>>,
}

impl Default for TokenHealth {
    fn default() -> Self {
        Self {
            state: HealthState::Unknown,
            last_success: None,
            last_failure: None,
            last_error: None,
            relogin_reason: None,
            refresh_token_expires_at: None,
        }
    }
}

impl TokenHealth {
    /// Records a successful fetch.
    pub(crate) fn succeeded(&mut self, at: DateTime<Utc>, refresh_expires: Option<DateTime<Utc>>) {
        self.state = HealthState::Healthy;
        self.last_success = Some(at);
        self.last_error = None;
        self.relogin_reason = None;
        if refresh_expires.is_some() {
            self.refresh_token_expires_at = refresh_expires;
        }
    }

    /// Records a failed fetch.
    pub(crate) fn failed(&mut self, at: DateTime<Utc>, error: &TokenError) {
        self.state = match error {
            TokenError::ReloginRequired { .. } | TokenError::DeviceCode { .. } => {
                HealthState::LoginRequired
            }
            TokenError::Refused { .. } | TokenError::InvalidResponse { .. } => {
                HealthState::Misconfigured
            }
            TokenError::Endpoint { .. } | TokenError::Vault { .. } => HealthState::Failing,
        };
        self.relogin_reason = match error {
            TokenError::ReloginRequired { reason, .. } => Some(reason.as_str()),
            _ => None,
        };
        self.last_failure = Some(at);
        self.last_error = Some(error.to_string());
    }

    /// True when the refresh token expires within `window` of `now` (time to plan a login).
    pub fn refresh_token_expires_within(
        &self,
        now: DateTime<Utc>,
        window: chrono::Duration,
    ) -> bool {
        self.refresh_token_expires_at
            .is_some_and(|at| at - now <= window)
    }

    /// True when the sign-in must be repeated.
    pub fn needs_login(&self) -> bool {
        self.state == HealthState::LoginRequired
    }
}

/// Reports a refused refresh token loudly: error log naming the fix, failure
/// counter, health gauge to 0.
pub(crate) fn report_refresh_refused(
    audience: &str,
    reason: ReloginReason,
    aadsts: Option<u32>,
    description: Option<&str>,
) {
    tracing::error!(
        audience,
        reason = reason.as_str(),
        aadsts,
        description,
        "the stored sign-in for {audience} no longer works ({reason}); run `refsync login` to sign in again — Partner Center calls fail until then"
    );
    metrics::counter!(REFRESH_FAILURES_TOTAL, "audience" => audience.to_owned(), "reason" => reason.as_str())
        .increment(1);
    metrics::gauge!(REFRESH_TOKEN_HEALTHY, "audience" => audience.to_owned()).set(0.0);
}

/// Reports a working refresh token: health gauge to 1, expiry gauge when known.
pub(crate) fn report_refresh_ok(audience: &str, expires_at: Option<DateTime<Utc>>) {
    metrics::gauge!(REFRESH_TOKEN_HEALTHY, "audience" => audience.to_owned()).set(1.0);
    if let Some(at) = expires_at {
        metrics::gauge!(REFRESH_TOKEN_EXPIRES_AT, "audience" => audience.to_owned())
            .set(at.timestamp() as f64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_follows_the_last_fetch() {
        let now = Utc::now();
        let mut h = TokenHealth::default();
        assert_eq!(h.state, HealthState::Unknown);
        h.succeeded(now, Some(now + chrono::Duration::hours(20)));
        assert_eq!(h.state, HealthState::Healthy);
        assert!(h.refresh_token_expires_within(now, chrono::Duration::days(1)));
        assert!(!h.refresh_token_expires_within(now, chrono::Duration::hours(1)));
        h.failed(
            now,
            &TokenError::ReloginRequired {
                audience: "a".into(),
                reason: ReloginReason::Revoked,
                aadsts: Some(50173),
                description: None,
            },
        );
        assert!(h.needs_login());
        assert_eq!(h.relogin_reason, Some("revoked"));
        assert!(h.last_error.as_deref().unwrap().contains("refsync login"));
        h.succeeded(now, None);
        assert_eq!(h.state, HealthState::Healthy);
        assert!(h.refresh_token_expires_at.is_some(), "kept from before");
    }
}
