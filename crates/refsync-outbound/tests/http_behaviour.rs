#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
//! The call policy against a small axum server that misbehaves on purpose:
//! paging, 429 storms (the server checks its Retry-After is honoured), a limit the
//! pacer must stay under, 503 bursts, timeouts, retries of creates with and
//! without `MS-RequestId`, and error bodies.

mod support;

use axum::Json;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use refsync_emulators::server::{EmulatorHandle, serve};
use refsync_outbound::call::{
    ApiClient, ApiConfig, ApiRequest, CallError, Idempotency, Pacing, RetryPolicy,
};
use serde_json::{Value, json};
use std::collections::{HashMap, VecDeque};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::Metrics;
use uuid::Uuid;

#[derive(Default)]
struct ServerState {
    /// Requests seen per route.
    hits: HashMap<&'static str, u32>,
    /// Headers of each `/create` request.
    create_headers: Vec<HeaderMap>,
    /// Records created, by `MS-RequestId` when one was sent.
    created: Vec<Option<String>>,
    /// When the last 429 said the client may come back.
    not_before: Option<Instant>,
    /// Requests that came back before the Retry-After had passed.
    early_returns: u32,
    /// Arrival times within the last second (for the rate limit).
    window: VecDeque<Instant>,
    throttled: u32,
    in_flight: u32,
    max_in_flight: u32,
}

#[derive(Clone, Default)]
struct Shared(Arc<Mutex<ServerState>>);

impl Shared {
    fn hit(&self, route: &'static str) -> u32 {
        let mut s = self.0.lock().unwrap();
        let n = s.hits.entry(route).or_default();
        *n += 1;
        *n
    }

    fn hits(&self, route: &'static str) -> u32 {
        self.0.lock().unwrap().hits.get(route).copied().unwrap_or(0)
    }
}

/// `GET /items?page=N`: 40 pages of 3 items; the next link is absolute and says
/// `http://` whatever the scheme, like Partner Center's sample (§1.4).
async fn items(
    State(s): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Json<Value> {
    s.hit("items");
    let page: u32 = q.get("page").and_then(|p| p.parse().ok()).unwrap_or(1);
    let host = headers.get("host").unwrap().to_str().unwrap();
    let value: Vec<Value> = (0..3)
        .map(|i| json!({ "id": format!("{page}-{i}") }))
        .collect();
    let mut body = json!({ "value": value });
    if page < 40 {
        body["@odata.nextLink"] = json!(format!(
            "http://{host}/items?page={}&$skiptoken=t{}",
            page + 1,
            page
        ));
    }
    Json(body)
}

/// `GET /storm`: 429 with `Retry-After: 1` twice, then 200. Counts requests
/// that come back before the wait is over.
async fn storm(State(s): State<Shared>) -> Response {
    let n = s.hit("storm");
    let mut st = s.0.lock().unwrap();
    let now = Instant::now();
    if st.not_before.is_some_and(|t| now < t) {
        st.early_returns += 1;
    }
    if n <= 2 {
        st.not_before = Some(now + Duration::from_secs(1));
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", "1")],
            "slow down",
        )
            .into_response();
    }
    Json(json!({ "ok": true })).into_response()
}

/// `GET /long-wait`: always 429 with a two-minute `Retry-After`.
async fn long_wait(State(s): State<Shared>) -> Response {
    s.hit("long-wait");
    (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "120")], "").into_response()
}

/// `GET /limited`: at most 50 requests in any one-second window, else 429.
async fn limited(State(s): State<Shared>) -> Response {
    s.hit("limited");
    let mut st = s.0.lock().unwrap();
    let now = Instant::now();
    while st
        .window
        .front()
        .is_some_and(|t| now - *t >= Duration::from_secs(1))
    {
        st.window.pop_front();
    }
    if st.window.len() >= 50 {
        st.throttled += 1;
        return (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "1")], "").into_response();
    }
    st.window.push_back(now);
    StatusCode::NO_CONTENT.into_response()
}

/// `GET /slow-counted`: holds each request 30 ms and records the most in flight.
async fn slow_counted(State(s): State<Shared>) -> StatusCode {
    {
        let mut st = s.0.lock().unwrap();
        st.in_flight += 1;
        st.max_in_flight = st.max_in_flight.max(st.in_flight);
    }
    tokio::time::sleep(Duration::from_millis(30)).await;
    s.0.lock().unwrap().in_flight -= 1;
    StatusCode::NO_CONTENT
}

