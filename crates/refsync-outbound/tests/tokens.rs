#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
//! The token provider against the Entra emulator: every grant, the cache, one
//! fetch for many callers, expiry mid-run, refresh-token rotation persisted at
//! once, a revoked sign-in reported loudly, and the device-code login.

mod support;

use async_trait::async_trait;
use refsync_outbound::call::{ApiRequest, CallError};
use refsync_outbound::entra::{
    Audience, ClientAuth, DeviceCodeOptions, DeviceCodePrompt, Entra, EntraApp,
};
use refsync_outbound::token::{
    DeviceCodeOutcome, HealthState, MemoryVault, RefreshTokenVault, ReloginReason, TokenCache,
    TokenError, TokenSource, VaultError,
};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::*;

async fn whoami(api: &refsync_outbound::ApiClient) -> Result<Value, CallError> {
    api.send(ApiRequest::get("api/whoami"))
        .await
        .map(|r| r.json::<Value>().unwrap())
}

/// A refresh token obtained the way `refsync login` would, through a raw v2 password grant.
async fn initial_refresh_token(w: &World) -> String {
    let body: Value = w
        .http
        .post(
            w.server
                .url(&format!("/{}/oauth2/v2.0/token", w.authority.tenant_id())),
        )
        .form(&[
            ("grant_type", "password"),
            ("client_id", &CLIENT_ID.to_string()),
            ("client_secret", CLIENT_SECRET),
            ("username", ADMIN),
            ("password", PASSWORD),
            ("scope", &format!("{PC}/.default offline_access")),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["refresh_token"].as_str().unwrap().to_owned()
}

/// Presents `refresh_token` directly: the error code when Entra refuses it.
async fn raw_refresh_error(w: &World, refresh_token: &str) -> Option<u64> {
    let body: Value = w
        .http
        .post(
            w.server
                .url(&format!("/{}/oauth2/v2.0/token", w.authority.tenant_id())),
        )
        .form(&[
            ("grant_type", "refresh_token"),
            ("client_id", &CLIENT_ID.to_string()),
            ("client_secret", CLIENT_SECRET),
            ("refresh_token", refresh_token),
            ("scope", &format!("{PC}/.default offline_access")),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["error_codes"][0].as_u64()
}

fn test_login_options() -> DeviceCodeOptions {
    DeviceCodeOptions {
        min_interval: Duration::ZERO,
        slow_down_increment: Duration::from_millis(100),
        ..DeviceCodeOptions::default()
    }
}

/// Approves the device code shown in `prompt` through the control API, once the
/// client has polled too fast at least once (so `slow_down` is exercised).
fn approve_after_slow_down(w: &World) -> impl FnOnce(&DeviceCodePrompt) + Send + 'static {
    let authority = w.authority.clone();
    let url = w.server.url("/_emulator/entra/device-codes");
    move |prompt: &DeviceCodePrompt| {
        assert!(prompt.message.contains(&prompt.user_code));
        assert!(prompt.verification_uri.ends_with("/devicelogin"));
        let approve = format!("{url}/{}/approve", prompt.user_code);
        tokio::spawn(async move {
            while authority
                .counters()
                .errors
                .get("slow_down")
                .copied()
                .unwrap_or(0)
                == 0
            {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            let status = reqwest::Client::new()
                .post(approve)
                .json(&serde_json::json!({ "username": ADMIN }))
                .send()
                .await
                .unwrap()
                .status();
            assert_eq!(status, 204);
        });
    }
}

#[tokio::test]
async fn client_credentials_tokens_are_cached_and_reused() {
    let w = world().await;
    let entra = w.entra(CLIENT_SECRET);
    let api = w.api(entra.client_credentials(Audience::v2(PC)));
    for _ in 0..3 {
        let me = whoami(&api).await.unwrap();
        assert_eq!(me["kind"], "app");
        assert_eq!(me["aud"], PC);
    }
    assert_eq!(w.issued("client_credentials"), 1);
    let health = entra.cache().health(&entra.key(&Audience::v2(PC))).unwrap();
    assert_eq!(health.state, HealthState::Healthy);
}

#[tokio::test]
async fn client_secret_by_http_basic_on_the_v1_endpoint() {
    let w = world().await;
    let mut app = w.app(CLIENT_SECRET);
    app.client_auth = ClientAuth::HttpBasic;
    let entra = Entra::new(app, TokenCache::new()).unwrap();
    let source = entra.client_credentials(Audience::v1(CRM));
    let api = w.api(source);
    let me = api
        .send(ApiRequest::get("crm/whoami"))
        .await
        .unwrap()
        .json::<Value>()
        .unwrap();
    assert_eq!(me["aud"], CRM);
    assert_eq!(w.issued("client_credentials"), 1);
}

#[tokio::test]
async fn thirty_two_concurrent_callers_cause_one_token_request() {
    let w = world().await;
    let entra = w.entra(CLIENT_SECRET);
    let api = w.api(entra.client_credentials(Audience::v2(PC)));
    let calls = (0..32).map(|_| {
        let api = api.clone();
        async move { whoami(&api).await }
    });
    for result in futures::future::join_all(calls).await {
        result.unwrap();
    }
    assert_eq!(w.issued("client_credentials"), 1);
}

#[tokio::test]
async fn a_token_expiring_mid_run_is_replaced_transparently() {
    let w = world().await;
    let metrics = Metrics::default();
    let _m = metrics::set_default_local_recorder(&metrics);
    let entra = w.entra(CLIENT_SECRET);
    let api = w.api(entra.client_credentials(Audience::v2(PC)));
    whoami(&api).await.unwrap();
    assert_eq!(w.authority.expire_access_tokens(), 1);
    // The cached token is now refused with 401; the call drops it, fetches a new
    // one and succeeds without the caller noticing.
    whoami(&api).await.unwrap();
    whoami(&api).await.unwrap();
    assert_eq!(w.issued("client_credentials"), 2);
    assert_eq!(w.authority.counters().bearer_refusals, 1);
    assert_eq!(
        metrics.get("refsync_outbound_retries_total{api=test-api,reason=unauthorized}"),
        1.0
    );
    assert_eq!(
        metrics.get("refsync_outbound_requests_total{api=test-api,status=401}"),
        1.0
    );
    assert_eq!(
        metrics.get("refsync_outbound_requests_total{api=test-api,status=200}"),
        3.0
    );
}

#[tokio::test]
async fn refresh_tokens_rotate_and_each_new_one_is_stored() {
    let w = world().await;
    let first = initial_refresh_token(&w).await;
    let vault = Arc::new(MemoryVault::with_token(SecretString::from(first.clone())));
    let entra = w.entra(CLIENT_SECRET);
    let api = w.api(entra.refresh_token(Audience::v2(PC), vault.clone()));

    let me = whoami(&api).await.unwrap();
    assert_eq!(me["upn"], ADMIN);
    assert_eq!(me["kind"], "user");
    assert_eq!(vault.stores(), 1);
    let second = vault.current().unwrap().expose_secret().to_owned();
    assert_ne!(second, first);
    // The emulator invalidates used refresh tokens, as Entra may.
    assert_eq!(raw_refresh_error(&w, &first).await, Some(50173));

    w.authority.expire_access_tokens();
    whoami(&api).await.unwrap();
    assert_eq!(vault.stores(), 2);
    let third = vault.current().unwrap().expose_secret().to_owned();
    assert_ne!(third, second);
    assert_eq!(w.issued("refresh_token"), 2);
}

/// A vault whose `store` fails while `broken` is set.
#[derive(Debug, Default)]
struct FlakyVault {
    inner: MemoryVault,
    broken: AtomicBool,
}

#[async_trait]
impl RefreshTokenVault for FlakyVault {
    async fn load(&self) -> Result<Option<SecretString>, VaultError> {
        self.inner.load().await
    }

    async fn store(&self, token: SecretString) -> Result<(), VaultError> {
        if self.broken.load(Ordering::SeqCst) {
            return Err(VaultError("database is locked".into()));
        }
        self.inner.store(token).await
    }
}

#[tokio::test]
async fn no_access_token_is_handed_out_until_the_rotated_refresh_token_is_stored() {
    let w = world().await;
    let first = initial_refresh_token(&w).await;
    let vault = Arc::new(FlakyVault::default());
    vault
        .inner
        .store(SecretString::from(first.clone()))
        .await
        .unwrap();
    vault.broken.store(true, Ordering::SeqCst);
    let entra = w.entra(CLIENT_SECRET);
    let source = entra.refresh_token(Audience::v2(PC), vault.clone());
    let api = w.api(source.clone());

    let err = whoami(&api).await.unwrap_err();
    assert!(
        matches!(
            &err,
            CallError::Token {
                source: TokenError::Vault { .. },
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(source.health().state, HealthState::Failing);
    // The vault still holds the first token, which Entra has already rotated away.
    assert_eq!(
        vault.inner.current().unwrap().expose_secret(),
        first.as_str()
    );

    // Once the vault works again, the rotated token kept in memory is used and stored.
    vault.broken.store(false, Ordering::SeqCst);
    whoami(&api).await.unwrap();
    let stored = vault.inner.current().unwrap().expose_secret().to_owned();
    assert_ne!(stored, first);
    assert_eq!(
        raw_refresh_error(&w, &stored).await,
        None,
        "the stored token works"
    );
    assert_eq!(source.health().state, HealthState::Healthy);
}

#[tokio::test]
async fn a_revoked_refresh_token_is_reported_loudly_until_login() {
    let w = world().await;
    let logs = CapturedLogs::default();
    let _l = logs.install();
    let metrics = Metrics::default();
    let _m = metrics::set_default_local_recorder(&metrics);
    let vault = Arc::new(MemoryVault::with_token(SecretString::from(
        initial_refresh_token(&w).await,
    )));
    let entra = w.entra(CLIENT_SECRET);
    let source = entra.refresh_token(Audience::v2(PC), vault.clone());
    let api = w.api(source.clone());
    whoami(&api).await.unwrap();
    assert_eq!(
        metrics.get(&format!("refsync_refresh_token_healthy{{audience={PC}}}")),
        1.0
    );

    // An administrator revokes the user's sessions (control API), and the access token lapses.
    let revoked: Value = w
        .http
        .post(w.server.url(&format!(
            "/_emulator/entra/users/{ADMIN}/revoke-refresh-tokens"
        )))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(revoked["revoked"], 1);
    w.authority.expire_access_tokens();

    for _ in 0..3 {
        let err = whoami(&api).await.unwrap_err();
        match &err {
            CallError::Token {
                source: TokenError::ReloginRequired { reason, aadsts, .. },
                ..
            } => {
                assert_eq!(*reason, ReloginReason::Revoked);
                assert_eq!(*aadsts, Some(50173));
            }
            other => panic!("unexpected {other}"),
        }
        assert!(err.to_string().contains("run `refsync login`"), "{err}");
    }
    // Reported once, loudly; the dead token is not presented again.
    assert_eq!(w.errors("invalid_grant"), 1);
    let text = logs.text();
    let loud: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("ERROR") && l.contains("run `refsync login`"))
        .collect();
    assert_eq!(loud.len(), 1, "{text}");
    assert_eq!(
        metrics.get(&format!(
            "refsync_token_refresh_failures_total{{audience={PC},reason=revoked}}"
        )),
        1.0,
        "{}",
        metrics.dump()
    );
    assert_eq!(
        metrics.get(&format!("refsync_refresh_token_healthy{{audience={PC}}}")),
        0.0
    );
    let health = source.health();
    assert!(health.needs_login());
    assert_eq!(health.relogin_reason, Some("revoked"));
    assert_eq!(
        entra.cache().health_report()[0].1.state,
        HealthState::LoginRequired
    );

    // `refsync login` stores a fresh refresh token and everything works again.
    entra
        .device_code_login(
            &Audience::v2(PC),
            vault.as_ref(),
            &test_login_options(),
            approve_after_slow_down(&w),
        )
        .await
        .unwrap();
    whoami(&api).await.unwrap();
    assert_eq!(source.health().state, HealthState::Healthy);
    assert_eq!(
        metrics.get(&format!("refsync_refresh_token_healthy{{audience={PC}}}")),
        1.0
    );
}

#[tokio::test]
async fn an_expired_refresh_token_needs_login() {
    let mut config = entra_config();
    config.refresh_token_lifetime = Duration::from_secs(3600);
    let w = world_with(config).await;
    let vault = Arc::new(MemoryVault::with_token(SecretString::from(
        initial_refresh_token(&w).await,
    )));
    let entra = w.entra(CLIENT_SECRET);
    let api = w.api(entra.refresh_token(Audience::v2(PC), vault));
    w.authority.advance_clock(Duration::from_secs(7200));
    let err = whoami(&api).await.unwrap_err();
    assert!(
        matches!(
            &err,
            CallError::Token {
                source: TokenError::ReloginRequired {
                    reason: ReloginReason::Expired,
                    aadsts: Some(700082),
                    ..
                },
                ..
            }
        ),
        "{err}"
    );
}

#[tokio::test]
async fn an_empty_vault_asks_for_login_without_calling_entra() {
    let w = world().await;
    let entra = w.entra(CLIENT_SECRET);
    let source = entra.refresh_token(Audience::v2(PC), Arc::new(MemoryVault::new()));
    let err = source.token().await.unwrap_err();
    assert!(
        matches!(
            &err,
            TokenError::ReloginRequired {
                reason: ReloginReason::Missing,
                ..
            }
        ),
        "{err}"
    );
    assert!(source.health().needs_login());
    assert!(w.authority.counters().errors.is_empty());
}

#[tokio::test]
async fn device_code_login_v2_stores_a_refresh_token_that_works() {
    let w = world().await;
    let vault = Arc::new(MemoryVault::new());
    let entra = w.entra(CLIENT_SECRET);
    let outcome = entra
        .device_code_login(
            &Audience::v2(PC),
            vault.as_ref(),
            &test_login_options(),
            approve_after_slow_down(&w),
        )
        .await
        .unwrap();
    assert!(outcome.access_token.expires_at() > chrono::Utc::now());
    assert_eq!(vault.stores(), 1);
    assert!(w.errors("slow_down") >= 1);
    assert!(w.errors("authorization_pending") >= 1);
    assert_eq!(w.issued("device_code"), 1);
    // The login's access token is already cached: no refresh needed for the first call.
    let api = w.api(entra.refresh_token(Audience::v2(PC), vault.clone()));
    assert_eq!(whoami(&api).await.unwrap()["upn"], ADMIN);
    assert_eq!(w.issued("refresh_token"), 0);
    w.authority.expire_access_tokens();
    whoami(&api).await.unwrap();
    assert_eq!(w.issued("refresh_token"), 1);
}

#[tokio::test]
async fn device_code_login_on_the_v1_endpoint() {
    let w = world().await;
    let vault = MemoryVault::new();
    let entra = w.entra(CLIENT_SECRET);
    entra
        .device_code_login(
            &Audience::v1(PC),
            &vault,
            &test_login_options(),
            approve_after_slow_down(&w),
        )
        .await
        .unwrap();
    assert_eq!(vault.stores(), 1);
    assert_eq!(w.authority.device_codes()[0].state, "redeemed");
}

#[tokio::test]
async fn device_code_login_ends_when_declined_or_expired() {
    let w = world().await;
    let entra = w.entra(CLIENT_SECRET);
    let vault = MemoryVault::new();

    let authority = w.authority.clone();
    let err = entra
        .device_code_login(&Audience::v2(PC), &vault, &test_login_options(), move |p| {
            authority.decline_device_code(&p.user_code).unwrap();
        })
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            TokenError::DeviceCode {
                outcome: DeviceCodeOutcome::Declined,
                ..
            }
        ),
        "{err}"
    );

    let authority = w.authority.clone();
    let err = entra
        .device_code_login(
            &Audience::v2(PC),
            &vault,
            &test_login_options(),
            move |_| {
                // Nobody approves; the code lapses on the server's clock.
                authority.advance_clock(Duration::from_secs(3600));
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            TokenError::DeviceCode {
                outcome: DeviceCodeOutcome::Expired,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(vault.stores(), 0);
}

#[tokio::test]
async fn legacy_password_grant_like_the_referrals_api_sample() {
    let w = world().await;
    let entra = w.entra(CLIENT_SECRET);
    let api = w.api(entra.password(
        Audience::v1(PC),
        ADMIN,
        SecretString::from(PASSWORD.to_owned()),
    ));
    let me = whoami(&api).await.unwrap();
    assert_eq!(me["upn"], ADMIN);
    whoami(&api).await.unwrap();
    assert_eq!(w.issued("password"), 1);
}

#[tokio::test]
async fn refusals_carry_the_oauth_error_and_aadsts_number() {
    let w = world().await;
    let entra = w.entra(WRONG_SECRET);
    let source = entra.client_credentials(Audience::v2(PC));
    match source.token().await.unwrap_err() {
        TokenError::Refused {
            error,
            aadsts,
            description,
            ..
        } => {
            assert_eq!(error, "invalid_client");
            assert_eq!(aadsts, Some(7000215));
            assert!(description.unwrap().starts_with("AADSTS7000215: "));
        }
        other => panic!("unexpected {other}"),
    }
    assert_eq!(source.health().state, HealthState::Misconfigured);

    let entra = w.entra(CLIENT_SECRET);
    let source = entra.password(
        Audience::v2(PC),
        ADMIN,
        SecretString::from(WRONG_PASSWORD.to_owned()),
    );
    match source.token().await.unwrap_err() {
        TokenError::Refused { error, aadsts, .. } => {
            assert_eq!(error, "invalid_grant");
            assert_eq!(aadsts, Some(50126));
        }
        other => panic!("unexpected {other}"),
    }
}

#[tokio::test]
async fn an_unreachable_token_endpoint_is_a_transient_token_error() {
    // Bind and drop a listener: nothing answers on that port.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let app = EntraApp::new(
        format!("http://{addr}/").parse().unwrap(),
        refsync_outbound::entra::Tenant::parse("organizations").unwrap(),
        "client",
        Some(SecretString::from(CLIENT_SECRET.to_owned())),
    );
    let config = refsync_outbound::entra::default_token_endpoint_config(app.authority.clone())
        .with_retry(refsync_outbound::RetryPolicy {
            max_attempts: 2,
            min_backoff: Duration::from_millis(5),
            max_backoff: Duration::from_millis(5),
            ..refsync_outbound::RetryPolicy::default()
        });
    let entra = Entra::with_endpoint_config(app, TokenCache::new(), config).unwrap();
    let err = entra
        .client_credentials(Audience::v2(PC))
        .token()
        .await
        .unwrap_err();
    assert!(err.is_transient(), "{err}");
    assert!(matches!(err, TokenError::Endpoint { .. }), "{err}");
}

/// Keeps the prompt so a test can look at it.
#[derive(Default, Clone)]
struct Shown(Arc<Mutex<Option<DeviceCodePrompt>>>);

#[tokio::test]
async fn the_prompt_names_the_page_and_the_code() {
    let w = world().await;
    let entra = w.entra(CLIENT_SECRET);
    let shown = Shown::default();
    let keep = shown.clone();
    let authority = w.authority.clone();
    entra
        .device_code_login(
            &Audience::v2(PC),
            &MemoryVault::new(),
            &test_login_options(),
            move |p| {
                *keep.0.lock().unwrap() = Some(p.clone());
                authority.approve_device_code(&p.user_code, ADMIN).unwrap();
            },
        )
        .await
        .unwrap();
    let p = shown.0.lock().unwrap().clone().unwrap();
    assert_eq!(p.user_code.len(), 9);
    assert_eq!(p.verification_uri, w.server.url("/devicelogin"));
    assert_eq!(p.expires_in, Duration::from_secs(900));
}

/// A second instance's view of a shared vault: its first load is stale (taken
/// before the other instance rotated the token), later loads are current.
#[derive(Debug)]
struct StaleOnce {
    shared: Arc<MemoryVault>,
    stale: Mutex<Option<SecretString>>,
}

#[async_trait]
impl RefreshTokenVault for StaleOnce {
    async fn load(&self) -> Result<Option<SecretString>, VaultError> {
        if let Some(stale) = self.stale.lock().unwrap().take() {
            return Ok(Some(stale));
        }
        self.shared.load().await
    }

    async fn store(&self, token: SecretString) -> Result<(), VaultError> {
        self.shared.store(token).await
    }
}

#[tokio::test]
async fn instances_sharing_a_vault_survive_racing_rotations() {
    let w = world().await;
    let metrics = Metrics::default();
    let _m = metrics::set_default_local_recorder(&metrics);
    let first = initial_refresh_token(&w).await;
    let shared = Arc::new(MemoryVault::with_token(SecretString::from(first.clone())));
    let b_view = Arc::new(StaleOnce {
        shared: shared.clone(),
        stale: Mutex::new(Some(SecretString::from(first.clone()))),
    });
    // Two instances: separate caches, one vault.
    let a = w
        .entra(CLIENT_SECRET)
        .refresh_token(Audience::v2(PC), shared.clone());
    let b = w
        .entra(CLIENT_SECRET)
        .refresh_token(Audience::v2(PC), b_view);

    a.token().await.unwrap();
    // B read the vault before A's rotation landed: it presents the dead token,
    // Entra refuses it, B re-reads the vault and uses A's successor.
    b.token().await.unwrap();
    assert_eq!(w.errors("invalid_grant"), 1);
    assert_eq!(w.issued("refresh_token"), 2);
    assert_eq!(shared.stores(), 2);
    assert_eq!(b.health().state, HealthState::Healthy);
    assert_eq!(
        metrics.sum("refsync_token_refresh_failures_total"),
        0.0,
        "no false alarm"
    );
}
