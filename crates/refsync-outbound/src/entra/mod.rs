//! Unattended sign-in with Microsoft Entra ID: the grants refsync needs, each a
//! [`TokenFetcher`](crate::token::TokenFetcher) behind the shared [`TokenCache`].
//!
//! | grant | for | method |
//! |---|---|---|
//! | client credentials (app-only) | Dataverse (`https://ORG.crm.dynamics.com`), webhook registration (`https://api.partnercenter.microsoft.com`) | [`Entra::client_credentials`] |
//! | refresh token, rotated and persisted | the Referrals API (`https://api.partner.microsoft.com`), App+User only (partner-center.md §1.2) | [`Entra::refresh_token`] |
//! | device code (interactive, once) | `refsync login`: obtains the refresh token | [`Entra::device_code_login`] |
//! | password (ROPC), **legacy** | the 2019 connector's way; ends with Microsoft's MFA enforcement | [`Entra::password`] |
//!
//! References: partner-center.md §1.2 (Referrals audience, v1 ROPC sample, v2
//! scope used by third parties), §2.1 (registration API accepts app-only), crm.md
//! §1.2 (client credentials, `/.default`, secret in the form or HTTP Basic).

mod device_code;
mod grants;
mod wire;

pub use device_code::{DeviceCodeOptions, DeviceCodePrompt, LoginOutcome};

use crate::call::{ApiClient, ApiConfig, ApiConfigError, CLIENT_REQUEST_ID, RetryPolicy};
use crate::token::{CachedTokenSource, RefreshTokenVault, TokenCache, TokenKey};
use secrecy::SecretString;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;
use url::Url;

/// The Referrals API's token audience (partner-center.md §1.2).
pub const REFERRALS_RESOURCE: &str = "https://api.partner.microsoft.com";
/// The webhook registration API's token audience (partner-center.md §2.1).
pub const PARTNER_CENTER_RESOURCE: &str = "https://api.partnercenter.microsoft.com";
/// Entra's public-cloud authority.
pub const PUBLIC_CLOUD_AUTHORITY: &str = "https://login.microsoftonline.com";

/// Which Entra token endpoint a grant uses.
///
/// Configurable because the two sources disagree for the Referrals API: Microsoft
/// documents only a v1 ROPC request (`/oauth2/token` with
/// `resource=https://api.partner.microsoft.com`), while third-party integrations
/// use v2 (`/oauth2/v2.0/token` with `scope=https://api.partner.microsoft.com/.default`)
/// with MSAL's device-code flow, which Microsoft does not document for this API
/// (partner-center.md §1.2, marked unconfirmed). Both issue the same v1.0 access
/// token; v2 issues a refresh token only when `offline_access` is asked for, which
/// refsync always does for user grants.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum EndpointVersion {
    /// `/{tenant}/oauth2/token` with `resource=`.
    V1,
    /// `/{tenant}/oauth2/v2.0/token` with `scope=<resource>/.default`.
    #[default]
    V2,
}

/// A resource a token is asked for, and through which endpoint version.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Audience {
    resource: String,
    version: EndpointVersion,
}

impl Audience {
    /// `resource` (e.g. `https://contoso.crm.dynamics.com`) through `version`.
    pub fn new(resource: impl Into<String>, version: EndpointVersion) -> Self {
        Self {
            resource: resource.into().trim_end_matches('/').to_owned(),
            version,
        }
    }

    /// `resource` through the v2 endpoint.
    pub fn v2(resource: impl Into<String>) -> Self {
        Self::new(resource, EndpointVersion::V2)
    }

    /// `resource` through the v1 endpoint.
    pub fn v1(resource: impl Into<String>) -> Self {
        Self::new(resource, EndpointVersion::V1)
    }

    /// The resource (no trailing `/`).
    pub fn resource(&self) -> &str {
        &self.resource
    }

    /// The endpoint version.
    pub fn version(&self) -> EndpointVersion {
        self.version
    }

    /// `<resource>/.default`.
    pub(crate) fn default_scope(&self) -> String {
        format!("{}/.default", self.resource)
    }
}

/// How the client secret is presented (crm.md §1.2: both are accepted).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ClientAuth {
    /// `client_secret` in the form body.
    #[default]
    RequestBody,
    /// `Authorization: Basic` (RFC 6749 §2.3.1).
    HttpBasic,
}

