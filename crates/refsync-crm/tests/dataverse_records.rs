//! The Dataverse connector's record methods against the emulator: reads, the upsert by
//! alternate key with return-representation, updates, creates, matching, the currency
//! lookup both ways, paging of changes, and refused writes.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod dataverse_support;

use chrono::{Duration as TimeDelta, Utc};
use dataverse_support::*;
use refsync_core::ids::{CrmEntity, Etag};
use refsync_crm::connector::{CrmConnector, CrmError, CrmKind, RecordWrite};
use refsync_emulators::dataverse::DataverseConfig;
use serde_json::{Value, json};

#[tokio::test]
async fn upsert_creates_then_updates_the_same_record_and_returns_it() {
    let env = start().await;
    let lead = env.entity(CrmEntity::Lead);
    let r = referral("ref-upsert-1");
    let first = env
        .connector
        .upsert_by_referral(lead, &r, &env.lead_write())
        .await
        .unwrap();
    assert!(first.created);
    let id = first.record.id.clone().unwrap();
    assert!(first.record.etag.is_some());
    assert!(first.record.modified_at.is_some());
    assert_eq!(
        first
            .record
            .field("msft_microsoftpartnercenterreferralidentifier"),
        &json!("ref-upsert-1"),
        "the key comes from the URL"
    );
    assert_eq!(
        first.record.field("subject"),
        &json!("Test Cosell Invite_20")
    );
    assert_eq!(first.record.field("estimatedamount"), &json!(50000.0));
    assert_eq!(
        first.record.field("estimatedclosedate"),
        &json!("2020-12-01")
    );

    let mut change = env.lead_write();
    change
        .fields
        .insert("description".into(), json!("second pass"));
    let second = env
        .connector
        .upsert_by_referral(lead, &r, &change)
        .await
        .unwrap();
    assert!(!second.created);
    assert_eq!(second.record.id.as_ref(), Some(&id));
    assert_ne!(second.record.etag, first.record.etag);
    assert_eq!(second.record.field("description"), &json!("second pass"));
    let matching: Vec<Value> = env
        .records("leads")
        .into_iter()
        .filter(|l| l["msft_microsoftpartnercenterreferralidentifier"] == json!("ref-upsert-1"))
        .collect();
    assert_eq!(matching.len(), 1);
    assert_eq!(env.connector.kind(), CrmKind::Dynamics);
}

#[tokio::test]
async fn a_new_lead_takes_exactly_one_call() {
    let env = start().await;
    let lead = env.entity(CrmEntity::Lead);
    // The first sight of USD resolves the currency once for the connector's life.
    env.connector
        .upsert_by_referral(lead, &referral("warm-up"), &env.lead_write())
        .await
        .unwrap();
    env.reset_calls();
    let outcome = env
        .connector
        .upsert_by_referral(lead, &referral("ref-one-call"), &env.lead_write())
        .await
        .unwrap();
    assert!(outcome.created);
    assert!(outcome.record.id.is_some() && outcome.record.etag.is_some());
    assert_eq!(
        env.calls(),
        1,
        "one PATCH returns the id, etag and modified time"
    );
}

