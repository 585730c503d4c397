//! Access tokens for every client, cached and refreshed one at a time.
//!
//! - [`TokenSource`]: what an [`ApiClient`](crate::call::ApiClient) asks for a token
//!   and tells when the API refused one (401).
//! - [`TokenCache`]: tokens per [`TokenKey`] (authority, tenant, client, audience),
//!   held until shortly before expiry, with one fetch at a time per key; it also
//!   keeps each key's [`TokenHealth`] for `refsync status`.
//! - [`TokenFetcher`]: how a token is obtained — the Entra grants in
//!   [`crate::entra`]; Salesforce adds its own and reuses the cache.
//! - [`RefreshTokenVault`]: where a long-lived refresh token is kept (the binary
//!   stores it encrypted).
//!
//! Tokens are [`SecretString`]s: `Debug` prints `[REDACTED]`, and nothing in this
//! crate logs or formats their value.

mod cache;
pub(crate) mod health;
mod vault;

pub use cache::{CachedTokenSource, TokenCache};
pub use health::{
    HealthState, REFRESH_FAILURES_TOTAL, REFRESH_TOKEN_EXPIRES_AT, REFRESH_TOKEN_HEALTHY,
    TokenHealth,
};
pub use vault::{MemoryVault, RefreshTokenVault, VaultError};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use http::HeaderValue;
use secrecy::{ExposeSecret, SecretString};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::time::Instant;

/// A bearer token and when it stops being used.
#[derive(Clone)]
pub struct AccessToken {
    secret: SecretString,
    /// Tells two fetches apart without comparing secrets.
    serial: u64,
    refresh_at: Instant,
    expires_at: DateTime<Utc>,
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken")
            .field("serial", &self.serial)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

static SERIAL: AtomicU64 = AtomicU64::new(1);

impl AccessToken {
    /// A token that is used until `refresh_at` and expires at `expires_at`.
    pub fn new(secret: SecretString, refresh_at: Instant, expires_at: DateTime<Utc>) -> Self {
        Self {
            secret,
            serial: SERIAL.fetch_add(1, Ordering::Relaxed),
            refresh_at,
            expires_at,
        }
    }

    /// The token itself, for the `Authorization` header (and tests).
    pub fn secret(&self) -> &SecretString {
        &self.secret
    }

    /// `Bearer <token>`, marked sensitive so HTTP libraries never print it.
    pub fn bearer_header(&self) -> HeaderValue {
        let mut value = HeaderValue::from_str(&format!("Bearer {}", self.secret.expose_secret()))
            .unwrap_or_else(|_| HeaderValue::from_static("Bearer invalid"));
        value.set_sensitive(true);
        value
    }

    /// When the server says the token expires.
    pub fn expires_at(&self) -> DateTime<Utc> {
        self.expires_at
    }

    /// True while the cache still hands the token out.
    pub fn is_fresh(&self, now: Instant) -> bool {
        now < self.refresh_at
    }

    /// True when both are the same fetch.
    pub fn same_as(&self, other: &AccessToken) -> bool {
        self.serial == other.serial
    }
}

/// A token as a fetcher got it, before the cache decides when to refresh it.
#[derive(Debug, Clone)]
pub struct FetchedToken {
    /// The access token.
    pub access_token: SecretString,
    /// Its lifetime as the server stated it (`expires_in`).
    pub expires_in: Duration,
    /// When the refresh token behind it expires, if the server said
    /// (`refresh_token_expires_in`).
    pub refresh_token_expires_at: Option<DateTime<Utc>>,
}

/// Which token: one per authority, tenant, client and audience. One key is served
/// by one grant.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TokenKey {
    /// The authority's base URL, e.g. `https://login.microsoftonline.com`.
    pub authority: String,
    /// The tenant (id, domain, `organizations`), or the Salesforce My Domain.
    pub tenant: String,
    /// The client (application) id.
    pub client_id: String,
    /// The resource the token is for, e.g. `https://api.partner.microsoft.com`.
    pub audience: String,
}

impl fmt::Display for TokenKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} for client {} in {} at {}",
            self.audience, self.client_id, self.tenant, self.authority
        )
    }
}

/// Why sign-in must be repeated by a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReloginReason {
    /// No refresh token is stored.
    Missing,
    /// The refresh token expired (AADSTS700082).
    Expired,
    /// The refresh token was revoked, or the user's password reset (AADSTS50173 and kin).
    Revoked,
    /// Entra refused the refresh token for another reason (`invalid_grant`).
    Refused,
    /// Entra requires an interaction the service cannot do (MFA, consent).
    InteractionRequired,
}