/// A tenant segment that is safe in a URL path: a GUID, a domain, `common`,
/// `organizations`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Tenant(String);

impl Tenant {
    /// Checks the tenant (letters, digits, `.` and `-` only).
    pub fn parse(s: impl Into<String>) -> Result<Self, EntraConfigError> {
        let s = s.into();
        let s = s.trim().to_owned();
        if s.is_empty()
            || s.len() > 255
            || !s
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
        {
            return Err(EntraConfigError::Tenant(s));
        }
        Ok(Self(s))
    }

    /// The tenant as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Tenant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why an Entra set-up was refused.
#[derive(Debug, Clone, thiserror::Error)]
pub enum EntraConfigError {
    /// The tenant is not a safe path segment.
    #[error("tenant {0:?} is not a tenant id, a domain, `common` or `organizations`")]
    Tenant(String),
    /// The client id is empty.
    #[error("the client id is empty")]
    ClientId,
    /// The HTTP client could not be set up.
    #[error(transparent)]
    Api(#[from] ApiConfigError),
}

/// One app registration in one tenant.
#[derive(Debug, Clone)]
pub struct EntraApp {
    /// Authority base URL, e.g. [`PUBLIC_CLOUD_AUTHORITY`] (or an emulator's).
    pub authority: Url,
    /// The tenant.
    pub tenant: Tenant,
    /// Application (client) id.
    pub client_id: String,
    /// Client secret. When set it is sent with every grant, device code and
    /// refresh included, because Entra binds a confidential client's refresh
    /// tokens to its credentials; leave it unset for a public client.
    pub client_secret: Option<SecretString>,
    /// How the secret is sent.
    pub client_auth: ClientAuth,
}

impl EntraApp {
    /// An app with a secret sent in the form body.
    pub fn new(
        authority: Url,
        tenant: Tenant,
        client_id: impl Into<String>,
        client_secret: Option<SecretString>,
    ) -> Self {
        Self {
            authority,
            tenant,
            client_id: client_id.into(),
            client_secret,
            client_auth: ClientAuth::RequestBody,
        }
    }
}

/// The token endpoint's call policy: 15 s per attempt, 3 attempts within 30 s.
/// Only client-credentials and password requests are repeated after the server may
/// have seen them; a refresh-token request is not (a repeat would present a token
/// the first request already rotated away).
pub fn default_token_endpoint_config(authority: Url) -> ApiConfig {
    ApiConfig::new("entra", authority)
        .with_timeout(Duration::from_secs(15))
        .with_retry(RetryPolicy {
            max_attempts: 3,
            max_elapsed: Duration::from_secs(30),
            ..RetryPolicy::default()
        })
        .with_correlation_header(Some(CLIENT_REQUEST_ID))
}

/// Entra ID for one app registration: makes token sources over the shared cache.
#[derive(Clone)]
pub struct Entra {
    inner: Arc<EntraInner>,
}

pub(crate) struct EntraInner {
    pub(crate) app: EntraApp,
    pub(crate) endpoint: ApiClient,
    pub(crate) cache: TokenCache,
}

impl fmt::Debug for Entra {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Entra")
            .field("authority", &self.inner.app.authority.as_str())
            .field("tenant", &self.inner.app.tenant)
            .field("client_id", &self.inner.app.client_id)
            .finish_non_exhaustive()
    }
}

impl Entra {
    /// Entra for `app`, caching tokens in `cache`, with the default endpoint policy.
    pub fn new(app: EntraApp, cache: TokenCache) -> Result<Self, EntraConfigError> {
        let config = default_token_endpoint_config(app.authority.clone());
        Self::with_endpoint_config(app, cache, config)
    }

    /// Like [`Entra::new`] with an explicit call policy for the token endpoint
    /// (its `base_url` is replaced by the app's authority).
    pub fn with_endpoint_config(
        app: EntraApp,
        cache: TokenCache,
        mut config: ApiConfig,
    ) -> Result<Self, EntraConfigError> {
        if app.client_id.trim().is_empty() {
            return Err(EntraConfigError::ClientId);
        }
        config.base_url = app.authority.clone();
        let endpoint = ApiClient::new(config, None)?;
        Ok(Self {
            inner: Arc::new(EntraInner {
                app,
                endpoint,
                cache,
            }),
        })
    }

    /// The cache tokens are kept in.
    pub fn cache(&self) -> &TokenCache {
        &self.inner.cache
    }

