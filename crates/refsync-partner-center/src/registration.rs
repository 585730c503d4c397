//! The Partner Center webhook registration client (partner-center.md §2.1):
//! `https://api.partnercenter.microsoft.com/webhooks/v1/registration`.
//!
//! One registration per partner tenant: one URL and the events sent to it. The
//! client views, creates and updates it (PUT; no DELETE is documented), lists the
//! event names, sends a test (`test-created`) event and reads its delivery
//! attempts. Bodies use the documented keys (`WebhookUrl`, `WebhookEvents`,
//! `SignatureTokenToMsSignatureHeader`); answers are read ignoring key case,
//! because the docs write PascalCase and the swagger camelCase.
//!
//! Tokens: app-only (client credentials) for `https://api.partnercenter.microsoft.com`
//! works, as does App+User (§2.1).

use http::StatusCode;
use refsync_outbound::call::{ApiConfigError, RetryPolicy};
use refsync_outbound::{ApiClient, ApiConfig, ApiRequest, CallError, TokenSource};
use serde::Serialize;
use serde_json::{Map, Value};
use std::sync::Arc;
use std::time::Duration;
use url::Url;

/// The webhook registration API's host (the usual Partner Center host, §2.1).
pub const DEFAULT_BASE_URL: &str = "https://api.partnercenter.microsoft.com";
/// The events refsync registers for (§2.2, and the connector's current set, §4.1).
pub const REFERRAL_EVENTS: [&str; 4] = [
    "referral-created",
    "referral-updated",
    "related-referral-created",
    "related-referral-updated",
];
/// The event a test (validation) event is sent as.
pub const TEST_EVENT: &str = "test-created";

const REGISTRATION: &str = "webhooks/v1/registration";

/// Why a registration API call failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RegistrationError {
    /// Throttled (test events: 2 per minute, §2.1); try again after `retry_after`.
    #[error("throttled by Partner Center{}", retry_after.map(|d| format!("; retry after {}s", d.as_secs())).unwrap_or_default())]
    Throttled {
        /// The service's `Retry-After`.
        retry_after: Option<Duration>,
    },
    /// There is no registration (or no such test event) to act on (404).
    #[error("no webhook registration (or test event) exists")]
    NotFound,
    /// A registration already exists; update it instead (409).
    #[error("a webhook registration already exists; update it instead")]
    AlreadyRegistered,
    /// The service answered with something unexpected.
    #[error("unexpected registration API response: {detail}")]
    Decode {
        /// What was wrong.
        detail: String,
    },
    /// The call failed (transport, timeout, token, or another status).
    #[error(transparent)]
    Call(#[from] CallError),
}

/// What to register: the callback URL and its events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RegistrationRequest {
    /// Where Partner Center posts events.
    pub webhook_url: String,
    /// The events to send there.
    pub webhook_events: Vec<String>,
    /// Put the signature in `x-ms-signature` instead of `Authorization` (§2.5).
    pub signature_token_to_ms_signature_header: bool,
}

impl RegistrationRequest {
    /// `url` for the four referral events and `test-created`, signature in
    /// `x-ms-signature` (so `Authorization` stays free).
    pub fn for_referrals(url: &Url) -> Self {
        let mut events: Vec<String> = REFERRAL_EVENTS.iter().map(|e| (*e).to_owned()).collect();
        events.push(TEST_EVENT.to_owned());
        Self {
            webhook_url: url.to_string(),
            webhook_events: events,
            signature_token_to_ms_signature_header: true,
        }
    }
}

/// The registration as the service reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookRegistration {
    /// `SubscriberId`, when reported.
    pub subscriber_id: Option<String>,
    /// `WebhookUrl`.
    pub webhook_url: String,
    /// `WebhookEvents`.
    pub webhook_events: Vec<String>,
    /// `SignatureTokenToMsSignatureHeader`, when reported.
    pub signature_token_to_ms_signature_header: Option<bool>,
    /// `lastModifiedTimestamp`, as sent.
    pub last_modified_timestamp: Option<String>,
}

