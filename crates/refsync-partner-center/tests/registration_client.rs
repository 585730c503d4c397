#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
//! The webhook registration client against the Partner Center emulator: register,
//! show, update, list events, send test events and read their delivery attempts,
//! and the 429 on the third test event within a minute.

mod pc_clients_support;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::post;
use pc_clients_support::*;
use refsync_emulators::server::{EmulatorHandle, serve};
use refsync_partner_center::registration::{
    REFERRAL_EVENTS, RegistrationError, RegistrationRequest, TEST_EVENT,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use url::Url;

/// A callback that answers every delivery with `status`, counting them.
async fn receiver(status: StatusCode) -> (EmulatorHandle, Arc<AtomicU32>) {
    let count = Arc::new(AtomicU32::new(0));
    let seen = count.clone();
    let app = Router::new().route(
        "/webhooks/partner-center",
        post(move || {
            let seen = seen.clone();
            async move {
                seen.fetch_add(1, Ordering::SeqCst);
                status
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    (serve(app, listener).unwrap(), count)
}

fn url(handle: &EmulatorHandle) -> Url {
    Url::parse(&handle.url("/webhooks/partner-center")).unwrap()
}

#[tokio::test]
async fn register_show_and_update() {
    let pc = start().await;
    let client = pc.registration();
    assert!(
        client.get().await.unwrap().is_none(),
        "nothing registered yet"
    );

    let first = RegistrationRequest::for_referrals(
        &Url::parse("https://sync.contoso.example/hook").unwrap(),
    );
    let created = client.create(&first).await.unwrap();
    assert!(created.subscriber_id.is_some());
    assert_eq!(created.webhook_url, "https://sync.contoso.example/hook");
    for event in REFERRAL_EVENTS.iter().chain([&TEST_EVENT]) {
        assert!(created.subscribes_to(event), "{event}");
    }

    let shown = client.get().await.unwrap().unwrap();
    assert_eq!(shown.webhook_url, created.webhook_url);
    assert_eq!(shown.subscriber_id, created.subscriber_id);
    assert_eq!(shown.signature_token_to_ms_signature_header, Some(true));
    assert!(shown.last_modified_timestamp.is_some());

    let err = client.create(&first).await.unwrap_err();
    assert!(matches!(err, RegistrationError::AlreadyRegistered), "{err}");

    let second = RegistrationRequest {
        webhook_url: "https://sync2.contoso.example/hook".to_owned(),
        webhook_events: vec!["referral-created".to_owned(), "referral-updated".to_owned()],
        signature_token_to_ms_signature_header: false,
    };
    let updated = client.update(&second).await.unwrap();
    assert_eq!(updated.webhook_url, second.webhook_url);
    assert_eq!(
        updated.subscriber_id, created.subscriber_id,
        "same subscriber"
    );
    let shown = client.get().await.unwrap().unwrap();
    assert_eq!(shown.webhook_events, second.webhook_events);
    assert_eq!(shown.signature_token_to_ms_signature_header, Some(false));
    assert!(!shown.subscribes_to(TEST_EVENT));
}

#[tokio::test]
async fn update_without_a_registration_is_not_found() {
    let pc = start().await;
    let request =
        RegistrationRequest::for_referrals(&Url::parse("https://x.example/hook").unwrap());
    let err = pc.registration().update(&request).await.unwrap_err();
    assert!(matches!(err, RegistrationError::NotFound), "{err}");
}

#[tokio::test]
async fn supported_events_are_listed() {
    let pc = start().await;
    let events = pc.registration().events().await.unwrap();
    for event in REFERRAL_EVENTS.iter().chain([&TEST_EVENT]) {
        assert!(events.iter().any(|e| e == event), "{event} in {events:?}");
    }
}

#[tokio::test]
async fn test_events_report_their_delivery_and_the_third_in_a_minute_is_throttled() {
    let pc = start().await;
    let (callback, delivered) = receiver(StatusCode::OK).await;
    let client = pc.registration();
    client
        .create(&RegistrationRequest::for_referrals(&url(&callback)))
        .await
        .unwrap();

    let correlation_id = client.send_validation_event().await.unwrap();
    pc.emulator().wait_for_deliveries().await;
    let status = client.validation_status(&correlation_id).await.unwrap();
    assert_eq!(status.correlation_id, correlation_id);
    assert_eq!(status.status, "completed");
    assert_eq!(
        status.callback_url.as_deref(),
        Some(url(&callback).as_str())
    );
    assert_eq!(status.results.len(), 1);
    assert_eq!(status.results[0].response_code, "OK");
    assert!(!status.results[0].system_error);
    assert!(status.partner_id.is_some());
    assert_eq!(delivered.load(Ordering::SeqCst), 1);

    client.send_validation_event().await.unwrap();
    let err = client.send_validation_event().await.unwrap_err();
    match err {
        RegistrationError::Throttled { retry_after } => {
            let wait = retry_after.expect("Retry-After");
            assert!(
                wait > Duration::ZERO && wait <= Duration::from_secs(60),
                "{wait:?}"
            );
        }
        other => panic!("unexpected {other}"),
    }
    pc.emulator().wait_for_deliveries().await;
    assert_eq!(
        delivered.load(Ordering::SeqCst),
        2,
        "the throttled request sent nothing"
    );

    // A minute later (on the emulator's clock) test events are accepted again.
    pc.emulator()
        .authority()
        .advance_clock(Duration::from_secs(61));
    client.send_validation_event().await.unwrap();
}

#[tokio::test]
async fn failed_deliveries_show_in_the_status() {
    let pc = start().await;
    let (callback, _) = receiver(StatusCode::INTERNAL_SERVER_ERROR).await;
    let client = pc.registration();
    client
        .create(&RegistrationRequest::for_referrals(&url(&callback)))
        .await
        .unwrap();
    let correlation_id = client.send_validation_event().await.unwrap();
    pc.emulator().wait_for_deliveries().await;
    let status = client.validation_status(&correlation_id).await.unwrap();
    assert!(
        status.results.len() > 1,
        "every attempt is listed: {status:?}"
    );
    assert!(status.results.iter().all(|r| r.response_code != "OK"));

    let err = client
        .validation_status("00000000-0000-0000-0000-000000000000")
        .await
        .unwrap_err();
    assert!(matches!(err, RegistrationError::NotFound), "{err}");
}
