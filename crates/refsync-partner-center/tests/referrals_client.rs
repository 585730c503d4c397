#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
//! The Referrals API client against the Partner Center emulator: get, paging to
//! the end (and the page bound), filtered listings, creates that never duplicate,
//! JSON Patch with If-Match and the 412 it earns when stale, the obsolete PUT,
//! throttling, and the App+User requirement.

mod pc_clients_support;

use http::StatusCode;
use pc_clients_support::*;
use refsync_core::mapping::{PatchOp, PatchOpKind};
use refsync_core::{Referral, ReferralId, ReferralStatus, ReferralSubstatus};
use refsync_emulators::faults::FaultRule;
use refsync_outbound::entra::{Audience, REFERRALS_RESOURCE};
use refsync_outbound::{ApiRequest, CallError};
use refsync_partner_center::ReferralsClient;
use refsync_partner_center::referrals::{ReferralOrder, ReferralQuery, ReferralsError};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::time::Duration;

fn id_of(v: &Value) -> ReferralId {
    ReferralId::parse(v["id"].as_str().unwrap()).unwrap()
}

fn replace(path: &str, value: Value) -> PatchOp {
    PatchOp {
        op: PatchOpKind::Replace,
        path: path.to_owned(),
        value,
    }
}

/// A referral of our own to create (the fields the create docs require, §1.5).
fn new_referral(name: &str) -> Referral {
    serde_json::from_value(json!({
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
    }))
    .unwrap()
}

#[tokio::test]
async fn get_returns_the_referral_or_none() {
    let pc = start().await;
    let sent = pc.emulator().send_generated_referrals(1);
    // The production sign-in: device code once, then the rotating refresh token.
    let client =
        ReferralsClient::new(pc.api("partner-center-referrals", pc.signed_in_tokens().await));
    let id = id_of(&sent[0]);
    let referral = client.get(&id).await.unwrap().unwrap();
    assert_eq!(referral.id.as_ref(), Some(&id));
    assert_eq!(referral.name.as_deref(), sent[0]["name"].as_str());
    assert!(referral.e_tag.is_some());
    assert!(!referral.extra.keys().any(|k| k.starts_with("@odata")));
    let missing = ReferralId::parse("00000000-0000-0000-0000-000000000000").unwrap();
    assert!(client.get(&missing).await.unwrap().is_none());
}

#[tokio::test]
async fn listing_follows_next_links_to_the_end() {
    let mut config = test_config();
    config.page_size = 7;
    let pc = start_with(config).await;
    let sent = pc.emulator().send_generated_referrals(50);
    let client = pc.referrals();
    let mut pages = client.list(&ReferralQuery::new().order_by(ReferralOrder::CreatedAscending));
    let mut ids = Vec::new();
    while let Some(page) = pages.next_page().await.unwrap() {
        assert!(page.referrals.len() <= 7);
        assert_eq!(page.count, Some(50));
        ids.extend(page.referrals.into_iter().map(|r| r.id.unwrap()));
    }
    assert_eq!(pages.pages_fetched(), 8);
    assert!(pages.next_page().await.unwrap().is_none(), "stays finished");
    let unique: HashSet<_> = ids.iter().collect();
    assert_eq!(unique.len(), 50);
    let expected: Vec<ReferralId> = sent.iter().map(id_of).collect();
    assert_eq!(ids, expected, "creation order");
}

#[tokio::test]
async fn listing_stops_at_the_page_bound() {
    let mut config = test_config();
    config.page_size = 5;
    let pc = start_with(config).await;
    pc.emulator().send_generated_referrals(30);
    let client = pc.referrals().with_max_pages(3);
    let err = client
        .list(&ReferralQuery::new())
        .collect_all()
        .await
        .unwrap_err();
    assert!(
        matches!(err, ReferralsError::TooManyPages { max_pages: 3 }),
        "{err}"
    );
}

