//! Access tokens: RS256 JWTs signed with a key generated at start-up, and their
//! validation by the emulated resource servers (Partner Center, Dataverse, …).
//!
//! Claims follow Entra's v1.0 access tokens, which is what Partner Center and
//! Dataverse receive whichever endpoint issued them: `iss` is
//! `https://sts.windows.net/{tid}/`, `aud` the resource without `/.default`.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

/// What kind of caller a token represents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenKind {
    /// App-only (client credentials): `idtyp = app`.
    App,
    /// A user signed in through an app ("App+User", delegated): `idtyp = user`.
    User,
}

/// Which tokens a resource server accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcceptedTokens {
    /// Only app-only tokens.
    AppOnly,
    /// Only App+User (delegated) tokens — the Referrals API (partner-center.md §1.2).
    AppPlusUser,
    /// Either kind — the webhook registration API (partner-center.md §2.1) and Dataverse.
    Any,
}

impl AcceptedTokens {
    fn accepts(self, kind: TokenKind) -> bool {
        matches!(
            (self, kind),
            (AcceptedTokens::Any, _)
                | (AcceptedTokens::AppOnly, TokenKind::App)
                | (AcceptedTokens::AppPlusUser, TokenKind::User)
        )
    }
}

/// The claims of an access token this authority issued.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenClaims {
    /// Audience: the resource, e.g. `https://api.partner.microsoft.com`.
    pub aud: String,
    /// Issuer: `https://sts.windows.net/{tid}/`.
    pub iss: String,
    /// Issued at (Unix seconds).
    pub iat: i64,
    /// Not before (Unix seconds).
    pub nbf: i64,
    /// Expiry (Unix seconds).
    pub exp: i64,
    /// Tenant id.
    pub tid: String,
    /// The client application's id.
    pub appid: String,
    /// The client application's display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_displayname: Option<String>,
    /// `app` or `user`.
    pub idtyp: TokenKind,
    /// Object id of the user, or of the app's service principal.
    pub oid: String,
    /// Subject (same as `oid` here).
    pub sub: String,
    /// The user's UPN (user tokens only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upn: Option<String>,
    /// The user's UPN again, as v1 tokens carry it (user tokens only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unique_name: Option<String>,
    /// The user's display name (user tokens only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Delegated scopes, space separated (user tokens only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scp: Option<String>,
    /// Application roles (app tokens only; omitted when none are assigned).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<String>>,
    /// Unique token id (lets the authority expire tokens early).
    pub uti: String,
    /// Token format version.
    pub ver: String,
}

impl TokenClaims {
    /// True for App+User (delegated) tokens.
    pub fn is_user(&self) -> bool {
        self.idtyp == TokenKind::User
    }
}

/// Most tokens whose signature check is remembered; a client holds one or two
/// at a time, so this only bounds a flood of distinct forged ones.
const VERIFIED_CACHE_CAPACITY: usize = 1024;

/// The RSA key tokens are signed with.
pub(crate) struct SigningKey {
    encoding: EncodingKey,
    decoding: DecodingKey,
    kid: String,
    /// Tokens whose signature already checked out, with their claims: a resource
    /// server sees the same token on every call until it expires, and an RSA
    /// verification plus a JSON decode per request was a visible share of the
    /// emulators' CPU. Only the signature is remembered; times, audience and early
    /// expiry are checked on every call by the caller.
    verified: Mutex<HashMap<String, TokenClaims>>,
}

impl SigningKey {
    /// Generates a fresh 2048-bit RSA key (aws-lc-rs through rcgen).
    pub(crate) fn generate() -> Result<Self, String> {
        let pair =
            rcgen::KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048)
                .map_err(|e| format!("RSA key generation failed: {e}"))?;
        let encoding = EncodingKey::from_rsa_pem(pair.serialize_pem().as_bytes())
            .map_err(|e| format!("RSA key not usable for signing: {e}"))?;
        let public = pair.public_key_raw().to_vec();
        let decoding = DecodingKey::from_rsa_der(&public);
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &public);
        let kid = base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            &digest.as_ref()[..20],
        );
        Ok(Self {
            encoding,
            decoding,
            kid,
            verified: Mutex::default(),
        })
    }

    pub(crate) fn sign<T: Serialize>(&self, claims: &T) -> Result<String, String> {
        let mut header = Header::new(Algorithm::RS256);
        header.typ = Some("JWT".to_owned());
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding).map_err(|e| e.to_string())
    }

    /// Checks the signature and decodes the claims; time and audience are checked by the caller.
    pub(crate) fn verify(&self, token: &str) -> Result<TokenClaims, BearerErrorKind> {
        if let Some(claims) = self.verified_cache().get(token) {
            return Ok(claims.clone());
        }
        let claims = self.verify_signature(token)?;
        let mut cache = self.verified_cache();
        if cache.len() >= VERIFIED_CACHE_CAPACITY {
            cache.clear();
        }
        cache.insert(token.to_owned(), claims.clone());
        Ok(claims)
    }

    fn verified_cache(&self) -> MutexGuard<'_, HashMap<String, TokenClaims>> {
        // Only whole entries are ever inserted, so a poisoned map is still correct.
        self.verified
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn verify_signature(&self, token: &str) -> Result<TokenClaims, BearerErrorKind> {
        let mut validation = Validation::new(Algorithm::RS256);
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        jsonwebtoken::decode::<TokenClaims>(token, &self.decoding, &validation)
            .map(|data| data.claims)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::InvalidSignature
                | jsonwebtoken::errors::ErrorKind::InvalidAlgorithm => {
                    BearerErrorKind::BadSignature
                }
                _ => BearerErrorKind::Malformed,
            })
    }
}

