#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
//! The webhook registration API through HTTP: registration CRUD, event names,
//! validation events with their per-attempt status, and the 2-a-minute throttle
//! (partner-center.md §2.1, §2.2).

mod partner_center_support;

use partner_center_support::*;
use refsync_emulators::entra::DEMO_ADMIN_USER;
use refsync_emulators::partner_center::config::{REFERRALS_AUDIENCE, REGISTRATION_AUDIENCE};
use serde_json::json;
use std::time::Duration;

const REGISTRATION: &str = "/webhooks/v1/registration";

#[tokio::test]
async fn registration_is_created_read_updated_and_guarded() {
    let pc = start().await;
    let app = pc.registration_token();
    let user = pc.user_token(DEMO_ADMIN_USER, REGISTRATION_AUDIENCE);

    let none = pc.get(REGISTRATION, &app).await;
    assert_eq!(none.status, 404);
    none.error_description();
    assert_eq!(pc.send(pc.http.get(pc.url(REGISTRATION))).await.status, 401);
    let wrong_audience = pc
        .get(REGISTRATION, &pc.app_token(REFERRALS_AUDIENCE))
        .await;
    assert_eq!(wrong_audience.status, 401);

    // Keys are matched ignoring case; an app-only token may register.
    let created = pc
        .post(
            REGISTRATION,
            &app,
            &json!({"webhookUrl": "https://hooks.contoso.example/pc", "webhookEvents": ["referral-created", "Referral-Updated"]}),
        )
        .await;
    assert_eq!(created.status, 200, "{}", created.body);
    let subscriber = created.body["SubscriberId"].as_str().unwrap().to_owned();
    assert_eq!(
        created.body["WebhookUrl"],
        "https://hooks.contoso.example/pc"
    );
    assert_eq!(
        created.body["WebhookEvents"],
        json!(["referral-created", "referral-updated"])
    );

    // An App+User token may read it too.
    let read = pc.get(REGISTRATION, &user).await;
    assert_eq!(read.status, 200);
    assert_eq!(read.body["WebhookUrl"], "https://hooks.contoso.example/pc");
    assert_eq!(read.body["SignatureTokenToMsSignatureHeader"], false);

    let again = pc
        .post(
            REGISTRATION,
            &app,
            &json!({"WebhookUrl": "https://other.example/", "WebhookEvents": ["test-created"]}),
        )
        .await;
    assert_eq!(again.status, 409);

    let updated = pc
        .send(pc.http.put(pc.url(REGISTRATION)).bearer_auth(&user).json(&json!({
            "WebhookUrl": "https://hooks.contoso.example/v2",
            "WebhookEvents": ["referral-created", "referral-updated", "related-referral-created", "related-referral-updated", "test-created"],
            "SignatureTokenToMsSignatureHeader": true
        })))
        .await;
    assert_eq!(updated.status, 200, "{}", updated.body);
    assert_eq!(updated.body["SubscriberId"], subscriber.as_str());
    let registration = pc.emulator().registration().unwrap();
    assert_eq!(registration.webhook_url, "https://hooks.contoso.example/v2");
    assert!(registration.signature_token_to_ms_signature_header);
    assert_eq!(registration.webhook_events.len(), 5);

    let bad = pc
        .send(pc.http.put(pc.url(REGISTRATION)).bearer_auth(&app).json(&json!({
            "WebhookUrl": "https://hooks.contoso.example/v2", "WebhookEvents": ["referral-deleted"]
        })))
        .await;
    assert_eq!(bad.status, 400);
    assert!(bad.error_description().contains("referral-deleted"));
    assert!(pc.emulator().remove_registration());
    let put_without = pc
        .send(
            pc.http
                .put(pc.url(REGISTRATION))
                .bearer_auth(&app)
                .json(&json!({
                    "WebhookUrl": "https://x.example/", "WebhookEvents": ["test-created"]
                })),
        )
        .await;
    assert_eq!(put_without.status, 404);
}

#[tokio::test]
async fn the_supported_event_names_are_listed() {
    let pc = start().await;
    let events = pc
        .get(&format!("{REGISTRATION}/events"), &pc.registration_token())
        .await;
    assert_eq!(events.status, 200);
    let names: Vec<&str> = events
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for expected in [
        "referral-created",
        "referral-updated",
        "related-referral-created",
        "related-referral-updated",
        "test-created",
        "subscription-updated",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} missing from {names:?}"
        );
    }
}

#[tokio::test]
async fn validation_events_are_delivered_tracked_and_throttled() {
    let pc = start().await;
    let mut receiver = Receiver::start().await;
    let token = pc.registration_token();
    let post_validation = || {
        pc.http
            .post(pc.url(&format!("{REGISTRATION}/validationEvents")))
            .bearer_auth(&token)
    };

    assert_eq!(
        pc.send(post_validation()).await.status,
        404,
        "no registration yet"
    );
    pc.register(&receiver.url, &["referral-created"], false)
        .await;
    let not_subscribed = pc.send(post_validation()).await;
    assert_eq!(not_subscribed.status, 400);
    assert!(not_subscribed.error_description().contains("test-created"));
    pc.emulator().remove_registration();
    pc.register(&receiver.url, &["test-created"], false).await;

    // The receiver fails twice before accepting: one result per attempt.
    receiver.answer(&[500, 503]);
    let first = pc.send(post_validation()).await;
    assert_eq!(first.status, 200, "{}", first.body);
    let correlation = first.body["correlationId"].as_str().unwrap().to_owned();
    let delivered = receiver.next().await;
    assert_eq!(delivered.event_name(), "test-created");
    assert_eq!(delivered.json()["ResourceName"], "test");
    assert!(
        delivered.json()["ResourceUri"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/validationEvents/{correlation}"))
    );
    pc.emulator().wait_for_deliveries().await;

    let status = pc
        .get(
            &format!("{REGISTRATION}/validationEvents/{correlation}"),
            &token,
        )
        .await;
    assert_eq!(status.status, 200);
    assert_eq!(status.body["correlationId"], correlation.as_str());
    assert_eq!(status.body["status"], "completed");
    assert_eq!(status.body["callbackUrl"], receiver.url.as_str());
    assert_eq!(
        status.body["partnerId"],
        pc.emulator().config().partner.organization_id.as_str()
    );
    let codes: Vec<&str> = status.body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["responseCode"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["InternalServerError", "ServiceUnavailable", "OK"]);
    assert_eq!(status.body["results"][2]["systemError"], false);

    // Two a minute: the third within the minute is throttled, with Retry-After.
    assert_eq!(pc.send(post_validation()).await.status, 200);
    let throttled = pc.send(post_validation()).await;
    assert_eq!(throttled.status, 429);
    throttled.error_description();
    let retry_after: u64 = throttled.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    pc.server.authority().advance_clock(Duration::from_secs(61));
    assert_eq!(pc.send(post_validation()).await.status, 200);

    let unknown = pc
        .get(
            &format!("{REGISTRATION}/validationEvents/00000000-0000-0000-0000-000000000000"),
            &token,
        )
        .await;
    assert_eq!(unknown.status, 404);
}
