//! Shared fixtures: a store per test on either backend, fixed times, builders.

use chrono::{DateTime, Duration, TimeZone, Utc};
use refsync_core::{CrmEntity, CrmRecordId, CrmRecordRef, EventName, ReferralId, SyncKey};
use refsync_store::test_harness::{TestSqlite, postgres_url_for_test, sqlite_url_for_test};
use refsync_store::{DedupeKey, EventOutcome, NewEvent, SignatureHeaders, Store, open_store};
use std::sync::Arc;

/// One test's database, and the store opened on it.
pub struct Backend {
    pub store: Arc<dyn Store>,
    url: String,
    _sqlite: Option<TestSqlite>,
}

impl Backend {
    pub async fn sqlite() -> Self {
        let db = sqlite_url_for_test();
        let url = db.url().to_owned();
        Self {
            store: open_store(&url).await.unwrap(),
            url,
            _sqlite: Some(db),
        }
    }

    /// `None` only when `REFSYNC_SKIP_POSTGRES=1`.
    pub async fn postgres() -> Option<Self> {
        let url = postgres_url_for_test().await?;
        Some(Self {
            store: open_store(&url).await.unwrap(),
            url,
            _sqlite: None,
        })
    }

    /// A second store on the same database: another instance, with its own pool(s).
    pub async fn another_instance(&self) -> Arc<dyn Store> {
        open_store(&self.url).await.unwrap()
    }
}

/// Instantiates each listed `async fn name(b: &Backend)` once per backend.
macro_rules! contract_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let b = crate::support::Backend::sqlite().await;
                    super::$name(&b).await;
                    b.store.close().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(b) = crate::support::Backend::postgres().await else {
                        return; // REFSYNC_SKIP_POSTGRES=1
                    };
                    super::$name(&b).await;
                    b.store.close().await;
                }
            )*
        }
    };
}

/// A fixed instant, so tests never depend on the clock.
pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap()
}

pub fn at(secs: i64) -> DateTime<Utc> {
    t0() + Duration::seconds(secs)
}

pub fn referral(id: &str) -> ReferralId {
    ReferralId::parse(id).unwrap()
}

pub fn rkey(id: &str) -> SyncKey {
    SyncKey::Referral(referral(id))
}

pub fn lead(id: &str) -> CrmRecordRef {
    CrmRecordRef::new(CrmEntity::Lead, CrmRecordId::parse(id).unwrap())
}

pub fn lead_key(id: &str) -> SyncKey {
    SyncKey::Crm(lead(id))
}

pub fn opportunity(id: &str) -> CrmRecordRef {
    CrmRecordRef::new(CrmEntity::Opportunity, CrmRecordId::parse(id).unwrap())
}

/// A `referral-updated` event for `referral_id`, changed at `changed`, enqueueing its key.
pub fn referral_event(referral_id: &str, changed: DateTime<Utc>) -> NewEvent {
    let id = referral(referral_id);
    let name = EventName::ReferralUpdated;
    let body = format!(
        r#"{{"EventName":"referral-updated","ResourceUri":"https://api.partnercenter.microsoft.com/engagements/v1/referrals/{referral_id}","ResourceName":"referral","ResourceChangeUtcDate":"{}"}}"#,
        changed.to_rfc3339()
    );
    NewEvent {
        dedupe_key: DedupeKey::for_event(&name, Some(&id), changed),
        event_name: name,
        referral_id: Some(id.clone()),
        resource_change_utc: changed,
        received_at: changed + Duration::seconds(1),
        body: body.into_bytes(),
        signature: SignatureHeaders {
            signature: Some("Signature c2lnbmF0dXJl".into()),
            certificate_url: Some(
                "https://3psostorageacct.blob.core.windows.net/cert/pcnotifications-dispatch.microsoft.com.cer"
                    .into(),
            ),
            algorithm: Some("rsa-sha256".into()),
        },
        outcome: EventOutcome::Enqueued,
        enqueue: vec![SyncKey::Referral(id)],
    }
}
