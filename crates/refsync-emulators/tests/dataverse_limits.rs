#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
//! Service protection (crm.md §1.12) and fault injection through HTTP: request
//! windows, concurrency, growing Retry-After, the usage counters and limits of the
//! control API, and injected 429/503/delays in Dataverse's error shape.

mod dataverse_support;

use dataverse_support::{Resp, read, start_with};
use refsync_emulators::dataverse::{DataverseConfig, Measure, ServiceProtectionLimits};
use refsync_emulators::faults::FaultRule;
use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;

fn config(requests: u32, window_secs: u64, concurrent: u32) -> DataverseConfig {
    DataverseConfig::default().with_limits(ServiceProtectionLimits::small(
        requests,
        Duration::from_secs(window_secs),
        concurrent,
    ))
}

fn retry_after(r: &Resp) -> u64 {
    r.header("Retry-After")
        .expect("Retry-After")
        .parse()
        .unwrap()
}

#[tokio::test]
async fn a_burst_over_the_window_is_throttled_until_it_passes() {
    let env = start_with(config(5, 60, 10)).await;
    for i in 0..5 {
        let r = env.get("WhoAmI").await;
        assert_eq!(r.status, 200, "request {i}");
        assert_eq!(
            r.header("x-ms-ratelimit-burst-remaining-xrm-requests")
                .unwrap(),
            (4 - i).to_string()
        );
    }
    let r = env.get("WhoAmI").await;
    assert_eq!((r.status, r.code()), (429, "0x80072322"));
    assert_eq!(
        r.message(),
        "Number of requests exceeded the limit of 5 over time window of 60 seconds."
    );
    let first = retry_after(&r);
    assert!((1..=60).contains(&first), "{first}");
    // Keeping on sending makes the wait longer.
    let second = retry_after(&env.get("WhoAmI").await);
    let third = retry_after(&env.get("WhoAmI").await);
    assert!(second > first && third > second, "{first} {second} {third}");
    // Writes are limited the same way; the last Retry-After is the one that counts.
    let write = env
        .post("leads", &json!({"subject": "s", "lastname": "l"}))
        .await;
    assert_eq!(write.status, 429);
    let last = retry_after(&write);
    assert!(last > third);
    // Waiting it out (the environment clock moves instead of the test sleeping).
    env.emu
        .dataverse()
        .advance_clock(Duration::from_secs(last - 1));
    assert_eq!(env.get("WhoAmI").await.status, 429, "one second early");
    let last = retry_after(&env.get("WhoAmI").await);
    env.emu.dataverse().advance_clock(Duration::from_secs(last));
    assert_eq!(env.get("WhoAmI").await.status, 200);

    let usage = env.emu.dataverse().usage();
    assert_eq!(usage.requests_served, 6);
    assert_eq!(usage.throttled.get(&Measure::Requests), Some(&6));
    assert_eq!(usage.responses.get(&429), Some(&6));
    assert_eq!(usage.users.len(), 1);
}

#[tokio::test]
async fn a_short_window_frees_up_in_real_time() {
    let env = start_with(config(2, 1, 10)).await;
    assert_eq!(env.get("WhoAmI").await.status, 200);
    assert_eq!(env.get("WhoAmI").await.status, 200);
    let r = env.get("WhoAmI").await;
    assert_eq!(r.status, 429);
    let wait = retry_after(&r);
    assert_eq!(wait, 1);
    // The protocol's wait: Retry-After seconds.
    tokio::time::sleep(Duration::from_secs(wait)).await;
    assert_eq!(env.get("WhoAmI").await.status, 200);
}

