//! Where the refresh token behind an App+User sign-in is kept between runs.
//!
//! Entra rotates refresh tokens: each refresh may return a new one and the old one
//! may stop working at once. The grant therefore stores every new refresh token
//! through the vault *before* it hands out the access token that came with it, so
//! a crash right after a refresh never leaves only a dead token on disk.

use async_trait::async_trait;
use secrecy::SecretString;
use std::fmt;
use std::sync::Mutex;

/// Why the vault failed. The message names the operation and the storage error,
/// never the token.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct VaultError(pub String);

/// Keeps one refresh token (the binary implements it with the store, encrypted).
#[async_trait]
pub trait RefreshTokenVault: Send + Sync + fmt::Debug {
    /// The stored refresh token, if any.
    async fn load(&self) -> Result<Option<SecretString>, VaultError>;

    /// Replaces the stored refresh token.
    async fn store(&self, refresh_token: SecretString) -> Result<(), VaultError>;
}

/// A vault in memory, for tests and `refsync demo`.
#[derive(Default)]
pub struct MemoryVault {
    token: Mutex<Option<SecretString>>,
    stores: Mutex<u64>,
}

impl fmt::Debug for MemoryVault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryVault")
            .field("holds_token", &self.lock_token().is_some())
            .field("stores", &self.stores())
            .finish()
    }
}

impl MemoryVault {
    /// An empty vault.
    pub fn new() -> Self {
        Self::default()
    }

    /// A vault holding `token`.
    pub fn with_token(token: SecretString) -> Self {
        Self {
            token: Mutex::new(Some(token)),
            stores: Mutex::new(0),
        }
    }

    /// How many times a token was stored.
    pub fn stores(&self) -> u64 {
        *self
            .stores
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The token held now (for tests).
    pub fn current(&self) -> Option<SecretString> {
        self.lock_token().clone()
    }

    fn lock_token(&self) -> std::sync::MutexGuard<'_, Option<SecretString>> {
        // A panic elsewhere cannot leave an Option half-written.
        self.token
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait]
impl RefreshTokenVault for MemoryVault {
    async fn load(&self) -> Result<Option<SecretString>, VaultError> {
        Ok(self.lock_token().clone())
    }

    async fn store(&self, refresh_token: SecretString) -> Result<(), VaultError> {
        *self.lock_token() = Some(refresh_token);
        *self
            .stores
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) += 1;
        Ok(())
    }
}
