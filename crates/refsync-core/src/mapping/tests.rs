//! Tests for mapping files: the shipped defaults, validation messages, reading and rendering.

use super::*;
use serde_json::json;

#[test]
fn builtin_mappings_parse_and_validate() {
    for (name, m) in [
        ("dynamics", Mapping::dynamics()),
        ("salesforce", Mapping::salesforce()),
    ] {
        let m = m.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(m.entities().count(), 4, "{name}");
    }
}

/// A one-field opportunity mapping around the given field lines.
fn with_field(lines: &str) -> Result<Mapping, MappingError> {
    Mapping::from_toml(&format!(
        "[opportunity]\ncollection = \"opportunities\"\nprimary_key = \"opportunityid\"\n\
         [[opportunity.fields]]\n{lines}\n"
    ))
}

fn error_of(lines: &str) -> String {
    with_field(lines).unwrap_err().to_string()
}

#[test]
fn misspelt_keys_and_kinds_are_named() {
    let e = error_of("name = \"x\"\npc = \"name\"\ncrm = \"name\"\ndrection = \"both\"");
    assert!(e.contains("drection"), "{e}");
    let e = error_of(
        "name = \"x\"\npc = \"name\"\ncrm = \"name\"\ndirection = \"both\"\nowner = \"pc\"\n\
         transform = { kind = \"strng\" }",
    );
    assert!(e.contains("strng"), "{e}");
    let e = error_of(
        "name = \"x\"\npc = \"name\"\ncrm = \"name\"\ndirection = \"both\"\nowner = \"pc\"\n\
         transform = { kind = \"money\", scale = 3 }",
    );
    assert!(e.contains("scale"), "{e}");
    let e = error_of("name = \"x\"\npc = \"name\"\ncrm = \"name\"\ndirection = \"sideways\"");
    assert!(e.contains("sideways"), "{e}");
    let e =
        Mapping::from_toml("[oportunity]\ncollection = \"x\"\nprimary_key = \"y\"").unwrap_err();
    assert!(e.to_string().contains("oportunity"), "{e}");
}

#[test]
fn validation_messages_name_the_field_and_the_problem() {
    let cases = [
        (
            "name = \"deal\"\npc = \"details.dealValue\"\ncrm = \"estimatedvalue\"\ndirection = \"both\"",
            "field \"deal\": a field that flows both ways needs an owner",
        ),
        (
            "name = \"deal\"\npc = \"details.dealValue\"\ncrm = \"estimatedvalue\"\ndirection = \"pc_to_crm\"\nowner = \"crm\"",
            "owner crm cannot win a pc_to_crm field",
        ),
        (
            "name = \"deal\"\npc = \"details.deal-value\"\ncrm = \"estimatedvalue\"\ndirection = \"pc_to_crm\"",
            "referral path \"details.deal-value\" has a character that is not allowed",
        ),
        (
            "name = \"deal\"\npc = \"details.dealValue\"\ndirection = \"pc_to_crm\"",
            "needs 1 CRM column(s) in crm, found 0",
        ),
        (
            "name = \"s\"\npc = \"status\"\ncrm = \"statecode\"\ndirection = \"both\"\nowner = \"pc\"",
            "writes status or substatus alone",
        ),
        (
            "name = \"s\"\npc = [\"status\", \"substatus\"]\ncrm = \"StageName\"\ndirection = \"both\"\nowner = \"pc\"\n\
             transform = { kind = \"table\", values = [ { pc = [\"Active\", \"Won\"], crm = \"Closed Won\" } ] }",
            "table row Active/Won: substatus Won is not allowed with status Active",
        ),
        (
            "name = \"s\"\npc = [\"status\", \"substatus\"]\ncrm = \"StageName\"\ndirection = \"both\"\nowner = \"pc\"\n\
             transform = { kind = \"table\", values = [ { pc = \"Active\", crm = \"Qualification\" } ] }",
            "should be a list of 2 values",
        ),
        (
            "name = \"link\"\npc = \"id\"\ncrm = \"link\"\ndirection = \"pc_to_crm\"\n\
             transform = { kind = \"template\", template = \"https://x/{referralId}\" }",
            "placeholder {referralId} is not one of the field's referral paths",
        ),
        (
            "name = \"link\"\npc = \"id\"\ncrm = \"link\"\ndirection = \"both\"\nowner = \"pc\"\n\
             transform = { kind = \"template\", template = \"https://x/{id}\" }",
            "a template is built from the referral, so it can only flow pc_to_crm",
        ),
        (
            "name = \"ext\"\npc = \"externalReferenceId\"\ndirection = \"pc_to_crm\"\ntransform = { kind = \"crm_record_id\" }",
            "the CRM record id can only flow crm_to_pc",
        ),
        (
            "name = \"flag\"\ncrm = \"flag\"\ndirection = \"both\"\ntransform = { kind = \"constant\", value = true }",
            "a constant is written to the CRM on creation",
        ),
        (
            "name = \"pk\"\npc = \"id\"\ncrm = \"opportunityid\"\ndirection = \"pc_to_crm\"",
            "writes the primary key opportunityid",
        ),
    ];
    for (lines, want) in cases {
        let e = error_of(lines);
        assert!(e.contains(want), "expected {want:?} in {e:?}");
        assert!(
            e.starts_with("[opportunity]") || e.starts_with("mapping file"),
            "{e}"
        );
    }
}

