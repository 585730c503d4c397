//! Every record method of the Salesforce connector against the emulator: reads, the
//! upsert by external ID, updates, creates, retiring a lead, matching by columns,
//! polling by SystemModstamp, and Salesforce's refusals.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod salesforce_support;

use refsync_core::ids::CrmEntity;
use refsync_core::mapping::Mapping;
use refsync_crm::connector::{CrmConnector, CrmError, RecordWrite};
use refsync_emulators::salesforce::LeadConversion;
use refsync_emulators::salesforce::config::{
    CustomFieldConfig, CustomFieldKind, UpsertUpdateStatus,
};
use salesforce_support::{account, config, id, object, referral, start, start_with};
use serde_json::json;

const REF: &str = "c5fbb3b6-be74-4795-9fb5-4324c73fed37";

#[tokio::test]
async fn get_reads_the_mapped_fields_and_none_when_missing_or_deleted() {
    let org = start().await;
    let lead = org.entity(CrmEntity::Lead);
    let created = org.create_as_seller(
        "Lead",
        json!({"LastName": "Smith", "Company": "Fabrikam", "Status": "Open - Not Contacted",
               "Referral_Identifier__c": "r-1", "Description": "from a seller"}),
    );
    let record = org
        .connector
        .get(lead, &id(&created))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.id.as_ref().unwrap().as_str(), created);
    assert_eq!(record.entity, CrmEntity::Lead);
    assert_eq!(record.field("Company"), &json!("Fabrikam"));
    assert_eq!(record.field("Description"), &json!("from a seller"));
    assert_eq!(record.field("Referral_Identifier__c"), &json!("r-1"));
    assert_eq!(record.etag, None, "Salesforce has no ETag for leads");
    let shown = &org.records("Lead")[0];
    assert_eq!(
        record.modified_at.unwrap(),
        chrono::DateTime::parse_from_str(
            shown["SystemModstamp"].as_str().unwrap(),
            "%Y-%m-%dT%H:%M:%S%.3f%z"
        )
        .unwrap()
    );
    // Only the mapped fields are asked for: a field outside the mapping is absent.
    assert!(!record.fields.contains_key("Industry"));

    let absent = "00Q5g00000ZZZZZZZZ";
    assert_eq!(org.connector.get(lead, &id(absent)).await.unwrap(), None);
    org.emulator.delete_as(None, "Lead", &created).unwrap();
    assert_eq!(org.connector.get(lead, &id(&created)).await.unwrap(), None);
    assert_eq!(org.calls(), 3, "one call per read");
}

