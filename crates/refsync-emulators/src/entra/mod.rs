//! A faithful Microsoft Entra ID token service for the emulators
//! (partner-center.md §1.2, crm.md §1.2).
//!
//! One [`EntraAuthority`] is one tenant. Its [`EntraAuthority::router`] serves:
//!
//! | route | what |
//! |---|---|
//! | `POST /{tenant}/oauth2/token` | v1 token endpoint (`resource=`); numbers as strings, `resource` echoed |
//! | `POST /{tenant}/oauth2/v2.0/token` | v2 token endpoint (`scope=…/.default`) |
//! | `POST /{tenant}/oauth2/devicecode`, `POST /{tenant}/oauth2/v2.0/devicecode` | device authorization |
//! | `GET/POST /devicelogin` | the sign-in page a user approves a device code on |
//! | `/_emulator/entra/…` | control API (see [`control`]) |
//!
//! Grants: `client_credentials`, `password` (ROPC), `refresh_token` (rotating) and
//! `urn:ietf:params:oauth:grant-type:device_code`. Errors are Entra's exact JSON
//! ([`AadError`]). Resource servers validate tokens with [`EntraAuthority::authorize`].
//!
//! The authority is cheap to clone and shared: the demo mounts one router on the
//! Partner Center listener while the Dataverse emulator validates against the same
//! authority; an emulator run alone mounts its own. Every control operation is also
//! a Rust method, for in-process tests.
//!
//! The authority has its own clock (system time plus an offset the control API can
//! advance), so tests can let tokens and device codes expire without sleeping.

mod aad_error;
pub mod control;
mod device;
mod grants;
mod registry;
mod tokens;

pub use aad_error::AadError;
pub use registry::{
    AppRegistration, DEMO_ADMIN_USER, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_REFERRAL_USER,
    DEMO_TENANT_DOMAIN, DEMO_TENANT_ID, DEMO_USER_PASSWORD, EntraConfig, UserAccount,
};
pub use tokens::{AcceptedTokens, BearerError, BearerErrorKind, TokenClaims, TokenKind};

use axum::Router;
use axum::http::HeaderMap;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokens::SigningKey;
use uuid::Uuid;

/// Why an authority could not be created or a control operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntraError {
    /// The signing key could not be generated.
    #[error("signing key: {0}")]
    Key(String),
    /// No pending device code has that user code.
    #[error("no pending device code with user code {0:?}")]
    UnknownUserCode(String),
    /// No such user.
    #[error("no user named {0:?}")]
    UnknownUser(String),
}

/// Issuance and refusal counts, as listed by the control API.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct EntraCounters {
    /// Access tokens issued, per grant type (`client_credentials`, `password`, `refresh_token`, `device_code`).
    pub issued: BTreeMap<String, u64>,
    /// Token-endpoint errors, per OAuth `error` value.
    pub errors: BTreeMap<String, u64>,
    /// Bearer tokens refused by resource servers.
    pub bearer_refusals: u64,
}

/// A device code awaiting (or past) the user's decision, as listed by the control API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeviceCodeInfo {
    /// The code the user types in.
    pub user_code: String,
    /// The requesting client.
    pub client_id: String,
    /// The resource the tokens will be for.
    pub resource: String,
    /// `pending`, `approved`, `declined`, `redeemed` or `expired`.
    pub state: &'static str,
    /// When the code stops being redeemable.
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RefreshState {
    Active,
    /// Replaced by a newer token of the same grant.
    Rotated(DateTime<Utc>),
    /// Revoked through the control API.
    Revoked(DateTime<Utc>),
}

#[derive(Debug, Clone)]
struct RefreshGrant {
    client_id: Uuid,
    username: String,
    resource: String,
    issued_at: DateTime<Utc>,
    last_used: DateTime<Utc>,
    state: RefreshState,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum DeviceState {
    Pending,
    Approved(String),
    Declined,
    Redeemed,
}

#[derive(Debug, Clone)]
struct DeviceAuth {
    user_code: String,
    client_id: Uuid,
    access: grants::RequestedAccess,
    expires_at: DateTime<Utc>,
    last_poll: Option<DateTime<Utc>>,
    state: DeviceState,
}

#[derive(Debug, Default)]
struct State {
    token_lifetime: Duration,
    apps: HashMap<Uuid, AppRegistration>,
    users: HashMap<String, UserAccount>,
    refresh: HashMap<String, RefreshGrant>,
    devices: HashMap<String, DeviceAuth>,
    /// Unexpired access tokens by `uti`, with their `exp`, so they can be expired early.
    live_access: HashMap<String, i64>,
    /// Tokens expired through the control API, with their natural `exp` (pruned after it).
    expired_early: HashMap<String, i64>,
    counters: EntraCounters,
}

struct Inner {
    config: EntraConfig,
    key: SigningKey,
    state: Mutex<State>,
    clock_offset_secs: AtomicI64,
}

/// One emulated Entra ID tenant: token endpoint, device login, token validation.
#[derive(Clone)]
pub struct EntraAuthority {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for EntraAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EntraAuthority")
            .field("tenant_id", &self.inner.config.tenant_id)
            .finish_non_exhaustive()
    }
}

