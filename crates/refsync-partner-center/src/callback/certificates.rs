//! Fetching the signing certificate named by `x-ms-certificate-url`, and caching
//! the verdict on it.
//!
//! Only URLs that passed the allow-list reach this module, and redirects are
//! followed only to URLs under the same allow-list, so nothing else is ever
//! fetched (SSRF). Every fetch has a time limit and a size cap, and at most
//! `max_concurrent_fetches` run at once.
//!
//! The cache is keyed by URL and holds the *verdict*: the verified key and the
//! validity window of its chain for `certificate_cache_ttl`, or the rejection for
//! `negative_cache_ttl` (a few seconds, so a flood naming a bad URL causes one
//! fetch per interval). Concurrent first requests for one URL wait for a single
//! fetch. A cached certificate whose chain has since expired is fetched again
//! (Microsoft may have replaced the file), and the new verdict cached.
//!
//! Cache time is the `now` each request passes in, like every other date check,
//! so tests move time instead of sleeping.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use http::header::LOCATION;
use rustls_pki_types::CertificateDer;
use tokio::sync::Semaphore;
use url::Url;

use super::allow_list::{AllowList, raw_is_suspicious};
use super::chain::{
    ChainFailure, ChainPolicy, TrustedCertificate, ca_issuers_urls, decode_certificates,
};
use super::config::{VerifierConfig, VerifierConfigError};
use super::rejection::{CallbackRejection, FetchFailure};

/// Redirects followed per fetch (each one re-checked against the allow-list).
const MAX_REDIRECTS: usize = 3;
/// Intermediates fetched through AIA per certificate (one per missing level).
const MAX_AIA_FETCHES: usize = 2;

type Verdict = Result<Arc<TrustedCertificate>, CallbackRejection>;

#[derive(Clone)]
struct CacheEntry {
    verdict: Verdict,
    stored_at: DateTime<Utc>,
    fresh_until: DateTime<Utc>,
}

impl CacheEntry {
    fn usable(&self, now: DateTime<Utc>) -> bool {
        now < self.fresh_until
            && match &self.verdict {
                // A verified certificate carries its validity window, checked per
                // request; once expired, look again: the file may have been replaced.
                Ok(cert) => !cert.has_expired(now),
                // A refusal may depend on the time it was made (expired, not yet
                // valid), so it holds only from then on.
                Err(_) => self.stored_at <= now,
            }
    }
}

