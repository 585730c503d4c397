//! Shared by the `partner_center_*` integration tests: a started emulator, tokens,
//! JSON helpers, and a webhook receiver (an axum server on 127.0.0.1:0) whose
//! answers a test can script.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, missing_docs)]

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use refsync_emulators::entra::{DEMO_ADMIN_USER, DEMO_CLIENT_ID, DEMO_REFERRAL_USER};
use refsync_emulators::partner_center::config::{REFERRALS_AUDIENCE, REGISTRATION_AUDIENCE};
use refsync_emulators::partner_center::{
    PartnerCenterConfig, PartnerCenterEmulator, PartnerCenterServer,
};
use refsync_emulators::server::{EmulatorHandle, serve};
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

pub const REFERRALS: &str = "/v1.0/engagements/referrals";

pub struct Pc {
    pub server: PartnerCenterServer,
    pub http: reqwest::Client,
    pub admin: String,
}

pub async fn start_with(config: PartnerCenterConfig) -> Pc {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = PartnerCenterEmulator::start(config, listener).unwrap();
    let admin = server
        .authority()
        .issue_user_token(DEMO_CLIENT_ID, DEMO_ADMIN_USER, REFERRALS_AUDIENCE)
        .unwrap();
    Pc {
        server,
        http: reqwest::Client::new(),
        admin,
    }
}

pub async fn start() -> Pc {
    start_with(PartnerCenterConfig::for_tests()).await
}

/// A response reduced to what tests look at.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Reply {
    async fn from(resp: reqwest::Response) -> Self {
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Reply {
            status,
            headers,
            body,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts the documented error shape and returns the description.
    pub fn error_description(&self) -> String {
        for field in ["code", "description", "data", "source"] {
            assert!(
                self.body.get(field).is_some(),
                "{field} missing in {}",
                self.body
            );
        }
        assert!(self.body["data"].is_array());
        self.body["description"].as_str().unwrap().to_owned()
    }
}

impl Pc {
    pub fn url(&self, path: &str) -> String {
        self.server.url(path)
    }

    pub fn emulator(&self) -> &PartnerCenterEmulator {
        self.server.emulator()
    }

    pub fn user_token(&self, user: &str, audience: &str) -> String {
        self.server
            .authority()
            .issue_user_token(DEMO_CLIENT_ID, user, audience)
            .unwrap()
    }

    pub fn referral_user(&self) -> String {
        self.user_token(DEMO_REFERRAL_USER, REFERRALS_AUDIENCE)
    }

    pub fn app_token(&self, audience: &str) -> String {
        self.server
            .authority()
            .issue_app_token(DEMO_CLIENT_ID, audience)
            .unwrap()
    }

    pub fn registration_token(&self) -> String {
        self.app_token(REGISTRATION_AUDIENCE)
    }

    pub async fn send(&self, request: reqwest::RequestBuilder) -> Reply {
        Reply::from(request.send().await.unwrap()).await
    }

    pub async fn get(&self, path_or_url: &str, token: &str) -> Reply {
        let url = if path_or_url.starts_with("http") {
            path_or_url.to_owned()
        } else {
            self.url(path_or_url)
        };
        self.send(self.http.get(url).bearer_auth(token)).await
    }

    pub async fn post(&self, path: &str, token: &str, body: &Value) -> Reply {
        self.send(self.http.post(self.url(path)).bearer_auth(token).json(body))
            .await
    }

    pub async fn patch(&self, id: &str, body: &Value, headers: &[(&str, &str)]) -> Reply {
        let mut request = self
            .http
            .patch(self.url(&format!("{REFERRALS}/{id}")))
            .bearer_auth(&self.admin)
            .json(body);
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        self.send(request).await
    }

    /// Follows `@odata.nextLink` to the end (bounded), returning every page.
    pub async fn all_pages(&self, first: &str, token: &str) -> Vec<Value> {
        let mut pages = Vec::new();
        let mut next = Some(first.to_owned());
        while let Some(url) = next.take() {
            assert!(pages.len() < 100, "too many pages");
            let reply = self.get(&url, token).await;
            assert_eq!(reply.status, 200, "{}", reply.body);
            next = reply.body["@odata.nextLink"].as_str().map(str::to_owned);
            pages.push(reply.body);
        }
        pages
    }

    /// Registers `url` for `events` with an app-only token.
    pub async fn register(&self, url: &str, events: &[&str], ms_signature: bool) {
        let reply = self
            .post(
                "/webhooks/v1/registration",
                &self.registration_token(),
                &json!({"WebhookUrl": url, "WebhookEvents": events, "SignatureTokenToMsSignatureHeader": ms_signature}),
            )
            .await;
        assert_eq!(reply.status, 200, "{}", reply.body);
    }
}

pub fn ids(values: &[Value]) -> Vec<String> {
    values
        .iter()
        .map(|v| v["id"].as_str().unwrap().to_owned())
        .collect()
}

/// A minimal valid referral body.
pub fn referral_body(name: &str) -> Value {
    json!({
        "name": name,
        "type": "Independent",
        "qualification": "SalesQualified",
        "customerProfile": {
            "name": format!("{name} Customer"),
            "address": {"addressLine1": "1 Main St", "city": "Redmond", "state": "WA", "postalCode": "98052", "country": "US"},
            "team": [{"firstName": "Sue", "lastName": "Smith", "email": "sue@fabrikam.example"}]
        },
        "consent": {"consentToToShareInfoWithOthers": true, "consentToContact": true, "consentToShareReferralWithMicrosoftSellers": true},
        "details": {"notes": "n", "dealValue": 1000, "currency": "USD"},
        "team": [{"firstName": "John", "lastName": "Doe", "email": "john.doe@contoso.com"}]
    })
}

/// One webhook as received.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Received {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    pub fn event_name(&self) -> String {
        self.json()["EventName"].as_str().unwrap().to_owned()
    }

    pub fn referral_id(&self) -> String {
        let uri = self.json()["ResourceUri"].as_str().unwrap().to_owned();
        uri.rsplit('/').next().unwrap().to_owned()
    }
}