#[tokio::test]
async fn upsert_creates_then_updates_the_same_record() {
    let org = start().await;
    let opp = org.entity(CrmEntity::Opportunity);
    let write = org.opportunity_write();
    let first = org
        .connector
        .upsert_by_referral(opp, &referral(REF), &write)
        .await
        .unwrap();
    assert!(first.created);
    let rec = &first.record;
    assert_eq!(
        rec.field("Referral_Identifier__c"),
        &json!(REF),
        "the key came from the URL"
    );
    assert_eq!(rec.field("StageName"), &json!("Prospecting"));
    assert_eq!(rec.field("CloseDate"), &json!("2020-12-01"));
    assert_eq!(rec.field("Amount").as_f64(), Some(50000.0));
    assert_eq!(rec.field("CurrencyIsoCode"), &json!("USD"));
    assert_eq!(rec.field("Sync_with_Partner_Center__c"), &json!(true));
    assert!(rec.modified_at.is_some());
    assert_eq!(org.calls(), 1, "write and read-back in one composite call");

    org.advance(60);
    let mut change = write.clone();
    change.fields.insert("Amount".into(), json!(75000.25));
    change
        .fields
        .insert("StageName".into(), json!("Closed Won"));
    let second = org
        .connector
        .upsert_by_referral(opp, &referral(REF), &change)
        .await
        .unwrap();
    assert!(!second.created);
    assert_eq!(second.record.id, first.record.id);
    assert_eq!(second.record.field("Amount").as_f64(), Some(75000.25));
    assert_eq!(second.record.field("StageName"), &json!("Closed Won"));
    assert!(second.record.modified_at > first.record.modified_at);
    assert_eq!(org.records("Opportunity").len(), 1, "one record, not two");
    assert_eq!(org.calls(), 2);

    let found = org
        .connector
        .get_by_referral(opp, &referral(REF))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.id, first.record.id);
    assert_eq!(found.field("StageName"), &json!("Closed Won"));
    assert_eq!(
        org.connector
            .get_by_referral(opp, &referral("no-such-referral"))
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn an_update_answered_with_204_is_read_back_too() {
    let mut cfg = config();
    cfg.upsert_update_status = UpsertUpdateStatus::NoContent204;
    let org = start_with(cfg, |_| {}).await;
    let opp = org.entity(CrmEntity::Opportunity);
    let write = org.opportunity_write();
    let first = org
        .connector
        .upsert_by_referral(opp, &referral(REF), &write)
        .await
        .unwrap();
    let again = org
        .connector
        .upsert_by_referral(opp, &referral(REF), &write)
        .await
        .unwrap();
    assert!(first.created && !again.created);
    assert_eq!(again.record.id, first.record.id);
    assert_eq!(again.record.field("Name"), &json!("Test Cosell Invite_20"));
}

#[tokio::test]
async fn update_applies_a_stage_change_and_returns_the_stored_record() {
    let org = start().await;
    let opp = org.entity(CrmEntity::Opportunity);
    let made = org
        .connector
        .upsert_by_referral(opp, &referral(REF), &org.opportunity_write())
        .await
        .unwrap();
    let opp_id = made.record.id.clone().unwrap();
    org.advance(5);
    let mut fields = serde_json::Map::new();
    fields.insert("StageName".into(), json!("Closed Won"));
    fields.insert("Description".into(), json!("won it"));
    let after = org
        .connector
        .update(opp, &opp_id, &RecordWrite::fields(fields))
        .await
        .unwrap();
    assert_eq!(after.field("StageName"), &json!("Closed Won"));
    assert_eq!(after.field("Description"), &json!("won it"));
    assert!(after.modified_at > made.record.modified_at);
    let stored = &org.records("Opportunity")[0];
    assert_eq!(
        stored["IsWon"],
        json!(true),
        "a stage is just a field in Salesforce"
    );
    assert_eq!(org.calls(), 2);

    // Nothing to write: a plain read.
    let same = org
        .connector
        .update(opp, &opp_id, &RecordWrite::default())
        .await
        .unwrap();
    assert_eq!(same.id, after.id);
    org.emulator
        .delete_as(None, "Opportunity", opp_id.as_str())
        .unwrap();
    let gone = org
        .connector
        .update(
            opp,
            &opp_id,
            &RecordWrite::fields(object(json!({"Description": "x"}))),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&gone, CrmError::Rejected { code: Some(c), .. } if c == "ENTITY_IS_DELETED"),
        "{gone:?}"
    );
}

#[tokio::test]
async fn create_makes_an_account_and_links_a_contact_to_it() {
    let org = start().await;
    let acc = org
        .connector
        .create(
            org.entity(CrmEntity::Account),
            &RecordWrite::fields(org.rendered(CrmEntity::Account)),
        )
        .await
        .unwrap();
    assert_eq!(acc.field("Name"), &json!("Fabrikam Customer Inc"));
    assert_eq!(acc.field("BillingPostalCode"), &json!("98052"));
    let contact = org
        .connector
        .create(
            org.entity(CrmEntity::Contact),
            &RecordWrite {
                fields: org.rendered(CrmEntity::Contact),
                account: acc.id.clone(),
                contact: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        contact.field("AccountId"),
        &json!(acc.id.as_ref().unwrap().as_str())
    );
    assert_eq!(contact.field("Email"), &json!("sue.smith@fabrikam.com"));
    assert_eq!(org.calls(), 2, "create and read-back in one call each");
}

#[tokio::test]
async fn retire_lead_sets_the_closed_status_and_accepts_leads_already_gone() {
    let org = start_with(config(), |s| {
        s.lead_closed_status = "Closed - Not Converted".into()
    })
    .await;
    let lead_map = org.entity(CrmEntity::Lead);
    let lead = org
        .connector
        .upsert_by_referral(
            lead_map,
            &referral(REF),
            &RecordWrite::fields(org.rendered(CrmEntity::Lead)),
        )
        .await
        .unwrap();
    let lead_id = lead.record.id.unwrap();
    let opp = org
        .connector
        .upsert_by_referral(
            org.entity(CrmEntity::Opportunity),
            &referral(REF),
            &org.opportunity_write(),
        )
        .await
        .unwrap();
    let opp_id = opp.record.id.unwrap();
    org.connector
        .retire_lead(lead_map, &lead_id, &opp_id)
        .await
        .unwrap();
    let stored = org
        .connector
        .get(lead_map, &lead_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.field("Status"), &json!("Closed - Not Converted"));

    // A seller converted another lead in the UI: it is retired already.
    let other = org.create_as_seller(
        "Lead",
        json!({"LastName": "Doe", "Company": "Contoso", "Status": "Working - Contacted"}),
    );
    org.emulator
        .convert_lead_as(None, &other, &LeadConversion::default())
        .unwrap();
    org.connector
        .retire_lead(lead_map, &id(&other), &opp_id)
        .await
        .unwrap();
    // Deleted: nothing left to retire.
    org.emulator.delete_as(None, "Lead", &other).unwrap();
    org.connector
        .retire_lead(lead_map, &id(&other), &opp_id)
        .await
        .unwrap();

    // A status the org does not have is refused, with Salesforce's code.
    let bad = start_with(config(), |s| s.lead_closed_status = "Archived".into()).await;
    let l = bad
        .connector
        .upsert_by_referral(
            lead_map,
            &referral(REF),
            &RecordWrite::fields(bad.rendered(CrmEntity::Lead)),
        )
        .await
        .unwrap();
    let e = bad
        .connector
        .retire_lead(lead_map, l.record.id.as_ref().unwrap(), &opp_id)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, CrmError::Rejected { code: Some(c), .. } if c == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"),
        "{e:?}"
    );
}

