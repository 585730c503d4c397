//! Partner Center sign-in: the Referrals API accepts only App+User tokens
//! (partner-center.md §1.2), so refsync signs in once as a person (`refsync login`,
//! device code) and keeps the refresh token — encrypted with `store.encryption_key`
//! — in the store, where every instance finds it and where each rotated token
//! replaces the last before it is used. The legacy password grant is still
//! offered, with a warning, because the seed documents it.

use crate::config::{Config, SignIn};
use anyhow::{Context, bail};
use async_trait::async_trait;
use aws_lc_rs::aead::{AES_256_GCM, Aad, NONCE_LEN, Nonce, RandomizedNonceKey};
use base64::Engine;
use chrono::Utc;
use refsync_outbound::entra::{
    DeviceCodeOptions, DeviceCodePrompt, LoginOutcome, REFERRALS_RESOURCE,
};
use refsync_outbound::token::CachedTokenSource;
use refsync_outbound::token::{RefreshTokenVault, VaultError};
use refsync_outbound::{Audience, Entra, EntraApp, Tenant, TokenCache};
use refsync_store::Store;
use secrecy::{ExposeSecret, SecretString};
use std::fmt;
use std::sync::Arc;
use url::Url;

/// The store's name for the Partner Center refresh token.
pub const REFRESH_TOKEN_SECRET: &str = "partner_center.refresh_token";

/// Format byte leading every ciphertext, so the scheme can change later.
const FORMAT_V1: u8 = 1;

/// The audience of App+User tokens for the Referrals API (v2 endpoint, so the
/// device-code sign-in can ask for `offline_access`).
pub fn referrals_audience() -> Audience {
    Audience::v2(REFERRALS_RESOURCE)
}

/// The configured app registration, with a token cache of its own.
pub fn partner_center_entra(config: &Config) -> anyhow::Result<Entra> {
    let pc = &config.partner_center;
    if pc.client_id.is_empty() {
        bail!("partner_center.client_id is not set");
    }
    let authority = Url::parse(&pc.authority_url).context("partner_center.authority_url")?;
    let tenant = Tenant::parse(pc.tenant.clone()).context("partner_center.tenant")?;
    let secret = pc
        .client_secret
        .as_ref()
        .map(|s| SecretString::from(s.expose().to_owned()));
    Ok(Entra::new(
        EntraApp::new(authority, tenant, pc.client_id.clone(), secret),
        TokenCache::new(),
    )?)
}

/// AES-256-GCM key for secrets at rest, from `store.encryption_key` (32 bytes, base64).
pub struct EncryptionKey(RandomizedNonceKey);

impl fmt::Debug for EncryptionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EncryptionKey([redacted])")
    }
}

/// Why a secret could not be sealed or opened. Never carries the secret or the key.
#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    /// No key configured.
    #[error(
        "store.encryption_key is not set: generate 32 random bytes (`openssl rand -base64 32`) and set REFSYNC_STORE__ENCRYPTION_KEY or store.encryption_key_file"
    )]
    MissingKey,
    /// The key is not 32 bytes of base64.
    #[error("store.encryption_key must be 32 bytes, base64-encoded")]
    BadKey,
    /// Decryption failed: another key, or a damaged record.
    #[error(
        "the stored {0} cannot be decrypted with store.encryption_key (a different key?); run `refsync login` again"
    )]
    Undecryptable(String),
}

impl EncryptionKey {
    /// Reads the key from the configuration.
    pub fn from_config(config: &Config) -> Result<Self, SecretsError> {
        let encoded = config
            .store
            .encryption_key
            .as_ref()
            .ok_or(SecretsError::MissingKey)?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded.expose().trim())
            .map_err(|_| SecretsError::BadKey)?;
        if bytes.len() != 32 {
            return Err(SecretsError::BadKey);
        }
        RandomizedNonceKey::new(&AES_256_GCM, &bytes)
            .map(Self)
            .map_err(|_| SecretsError::BadKey)
    }

    /// `FORMAT_V1 ‖ nonce ‖ ciphertext+tag`; the secret's name is bound in as AAD so
    /// one record cannot be swapped for another.
    fn seal(&self, name: &str, plaintext: &str) -> Result<Vec<u8>, SecretsError> {
        let mut in_out = plaintext.as_bytes().to_vec();
        let nonce = self
            .0
            .seal_in_place_append_tag(Aad::from(name.as_bytes()), &mut in_out)
            .map_err(|_| SecretsError::BadKey)?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + in_out.len());
        out.push(FORMAT_V1);
        out.extend_from_slice(nonce.as_ref());
        out.extend_from_slice(&in_out);
        Ok(out)
    }

    fn open(&self, name: &str, sealed: &[u8]) -> Result<SecretString, SecretsError> {
        let undecryptable = || SecretsError::Undecryptable(name.to_owned());
        let (format, rest) = sealed.split_first().ok_or_else(undecryptable)?;
        if *format != FORMAT_V1 || rest.len() < NONCE_LEN {
            return Err(undecryptable());
        }
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| undecryptable())?;
        let mut in_out = ciphertext.to_vec();
        let plaintext = self
            .0
            .open_in_place(nonce, Aad::from(name.as_bytes()), &mut in_out)
            .map_err(|_| undecryptable())?;
        let text = String::from_utf8(plaintext.to_vec()).map_err(|_| undecryptable())?;
        Ok(SecretString::from(text))
    }
}

/// The refresh token, encrypted, in the store.
pub struct StoreVault {
    store: Arc<dyn Store>,
    key: EncryptionKey,
}

impl fmt::Debug for StoreVault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreVault")
            .field("secret", &REFRESH_TOKEN_SECRET)
            .finish_non_exhaustive()
    }
}

