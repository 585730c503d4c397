//! API usage accounting, the daily allocation, `/limits`, injected faults, and
//! change detection (getUpdated/getDeleted).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod salesforce_support;

use refsync_emulators::salesforce::config::SalesforceConfig;
use reqwest::{Method, StatusCode};
use salesforce_support::{start, start_with};
use serde_json::json;

#[tokio::test]
async fn every_call_carries_the_usage_header_and_counts_one() {
    let org = start().await;
    let r = org.get("/limits").await;
    assert_eq!(r.header("sforce-limit-info"), Some("api-usage=1/100000"));
    assert_eq!(
        r.body,
        json!({"DailyApiRequests": {"Max": 100000, "Remaining": 99999}})
    );
    let r = org.post("/sobjects/Account", json!({})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        r.header("sforce-limit-info"),
        Some("api-usage=2/100000"),
        "failed calls count too"
    );
    let r = org.get("/query?q=SELECT+Id+FROM+Account").await;
    assert_eq!(r.header("sforce-limit-info"), Some("api-usage=3/100000"));
    // The control API is free.
    let usage = org.get("/_emulator/salesforce/usage").await;
    assert_eq!(
        usage.body,
        json!({"used": 3, "max": 100000, "remaining": 99997})
    );
    org.get("/_emulator/salesforce/records/Account").await;
    assert_eq!(org.emulator.api_usage(), (3, 100000));
}

#[tokio::test]
async fn past_the_allocation_every_call_is_refused_until_the_window_moves() {
    let mut config = SalesforceConfig::default();
    config.limits.daily_api_requests = 3;
    let mut org = start_with(config).await;
    for n in 1..=3 {
        let r = org.get("/limits").await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(
            r.header("sforce-limit-info"),
            Some(format!("api-usage={n}/3").as_str())
        );
    }
    org.advance(3600);
    let r = org.get("/limits").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(
        r.body,
        json!([{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}])
    );
    assert!(
        r.header("retry-after").is_none(),
        "Salesforce sends no Retry-After"
    );
    let r = org
        .post("/composite/sobjects", json!({"records": []}))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // The token endpoint and the versions list still work.
    org.relogin().await;
    assert_eq!(org.get("/services/data/").await.status, StatusCode::OK);
    // 24 hours after the first calls the window has room again.
    org.advance(86_400 - 3600 + 60);
    org.relogin().await;
    assert_eq!(org.get("/limits").await.status, StatusCode::OK);
}

#[tokio::test]
async fn the_control_api_resets_usage_and_sets_the_allocation() {
    let org = start().await;
    org.get("/limits").await;
    let r = org
        .send(
            Method::PUT,
            "/_emulator/salesforce/limits",
            Some(json!({"daily_api_requests": 1})),
            &[],
        )
        .await;
    assert_eq!(r.body, json!({"used": 1, "max": 1, "remaining": 0}));
    assert_eq!(org.get("/limits").await.status, StatusCode::FORBIDDEN);
    assert_eq!(
        org.send(Method::DELETE, "/_emulator/salesforce/usage", None, &[])
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    let r = org.get("/limits").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.body["DailyApiRequests"],
        json!({"Max": 1, "Remaining": 0})
    );
}