#[tokio::test]
async fn the_currency_lookup_is_written_by_code_and_read_back_as_the_code() {
    let env = start().await;
    let lead = env.entity(CrmEntity::Lead);
    let mut write = env.lead_write();
    write
        .fields
        .insert("transactioncurrencyid".into(), json!("EUR"));
    let outcome = env
        .connector
        .upsert_by_referral(lead, &referral("ref-eur"), &write)
        .await
        .unwrap();
    let id = outcome.record.id.clone().unwrap();
    assert_eq!(outcome.record.field("transactioncurrencyid"), &json!("EUR"));
    assert_eq!(
        env.record("leads", &id)["_transactioncurrencyid_value"],
        json!(env.currency_id("EUR"))
    );

    // A seller switches it to GBP; a fresh connector (nothing cached) reads the code.
    env.emu
        .dataverse()
        .edit_as_user(
            "leads",
            uuid(&id),
            &json!({"transactioncurrencyid@odata.bind": format!("/transactioncurrencies({})", env.currency_id("GBP"))}),
        )
        .unwrap();
    let fresh = refsync_crm::dataverse::DataverseConnector::new(
        settings(&env.emu),
        &refsync_outbound::TokenCache::new(),
    )
    .unwrap();
    let read = fresh.get(lead, &id).await.unwrap().unwrap();
    assert_eq!(read.field("transactioncurrencyid"), &json!("GBP"));

    // Matching on a lookup compares ids.
    let gbp = json!("GBP");
    let found = env
        .connector
        .find_by_columns(lead, &[("transactioncurrencyid", &gbp)], 5)
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].id.as_ref(), Some(&id));
    let eur = json!("EUR");
    assert!(
        env.connector
            .find_by_columns(lead, &[("transactioncurrencyid", &eur)], 5)
            .await
            .unwrap()
            .is_empty()
    );

    // An unknown code is refused data, not a silent drop.
    write
        .fields
        .insert("transactioncurrencyid".into(), json!("XXX"));
    let e = env
        .connector
        .upsert_by_referral(lead, &referral("ref-xxx"), &write)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, CrmError::Rejected { message, .. } if message.contains("XXX")),
        "{e:?}"
    );
}