impl WebhookRegistration {
    fn from_json(value: &Value) -> Result<Self, RegistrationError> {
        let object = value
            .as_object()
            .ok_or_else(|| decode("registration is not an object"))?;
        let text = |name: &str| get_ci(object, name).and_then(text_of);
        Ok(Self {
            subscriber_id: text("SubscriberId"),
            webhook_url: text("WebhookUrl")
                .ok_or_else(|| decode("registration without WebhookUrl"))?,
            webhook_events: get_ci(object, "WebhookEvents")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(text_of).collect())
                .unwrap_or_default(),
            signature_token_to_ms_signature_header: get_ci(
                object,
                "SignatureTokenToMsSignatureHeader",
            )
            .and_then(Value::as_bool),
            last_modified_timestamp: text("LastModifiedTimestamp"),
        })
    }

    /// True when `event` is among the registered events (ignoring case).
    pub fn subscribes_to(&self, event: &str) -> bool {
        self.webhook_events
            .iter()
            .any(|e| e.eq_ignore_ascii_case(event))
    }
}

/// The delivery status of a test event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationStatus {
    /// The correlation id the test event was sent with.
    pub correlation_id: String,
    /// The partner id.
    pub partner_id: Option<String>,
    /// `completed`, or in progress.
    pub status: String,
    /// Where it was sent.
    pub callback_url: Option<String>,
    /// One entry per delivery attempt.
    pub results: Vec<DeliveryResult>,
}

/// One delivery attempt of a test event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryResult {
    /// The callback's answer, e.g. `OK`.
    pub response_code: String,
    /// The callback's message.
    pub response_message: String,
    /// True when Partner Center could not reach the callback at all.
    pub system_error: bool,
    /// When (as sent).
    pub date_time_utc: Option<String>,
}

/// The webhook registration API.
#[derive(Debug, Clone)]
pub struct RegistrationClient {
    api: ApiClient,
}

impl RegistrationClient {
    /// The call policy refsync uses for this API: 30 s per attempt, default retries.
    pub fn default_api_config(base_url: Url) -> ApiConfig {
        ApiConfig::new("partner-center-webhooks", base_url)
            .with_timeout(Duration::from_secs(30))
            .with_retry(RetryPolicy::default())
    }

    /// A client over `api` (tokens for `https://api.partnercenter.microsoft.com`).
    pub fn new(api: ApiClient) -> Self {
        Self { api }
    }

    /// A client for `base_url` with [`RegistrationClient::default_api_config`].
    pub fn connect(base_url: Url, tokens: Arc<dyn TokenSource>) -> Result<Self, ApiConfigError> {
        Ok(Self::new(ApiClient::new(
            Self::default_api_config(base_url),
            Some(tokens),
        )?))
    }

