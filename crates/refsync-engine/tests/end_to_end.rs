//! The end-to-end suite: Partner Center emulator + a CRM (emulator + real connector)
//! + a store + the engine's workers, with Partner Center's real webhook deliveries
//! driving the queue. Every scenario is written once, generic over the CRM
//! ([`CrmUnderTest`]) and the store ([`StoreKind`]), and instantiated per pair at
//! the bottom of the file: adding a CRM is one line.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use refsync_core::{CrmEntity, SyncKey};
use refsync_engine::SyncOutcome;
use refsync_engine::testbed::{CrmUnderTest, InMemory, Salesforce, StoreKind, TestBed};
use refsync_store::Trigger;

async fn new_referral_becomes_a_lead<C: CrmUnderTest>(store: StoreKind) {
    let Some(bed) = TestBed::<C>::start(store).await else { return };
    let id = bed.send_referral();
    bed.settle().await;
    let leads = bed.records(&CrmEntity::Lead);
    assert_eq!(leads.len(), 1, "{}: one lead", bed.crm.name());
    let link = bed.link(&id).await.expect("linked");
    eprintln!("{link:?}");
    eprintln!("{:?}", bed.pc_api_calls());
    let _ = (SyncKey::Referral(id), Trigger::Webhook, SyncOutcome::Unchanged);
}

macro_rules! instantiate {
    ($module:ident, $crm:ty, $store:expr; $($scenario:ident),* $(,)?) => {
        mod $module {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    super::$scenario::<$crm>($store).await;
                }
            )*
        }
    };
}

macro_rules! scenarios {
    ($($scenario:ident),* $(,)?) => {
        instantiate!(salesforce_sqlite, super::Salesforce, super::StoreKind::Sqlite; $($scenario),*);
        instantiate!(salesforce_postgres, super::Salesforce, super::StoreKind::Postgres; $($scenario),*);
        instantiate!(memory_sqlite, super::InMemory, super::StoreKind::Sqlite; $($scenario),*);
    };
}

scenarios!(new_referral_becomes_a_lead);
