#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
//! Secrets never leak: every grant's success and failure paths run with
//! secret-looking values while a TRACE subscriber captures every log line, and the
//! `Debug`/`Display` of every error and configuration value is collected; none may
//! contain a client secret, a password, an access token or a refresh token.

mod support;

use async_trait::async_trait;
use base64::Engine;
use refsync_outbound::call::{ApiConfig, ApiRequest};
use refsync_outbound::entra::{Audience, ClientAuth, DeviceCodeOptions, Entra};
use refsync_outbound::token::{
    MemoryVault, RefreshTokenVault, TokenCache, TokenSource, VaultError,
};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::*;

/// Everything that must never be printed, gathered as the test runs.
#[derive(Default)]
struct Secrets(Mutex<Vec<String>>);

impl Secrets {
    fn add(&self, s: impl Into<String>) {
        let s = s.into();
        assert!(s.len() >= 8, "too short to search for: {s:?}");
        self.0.lock().unwrap().push(s);
    }

    fn assert_absent(&self, what: &str, text: &str) {
        for secret in self.0.lock().unwrap().iter() {
            assert!(
                !text.contains(secret.as_str()),
                "{what} contains a secret ({}…):\n{text}",
                &secret[..6]
            );
        }
    }
}

/// A vault that records every token it is given (so they can be searched for)
/// and can be made to fail.
struct RecordingVault {
    inner: MemoryVault,
    seen: Arc<Secrets>,
    broken: AtomicBool,
}

impl std::fmt::Debug for RecordingVault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordingVault")
            .field("inner", &self.inner)
            .finish()
    }
}

#[async_trait]
impl RefreshTokenVault for RecordingVault {
    async fn load(&self) -> Result<Option<SecretString>, VaultError> {
        self.inner.load().await
    }

    async fn store(&self, token: SecretString) -> Result<(), VaultError> {
        self.seen.add(token.expose_secret());
        if self.broken.load(Ordering::SeqCst) {
            return Err(VaultError("disk full".into()));
        }
        self.inner.store(token).await
    }
}

