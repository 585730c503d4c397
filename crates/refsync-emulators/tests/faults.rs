#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
//! Fault injection through the control API of a running server.

use axum::Router;
use axum::routing::get;
use refsync_emulators::faults::{FaultInjector, FaultRule, responders};
use refsync_emulators::server::{EmulatorHandle, bind_and_serve};
use serde_json::{Value, json};

async fn start(injector: &FaultInjector) -> EmulatorHandle {
    let app = Router::new()
        .route("/api/data/v9.2/leads", get(|| async { "leads" }))
        .route("/services/data/v62.0/limits", get(|| async { "limits" }));
    bind_and_serve(injector.mount(app), "127.0.0.1:0")
        .await
        .unwrap()
}

#[tokio::test]
async fn throttling_rule_answers_in_the_dataverse_shape_then_recovers() {
    let injector = FaultInjector::new(responders::dataverse());
    let server = start(&injector).await;
    let http = reqwest::Client::new();

    let resp = http
        .post(server.url("/_emulator/faults"))
        .json(
            &json!({"status": 429, "count": 2, "retry_after_secs": 7, "path_prefix": "/api/data"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let rule: Value = resp.json().await.unwrap();
    assert_eq!(rule["remaining"], 2);

    for _ in 0..2 {
        let resp = http
            .get(server.url("/api/data/v9.2/leads"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 429);
        assert_eq!(resp.headers()["retry-after"], "7");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["code"], "0x80072322");
        assert_eq!(
            body["error"]["message"],
            "Number of requests exceeded the limit of 6000 over time window of 300 seconds."
        );
    }
    let resp = http
        .get(server.url("/api/data/v9.2/leads"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), "leads");

    let listed: Value = http
        .get(server.url("/_emulator/faults"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["rules"][0]["fired"], 2);
    assert_eq!(listed["rules"][0]["matched"], 2);
    assert_eq!(listed["rules"][0]["remaining"], 0);

    let resp = http
        .delete(server.url("/_emulator/faults"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    assert!(injector.list().is_empty());
}

#[tokio::test]
async fn control_api_stays_reachable_and_refuses_bad_rules() {
    let injector = FaultInjector::new(responders::partner_center());
    let server = start(&injector).await;
    let http = reqwest::Client::new();
    // Every request fails with 503 ...
    injector
        .install(FaultRule {
            status: Some(503),
            ..FaultRule::default()
        })
        .unwrap();
    let resp = http
        .get(server.url("/api/data/v9.2/leads"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 503);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["code"], 503);
    assert!(body["description"].is_string());
    // ... but not the control API.
    let resp = http
        .post(server.url("/_emulator/faults"))
        .json(&json!({"status": 700}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let resp = http
        .post(server.url("/_emulator/faults"))
        .json(&json!({"status": 500, "bogus": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let resp = http
        .delete(server.url("/_emulator/faults/999"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
}

#[tokio::test]
async fn salesforce_limits_are_403_request_limit_exceeded() {
    let injector = FaultInjector::new(responders::salesforce());
    let server = start(&injector).await;
    injector
        .install(FaultRule::status_times(429, 1).on_method("GET"))
        .unwrap();
    let resp = reqwest::get(server.url("/services/data/v62.0/limits"))
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body,
        json!([{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}])
    );
}

#[tokio::test]
async fn delay_only_rules_slow_requests_down_and_let_them_through() {
    let injector = FaultInjector::new(responders::plain());
    let server = start(&injector).await;
    injector
        .install(FaultRule {
            delay_ms: Some(5),
            count: Some(1),
            ..FaultRule::default()
        })
        .unwrap();
    let resp = reqwest::get(server.url("/api/data/v9.2/leads"))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(injector.list()[0].fired, 1);
    server.shutdown().await.unwrap();
}
