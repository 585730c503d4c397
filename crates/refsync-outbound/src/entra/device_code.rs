//! `refsync login`: the device authorization grant (RFC 8628) against Entra ID.
//!
//! The service runs unattended, but the Referrals API takes only App+User tokens
//! (partner-center.md §1.2). So a person signs in once — on any browser, with MFA —
//! and refsync keeps the refresh token. Polling honours the server's `interval`,
//! backs off on `slow_down`, and ends on `expired_token`, `authorization_declined`
//! or `bad_verification_code`.

use super::grants::{self, Answer, post_form};
use super::wire::{DeviceAuthorization, TokenResponse};
use super::{Audience, EndpointVersion, EntraInner};
use crate::call::Idempotency;
use crate::token::{AccessToken, DeviceCodeOutcome, RefreshTokenVault, TokenError};
use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;
use std::time::Duration;
use tokio::time::Instant;

/// What the user is shown: where to go and which code to type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceCodePrompt {
    /// The page to open, e.g. `https://microsoft.com/devicelogin`.
    pub verification_uri: String,
    /// The code to type there (short-lived and useless without the user's sign-in).
    pub user_code: String,
    /// Entra's ready-made sentence combining both.
    pub message: String,
    /// How long the code can be redeemed.
    pub expires_in: Duration,
}

/// Knobs of the polling loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceCodeOptions {
    /// Polling interval when the server names none (RFC 8628 §3.2: 5 s).
    pub default_interval: Duration,
    /// Floor under the server's interval.
    pub min_interval: Duration,
    /// Added to the interval on each `slow_down` (RFC 8628 §3.5: 5 s).
    pub slow_down_increment: Duration,
    /// Longest the login waits, whatever the code's `expires_in` says.
    pub max_wait: Duration,
}

impl Default for DeviceCodeOptions {
    fn default() -> Self {
        Self {
            default_interval: Duration::from_secs(5),
            min_interval: Duration::from_secs(1),
            slow_down_increment: Duration::from_secs(5),
            max_wait: Duration::from_secs(15 * 60),
        }
    }
}

/// A completed sign-in.
#[derive(Debug, Clone)]
pub struct LoginOutcome {
    /// The access token, also placed in the cache.
    pub access_token: AccessToken,
    /// When the stored refresh token expires, if Entra said.
    pub refresh_token_expires_at: Option<DateTime<Utc>>,
}

pub(crate) async fn login(
    entra: &EntraInner,
    audience: &Audience,
    vault: &dyn RefreshTokenVault,
    options: &DeviceCodeOptions,
    prompt: impl FnOnce(&DeviceCodePrompt) + Send,
) -> Result<LoginOutcome, TokenError> {
    let aud = || audience.resource().to_owned();
    // v2 issues a refresh token only with `offline_access`; v1 always does.
    let scope = format!("{} offline_access", audience.default_scope());
    let mut params: Vec<(&str, &str)> = Vec::new();
    if audience.version() == EndpointVersion::V2 {
        params.push(("scope", &scope));
    }
    let authorization = match post_form::<DeviceAuthorization>(
        entra,
        entra.device_code_path(audience.version()),
        audience,
        &params,
        Idempotency::Idempotent,
    )
    .await?
    {
        Answer::Granted(a) => a,
        Answer::Refused(body) => return Err(grants::refused(audience, &body)),
    };
    let expires_in = authorization
        .expires_in
        .unwrap_or(Duration::from_secs(900))
        .min(options.max_wait);
    let shown = DeviceCodePrompt {
        message: authorization.message.clone().unwrap_or_else(|| {
            format!(
                "To sign in, use a web browser to open the page {} and enter the code {} to authenticate.",
                authorization.verification_uri, authorization.user_code
            )
        }),
        verification_uri: authorization.verification_uri.clone(),
        user_code: authorization.user_code.clone(),
        expires_in,
    };
    prompt(&shown);
    tracing::info!(
        audience = audience.resource(),
        verification_uri = %shown.verification_uri,
        "waiting for the device-code sign-in to be approved"
    );

    let deadline = Instant::now() + expires_in;
    let mut interval = authorization
        .interval
        .unwrap_or(options.default_interval)
        .max(options.min_interval);
    let mut poll = vec![
        ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
        ("device_code", authorization.device_code.expose_secret()),
    ];
    poll.extend(params.iter().copied());
    let response = loop {
        // RFC 8628 §3.4: wait `interval` before each poll, the first included.
        tokio::time::sleep(interval).await;
        if Instant::now() >= deadline {
            return Err(device_error(aud(), DeviceCodeOutcome::Expired));
        }
        // Not repeated by the call policy: redeeming an approved code uses it up.
        let answer = post_form::<TokenResponse>(
            entra,
            entra.token_path(audience.version()),
            audience,
            &poll,
            Idempotency::NotIdempotent,
        )
        .await;
        match answer {
            Ok(Answer::Granted(t)) => break t,
            Ok(Answer::Refused(body)) => match body.error_name() {
                "authorization_pending" => {}
                "slow_down" => {
                    interval += options.slow_down_increment;
                    tracing::debug!(
                        interval_ms = interval.as_millis() as u64,
                        "slow_down: polling less often"
                    );
                }
                "expired_token" => return Err(device_error(aud(), DeviceCodeOutcome::Expired)),
                "authorization_declined" | "access_denied" => {
                    return Err(device_error(aud(), DeviceCodeOutcome::Declined));
                }
                "bad_verification_code" => {
                    return Err(device_error(aud(), DeviceCodeOutcome::Unrecognised));
                }
                _ => return Err(grants::refused(audience, &body)),
            },
            // A network blip while the user is still typing is no reason to give up.
            Err(e) if e.is_transient() => {
                tracing::warn!(error = %e, "device-code poll failed; polling on");
            }
            Err(e) => return Err(e),
        }
    };

    let Some(refresh_token) = response.refresh_token.clone() else {
        return Err(TokenError::InvalidResponse {
            audience: aud(),
            detail: "the sign-in returned no refresh token (is offline_access allowed?)".into(),
        });
    };
    vault
        .store(refresh_token)
        .await
        .map_err(|source| TokenError::Vault {
            audience: aud(),
            source,
        })?;
    let fetched = grants::fetched(&response);
    let refresh_token_expires_at = fetched.refresh_token_expires_at;
    let access_token = entra.cache.insert(&entra.key(audience), fetched);
    crate::token::health::report_refresh_ok(audience.resource(), refresh_token_expires_at);
    tracing::info!(
        audience = audience.resource(),
        "signed in; refresh token stored"
    );
    Ok(LoginOutcome {
        access_token,
        refresh_token_expires_at,
    })
}

fn device_error(audience: String, outcome: DeviceCodeOutcome) -> TokenError {
    TokenError::DeviceCode { audience, outcome }
}
