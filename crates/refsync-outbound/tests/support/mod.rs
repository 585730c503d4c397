//! Shared test plumbing: an Entra emulator with a bearer-protected resource on the
//! same listener, captured logs, and an in-memory metrics recorder.
#![allow(dead_code)]

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use refsync_emulators::entra::{
    AcceptedTokens, AppRegistration, EntraAuthority, EntraConfig, UserAccount,
};
use refsync_emulators::server::{EmulatorHandle, serve};
use refsync_outbound::call::{ApiClient, ApiConfig, RetryPolicy};
use refsync_outbound::entra::{Audience, Entra, EntraApp, Tenant};
use refsync_outbound::token::{TokenCache, TokenSource};
use secrecy::SecretString;
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use uuid::Uuid;

/// Values that look like real secrets, so a leak is unmistakable in a log.
pub const CLIENT_SECRET: &str = "SECRET-client-Zq8~fT3xLw0pQv.9aB";
pub const PASSWORD: &str = "SECRET-password-Hk4!mN2pR7";
pub const WRONG_SECRET: &str = "SECRET-wrong-client-Yt6uI8oP";
pub const WRONG_PASSWORD: &str = "SECRET-wrong-password-Gf5dS3";
pub const CLIENT_ID: Uuid = Uuid::from_u128(0x1111_2222_3333_4444_5555_6666_7777_8888);
pub const ADMIN: &str = "admin@fabrikam.onmicrosoft.com";
/// The resource the test API validates tokens for.
pub const PC: &str = "https://api.partner.microsoft.com";
pub const PC_REGISTRATION: &str = "https://api.partnercenter.microsoft.com";
pub const CRM: &str = "https://fabrikam.crm.dynamics.com";

/// An Entra tenant plus `GET /api/whoami` (any token for [`PC`]) and
/// `GET /crm/whoami` (tokens for [`CRM`]) on one listener.
pub struct World {
    pub authority: EntraAuthority,
    pub server: EmulatorHandle,
    pub http: reqwest::Client,
}

pub fn entra_config() -> EntraConfig {
    let mut config = EntraConfig::default();
    config.apps.push(AppRegistration::new(
        CLIENT_ID,
        CLIENT_SECRET,
        "refsync-tests",
    ));
    config.users.push(UserAccount::new(
        ADMIN,
        PASSWORD,
        "Ada Admin",
        &["Referral Admin"],
    ));
    // Polling faster than this is answered with slow_down.
    config.device_code_interval = Duration::from_millis(200);
    config
}

pub async fn world() -> World {
    world_with(entra_config()).await
}