#[derive(Clone)]
struct ReceiverState {
    tx: mpsc::UnboundedSender<Received>,
    /// Statuses to answer with, in turn; 200 once used up.
    script: Arc<Mutex<VecDeque<u16>>>,
    /// Answer this late (to make the emulator time out).
    stall: Arc<Mutex<Option<Duration>>>,
}

/// A webhook receiver.
pub struct Receiver {
    pub url: String,
    rx: mpsc::UnboundedReceiver<Received>,
    script: Arc<Mutex<VecDeque<u16>>>,
    stall: Arc<Mutex<Option<Duration>>>,
    _server: EmulatorHandle,
}

async fn receive(State(s): State<ReceiverState>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let stall = *s.stall.lock().unwrap();
    let status = s.script.lock().unwrap().pop_front().unwrap_or(200);
    let _ = s.tx.send(Received { headers, body });
    if let Some(d) = stall {
        tokio::time::sleep(d).await;
    }
    StatusCode::from_u16(status).unwrap()
}

impl Receiver {
    pub async fn start() -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let script = Arc::new(Mutex::new(VecDeque::new()));
        let stall = Arc::new(Mutex::new(None));
        let app = Router::new()
            .route("/hook", post(receive))
            .with_state(ReceiverState {
                tx,
                script: script.clone(),
                stall: stall.clone(),
            });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server = serve(app, listener).unwrap();
        Receiver {
            url: server.url("/hook"),
            rx,
            script,
            stall,
            _server: server,
        }
    }

    /// Answer the next requests with these statuses.
    pub fn answer(&self, statuses: &[u16]) {
        self.script.lock().unwrap().extend(statuses);
    }

    pub fn stall(&self, d: Option<Duration>) {
        *self.stall.lock().unwrap() = d;
    }

    /// The next webhook (fails after 10 s).
    pub async fn next(&mut self) -> Received {
        tokio::time::timeout(Duration::from_secs(10), self.rx.recv())
            .await
            .expect("no webhook arrived within 10 s")
            .unwrap()
    }

    /// Everything received so far without waiting.
    pub fn drain(&mut self) -> Vec<Received> {
        let mut out = Vec::new();
        while let Ok(r) = self.rx.try_recv() {
            out.push(r);
        }
        out
    }
}