impl EntraAuthority {
    /// Creates the tenant and generates its RSA signing key.
    pub fn new(config: EntraConfig) -> Result<Self, EntraError> {
        let key = SigningKey::generate().map_err(EntraError::Key)?;
        let state = State {
            token_lifetime: config.token_lifetime,
            apps: config
                .apps
                .iter()
                .map(|a| (a.client_id, a.clone()))
                .collect(),
            users: config
                .users
                .iter()
                .map(|u| (u.username.to_ascii_lowercase(), u.clone()))
                .collect(),
            ..State::default()
        };
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                key,
                state: Mutex::new(state),
                clock_offset_secs: AtomicI64::new(0),
            }),
        })
    }

    /// The demo tenant ([`EntraConfig::default`]).
    pub fn demo() -> Result<Self, EntraError> {
        Self::new(EntraConfig::default())
    }

    /// The routes: token endpoints, device login, and `/_emulator/entra` control.
    pub fn router(&self) -> Router {
        grants::routes(self.clone())
            .merge(device::routes(self.clone()))
            .nest("/_emulator/entra", control::router(self.clone()))
    }

    /// The tenant id.
    pub fn tenant_id(&self) -> Uuid {
        self.inner.config.tenant_id
    }

    /// The `iss` of access tokens: `https://sts.windows.net/{tid}/`.
    pub fn issuer(&self) -> String {
        format!("https://sts.windows.net/{}/", self.inner.config.tenant_id)
    }

    /// The configuration the authority was created with.
    pub fn config(&self) -> &EntraConfig {
        &self.inner.config
    }

    /// The authority's clock: system time plus any offset from [`EntraAuthority::advance_clock`].
    pub fn now(&self) -> DateTime<Utc> {
        Utc::now() + chrono::Duration::seconds(self.inner.clock_offset_secs.load(Ordering::Relaxed))
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Poisoning only follows a panic in another request; the maps stay consistent.
        self.inner
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn tenant_matches(&self, tenant: &str) -> bool {
        let c = &self.inner.config;
        tenant.eq_ignore_ascii_case("common")
            || tenant.eq_ignore_ascii_case("organizations")
            || Uuid::parse_str(tenant).is_ok_and(|t| t == c.tenant_id)
            || c.tenant_domains
                .iter()
                .any(|d| d.eq_ignore_ascii_case(tenant))
    }

    /// Validates the bearer token in `headers` for `audience` (e.g.
    /// `https://api.partner.microsoft.com`; a trailing `/` does not matter).
    ///
    /// Missing, malformed, wrongly signed, expired (including expired early through
    /// the control API), wrong-audience and wrong-issuer tokens are 401; a valid
    /// token of a kind `accepted` excludes is 403 ([`BearerError::status`]).
    pub fn authorize(
        &self,
        headers: &HeaderMap,
        audience: &str,
        accepted: AcceptedTokens,
    ) -> Result<TokenClaims, BearerError> {
        let result = match tokens::bearer_token(headers) {
            None => Err(self.bearer_error(
                BearerErrorKind::Missing,
                "No bearer token was provided.",
                audience,
            )),
            Some(token) => self.validate_token(token, audience, accepted),
        };
        if result.is_err() {
            self.state().counters.bearer_refusals += 1;
        }
        result
    }

    /// Like [`EntraAuthority::authorize`] for a raw token string.
    pub fn validate_token(
        &self,
        token: &str,
        audience: &str,
        accepted: AcceptedTokens,
    ) -> Result<TokenClaims, BearerError> {
        let claims = self.inner.key.verify(token).map_err(|kind| {
            let why = match kind {
                BearerErrorKind::BadSignature => "The token signature is invalid.",
                _ => "The token is malformed.",
            };
            self.bearer_error(kind, why, audience)
        })?;
        if claims.iss != self.issuer() {
            return Err(self.bearer_error(
                BearerErrorKind::WrongIssuer,
                "The token issuer is invalid.",
                audience,
            ));
        }
        if !tokens::same_audience(&claims.aud, audience) {
            return Err(self.bearer_error(
                BearerErrorKind::WrongAudience,
                &format!("The audience '{}' is invalid.", claims.aud),
                audience,
            ));
        }
        let leeway = i64::try_from(self.inner.config.validation_leeway.as_secs()).unwrap_or(0);
        if let Err(kind) = tokens::check_times(&claims, self.now(), leeway) {
            let why = match kind {
                BearerErrorKind::Expired => "The token is expired.",
                _ => "The token is not yet valid.",
            };
            return Err(self.bearer_error(kind, why, audience));
        }
        if self.state().expired_early.contains_key(&claims.uti) {
            return Err(self.bearer_error(
                BearerErrorKind::Expired,
                "The token is expired.",
                audience,
            ));
        }
        if !tokens::accepts(accepted, claims.idtyp) {
            let why = match accepted {
                AcceptedTokens::AppPlusUser => {
                    "App-only tokens are not supported; this API requires App+User credentials."
                }
                _ => "User tokens are not supported; this API requires app-only credentials.",
            };
            return Err(self.bearer_error(BearerErrorKind::WrongTokenKind, why, audience));
        }
        Ok(claims)
    }

    fn bearer_error(&self, kind: BearerErrorKind, why: &str, resource: &str) -> BearerError {
        let authorization_uri = format!(
            "https://login.microsoftonline.com/{}/oauth2/authorize",
            self.inner.config.tenant_id
        );
        BearerError::new(kind, why, &authorization_uri, resource)
    }

    /// The roles the caller holds: the user's (`Referral Admin`, …) for user tokens,
    /// the app's application roles for app-only tokens.
    pub fn roles_of(&self, claims: &TokenClaims) -> Vec<String> {
        let state = self.state();
        match claims.upn.as_deref() {
            Some(upn) if claims.is_user() => state
                .users
                .get(&upn.to_ascii_lowercase())
                .map(|u| u.roles.clone())
                .unwrap_or_default(),
            _ => claims.roles.clone().unwrap_or_default(),
        }
    }

    /// Mints an app-only access token directly (no HTTP), for in-process tests.
    pub fn issue_app_token(&self, client_id: Uuid, resource: &str) -> Result<String, AadError> {
        let app = self.app(client_id)?;
        self.mint_access_token(&app, None, resource, "client_credentials")
            .map(|t| t.token)
    }

    /// Mints an App+User access token directly (no HTTP), for in-process tests.
    pub fn issue_user_token(
        &self,
        client_id: Uuid,
        username: &str,
        resource: &str,
    ) -> Result<String, AadError> {
        let app = self.app(client_id)?;
        let user = self
            .user(username)
            .ok_or_else(|| AadError::unknown_user(username, &self.tenant_id().to_string()))?;
        self.mint_access_token(&app, Some(&user), resource, "password")
            .map(|t| t.token)
    }

    fn app(&self, client_id: Uuid) -> Result<AppRegistration, AadError> {
        self.state().apps.get(&client_id).cloned().ok_or_else(|| {
            AadError::unknown_client(&client_id.to_string(), &self.tenant_id().to_string())
        })
    }

    fn user(&self, username: &str) -> Option<UserAccount> {
        self.state()
            .users
            .get(&username.to_ascii_lowercase())
            .cloned()
    }

    fn mint_access_token(
        &self,
        app: &AppRegistration,
        user: Option<&UserAccount>,
        resource: &str,
        grant: &str,
    ) -> Result<MintedToken, AadError> {
        let now = self.now();
        let lifetime = self.state().token_lifetime;
        let iat = now.timestamp();
        let exp = iat + i64::try_from(lifetime.as_secs()).unwrap_or(3599);
        let uti = base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            Uuid::new_v4().as_bytes(),
        );
        let (idtyp, oid, upn, name, scp, roles) = match user {
            Some(u) => (
                TokenKind::User,
                u.object_id,
                Some(u.username.clone()),
                Some(u.display_name.clone()),
                Some("user_impersonation".to_owned()),
                None,
            ),
            None => (
                TokenKind::App,
                app.object_id,
                None,
                None,
                None,
                (!app.app_roles.is_empty()).then(|| app.app_roles.clone()),
            ),
        };
        let claims = TokenClaims {
            aud: resource.trim_end_matches('/').to_owned(),
            iss: self.issuer(),
            iat,
            nbf: iat,
            exp,
            tid: self.tenant_id().to_string(),
            appid: app.client_id.to_string(),
            app_displayname: Some(app.display_name.clone()),
            idtyp,
            oid: oid.to_string(),
            sub: oid.to_string(),
            unique_name: upn.clone(),
            upn,
            name,
            scp,
            roles,
            uti: uti.clone(),
            ver: "1.0".to_owned(),
        };
        let token = self.inner.key.sign(&claims).map_err(|e| {
            tracing::error!(error = %e, "signing an access token failed");
            AadError::internal()
        })?;
        let mut state = self.state();
        state.live_access.retain(|_, e| *e > iat);
        state.live_access.insert(uti, exp);
        *state.counters.issued.entry(grant.to_owned()).or_default() += 1;
        Ok(MintedToken {
            token,
            iat,
            exp,
            lifetime_secs: exp - iat,
        })
    }

    fn sign_id_token(&self, claims: &serde_json::Value) -> Option<String> {
        self.inner.key.sign(claims).ok()
    }

    // ----- control operations (also served under /_emulator/entra) -----

    /// Approves a pending device code on behalf of `username` (no password needed).
    pub fn approve_device_code(&self, user_code: &str, username: &str) -> Result<(), EntraError> {
        let user = self
            .user(username)
            .ok_or_else(|| EntraError::UnknownUser(username.to_owned()))?;
        self.set_device_state(user_code, DeviceState::Approved(user.username))
    }

    /// Declines a pending device code.
    pub fn decline_device_code(&self, user_code: &str) -> Result<(), EntraError> {
        self.set_device_state(user_code, DeviceState::Declined)
    }

    fn set_device_state(&self, user_code: &str, new_state: DeviceState) -> Result<(), EntraError> {
        let now = self.now();
        let mut state = self.state();
        let device = state
            .devices
            .values_mut()
            .find(|d| {
                d.user_code.eq_ignore_ascii_case(user_code.trim())
                    && d.state == DeviceState::Pending
                    && d.expires_at > now
            })
            .ok_or_else(|| EntraError::UnknownUserCode(user_code.to_owned()))?;
        device.state = new_state;
        Ok(())
    }

    /// Device codes issued so far, newest last.
    pub fn device_codes(&self) -> Vec<DeviceCodeInfo> {
        let now = self.now();
        let state = self.state();
        let mut list: Vec<DeviceCodeInfo> = state
            .devices
            .values()
            .map(|d| DeviceCodeInfo {
                user_code: d.user_code.clone(),
                client_id: d.client_id.to_string(),
                resource: d.access.resource.clone(),
                state: match (&d.state, d.expires_at <= now) {
                    (DeviceState::Redeemed, _) => "redeemed",
                    (_, true) => "expired",
                    (DeviceState::Pending, _) => "pending",
                    (DeviceState::Approved(_), _) => "approved",
                    (DeviceState::Declined, _) => "declined",
                },
                expires_at: d.expires_at,
            })
            .collect();
        list.sort_by_key(|d| d.expires_at);
        list
    }

    /// Revokes every refresh token of `username` (their next use fails with AADSTS50173).
    pub fn revoke_refresh_tokens(&self, username: &str) -> usize {
        let now = self.now();
        let mut state = self.state();
        let mut revoked = 0;
        for grant in state.refresh.values_mut() {
            if grant.username.eq_ignore_ascii_case(username) && grant.state == RefreshState::Active
            {
                grant.state = RefreshState::Revoked(now);
                revoked += 1;
            }
        }
        revoked
    }

    /// Changes the lifetime of access tokens issued from now on.
    pub fn set_token_lifetime(&self, lifetime: Duration) {
        self.state().token_lifetime = lifetime;
    }

    /// The lifetime of newly issued access tokens.
    pub fn token_lifetime(&self) -> Duration {
        self.state().token_lifetime
    }

    /// Expires every access token issued so far ("token expiry in the middle of a run");
    /// returns how many were still live.
    pub fn expire_access_tokens(&self) -> usize {
        let now = self.now().timestamp();
        let mut state = self.state();
        // Tokens past their own `exp` are refused anyway; forget them to bound memory.
        state.expired_early.retain(|_, exp| *exp > now);
        let live: Vec<(String, i64)> = state
            .live_access
            .drain()
            .filter(|(_, exp)| *exp > now)
            .collect();
        let n = live.len();
        state.expired_early.extend(live);
        n
    }

    /// Moves the authority's clock forward (tokens and device codes expire without waiting).
    pub fn advance_clock(&self, by: Duration) {
        let secs = i64::try_from(by.as_secs()).unwrap_or(i64::MAX / 2);
        self.inner
            .clock_offset_secs
            .fetch_add(secs, Ordering::Relaxed);
    }

    /// Issuance and refusal counts.
    pub fn counters(&self) -> EntraCounters {
        self.state().counters.clone()
    }

    /// Adds or replaces an app registration.
    pub fn add_app(&self, app: AppRegistration) {
        self.state().apps.insert(app.client_id, app);
    }

    /// Adds or replaces a user.
    pub fn add_user(&self, user: UserAccount) {
        self.state()
            .users
            .insert(user.username.to_ascii_lowercase(), user);
    }
}

/// A freshly signed access token.
#[derive(Debug, Clone)]
struct MintedToken {
    token: String,
    iat: i64,
    exp: i64,
    lifetime_secs: i64,
}