    /// The registration, or `None` when there is none (404).
    pub async fn get(&self) -> Result<Option<WebhookRegistration>, RegistrationError> {
        match self.api.send(ApiRequest::get(REGISTRATION)).await {
            Ok(r) => WebhookRegistration::from_json(&json_of(&r.body)?).map(Some),
            Err(e) if e.status() == Some(StatusCode::NOT_FOUND) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Creates the registration (a plain POST: not repeated once sent).
    pub async fn create(
        &self,
        request: &RegistrationRequest,
    ) -> Result<WebhookRegistration, RegistrationError> {
        let call = ApiRequest::post(REGISTRATION)
            .json(request)
            .map_err(|e| decode(&e.to_string()))?;
        self.write(call).await
    }

    /// Replaces the registration (PUT: safe to repeat).
    pub async fn update(
        &self,
        request: &RegistrationRequest,
    ) -> Result<WebhookRegistration, RegistrationError> {
        let call = ApiRequest::put(REGISTRATION)
            .json(request)
            .map_err(|e| decode(&e.to_string()))?;
        self.write(call).await
    }

    async fn write(&self, call: ApiRequest) -> Result<WebhookRegistration, RegistrationError> {
        let response = self.api.send(call).await.map_err(classify)?;
        WebhookRegistration::from_json(&json_of(&response.body)?)
    }

    /// The event names the service supports.
    pub async fn events(&self) -> Result<Vec<String>, RegistrationError> {
        let response = self
            .api
            .send(ApiRequest::get(format!("{REGISTRATION}/events")))
            .await
            .map_err(classify)?;
        json_of(&response.body)?
            .as_array()
            .map(|a| a.iter().filter_map(text_of).collect())
            .ok_or_else(|| decode("events is not an array"))
    }

    /// Sends a test (`test-created`) event to the registered URL and returns its
    /// correlation id. Throttled to 2 a minute: the third within a minute is
    /// [`RegistrationError::Throttled`] with the service's `Retry-After`. Not
    /// repeated by the client, since each request sends an event.
    pub async fn send_validation_event(&self) -> Result<String, RegistrationError> {
        let response = self
            .api
            .send(ApiRequest::post(format!("{REGISTRATION}/validationEvents")))
            .await
            .map_err(classify)?;
        let body = json_of(&response.body)?;
        body.as_object()
            .and_then(|o| get_ci(o, "correlationId"))
            .and_then(text_of)
            .ok_or_else(|| decode("no correlationId in the answer"))
    }

    /// The delivery attempts of the test event `correlation_id`.
    pub async fn validation_status(
        &self,
        correlation_id: &str,
    ) -> Result<ValidationStatus, RegistrationError> {
        if correlation_id.is_empty()
            || !correlation_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            return Err(decode("a correlation id is letters, digits and dashes"));
        }
        let response = self
            .api
            .send(ApiRequest::get(format!(
                "{REGISTRATION}/validationEvents/{correlation_id}"
            )))
            .await
            .map_err(classify)?;
        let body = json_of(&response.body)?;
        let o = body
            .as_object()
            .ok_or_else(|| decode("status is not an object"))?;
        let results = get_ci(o, "results")
            .and_then(Value::as_array)
            .map(|items| {
                items
                    .iter()
                    .filter_map(Value::as_object)
                    .map(|r| DeliveryResult {
                        response_code: get_ci(r, "responseCode")
                            .and_then(text_of)
                            .unwrap_or_default(),
                        response_message: get_ci(r, "responseMessage")
                            .and_then(text_of)
                            .unwrap_or_default(),
                        system_error: get_ci(r, "systemError")
                            .and_then(Value::as_bool)
                            .unwrap_or(false),
                        date_time_utc: get_ci(r, "dateTimeUtc").and_then(text_of),
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(ValidationStatus {
            correlation_id: get_ci(o, "correlationId")
                .and_then(text_of)
                .unwrap_or_else(|| correlation_id.to_owned()),
            partner_id: get_ci(o, "partnerId").and_then(text_of),
            status: get_ci(o, "status").and_then(text_of).unwrap_or_default(),
            callback_url: get_ci(o, "callbackUrl").and_then(text_of),
            results,
        })
    }
}

fn classify(e: CallError) -> RegistrationError {
    match e.status() {
        Some(StatusCode::TOO_MANY_REQUESTS) => RegistrationError::Throttled {
            retry_after: e.retry_after(),
        },
        Some(StatusCode::NOT_FOUND) => RegistrationError::NotFound,
        Some(StatusCode::CONFLICT) => RegistrationError::AlreadyRegistered,
        _ => RegistrationError::Call(e),
    }
}

fn decode(detail: &str) -> RegistrationError {
    RegistrationError::Decode {
        detail: detail.to_owned(),
    }
}

fn json_of(body: &[u8]) -> Result<Value, RegistrationError> {
    serde_json::from_slice(body).map_err(|e| decode(&e.to_string()))
}

/// A member by name, ignoring case (PascalCase docs, camelCase swagger).
fn get_ci<'a>(object: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    object.get(name).or_else(|| {
        object
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    })
}

fn text_of(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn requests_use_the_documented_keys() {
        let r = RegistrationRequest::for_referrals(
            &Url::parse("https://sync.example/webhooks").unwrap(),
        );
        let body = serde_json::to_value(&r).unwrap();
        assert_eq!(body["WebhookUrl"], "https://sync.example/webhooks");
        assert_eq!(body["SignatureTokenToMsSignatureHeader"], true);
        assert_eq!(body["WebhookEvents"].as_array().unwrap().len(), 5);
    }

    #[test]
    fn answers_are_read_in_either_case() {
        for body in [
            json!({"SubscriberId": "s", "WebhookUrl": "https://a/", "WebhookEvents": ["referral-created"]}),
            json!({"subscriberId": "s", "webhookUrl": "https://a/", "webhookEvents": ["referral-created"], "signatureTokenToMsSignatureHeader": true, "lastModifiedTimestamp": "2026-11-23T00:00:00Z"}),
        ] {
            let r = WebhookRegistration::from_json(&body).unwrap();
            assert_eq!(r.subscriber_id.as_deref(), Some("s"));
            assert_eq!(r.webhook_url, "https://a/");
            assert!(r.subscribes_to("Referral-Created"));
        }
        assert!(WebhookRegistration::from_json(&json!({"WebhookEvents": []})).is_err());
    }
}