#[tokio::test]
async fn filter_select_and_top_reach_the_service() {
    let mut config = test_config();
    config.page_size = 4;
    let pc = start_with(config).await;
    pc.emulator().send_generated_referrals(20);
    let client = pc.referrals();
    let all = client
        .list(&ReferralQuery::new())
        .collect_all()
        .await
        .unwrap();
    let first = all[0].clone();

    let picked = client
        .list(
            &ReferralQuery::new()
                .filter(format!("id eq '{}'", first.id.as_ref().unwrap()))
                .select(["id", "status", "eTag"]),
        )
        .collect_all()
        .await
        .unwrap();
    assert_eq!(picked.len(), 1);
    assert_eq!(picked[0].id, first.id);
    assert!(picked[0].status.is_some());
    assert!(picked[0].customer_profile.is_none(), "$select left it out");

    let top = client
        .list(&ReferralQuery::new().top(6))
        .collect_all()
        .await
        .unwrap();
    assert_eq!(top.len(), 6, "$top spans pages");

    let engagement = first.engagement_id.clone().unwrap();
    let same = client
        .list(&ReferralQuery::engagement(&engagement))
        .collect_all()
        .await
        .unwrap();
    assert!(
        same.iter()
            .all(|r| r.engagement_id.as_ref() == Some(&engagement))
    );
    assert!(same.iter().any(|r| r.id == first.id));
}

#[tokio::test]
async fn the_reconciler_query_sees_only_what_changed_since() {
    let pc = start().await;
    let sent = pc.emulator().send_generated_referrals(5);
    let client = pc.referrals();
    pc.emulator()
        .authority()
        .advance_clock(Duration::from_secs(600));
    let watermark = pc.emulator().now();
    let id = id_of(&sent[2]);
    client
        .update(&id, &[replace("/name", json!("Renamed"))], None, false)
        .await
        .unwrap();
    let changed = client
        .list(&ReferralQuery::updated_since(watermark))
        .collect_all()
        .await
        .unwrap();
    assert_eq!(changed.len(), 1);
    assert_eq!(changed[0].id.as_ref(), Some(&id));
    assert_eq!(changed[0].name.as_deref(), Some("Renamed"));
}