#[tokio::test]
async fn get_by_id_and_by_referral_and_absent_records() {
    let env = start().await;
    let lead = env.entity(CrmEntity::Lead);
    let created = env
        .connector
        .upsert_by_referral(lead, &referral("ref-get"), &env.lead_write())
        .await
        .unwrap()
        .record;
    let id = created.id.clone().unwrap();
    let by_id = env.connector.get(lead, &id).await.unwrap().unwrap();
    let by_ref = env
        .connector
        .get_by_referral(lead, &referral("ref-get"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_id, by_ref);
    assert_eq!(by_id.etag, created.etag);
    assert_eq!(by_id.field("lastname"), &json!("Smith"));
    assert_eq!(by_id.field("statecode"), &json!(0));
    assert_eq!(
        env.mapping
            .entity(&CrmEntity::Lead)
            .unwrap()
            .read_crm(&by_id)
            .values["currency"],
        json!("USD")
    );
    assert!(
        env.connector
            .get(
                lead,
                &dataverse_support::id("00000000-0000-0000-0000-000000000001")
            )
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        env.connector
            .get_by_referral(lead, &referral("nobody"))
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn update_patches_only_existing_records_and_returns_them() {
    let env = start().await;
    let lead = env.entity(CrmEntity::Lead);
    let created = env
        .connector
        .upsert_by_referral(lead, &referral("ref-update"), &env.lead_write())
        .await
        .unwrap()
        .record;
    let id = created.id.clone().unwrap();
    let mut fields = serde_json::Map::new();
    fields.insert("description".into(), json!("edited"));
    fields.insert("estimatedamount".into(), json!(75000.25));
    let updated = env
        .connector
        .update(lead, &id, &RecordWrite::fields(fields.clone()))
        .await
        .unwrap();
    assert_eq!(updated.field("description"), &json!("edited"));
    assert_eq!(updated.field("estimatedamount"), &json!(75000.25));
    assert_ne!(updated.etag, created.etag);

    // If-Match: * — a missing record is refused, never created.
    let before = env.records("leads").len();
    let e = env
        .connector
        .update(
            lead,
            &dataverse_support::id("00000000-0000-0000-0000-0000000000ff"),
            &RecordWrite::fields(fields.clone()),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, CrmError::Rejected { .. }), "{e:?}");
    assert_eq!(env.records("leads").len(), before);

    // A stale ETag on a conditional write is a lost race.
    let e = env
        .connector
        .update_if_unchanged(
            lead,
            &id,
            created.etag.as_ref().unwrap(),
            &RecordWrite::fields(fields.clone()),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, CrmError::PreconditionFailed), "{e:?}");
    let fresh: &Etag = updated.etag.as_ref().unwrap();
    env.connector
        .update_if_unchanged(lead, &id, fresh, &RecordWrite::fields(fields))
        .await
        .unwrap();
}

#[tokio::test]
async fn lead_state_changes_by_patch_and_reopens_a_closed_lead() {
    let env = start().await;
    let lead = env.entity(CrmEntity::Lead);
    let id = env
        .connector
        .upsert_by_referral(lead, &referral("ref-state"), &env.lead_write())
        .await
        .unwrap()
        .record
        .id
        .unwrap();
    let state = |s: i64, st: i64| {
        let mut f = serde_json::Map::new();
        f.insert("statecode".into(), json!(s));
        f.insert("statuscode".into(), json!(st));
        RecordWrite::fields(f)
    };
    let r = env.connector.update(lead, &id, &state(2, 4)).await.unwrap();
    assert_eq!(
        (r.field("statecode"), r.field("statuscode")),
        (&json!(2), &json!(4))
    );
    // Disqualified → Qualified: closed to closed needs a reopen first.
    let r = env.connector.update(lead, &id, &state(1, 3)).await.unwrap();
    assert_eq!(
        (r.field("statecode"), r.field("statuscode")),
        (&json!(1), &json!(3))
    );
    // Reopening may carry other changes in the same write.
    let mut reopen = state(0, 1);
    reopen
        .fields
        .insert("description".into(), json!("back again"));
    let r = env.connector.update(lead, &id, &reopen).await.unwrap();
    assert_eq!(r.field("statecode"), &json!(0));
    assert_eq!(r.field("description"), &json!("back again"));
    // Asking for the state it is already in changes nothing.
    env.reset_calls();
    let r = env.connector.update(lead, &id, &state(0, 1)).await.unwrap();
    assert_eq!(r.field("statecode"), &json!(0));
    assert_eq!(
        env.calls(),
        2,
        "one read of the state, one read of the record"
    );
}

#[tokio::test]
async fn create_posts_and_returns_the_record_without_retrying() {
    let env = start().await;
    let account = env.entity(CrmEntity::Account);
    let mut fields = serde_json::Map::new();
    fields.insert("name".into(), json!("Fabrikam Customer Inc"));
    fields.insert("address1_postalcode".into(), json!("98052"));
    let a = env
        .connector
        .create(account, &RecordWrite::fields(fields))
        .await
        .unwrap();
    let account_id = a.id.clone().unwrap();
    assert_eq!(a.field("name"), &json!("Fabrikam Customer Inc"));
    assert!(a.etag.is_some());

    let contact = env.entity(CrmEntity::Contact);
    let mut fields = serde_json::Map::new();
    fields.insert("firstname".into(), json!("Sue"));
    fields.insert("lastname".into(), json!("Smith"));
    let c = env
        .connector
        .create(
            contact,
            &RecordWrite {
                fields,
                account: Some(account_id.clone()),
                contact: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        c.field("_parentcustomerid_value"),
        &json!(account_id.as_str())
    );
}

#[tokio::test]
async fn find_by_columns_escapes_quotes_and_matches_without_case() {
    let env = start().await;
    let account = env.entity(CrmEntity::Account);
    let wanted = env.seller_account("O'Brien's Bikes", "98052");
    env.seller_account("O'Brien's Bikes", "10001");
    env.seller_account("Other", "98052");
    let name = json!("o'brien's bikes");
    let postal = json!("98052");
    let found = env
        .connector
        .find_by_columns(
            account,
            &[("name", &name), ("address1_postalcode", &postal)],
            5,
        )
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].id.as_ref().unwrap().as_str(), wanted);
    let none = json!("00000");
    assert!(
        env.connector
            .find_by_columns(
                account,
                &[("name", &name), ("address1_postalcode", &none)],
                5
            )
            .await
            .unwrap()
            .is_empty()
    );
    let both = env
        .connector
        .find_by_columns(account, &[("name", &name)], 1)
        .await
        .unwrap();
    assert_eq!(both.len(), 1, "$top bounds the answer");
    assert!(matches!(
        env.connector.find_by_columns(account, &[], 1).await,
        Err(CrmError::Mapping(_))
    ));
}

