//! Signing in to Salesforce (crm.md §2.1): the OAuth 2.0 client-credentials and
//! JWT-bearer grants as a [`TokenFetcher`], so tokens live in refsync-outbound's
//! [`TokenCache`](refsync_outbound::TokenCache) like every other API's.
//!
//! Salesforce answers with no `expires_in` (sessions end after the org's inactivity
//! timeout), so a token is kept for the configured `session_lifetime`; a session that
//! ends sooner is caught by the API client's "401 → fresh token → retry once".
//! Each token response also names the org's `instance_url`, where the REST API lives;
//! the latest one is published through [`InstanceUrl`].

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use refsync_outbound::call::{ApiClient, ApiRequest, Idempotency};
use refsync_outbound::token::{FetchedToken, TokenError, TokenFetcher};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use url::Url;

/// The JWT-bearer grant type (crm.md §2.1).
const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// Lifetime of a JWT assertion: Salesforce wants a short `exp` (it allows about three
/// minutes of clock skew, crm.md §2.1), and the assertion is used once, at once.
const ASSERTION_LIFETIME_SECS: i64 = 120;

/// The instance URL the latest token response named, shared with the REST client.
#[derive(Debug, Clone, Default)]
pub(crate) struct InstanceUrl(Arc<Mutex<Option<Url>>>);

impl InstanceUrl {
    /// The latest instance URL, once a token has been fetched.
    pub(crate) fn get(&self) -> Option<Url> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn set(&self, url: Url) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(url);
    }
}

/// How the connector proves who it is.
pub(crate) enum Credentials {
    /// Consumer key and secret.
    ClientSecret {
        /// The consumer key.
        client_id: String,
        /// The consumer secret.
        secret: SecretString,
    },
    /// A signed assertion for a pre-authorised user.
    JwtBearer {
        /// The consumer key (`iss`).
        client_id: String,
        /// The user (`sub`).
        username: String,
        /// The audience (`aud`).
        audience: String,
        /// The RSA private key.
        key: EncodingKey,
    },
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::ClientSecret { client_id, .. } => f
                .debug_struct("ClientSecret")
                .field("client_id", client_id)
                .finish_non_exhaustive(),
            Credentials::JwtBearer {
                client_id,
                username,
                audience,
                ..
            } => f
                .debug_struct("JwtBearer")
                .field("client_id", client_id)
                .field("username", username)
                .field("audience", audience)
                .finish_non_exhaustive(),
        }
    }
}

/// Reads an RSA private key (PKCS#1 or PKCS#8 PEM) for signing assertions. Errors
/// never quote the file.
pub(crate) fn read_private_key(path: &Path) -> Result<EncodingKey, String> {
    let pem = std::fs::read(path).map_err(|e| e.to_string())?;
    EncodingKey::from_rsa_pem(&pem).map_err(|_| {
        "not an RSA private key in PEM form (BEGIN PRIVATE KEY / BEGIN RSA PRIVATE KEY)".to_owned()
    })
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    exp: i64,
}

/// A successful token response (crm.md §2.1). No `expires_in`, no refresh token.
#[derive(Deserialize)]
struct TokenResponse {
    access_token: SecretString,
    instance_url: String,
    #[serde(default)]
    token_type: Option<String>,
}

/// `{"error","error_description"}` (crm.md §2.1).
#[derive(Deserialize, Default)]
struct ErrorBody {
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    error_description: Option<String>,
}

/// A Salesforce grant: posts to `<login_url>/services/oauth2/token`.
pub(crate) struct SalesforceGrant {
    endpoint: ApiClient,
    credentials: Credentials,
    session_lifetime: Duration,
    /// `http` is accepted for the instance only when the login URL is `http` too
    /// (a local emulator); a real org's token response never downgrades the scheme.
    allow_http: bool,
    audience_label: String,
    instance: InstanceUrl,
}

impl fmt::Debug for SalesforceGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SalesforceGrant")
            .field("endpoint", &self.endpoint)
            .field("credentials", &self.credentials)
            .finish_non_exhaustive()
    }
}