/// `GET /flaky`: 503 three times, then 200.
async fn flaky(State(s): State<Shared>) -> Response {
    if s.hit("flaky") <= 3 {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"code": 503, "description": "try later"})),
        )
            .into_response();
    }
    Json(json!({ "ok": true })).into_response()
}

/// `GET /hang`: answers after 10 s (the client gives up long before).
async fn hang(State(s): State<Shared>) -> StatusCode {
    s.hit("hang");
    tokio::time::sleep(Duration::from_secs(10)).await;
    StatusCode::OK
}

/// `POST /create`: creates a record — deduplicated by `MS-RequestId` when sent —
/// and on the first request answers 503 anyway, as a gateway that loses the
/// answer after the work was done.
async fn create(State(s): State<Shared>, headers: HeaderMap) -> Response {
    let n = s.hit("create");
    let request_id = headers
        .get("ms-requestid")
        .map(|v| v.to_str().unwrap().to_owned());
    let mut st = s.0.lock().unwrap();
    st.create_headers.push(headers);
    let known = request_id.is_some() && st.created.contains(&request_id);
    if !known {
        st.created.push(request_id);
    }
    if n == 1 {
        return (StatusCode::SERVICE_UNAVAILABLE, "upstream timeout").into_response();
    }
    (
        StatusCode::CREATED,
        Json(json!({ "created": st.created.len() })),
    )
        .into_response()
}

/// `PATCH /stale`: 412 with Partner Center's error body.
async fn stale(State(s): State<Shared>) -> Response {
    s.hit("stale");
    (
        StatusCode::PRECONDITION_FAILED,
        Json(json!({"code": 2055, "description": "Etag is no longer valid", "data": [], "source": "PartnerCenter"})),
    )
        .into_response()
}

/// `GET /big`: 64 KiB.
async fn big() -> String {
    "x".repeat(64 * 1024)
}

async fn start() -> (EmulatorHandle, Shared) {
    let shared = Shared::default();
    let app = Router::new()
        .route("/items", get(items))
        .route("/storm", get(storm))
        .route("/long-wait", get(long_wait))
        .route("/limited", get(limited))
        .route("/slow-counted", get(slow_counted))
        .route("/flaky", get(flaky))
        .route("/hang", get(hang))
        .route("/create", post(create))
        .route("/stale", axum::routing::patch(stale))
        .route("/big", get(big))
        .with_state(shared.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    (serve(app, listener).unwrap(), shared)
}

fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 5,
        max_elapsed: Duration::from_secs(20),
        min_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(20),
        max_retry_after: Duration::from_secs(2),
        jitter: true,
    }
}

fn client(server: &EmulatorHandle, config: impl FnOnce(ApiConfig) -> ApiConfig) -> ApiClient {
    let base = ApiConfig::new("test", server.base_url().clone())
        .with_timeout(Duration::from_secs(5))
        .with_retry(fast_retries());
    ApiClient::new(config(base), None).unwrap()
}

#[tokio::test]
async fn paging_follows_next_links_across_many_pages() {
    let (server, shared) = start().await;
    let api = client(&server, |c| c);
    let mut ids = Vec::new();
    let mut request = ApiRequest::get("items");
    for _ in 0..100 {
        let page: Value = api.send(request).await.unwrap().json().unwrap();
        ids.extend(
            page["value"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v["id"].as_str().unwrap().to_owned()),
        );
        match page["@odata.nextLink"].as_str() {
            Some(next) => request = ApiRequest::to_url(http::Method::GET, next.parse().unwrap()),
            None => break,
        }
    }
    assert_eq!(ids.len(), 120);
    assert_eq!(ids.first().unwrap(), "1-0");
    assert_eq!(ids.last().unwrap(), "40-2");
    assert_eq!(shared.hits("items"), 40);
}

#[tokio::test]
async fn a_link_to_another_host_is_never_followed() {
    let (server, shared) = start().await;
    let api = client(&server, |c| c);
    let err = api
        .send(ApiRequest::to_url(
            http::Method::GET,
            "https://evil.example/items?page=2".parse().unwrap(),
        ))
        .await
        .unwrap_err();
    assert!(matches!(err, CallError::InvalidRequest { .. }), "{err}");
    assert_eq!(shared.hits("items"), 0);
}