#[tokio::test]
async fn no_secret_reaches_logs_debug_or_error_messages() {
    let logs = CapturedLogs::default();
    let _guard = logs.install();
    let secrets = Arc::new(Secrets::default());
    for s in [CLIENT_SECRET, PASSWORD, WRONG_SECRET, WRONG_PASSWORD] {
        secrets.add(s);
    }
    for secret in [CLIENT_SECRET, WRONG_SECRET] {
        let pair = format!("{CLIENT_ID}:{}", url_encode(secret));
        secrets.add(base64::engine::general_purpose::STANDARD.encode(pair));
    }
    let mut printed: Vec<(String, String)> = Vec::new();
    let mut print = |what: &str, debug: String, display: Option<String>| {
        printed.push((format!("{what} (Debug)"), debug));
        if let Some(d) = display {
            printed.push((format!("{what} (Display)"), d));
        }
    };

    let w = world().await;
    let good = w.entra(CLIENT_SECRET);
    let bad = w.entra(WRONG_SECRET);
    let mut basic_app = w.app(CLIENT_SECRET);
    basic_app.client_auth = ClientAuth::HttpBasic;
    let basic = Entra::new(basic_app.clone(), TokenCache::new()).unwrap();
    let mut bad_basic_app = w.app(WRONG_SECRET);
    bad_basic_app.client_auth = ClientAuth::HttpBasic;
    let bad_basic = Entra::new(bad_basic_app.clone(), TokenCache::new()).unwrap();
    print("EntraApp", format!("{basic_app:?}"), None);
    print("EntraApp", format!("{:?}", w.app(CLIENT_SECRET)), None);
    print("Entra", format!("{good:?}"), None);

    // Client credentials: success (form and Basic) and failure (form and Basic).
    for (name, entra) in [("form", &good), ("basic", &basic)] {
        let source = entra.client_credentials(Audience::v2(CRM));
        let token = source.token().await.unwrap();
        secrets.add(token.secret().expose_secret());
        print(name, format!("{token:?}"), None);
        print(name, format!("{source:?}"), None);
    }
    for (name, entra) in [("bad form", &bad), ("bad basic", &bad_basic)] {
        let e = entra
            .client_credentials(Audience::v2(CRM))
            .token()
            .await
            .unwrap_err();
        print(name, format!("{e:?}"), Some(e.to_string()));
    }

    // Password (legacy): success and failure, v1 and v2.
    for audience in [Audience::v1(PC), Audience::v2(PC)] {
        let ok = good.password(
            audience.clone(),
            ADMIN,
            SecretString::from(PASSWORD.to_owned()),
        );
        secrets.add(ok.token().await.unwrap().secret().expose_secret());
        print("password source", format!("{ok:?}"), None);
        let cache = TokenCache::new();
        let fresh = Entra::new(w.app(CLIENT_SECRET), cache).unwrap();
        let e = fresh
            .password(
                audience,
                ADMIN,
                SecretString::from(WRONG_PASSWORD.to_owned()),
            )
            .token()
            .await
            .unwrap_err();
        print("password error", format!("{e:?}"), Some(e.to_string()));
    }

    // Device code: success (its refresh token is recorded by the vault) and decline.
    let vault = Arc::new(RecordingVault {
        inner: MemoryVault::new(),
        seen: secrets.clone(),
        broken: AtomicBool::new(false),
    });
    let options = DeviceCodeOptions {
        min_interval: Duration::ZERO,
        slow_down_increment: Duration::from_millis(100),
        ..DeviceCodeOptions::default()
    };
    let authority = w.authority.clone();
    let outcome = good
        .device_code_login(&Audience::v2(PC), vault.as_ref(), &options, move |p| {
            authority.approve_device_code(&p.user_code, ADMIN).unwrap();
        })
        .await
        .unwrap();
    secrets.add(outcome.access_token.secret().expose_secret());
    print("login outcome", format!("{outcome:?}"), None);
    let authority = w.authority.clone();
    let e = good
        .device_code_login(&Audience::v2(PC), vault.as_ref(), &options, move |p| {
            authority.decline_device_code(&p.user_code).unwrap();
        })
        .await
        .unwrap_err();
    print("declined", format!("{e:?}"), Some(e.to_string()));

    // Refresh token: API calls with rotation, a 401 mid-run, a vault failure, a revocation.
    let refresh = good.refresh_token(Audience::v2(PC), vault.clone());
    let api = w.api(refresh.clone());
    print("api", format!("{api:?}"), None);
    print("api config", format!("{:?}", api.config()), None);
    w.authority.expire_access_tokens();
    let me: Value = api
        .send(ApiRequest::get("api/whoami"))
        .await
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(me["upn"], ADMIN);
    secrets.add(refresh.token().await.unwrap().secret().expose_secret());
    w.authority.expire_access_tokens();
    vault.broken.store(true, Ordering::SeqCst);
    let e = api.send(ApiRequest::get("api/whoami")).await.unwrap_err();
    print("vault failure", format!("{e:?}"), Some(e.to_string()));
    vault.broken.store(false, Ordering::SeqCst);
    api.send(ApiRequest::get("api/whoami")).await.unwrap();
    secrets.add(refresh.token().await.unwrap().secret().expose_secret());
    w.authority.revoke_refresh_tokens(ADMIN);
    w.authority.expire_access_tokens();
    let e = api.send(ApiRequest::get("api/whoami")).await.unwrap_err();
    print("revoked", format!("{e:?}"), Some(e.to_string()));
    print(
        "health",
        format!("{:?}", good.cache().health_report()),
        None,
    );
    print("cache", format!("{:?}", good.cache()), None);
    print("vault", format!("{vault:?}"), None);

    // A token request as a value: its form holds the secret.
    let request = ApiRequest::post("token").form(&[("client_secret", CLIENT_SECRET)]);
    print("request", format!("{request:?}"), None);
    print(
        "api config",
        format!("{:?}", ApiConfig::new("x", w.server.base_url().clone())),
        None,
    );

    assert!(secrets.0.lock().unwrap().len() > 12);
    for (what, text) in &printed {
        secrets.assert_absent(what, text);
    }
    let text = logs.text();
    assert!(text.contains("outbound_call"), "logs were captured");
    assert!(text.contains("run `refsync login`"));
    secrets.assert_absent("the logs", &text);
}

fn url_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
