//! The token cache: one slot per [`TokenKey`], one fetch at a time per slot.
//!
//! Concurrent callers that find no usable token queue on the slot's gate; the
//! first one fetches, the others wake to find the fresh token (or, if that fetch
//! failed, its error) — so a burst of 32 callers costs Entra one request, and a
//! failing token endpoint is not hammered by every waiting caller.

use super::health::{self, TokenHealth};
use super::{AccessToken, FetchedToken, TokenError, TokenFetcher, TokenKey, TokenSource};
use async_trait::async_trait;
use chrono::Utc;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::time::Instant;

/// How long before expiry a token is replaced, by default.
pub const DEFAULT_SKEW: Duration = Duration::from_secs(5 * 60);
/// The least skew accepted: below it a token could expire between being handed
/// out and reaching the server.
pub const MIN_SKEW: Duration = Duration::from_secs(5);

/// Tokens for every API, shared by all clients of one process (cheap to clone).
#[derive(Clone)]
pub struct TokenCache {
    inner: Arc<CacheInner>,
}

struct CacheInner {
    skew: Duration,
    slots: Mutex<HashMap<TokenKey, Arc<Slot>>>,
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCache")
            .field("skew", &self.inner.skew)
            .field("keys", &self.lock_slots().len())
            .finish()
    }
}

impl Default for TokenCache {
    fn default() -> Self {
        Self::new()
    }
}

#[derive(Default)]
struct Slot {
    state: Mutex<SlotState>,
    /// Held by the one caller fetching for this key.
    gate: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct SlotState {
    token: Option<AccessToken>,
    /// Completed fetches, successful or not.
    fetches: u64,
    /// The error of the last fetch, when it failed.
    last_error: Option<TokenError>,
    health: TokenHealth,
}

impl Slot {
    fn lock(&self) -> MutexGuard<'_, SlotState> {
        // The state is replaced field by field under the lock; a panic cannot tear it.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl TokenCache {
    /// A cache replacing tokens [`DEFAULT_SKEW`] before they expire.
    pub fn new() -> Self {
        Self::with_skew(DEFAULT_SKEW)
    }