#[tokio::test]
async fn a_429_storm_is_ridden_out_honouring_retry_after() {
    let (server, shared) = start().await;
    let metrics = Metrics::default();
    let _m = metrics::set_default_local_recorder(&metrics);
    let api = client(&server, |c| c);
    let response = api.send(ApiRequest::get("storm")).await.unwrap();
    assert_eq!(response.attempts, 3);
    assert_eq!(shared.hits("storm"), 3);
    assert_eq!(
        shared.0.lock().unwrap().early_returns,
        0,
        "came back before Retry-After"
    );
    assert_eq!(
        metrics.get("refsync_outbound_throttled_total{api=test,status=429}"),
        2.0
    );
    assert_eq!(
        metrics.get("refsync_outbound_retries_total{api=test,reason=throttled}"),
        2.0
    );
}

#[tokio::test]
async fn a_retry_after_beyond_the_cap_fails_at_once_as_throttled() {
    let (server, shared) = start().await;
    let api = client(&server, |c| c);
    let err = api.send(ApiRequest::get("long-wait")).await.unwrap_err();
    match &err {
        CallError::Throttled {
            status,
            retry_after,
            attempts,
            ..
        } => {
            assert_eq!(*status, StatusCode::TOO_MANY_REQUESTS);
            assert_eq!(*retry_after, Some(Duration::from_secs(120)));
            assert_eq!(*attempts, 1);
        }
        other => panic!("unexpected {other}"),
    }
    assert!(err.is_transient());
    assert_eq!(err.retry_after(), Some(Duration::from_secs(120)));
    assert_eq!(shared.hits("long-wait"), 1);
}

async fn run_many(api: &ApiClient, total: usize, workers: usize) -> Vec<Result<u16, CallError>> {
    let queue = Arc::new(Mutex::new(total));
    let tasks = (0..workers).map(|_| {
        let api = api.clone();
        let queue = queue.clone();
        async move {
            let mut results = Vec::new();
            loop {
                {
                    let mut left = queue.lock().unwrap();
                    if *left == 0 {
                        break;
                    }
                    *left -= 1;
                }
                results.push(
                    api.send(ApiRequest::get("limited"))
                        .await
                        .map(|r| r.status.as_u16()),
                );
            }
            results
        }
    });
    futures::future::join_all(tasks)
        .await
        .into_iter()
        .flatten()
        .collect()
}

#[tokio::test]
async fn pacing_keeps_a_long_run_under_the_servers_limit() {
    // The control run: the same load unpaced meets the limit.
    let (control, control_state) = start().await;
    let unpaced = client(&control, |c| c.with_retry(RetryPolicy::never()));
    let results = run_many(&unpaced, 120, 8).await;
    assert!(
        results.iter().any(Result::is_err),
        "the limit was never hit unpaced"
    );
    assert!(control_state.0.lock().unwrap().throttled > 0);

    // The paced run on a fresh server: 30/s against a 50/s limit.
    let (server, shared) = start().await;
    let paced = client(&server, |c| {
        c.with_retry(RetryPolicy::never())
            .with_pacing(Pacing::per_second(NonZeroU32::new(30).unwrap()))
    });
    let results = run_many(&paced, 75, 8).await;
    assert_eq!(results.len(), 75);
    assert!(results.iter().all(|r| matches!(r, Ok(204))));
    assert_eq!(shared.0.lock().unwrap().throttled, 0);
}

#[tokio::test]
async fn the_concurrency_cap_holds() {
    let (server, shared) = start().await;
    let capped = client(&server, |c| c.with_max_concurrency(3));
    let calls = (0..12).map(|_| {
        let api = capped.clone();
        async move { api.send(ApiRequest::get("slow-counted")).await.unwrap() }
    });
    futures::future::join_all(calls).await;
    assert_eq!(shared.0.lock().unwrap().max_in_flight, 3);

    // Without the cap the same burst goes out at once.
    shared.0.lock().unwrap().max_in_flight = 0;
    let uncapped = client(&server, |c| c);
    let calls = (0..12).map(|_| {
        let api = uncapped.clone();
        async move { api.send(ApiRequest::get("slow-counted")).await.unwrap() }
    });
    futures::future::join_all(calls).await;
    assert!(shared.0.lock().unwrap().max_in_flight > 3);
}

