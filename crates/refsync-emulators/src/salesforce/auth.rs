//! OAuth 2.0 token endpoint and session checks (crm.md §2.1).
//!
//! `POST /services/oauth2/token` (form-encoded) accepts:
//! - `client_credentials`: `client_id` + `client_secret` (form or HTTP Basic); the
//!   session runs as the app's "Run As" user;
//! - `urn:ietf:params:oauth:grant-type:jwt-bearer`: an RS256 `assertion` whose
//!   `iss` is the consumer key, `sub` a username, `aud` a login URL or the
//!   instance URL, `exp` not more than three minutes in the past; the signature
//!   is checked against the certificate uploaded for the app;
//! - `password` (deprecated by Salesforce, kept for old clients).
//!
//! Errors are 400 `{"error","error_description"}` with Salesforce's codes and
//! descriptions. Access tokens look like real ones (`<org id>!<random>`), are
//! random, and stop working after `session_timeout_secs` without use
//! (Salesforce's inactivity timeout), after which the API answers 401
//! `INVALID_SESSION_ID`.

use super::Shared;
use super::ids::SfId;
use super::value::iso;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::{DateTime, TimeDelta, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;

/// The JWT-bearer grant type.
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// Allowed clock skew for a JWT `exp` (crm.md §2.1: "about 3 minutes").
const JWT_SKEW_SECS: i64 = 180;

/// One live session.
#[derive(Debug, Clone)]
struct Session {
    user: SfId,
    last_used: DateTime<Utc>,
}

/// Issued access tokens. `Debug` shows only how many there are.
#[derive(Default)]
pub struct Sessions {
    by_token: HashMap<String, Session>,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions")
            .field("count", &self.by_token.len())
            .finish()
    }
}

impl Sessions {
    /// Issues a token for `user`, forgetting sessions that have timed out.
    /// Fails only if the system random generator does.
    pub fn issue(
        &mut self,
        org_id: &SfId,
        user: SfId,
        now: DateTime<Utc>,
        timeout: TimeDelta,
    ) -> Result<String, aws_lc_rs::error::Unspecified> {
        self.by_token.retain(|_, s| s.last_used + timeout > now);
        let mut random = [0u8; 48];
        aws_lc_rs::rand::fill(&mut random)?;
        let token = format!(
            "{}!{}",
            &org_id.as_str()[..15],
            URL_SAFE_NO_PAD.encode(random)
        );
        self.by_token.insert(
            token.clone(),
            Session {
                user,
                last_used: now,
            },
        );
        Ok(token)
    }

    /// The user of a live session, extending it; `None` for unknown or timed-out tokens.
    pub fn touch(&mut self, token: &str, now: DateTime<Utc>, timeout: TimeDelta) -> Option<SfId> {
        let session = self.by_token.get_mut(token)?;
        if session.last_used + timeout <= now {
            self.by_token.remove(token);
            return None;
        }
        session.last_used = now;
        Some(session.user.clone())
    }

    /// Ends every session (as an admin revoking them in Setup would).
    pub fn revoke_all(&mut self) -> usize {
        let n = self.by_token.len();
        self.by_token.clear();
        n
    }
}

/// The token from `Authorization: Bearer …` (or the older `OAuth …` scheme).
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("oauth"))
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// Reads an RSA key for JWT verification from a PEM certificate or public key.
pub fn decoding_key(pem: &str) -> Result<DecodingKey, String> {
    if pem.contains("BEGIN CERTIFICATE") {
        let (_, parsed) =
            x509_parser::pem::parse_x509_pem(pem.as_bytes()).map_err(|e| e.to_string())?;
        let cert = parsed.parse_x509().map_err(|e| e.to_string())?;
        let spki = cert.public_key();
        match spki.parsed() {
            Ok(x509_parser::public_key::PublicKey::RSA(_)) => {}
            _ => return Err("the certificate's key is not RSA".to_owned()),
        }
        Ok(DecodingKey::from_rsa_der(&spki.subject_public_key.data))
    } else {
        DecodingKey::from_rsa_pem(pem.as_bytes()).map_err(|e| e.to_string())
    }
}

struct OAuthError {
    error: &'static str,
    description: &'static str,
}

impl OAuthError {
    fn new(error: &'static str, description: &'static str) -> Self {
        Self { error, description }
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        (
            StatusCode::BAD_REQUEST,
            Json(json!({ "error": self.error, "error_description": self.description })),
        )
            .into_response()
    }
}

const UNKNOWN_CLIENT: OAuthError = OAuthError {
    error: "invalid_client_id",
    description: "client identifier invalid",
};

#[derive(Debug, Deserialize)]
struct JwtClaims {
    iss: Option<String>,
    sub: Option<String>,
    aud: Option<serde_json::Value>,
    exp: Option<i64>,
}