    /// A cache replacing tokens `skew` before they expire (at least [`MIN_SKEW`];
    /// at most half a token's lifetime, so short-lived tokens are still reused).
    pub fn with_skew(skew: Duration) -> Self {
        Self {
            inner: Arc::new(CacheInner {
                skew: skew.max(MIN_SKEW),
                slots: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The skew in use.
    pub fn skew(&self) -> Duration {
        self.inner.skew
    }

    fn lock_slots(&self) -> MutexGuard<'_, HashMap<TokenKey, Arc<Slot>>> {
        self.inner
            .slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn slot(&self, key: &TokenKey) -> Arc<Slot> {
        self.lock_slots().entry(key.clone()).or_default().clone()
    }

    /// A token source for `key`, fetching through `fetcher`. Sources for the same
    /// key share the cached token (so one key must always use the same grant).
    pub fn source(&self, key: TokenKey, fetcher: Arc<dyn TokenFetcher>) -> Arc<CachedTokenSource> {
        Arc::new(CachedTokenSource {
            slot: self.slot(&key),
            key,
            fetcher,
            skew: self.inner.skew,
        })
    }

    /// Puts a token obtained elsewhere (an interactive sign-in) into the cache.
    pub fn insert(&self, key: &TokenKey, fetched: FetchedToken) -> AccessToken {
        let slot = self.slot(key);
        let token = to_access_token(&fetched, self.inner.skew);
        let mut state = slot.lock();
        state.token = Some(token.clone());
        state.fetches += 1;
        state.last_error = None;
        state
            .health
            .succeeded(Utc::now(), fetched.refresh_token_expires_at);
        token
    }

    /// The health of one key, if anything was ever asked of it.
    pub fn health(&self, key: &TokenKey) -> Option<TokenHealth> {
        let slot = self.lock_slots().get(key).cloned()?;
        let health = slot.lock().health.clone();
        Some(health)
    }

    /// Every key's health, sorted by key.
    pub fn health_report(&self) -> Vec<(TokenKey, TokenHealth)> {
        let slots: Vec<(TokenKey, Arc<Slot>)> = self
            .lock_slots()
            .iter()
            .map(|(k, s)| (k.clone(), s.clone()))
            .collect();
        let mut report: Vec<(TokenKey, TokenHealth)> = slots
            .into_iter()
            .map(|(k, s)| {
                let health = s.lock().health.clone();
                (k, health)
            })
            .collect();
        report.sort_by(|a, b| a.0.cmp(&b.0));
        report
    }

    /// Drops every cached token (their next use fetches new ones).
    pub fn clear(&self) {
        for slot in self.lock_slots().values() {
            slot.lock().token = None;
        }
    }
}

fn to_access_token(fetched: &FetchedToken, skew: Duration) -> AccessToken {
    let lifetime = fetched.expires_in;
    let early = skew.min(lifetime / 2);
    let now = Instant::now();
    let expires_at = Utc::now()
        + chrono::Duration::from_std(lifetime).unwrap_or_else(|_| chrono::Duration::zero());
    AccessToken::new(
        fetched.access_token.clone(),
        now + lifetime.saturating_sub(early),
        expires_at,
    )
}

/// A [`TokenSource`] backed by the cache: one key, one grant.
pub struct CachedTokenSource {
    key: TokenKey,
    fetcher: Arc<dyn TokenFetcher>,
    slot: Arc<Slot>,
    skew: Duration,
}

impl std::fmt::Debug for CachedTokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedTokenSource")
            .field("key", &self.key)
            .field("fetcher", &self.fetcher)
            .finish()
    }
}

impl CachedTokenSource {
    /// The key.
    pub fn key(&self) -> &TokenKey {
        &self.key
    }

    /// The key's health.
    pub fn health(&self) -> TokenHealth {
        self.slot.lock().health.clone()
    }

    fn fresh(&self) -> Result<AccessToken, u64> {
        let state = self.slot.lock();
        match &state.token {
            Some(t) if t.is_fresh(Instant::now()) => Ok(t.clone()),
            _ => Err(state.fetches),
        }
    }
}

#[async_trait]
impl TokenSource for CachedTokenSource {
    async fn token(&self) -> Result<AccessToken, TokenError> {
        let seen = match self.fresh() {
            Ok(token) => return Ok(token),
            Err(fetches) => fetches,
        };
        let _gate = self.slot.gate.lock().await;
        {
            let state = self.slot.lock();
            if let Some(t) = state.token.as_ref().filter(|t| t.is_fresh(Instant::now())) {
                return Ok(t.clone());
            }
            // A fetch finished while we queued and left no token: it failed. Share
            // its error rather than asking the identity provider again at once.
            if state.fetches != seen
                && let Some(e) = &state.last_error
            {
                return Err(e.clone());
            }
        }
        tracing::debug!(key = %self.key, "fetching an access token");
        let result = self.fetcher.fetch().await;
        let now = Utc::now();
        let mut state = self.slot.lock();
        state.fetches += 1;
        match result {
            Ok(fetched) => {
                let token = to_access_token(&fetched, self.skew);
                state.token = Some(token.clone());
                state.last_error = None;
                state
                    .health
                    .succeeded(now, fetched.refresh_token_expires_at);
                if self.fetcher.uses_refresh_token() {
                    health::report_refresh_ok(&self.key.audience, fetched.refresh_token_expires_at);
                }
                tracing::debug!(key = %self.key, expires_at = %token.expires_at(), "access token obtained");
                Ok(token)
            }
            Err(e) => {
                state.token = None;
                state.health.failed(now, &e);
                state.last_error = Some(e.clone());
                if !e.needs_login() {
                    tracing::warn!(key = %self.key, error = %e, "could not obtain an access token");
                }
                Err(e)
            }
        }
    }

    fn invalidate(&self, token: &AccessToken) {
        let mut state = self.slot.lock();
        if state.token.as_ref().is_some_and(|t| t.same_as(token)) {
            tracing::debug!(key = %self.key, "access token refused by the API; dropping it");
            state.token = None;
        }
    }

    fn audience(&self) -> &str {
        &self.key.audience
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::{ExposeSecret, SecretString};
    use std::sync::atomic::{AtomicU32, Ordering};

    #[derive(Debug)]
    struct Counting {
        calls: AtomicU32,
        lifetime: Duration,
        fail: bool,
    }

    #[async_trait]
    impl TokenFetcher for Counting {
        async fn fetch(&self) -> Result<FetchedToken, TokenError> {
            let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
            // Let the other callers pile up on the gate.
            tokio::time::sleep(Duration::from_millis(10)).await;
            if self.fail {
                return Err(TokenError::Endpoint {
                    audience: "aud".into(),
                    detail: "down".into(),
                    transient: true,
                });
            }
            Ok(FetchedToken {
                access_token: SecretString::from(format!("token-{n}")),
                expires_in: self.lifetime,
                refresh_token_expires_at: None,
            })
        }
    }

    fn key() -> TokenKey {
        TokenKey {
            authority: "https://login.example".into(),
            tenant: "t".into(),
            client_id: "c".into(),
            audience: "aud".into(),
        }
    }

    fn source(
        cache: &TokenCache,
        lifetime: Duration,
        fail: bool,
    ) -> (Arc<CachedTokenSource>, Arc<Counting>) {
        let fetcher = Arc::new(Counting {
            calls: AtomicU32::new(0),
            lifetime,
            fail,
        });
        (cache.source(key(), fetcher.clone()), fetcher)
    }

    #[tokio::test(start_paused = true)]
    async fn tokens_are_reused_until_the_skew_then_replaced() {
        let cache = TokenCache::with_skew(Duration::from_secs(300));
        let (s, f) = source(&cache, Duration::from_secs(3600), false);
        let a = s.token().await.unwrap();
        let b = s.token().await.unwrap();
        assert!(a.same_as(&b));
        assert_eq!(f.calls.load(Ordering::SeqCst), 1);
        tokio::time::advance(Duration::from_secs(3600 - 301)).await;
        assert!(s.token().await.unwrap().same_as(&a));
        tokio::time::advance(Duration::from_secs(2)).await;
        let c = s.token().await.unwrap();
        assert!(!c.same_as(&a));
        assert_eq!(c.secret().expose_secret(), "token-2");
    }

    #[tokio::test(start_paused = true)]
    async fn short_lived_tokens_are_reused_for_half_their_life() {
        let cache = TokenCache::with_skew(Duration::from_secs(300));
        let (s, f) = source(&cache, Duration::from_secs(60), false);
        s.token().await.unwrap();
        tokio::time::advance(Duration::from_secs(29)).await;
        s.token().await.unwrap();
        assert_eq!(f.calls.load(Ordering::SeqCst), 1);
        tokio::time::advance(Duration::from_secs(2)).await;
        s.token().await.unwrap();
        assert_eq!(f.calls.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn skew_has_a_floor() {
        assert_eq!(TokenCache::with_skew(Duration::ZERO).skew(), MIN_SKEW);
    }

    #[tokio::test]
    async fn concurrent_callers_share_one_fetch() {
        let cache = TokenCache::new();
        let (s, f) = source(&cache, Duration::from_secs(3600), false);
        let tasks: Vec<_> = (0..32)
            .map(|_| {
                let s = s.clone();
                tokio::spawn(async move {
                    s.token()
                        .await
                        .map(|t| t.secret().expose_secret().to_owned())
                })
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.unwrap().unwrap(), "token-1");
        }
        assert_eq!(f.calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn waiting_callers_share_a_failure_too() {
        let cache = TokenCache::new();
        let (s, f) = source(&cache, Duration::from_secs(3600), true);
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let s = s.clone();
                tokio::spawn(async move { s.token().await.is_err() })
            })
            .collect();
        for t in tasks {
            assert!(t.await.unwrap());
        }
        assert_eq!(f.calls.load(Ordering::SeqCst), 1);
        assert_eq!(s.health().state, super::super::HealthState::Failing);
        // A later caller tries again.
        assert!(s.token().await.is_err());
        assert_eq!(f.calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn invalidate_drops_only_the_refused_token() {
        let cache = TokenCache::new();
        let (s, f) = source(&cache, Duration::from_secs(3600), false);
        let first = s.token().await.unwrap();
        s.invalidate(&first);
        let second = s.token().await.unwrap();
        assert!(!second.same_as(&first));
        // A late 401 for the old token must not throw away the new one.
        s.invalidate(&first);
        assert!(s.token().await.unwrap().same_as(&second));
        assert_eq!(f.calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn sources_with_one_key_share_tokens_and_health_is_reported() {
        let cache = TokenCache::new();
        let (a, _) = source(&cache, Duration::from_secs(3600), false);
        let (b, fb) = source(&cache, Duration::from_secs(3600), false);
        let t = a.token().await.unwrap();
        assert!(b.token().await.unwrap().same_as(&t));
        assert_eq!(fb.calls.load(Ordering::SeqCst), 0);
        let report = cache.health_report();
        assert_eq!(report.len(), 1);
        assert_eq!(report[0].1.state, super::super::HealthState::Healthy);
    }
}