#[tokio::test]
async fn modified_since_pages_through_changes_oldest_first_up_to_the_limit() {
    let env = start_with(DataverseConfig::default(), |s| s.page_size = 2).await;
    let lead = env.entity(CrmEntity::Lead);
    let since = env.emu.dataverse().now() - TimeDelta::seconds(1);
    let mut ids = Vec::new();
    for n in 0..7 {
        env.emu
            .dataverse()
            .advance_clock(std::time::Duration::from_secs(2));
        let id = env
            .connector
            .upsert_by_referral(lead, &referral(&format!("ref-page-{n}")), &env.lead_write())
            .await
            .unwrap()
            .record
            .id
            .unwrap();
        ids.push(id);
    }
    env.reset_calls();
    let all = env
        .connector
        .modified_since(lead, since, 100)
        .await
        .unwrap();
    assert_eq!(
        all.iter()
            .map(|r| r.id.clone().unwrap())
            .collect::<Vec<_>>(),
        ids
    );
    assert_eq!(env.calls(), 4, "7 records in pages of 2");
    assert!(all.windows(2).all(|w| w[0].modified_at <= w[1].modified_at));

    env.reset_calls();
    let some = env.connector.modified_since(lead, since, 3).await.unwrap();
    assert_eq!(some.len(), 3);
    assert_eq!(some[0].id, Some(ids[0].clone()));
    assert_eq!(env.calls(), 2, "no page beyond the limit is read");

    // Dataverse stores modifiedon to the millisecond but returns it to the second, so a
    // watermark taken from a record brings that record again (never skips a later one).
    let after = all[4].modified_at.unwrap();
    let rest = env
        .connector
        .modified_since(lead, after, 100)
        .await
        .unwrap();
    assert_eq!(
        rest.iter()
            .map(|r| r.id.clone().unwrap())
            .collect::<Vec<_>>(),
        ids[4..].to_vec()
    );
    assert!(
        env.connector
            .modified_since(lead, Utc::now() + TimeDelta::days(1), 100)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn refused_writes_surface_dataverse_code_and_message() {
    let env = start().await;
    let lead = env.entity(CrmEntity::Lead);
    let mut missing = env.lead_write();
    missing.fields.remove("lastname");
    let e = env
        .connector
        .upsert_by_referral(lead, &referral("ref-no-lastname"), &missing)
        .await
        .unwrap_err();
    match &e {
        CrmError::Rejected { code, message } => {
            assert_eq!(code.as_deref(), Some("0x80044331"));
            assert!(message.contains("lastname"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert!(!e.is_transient());

    let mut long = env.lead_write();
    long.fields.insert("subject".into(), json!("x".repeat(301)));
    let e = env
        .connector
        .upsert_by_referral(lead, &referral("ref-long"), &long)
        .await
        .unwrap_err();
    match &e {
        CrmError::Rejected { code, message } => {
            assert_eq!(code.as_deref(), Some("0x80044331"));
            assert!(
                message.contains("'subject'") && message.contains("300"),
                "{message}"
            );
        }
        other => panic!("{other:?}"),
    }

    // A column the table lacks is a mapping problem.
    let mut unknown = env.lead_write();
    unknown.fields.insert("new_nosuchcolumn".into(), json!("x"));
    let e = env
        .connector
        .upsert_by_referral(lead, &referral("ref-unknown"), &unknown)
        .await
        .unwrap_err();
    assert!(
        matches!(e, CrmError::Mapping(_) | CrmError::Rejected { .. }),
        "{e:?}"
    );
}