/// The instance URL: configured, or `http://<Host>` as the client reached us.
pub(crate) fn instance_url(shared: &Shared, headers: &HeaderMap) -> String {
    if let Some(url) = &shared.config.instance_url {
        return url.trim_end_matches('/').to_owned();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    format!("http://{host}")
}

fn client_secret_from(
    form: &HashMap<String, String>,
    headers: &HeaderMap,
) -> (Option<String>, Option<String>) {
    if let (Some(id), Some(secret)) = (form.get("client_id"), form.get("client_secret")) {
        return (Some(id.clone()), Some(secret.clone()));
    }
    // RFC 6749 §2.3.1 HTTP Basic client authentication.
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| STANDARD.decode(b.trim()).ok())
        .and_then(|raw| String::from_utf8(raw).ok());
    match basic.as_deref().and_then(|b| b.split_once(':')) {
        Some((id, secret)) => (Some(id.to_owned()), Some(secret.to_owned())),
        None => (
            form.get("client_id").cloned(),
            form.get("client_secret").cloned(),
        ),
    }
}

/// `POST /services/oauth2/token`.
pub(crate) async fn token_endpoint(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    match grant(&shared, &headers, &form) {
        Ok(response) => response,
        Err(e) => e.into_response(),
    }
}

fn grant(
    shared: &Shared,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Result<Response, OAuthError> {
    let apps = &shared.config.connected_apps;
    let now = shared.clock.now();
    let instance = instance_url(shared, headers);
    let (app_index, username) = match form.get("grant_type").map(String::as_str) {
        Some("client_credentials") => {
            let (id, secret) = client_secret_from(form, headers);
            let index = app_by_key(shared, id.as_deref())?;
            check_secret(&apps[index], secret.as_deref())?;
            let user = apps[index]
                .client_credentials_user
                .clone()
                .ok_or(OAuthError::new(
                    "invalid_grant",
                    "no client credentials user enabled",
                ))?;
            (index, user)
        }
        Some("password") => {
            let (id, secret) = client_secret_from(form, headers);
            let index = app_by_key(shared, id.as_deref())?;
            check_secret(&apps[index], secret.as_deref())?;
            let failure = OAuthError::new("invalid_grant", "authentication failure");
            let username = form.get("username").ok_or(failure)?;
            let user = shared
                .config
                .users
                .iter()
                .find(|u| u.username.eq_ignore_ascii_case(username))
                .ok_or(OAuthError::new("invalid_grant", "authentication failure"))?;
            let given = form.get("password").map(String::as_str).unwrap_or("");
            // The password may carry the user's security token appended; the
            // emulator's users have none, so the password must match exactly.
            if user.password.as_ref().map(|p| p.expose()) != Some(given) {
                return Err(OAuthError::new("invalid_grant", "authentication failure"));
            }
            (index, user.username.clone())
        }
        Some(JWT_BEARER) => jwt_grant(shared, form, &instance, now)?,
        _ => {
            return Err(OAuthError::new(
                "unsupported_grant_type",
                "grant type not supported",
            ));
        }
    };
    let user_id = {
        let state = shared.lock();
        state.org.user_id(&username)
    }
    .ok_or(OAuthError::new(
        "invalid_grant",
        "user hasn't approved this consumer",
    ))?;
    let timeout = session_timeout(shared);
    let token = shared
        .lock()
        .sessions
        .issue(&shared.org_id, user_id.clone(), now, timeout)
        .map_err(|_| OAuthError::new("unknown_error", "retry your request"))?;
    let app = &apps[app_index];
    let id_url = format!("{instance}/id/{}/{}", shared.org_id, user_id);
    let issued_at = now.timestamp_millis().to_string();
    let mut body = json!({
        "access_token": token,
        "instance_url": instance,
        "id": id_url,
        "token_type": "Bearer",
        "issued_at": issued_at,
        "scope": app.scope,
    });
    if let Some(secret) = &app.consumer_secret
        && let Some(obj) = body.as_object_mut()
    {
        // Salesforce signs id + issued_at with the consumer secret so the client
        // can check the response came from the server it shares the secret with.
        let key =
            aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret.expose().as_bytes());
        let tag = aws_lc_rs::hmac::sign(&key, format!("{id_url}{issued_at}").as_bytes());
        obj.insert("signature".to_owned(), json!(STANDARD.encode(tag.as_ref())));
    }
    tracing::info!(app = %app.name, user = %username, at = %iso(now), "salesforce emulator issued a token");
    Ok((StatusCode::OK, Json(body)).into_response())
}

pub(crate) fn session_timeout(shared: &Shared) -> TimeDelta {
    TimeDelta::seconds(i64::try_from(shared.config.session_timeout_secs).unwrap_or(i64::MAX / 1000))
}

