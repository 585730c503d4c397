//! The non-interactive grants — client credentials, refresh token (with rotation
//! persisted at once) and password — and the token request they share.

use super::wire::{self, ErrorBody, TokenResponse};
use super::{Audience, ClientAuth, EndpointVersion, EntraInner};
use crate::call::{ApiRequest, CallError, Idempotency};
use crate::token::health::report_refresh_refused;
use crate::token::{FetchedToken, RefreshTokenVault, ReloginReason, TokenError, TokenFetcher};
use async_trait::async_trait;
use base64::Engine;
use http::{HeaderValue, header};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// What a token-style endpoint answered, sorted.
pub(crate) enum Answer<T> {
    /// The success body (a token response, a device authorization).
    Granted(T),
    /// An OAuth error body (400/401).
    Refused(ErrorBody),
}

/// Lifetime assumed when a response omits `expires_in` (Entra's is about an hour).
const DEFAULT_LIFETIME: Duration = Duration::from_secs(3599);

/// Posts one form to a token-style endpoint and sorts the answer. `params` hold
/// the grant's own fields; client authentication and the audience are added here.
pub(crate) async fn post_form<T: DeserializeOwned>(
    entra: &EntraInner,
    path: String,
    audience: &Audience,
    params: &[(&str, &str)],
    idempotency: Idempotency,
) -> Result<Answer<T>, TokenError> {
    let app = &entra.app;
    let mut form: Vec<(&str, &str)> = params.to_vec();
    let scope;
    match audience.version() {
        EndpointVersion::V1 => form.push(("resource", audience.resource())),
        EndpointVersion::V2 => {
            // A grant that names its own scope (refresh: `offline_access` too) keeps it.
            let has_scope = params.iter().any(|(k, _)| *k == "scope");
            if !has_scope {
                scope = audience.default_scope();
                form.push(("scope", &scope));
            }
        }
    }
    let mut request = ApiRequest::post(path);
    match (&app.client_secret, app.client_auth) {
        (Some(secret), ClientAuth::HttpBasic) => {
            request =
                request.sensitive_header(header::AUTHORIZATION, basic_auth(&app.client_id, secret));
        }
        (Some(secret), ClientAuth::RequestBody) => {
            form.push(("client_id", &app.client_id));
            form.push(("client_secret", secret.expose_secret()));
        }
        (None, _) => form.push(("client_id", &app.client_id)),
    }
    let request = request
        .form(&form)
        .idempotency(idempotency)
        .accept_any_status();
    let response = entra
        .endpoint
        .send(request)
        .await
        .map_err(|e| endpoint_error(audience, &e))?;
    if response.status.is_success() {
        return response.json::<T>().map(Answer::Granted).map_err(|e| {
            TokenError::InvalidResponse {
                audience: audience.resource().to_owned(),
                // serde's message names the field and position, never the value.
                detail: format!("HTTP {}: {}", response.status, e),
            }
        });
    }
    match response.json::<ErrorBody>() {
        Ok(body) if body.error.is_some() && response.status.is_client_error() => {
            Ok(Answer::Refused(body))
        }
        _ => Err(TokenError::Endpoint {
            audience: audience.resource().to_owned(),
            detail: format!(
                "HTTP {} after {} attempt(s)",
                response.status, response.attempts
            ),
            transient: response.status.is_server_error() || response.status.as_u16() == 429,
        }),
    }
}

fn endpoint_error(audience: &Audience, e: &CallError) -> TokenError {
    TokenError::Endpoint {
        audience: audience.resource().to_owned(),
        detail: e.to_string(),
        transient: e.is_transient(),
    }
}

/// `Basic base64(urlencode(id):urlencode(secret))` (RFC 6749 §2.3.1), marked sensitive.
fn basic_auth(client_id: &str, secret: &SecretString) -> HeaderValue {
    let encode = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let pair = format!("{}:{}", encode(client_id), encode(secret.expose_secret()));
    let value = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    );
    let mut value =
        HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static("Basic"));
    value.set_sensitive(true);
    value
}

/// The access token of a response, with its lifetime.
pub(crate) fn fetched(response: &TokenResponse) -> FetchedToken {
    FetchedToken {
        access_token: response.access_token.clone(),
        expires_in: response.expires_in.unwrap_or(DEFAULT_LIFETIME),
        refresh_token_expires_at: response.refresh_token_expires_in.and_then(|d| {
            chrono::Duration::from_std(d)
                .ok()
                .map(|d| chrono::Utc::now() + d)
        }),
    }
}

pub(crate) fn refused(audience: &Audience, body: &ErrorBody) -> TokenError {
    TokenError::Refused {
        audience: audience.resource().to_owned(),
        error: body.error_name().to_owned(),
        aadsts: body.aadsts(),
        description: body.summary(),
    }
}

