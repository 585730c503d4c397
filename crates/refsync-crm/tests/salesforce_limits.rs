//! The API allocation and failures: usage read from `Sforce-Limit-Info`, the slow-down
//! past the threshold, `REQUEST_LIMIT_EXCEEDED` (real and injected) as
//! `AllocationExhausted`, 503 bursts retried only where a repeat is harmless.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod salesforce_support;

use refsync_core::ids::CrmEntity;
use refsync_crm::connector::{ApiUsage, CrmConnector, CrmError, RecordWrite};
use refsync_emulators::faults::FaultRule;
use salesforce_support::{Org, config, referral, start, start_with};

async fn read(org: &Org) -> Result<(), CrmError> {
    org.connector
        .get_by_referral(org.entity(CrmEntity::Lead), &referral("r-1"))
        .await
        .map(|_| ())
}

#[tokio::test]
async fn usage_comes_from_every_response() {
    let org = start().await;
    assert_eq!(
        org.connector.usage(),
        None,
        "nothing known before the first call"
    );
    read(&org).await.unwrap();
    read(&org).await.unwrap();
    assert_eq!(
        org.connector.usage(),
        Some(ApiUsage {
            used: 2,
            max: 100_000
        })
    );
    assert!(!org.connector.slowed_down());
}

#[tokio::test]
async fn past_the_threshold_it_slows_down_and_at_the_limit_the_allocation_is_exhausted() {
    let mut cfg = config();
    cfg.limits.daily_api_requests = 10;
    let org = start_with(cfg, |s| s.usage_slowdown_threshold = 0.8).await;
    for n in 1..=7 {
        read(&org).await.unwrap();
        assert!(!org.connector.slowed_down(), "{n}/10 is under 80 %");
    }
    read(&org).await.unwrap();
    assert!(org.connector.slowed_down(), "8/10 reaches 80 %");
    assert_eq!(org.connector.usage(), Some(ApiUsage { used: 8, max: 10 }));
    read(&org).await.unwrap();
    read(&org).await.unwrap();
    let e = read(&org).await.unwrap_err();
    assert!(matches!(e, CrmError::AllocationExhausted), "{e:?}");
    assert!(e.is_transient(), "the rolling window frees calls later");
    assert_eq!(org.connector.usage(), Some(ApiUsage { used: 10, max: 10 }));
    assert!(org.connector.slowed_down());

    // A day later the window is empty again, and full speed resumes.
    org.advance(24 * 60 * 60 + 60);
    read(&org).await.unwrap();
    assert_eq!(org.connector.usage(), Some(ApiUsage { used: 1, max: 10 }));
    assert!(!org.connector.slowed_down());
}

#[tokio::test]
async fn an_injected_request_limit_exceeded_is_not_retried() {
    let org = start().await;
    read(&org).await.unwrap();
    org.emulator
        .faults()
        .install(FaultRule::status_times(403, 1).on_path("/services/data"))
        .unwrap();
    let e = read(&org).await.unwrap_err();
    assert!(matches!(e, CrmError::AllocationExhausted), "{e:?}");
    assert_eq!(
        org.emulator.faults().list()[0].matched,
        1,
        "no second attempt"
    );
    read(&org).await.unwrap();
}

#[tokio::test]
async fn a_503_burst_is_retried() {
    let org = start().await;
    let rule = org
        .emulator
        .faults()
        .install(FaultRule::status_times(503, 2).on_path("/services/data"))
        .unwrap();
    read(&org).await.unwrap();
    let status = &org.emulator.faults().list()[0];
    assert_eq!((status.id, status.fired), (rule.id, 2));
    // Upserts are idempotent: retried the same way.
    org.emulator
        .faults()
        .install(FaultRule::status_times(503, 2).on_path("/services/data"))
        .unwrap();
    org.connector
        .upsert_by_referral(
            org.entity(CrmEntity::Opportunity),
            &referral("r-1"),
            &org.opportunity_write(),
        )
        .await
        .unwrap();
    assert_eq!(org.records("Opportunity").len(), 1);
}

#[tokio::test]
async fn a_503_that_outlasts_the_retries_is_unavailable() {
    let org = start().await;
    org.emulator
        .faults()
        .install(FaultRule::status_times(503, 100).on_path("/services/data"))
        .unwrap();
    let e = read(&org).await.unwrap_err();
    assert!(
        matches!(&e, CrmError::Unavailable(m) if m.contains("503")),
        "{e:?}"
    );
    assert!(e.is_transient());
    assert_eq!(
        org.emulator.faults().list()[0].fired,
        4,
        "retry.max_attempts"
    );
}

#[tokio::test]
async fn a_create_is_not_repeated_after_a_503() {
    let org = start().await;
    org.emulator
        .faults()
        .install(
            FaultRule::status_times(503, 1)
                .on_path("/services/data")
                .on_method("POST"),
        )
        .unwrap();
    let e = org
        .connector
        .create(
            org.entity(CrmEntity::Account),
            &RecordWrite::fields(org.rendered(CrmEntity::Account)),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, CrmError::Unavailable(_)), "{e:?}");
    assert_eq!(
        org.emulator.faults().list()[0].matched,
        1,
        "a second create could make a second account"
    );
}