#[tokio::test]
async fn requests_over_the_concurrency_limit_fail_at_once() {
    let env = start_with(config(1000, 300, 2)).await;
    // Two slow requests hold both slots (an injected delay runs inside the limits).
    env.emu
        .dataverse()
        .faults()
        .install(FaultRule {
            delay_ms: Some(700),
            count: Some(2),
            path_prefix: Some("/api/data/v9.2/WhoAmI".to_owned()),
            ..FaultRule::default()
        })
        .unwrap();
    let slow = |env: &dataverse_support::Env| {
        let request = env
            .http
            .get(env.url("WhoAmI"))
            .bearer_auth(&env.token)
            .send();
        tokio::spawn(async move { request.await.unwrap().status().as_u16() })
    };
    let a = slow(&env);
    let b = slow(&env);
    // Wait (bounded) until both are in progress.
    let mut in_flight = 0;
    for _ in 0..200 {
        in_flight = env
            .emu
            .dataverse()
            .usage()
            .users
            .iter()
            .map(|u| u.in_flight)
            .sum::<u32>();
        if in_flight == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(in_flight, 2);
    let r = env.get("leads").await;
    assert_eq!((r.status, r.code()), (429, "0x80072326"));
    assert_eq!(
        r.message(),
        "Number of concurrent requests exceeded the limit of 2."
    );
    assert!(r.header("Retry-After").is_some());
    assert_eq!((a.await.unwrap(), b.await.unwrap()), (200, 200));
    // Slots free up as requests finish.
    assert_eq!(env.get("leads").await.status, 200);
    assert_eq!(
        env.emu
            .dataverse()
            .usage()
            .throttled
            .get(&Measure::Concurrency),
        Some(&1)
    );
}

#[tokio::test]
async fn limits_and_usage_through_the_control_api() {
    let env = start_with(DataverseConfig::default()).await;
    let limits: Value = env
        .http
        .get(env.control("/_emulator/dataverse/limits"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(limits["requests_per_window"], 6000);
    assert_eq!(limits["concurrent_requests"], 52);
    assert_eq!(limits["window"], "5m");
    let r = env
        .http
        .put(env.control("/_emulator/dataverse/limits"))
        .json(&json!({"requests_per_window": 1, "window": "30s"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(env.get("WhoAmI").await.status, 200);
    assert_eq!(env.get("WhoAmI").await.status, 429);
    let usage: Value = env
        .http
        .get(env.control("/_emulator/dataverse/usage"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(usage["requests_served"], 1);
    assert_eq!(usage["throttled"]["requests"], 1);
    assert_eq!(usage["responses"]["429"], 1);
    assert_eq!(usage["limits"]["window"], "30s");
    // The control API itself is never limited, and resets the counters.
    let r = env
        .http
        .post(env.control("/_emulator/dataverse/usage/reset"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(env.get("WhoAmI").await.status, 200);
    let r = env
        .http
        .put(env.control("/_emulator/dataverse/limits"))
        .json(&json!({"window": "0s"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // The clock can be read and moved.
    let clock: Value = env
        .http
        .post(env.control("/_emulator/dataverse/clock/advance"))
        .json(&json!({"seconds": 120}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(clock["offset_seconds"], 120);
}

#[tokio::test]
async fn injected_faults_answer_in_the_dataverse_shape() {
    let env = start_with(DataverseConfig::default()).await;
    let r = env
        .http
        .post(env.control("/_emulator/faults"))
        .json(&json!({"status": 503, "count": 1, "path_prefix": "/api/data"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = env.get("leads").await;
    assert_eq!(r.status, 503);
    assert!(r.body["error"]["message"].is_string(), "{}", r.text);
    assert_eq!(env.get("leads").await.status, 200);

    env.emu
        .dataverse()
        .faults()
        .install(
            FaultRule::status_times(429, 1)
                .retry_after(7)
                .on_method("PATCH"),
        )
        .unwrap();
    let r = env
        .patch(
            "leads(00000000-0000-4000-8000-000000000001)",
            &[],
            &json!({"subject": "s", "lastname": "l"}),
        )
        .await;
    assert_eq!((r.status, r.code()), (429, "0x80072322"));
    assert_eq!(r.header("Retry-After"), Some("7"));
    // Injected 429s are counted among the responses, not as service-protection refusals.
    let usage = env.emu.dataverse().usage();
    assert_eq!(usage.responses.get(&429), Some(&1));
    assert!(usage.throttled.is_empty());

    // Faults never reach the control API, and tokens are checked before faults.
    env.emu
        .dataverse()
        .faults()
        .install(FaultRule {
            status: Some(500),
            ..FaultRule::default()
        })
        .unwrap();
    let summary = env
        .http
        .get(env.control("/_emulator/dataverse"))
        .send()
        .await
        .unwrap();
    assert_eq!(summary.status(), 200);
    let r = read(env.http.get(env.url("leads")).send().await.unwrap()).await;
    assert_eq!(r.status, 401);
    let r = env.send(Method::GET, "leads", &[], None).await;
    assert_eq!((r.status, r.code()), (500, "0x80040216"));
}
