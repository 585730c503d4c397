//! Links and base snapshots with optimistic versioning; the audit trail and its atomicity.

use crate::support::*;
use refsync_core::{EngagementId, Etag};
use refsync_store::{AuditKind, NewAuditEntry, StoreError, SyncLink};
use serde_json::json;

contract_tests!(
    a_link_round_trips_and_is_found_by_every_key,
    a_stale_version_is_refused,
    a_crm_originated_link_is_rekeyed_when_its_referral_exists,
    two_links_cannot_hold_the_same_referral_or_record,
    saving_a_link_and_its_audit_is_all_or_nothing,
    audit_is_listed_newest_first_by_referral_and_by_key,
    concurrent_writes_fail_alone,
);

fn linked(referral_id: &str, crm: &str, engagement: &str) -> SyncLink {
    let mut l = SyncLink::for_referral(referral(referral_id), at(0));
    l.crm_record = Some(lead(crm));
    l.engagement_id = Some(EngagementId::parse(engagement).unwrap());
    l.base =
        json!({"name": "Contoso upgrade", "dealValue": 12500.5, "notes": null, "team": ["a", "b"]})
            .as_object()
            .unwrap()
            .clone();
    l.referral_etag = Some(Etag::new("\"2500ec5a-0000\""));
    l.referral_updated_at = Some(at(-50));
    l.crm_modified_at = Some(at(-40));
    l
}

fn audit(referral_id: &str, kind: AuditKind, secs: i64, summary: &str) -> NewAuditEntry {
    NewAuditEntry {
        at: at(secs),
        key: rkey(referral_id),
        referral_id: Some(referral(referral_id)),
        crm_record: Some(lead("L-1")),
        kind,
        summary: summary.into(),
        detail: json!({"dealValue": {"old": 100, "new": 200}}),
    }
}