fn check_token_type(audience: &Audience, response: &TokenResponse) -> Result<(), TokenError> {
    match response.token_type.as_deref() {
        None => Ok(()),
        Some(t) if t.eq_ignore_ascii_case("bearer") => Ok(()),
        Some(t) => Err(TokenError::InvalidResponse {
            audience: audience.resource().to_owned(),
            detail: format!("token_type {t:?} is not Bearer"),
        }),
    }
}

/// App-only tokens (crm.md §1.2). Safe to repeat: nothing changes on the server.
pub(crate) struct ClientCredentialsGrant {
    entra: Arc<EntraInner>,
    audience: Audience,
}

impl fmt::Debug for ClientCredentialsGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCredentialsGrant")
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

impl ClientCredentialsGrant {
    pub(crate) fn new(entra: Arc<EntraInner>, audience: Audience) -> Self {
        Self { entra, audience }
    }
}

#[async_trait]
impl TokenFetcher for ClientCredentialsGrant {
    async fn fetch(&self) -> Result<FetchedToken, TokenError> {
        let path = self.entra.token_path(self.audience.version());
        match post_form::<TokenResponse>(
            &self.entra,
            path,
            &self.audience,
            &[("grant_type", "client_credentials")],
            Idempotency::Idempotent,
        )
        .await?
        {
            Answer::Granted(t) => {
                check_token_type(&self.audience, &t)?;
                Ok(fetched(&t))
            }
            Answer::Refused(body) => Err(refused(&self.audience, &body)),
        }
    }
}

/// **Legacy** ROPC: App+User tokens from a username and password. Microsoft's
/// sample for the Referrals API (partner-center.md §1.2) sends `scope=openid` on
/// v1; MFA enforcement ends this grant.
pub(crate) struct PasswordGrant {
    entra: Arc<EntraInner>,
    audience: Audience,
    username: String,
    password: SecretString,
}

impl fmt::Debug for PasswordGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasswordGrant")
            .field("audience", &self.audience)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

impl PasswordGrant {
    pub(crate) fn new(
        entra: Arc<EntraInner>,
        audience: Audience,
        username: String,
        password: SecretString,
    ) -> Self {
        Self {
            entra,
            audience,
            username,
            password,
        }
    }
}

#[async_trait]
impl TokenFetcher for PasswordGrant {
    async fn fetch(&self) -> Result<FetchedToken, TokenError> {
        let path = self.entra.token_path(self.audience.version());
        let mut params = vec![
            ("grant_type", "password"),
            ("username", self.username.as_str()),
            ("password", self.password.expose_secret()),
        ];
        if self.audience.version() == EndpointVersion::V1 {
            params.push(("scope", "openid"));
        }
        match post_form::<TokenResponse>(
            &self.entra,
            path,
            &self.audience,
            &params,
            Idempotency::Idempotent,
        )
        .await?
        {
            Answer::Granted(t) => {
                check_token_type(&self.audience, &t)?;
                Ok(fetched(&t))
            }
            Answer::Refused(body) => Err(refused(&self.audience, &body)),
        }
    }
}

/// App+User tokens from a stored refresh token, persisting each rotated one.
pub(crate) struct RefreshTokenGrant {
    entra: Arc<EntraInner>,
    audience: Audience,
    vault: Arc<dyn RefreshTokenVault>,
    memory: Mutex<Memory>,
}

/// What the grant remembers between fetches.
#[derive(Default)]
struct Memory {
    /// A rotated refresh token the vault failed to store: used (and stored) next time.
    unsaved: Option<SecretString>,
    /// The refresh token Entra last refused, and why: not presented again, so a dead
    /// sign-in costs one loud report rather than one per call.
    rejected: Option<(SecretString, TokenError)>,
    /// Whether an empty vault was already reported.
    missing_reported: bool,
}

impl fmt::Debug for RefreshTokenGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RefreshTokenGrant")
            .field("audience", &self.audience)
            .field("vault", &self.vault)
            .finish_non_exhaustive()
    }
}

impl RefreshTokenGrant {
    pub(crate) fn new(
        entra: Arc<EntraInner>,
        audience: Audience,
        vault: Arc<dyn RefreshTokenVault>,
    ) -> Self {
        Self {
            entra,
            audience,
            vault,
            memory: Mutex::new(Memory::default()),
        }
    }

    fn memory(&self) -> MutexGuard<'_, Memory> {
        self.memory
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn vault_error(&self, source: crate::token::VaultError) -> TokenError {
        TokenError::Vault {
            audience: self.audience.resource().to_owned(),
            source,
        }
    }