pub async fn world_with(config: EntraConfig) -> World {
    let authority = EntraAuthority::new(config).unwrap();
    let api = Router::new()
        .route("/api/whoami", get(whoami_pc))
        .route("/crm/whoami", get(whoami_crm))
        .with_state(authority.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = serve(authority.router().merge(api), listener).unwrap();
    World {
        authority,
        server,
        http: reqwest::Client::new(),
    }
}

async fn whoami(a: &EntraAuthority, headers: &HeaderMap, audience: &str) -> Response {
    match a.authorize(headers, audience, AcceptedTokens::Any) {
        Ok(claims) => Json(json!({ "aud": claims.aud, "upn": claims.upn, "kind": claims.idtyp }))
            .into_response(),
        Err(e) => e.into_response_with(Json(json!({ "code": 401, "description": "unauthorized" }))),
    }
}

async fn whoami_pc(State(a): State<EntraAuthority>, headers: HeaderMap) -> Response {
    whoami(&a, &headers, PC).await
}

async fn whoami_crm(State(a): State<EntraAuthority>, headers: HeaderMap) -> Response {
    whoami(&a, &headers, CRM).await
}

impl World {
    pub fn app(&self, secret: &str) -> EntraApp {
        EntraApp::new(
            self.server.base_url().clone(),
            Tenant::parse(self.authority.tenant_id().to_string()).unwrap(),
            CLIENT_ID.to_string(),
            Some(SecretString::from(secret.to_owned())),
        )
    }

    pub fn entra(&self, secret: &str) -> Entra {
        Entra::new(self.app(secret), TokenCache::new()).unwrap()
    }

    /// An API client for this listener authenticating with `tokens`.
    pub fn api(&self, tokens: Arc<dyn TokenSource>) -> ApiClient {
        let config = ApiConfig::new("test-api", self.server.base_url().clone())
            .with_timeout(Duration::from_secs(5))
            .with_retry(RetryPolicy {
                min_backoff: Duration::from_millis(10),
                max_backoff: Duration::from_millis(50),
                ..RetryPolicy::default()
            });
        ApiClient::new(config, Some(tokens)).unwrap()
    }

    pub fn issued(&self, grant: &str) -> u64 {
        self.authority
            .counters()
            .issued
            .get(grant)
            .copied()
            .unwrap_or(0)
    }

    pub fn errors(&self, error: &str) -> u64 {
        self.authority
            .counters()
            .errors
            .get(error)
            .copied()
            .unwrap_or(0)
    }
}

pub fn pc_v2() -> Audience {
    Audience::v2(PC)
}

/// Everything written through `tracing`, as text.
#[derive(Clone, Default)]
pub struct CapturedLogs(Arc<Mutex<Vec<u8>>>);

impl CapturedLogs {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    /// Installs a TRACE-level subscriber for the current thread (the whole test
    /// on a current-thread runtime, servers included).
    pub fn install(&self) -> tracing::subscriber::DefaultGuard {
        let subscriber = tracing_subscriber::fmt()
            .with_writer(self.clone())
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .finish();
        tracing::subscriber::set_default(subscriber)
    }
}

impl std::io::Write for CapturedLogs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for CapturedLogs {
    type Writer = CapturedLogs;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Counters and gauges by `name{label=value,…}`, for assertions.
#[derive(Clone, Default)]
pub struct Metrics(Arc<Mutex<BTreeMap<String, f64>>>);

impl Metrics {
    pub fn get(&self, key: &str) -> f64 {
        self.0.lock().unwrap().get(key).copied().unwrap_or(0.0)
    }

    /// Sum of every series of `name`.
    pub fn sum(&self, name: &str) -> f64 {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|(k, _)| k.split('{').next() == Some(name))
            .map(|(_, v)| *v)
            .sum()
    }

    pub fn dump(&self) -> String {
        format!("{:#?}", self.0.lock().unwrap())
    }
}

fn key_text(key: &metrics::Key) -> String {
    let mut labels: Vec<String> = key
        .labels()
        .map(|l| format!("{}={}", l.key(), l.value()))
        .collect();
    labels.sort();
    format!("{}{{{}}}", key.name(), labels.join(","))
}

struct Series {
    key: String,
    store: Metrics,
}

impl metrics::CounterFn for Series {
    fn increment(&self, value: u64) {
        *self
            .store
            .0
            .lock()
            .unwrap()
            .entry(self.key.clone())
            .or_default() += value as f64;
    }
    fn absolute(&self, value: u64) {
        self.store
            .0
            .lock()
            .unwrap()
            .insert(self.key.clone(), value as f64);
    }
}

impl metrics::GaugeFn for Series {
    fn increment(&self, value: f64) {
        *self
            .store
            .0
            .lock()
            .unwrap()
            .entry(self.key.clone())
            .or_default() += value;
    }
    fn decrement(&self, value: f64) {
        *self
            .store
            .0
            .lock()
            .unwrap()
            .entry(self.key.clone())
            .or_default() -= value;
    }
    fn set(&self, value: f64) {
        self.store.0.lock().unwrap().insert(self.key.clone(), value);
    }
}

impl metrics::HistogramFn for Series {
    fn record(&self, _value: f64) {
        *self
            .store
            .0
            .lock()
            .unwrap()
            .entry(format!("{}#count", self.key))
            .or_default() += 1.0;
    }
}

impl metrics::Recorder for Metrics {
    fn describe_counter(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn describe_gauge(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn describe_histogram(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }

    fn register_counter(&self, key: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Counter {
        metrics::Counter::from_arc(Arc::new(Series {
            key: key_text(key),
            store: self.clone(),
        }))
    }

    fn register_gauge(&self, key: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Gauge {
        metrics::Gauge::from_arc(Arc::new(Series {
            key: key_text(key),
            store: self.clone(),
        }))
    }

    fn register_histogram(
        &self,
        key: &metrics::Key,
        _: &metrics::Metadata<'_>,
    ) -> metrics::Histogram {
        metrics::Histogram::from_arc(Arc::new(Series {
            key: key_text(key),
            store: self.clone(),
        }))
    }
}
