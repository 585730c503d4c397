//! The Dataverse connector under the environment's real service-protection limits
//! (set small), injected 503s, an access token expiring mid-run, and a bad secret.
//! The 429 tests wait out real `Retry-After` seconds (the protocol's own delay).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod dataverse_support;

use dataverse_support::*;
use refsync_core::ids::{CrmEntity, CrmRecordId};
use refsync_crm::connector::{CrmConnector, CrmError, RecordWrite};
use refsync_crm::dataverse::DataverseConnector;
use refsync_emulators::dataverse::{DataverseConfig, ServiceProtectionLimits};
use refsync_emulators::faults::FaultRule;
use refsync_outbound::TokenCache;
use secrecy::SecretString;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

/// A lead to read over and over.
async fn seeded(env: &Env) -> CrmRecordId {
    let lead = env.entity(CrmEntity::Lead);
    env.connector
        .upsert_by_referral(lead, &referral("ref-limits"), &env.lead_write())
        .await
        .unwrap()
        .record
        .id
        .unwrap()
}

fn throttled(env: &Env) -> u64 {
    env.emu.dataverse().usage().throttled.values().sum()
}

fn answered(env: &Env, status: u16) -> u64 {
    env.emu
        .dataverse()
        .usage()
        .responses
        .get(&status)
        .copied()
        .unwrap_or(0)
}

#[tokio::test]
async fn a_429_storm_is_waited_out_and_every_call_succeeds() {
    let env = start().await;
    let id = seeded(&env).await;
    env.emu
        .dataverse()
        .set_limits(ServiceProtectionLimits::small(
            4,
            Duration::from_secs(1),
            52,
        ))
        .unwrap();
    env.reset_calls();
    let lead = env.entity(CrmEntity::Lead);
    for _ in 0..10 {
        let r = env.connector.get(lead, &id).await.unwrap();
        assert!(r.is_some());
    }
    assert!(throttled(&env) > 0, "the limit was met");
    assert_eq!(env.calls(), 10, "every call was served in the end");
}

#[tokio::test]
async fn throttled_creates_are_sent_again_because_a_429_ran_nothing() {
    let env = start().await;
    env.emu
        .dataverse()
        .set_limits(ServiceProtectionLimits::small(
            2,
            Duration::from_secs(1),
            52,
        ))
        .unwrap();
    env.reset_calls();
    let account = env.entity(CrmEntity::Account);
    for n in 0..4 {
        let mut fields = serde_json::Map::new();
        fields.insert("name".into(), json!(format!("Throttled {n}")));
        env.connector
            .create(account, &RecordWrite::fields(fields))
            .await
            .unwrap();
    }
    assert!(throttled(&env) > 0, "the limit was met");
    assert_eq!(
        env.records("accounts").len(),
        4,
        "each create made one record"
    );
}

#[tokio::test]
async fn a_wait_longer_than_allowed_fails_as_throttled_with_the_servers_delay() {
    let env = start_with(DataverseConfig::default(), |s| {
        s.retry.max_retry_after = Duration::from_millis(500);
    })
    .await;
    let id = seeded(&env).await;
    env.emu
        .dataverse()
        .set_limits(ServiceProtectionLimits::small(
            2,
            Duration::from_secs(30),
            52,
        ))
        .unwrap();
    env.reset_calls();
    let lead = env.entity(CrmEntity::Lead);
    env.connector.get(lead, &id).await.unwrap();
    env.connector.get(lead, &id).await.unwrap();
    let e = env.connector.get(lead, &id).await.unwrap_err();
    match e {
        CrmError::Throttled {
            retry_after: Some(wait),
        } => assert!(wait > Duration::from_secs(1), "{wait:?}"),
        other => panic!("{other:?}"),
    }
    assert!(CrmError::Throttled { retry_after: None }.is_transient());
}

