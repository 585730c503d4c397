//! Shared set-up for the Dataverse emulator's HTTP tests: an emulator on an
//! ephemeral port with its own Entra tenant, a client-credentials token obtained
//! over HTTP, and small request helpers.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, missing_docs)]

use refsync_emulators::dataverse::{DataverseConfig, DataverseEmulator};
use refsync_emulators::entra::{DEMO_CLIENT_ID, DEMO_CLIENT_SECRET};
use reqwest::Method;
use reqwest::header::HeaderMap;
use serde_json::Value;

pub struct Env {
    pub emu: DataverseEmulator,
    pub http: reqwest::Client,
    pub token: String,
}

pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The `error.code` of a Dataverse error body.
    pub fn code(&self) -> &str {
        self.body["error"]["code"]
            .as_str()
            .unwrap_or("<no error body>")
    }

    pub fn message(&self) -> &str {
        self.body["error"]["message"]
            .as_str()
            .unwrap_or("<no error body>")
    }

    /// The GUID at the end of `OData-EntityId`.
    pub fn entity_id(&self) -> String {
        let header = self.header("OData-EntityId").expect("OData-EntityId");
        let inner = header.rsplit_once('(').unwrap().1.trim_end_matches(')');
        inner.to_owned()
    }
}

pub async fn start() -> Env {
    start_with(DataverseConfig::default()).await
}

pub async fn start_with(config: DataverseConfig) -> Env {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let emu = DataverseEmulator::start(config, listener).unwrap();
    let http = reqwest::Client::new();
    let token = app_token(&http, &emu, &format!("{}/.default", emu.org_url())).await;
    Env { emu, http, token }
}

/// A client-credentials token from the emulator's own tenant (crm.md §1.2).
pub async fn app_token(http: &reqwest::Client, emu: &DataverseEmulator, scope: &str) -> String {
    let body: Value = http
        .post(emu.token_url().unwrap())
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", &DEMO_CLIENT_ID.to_string()),
            ("client_secret", DEMO_CLIENT_SECRET),
            ("scope", scope),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["access_token"].as_str().expect("a token").to_owned()
}

impl Env {
    /// `path` under the Web API root (`leads`, `leads(<id>)?$select=…`), or an absolute URL.
    pub fn url(&self, path: &str) -> String {
        if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}{}", self.emu.api_url(), path.trim_start_matches('/'))
        }
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Resp {
        self.send_as(&self.token, method, path, headers, body).await
    }

    pub async fn send_as(
        &self,
        token: &str,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Resp {
        let mut request = self
            .http
            .request(method, self.url(path))
            .bearer_auth(token)
            .header("Accept", "application/json")
            .header("OData-MaxVersion", "4.0")
            .header("OData-Version", "4.0");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.unwrap();
        read(response).await
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.send(Method::GET, path, &[], None).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Resp {
        self.send(Method::POST, path, &[], Some(body)).await
    }

    pub async fn patch(&self, path: &str, headers: &[(&str, &str)], body: &Value) -> Resp {
        self.send(Method::PATCH, path, headers, Some(body)).await
    }

    pub async fn delete(&self, path: &str, headers: &[(&str, &str)]) -> Resp {
        self.send(Method::DELETE, path, headers, None).await
    }

    /// Creates a record and returns its id (asserting 204).
    pub async fn create(&self, set: &str, body: &Value) -> String {
        let r = self.post(set, body).await;
        assert_eq!(r.status, 204, "create {set}: {}", r.text);
        r.entity_id()
    }

    /// A control-API URL.
    pub fn control(&self, path: &str) -> String {
        self.emu
            .base_url()
            .join(path.trim_start_matches('/'))
            .unwrap()
            .to_string()
    }
}

pub async fn read(response: reqwest::Response) -> Resp {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Resp {
        status,
        headers,
        body,
        text,
    }
}