#[tokio::test]
async fn faults_produce_salesforce_shaped_403_and_503() {
    let org = start().await;
    let r = org
        .send(
            Method::POST,
            "/_emulator/faults",
            Some(json!({"status": 403, "count": 1, "path_prefix": "/services/data"})),
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let r = org.get("/limits").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(
        r.body,
        json!([{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}])
    );
    assert_eq!(
        org.get("/limits").await.status,
        StatusCode::OK,
        "the rule fired once"
    );

    org.send(
        Method::POST,
        "/_emulator/faults",
        Some(json!({"status": 503, "count": 2})),
        &[],
    )
    .await;
    let r = org.post("/sobjects/Account", json!({"Name": "Down"})).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.error_code(), "SERVER_UNAVAILABLE");
    // Control paths are never faulted, and nothing was written.
    let r = org.get("/_emulator/salesforce/records/Account").await;
    assert_eq!(r.body["totalSize"], 0);
    assert_eq!(
        org.post("/sobjects/Account", json!({"Name": "Down"}))
            .await
            .status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(
        org.post("/sobjects/Account", json!({"Name": "Up"}))
            .await
            .status,
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn get_updated_and_get_deleted_cover_minute_windows() {
    let org = start().await;
    // 10:00:00 — created; 10:01:30 — b created; 10:03:00 — a updated, c created and deleted.
    let a = org.create_lead("A").await;
    org.advance(90);
    let b = org.create_lead("B").await;
    org.advance(90);
    org.patch(&format!("/sobjects/Lead/{a}"), json!({"Title": "x"}))
        .await;
    let c = org.create_lead("C").await;
    org.delete(&format!("/sobjects/Lead/{c}")).await;
    org.advance(120); // now 10:05:00

    let r = org
        .get("/sobjects/Lead/updated/?start=2026-01-15T10%3A00%3A00%2B00%3A00&end=2026-01-15T10%3A02%3A59%2B00%3A00")
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(
        r.body,
        json!({"ids": [b], "latestDateCovered": "2026-01-15T10:02:00.000+0000"}),
        "seconds are ignored"
    );
    let r = org
        .get("/sobjects/Lead/updated/?start=2026-01-15T10:02:00Z&end=2026-01-15T11:00:00Z")
        .await;
    assert_eq!(
        r.body,
        json!({"ids": [a], "latestDateCovered": "2026-01-15T10:05:00.000+0000"}),
        "capped at now; deleted c is not listed"
    );

    let r = org
        .get("/sobjects/Lead/deleted/?start=2026-01-15T10%3A00%3A00%2B00%3A00&end=2026-01-15T10%3A10%3A00%2B00%3A00")
        .await;
    assert_eq!(
        r.body,
        json!({
            "deletedRecords": [{"id": c, "deletedDate": "2026-01-15T10:03:00.000+0000"}],
            "earliestDateAvailable": "2026-01-15T10:03:00.000+0000",
            "latestDateCovered": "2026-01-15T10:05:00.000+0000",
        })
    );

    let r = org
        .get("/sobjects/Lead/updated/?start=2025-11-01T00:00:00Z&end=2026-01-15T10:00:00Z")
        .await;
    assert_eq!(r.error_code(), "INVALID_REPLICATION_DATE");
    let r = org
        .get("/sobjects/Lead/updated/?start=2026-01-15T10:04:00Z&end=2026-01-15T10:00:00Z")
        .await;
    assert_eq!(r.error_code(), "INVALID_REPLICATION_DATE");
    let r = org.get("/sobjects/Lead/updated/").await;
    assert_eq!(r.error_code(), "MISSING_ARGUMENT");
}

#[tokio::test]
async fn the_manual_clock_is_driven_through_the_control_api() {
    let mut org = start().await;
    let r = org
        .send(
            Method::POST,
            "/_emulator/salesforce/clock",
            Some(json!({"advance_secs": 61})),
            &[],
        )
        .await;
    assert_eq!(
        r.body,
        json!({"now": "2026-01-15T10:01:01.000+0000", "manual": true})
    );
    let r = org
        .send(
            Method::POST,
            "/_emulator/salesforce/clock",
            Some(json!({"now": "2026-02-01T00:00:00Z"})),
            &[],
        )
        .await;
    assert_eq!(r.body["now"], "2026-02-01T00:00:00.000+0000");
    org.relogin().await;
    let id = org.create_lead("Later").await;
    assert_eq!(
        org.get(&format!("/sobjects/Lead/{id}")).await.body["CreatedDate"],
        "2026-02-01T00:00:00.000+0000"
    );
    let users = org.get("/_emulator/salesforce/users").await;
    assert_eq!(
        users.body["users"][0]["id"],
        json!(org.integration_user_id())
    );
}