    /// Presents `current` once. `Ok(Err(..))` is Entra refusing the refresh token
    /// itself (sign-in needed); other refusals are errors.
    async fn redeem(
        &self,
        current: &SecretString,
        unsaved: bool,
    ) -> Result<Result<FetchedToken, (ErrorBody, ReloginReason)>, TokenError> {
        let path = self.entra.token_path(self.audience.version());
        let scope = format!("{} offline_access", self.audience.default_scope());
        let mut params = vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", current.expose_secret()),
        ];
        if self.audience.version() == EndpointVersion::V2 {
            params.push(("scope", &scope));
        }
        // Not repeated once sent: if Entra rotated the token and the answer was
        // lost, a repeat would present a token that no longer works.
        let answer: Answer<TokenResponse> = post_form(
            &self.entra,
            path,
            &self.audience,
            &params,
            Idempotency::NotIdempotent,
        )
        .await?;
        let response = match answer {
            Answer::Granted(t) => t,
            Answer::Refused(body) => {
                return match wire::relogin_reason(&body) {
                    Some(reason) => Ok(Err((body, reason))),
                    None => Err(refused(&self.audience, &body)),
                };
            }
        };
        check_token_type(&self.audience, &response)?;
        let to_store = match &response.refresh_token {
            Some(rotated) if rotated.expose_secret() != current.expose_secret() => Some(rotated),
            _ if unsaved => Some(current),
            _ => None,
        };
        if let Some(rotated) = to_store {
            // Persist before handing out the access token: the old refresh token may
            // already be dead, and this one is the only way back in.
            if let Err(e) = self.vault.store(rotated.clone()).await {
                tracing::error!(
                    audience = self.audience.resource(),
                    error = %e,
                    "could not store the rotated refresh token; keeping it in memory and retrying"
                );
                self.memory().unsaved = Some(rotated.clone());
                return Err(self.vault_error(e));
            }
            tracing::debug!(
                audience = self.audience.resource(),
                "rotated refresh token stored"
            );
        }
        let mut memory = self.memory();
        memory.unsaved = None;
        memory.rejected = None;
        Ok(Ok(fetched(&response)))
    }

    /// The refresh token to present, and whether it still has to be stored: an
    /// unsaved rotated one first, else the vault's.
    async fn current(&self) -> Result<(SecretString, bool), TokenError> {
        if let Some(unsaved) = self.memory().unsaved.clone() {
            return Ok((unsaved, true));
        }
        match self.vault.load().await.map_err(|e| self.vault_error(e))? {
            Some(token) => {
                self.memory().missing_reported = false;
                Ok((token, false))
            }
            None => {
                let first = !std::mem::replace(&mut self.memory().missing_reported, true);
                if first {
                    report_refresh_refused(
                        self.audience.resource(),
                        ReloginReason::Missing,
                        None,
                        None,
                    );
                }
                Err(TokenError::ReloginRequired {
                    audience: self.audience.resource().to_owned(),
                    reason: ReloginReason::Missing,
                    aadsts: None,
                    description: Some("no refresh token is stored".to_owned()),
                })
            }
        }
    }
}

#[async_trait]
impl TokenFetcher for RefreshTokenGrant {
    async fn fetch(&self) -> Result<FetchedToken, TokenError> {
        let mut reloaded = false;
        loop {
            let (current, unsaved) = self.current().await?;
            if let Some((rejected, error)) = &self.memory().rejected
                && rejected.expose_secret() == current.expose_secret()
            {
                return Err(error.clone());
            }
            let (body, reason) = match self.redeem(&current, unsaved).await? {
                Ok(token) => return Ok(token),
                Err(refusal) => refusal,
            };
            // Instances sharing one vault (PostgreSQL) may race: another one may have
            // redeemed this token and stored its successor meanwhile. Use that one
            // before declaring the sign-in dead.
            if !reloaded && !unsaved {
                reloaded = true;
                if let Ok(Some(latest)) = self.vault.load().await
                    && latest.expose_secret() != current.expose_secret()
                {
                    tracing::info!(
                        audience = self.audience.resource(),
                        "refresh token refused but another instance stored a newer one; using it"
                    );
                    continue;
                }
            }
            let error = TokenError::ReloginRequired {
                audience: self.audience.resource().to_owned(),
                reason,
                aadsts: body.aadsts(),
                description: body.summary(),
            };
            report_refresh_refused(
                self.audience.resource(),
                reason,
                body.aadsts(),
                body.summary().as_deref(),
            );
            let mut memory = self.memory();
            memory.rejected = Some((current, error.clone()));
            memory.unsaved = None;
            return Err(error);
        }
    }

    fn uses_refresh_token(&self) -> bool {
        true
    }
}