#[test]
fn fields_that_would_echo_through_each_other_are_refused() {
    let two = |a: &str, b: &str| {
        with_field(&format!("{a}\n[[opportunity.fields]]\n{b}"))
            .unwrap_err()
            .to_string()
    };
    let e = two(
        "name = \"a\"\npc = \"details.notes\"\ncrm = \"description\"\ndirection = \"pc_to_crm\"",
        "name = \"b\"\npc = \"name\"\ncrm = \"Description\"\ndirection = \"crm_to_pc\"",
    );
    assert!(
        e.contains("field \"a\": writes CRM column description, which field \"b\" also maps"),
        "{e}"
    );
    let e = two(
        "name = \"a\"\npc = \"details\"\ncrm = \"x\"\ndirection = \"crm_to_pc\"",
        "name = \"b\"\npc = \"details.notes\"\ncrm = \"y\"\ndirection = \"pc_to_crm\"",
    );
    assert!(
        e.contains("writes referral path details, which overlaps details.notes"),
        "{e}"
    );
    let e = two(
        "name = \"a\"\npc = \"name\"\ncrm = \"x\"\ndirection = \"pc_to_crm\"",
        "name = \"a\"\npc = \"name\"\ncrm = \"y\"\ndirection = \"pc_to_crm\"",
    );
    assert!(e.contains("the name is used twice"), "{e}");
    // Two one-way fields may read the same referral path (the id feeds the key and the link).
    with_field(
        "name = \"a\"\npc = \"id\"\ncrm = \"x\"\ndirection = \"pc_to_crm\"\n[[opportunity.fields]]\n\
         name = \"b\"\npc = \"id\"\ncrm = \"y\"\ndirection = \"pc_to_crm\"",
    )
    .unwrap();
}

#[test]
fn one_name_means_one_referral_value_across_record_types() {
    let e = Mapping::from_toml(
        "[lead]\ncollection = \"leads\"\nprimary_key = \"leadid\"\n\
         [[lead.fields]]\nname = \"customer\"\npc = \"customerProfile.name\"\ncrm = \"companyname\"\ndirection = \"pc_to_crm\"\n\
         [account]\ncollection = \"accounts\"\nprimary_key = \"accountid\"\n\
         [[account.fields]]\nname = \"customer\"\npc = \"name\"\ncrm = \"name\"\ndirection = \"pc_to_crm\"\n",
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("also used in [lead] for other referral paths"),
        "{e}"
    );
}

fn sample() -> Referral {
    serde_json::from_str(include_str!("../../tests/fixtures/referral-sample.json")).unwrap()
}

fn record(entity: CrmEntity, fields: Value) -> CrmRecord {
    let mut r = CrmRecord::new(entity);
    r.fields = fields.as_object().unwrap().clone();
    r
}

