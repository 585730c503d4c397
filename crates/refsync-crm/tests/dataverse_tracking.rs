//! The Dataverse connector's change-tracking reads against the emulator: the first
//! read pages through every record to a delta link, each later change comes once,
//! deletions are left out, a refused delta link starts over, and a table without
//! tracking is reported as untracked (the poller then reads it by modified time).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod dataverse_support;

use dataverse_support::*;
use refsync_core::ids::{CrmEntity, CrmRecordId};
use refsync_crm::connector::{CrmConnector, RecordWrite, TrackedChanges};
use refsync_emulators::dataverse::DataverseConfig;
use serde_json::json;
use std::time::Duration;
use uuid::Uuid;

async fn create_leads(env: &Env, n: usize, tag: &str) -> Vec<CrmRecordId> {
    let lead = env.entity(CrmEntity::Lead);
    let mut ids = Vec::new();
    for i in 0..n {
        let upserted = env
            .connector
            .upsert_by_referral(lead, &referral(&format!("{tag}-{i}")), &env.lead_write())
            .await
            .unwrap();
        ids.push(upserted.record.id.unwrap());
    }
    ids
}

async fn step(env: &Env, cursor: Option<&str>) -> TrackedChanges {
    env.connector
        .tracked_changes(env.entity(CrmEntity::Lead), cursor)
        .await
        .unwrap()
        .expect("the emulator tracks leads")
}

fn ids(changes: &TrackedChanges) -> Vec<CrmRecordId> {
    changes
        .records
        .iter()
        .map(|r| r.id.clone().unwrap())
        .collect()
}

#[tokio::test]
async fn the_first_read_pages_through_every_record_then_each_change_comes_once() {
    let env = start_with(DataverseConfig::default(), |s| s.page_size = 2).await;
    let created = create_leads(&env, 5, "ref-track").await;
    env.reset_calls();

    // Five records in pages of two: three steps, the last one caught up.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut steps = 0;
    loop {
        let changes = step(&env, cursor.as_deref()).await;
        steps += 1;
        assert!(!changes.restarted);
        seen.extend(ids(&changes));
        cursor = Some(changes.cursor);
        if changes.caught_up {
            break;
        }
        assert!(steps < 10, "the first read never caught up");
    }
    assert_eq!(steps, 3);
    assert_eq!(env.calls(), 3, "one GET per page");
    seen.sort();
    let mut expected = created.clone();
    expected.sort();
    assert_eq!(seen, expected);

    // Nothing changed: an empty step, still caught up.
    let quiet = step(&env, cursor.as_deref()).await;
    assert!(quiet.records.is_empty() && quiet.caught_up);

    // A seller's edit and a deletion: the edit comes once, with its new values; the
    // deletion is left out.
    let lead = env.entity(CrmEntity::Lead);
    let edited = Uuid::parse_str(created[1].as_str()).unwrap();
    env.emu
        .dataverse()
        .edit_as_user(
            "leads",
            edited,
            &json!({"description": "Call back on Monday."}),
        )
        .unwrap();
    let deleted = Uuid::parse_str(created[2].as_str()).unwrap();
    env.emu
        .dataverse()
        .delete_as_user("leads", deleted)
        .unwrap();
    let changes = step(&env, Some(&quiet.cursor)).await;
    assert_eq!(ids(&changes), vec![created[1].clone()]);
    assert_eq!(
        changes.records[0].field("description"),
        &json!("Call back on Monday.")
    );
    assert_eq!(changes.records[0].entity, lead.entity);
    assert!(changes.caught_up);
    let after = step(&env, Some(&changes.cursor)).await;
    assert!(after.records.is_empty(), "{:?}", after.records);

    // Our own write is a change like any other (the poller tells it apart).
    env.connector
        .update(
            lead,
            &created[0],
            &RecordWrite {
                fields: [("description".to_owned(), json!("Ours."))]
                    .into_iter()
                    .collect(),
                ..RecordWrite::default()
            },
        )
        .await
        .unwrap();
    let ours = step(&env, Some(&after.cursor)).await;
    assert_eq!(ids(&ours), vec![created[0].clone()]);
}

#[tokio::test]
async fn an_expired_delta_link_starts_the_read_over() {
    let env = start().await;
    let created = create_leads(&env, 2, "ref-expire").await;
    let first = step(&env, None).await;
    assert!(first.caught_up);
    // Tokens live 7 days (crm.md §1.9).
    env.emu
        .dataverse()
        .advance_clock(Duration::from_secs(8 * 24 * 3600));
    let again = step(&env, Some(&first.cursor)).await;
    assert!(again.restarted);
    assert_eq!(again.records.len(), created.len());
    assert!(again.caught_up);
    let next = step(&env, Some(&again.cursor)).await;
    assert!(!next.restarted && next.records.is_empty());

    // A cursor that is not even a URL starts over too, rather than failing forever.
    let garbage = step(&env, Some("not a link")).await;
    assert!(garbage.restarted);
    assert_eq!(garbage.records.len(), created.len());
}

#[tokio::test]
async fn a_table_without_tracking_is_read_by_modified_time() {
    let config = DataverseConfig {
        change_tracking_tables: vec!["opportunity".to_owned()],
        ..DataverseConfig::default()
    };
    let env = start_with(config, |_| {}).await;
    create_leads(&env, 2, "ref-untracked").await;
    let lead = env.entity(CrmEntity::Lead);
    env.reset_calls();
    // Asked twice, found out once: the second ask sends no call.
    for _ in 0..2 {
        assert!(
            env.connector
                .tracked_changes(lead, None)
                .await
                .unwrap()
                .is_none()
        );
    }
    assert_eq!(env.calls(), 1);
    let since = chrono::DateTime::<chrono::Utc>::UNIX_EPOCH;
    assert_eq!(
        env.connector
            .modified_since(lead, since, 10)
            .await
            .unwrap()
            .len(),
        2
    );
    // The tracked table is still tracked.
    let opportunity = env.entity(CrmEntity::Opportunity);
    assert!(
        env.connector
            .tracked_changes(opportunity, None)
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn tracking_switched_off_in_the_settings_is_never_asked_for() {
    let env = start_with(DataverseConfig::default(), |s| s.change_tracking = false).await;
    env.reset_calls();
    assert!(
        env.connector
            .tracked_changes(env.entity(CrmEntity::Lead), None)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(env.calls(), 0);
}
