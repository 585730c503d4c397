//! The end-to-end suite: Partner Center emulator + a CRM (emulator + real connector,
//! or the in-memory CRM) + a store + the engine's workers, with Partner Center's real
//! webhook deliveries driving the queue. Every scenario is written once, generic over
//! the CRM ([`CrmUnderTest`]) and the store ([`StoreKind`]), and instantiated per
//! pair by `scenarios!` at the bottom: adding a CRM is one line there.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use chrono::Utc;
use refsync_core::{CrmEntity, CrmRecord, CrmRecordRef, ReferralId, SyncKey};
use refsync_emulators::faults::FaultRule;
use refsync_emulators::partner_center::{
    DeliveryFaultKind, DeliveryFaultRule, MicrosoftChange, MicrosoftUpdate,
};
use refsync_engine::testbed::{
    CrmUnderTest, FlakyStore, HookedCrm, REFERRALS_PATH, StoreKind, TestBed, TestBedOptions,
    test_workers,
};
use refsync_engine::{OperatorState, PollerSettings, ReconcilerSettings, SyncOutcome};
use refsync_store::{QueueState, Trigger};
use serde_json::{Map, Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;

// ---------------------------------------------------------------- helpers

/// A field of a record as the mapping reads it (canonical value), so scenarios do
/// not depend on one CRM's column names.
fn crm_value<C: CrmUnderTest>(bed: &TestBed<C>, record: &CrmRecord, field: &str) -> Value {
    let em = bed.engine.mapping().entity(&record.entity).unwrap();
    em.read_crm(record)
        .values
        .get(field)
        .cloned()
        .unwrap_or(Value::Null)
}

/// A field of the referral as the mapping reads it for `entity`.
fn pc_value<C: CrmUnderTest>(
    bed: &TestBed<C>,
    entity: &CrmEntity,
    id: &ReferralId,
    field: &str,
) -> Value {
    let em = bed.engine.mapping().entity(entity).unwrap();
    em.read_referral(&bed.referral(id))
        .values
        .get(field)
        .cloned()
        .unwrap_or(Value::Null)
}

/// The CRM column a mapped field lives in.
fn column<C: CrmUnderTest>(bed: &TestBed<C>, entity: &CrmEntity, field: &str) -> String {
    let em = bed.engine.mapping().entity(entity).unwrap();
    em.field(field).unwrap().crm[0].clone()
}

/// The live records of a type whose referral id is `id`.
fn records_of<C: CrmUnderTest>(
    bed: &TestBed<C>,
    entity: &CrmEntity,
    id: &ReferralId,
) -> Vec<CrmRecord> {
    bed.records(entity)
        .into_iter()
        .filter(|r| crm_value(bed, r, "referral_id") == json!(id.as_str()))
        .collect()
}

/// The one live record of a type for a referral.
fn the_record<C: CrmUnderTest>(bed: &TestBed<C>, entity: &CrmEntity, id: &ReferralId) -> CrmRecord {
    let mut found = records_of(bed, entity, id);
    assert_eq!(
        found.len(),
        1,
        "{}: one {entity} for {id}: {found:?}",
        bed.crm.name()
    );
    found.remove(0)
}

/// The record a referral is linked to.
async fn linked<C: CrmUnderTest>(bed: &TestBed<C>, id: &ReferralId) -> CrmRecordRef {
    bed.link(id)
        .await
        .expect("linked")
        .crm_record
        .expect("linked to a record")
}

fn update(notes: Option<&str>, deal_value: Option<i64>) -> MicrosoftChange {
    MicrosoftChange::Update(MicrosoftUpdate {
        notes: notes.map(str::to_owned),
        deal_value: deal_value.map(Into::into),
        ..MicrosoftUpdate::default()
    })
}

/// A bed with no workers and no webhooks: the test runs keys itself.
fn inline(store: StoreKind) -> TestBedOptions {
    TestBedOptions {
        workers: None,
        webhooks: false,
        ..TestBedOptions::new(store)
    }
}

// ---------------------------------------------------------------- scenarios

async fn new_referral_becomes_a_lead<C: CrmUnderTest>(store: StoreKind) {
    let Some(bed) = TestBed::<C>::start(store).await else {
        return;
    };
    let id = bed.send_referral();
    bed.settle().await;

    assert_eq!(bed.records(&CrmEntity::Lead).len(), 1);
    assert!(bed.records(&CrmEntity::Opportunity).is_empty());
    let lead = the_record(&bed, &CrmEntity::Lead, &id);
    let link = bed.link(&id).await.expect("linked");
    assert_eq!(link.crm_record, lead.record_ref());
    for field in ["customer_name", "notes", "contact_email"] {
        assert_eq!(
            crm_value(&bed, &lead, field),
            pc_value(&bed, &CrmEntity::Lead, &id, field),
            "{field}"
        );
    }
    // The record id went back to Partner Center as externalReferenceId.
    let referral = bed.referral(&id);
    assert_eq!(
        referral.external_reference_id.as_deref(),
        Some(lead.id.as_ref().unwrap().as_str())
    );
    // Our PATCH's eTag was kept, so its webhook took the fast path.
    assert_eq!(link.referral_etag, referral.e_tag);
    let audit = bed.store.audit_for_referral(&id, 10).await.unwrap();
    assert!(!audit.is_empty(), "the creation is audited");
}

async fn a_new_lead_costs_three_calls_and_an_unchanged_referral_one<C: CrmUnderTest>(
    store: StoreKind,
) {
    let Some(bed) = TestBed::<C>::start_with(inline(store)).await else {
        return;
    };
    // A first referral warms what is amortised across syncs: tokens, and lookups
    // the connector caches (Dataverse's currency ids, crm.md §1). Both referrals
    // carry the same currency.
    let warm = bed.send_referral();
    let currency = bed.referral(&warm).details.and_then(|d| d.currency);
    bed.run_key(SyncKey::Referral(warm), &[Trigger::Webhook])
        .await
        .unwrap();
    let mut body = bed.pc.referral(bed.send_referral().as_str()).unwrap();
    body["details"]["currency"] = json!(currency);
    let body: Map<String, Value> = ["name", "type", "customerProfile", "consent", "details"]
        .into_iter()
        .map(|k| (k.to_owned(), body[k].clone()))
        .collect();
    let id = bed.send_referral_body(Value::Object(body));
    let key = SyncKey::Referral(id.clone());

    let (pc_before, crm_before) = (bed.pc_api_calls().len(), bed.crm.api_calls());
    let outcome = bed.run_key(key.clone(), &[Trigger::Webhook]).await.unwrap();
    assert!(
        matches!(outcome, SyncOutcome::Created { .. }),
        "{outcome:?}"
    );
    let pc_calls = bed.pc_api_calls().len() - pc_before;
    let crm_calls = bed.crm.api_calls() - crm_before;
    assert!(
        pc_calls + crm_calls <= 3,
        "a new lead took {pc_calls} Partner Center + {crm_calls} CRM calls: {:?} {:?}",
        bed.pc_api_calls(),
        bed.crm.api_log()
    );

    // Our own PATCH's webhook (and any duplicate): the fast path, one GET.
    for _ in 0..2 {
        let pc_before = bed.pc_api_calls().len();
        let crm_before = bed.crm.api_calls();
        let outcome = bed.run_key(key.clone(), &[Trigger::Webhook]).await.unwrap();
        assert_eq!(outcome, SyncOutcome::Unchanged);
        assert_eq!(bed.pc_api_calls().len() - pc_before, 1, "exactly one call");
        assert_eq!(bed.crm.api_calls(), crm_before, "no CRM call");
    }
}

async fn acceptance_makes_an_opportunity_with_one_account_per_customer<C: CrmUnderTest>(
    store: StoreKind,
) {
    let Some(bed) = TestBed::<C>::start(store).await else {
        return;
    };
    let first = bed.send_referral();
    let sent = bed.pc.referral(first.as_str()).unwrap();
    let mut body: Map<String, Value> = ["type", "customerProfile", "consent", "details"]
        .into_iter()
        .map(|k| (k.to_owned(), sent[k].clone()))
        .collect();
    body.insert("name".into(), json!("Second workload, same customer"));
    let second = bed.send_referral_body(Value::Object(body));
    bed.settle().await;
    let leads: Vec<_> = [&first, &second]
        .into_iter()
        .map(|id| the_record(&bed, &CrmEntity::Lead, id))
        .collect();

    for id in [&first, &second] {
        bed.pc
            .microsoft_change(id.as_str(), MicrosoftChange::Accept)
            .unwrap();
    }
    bed.settle().await;

    let mut accounts = Vec::new();
    for (id, lead) in [&first, &second].into_iter().zip(&leads) {
        let opportunity = the_record(&bed, &CrmEntity::Opportunity, id);
        assert_eq!(linked(&bed, id).await, opportunity.record_ref().unwrap());
        assert!(
            bed.crm.lead_retired(&lead.record_ref().unwrap()),
            "lead of {id} retired"
        );
        assert_eq!(
            bed.referral(id).external_reference_id.as_deref(),
            Some(opportunity.id.as_ref().unwrap().as_str()),
            "externalReferenceId now names the opportunity"
        );
        accounts.push(
            bed.crm
                .account_of(&opportunity)
                .expect("bound to an account"),
        );
    }
    assert_eq!(accounts[0], accounts[1], "one account for one customer");
    assert_eq!(bed.records(&CrmEntity::Account).len(), 1);
}

async fn partner_center_changes_reach_the_crm<C: CrmUnderTest>(store: StoreKind) {
    let Some(bed) = TestBed::<C>::start(store).await else {
        return;
    };
    let id = bed.send_referral();
    bed.settle().await;

    bed.pc
        .microsoft_change(
            id.as_str(),
            update(Some("Customer wants a pilot first."), None),
        )
        .unwrap();
    bed.settle().await;
    let lead = the_record(&bed, &CrmEntity::Lead, &id);
    assert_eq!(
        crm_value(&bed, &lead, "notes"),
        json!("Customer wants a pilot first.")
    );

    bed.pc
        .microsoft_change(id.as_str(), MicrosoftChange::Accept)
        .unwrap();
    bed.settle().await;
    bed.pc
        .microsoft_change(id.as_str(), update(None, Some(62_000)))
        .unwrap();
    bed.settle().await;
    let opportunity = the_record(&bed, &CrmEntity::Opportunity, &id);
    assert_eq!(
        crm_value(&bed, &opportunity, "deal_value"),
        pc_value(&bed, &CrmEntity::Opportunity, &id, "deal_value")
    );
    assert_eq!(
        crm_value(&bed, &opportunity, "notes"),
        json!("Customer wants a pilot first."),
        "the lead's facts carried over"
    );
}

async fn duplicate_and_reordered_webhooks_give_one_record_with_the_latest_values<
    C: CrmUnderTest,
>(
    store: StoreKind,
) {
    let Some(bed) = TestBed::<C>::start(store).await else {
        return;
    };
    // The creation event is held back (it arrives last); the updates come twice.
    bed.pc
        .install_delivery_fault(DeliveryFaultRule::next(DeliveryFaultKind::Hold, 1))
        .unwrap();
    bed.pc
        .install_delivery_fault(DeliveryFaultRule::next(DeliveryFaultKind::Duplicate, 10))
        .unwrap();
    let id = bed.send_referral();
    for notes in ["v1", "v2", "v3"] {
        bed.pc
            .microsoft_change(id.as_str(), update(Some(notes), None))
            .unwrap();
    }
    bed.settle().await;
    assert_eq!(bed.pc.release_held_deliveries(), 1);
    bed.settle().await;
    // And an operator's stale re-run changes nothing either.
    bed.run_key(SyncKey::Referral(id.clone()), &[Trigger::Webhook])
        .await
        .unwrap();

    assert_eq!(bed.records(&CrmEntity::Lead).len(), 1);
    let lead = the_record(&bed, &CrmEntity::Lead, &id);
    assert_eq!(crm_value(&bed, &lead, "notes"), json!("v3"));
}

async fn the_reconciler_catches_a_dropped_webhook<C: CrmUnderTest>(store: StoreKind) {
    let Some(bed) = TestBed::<C>::start(store).await else {
        return;
    };
    bed.pc
        .install_delivery_fault(DeliveryFaultRule::next(DeliveryFaultKind::Drop, 1))
        .unwrap();
    let id = bed.send_referral();
    bed.settle().await;
    assert!(
        bed.records(&CrmEntity::Lead).is_empty(),
        "the webhook was lost"
    );

    let report = bed
        .engine
        .reconcile_once(&ReconcilerSettings::default())
        .await
        .unwrap();
    assert_eq!(report.enqueued, 1, "{report:?}");
    assert!(report.watermark.is_some());
    bed.engine.wakeup().notify();
    bed.settle().await;
    the_record(&bed, &CrmEntity::Lead, &id);
}

async fn storms_on_both_apis_delay_but_never_lose_or_duplicate<C: CrmUnderTest>(store: StoreKind) {
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

async fn a_412_is_resolved_by_re_reading<C: CrmUnderTest>(store: StoreKind) {
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

async fn a_crash_between_crm_write_and_link_commit_makes_no_second_record<C: CrmUnderTest>(
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

async fn a_crm_edit_reaches_partner_center<C: CrmUnderTest>(store: StoreKind) {
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

async fn echoes_of_our_own_writes_make_no_further_writes<C: CrmUnderTest>(store: StoreKind) {
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

async fn a_permanent_failure_is_dead_lettered_with_its_reason<C: CrmUnderTest>(store: StoreKind) {
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

async fn shutdown_releases_in_flight_keys<C: CrmUnderTest>(store: StoreKind) {
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

async fn a_flagged_crm_record_becomes_a_referral<C: CrmUnderTest>(store: StoreKind) {
    let Some(bed) = TestBed::<C>::start(store).await else {
        return;
    };
    let record =
        bed.crm
            .create_flagged_opportunity("Tailspin - Analytics", "Tailspin Toys", "10115");
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

async fn microsoft_half_of_a_cosell_leads_to_our_referral<C: CrmUnderTest>(store: StoreKind) {
    let Some(bed) = TestBed::<C>::start(store).await else {
        return;
    };
    let pair = bed.pc.open_generated_cosells(1).remove(0);
    let ours = ReferralId::parse(pair.partner["id"].as_str().unwrap()).unwrap();
    let microsoft = ReferralId::parse(pair.microsoft["id"].as_str().unwrap()).unwrap();
    bed.settle().await;
    the_record(&bed, &CrmEntity::Lead, &ours);
    assert!(
        bed.link(&microsoft).await.is_none(),
        "Microsoft's half is not ours to sync"
    );
    for entity in [CrmEntity::Lead, CrmEntity::Opportunity] {
        assert!(records_of(&bed, &entity, &microsoft).is_empty());
    }

    // Microsoft works its half: the related-referral event makes us look at ours.
    let ours_path = format!("{REFERRALS_PATH}/{ours}");
    let reads = |bed: &TestBed<C>| {
        bed.pc_api_calls()
            .iter()
            .filter(|r| r.path == ours_path && !r.is_write())
            .count()
    };
    let before = reads(&bed);
    bed.pc
        .microsoft_change(
            microsoft.as_str(),
            MicrosoftChange::Update(MicrosoftUpdate {
                msx_id: Some("7-MSX0001".into()),
                ..MicrosoftUpdate::default()
            }),
        )
        .unwrap();
    bed.settle().await;
    assert!(reads(&bed) > before, "our referral was read again");
    assert_eq!(bed.records(&CrmEntity::Lead).len(), 1, "still one record");
}

async fn check_marks_and_failure_lines_reach_the_record<C: CrmUnderTest>(store: StoreKind) {
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

async fn a_record_deleted_in_the_crm_is_created_again<C: CrmUnderTest>(store: StoreKind) {
    let Some(bed) = TestBed::<C>::start(store).await else {
        return;
    };
    let id = bed.send_referral();
    bed.settle().await;
    let gone = the_record(&bed, &CrmEntity::Lead, &id);
    bed.crm.delete_as_user(&gone.record_ref().unwrap());
    assert!(records_of(&bed, &CrmEntity::Lead, &id).is_empty());

    bed.pc
        .microsoft_change(id.as_str(), update(Some("Still interested."), None))
        .unwrap();
    bed.settle().await;
    let again = the_record(&bed, &CrmEntity::Lead, &id);
    assert_ne!(again.id, gone.id, "a new record");
    assert_eq!(crm_value(&bed, &again, "notes"), json!("Still interested."));
    assert_eq!(linked(&bed, &id).await, again.record_ref().unwrap());
    assert_eq!(
        bed.referral(&id).external_reference_id.as_deref(),
        Some(again.id.as_ref().unwrap().as_str())
    );
}

async fn an_operator_sync_reports_a_failure_being_retried<C: CrmUnderTest>(store: StoreKind) {
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

// ---------------------------------------------------------------- instantiation

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

/// Every scenario against every CRM × store: one line per pair.
macro_rules! scenarios {
    ($($scenario:ident),* $(,)?) => {
        instantiate!(salesforce_sqlite, refsync_engine::testbed::Salesforce, super::StoreKind::Sqlite; $($scenario),*);
        instantiate!(salesforce_postgres, refsync_engine::testbed::Salesforce, super::StoreKind::Postgres; $($scenario),*);
        instantiate!(dynamics_sqlite, refsync_engine::testbed::Dynamics, super::StoreKind::Sqlite; $($scenario),*);
        instantiate!(dynamics_postgres, refsync_engine::testbed::Dynamics, super::StoreKind::Postgres; $($scenario),*);
        instantiate!(memory_sqlite, refsync_engine::testbed::InMemory, super::StoreKind::Sqlite; $($scenario),*);
    };
}

scenarios!(
    new_referral_becomes_a_lead,
    a_new_lead_costs_three_calls_and_an_unchanged_referral_one,
    acceptance_makes_an_opportunity_with_one_account_per_customer,
    partner_center_changes_reach_the_crm,
    duplicate_and_reordered_webhooks_give_one_record_with_the_latest_values,
    the_reconciler_catches_a_dropped_webhook,
    storms_on_both_apis_delay_but_never_lose_or_duplicate,
    a_412_is_resolved_by_re_reading,
    a_crash_between_crm_write_and_link_commit_makes_no_second_record,
    a_crm_edit_reaches_partner_center,
    echoes_of_our_own_writes_make_no_further_writes,
    a_permanent_failure_is_dead_lettered_with_its_reason,
    shutdown_releases_in_flight_keys,
    a_flagged_crm_record_becomes_a_referral,
    microsoft_half_of_a_cosell_leads_to_our_referral,
    check_marks_and_failure_lines_reach_the_record,
    a_record_deleted_in_the_crm_is_created_again,
    an_operator_sync_reports_a_failure_being_retried,
);