/// Fetches, verifies and caches signing certificates.
pub(crate) struct CertificateStore {
    client: reqwest::Client,
    certificate_allow_list: AllowList,
    intermediate_allow_list: AllowList,
    policy: ChainPolicy,
    fetch_timeout: Duration,
    max_bytes: usize,
    ttl: chrono::Duration,
    negative_ttl: chrono::Duration,
    capacity: usize,
    fetch_permits: Semaphore,
    entries: RwLock<HashMap<String, CacheEntry>>,
    /// One gate per URL being fetched: the single-flight mechanism.
    gates: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl CertificateStore {
    /// Builds the store (loads trust anchors, builds the HTTP client).
    pub(crate) fn new(config: &VerifierConfig) -> Result<Self, VerifierConfigError> {
        for (name, value) in [
            ("max_certificate_bytes", config.max_certificate_bytes),
            ("max_cached_certificates", config.max_cached_certificates),
            ("max_concurrent_fetches", config.max_concurrent_fetches),
        ] {
            if value == 0 {
                return Err(VerifierConfigError::ZeroLimit(name));
            }
        }
        if config.fetch_timeout.is_zero() {
            return Err(VerifierConfigError::ZeroLimit("fetch_timeout"));
        }
        let client = reqwest::Client::builder()
            // Redirects are followed by hand so each target meets the allow-list.
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(config.fetch_timeout)
            .timeout(config.fetch_timeout)
            .user_agent(concat!("refsync/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| VerifierConfigError::HttpClient(e.to_string()))?;
        let to_chrono =
            |d: Duration| chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX);
        Ok(Self {
            client,
            certificate_allow_list: config.certificate_allow_list(),
            intermediate_allow_list: config.intermediate_allow_list(),
            policy: ChainPolicy::from_config(config)?,
            fetch_timeout: config.fetch_timeout,
            max_bytes: config.max_certificate_bytes,
            ttl: to_chrono(config.certificate_cache_ttl),
            negative_ttl: to_chrono(config.negative_cache_ttl),
            capacity: config.max_cached_certificates,
            fetch_permits: Semaphore::new(config.max_concurrent_fetches),
            entries: RwLock::new(HashMap::new()),
            gates: Mutex::new(HashMap::new()),
        })
    }

    /// The verified certificate for an allow-listed URL, from the cache or fetched.
    pub(crate) async fn trusted_certificate(
        &self,
        url: &Url,
        now: DateTime<Utc>,
    ) -> Result<Arc<TrustedCertificate>, CallbackRejection> {
        let key = url.as_str();
        if let Some(verdict) = self.cached(key, now) {
            return verdict;
        }
        let release = GateRelease {
            gates: &self.gates,
            key,
            gate: self.gate(key),
        };
        let _turn = release.gate.lock().await;
        // Whoever held the gate before us may have filled the cache.
        if let Some(verdict) = self.cached(key, now) {
            return verdict;
        }
        let verdict = self.fetch_and_verify(url, now).await.map(Arc::new);
        self.remember(key, &verdict, now);
        verdict
    }

    fn cached(&self, key: &str, now: DateTime<Utc>) -> Option<Verdict> {
        let entries = self.entries.read().unwrap_or_else(PoisonError::into_inner);
        entries
            .get(key)
            .filter(|e| e.usable(now))
            .map(|e| e.verdict.clone())
    }

    fn remember(&self, key: &str, verdict: &Verdict, now: DateTime<Utc>) {
        let ttl = if verdict.is_ok() {
            self.ttl
        } else {
            self.negative_ttl
        };
        let entry = CacheEntry {
            verdict: verdict.clone(),
            stored_at: now,
            fresh_until: now
                .checked_add_signed(ttl)
                .unwrap_or(DateTime::<Utc>::MAX_UTC),
        };
        let mut entries = self.entries.write().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= self.capacity && !entries.contains_key(key) {
            entries.retain(|_, e| e.usable(now));
            if entries.len() >= self.capacity {
                entries.retain(|_, e| e.verdict.is_ok());
            }
            if entries.len() >= self.capacity {
                // Full of live, verified certificates: serve this one uncached.
                return;
            }
        }
        entries.insert(key.to_owned(), entry);
    }

    fn gate(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        Arc::clone(lock(&self.gates).entry(key.to_owned()).or_default())
    }

    async fn fetch_and_verify(
        &self,
        url: &Url,
        now: DateTime<Utc>,
    ) -> Result<TrustedCertificate, CallbackRejection> {
        let bytes = self
            .fetch(url, &self.certificate_allow_list)
            .await
            .map_err(CallbackRejection::CertificateUnavailable)?;
        let certs = decode_certificates(&bytes).ok_or(
            CallbackRejection::CertificateUnavailable(FetchFailure::NotACertificate),
        )?;
        let Some((leaf, served)) = certs.split_first() else {
            return Err(CallbackRejection::CertificateUnavailable(
                FetchFailure::NotACertificate,
            ));
        };
        let mut intermediates: Vec<CertificateDer<'static>> = served.to_vec();
        let mut aia_source = leaf.clone();
        let mut aia_fetches = 0;
        loop {
            match self.policy.verify(leaf, &intermediates, now) {
                Ok(trusted) => return Ok(trusted),
                Err(ChainFailure::UnknownIssuer) if aia_fetches < MAX_AIA_FETCHES => {
                    aia_fetches += 1;
                    let fetched = self.fetch_aia_issuer(&aia_source).await?;
                    // The next missing level, if any, is named by what we just got.
                    if let Some(issuer) = fetched.first() {
                        aia_source = issuer.clone();
                    }
                    intermediates.extend(fetched);
                }
                Err(failure) => return Err(failure.into()),
            }
        }
    }

    /// Fetches the issuer named by a certificate's AIA `caIssuers` URL, if one is
    /// under the intermediate allow-list. Returns at least one certificate.
    async fn fetch_aia_issuer(
        &self,
        cert: &CertificateDer<'_>,
    ) -> Result<Vec<CertificateDer<'static>>, CallbackRejection> {
        let untrusted = |why: String| CallbackRejection::UntrustedChain(why);
        let url = ca_issuers_urls(cert)
            .iter()
            .find_map(|u| self.intermediate_allow_list.check(u).ok())
            .ok_or_else(|| {
                untrusted("unknown issuer and no allow-listed AIA caIssuers URL".to_owned())
            })?;
        let bytes = self
            .fetch(&url, &self.intermediate_allow_list)
            .await
            .map_err(|e| untrusted(format!("AIA intermediate unavailable: {e}")))?;
        decode_certificates(&bytes)
            .filter(|certs| !certs.is_empty())
            .ok_or_else(|| untrusted("AIA intermediate is not a certificate".to_owned()))
    }

    /// GETs an allow-listed URL with the time limit, size cap and redirect rule.
    async fn fetch(&self, url: &Url, allow_list: &AllowList) -> Result<Vec<u8>, FetchFailure> {
        let fetch = async {
            let _permit = self
                .fetch_permits
                .acquire()
                .await
                .map_err(|_| FetchFailure::Transport)?;
            let mut current = url.clone();
            for _ in 0..=MAX_REDIRECTS {
                let mut response = self
                    .client
                    .get(current.clone())
                    .send()
                    .await
                    .map_err(|e| transport_failure(&e))?;
                let status = response.status();
                if status.is_redirection() {
                    let location = response
                        .headers()
                        .get(LOCATION)
                        .and_then(|v| v.to_str().ok())
                        .filter(|loc| !raw_is_suspicious(loc))
                        .ok_or(FetchFailure::RedirectRefused)?;
                    let next = current
                        .join(location)
                        .map_err(|_| FetchFailure::RedirectRefused)?;
                    current = allow_list
                        .check_url(&next)
                        .map_err(|_| FetchFailure::RedirectRefused)?;
                    continue;
                }
                if !status.is_success() {
                    return Err(FetchFailure::Status(status.as_u16()));
                }
                let too_large = FetchFailure::TooLarge(self.max_bytes);
                if response
                    .content_length()
                    .is_some_and(|n| n > self.max_bytes as u64)
                {
                    return Err(too_large);
                }
                let mut body = Vec::new();
                while let Some(chunk) = response.chunk().await.map_err(|e| transport_failure(&e))? {
                    if body.len() + chunk.len() > self.max_bytes {
                        return Err(too_large);
                    }
                    body.extend_from_slice(&chunk);
                }
                return Ok(body);
            }
            Err(FetchFailure::RedirectRefused)
        };
        tokio::time::timeout(self.fetch_timeout, fetch)
            .await
            .unwrap_or(Err(FetchFailure::Timeout))
    }
}

fn transport_failure(e: &reqwest::Error) -> FetchFailure {
    if e.is_timeout() {
        FetchFailure::Timeout
    } else {
        FetchFailure::Transport
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Drops a URL's gate once nobody holds or awaits it, also when the request is
/// cancelled mid-fetch (the next waiter then fetches).
struct GateRelease<'a> {
    gates: &'a Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    key: &'a str,
    gate: Arc<tokio::sync::Mutex<()>>,
}

impl Drop for GateRelease<'_> {
    fn drop(&mut self) {
        let mut gates = lock(self.gates);
        let ours = gates
            .get(self.key)
            .is_some_and(|g| Arc::ptr_eq(g, &self.gate));
        // Two references left, the map's and ours: no one else is waiting. New
        // arrivals clone under the same lock, so the count cannot race.
        if ours && Arc::strong_count(&self.gate) <= 2 {
            gates.remove(self.key);
        }
    }
}