impl StoreVault {
    /// A vault over `store`, sealing with `key`.
    pub fn new(store: Arc<dyn Store>, key: EncryptionKey) -> Self {
        Self { store, key }
    }
}

#[async_trait]
impl RefreshTokenVault for StoreVault {
    async fn load(&self) -> Result<Option<SecretString>, VaultError> {
        let Some(stored) = self
            .store
            .get_secret(REFRESH_TOKEN_SECRET)
            .await
            .map_err(|e| VaultError(format!("reading the refresh token: {e}")))?
        else {
            return Ok(None);
        };
        self.key
            .open(REFRESH_TOKEN_SECRET, &stored.ciphertext)
            .map(Some)
            .map_err(|e| VaultError(e.to_string()))
    }

    async fn store(&self, refresh_token: SecretString) -> Result<(), VaultError> {
        let sealed = self
            .key
            .seal(REFRESH_TOKEN_SECRET, refresh_token.expose_secret())
            .map_err(|e| VaultError(e.to_string()))?;
        self.store
            .put_secret(REFRESH_TOKEN_SECRET, sealed, Utc::now())
            .await
            .map_err(|e| VaultError(format!("saving the refresh token: {e}")))
    }
}

/// App+User tokens for the Referrals API, by the configured `partner_center.sign_in`.
pub fn referrals_token_source(
    config: &Config,
    entra: &Entra,
    store: Arc<dyn Store>,
) -> anyhow::Result<Arc<CachedTokenSource>> {
    let pc = &config.partner_center;
    Ok(match pc.sign_in {
        SignIn::RefreshToken => {
            let vault = StoreVault::new(store, EncryptionKey::from_config(config)?);
            entra.refresh_token(referrals_audience(), Arc::new(vault))
        }
        SignIn::Password => {
            let (Some(username), Some(password)) = (&pc.username, &pc.password) else {
                bail!(
                    "partner_center.sign_in = \"password\" needs partner_center.username and a password (REFSYNC_PARTNER_CENTER__PASSWORD or password_file)"
                );
            };
            tracing::warn!(
                "signing in to Partner Center with a stored password (legacy): Microsoft's MFA enforcement ends this grant; run `refsync login` and set sign_in = \"refresh_token\""
            );
            entra.password(
                referrals_audience(),
                username.clone(),
                SecretString::from(password.expose().to_owned()),
            )
        }
    })
}

/// `refsync login`: the device-code sign-in; the refresh token goes to the store,
/// encrypted. `prompt` shows the user where to go and which code to type.
pub async fn run_login(
    config: &Config,
    store: Arc<dyn Store>,
    options: &DeviceCodeOptions,
    prompt: impl FnOnce(&DeviceCodePrompt) + Send,
) -> anyhow::Result<LoginOutcome> {
    // Check the key before asking a person to sign in, not after.
    let vault = StoreVault::new(store, EncryptionKey::from_config(config)?);
    let entra = partner_center_entra(config)?;
    let outcome = entra
        .device_code_login(&referrals_audience(), &vault, options, prompt)
        .await
        .context("device-code sign-in")?;
    Ok(outcome)
}

/// What `refsync status` says about the Partner Center sign-in.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SignInStatus {
    /// `refresh_token` or `password`.
    pub method: &'static str,
    /// Whether a refresh token is stored (refresh-token sign-in only).
    pub refresh_token_stored: bool,
    /// When it was last written: the login, or the last rotation.
    pub refresh_token_updated_at: Option<chrono::DateTime<Utc>>,
}

/// Reads [`SignInStatus`] from the store (without decrypting anything).
pub async fn read_sign_in_status(
    config: &Config,
    store: &dyn Store,
) -> anyhow::Result<SignInStatus> {
    let stored = store.get_secret(REFRESH_TOKEN_SECRET).await?;
    Ok(SignInStatus {
        method: match config.partner_center.sign_in {
            SignIn::RefreshToken => "refresh_token",
            SignIn::Password => "password",
        },
        refresh_token_stored: stored.is_some(),
        refresh_token_updated_at: stored.map(|s| s.updated_at),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    fn key(b64: &str) -> Result<EncryptionKey, SecretsError> {
        let mut config = Config::default();
        config.store.encryption_key = Some(Secret::new(b64));
        EncryptionKey::from_config(&config)
    }

    const KEY_A: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    const KEY_B: &str = "HxwdHhsaGRgXFhUUExIREA8ODQwLCgkIBwYFBAMCAQA=";

    #[test]
    fn sealed_secrets_open_only_with_the_same_key_and_name() {
        let a = key(KEY_A).unwrap();
        let sealed = a.seal("n", "refresh-token-value").unwrap();
        assert!(
            !sealed
                .windows(b"refresh-token-value".len())
                .any(|w| w == b"refresh-token-value")
        );
        assert_eq!(
            a.open("n", &sealed).unwrap().expose_secret(),
            "refresh-token-value"
        );
        assert!(a.open("other", &sealed).is_err());
        assert!(key(KEY_B).unwrap().open("n", &sealed).is_err());
        // A fresh nonce every time.
        assert_ne!(sealed, a.seal("n", "refresh-token-value").unwrap());
    }

    #[test]
    fn bad_keys_are_refused_without_echoing_them() {
        let err = key("c2hvcnQ=").unwrap_err().to_string();
        assert!(!err.contains("c2hvcnQ="), "{err}");
        assert!(matches!(key("not base64!"), Err(SecretsError::BadKey)));
        assert!(matches!(
            EncryptionKey::from_config(&Config::default()),
            Err(SecretsError::MissingKey)
        ));
        assert_eq!(
            format!("{:?}", key(KEY_A).unwrap()),
            "EncryptionKey([redacted])"
        );
    }
}