async fn a_link_round_trips_and_is_found_by_every_key(b: &Backend) {
    let s = &b.store;
    let saved = s
        .save_link(&linked("r-1", "L-1", "e-1"), at(10))
        .await
        .unwrap();
    assert!(saved.id.is_some());
    assert_eq!(saved.version, 1);
    assert_eq!((saved.created_at, saved.updated_at), (at(10), at(10)));

    let by_ref = s.link_by_referral(&referral("r-1")).await.unwrap().unwrap();
    assert_eq!(by_ref, saved, "every field survives the round trip");
    assert_eq!(
        s.link_by_crm_record(&lead("L-1")).await.unwrap().unwrap(),
        saved
    );
    assert_eq!(s.link(saved.id.unwrap()).await.unwrap().unwrap(), saved);
    assert!(
        s.link_by_crm_record(&opportunity("L-1"))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        s.link_by_referral(&referral("r-2"))
            .await
            .unwrap()
            .is_none()
    );

    // The other half of the engagement.
    s.save_link(&linked("r-2", "L-2", "e-1"), at(11))
        .await
        .unwrap();
    s.save_link(&linked("r-3", "L-3", "e-other"), at(11))
        .await
        .unwrap();
    let mut engagement: Vec<_> = s
        .links_by_engagement(&EngagementId::parse("e-1").unwrap())
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.referral_id.unwrap().to_string())
        .collect();
    engagement.sort();
    assert_eq!(engagement, ["r-1", "r-2"]);

    // An update bumps the version and keeps created_at.
    let mut next = by_ref.clone();
    next.base.insert("dealValue".into(), json!(20000));
    next.crm_record = Some(opportunity("O-1"));
    let updated = s.save_link(&next, at(20)).await.unwrap();
    assert_eq!(updated.version, 2);
    assert_eq!((updated.created_at, updated.updated_at), (at(10), at(20)));
    let reread = s
        .link_by_crm_record(&opportunity("O-1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reread, updated);
    assert_eq!(reread.base["dealValue"], json!(20000));
    assert!(
        s.link_by_crm_record(&lead("L-1")).await.unwrap().is_none(),
        "the link moved"
    );
}

async fn a_stale_version_is_refused(b: &Backend) {
    let s = &b.store;
    let v1 = s
        .save_link(&linked("r-1", "L-1", "e-1"), at(0))
        .await
        .unwrap();
    let mut mine = v1.clone();
    let mut theirs = v1.clone();
    theirs.base.insert("notes".into(), json!("theirs"));
    s.save_link(&theirs, at(1)).await.unwrap();
    mine.base.insert("notes".into(), json!("mine"));
    match s.save_link(&mine, at(2)).await {
        Err(StoreError::VersionConflict { link, expected }) => {
            assert_eq!((link, expected), (v1.id.unwrap().0, 1));
        }
        other => panic!("expected a version conflict, got {other:?}"),
    }
    let stored = s.link_by_referral(&referral("r-1")).await.unwrap().unwrap();
    assert_eq!(stored.base["notes"], json!("theirs"));
    assert_eq!(stored.version, 2);
}

async fn a_crm_originated_link_is_rekeyed_when_its_referral_exists(b: &Backend) {
    let s = &b.store;
    // The CRM record is flagged for sync before any referral exists.
    let mut l = SyncLink::for_crm_record(opportunity("O-9"), at(0));
    l.base = json!({"name": "From the CRM"}).as_object().unwrap().clone();
    let l = s.save_link(&l, at(0)).await.unwrap();
    assert_eq!(l.referral_id, None);
    assert_eq!(
        s.link_by_crm_record(&opportunity("O-9"))
            .await
            .unwrap()
            .unwrap(),
        l
    );

    // The worker created the referral: the same link gains its referral id in one save.
    let mut rekeyed = l.clone();
    rekeyed.referral_id = Some(referral("r-new"));
    rekeyed.engagement_id = Some(EngagementId::parse("e-9").unwrap());
    let rekeyed = s.save_link(&rekeyed, at(5)).await.unwrap();
    assert_eq!(rekeyed.id, l.id, "same link, re-keyed");
    assert_eq!(
        s.link_by_referral(&referral("r-new"))
            .await
            .unwrap()
            .unwrap(),
        rekeyed
    );
    assert_eq!(
        s.link_by_crm_record(&opportunity("O-9"))
            .await
            .unwrap()
            .unwrap(),
        rekeyed
    );

    // A link with neither key cannot be stored.
    let nothing = SyncLink {
        referral_id: None,
        crm_record: None,
        ..SyncLink::for_crm_record(opportunity("O-10"), at(0))
    };
    assert!(s.save_link(&nothing, at(6)).await.is_err());
}

async fn two_links_cannot_hold_the_same_referral_or_record(b: &Backend) {
    let s = &b.store;
    s.save_link(&linked("r-1", "L-1", "e-1"), at(0))
        .await
        .unwrap();
    let same_referral = linked("r-1", "L-2", "e-1");
    assert!(matches!(
        s.save_link(&same_referral, at(1)).await,
        Err(StoreError::LinkKeyTaken)
    ));
    let same_record = linked("r-2", "L-1", "e-1");
    assert!(matches!(
        s.save_link(&same_record, at(1)).await,
        Err(StoreError::LinkKeyTaken)
    ));
    // Re-keying onto a taken record is refused too, and changes nothing.
    let other = s
        .save_link(&linked("r-3", "L-3", "e-1"), at(2))
        .await
        .unwrap();
    let mut clash = other.clone();
    clash.crm_record = Some(lead("L-1"));
    assert!(matches!(
        s.save_link(&clash, at(3)).await,
        Err(StoreError::LinkKeyTaken)
    ));
    assert_eq!(
        s.link_by_referral(&referral("r-3")).await.unwrap().unwrap(),
        other
    );
}

async fn saving_a_link_and_its_audit_is_all_or_nothing(b: &Backend) {
    let s = &b.store;
    let v1 = s
        .save_link_with_audit(
            &linked("r-1", "L-1", "e-1"),
            &[audit("r-1", AuditKind::CreatedLead, 0, "created lead L-1")],
            at(0),
        )
        .await
        .unwrap();
    let mut next = v1.clone();
    next.base.insert("dealValue".into(), json!(1));
    s.save_link_with_audit(
        &next,
        &[audit(
            "r-1",
            AuditKind::UpdatedCrm,
            1,
            "dealValue 100 → 200",
        )],
        at(1),
    )
    .await
    .unwrap();

    // A save that loses the version race appends no audit either.
    let mut stale = v1.clone();
    stale.base.insert("dealValue".into(), json!(2));
    let err = s
        .save_link_with_audit(
            &stale,
            &[audit("r-1", AuditKind::WroteBack, 2, "must not appear")],
            at(2),
        )
        .await;
    assert!(matches!(err, Err(StoreError::VersionConflict { .. })));
    // Nor does one refused for a taken key.
    let err = s
        .save_link_with_audit(
            &linked("r-1", "L-9", "e-1"),
            &[audit(
                "r-1",
                AuditKind::CreatedLead,
                3,
                "must not appear either",
            )],
            at(3),
        )
        .await;
    assert!(matches!(err, Err(StoreError::LinkKeyTaken)));

    let entries = s.audit_for_referral(&referral("r-1"), 10).await.unwrap();
    let summaries: Vec<_> = entries.iter().map(|e| e.entry.summary.as_str()).collect();
    assert_eq!(summaries, ["dealValue 100 → 200", "created lead L-1"]);
}

async fn audit_is_listed_newest_first_by_referral_and_by_key(b: &Backend) {
    let s = &b.store;
    let first = audit("r-1", AuditKind::CreatedLead, 0, "one");
    s.append_audit(&[
        first.clone(),
        audit("r-1", AuditKind::Conflict, 1, "two"),
        audit("r-2", AuditKind::SkippedUnchanged, 2, "other referral"),
    ])
    .await
    .unwrap();
    let crm_only = NewAuditEntry {
        key: lead_key("L-7"),
        referral_id: None,
        crm_record: Some(lead("L-7")),
        kind: AuditKind::Other("future_kind".into()),
        ..audit("r-1", AuditKind::Retry, 3, "crm-originated")
    };
    s.append_audit(std::slice::from_ref(&crm_only))
        .await
        .unwrap();

    let r1 = s.audit_for_referral(&referral("r-1"), 10).await.unwrap();
    assert_eq!(r1.len(), 2);
    assert_eq!(r1[1].entry, first, "every field round-trips");
    assert!(r1[0].id > r1[1].id);
    assert_eq!(
        s.audit_for_referral(&referral("r-1"), 1)
            .await
            .unwrap()
            .len(),
        1
    );

    let by_key = s.audit_for_key(&lead_key("L-7"), 10).await.unwrap();
    assert_eq!(by_key.len(), 1);
    assert_eq!(by_key[0].entry, crm_only, "unknown kinds are kept verbatim");
    assert_eq!(s.audit_for_key(&rkey("r-2"), 10).await.unwrap().len(), 1);
}

/// Workers' writes at the same instant (SQLite commits them together): a stale
/// link save and a lost lease are refused on their own, and every other write lands.
async fn concurrent_writes_fail_alone(b: &Backend) {
    use chrono::Duration;
    use refsync_store::{CompleteOutcome, Enqueue, LeaseOwner, Trigger};
    const N: usize = 24;
    let s = &b.store;
    let items: Vec<_> = (0..N)
        .map(|i| Enqueue::now(rkey(&format!("r-batch-{i}")), Trigger::Webhook, at(0)))
        .collect();
    s.enqueue_many(&items, at(0)).await.unwrap();
    let mut claims = s
        .claim_due_keys(
            &LeaseOwner::new("w"),
            at(1),
            Duration::seconds(60),
            N as u32,
        )
        .await
        .unwrap();
    assert_eq!(claims.len(), N);
    claims[0].lease_token = "not-ours".into();
    let stale = s
        .save_link_with_audit(&linked("r-batch-stale", "L-stale", "e-stale"), &[], at(1))
        .await
        .unwrap();
    s.save_link_with_audit(&stale, &[], at(2)).await.unwrap();

    let mut tasks = Vec::new();
    for (i, claim) in claims.iter().cloned().enumerate() {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let link = linked(&format!("r-batch-{i}"), &format!("L-batch-{i}"), "e-batch");
            let entry = audit(
                &format!("r-batch-{i}"),
                AuditKind::CreatedLead,
                3,
                "created",
            );
            let saved = s.save_link_with_audit(&link, &[entry], at(3)).await;
            let completed = s.complete(&claim, at(3)).await;
            (saved.map(|l| l.version), completed)
        }));
    }
    let stale_write = {
        let s = s.clone();
        tokio::spawn(async move { s.save_link_with_audit(&stale, &[], at(3)).await })
    };
    for (i, task) in tasks.into_iter().enumerate() {
        let (saved, completed) = task.await.unwrap();
        assert_eq!(saved.unwrap(), 1, "link {i}");
        match (i, completed) {
            (0, Err(StoreError::LeaseLost { .. })) => {}
            (0, other) => panic!("the forged claim completed: {other:?}"),
            (_, Ok(CompleteOutcome::Removed)) => {}
            (i, other) => panic!("claim {i}: {other:?}"),
        }
    }
    assert!(matches!(
        stale_write.await.unwrap(),
        Err(StoreError::VersionConflict { .. })
    ));
    for i in 0..N {
        let id = referral(&format!("r-batch-{i}"));
        assert!(s.link_by_referral(&id).await.unwrap().is_some(), "link {i}");
        assert_eq!(s.audit_for_referral(&id, 10).await.unwrap().len(), 1);
        let queued = s.queue_entry(&rkey(&format!("r-batch-{i}"))).await.unwrap();
        assert_eq!(queued.is_some(), i == 0, "queue row {i}");
    }
}