#[test]
fn equal_things_read_equal_on_both_sides() {
    let m = Mapping::dynamics().unwrap();
    let opp = m.entity(&CrmEntity::Opportunity).unwrap();
    let pc = opp.read_referral(&sample());
    let mut crm = record(
        CrmEntity::Opportunity,
        json!({
            "name": "Test Cosell Invite_20 ✔",
            "estimatedvalue": "50000.00",
            "transactioncurrencyid": "usd",
            "estimatedclosedate": "2020-12-01",
            "description": "…  ",
            "statecode": 0, "statuscode": "2",
            "msft_microsoftpartnercenterhelp": null,
            "msft_microsoftpartnercenterreferralidentifier": "c5fbb3b6-be74-4795-9fb5-4324c73fed37",
            "msft_microsoftpartnercenterreferrallink": "https://partner.microsoft.com/dashboard/referrals/v2/opportunities/c5fbb3b6-be74-4795-9fb5-4324c73fed37/details",
        }),
    );
    let read = opp.read_crm(&crm);
    assert!(pc.unreadable.is_empty() && read.unreadable.is_empty());
    assert_eq!(pc.values, read.values);
    // The record id is the record's own, not a column.
    crm.id = Some("0f1e".parse().unwrap());
    assert_eq!(opp.read_crm(&crm).values["crm_record_id"], json!("0f1e"));
    assert_eq!(pc.values["deal_value"], json!(50000));
    assert_eq!(pc.values["closing_date"], json!("2020-12-01"));
    assert_eq!(pc.values["status"], json!(["New", "Pending"]));
    assert_eq!(pc.values["help"], Value::Null);
}

#[test]
fn values_outside_a_table_are_unreadable_not_guessed() {
    let m = Mapping::salesforce().unwrap();
    let opp = m.entity(&CrmEntity::Opportunity).unwrap();
    let read = opp.read_crm(&record(
        CrmEntity::Opportunity,
        json!({"StageName": "Renegotiating"}),
    ));
    assert_eq!(
        read.unreadable["status"],
        "\"Renegotiating\" is not in the field's value table"
    );
    assert!(!read.values.contains_key("status"));
    let mut odd = sample();
    odd.status = Some(crate::status::ReferralStatus::Other("Paused".into()));
    let e = m
        .render_crm_fields(&CrmEntity::Opportunity, &odd)
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "[opportunity] field \"status\": cannot convert the referral's value: \
         [\"Paused\",\"Pending\"] is not in the field's value table"
    );
}

#[test]
fn the_sync_flag_and_the_hold_gate_crm_changes() {
    let m = Mapping::salesforce().unwrap();
    let opp = m.entity(&CrmEntity::Opportunity).unwrap();
    let flagged = |v: Value| {
        opp.sync_enabled(&record(
            CrmEntity::Opportunity,
            json!({ "Sync_with_Partner_Center__c": v }),
        ))
    };
    assert!(flagged(json!(true)));
    assert!(flagged(json!("true")));
    assert!(!flagged(json!(false)));
    assert!(!flagged(Value::Null));
    let account = m.entity(&CrmEntity::Account).unwrap();
    assert!(account.sync_enabled(&record(CrmEntity::Account, json!({}))));
    let stage = |s: &str| {
        opp.is_on_hold(
            &opp.read_crm(&record(CrmEntity::Opportunity, json!({ "StageName": s })))
                .values,
        )
    };
    assert!(stage("Prospecting"));
    assert!(!stage("Qualification"));
    assert!(!stage("Closed Won"));
}

#[test]
fn marks_are_replaced_and_never_read() {
    assert_eq!(EntityMapping::marked_name("Deal", true), "Deal ✔");
    assert_eq!(EntityMapping::marked_name("Deal ✔", false), "Deal ✖");
    assert_eq!(EntityMapping::marked_name("Deal ✖ ✔", true), "Deal ✔");
    let m = Mapping::dynamics().unwrap();
    let opp = m.entity(&CrmEntity::Opportunity).unwrap();
    let read = opp.read_crm(&record(CrmEntity::Opportunity, json!({ "name": "Deal ✖" })));
    assert_eq!(read.values["name"], json!("Deal"));
}

#[test]
fn lookups_and_constants_are_described_for_the_connectors() {
    let m = Mapping::dynamics().unwrap();
    let opp = m.entity(&CrmEntity::Opportunity).unwrap();
    let currency = opp.field("currency").unwrap();
    assert!(matches!(
        &currency.transform,
        Transform::Lookup { target, key, .. } if target == "transactioncurrencies" && key == "isocurrencycode"
    ));
    assert!(opp.field("sync_flag").unwrap().is_constant());
    assert!(opp.synced_fields().all(|f| !f.is_constant()));
    assert!(opp.field("status").unwrap().is_status());
    assert_eq!(
        opp.referral_id_field.as_deref(),
        Some("msft_microsoftpartnercenterreferralidentifier")
    );
}