impl ReloginReason {
    /// The label used in metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            ReloginReason::Missing => "missing",
            ReloginReason::Expired => "expired",
            ReloginReason::Revoked => "revoked",
            ReloginReason::Refused => "refused",
            ReloginReason::InteractionRequired => "interaction_required",
        }
    }
}

impl fmt::Display for ReloginReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why no token could be had. Carries Entra's `error`, AADSTS number and the first
/// line of its description — never a request body, a secret or a token.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TokenError {
    /// The identity provider refused the request (bad client secret, unknown
    /// resource, wrong password, …).
    #[error("{audience}: the identity provider refused the token request: {error}{}{}", aadsts.map(|c| format!(" (AADSTS{c})")).unwrap_or_default(), description_suffix(description))]
    Refused {
        /// The audience.
        audience: String,
        /// OAuth `error`, e.g. `invalid_client`.
        error: String,
        /// The AADSTS number.
        aadsts: Option<u32>,
        /// The first line of `error_description`.
        description: Option<String>,
    },
    /// The stored sign-in no longer works: a person must run `refsync login`.
    #[error("{audience}: sign-in needed ({reason}); run `refsync login`{}{}", aadsts.map(|c| format!(" (AADSTS{c})")).unwrap_or_default(), description_suffix(description))]
    ReloginRequired {
        /// The audience.
        audience: String,
        /// Why.
        reason: ReloginReason,
        /// The AADSTS number.
        aadsts: Option<u32>,
        /// The first line of `error_description`.
        description: Option<String>,
    },
    /// The token endpoint could not be reached or kept failing.
    #[error("{audience}: token endpoint: {detail}")]
    Endpoint {
        /// The audience.
        audience: String,
        /// What failed (from the call error; no bodies).
        detail: String,
        /// True when a later try may succeed.
        transient: bool,
    },
    /// The token endpoint answered something that is not a token response.
    #[error("{audience}: unexpected token response: {detail}")]
    InvalidResponse {
        /// The audience.
        audience: String,
        /// What was wrong (field names only).
        detail: String,
    },
    /// The refresh-token vault failed to load or store.
    #[error("{audience}: refresh-token vault: {source}")]
    Vault {
        /// The audience.
        audience: String,
        /// Why.
        source: VaultError,
    },
    /// The device-code sign-in did not complete.
    #[error("{audience}: device-code sign-in {outcome}")]
    DeviceCode {
        /// The audience.
        audience: String,
        /// `expired`, `declined` or `timed out`.
        outcome: DeviceCodeOutcome,
    },
}

fn description_suffix(description: &Option<String>) -> String {
    description
        .as_deref()
        .map(|d| format!(": {d}"))
        .unwrap_or_default()
}

/// How a device-code sign-in ended without tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceCodeOutcome {
    /// The code expired before the user approved it (`expired_token`).
    Expired,
    /// The user declined (`authorization_declined`).
    Declined,
    /// The code was not recognised (`bad_verification_code`).
    Unrecognised,
}

impl fmt::Display for DeviceCodeOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DeviceCodeOutcome::Expired => "expired before it was approved",
            DeviceCodeOutcome::Declined => "was declined",
            DeviceCodeOutcome::Unrecognised => "code was not recognised",
        })
    }
}

impl TokenError {
    /// True when a later attempt may succeed without a person stepping in.
    pub fn is_transient(&self) -> bool {
        match self {
            TokenError::Endpoint { transient, .. } => *transient,
            TokenError::Vault { .. } => true,
            _ => false,
        }
    }

    /// True when only `refsync login` helps.
    pub fn needs_login(&self) -> bool {
        matches!(self, TokenError::ReloginRequired { .. })
    }
}

/// Hands out access tokens for one audience.
#[async_trait]
pub trait TokenSource: Send + Sync + fmt::Debug {
    /// A token valid for a while yet (cached, or fetched now).
    async fn token(&self) -> Result<AccessToken, TokenError>;

    /// Forgets `token` (the API answered 401), so the next call fetches a new one.
    /// A token other than the cached one is ignored: another caller already
    /// replaced it.
    fn invalidate(&self, token: &AccessToken);

    /// The audience, for logs and metrics.
    fn audience(&self) -> &str;
}

/// Obtains a fresh token from an identity provider (one grant).
#[async_trait]
pub trait TokenFetcher: Send + Sync + fmt::Debug {
    /// Requests a new token.
    async fn fetch(&self) -> Result<FetchedToken, TokenError>;

    /// True for grants that rely on a stored refresh token (their health is a gauge).
    fn uses_refresh_token(&self) -> bool {
        false
    }
}