#[tokio::test]
async fn find_by_columns_matches_names_with_quotes_and_backslashes() {
    let org = start().await;
    let tricky = r#"O'Brien \ Sons "Ltd""#;
    let wanted = org.create_as_seller("Account", account(tricky, "98052"));
    org.create_as_seller("Account", account(tricky, "10001"));
    org.create_as_seller("Account", account("O", "98052"));
    let name = json!(tricky);
    let zip = json!("98052");
    let found = org
        .connector
        .find_by_columns(
            org.entity(CrmEntity::Account),
            &[("Name", &name), ("BillingPostalCode", &zip)],
            10,
        )
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].id.as_ref().unwrap().as_str(), wanted);
    assert_eq!(found[0].field("Name"), &name);

    let any_zip = org
        .connector
        .find_by_columns(org.entity(CrmEntity::Account), &[("Name", &name)], 1)
        .await
        .unwrap();
    assert_eq!(any_zip.len(), 1, "the limit holds");
    assert_eq!(
        any_zip[0].id.as_ref().unwrap().as_str(),
        wanted,
        "oldest first"
    );
    let none = org
        .connector
        .find_by_columns(
            org.entity(CrmEntity::Account),
            &[("Name", &json!("Nobody"))],
            5,
        )
        .await
        .unwrap();
    assert!(none.is_empty());
    let e = org
        .connector
        .find_by_columns(org.entity(CrmEntity::Account), &[], 5)
        .await
        .unwrap_err();
    assert!(matches!(e, CrmError::Mapping(_)));
}

#[tokio::test]
async fn modified_since_pages_through_small_batches_oldest_first() {
    let mut cfg = config();
    cfg.query.default_batch_size = 3;
    cfg.query.min_batch_size = 1;
    let org = start_with(cfg, |_| {}).await;
    let lead_map = org.entity(CrmEntity::Lead);
    let before = org.emulator.clock().now();
    let mut ids = Vec::new();
    for n in 0..8 {
        org.advance(10);
        ids.push(org.create_as_seller(
            "Lead",
            json!({"LastName": format!("L{n}"), "Company": "C", "Status": "Open - Not Contacted"}),
        ));
    }
    // Touch the first lead last: it moves to the end.
    org.advance(10);
    org.emulator
        .update_as(None, "Lead", &ids[0], &json!({"Description": "edited"}))
        .unwrap();
    let all = org
        .connector
        .modified_since(lead_map, before, 100)
        .await
        .unwrap();
    let seen: Vec<&str> = all
        .iter()
        .map(|r| r.id.as_ref().unwrap().as_str())
        .collect();
    let mut expected: Vec<&str> = ids[1..].iter().map(String::as_str).collect();
    expected.push(&ids[0]);
    assert_eq!(seen, expected);
    assert!(all.windows(2).all(|w| w[0].modified_at < w[1].modified_at));
    assert_eq!(org.calls(), 3, "8 records in pages of 3");

    let first_five = org
        .connector
        .modified_since(lead_map, before, 5)
        .await
        .unwrap();
    assert_eq!(first_five.len(), 5);
    let watermark = first_five[4].modified_at.unwrap();
    let rest = org
        .connector
        .modified_since(lead_map, watermark, 100)
        .await
        .unwrap();
    assert_eq!(rest.len(), 3, "strictly after the watermark");
    assert_eq!(rest[0].id, all[5].id);
}