impl SalesforceGrant {
    /// A grant posting through `endpoint` (an unauthenticated client for the login URL).
    pub(crate) fn new(
        endpoint: ApiClient,
        credentials: Credentials,
        session_lifetime: Duration,
        audience_label: String,
        instance: InstanceUrl,
    ) -> Self {
        let allow_http = endpoint.base_url().scheme() == "http";
        Self {
            endpoint,
            credentials,
            session_lifetime,
            allow_http,
            audience_label,
            instance,
        }
    }

    fn form(&self) -> Result<Vec<(&'static str, String)>, TokenError> {
        Ok(match &self.credentials {
            Credentials::ClientSecret { client_id, secret } => vec![
                ("grant_type", "client_credentials".to_owned()),
                ("client_id", client_id.clone()),
                ("client_secret", secret.expose_secret().to_owned()),
            ],
            Credentials::JwtBearer {
                client_id,
                username,
                audience,
                key,
            } => {
                let claims = Claims {
                    iss: client_id,
                    sub: username,
                    aud: audience,
                    exp: chrono::Utc::now().timestamp() + ASSERTION_LIFETIME_SECS,
                };
                let assertion = jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, key)
                    .map_err(|e| TokenError::Endpoint {
                        audience: self.audience_label.clone(),
                        detail: format!("cannot sign the JWT assertion: {e}"),
                        transient: false,
                    })?;
                vec![
                    ("grant_type", JWT_BEARER.to_owned()),
                    ("assertion", assertion),
                ]
            }
        })
    }

    fn instance_url(&self, text: &str) -> Result<Url, TokenError> {
        let invalid = |why: &str| TokenError::InvalidResponse {
            audience: self.audience_label.clone(),
            detail: format!("instance_url {why}"),
        };
        let mut url = Url::parse(text.trim()).map_err(|_| invalid("is not a URL"))?;
        let scheme_ok = url.scheme() == "https" || (self.allow_http && url.scheme() == "http");
        if !scheme_ok || url.host_str().is_none() {
            return Err(invalid("must be an https URL"));
        }
        url.set_path("/");
        url.set_query(None);
        url.set_fragment(None);
        Ok(url)
    }
}

#[async_trait::async_trait]
impl TokenFetcher for SalesforceGrant {
    async fn fetch(&self) -> Result<FetchedToken, TokenError> {
        let form = self.form()?;
        let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        // Asking again for a token changes nothing on the server: safe to retry.
        let request = ApiRequest::post("services/oauth2/token")
            .form(&pairs)
            .idempotency(Idempotency::Idempotent)
            .accept_any_status();
        let response = self
            .endpoint
            .send(request)
            .await
            .map_err(|e| TokenError::Endpoint {
                audience: self.audience_label.clone(),
                detail: e.to_string(),
                transient: e.is_transient(),
            })?;
        if response.status.is_success() {
            let body: TokenResponse = response.json().map_err(|e| TokenError::InvalidResponse {
                audience: self.audience_label.clone(),
                // serde names the field and position, never the value.
                detail: e.to_string(),
            })?;
            if let Some(t) = body.token_type.as_deref()
                && !t.eq_ignore_ascii_case("bearer")
            {
                return Err(TokenError::InvalidResponse {
                    audience: self.audience_label.clone(),
                    detail: format!("token_type {t:?} is not Bearer"),
                });
            }
            let instance = self.instance_url(&body.instance_url)?;
            self.instance.set(instance);
            return Ok(FetchedToken {
                access_token: body.access_token,
                expires_in: self.session_lifetime,
                refresh_token_expires_at: None,
            });
        }
        let body: ErrorBody = response.json().unwrap_or_default();
        match body.error {
            Some(error) if response.status.is_client_error() => Err(TokenError::Refused {
                audience: self.audience_label.clone(),
                error,
                aadsts: None,
                description: body.error_description.map(|d| {
                    d.lines()
                        .next()
                        .unwrap_or_default()
                        .chars()
                        .take(300)
                        .collect()
                }),
            }),
            _ => Err(TokenError::Endpoint {
                audience: self.audience_label.clone(),
                detail: format!(
                    "HTTP {} after {} attempt(s)",
                    response.status, response.attempts
                ),
                transient: response.status.is_server_error() || response.status.as_u16() == 429,
            }),
        }
    }
}
