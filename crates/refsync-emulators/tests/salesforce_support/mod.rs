//! Starts a Salesforce emulator on an ephemeral port with a manual clock and
//! talks to it over HTTP, as a client would.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs, dead_code)]

use chrono::{DateTime, Utc};
use refsync_emulators::salesforce::config::{
    DEMO_CONSUMER_KEY, DEMO_CONSUMER_SECRET, SalesforceConfig,
};
use refsync_emulators::salesforce::{Clock, SalesforceEmulator};
use refsync_emulators::server::EmulatorHandle;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// The API version the tests speak.
pub const V: &str = "v59.0";

pub fn start_time() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-01-15T10:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

pub struct Org {
    pub emulator: SalesforceEmulator,
    pub handle: EmulatorHandle,
    pub http: reqwest::Client,
    pub token: String,
}

/// A response reduced to what the tests look at.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// `errorCode` of the first error in a top-level error array.
    pub fn error_code(&self) -> &str {
        self.body[0]["errorCode"].as_str().unwrap_or("")
    }
}

pub async fn start() -> Org {
    start_with(SalesforceConfig::default()).await
}

pub async fn start_with(config: SalesforceConfig) -> Org {
    let emulator = SalesforceEmulator::new(config, Clock::manual(start_time())).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let handle = emulator.serve(listener).unwrap();
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .unwrap();
    let mut org = Org {
        emulator,
        handle,
        http,
        token: String::new(),
    };
    let token = org.client_credentials_token().await;
    org.token = token;
    org
}

impl Org {
    pub fn url(&self, path: &str) -> String {
        self.handle.url(path)
    }

    pub async fn token_request(&self, form: &[(&str, &str)]) -> Reply {
        let response = self
            .http
            .post(self.url("/services/oauth2/token"))
            .form(form)
            .send()
            .await
            .unwrap();
        reply(response).await
    }

    pub async fn client_credentials_token(&self) -> String {
        let r = self
            .token_request(&[
                ("grant_type", "client_credentials"),
                ("client_id", DEMO_CONSUMER_KEY),
                ("client_secret", DEMO_CONSUMER_SECRET),
            ])
            .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        r.body["access_token"].as_str().unwrap().to_owned()
    }

    /// Sends a request with the session token; `path` is relative to `/services/data/v59.0`
    /// unless it starts with `/services` or `/_emulator`.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let full = if path.starts_with("/services") || path.starts_with("/_emulator") {
            self.url(path)
        } else {
            self.url(&format!("/services/data/{V}{path}"))
        };
        let mut request = self.http.request(method, full).bearer_auth(&self.token);
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        reply(request.send().await.unwrap()).await
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(Method::GET, path, None, &[]).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.send(Method::POST, path, Some(body), &[]).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> Reply {
        self.send(Method::PATCH, path, Some(body), &[]).await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        self.send(Method::DELETE, path, None, &[]).await
    }

    /// Creates a record through the API and returns its id.
    pub async fn create(&self, object: &str, body: Value) -> String {
        let r = self.post(&format!("/sobjects/{object}/"), body).await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        r.body["id"].as_str().unwrap().to_owned()
    }

    pub async fn create_lead(&self, last_name: &str) -> String {
        self.create(
            "Lead",
            json!({"LastName": last_name, "Company": "Contoso", "Status": "Open - Not Contacted"}),
        )
        .await
    }

    /// Gets a fresh session (after moving the clock past the session timeout).
    pub async fn relogin(&mut self) {
        self.token = self.client_credentials_token().await;
    }

    pub fn advance(&self, secs: i64) {
        assert!(
            self.emulator
                .clock()
                .advance(chrono::TimeDelta::seconds(secs))
        );
    }

    pub fn integration_user_id(&self) -> String {
        self.emulator
            .user_id(refsync_emulators::salesforce::config::INTEGRATION_USER)
            .unwrap()
    }

    pub fn seller_user_id(&self) -> String {
        self.emulator
            .user_id(refsync_emulators::salesforce::config::SELLER_USER)
            .unwrap()
    }
}

pub async fn reply(response: reqwest::Response) -> Reply {
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.bytes().await.unwrap();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
    };
    Reply {
        status,
        headers,
        body,
    }
}