#[tokio::test]
async fn a_retried_create_with_ms_request_id_makes_one_referral_while_a_plain_post_is_not_retried()
{
    let pc = start().await;
    let client = pc.referrals();
    let faults = pc.emulator().faults();

    // A plain POST meets a 503 and is not sent again.
    let rule = faults
        .install(
            FaultRule::status_times(503, 1)
                .on_method("POST")
                .on_path("/v1.0/engagements/referrals"),
        )
        .unwrap();
    let body = new_referral("Plain");
    let err = client
        .api()
        .send(
            ApiRequest::post("v1.0/engagements/referrals")
                .json(&body)
                .unwrap(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(StatusCode::SERVICE_UNAVAILABLE));
    let status = faults.list().into_iter().find(|r| r.id == rule.id).unwrap();
    assert_eq!(status.matched, 1, "sent exactly once");
    assert!(pc.emulator().referrals().is_empty());

    // The client's create carries MS-RequestId: the 503 is retried, one referral results.
    faults
        .install(FaultRule::status_times(503, 2).on_method("POST"))
        .unwrap();
    let created = client.create(&new_referral("Retried")).await.unwrap();
    assert_eq!(created.name.as_deref(), Some("Retried"));
    assert_eq!(pc.emulator().referrals().len(), 1);

    // The work queue repeating a create whose answer was lost: same MS-RequestId,
    // same referral, still one.
    let request_id = uuid::Uuid::new_v4();
    let first = client
        .create_with_request_id(&new_referral("Queued"), request_id)
        .await
        .unwrap();
    let again = client
        .create_with_request_id(&new_referral("Queued"), request_id)
        .await
        .unwrap();
    assert_eq!(first.id, again.id);
    assert_eq!(pc.emulator().referrals().len(), 2);
}

#[tokio::test]
async fn a_stale_etag_is_precondition_failed() {
    let pc = start().await;
    let sent = pc.emulator().send_generated_referrals(1);
    let client = pc.referrals();
    let id = id_of(&sent[0]);
    let before = client.get(&id).await.unwrap().unwrap();
    let old_tag = before.e_tag.clone().unwrap();

    let accepted = client
        .update(
            &id,
            &[
                replace("/status", json!("Active")),
                replace("/substatus", json!("Accepted")),
            ],
            Some(&old_tag),
            true,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(accepted.status, Some(ReferralStatus::Active));
    assert_eq!(accepted.substatus, Some(ReferralSubstatus::Accepted));
    let new_tag = accepted.e_tag.clone().unwrap();
    assert_ne!(new_tag, old_tag);

    let err = client
        .update(
            &id,
            &[replace("/name", json!("Too late"))],
            Some(&old_tag),
            false,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ReferralsError::PreconditionFailed { id: i } if *i == id),
        "{err}"
    );
    assert!(!err.is_transient());
    assert_ne!(
        client.get(&id).await.unwrap().unwrap().name.as_deref(),
        Some("Too late")
    );

    // With the current tag and no representation asked for: 204, None.
    let none = client
        .update(
            &id,
            &[replace("/name", json!("In time"))],
            Some(&new_tag),
            false,
        )
        .await
        .unwrap();
    assert!(none.is_none());
    assert_eq!(
        client.get(&id).await.unwrap().unwrap().name.as_deref(),
        Some("In time")
    );

    let missing = ReferralId::parse("does-not-exist").unwrap();
    let err = client
        .update(&missing, &[replace("/name", json!("x"))], None, false)
        .await
        .unwrap_err();
    assert!(matches!(err, ReferralsError::NotFound { .. }), "{err}");
}

#[tokio::test]
async fn the_obsolete_put_replaces_the_referral_at_a_version() {
    let pc = start().await;
    let sent = pc.emulator().send_generated_referrals(1);
    let client = pc.referrals();
    let id = id_of(&sent[0]);
    let mut referral = client.get(&id).await.unwrap().unwrap();
    let tag = referral.e_tag.clone().unwrap();
    referral.external_reference_id = Some("lead-42".to_owned());
    let updated = client.put(&referral, &tag).await.unwrap();
    assert_eq!(updated.external_reference_id.as_deref(), Some("lead-42"));
    assert_ne!(updated.e_tag.as_ref(), Some(&tag));
    let err = client.put(&referral, &tag).await.unwrap_err();
    assert!(
        matches!(err, ReferralsError::PreconditionFailed { .. }),
        "{err}"
    );
}

#[tokio::test]
async fn throttled_reads_wait_out_retry_after() {
    let pc = start().await;
    let sent = pc.emulator().send_generated_referrals(1);
    let client = pc.referrals();
    let rule = pc
        .emulator()
        .faults()
        .install(
            FaultRule::status_times(429, 2)
                .retry_after(1)
                .on_method("GET")
                .on_path("/v1.0/engagements/referrals/"),
        )
        .unwrap();
    let referral = client.get(&id_of(&sent[0])).await.unwrap();
    assert!(referral.is_some());
    let status = pc
        .emulator()
        .faults()
        .list()
        .into_iter()
        .find(|r| r.id == rule.id)
        .unwrap();
    assert_eq!(status.fired, 2);
}

#[tokio::test]
async fn app_only_tokens_are_refused_by_the_referrals_api() {
    let pc = start().await;
    let tokens = pc
        .entra
        .client_credentials(Audience::v2(REFERRALS_RESOURCE));
    let client = ReferralsClient::new(pc.api("partner-center-referrals", tokens));
    let err = client
        .list(&ReferralQuery::new())
        .next_page()
        .await
        .unwrap_err();
    match err {
        ReferralsError::Call(CallError::Status { status, .. }) => {
            assert_eq!(status, StatusCode::FORBIDDEN);
        }
        other => panic!("unexpected {other}"),
    }
}