#[tokio::test]
async fn pacing_below_the_limit_never_meets_a_429() {
    // 10 requests per second allowed; the connector keeps 8 per second across four
    // concurrent callers.
    let env = start_with(
        DataverseConfig::default().with_limits(ServiceProtectionLimits::small(
            10,
            Duration::from_secs(1),
            52,
        )),
        |s| s.requests_per_second = 8.0,
    )
    .await;
    let id = seeded(&env).await;
    env.reset_calls();
    let env = Arc::new(env);
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let env = Arc::clone(&env);
        let id = id.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..6 {
                let lead = env.entity(CrmEntity::Lead);
                env.connector.get(lead, &id).await.unwrap().unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(env.calls(), 24);
    assert_eq!(throttled(&env), 0, "no request was throttled");
    assert_eq!(answered(&env, 429), 0);
}

#[tokio::test]
async fn bursts_of_503_are_retried_where_a_repeat_is_safe() {
    let env = start().await;
    let id = seeded(&env).await;
    let lead = env.entity(CrmEntity::Lead);
    env.emu
        .dataverse()
        .faults()
        .install(FaultRule::status_times(503, 3).on_path("/api/data"))
        .unwrap();
    let r = env.connector.get(lead, &id).await.unwrap().unwrap();
    assert_eq!(r.id.as_ref(), Some(&id));
    assert_eq!(answered(&env, 503), 3);

    // The upsert by key is idempotent: retried through a burst too.
    env.emu
        .dataverse()
        .faults()
        .install(FaultRule::status_times(503, 2).on_path("/api/data"))
        .unwrap();
    let outcome = env
        .connector
        .upsert_by_referral(lead, &referral("ref-503"), &env.lead_write())
        .await
        .unwrap();
    assert!(outcome.created);

    // A create is not repeated once it may have reached Dataverse.
    env.emu
        .dataverse()
        .faults()
        .install(FaultRule::status_times(503, 1).on_path("/api/data"))
        .unwrap();
    let accounts_before = env.records("accounts").len();
    let mut fields = serde_json::Map::new();
    fields.insert("name".into(), json!("Once Only"));
    let e = env
        .connector
        .create(env.entity(CrmEntity::Account), &RecordWrite::fields(fields))
        .await
        .unwrap_err();
    assert!(matches!(e, CrmError::Unavailable(_)), "{e:?}");
    assert!(e.is_transient());
    assert_eq!(env.records("accounts").len(), accounts_before);
    assert_eq!(answered(&env, 503), 6);
}

#[tokio::test]
async fn an_access_token_expiring_mid_run_is_replaced_once() {
    let env = start().await;
    let id = seeded(&env).await;
    let lead = env.entity(CrmEntity::Lead);
    let authority = env.emu.dataverse().authority();
    let issued = |a: &refsync_emulators::entra::EntraAuthority| {
        a.counters()
            .issued
            .get("client_credentials")
            .copied()
            .unwrap_or(0)
    };
    assert_eq!(issued(authority), 1);
    assert!(authority.expire_access_tokens() > 0);
    env.connector.get(lead, &id).await.unwrap().unwrap();
    env.connector.get(lead, &id).await.unwrap().unwrap();
    assert_eq!(issued(authority), 2, "one fresh token, reused after");
    assert_eq!(env.emu.dataverse().usage().unauthorized, 1);
}

#[tokio::test]
async fn a_wrong_secret_is_an_auth_error_and_never_shown() {
    let env = start().await;
    let mut s = settings(&env.emu);
    s.client_secret = Some(SecretString::from("not-the-secret-value"));
    let connector = DataverseConnector::new(s, &TokenCache::new()).unwrap();
    let e = connector
        .get(
            env.entity(CrmEntity::Lead),
            &id("00000000-0000-0000-0000-000000000001"),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, CrmError::Auth(_)), "{e:?}");
    assert!(!e.is_transient());
    assert!(!e.to_string().contains("not-the-secret-value"));
    assert!(!format!("{connector:?}").contains("not-the-secret-value"));
}
