//! CRM → Partner Center: seller edits, echoes of our own writes, CRM-originated referrals.

use crate::helpers::*;
use chrono::Utc;
use refsync_core::{CrmEntity, ReferralId, SyncKey};
use refsync_emulators::partner_center::MicrosoftChange;
use refsync_engine::testbed::{CrmUnderTest, StoreKind, TestBed};
use refsync_engine::{PollerSettings, ReconcilerSettings};
use refsync_store::Trigger;
use serde_json::{Map, Value, json};

pub async fn a_crm_edit_reaches_partner_center<C: CrmUnderTest>(store: StoreKind) {
    let Some(bed) = TestBed::<C>::start(store).await else {
        return;
    };
    let id = bed.send_referral();
    bed.settle().await;
    let poller = PollerSettings::default();
    // The poller's first pass sees our own creation: nothing to do.
    let first = bed.engine.poll_crm_once(&poller).await.unwrap();
    assert_eq!(first.enqueued, 0, "{first:?}");

    let lead = the_record(&bed, &CrmEntity::Lead, &id);
    let mut edit = Map::new();
    edit.insert(
        column(&bed, &CrmEntity::Lead, "notes"),
        json!("Call back on Monday."),
    );
    bed.crm.edit_as_user(&lead.record_ref().unwrap(), edit);
    let report = bed.engine.poll_crm_once(&poller).await.unwrap();
    assert_eq!(report.enqueued, 1, "{report:?}");
    bed.engine.wakeup().notify();
    bed.settle().await;

    assert_eq!(
        pc_value(&bed, &CrmEntity::Lead, &id, "notes"),
        json!("Call back on Monday.")
    );
    // Our own writes (the PATCH's webhook, the Audit line) are not news.
    let again = bed.engine.poll_crm_once(&poller).await.unwrap();
    assert_eq!(again.enqueued, 0, "{again:?}");
}

/// A seller's edit with the very modified time of our last write (Dataverse keeps
/// seconds) is still news: the poller compares values with the base, not times.
pub async fn a_crm_edit_in_the_second_of_our_write_reaches_partner_center<C: CrmUnderTest>(
    store: StoreKind,
) {
    let Some(bed) = TestBed::<C>::start(store).await else {
        return;
    };
    let id = bed.send_referral();
    bed.settle().await;
    let poller = PollerSettings::default();
    // A pass between our write and the seller's edit looks at our write and
    // finds nothing new; the edit, same modified time or not, is a new version.
    let before = bed.engine.poll_crm_once(&poller).await.unwrap();
    assert_eq!(before.enqueued, 0, "{before:?}");
    let lead = the_record(&bed, &CrmEntity::Lead, &id);
    let mut edit = Map::new();
    edit.insert(
        column(&bed, &CrmEntity::Lead, "notes"),
        json!("Edited within the same second."),
    );
    bed.crm
        .edit_as_user_in_the_same_second(&lead.record_ref().unwrap(), edit);
    let report = bed.engine.poll_crm_once(&poller).await.unwrap();
    assert_eq!(report.enqueued, 1, "{report:?}");
    bed.engine.wakeup().notify();
    bed.settle().await;
    assert_eq!(
        pc_value(&bed, &CrmEntity::Lead, &id, "notes"),
        json!("Edited within the same second.")
    );
    let again = bed.engine.poll_crm_once(&poller).await.unwrap();
    assert_eq!(again.enqueued, 0, "{again:?}");
    // Read again as they were, the records cost no further look.
    let third = bed.engine.poll_crm_once(&poller).await.unwrap();
    assert_eq!(
        (third.enqueued, third.own_writes, third.seen_before),
        (0, 0, third.read),
        "{third:?}"
    );
}

pub async fn echoes_of_our_own_writes_make_no_further_writes<C: CrmUnderTest>(store: StoreKind) {
    let Some(bed) = TestBed::<C>::start(store).await else {
        return;
    };
    let id = bed.send_referral();
    bed.settle().await;
    bed.pc
        .microsoft_change(id.as_str(), MicrosoftChange::Accept)
        .unwrap();
    bed.settle().await;
    let pc_writes = bed.pc_api_writes();
    let crm_writes = bed.crm.api_writes();

    // Every kind of look at the key, and both background loops.
    let now = Utc::now();
    for trigger in [
        Trigger::Webhook,
        Trigger::Reconciler,
        Trigger::CrmPoller,
        Trigger::Operator,
    ] {
        bed.store
            .enqueue(
                refsync_store::Enqueue::now(SyncKey::Referral(id.clone()), trigger, now),
                now,
            )
            .await
            .unwrap();
        bed.engine.wakeup().notify();
        bed.settle().await;
    }
    bed.engine
        .reconcile_once(&ReconcilerSettings::default())
        .await
        .unwrap();
    bed.engine
        .poll_crm_once(&PollerSettings::default())
        .await
        .unwrap();
    bed.engine.wakeup().notify();
    bed.settle().await;

    assert_eq!(bed.pc_api_writes(), pc_writes, "no Partner Center write");
    assert_eq!(bed.crm.api_writes(), crm_writes, "no CRM write");
}

pub async fn a_flagged_crm_record_becomes_a_referral<C: CrmUnderTest>(store: StoreKind) {
    let Some(bed) = TestBed::<C>::start(store).await else {
        return;
    };
    let record =
        bed.crm
            .create_flagged_opportunity("Tailspin - Analytics", "Tailspin Toys", "10115");
    // A flagged lead is not shared: only opportunities are (crm.md §3.4).
    bed.crm.create_flagged_lead("Wide World Importers");
    let report = bed
        .engine
        .poll_crm_once(&PollerSettings::default())
        .await
        .unwrap();
    assert_eq!(report.enqueued, 1, "{report:?}");
    bed.engine.wakeup().notify();
    bed.settle().await;

    let shared: Vec<Value> = bed
        .pc
        .referrals()
        .into_iter()
        .filter(|r| r["externalReferenceId"] == json!(record.id.as_str()))
        .collect();
    assert_eq!(shared.len(), 1, "one referral for the record");
    let id = ReferralId::parse(shared[0]["id"].as_str().unwrap()).unwrap();
    let referral = bed.referral(&id);
    assert_eq!(
        referral
            .customer_profile
            .as_ref()
            .and_then(|c| c.name.as_deref()),
        Some("Tailspin Toys")
    );
    assert_eq!(
        pc_value(&bed, &CrmEntity::Opportunity, &id, "notes"),
        json!("Started by our seller.")
    );
    // The record knows its referral, and the link is keyed by it.
    the_record(&bed, &CrmEntity::Opportunity, &id);
    assert_eq!(linked(&bed, &id).await, record);

    // Running the CRM key again, polling again: no second referral, no writes.
    let pc_writes = bed.pc_api_writes();
    let crm_writes = bed.crm.api_writes();
    bed.run_key(SyncKey::Crm(record.clone()), &[Trigger::CrmPoller])
        .await
        .unwrap();
    bed.engine
        .poll_crm_once(&PollerSettings::default())
        .await
        .unwrap();
    bed.engine.wakeup().notify();
    bed.settle().await;
    assert_eq!(bed.pc.referrals().len(), 1);
    assert_eq!(bed.pc_api_writes(), pc_writes, "no Partner Center write");
    assert_eq!(bed.crm.api_writes(), crm_writes, "no CRM write");
}