/// Why a bearer token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BearerErrorKind {
    /// No `Authorization: Bearer …` header.
    Missing,
    /// Not a JWT this authority could read.
    Malformed,
    /// Signed with another key (or tampered with).
    BadSignature,
    /// Past `exp`, or expired early through the control API.
    Expired,
    /// Before `nbf`.
    NotYetValid,
    /// Issued for another resource.
    WrongAudience,
    /// Issued by another tenant.
    WrongIssuer,
    /// Valid, but app-only where App+User is required or the reverse.
    WrongTokenKind,
}

/// A refused bearer token: 401 with a `WWW-Authenticate: Bearer …` challenge, or
/// 403 when the token is valid but of the wrong kind. Emulators that answer with a
/// body of their own use [`BearerError::status`] and [`BearerError::www_authenticate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BearerError {
    kind: BearerErrorKind,
    description: String,
    challenge: String,
}

impl BearerError {
    pub(crate) fn new(
        kind: BearerErrorKind,
        description: impl Into<String>,
        authorization_uri: &str,
        resource: &str,
    ) -> Self {
        let description = description.into();
        let challenge = match kind {
            // RFC 6750 §3.1: a request without credentials gets a bare challenge.
            BearerErrorKind::Missing => format!(
                "Bearer authorization_uri=\"{authorization_uri}\", resource_id=\"{resource}\""
            ),
            BearerErrorKind::WrongTokenKind => format!(
                "Bearer authorization_uri=\"{authorization_uri}\", resource_id=\"{resource}\", error=\"insufficient_scope\", error_description=\"{description}\""
            ),
            _ => format!(
                "Bearer authorization_uri=\"{authorization_uri}\", resource_id=\"{resource}\", error=\"invalid_token\", error_description=\"{description}\""
            ),
        };
        Self {
            kind,
            description,
            challenge,
        }
    }

    /// What was wrong.
    pub fn kind(&self) -> BearerErrorKind {
        self.kind
    }

    /// A human-readable reason (never contains the token).
    pub fn description(&self) -> &str {
        &self.description
    }

    /// 403 for a valid token of the wrong kind, 401 otherwise.
    pub fn status(&self) -> StatusCode {
        match self.kind {
            BearerErrorKind::WrongTokenKind => StatusCode::FORBIDDEN,
            _ => StatusCode::UNAUTHORIZED,
        }
    }

    /// The `WWW-Authenticate` header value.
    pub fn www_authenticate(&self) -> &str {
        &self.challenge
    }

    /// The response with `body` (anything an emulator can answer with) and the challenge header.
    pub fn into_response_with(self, body: impl IntoResponse) -> Response {
        let mut response = (self.status(), body).into_response();
        if let Ok(value) = HeaderValue::from_str(&self.challenge) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, value);
        }
        response
    }
}

impl std::fmt::Display for BearerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.description)
    }
}

impl std::error::Error for BearerError {}

impl IntoResponse for BearerError {
    /// An empty body with the challenge, as Dataverse answers an unauthenticated call.
    fn into_response(self) -> Response {
        self.into_response_with(())
    }
}

/// The bearer token in `Authorization`, if there is one.
pub(crate) fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
        .filter(|t| !t.is_empty())
}

/// Compares audiences the way resource servers do: a trailing `/` does not matter.
pub(crate) fn same_audience(a: &str, b: &str) -> bool {
    a.trim_end_matches('/')
        .eq_ignore_ascii_case(b.trim_end_matches('/'))
}

/// Checks time-dependent claims at `now`.
pub(crate) fn check_times(
    claims: &TokenClaims,
    now: DateTime<Utc>,
    leeway_secs: i64,
) -> Result<(), BearerErrorKind> {
    let t = now.timestamp();
    if t >= claims.exp + leeway_secs {
        return Err(BearerErrorKind::Expired);
    }
    if t + leeway_secs < claims.nbf {
        return Err(BearerErrorKind::NotYetValid);
    }
    Ok(())
}

pub(crate) fn accepts(accepted: AcceptedTokens, kind: TokenKind) -> bool {
    accepted.accepts(kind)
}