#[tokio::test]
async fn a_503_burst_is_retried_for_an_idempotent_call() {
    let (server, shared) = start().await;
    let api = client(&server, |c| c);
    let r = api.send(ApiRequest::get("flaky")).await.unwrap();
    assert_eq!(r.attempts, 4);
    assert_eq!(shared.hits("flaky"), 4);

    // With fewer attempts allowed than the burst lasts, the 503 is reported.
    shared.0.lock().unwrap().hits.clear();
    let short = client(&server, |c| {
        c.with_retry(RetryPolicy {
            max_attempts: 2,
            ..fast_retries()
        })
    });
    let err = short.send(ApiRequest::get("flaky")).await.unwrap_err();
    match &err {
        CallError::Status {
            status,
            code,
            attempts,
            ..
        } => {
            assert_eq!(*status, StatusCode::SERVICE_UNAVAILABLE);
            assert_eq!(code.as_deref(), Some("503"));
            assert_eq!(*attempts, 2);
        }
        other => panic!("unexpected {other}"),
    }
}

#[tokio::test]
async fn timeouts_are_retried_then_reported() {
    let (server, shared) = start().await;
    let api = client(&server, |c| {
        c.with_timeout(Duration::from_millis(100))
            .with_retry(RetryPolicy {
                max_attempts: 2,
                ..fast_retries()
            })
    });
    let err = api.send(ApiRequest::get("hang")).await.unwrap_err();
    assert!(
        matches!(err, CallError::Timeout { attempts: 2, .. }),
        "{err}"
    );
    assert!(err.is_transient());
    assert_eq!(shared.hits("hang"), 2);
}

#[tokio::test]
async fn a_plain_post_is_not_retried_but_one_with_ms_request_id_is() {
    let (server, shared) = start().await;
    let api = client(&server, |c| c);

    let err = api.send(ApiRequest::post("create")).await.unwrap_err();
    assert_eq!(err.status(), Some(StatusCode::SERVICE_UNAVAILABLE));
    assert_eq!(
        shared.hits("create"),
        1,
        "a plain POST must not be repeated"
    );

    *shared.0.lock().unwrap() = ServerState::default();
    let request = ApiRequest::post("create")
        .json(&json!({ "name": "x" }))
        .unwrap()
        .idempotency(Idempotency::IdempotentWithRequestId);
    let response = api.send(request).await.unwrap();
    assert_eq!(response.status, StatusCode::CREATED);
    assert_eq!(shared.hits("create"), 2);
    let s = shared.0.lock().unwrap();
    assert_eq!(s.created.len(), 1, "exactly one record");
    let ids: Vec<&str> = s
        .create_headers
        .iter()
        .map(|h| h.get("ms-requestid").unwrap().to_str().unwrap())
        .collect();
    assert_eq!(ids[0], ids[1], "MS-RequestId is reused on the retry");
    assert_eq!(Some(Uuid::parse_str(ids[0]).unwrap()), response.request_id);
    let correlation: Vec<&str> = s
        .create_headers
        .iter()
        .map(|h| h.get("ms-correlationid").unwrap().to_str().unwrap())
        .collect();
    assert_eq!(
        correlation[0], correlation[1],
        "one correlation id per call"
    );
    assert_eq!(correlation[0], response.correlation_id.to_string());
    assert_eq!(
        s.create_headers[0].get("content-type").unwrap(),
        "application/json"
    );
}

#[tokio::test]
async fn error_bodies_become_typed_status_errors_without_retries() {
    let (server, shared) = start().await;
    let api = client(&server, |c| c);
    let err = api
        .send(ApiRequest::patch("stale").idempotency(Idempotency::Idempotent))
        .await
        .unwrap_err();
    match &err {
        CallError::Status {
            status,
            code,
            message,
            ..
        } => {
            assert_eq!(*status, StatusCode::PRECONDITION_FAILED);
            assert_eq!(code.as_deref(), Some("2055"));
            assert_eq!(message.as_deref(), Some("Etag is no longer valid"));
        }
        other => panic!("unexpected {other}"),
    }
    assert!(!err.is_transient());
    assert_eq!(shared.hits("stale"), 1);
    assert!(err.to_string().contains("test PATCH /stale"), "{err}");
}

#[tokio::test]
async fn oversized_responses_are_refused() {
    let (server, _shared) = start().await;
    let api = client(&server, |mut c| {
        c.max_response_bytes = 1024;
        c
    });
    let err = api.send(ApiRequest::get("big")).await.unwrap_err();
    assert!(
        matches!(err, CallError::ResponseTooLarge { limit: 1024, .. }),
        "{err}"
    );
}