#[tokio::test]
async fn a_rejected_write_surfaces_the_salesforce_error_code() {
    let org = start().await;
    let opp = org.entity(CrmEntity::Opportunity);
    let mut write = org.opportunity_write();
    write.fields.remove("StageName");
    let e = org
        .connector
        .upsert_by_referral(opp, &referral(REF), &write)
        .await
        .unwrap_err();
    match &e {
        CrmError::Rejected { code, message } => {
            assert_eq!(code.as_deref(), Some("REQUIRED_FIELD_MISSING"));
            assert!(message.contains("StageName"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert!(!e.is_transient());
    let mut long = org.opportunity_write();
    long.fields.insert("Name".into(), json!("x".repeat(121)));
    let e = org
        .connector
        .upsert_by_referral(opp, &referral(REF), &long)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, CrmError::Rejected { code: Some(c), .. } if c == "STRING_TOO_LONG"),
        "{e:?}"
    );
    assert!(org.records("Opportunity").is_empty());
}

#[tokio::test]
async fn several_records_with_one_external_id_are_refused_clearly() {
    let mut cfg = config();
    cfg.custom_fields.push(CustomFieldConfig {
        object: "Lead".into(),
        api_name: "Legacy_Referral__c".into(),
        label: "Legacy referral".into(),
        kind: CustomFieldKind::Text,
        length: Some(100),
        precision: None,
        scale: None,
        values: Vec::new(),
        restricted: false,
        external_id: true,
        unique: false,
        case_sensitive: false,
        required: false,
        default_checked: false,
    });
    let org = start_with(cfg, |_| {}).await;
    let mapping = Mapping::from_toml(
        r#"
        [lead]
        collection = "Lead"
        primary_key = "Id"
        referral_id_field = "Legacy_Referral__c"
        [[lead.fields]]
        name = "company"
        pc = "customerProfile.name"
        crm = "Company"
        direction = "pc_to_crm"
        "#,
    )
    .unwrap();
    let lead = mapping.entity(&CrmEntity::Lead).unwrap();
    for name in ["A", "B"] {
        org.create_as_seller(
            "Lead",
            json!({"LastName": name, "Company": "C", "Status": "Open - Not Contacted", "Legacy_Referral__c": "dup-1"}),
        );
    }
    let e = org
        .connector
        .upsert_by_referral(
            lead,
            &referral("dup-1"),
            &RecordWrite::fields(object(json!({"Company": "D"}))),
        )
        .await
        .unwrap_err();
    let text = e.to_string();
    assert!(text.contains("2 records match"), "{text}");
    assert!(matches!(e, CrmError::Rejected { .. }));
    let e = org
        .connector
        .get_by_referral(lead, &referral("dup-1"))
        .await
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("2 Lead records have Legacy_Referral__c = dup-1"),
        "{e}"
    );
    assert!(
        org.records("Lead")
            .iter()
            .all(|r| r["Company"] == json!("C")),
        "nothing changed"
    );
}

#[tokio::test]
async fn text_that_looks_like_a_composite_reference_is_written_verbatim() {
    let org = start().await;
    let opp = org.entity(CrmEntity::Opportunity);
    let mut write = org.opportunity_write();
    write
        .fields
        .insert("Description".into(), json!("see @{q.records[0].Id}"));
    let done = org
        .connector
        .upsert_by_referral(opp, &referral(REF), &write)
        .await
        .unwrap();
    assert_eq!(
        done.record.field("Description"),
        &json!("see @{q.records[0].Id}")
    );
    assert_eq!(org.calls(), 2, "written on its own, then read");
}

#[tokio::test]
async fn a_mapping_naming_a_missing_field_is_a_mapping_problem() {
    let org = start().await;
    let mapping = Mapping::from_toml(
        r#"
        [lead]
        collection = "Lead"
        primary_key = "Id"
        referral_id_field = "Referral_Identifier__c"
        [[lead.fields]]
        name = "company"
        pc = "customerProfile.name"
        crm = "Company_Name__c"
        direction = "pc_to_crm"
        "#,
    )
    .unwrap();
    let lead = mapping.entity(&CrmEntity::Lead).unwrap();
    let e = org
        .connector
        .get_by_referral(lead, &referral(REF))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, CrmError::Mapping(m) if m.contains("Company_Name__c")),
        "{e:?}"
    );
    let some = org.create_as_seller(
        "Lead",
        json!({"LastName": "X", "Company": "C", "Status": "Open - Not Contacted"}),
    );
    let e = org.connector.get(lead, &id(&some)).await.unwrap_err();
    assert!(matches!(e, CrmError::Mapping(_)));
}