    /// The cache key for `audience`.
    pub fn key(&self, audience: &Audience) -> TokenKey {
        self.inner.key(audience)
    }

    /// App-only tokens (client credentials) for `audience`.
    pub fn client_credentials(&self, audience: Audience) -> Arc<CachedTokenSource> {
        let key = self.key(&audience);
        let fetcher = grants::ClientCredentialsGrant::new(self.inner.clone(), audience);
        self.inner.cache.source(key, Arc::new(fetcher))
    }

    /// App+User tokens for `audience` from the refresh token in `vault`, which is
    /// replaced (before the access token is handed out) whenever Entra rotates it.
    /// A refused refresh token is reported loudly and shows in the key's health
    /// until `refsync login` stores a new one.
    pub fn refresh_token(
        &self,
        audience: Audience,
        vault: Arc<dyn RefreshTokenVault>,
    ) -> Arc<CachedTokenSource> {
        let key = self.key(&audience);
        let fetcher = grants::RefreshTokenGrant::new(self.inner.clone(), audience, vault);
        self.inner.cache.source(key, Arc::new(fetcher))
    }

    /// **Legacy.** App+User tokens by username and password (ROPC), as the 2019
    /// connector and Microsoft's Referrals API sample did (partner-center.md §1.2).
    /// Microsoft's mandatory MFA ends this grant for most tenants: prefer
    /// [`Entra::device_code_login`] once and [`Entra::refresh_token`] after.
    pub fn password(
        &self,
        audience: Audience,
        username: impl Into<String>,
        password: SecretString,
    ) -> Arc<CachedTokenSource> {
        let key = self.key(&audience);
        let fetcher =
            grants::PasswordGrant::new(self.inner.clone(), audience, username.into(), password);
        self.inner.cache.source(key, Arc::new(fetcher))
    }

    /// Interactive sign-in by device code (RFC 8628) for `audience`: requests a
    /// code, hands the prompt (URL, user code, message) to `prompt` so the CLI can
    /// print it, polls until the user approves, stores the refresh token in `vault`
    /// and puts the access token in the cache.
    pub async fn device_code_login(
        &self,
        audience: &Audience,
        vault: &dyn RefreshTokenVault,
        options: &DeviceCodeOptions,
        prompt: impl FnOnce(&DeviceCodePrompt) + Send,
    ) -> Result<LoginOutcome, crate::token::TokenError> {
        device_code::login(&self.inner, audience, vault, options, prompt).await
    }
}

impl EntraInner {
    pub(crate) fn key(&self, audience: &Audience) -> TokenKey {
        TokenKey {
            authority: self.app.authority.as_str().trim_end_matches('/').to_owned(),
            tenant: self.app.tenant.as_str().to_owned(),
            client_id: self.app.client_id.clone(),
            audience: audience.resource().to_owned(),
        }
    }

    /// `{tenant}/oauth2/token` or `{tenant}/oauth2/v2.0/token`.
    pub(crate) fn token_path(&self, version: EndpointVersion) -> String {
        match version {
            EndpointVersion::V1 => format!("{}/oauth2/token", self.app.tenant),
            EndpointVersion::V2 => format!("{}/oauth2/v2.0/token", self.app.tenant),
        }
    }

    /// `{tenant}/oauth2/devicecode` or `{tenant}/oauth2/v2.0/devicecode`.
    pub(crate) fn device_code_path(&self, version: EndpointVersion) -> String {
        match version {
            EndpointVersion::V1 => format!("{}/oauth2/devicecode", self.app.tenant),
            EndpointVersion::V2 => format!("{}/oauth2/v2.0/devicecode", self.app.tenant),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenants_must_be_path_safe() {
        for ok in [
            "organizations",
            "common",
            "contoso.onmicrosoft.com",
            "7d23e5ca-19dc-4eaa-aac8-5e6b559f0d1d",
        ] {
            assert!(Tenant::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a/b", "..%2f", "x?y", "a b"] {
            assert!(Tenant::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn audiences_drop_the_trailing_slash() {
        let a = Audience::v2("https://contoso.crm.dynamics.com/");
        assert_eq!(a.resource(), "https://contoso.crm.dynamics.com");
        assert_eq!(
            a.default_scope(),
            "https://contoso.crm.dynamics.com/.default"
        );
    }
}
