//! Failures: storms, 412s, crashes, permanent refusals, ✔/✖ marks, operator retries, shutdown.

use crate::helpers::*;
use chrono::Utc;
use refsync_core::{CrmEntity, SyncKey};
use refsync_emulators::faults::FaultRule;
use refsync_emulators::partner_center::{MicrosoftChange, MicrosoftUpdate};
use refsync_engine::testbed::{
    CrmUnderTest, FlakyStore, HookedCrm, REFERRALS_PATH, StoreKind, TestBed, TestBedOptions,
    test_workers,
};
use refsync_engine::{OperatorState, SyncOutcome};
use refsync_store::{QueueState, Trigger};
use serde_json::{Map, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub async fn storms_on_both_apis_delay_but_never_lose_or_duplicate<C: CrmUnderTest>(
    store: StoreKind,
) {
    let Some(bed) = TestBed::<C>::start(store).await else {
        return;
    };
    bed.pc
        .faults()
        .install(FaultRule::status_times(429, 5).on_path(REFERRALS_PATH))
        .unwrap();
    bed.pc
        .faults()
        .install(FaultRule::status_times(503, 5).on_path(REFERRALS_PATH))
        .unwrap();
    bed.crm.storm(8);
    let ids: Vec<_> = (0..3).map(|_| bed.send_referral()).collect();
    bed.settle().await;

    assert_eq!(bed.records(&CrmEntity::Lead).len(), 3);
    for id in &ids {
        let lead = the_record(&bed, &CrmEntity::Lead, id);
        assert_eq!(linked(&bed, id).await, lead.record_ref().unwrap());
    }
    assert!(bed.store.list_dead_letters(10).await.unwrap().is_empty());
    let fired: u64 = bed.pc.faults().list().iter().map(|r| r.fired).sum();
    assert!(fired > 0, "the storm happened");
}

pub async fn a_412_is_resolved_by_re_reading<C: CrmUnderTest>(store: StoreKind) {
    let slot: Arc<Mutex<Option<Arc<HookedCrm>>>> = Arc::default();
    let mut options = inline(store);
    let keep = Arc::clone(&slot);
    options.wrap_crm = Some(Box::new(move |inner, _| {
        let hooked = Arc::new(HookedCrm::new(inner));
        *keep.lock().unwrap() = Some(Arc::clone(&hooked));
        hooked
    }));
    let Some(bed) = TestBed::<C>::start_with(options).await else {
        return;
    };
    let hooked = slot.lock().unwrap().clone().unwrap();
    let id = bed.send_referral();
    let key = SyncKey::Referral(id.clone());
    bed.run_key(key.clone(), &[Trigger::Webhook]).await.unwrap();

    // A seller changes the record, and Microsoft changes the referral between our
    // read of it and our write to it.
    let lead = the_record(&bed, &CrmEntity::Lead, &id);
    let mut edit = Map::new();
    edit.insert(
        column(&bed, &CrmEntity::Lead, "notes"),
        json!("seller's notes"),
    );
    bed.crm.edit_as_user(&lead.record_ref().unwrap(), edit);
    let pc = bed.pc.clone();
    let changed = id.clone();
    hooked.before_next_write(move || {
        pc.microsoft_change(
            changed.as_str(),
            MicrosoftChange::Update(MicrosoftUpdate {
                name: Some("Renamed by Microsoft".into()),
                ..MicrosoftUpdate::default()
            }),
        )
        .unwrap();
    });
    let patches_before = bed.pc_api_writes();
    bed.run_key(key.clone(), &[Trigger::CrmPoller])
        .await
        .unwrap();

    assert_eq!(
        bed.pc_api_writes() - patches_before,
        2,
        "refused once (412), then written"
    );
    let referral = bed.referral(&id);
    assert_eq!(
        referral.name.as_deref(),
        Some("Renamed by Microsoft"),
        "Microsoft's change kept"
    );
    assert_eq!(
        pc_value(&bed, &CrmEntity::Lead, &id, "notes"),
        json!("seller's notes")
    );
    assert_eq!(bed.link(&id).await.unwrap().referral_etag, referral.e_tag);
    // Converged: the next pass is the fast path.
    let outcome = bed.run_key(key, &[Trigger::Webhook]).await.unwrap();
    assert_eq!(outcome, SyncOutcome::Unchanged);
}

pub async fn a_crash_between_crm_write_and_link_commit_makes_no_second_record<C: CrmUnderTest>(
    store: StoreKind,
) {
    let slot: Arc<Mutex<Option<Arc<FlakyStore>>>> = Arc::default();
    let mut options = TestBedOptions::new(store);
    let keep = Arc::clone(&slot);
    options.wrap_store = Some(Box::new(move |inner| {
        let flaky = Arc::new(FlakyStore::new(inner, 1));
        *keep.lock().unwrap() = Some(Arc::clone(&flaky));
        flaky
    }));
    let Some(bed) = TestBed::<C>::start_with(options).await else {
        return;
    };
    let id = bed.send_referral();
    bed.settle().await;

    assert_eq!(
        slot.lock().unwrap().as_ref().unwrap().failed(),
        1,
        "the first link save failed"
    );
    assert_eq!(bed.records(&CrmEntity::Lead).len(), 1, "no second record");
    let lead = the_record(&bed, &CrmEntity::Lead, &id);
    assert_eq!(linked(&bed, &id).await, lead.record_ref().unwrap());
}

pub async fn a_permanent_failure_is_dead_lettered_with_its_reason<C: CrmUnderTest>(
    store: StoreKind,
) {
    let Some(bed) = TestBed::<C>::start(store).await else {
        return;
    };
    bed.crm.reject_next_write();
    let id = bed.send_referral();
    bed.settle().await;
    let key = SyncKey::Referral(id.clone());
    let entry = bed
        .store
        .queue_entry(&key)
        .await
        .unwrap()
        .expect("still queued");
    assert_eq!(entry.state, QueueState::Dead);
    assert!(entry.attempts <= 1, "given up at once: {entry:?}");
    let reason = entry.dead_reason.unwrap_or_default();
    assert!(reason.contains("CRM"), "{reason}");
    assert!(bed.records(&CrmEntity::Lead).is_empty());

    // Once the cause is gone, an operator's sync goes through.
    let outcome = bed
        .engine
        .sync_now(&key, Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(outcome.state, OperatorState::Done, "{outcome:?}");
    assert!(!outcome.audit.is_empty());
    the_record(&bed, &CrmEntity::Lead, &id);
}

pub async fn check_marks_and_failure_lines_reach_the_record<C: CrmUnderTest>(store: StoreKind) {
    let mut options = TestBedOptions::new(store);
    options.engine.checkmark_suffix = true;
    let Some(bed) = TestBed::<C>::start_with(options).await else {
        return;
    };
    let id = bed.send_referral();
    bed.settle().await;
    bed.pc
        .microsoft_change(id.as_str(), MicrosoftChange::Accept)
        .unwrap();
    bed.settle().await;
    let em = bed
        .engine
        .mapping()
        .entity(&CrmEntity::Opportunity)
        .unwrap()
        .clone();
    let (Some(name_column), Some(audit_column)) = (em.marked_name_field, em.audit_field) else {
        return;
    };
    let opportunity = the_record(&bed, &CrmEntity::Opportunity, &id);
    let name = opportunity.field(&name_column).as_str().unwrap().to_owned();
    assert!(name.ends_with('✔'), "{name}");

    // A change the CRM refuses: dead-lettered, and the record says so.
    bed.crm.reject_next_write();
    bed.pc
        .microsoft_change(id.as_str(), update(Some("Needs a new quote."), None))
        .unwrap();
    bed.settle().await;
    let entry = bed
        .store
        .queue_entry(&SyncKey::Referral(id.clone()))
        .await
        .unwrap()
        .expect("dead-lettered");
    assert_eq!(entry.state, QueueState::Dead);
    let opportunity = the_record(&bed, &CrmEntity::Opportunity, &id);
    let name = opportunity.field(&name_column).as_str().unwrap().to_owned();
    assert!(name.ends_with('✖'), "{name}");
    assert!(!name.contains('✔'), "one mark at a time: {name}");
    let audit = opportunity
        .field(&audit_column)
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        audit.lines().last().unwrap_or_default().contains('✖'),
        "{audit}"
    );
}

pub async fn an_operator_sync_reports_a_failure_being_retried<C: CrmUnderTest>(store: StoreKind) {
    let mut options = TestBedOptions::new(store);
    options.webhooks = false;
    options.workers = Some(refsync_engine::WorkerSettings {
        retry_initial: Duration::from_secs(60),
        retry_max: Duration::from_secs(60),
        ..test_workers()
    });
    let Some(bed) = TestBed::<C>::start_with(options).await else {
        return;
    };
    let id = bed.send_referral();
    bed.crm.storm(1000);
    let outcome = bed
        .engine
        .sync_now(&SyncKey::Referral(id.clone()), Duration::from_secs(20))
        .await
        .unwrap();
    match outcome.state {
        OperatorState::Retrying { error, due_at } => {
            assert!(error.contains("CRM"), "{error}");
            assert!(due_at > Utc::now(), "retried later");
        }
        other => panic!("expected a retry, got {other:?}"),
    }
    assert!(bed.records(&CrmEntity::Lead).is_empty());
}

pub async fn shutdown_releases_in_flight_keys<C: CrmUnderTest>(store: StoreKind) {
    let slot: Arc<Mutex<Option<Arc<HookedCrm>>>> = Arc::default();
    let mut options = TestBedOptions::new(store);
    options.workers = Some(refsync_engine::WorkerSettings {
        shutdown_grace: Duration::from_millis(50),
        ..test_workers()
    });
    let keep = Arc::clone(&slot);
    options.wrap_crm = Some(Box::new(move |inner, _| {
        let hooked = Arc::new(HookedCrm::new(inner));
        hooked.hold_writes();
        *keep.lock().unwrap() = Some(Arc::clone(&hooked));
        hooked
    }));
    let Some(mut bed) = TestBed::<C>::start_with(options).await else {
        return;
    };
    let hooked = slot.lock().unwrap().clone().unwrap();
    let id = bed.send_referral();
    let key = SyncKey::Referral(id.clone());
    tokio::time::timeout(Duration::from_secs(20), async {
        while hooked.writes_started() == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("a worker reached the CRM write");

    bed.stop_workers().await;
    let entry = bed
        .store
        .queue_entry(&key)
        .await
        .unwrap()
        .expect("still queued");
    assert_eq!(entry.state, QueueState::Pending);
    assert!(!entry.is_leased(Utc::now()), "released: {entry:?}");
    assert!(bed.records(&CrmEntity::Lead).is_empty());

    hooked.release();
    bed.start_workers();
    bed.engine.wakeup().notify();
    bed.settle().await;
    the_record(&bed, &CrmEntity::Lead, &id);
}

pub async fn a_partner_center_refusal_is_permanent_and_a_retry_makes_no_second_record<
    C: CrmUnderTest,
>(
    store: StoreKind,
) {
    let Some(bed) = TestBed::<C>::start(store).await else {
        return;
    };
    // The PATCH that tells Partner Center the record id is refused as a bad request.
    bed.pc
        .faults()
        .install(
            FaultRule::status_times(400, 1)
                .on_path(REFERRALS_PATH)
                .on_method("PATCH"),
        )
        .unwrap();
    let id = bed.send_referral();
    bed.settle().await;
    let key = SyncKey::Referral(id.clone());
    let entry = bed.store.queue_entry(&key).await.unwrap().expect("queued");
    assert_eq!(entry.state, QueueState::Dead, "{entry:?}");
    assert!(
        entry
            .dead_reason
            .unwrap_or_default()
            .contains("Partner Center"),
        "the reason names the side"
    );

    let outcome = bed
        .engine
        .sync_now(&key, Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(outcome.state, OperatorState::Done, "{outcome:?}");
    let lead = the_record(&bed, &CrmEntity::Lead, &id);
    assert_eq!(
        bed.records(&CrmEntity::Lead).len(),
        1,
        "the upsert found it"
    );
    assert_eq!(
        bed.referral(&id).external_reference_id.as_deref(),
        Some(lead.id.as_ref().unwrap().as_str())
    );
}
