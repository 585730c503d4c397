//! Partner Center → CRM: creation, qualification, updates, duplicates and lost webhooks, deleted records, co-sell halves.

use crate::helpers::*;
use refsync_core::{CrmEntity, ReferralId, SyncKey};
use refsync_emulators::partner_center::{
    DeliveryFaultKind, DeliveryFaultRule, MicrosoftChange, MicrosoftUpdate,
};
use refsync_engine::testbed::{CrmUnderTest, REFERRALS_PATH, StoreKind, TestBed};
use refsync_engine::{ReconcilerSettings, SyncOutcome};
use refsync_store::Trigger;
use serde_json::{Map, Value, json};

pub async fn new_referral_becomes_a_lead<C: CrmUnderTest>(store: StoreKind) {
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

pub async fn a_new_lead_costs_three_calls_and_an_unchanged_referral_one<C: CrmUnderTest>(
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

pub async fn acceptance_makes_an_opportunity_with_one_account_per_customer<C: CrmUnderTest>(
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

pub async fn partner_center_changes_reach_the_crm<C: CrmUnderTest>(store: StoreKind) {
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

pub async fn duplicate_and_reordered_webhooks_give_one_record_with_the_latest_values<
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

pub async fn the_reconciler_catches_a_dropped_webhook<C: CrmUnderTest>(store: StoreKind) {
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

pub async fn a_record_deleted_in_the_crm_is_created_again<C: CrmUnderTest>(store: StoreKind) {
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

pub async fn microsoft_half_of_a_cosell_leads_to_our_referral<C: CrmUnderTest>(store: StoreKind) {
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