fn app_by_key(shared: &Shared, key: Option<&str>) -> Result<usize, OAuthError> {
    let key = key.ok_or(UNKNOWN_CLIENT)?;
    shared
        .config
        .connected_apps
        .iter()
        .position(|a| a.consumer_key == key)
        .ok_or(UNKNOWN_CLIENT)
}

fn check_secret(
    app: &super::config::ConnectedAppConfig,
    given: Option<&str>,
) -> Result<(), OAuthError> {
    let ok = match (&app.consumer_secret, given) {
        (Some(secret), Some(given)) => aws_lc_rs::constant_time::verify_slices_are_equal(
            secret.expose().as_bytes(),
            given.as_bytes(),
        )
        .is_ok(),
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(OAuthError::new(
            "invalid_client",
            "invalid client credentials",
        ))
    }
}

fn jwt_grant(
    shared: &Shared,
    form: &HashMap<String, String>,
    instance: &str,
    now: DateTime<Utc>,
) -> Result<(usize, String), OAuthError> {
    let invalid = || OAuthError::new("invalid_grant", "invalid assertion");
    let assertion = form.get("assertion").ok_or_else(invalid)?;
    let header = jsonwebtoken::decode_header(assertion).map_err(|_| invalid())?;
    if header.alg != Algorithm::RS256 {
        return Err(invalid());
    }
    // Which app signed it decides which key verifies it, so `iss` is read first
    // and trusted only once the signature has been checked with that app's key.
    let unverified =
        jsonwebtoken::dangerous::insecure_decode::<JwtClaims>(assertion).map_err(|_| invalid())?;
    let index = app_by_key(shared, unverified.claims.iss.as_deref())?;
    let key = shared.jwt_keys[index].as_ref().ok_or_else(invalid)?;
    let mut validation = Validation::new(Algorithm::RS256);
    // Expiry and audience are checked below against the emulator's clock and URLs.
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    let claims = jsonwebtoken::decode::<JwtClaims>(assertion, key, &validation)
        .map_err(|_| invalid())?
        .claims;
    let audiences: Vec<String> = match &claims.aud {
        Some(serde_json::Value::String(a)) => vec![a.clone()],
        Some(serde_json::Value::Array(a)) => a
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    };
    let accepted = |aud: &String| {
        let aud = aud.trim_end_matches('/');
        aud == instance
            || shared
                .config
                .login_urls
                .iter()
                .any(|l| l.trim_end_matches('/') == aud)
    };
    if !audiences.iter().any(accepted) {
        return Err(OAuthError::new("invalid_grant", "audience is invalid"));
    }
    match claims.exp {
        Some(exp) if exp + JWT_SKEW_SECS >= now.timestamp() => {}
        _ => {
            return Err(OAuthError::new(
                "invalid_grant",
                "expired authorization code",
            ));
        }
    }
    let sub = claims.sub.ok_or_else(invalid)?;
    let app = &shared.config.connected_apps[index];
    let known = shared
        .config
        .users
        .iter()
        .any(|u| u.username.eq_ignore_ascii_case(&sub));
    let approved = app.jwt_preauthorized_users.is_empty()
        || app
            .jwt_preauthorized_users
            .iter()
            .any(|u| u.eq_ignore_ascii_case(&sub));
    if !known || !approved {
        return Err(OAuthError::new(
            "invalid_grant",
            "user hasn't approved this consumer",
        ));
    }
    Ok((index, sub))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn sessions_expire_after_inactivity_and_activity_extends_them() {
        let org = SfId::parse("00D5g0000000001").unwrap();
        let user = SfId::generate("005", 1);
        let mut sessions = Sessions::default();
        let timeout = TimeDelta::minutes(10);
        let token = sessions
            .issue(&org, user.clone(), at("2025-01-01T00:00:00Z"), timeout)
            .unwrap();
        assert!(token.starts_with("00D5g0000000001!"));
        assert_eq!(
            sessions.touch(&token, at("2025-01-01T00:09:00Z"), timeout),
            Some(user.clone())
        );
        assert_eq!(
            sessions.touch(&token, at("2025-01-01T00:18:00Z"), timeout),
            Some(user)
        );
        assert_eq!(
            sessions.touch(&token, at("2025-01-01T00:28:00Z"), timeout),
            None
        );
        assert_eq!(
            sessions.touch("nope", at("2025-01-01T00:00:00Z"), timeout),
            None
        );
        assert!(!format!("{sessions:?}").contains(&token));
    }

    #[test]
    fn bearer_accepts_both_schemes() {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, "Bearer abc".parse().unwrap());
        assert_eq!(bearer(&h), Some("abc"));
        h.insert(header::AUTHORIZATION, "OAuth xyz".parse().unwrap());
        assert_eq!(bearer(&h), Some("xyz"));
        h.insert(header::AUTHORIZATION, "Basic xyz".parse().unwrap());
        assert_eq!(bearer(&h), None);
    }
}
