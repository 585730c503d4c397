//! Unit tests for the merge: each row of DESIGN.md's table, conflicts per owner, the
//! rules on top (transitions, the sync flag, the on-hold stage), and the patch forms.

use super::*;
use crate::ids::CrmEntity;
use crate::mapping::{Direction, Mapping};
use serde_json::json;

/// Every direction and every owner the merge distinguishes.
const MAPPING: &str = include_str!("../../tests/fixtures/every-direction.toml");

fn mapping() -> EntityMapping {
    Mapping::from_toml(MAPPING)
        .unwrap()
        .entity(&CrmEntity::Opportunity)
        .unwrap()
        .clone()
}

const EARLIER: &str = "2024-05-01T10:00:00Z";
const LATER: &str = "2024-05-01T11:00:00Z";

/// A referral and a CRM record that agree on everything, and that agreement as base.
fn agreed() -> (Value, Value, FieldValues) {
    let referral = json!({
        "id": "r-1", "name": "Fabrikam deal", "status": "Active", "substatus": "Accepted",
        "externalReferenceId": "006A",
        "updatedDateTime": EARLIER,
        "details": { "notes": "first call", "dealValue": 50000, "currency": "USD",
                     "closingDateTime": "2024-06-30T00:00:00Z" }
    });
    let crm = json!({
        "Name": "Fabrikam deal ✔", "Description": "first call", "Amount": "50000.00",
        "CloseDate": "2024-06-30", "CurrencyIsoCode": "usd", "StageName": "Qualification",
        "Link__c": "https://pc.example/referrals/r-1", "Sync__c": true
    });
    let base = [
        ("notes", json!("first call")),
        ("name", json!("Fabrikam deal")),
        ("deal_value", json!(50000)),
        ("closing_date", json!("2024-06-30")),
        ("currency", json!("USD")),
        ("crm_record_id", json!("006A")),
        ("status", json!(["Active", "Accepted"])),
        ("link", json!("https://pc.example/referrals/r-1")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    (referral, crm, base)
}

fn sides(m: &EntityMapping, referral: &Value, crm: &Value) -> (PcSide, CrmSide) {
    let referral: Referral = serde_json::from_value(referral.clone()).unwrap();
    let mut record = CrmRecord::new(CrmEntity::Opportunity);
    record.id = Some("006A".parse().unwrap());
    record.fields = crm.as_object().unwrap().clone();
    record.modified_at = Some(crate::wire::parse_datetime(EARLIER).unwrap());
    (PcSide::read(m, &referral), CrmSide::read(m, &record))
}

fn run(referral: &Value, crm: &Value, base: &FieldValues) -> MergePlan {
    let m = mapping();
    let (pc, crm) = sides(&m, referral, crm);
    merge(&m, &pc, &crm, base)
}

fn written_crm_fields(plan: &MergePlan) -> Vec<&str> {
    plan.crm_writes.iter().map(|w| w.field.as_str()).collect()
}

fn written_pc_fields(plan: &MergePlan) -> Vec<&str> {
    plan.pc_writes.iter().map(|w| w.field.as_str()).collect()
}

#[test]
fn same_and_same_writes_nothing() {
    let (referral, crm, base) = agreed();
    let plan = run(&referral, &crm, &base);
    assert!(plan.is_empty(), "{plan:#?}");
    assert!(plan.conflicts.is_empty() && plan.refusals.is_empty());
    assert_eq!(plan.new_base, base);
}

#[test]
fn a_partner_center_change_goes_to_the_crm_where_the_field_allows() {
    let (mut referral, crm, base) = agreed();
    referral["details"]["notes"] = json!("second call");
    referral["details"]["dealValue"] = json!(65000.5);
    referral["details"]["closingDateTime"] = json!("2024-07-15T18:00:00Z");
    referral["details"]["currency"] = json!("EUR"); // crm_to_pc: stays in Partner Center
    let plan = run(&referral, &crm, &base);
    assert_eq!(
        written_crm_fields(&plan),
        ["notes", "deal_value", "closing_date"]
    );
    assert!(plan.pc_writes.is_empty() && plan.conflicts.is_empty());
    assert_eq!(
        Value::Object(plan.crm_update()),
        json!({"Description": "second call", "Amount": 65000.5, "CloseDate": "2024-07-15"})
    );
    let w = &plan.crm_writes[0];
    assert_eq!(
        (&w.from, &w.to),
        (&json!("first call"), &json!("second call"))
    );
    assert_eq!(plan.new_base["closing_date"], json!("2024-07-15"));
    // The one-way divergence is left as it is, base included, so it is not retried.
    assert_eq!(plan.new_base["currency"], json!("USD"));
}

#[test]
fn a_crm_change_goes_to_partner_center_where_the_field_allows() {
    let (referral, mut crm, base) = agreed();
    crm["Name"] = json!("Fabrikam expansion ✔");
    crm["CurrencyIsoCode"] = json!("eur");
    crm["CloseDate"] = json!("2024-09-01"); // pc_to_crm: stays in the CRM
    let plan = run(&referral, &crm, &base);
    assert_eq!(written_pc_fields(&plan), ["name", "currency"]);
    assert!(plan.crm_writes.is_empty());
    assert_eq!(
        serde_json::to_value(plan.pc_patch()).unwrap(),
        json!([
            {"op": "replace", "path": "/name", "value": "Fabrikam expansion"},
            {"op": "replace", "path": "/details/currency", "value": "EUR"},
        ])
    );
    assert_eq!(plan.new_base["name"], json!("Fabrikam expansion"));
    assert_eq!(plan.new_base["closing_date"], json!("2024-06-30"));
}

#[test]
fn crm_changes_stay_in_the_crm_without_the_sync_flag() {
    let (referral, mut crm, base) = agreed();
    crm["Name"] = json!("Renamed");
    crm["Sync__c"] = json!(false);
    let plan = run(&referral, &crm, &base);
    assert!(plan.is_empty(), "{plan:#?}");
    // A Partner Center change still flows down.
    let mut referral = referral;
    referral["details"]["notes"] = json!("from MS");
    let plan = run(&referral, &crm, &base);
    assert_eq!(written_crm_fields(&plan), ["notes"]);
    assert!(plan.pc_writes.is_empty());
}

#[test]
fn both_changed_alike_moves_only_the_base() {
    let (mut referral, mut crm, base) = agreed();
    referral["details"]["notes"] = json!("agreed text");
    crm["Description"] = json!("agreed text  ");
    let plan = run(&referral, &crm, &base);
    assert!(plan.crm_writes.is_empty() && plan.pc_writes.is_empty());
    assert_eq!(
        plan.agreed,
        [Agreement {
            field: "notes".into(),
            value: json!("agreed text")
        }]
    );
    assert!(!plan.is_empty(), "a base change is still something to save");
    assert_eq!(plan.new_base["notes"], json!("agreed text"));
}

#[test]
fn conflicts_go_to_the_owner() {
    let (mut referral, mut crm, base) = agreed();
    referral["details"]["notes"] = json!("pc notes");
    crm["Description"] = json!("crm notes");
    referral["name"] = json!("pc name");
    crm["Name"] = json!("crm name");
    let plan = run(&referral, &crm, &base);
    assert_eq!(written_crm_fields(&plan), ["notes"]);
    assert_eq!(written_pc_fields(&plan), ["name"]);
    let rules: Vec<(&str, Side, &WinRule)> = plan
        .conflicts
        .iter()
        .map(|c| (c.field.as_str(), c.winner, &c.rule))
        .collect();
    assert_eq!(
        rules,
        [
            ("notes", Side::Pc, &WinRule::Owner { owner: Owner::Pc }),
            ("name", Side::Crm, &WinRule::Owner { owner: Owner::Crm }),
        ]
    );
    let c = &plan.conflicts[0];
    assert_eq!(
        (&c.base, &c.pc, &c.crm),
        (
            &Some(json!("first call")),
            &json!("pc notes"),
            &json!("crm notes")
        )
    );
    assert_eq!(plan.new_base["notes"], json!("pc notes"));
    assert_eq!(plan.new_base["name"], json!("crm name"));
}

#[test]
fn newest_change_wins_with_ties_to_partner_center() {
    let m = mapping();
    let (mut referral, mut crm, base) = agreed();
    referral["details"]["dealValue"] = json!(1);
    crm["Amount"] = json!(2);
    let (mut pc_side, mut crm_side) = sides(&m, &referral, &crm);
    let at = |s: &str| crate::wire::parse_datetime(s);
    for (pc_t, crm_t, winner) in [
        (at(EARLIER), at(LATER), Side::Crm),
        (at(LATER), at(EARLIER), Side::Pc),
        (at(LATER), at(LATER), Side::Pc),
        (None, at(EARLIER), Side::Crm),
        (at(EARLIER), None, Side::Pc),
        (None, None, Side::Pc),
    ] {
        pc_side.modified_at = pc_t;
        crm_side.modified_at = crm_t;
        let plan = merge(&m, &pc_side, &crm_side, &base);
        assert_eq!(plan.conflicts.len(), 1);
        let c = &plan.conflicts[0];
        assert_eq!(c.winner, winner, "{pc_t:?} vs {crm_t:?}");
        assert!(matches!(c.rule, WinRule::Newest { .. }));
        let expected = if winner == Side::Pc {
            json!(1)
        } else {
            json!(2)
        };
        assert_eq!(plan.new_base["deal_value"], expected);
        assert_eq!(plan.crm_writes.len() + plan.pc_writes.len(), 1);
    }
}

#[test]
fn one_way_conflicts_go_to_the_source() {
    let (mut referral, mut crm, base) = agreed();
    referral["details"]["closingDateTime"] = json!("2024-08-01T00:00:00Z");
    crm["CloseDate"] = json!("2024-09-01");
    referral["details"]["currency"] = json!("GBP");
    crm["CurrencyIsoCode"] = json!("EUR");
    let plan = run(&referral, &crm, &base);
    let rules: Vec<(&str, Side, &WinRule)> = plan
        .conflicts
        .iter()
        .map(|c| (c.field.as_str(), c.winner, &c.rule))
        .collect();
    assert_eq!(
        rules,
        [
            (
                "currency",
                Side::Crm,
                &WinRule::OneWay {
                    direction: Direction::CrmToPc
                }
            ),
            (
                "closing_date",
                Side::Pc,
                &WinRule::OneWay {
                    direction: Direction::PcToCrm
                }
            ),
        ]
    );
    assert_eq!(written_crm_fields(&plan), ["closing_date"]);
    assert_eq!(written_pc_fields(&plan), ["currency"]);
}

#[test]
fn without_the_sync_flag_partner_center_wins_conflicts() {
    let (mut referral, mut crm, base) = agreed();
    crm["Sync__c"] = json!(false);
    referral["name"] = json!("pc name");
    crm["Name"] = json!("crm name");
    let plan = run(&referral, &crm, &base);
    assert_eq!(plan.conflicts[0].winner, Side::Pc);
    assert_eq!(plan.conflicts[0].rule, WinRule::CrmToPcOff);
    assert_eq!(written_crm_fields(&plan), ["name"]);
    assert!(plan.pc_writes.is_empty());
}

#[test]
fn a_never_synced_pair_fills_blanks_and_resolves_differences_by_owner() {
    let (referral, crm, _) = agreed();
    let mut crm = crm;
    crm["Description"] = Value::Null; // empty CRM side: filled from Partner Center
    crm["Name"] = json!("CRM's own name"); // both set, differing: owner (crm) decides
    crm["Amount"] = json!(50000); // both set, equal: agreed
    let plan = run(&referral, &crm, &FieldValues::new());
    assert_eq!(written_crm_fields(&plan), ["notes"]);
    assert_eq!(written_pc_fields(&plan), ["name"]);
    assert_eq!(plan.conflicts.len(), 1);
    assert_eq!(plan.conflicts[0].base, None);
    assert!(plan.agreed.iter().any(|a| a.field == "deal_value"));
    // Every field either side holds now has a base value.
    let held = [
        "notes",
        "name",
        "deal_value",
        "closing_date",
        "currency",
        "crm_record_id",
        "status",
        "link",
    ];
    for f in held {
        assert!(plan.new_base.contains_key(f), "{f}");
    }
}

#[test]
fn illegal_status_changes_are_refused_and_reported() {
    let (referral, mut crm, base) = agreed();
    crm["StageName"] = json!("Prospecting"); // Active -> New is not allowed
    let plan = run(&referral, &crm, &base);
    assert!(plan.pc_writes.is_empty());
    assert!(plan.is_empty());
    assert_eq!(plan.new_base, base);
    let [refusal] = plan.refusals.as_slice() else {
        panic!("{plan:#?}")
    };
    assert_eq!(refusal.field, "status");
    let RefusalReason::IllegalTransition { from, to, problem } = &refusal.reason else {
        panic!("{refusal:?}")
    };
    assert_eq!(
        from.as_ref().map(ToString::to_string).as_deref(),
        Some("Active/Accepted")
    );
    assert_eq!(to.to_string(), "New/Pending");
    assert!(
        problem.contains("allowed from Active: Active, Closed"),
        "{problem}"
    );

    // A closed referral cannot be reopened either, and a cleared stage is refused.
    let (mut referral, mut crm, mut base) = agreed();
    referral["status"] = json!("Closed");
    referral["substatus"] = json!("Won");
    base.insert("status".into(), json!(["Closed", "Won"]));
    crm["StageName"] = json!("Qualification");
    let plan = run(&referral, &crm, &base);
    assert!(matches!(
        plan.refusals[0].reason,
        RefusalReason::IllegalTransition { .. }
    ));
    crm["StageName"] = Value::Null;
    let plan = run(&referral, &crm, &base);
    assert_eq!(plan.refusals[0].reason, RefusalReason::StatusCleared);
}

#[test]
fn legal_status_changes_are_written_as_a_pair() {
    let (referral, mut crm, base) = agreed();
    crm["StageName"] = json!("Closed Won");
    let plan = run(&referral, &crm, &base);
    assert_eq!(
        serde_json::to_value(plan.pc_patch()).unwrap(),
        json!([
            {"op": "replace", "path": "/status", "value": "Closed"},
            {"op": "replace", "path": "/substatus", "value": "Won"},
        ])
    );
    // Another spelling of the same row is no change at all.
    let (mut referral, mut crm, base) = agreed();
    referral["status"] = json!("Closed");
    referral["substatus"] = json!("Declined");
    crm["StageName"] = json!("Closed Lost");
    let mut base = base;
    base.insert("status".into(), json!(["Closed", "Lost"]));
    assert!(run(&referral, &crm, &base).is_empty());
}

#[test]
fn changes_made_on_hold_stay_in_the_crm_until_it_leaves_the_hold() {
    let (mut referral, mut crm, mut base) = agreed();
    referral["status"] = json!("New");
    referral["substatus"] = json!("Received");
    base.insert("status".into(), json!(["New", "Pending"]));
    crm["StageName"] = json!("Prospecting");
    crm["Name"] = json!("Edited on hold");
    let plan = run(&referral, &crm, &base);
    assert!(plan.is_empty(), "{plan:#?}");

    // Moving to the active stage accepts the referral, and the held change follows.
    crm["StageName"] = json!("Qualification");
    let plan = run(&referral, &crm, &base);
    assert_eq!(written_pc_fields(&plan), ["status", "name"]);

    // Partner Center accepting moves the record out of the hold in the same plan.
    crm["StageName"] = json!("Prospecting");
    referral["status"] = json!("Active");
    referral["substatus"] = json!("Accepted");
    let plan = run(&referral, &crm, &base);
    assert_eq!(written_crm_fields(&plan), ["status"]);
    assert_eq!(plan.crm_update()["StageName"], json!("Qualification"));
    assert_eq!(written_pc_fields(&plan), ["name"]);
}

#[test]
fn unreadable_values_are_refused_and_the_rest_merges() {
    let (mut referral, mut crm, base) = agreed();
    crm["StageName"] = json!("Renegotiating");
    crm["Amount"] = json!("a lot");
    referral["details"]["notes"] = json!("still merged");
    let plan = run(&referral, &crm, &base);
    let refused: Vec<(&str, &RefusalReason)> = plan
        .refusals
        .iter()
        .map(|r| (r.field.as_str(), &r.reason))
        .collect();
    assert_eq!(refused.len(), 2, "{refused:?}");
    // The field that can hold the record is decided first.
    assert_eq!(refused[0].0, "status");
    assert!(matches!(
        refused[1],
        (
            "deal_value",
            RefusalReason::Unreadable {
                side: Side::Crm,
                ..
            }
        )
    ));
    assert_eq!(
        refused[0].1.to_string(),
        "the CRM value cannot be read: \"Renegotiating\" is not in the field's value table"
    );
    assert_eq!(written_crm_fields(&plan), ["notes"]);
    assert_eq!(plan.new_base["status"], base["status"]);
}

#[test]
fn patches_add_missing_members_and_their_parents() {
    let (pc, crm) = sides(
        &mapping(),
        &json!({"id": "r-1", "status": "Active", "substatus": "Accepted"}),
        &json!({"Amount": "1234.50", "CurrencyIsoCode": "eur", "PostalCode__c": "98052",
                "Email__c": "Sue@Fabrikam.com", "Sync__c": true}),
    );
    let plan = merge(&mapping(), &pc, &crm, &FieldValues::new());
    assert_eq!(
        serde_json::to_value(plan.pc_patch()).unwrap(),
        json!([
            {"op": "add", "path": "/details", "value": {"dealValue": 1234.5}},
            {"op": "add", "path": "/details/currency", "value": "EUR"},
            {"op": "add", "path": "/customerProfile", "value": {"address": {"postalCode": "98052"}}},
            {"op": "add", "path": "/customerProfile/team", "value": [{"email": "sue@fabrikam.com"}]},
            {"op": "add", "path": "/externalReferenceId", "value": "006A"},
        ])
    );
}

#[test]
fn the_base_of_other_record_types_is_carried_over() {
    let (referral, crm, mut base) = agreed();
    base.insert("customer_name".into(), json!("Fabrikam"));
    let mut referral = referral;
    referral["details"]["notes"] = json!("changed");
    let plan = run(&referral, &crm, &base);
    assert_eq!(plan.new_base["customer_name"], json!("Fabrikam"));
    assert_eq!(plan.new_base["notes"], json!("changed"));
}

#[test]
fn stored_values_are_compared_in_todays_canonical_form() {
    let (referral, crm, mut base) = agreed();
    base.insert("deal_value".into(), json!("50000.000"));
    base.insert("status".into(), json!(["active", "accepted"]));
    let plan = run(&referral, &crm, &base);
    assert!(plan.is_empty(), "{plan:#?}");
}

#[test]
fn plans_explain_themselves() {
    let (mut referral, mut crm, base) = agreed();
    referral["details"]["dealValue"] = json!(1);
    crm["Amount"] = json!(2);
    let plan = run(&referral, &crm, &base);
    assert_eq!(
        plan.conflicts[0].rule.to_string(),
        "newest change wins (Partner Center 2024-05-01T10:00:00+00:00, CRM 2024-05-01T10:00:00+00:00)"
    );
    let audit = serde_json::to_value(&plan).unwrap();
    assert_eq!(audit["conflicts"][0]["rule"]["rule"], "newest");
    assert_eq!(audit["conflicts"][0]["winner"], "pc");
    assert_eq!(audit["crm_writes"][0]["columns"], json!({"Amount": 1}));
}

#[test]
fn a_crm_record_that_agrees_with_the_base_has_not_changed() {
    let (referral, crm, base) = agreed();
    let m = mapping();
    let (_, side) = sides(&m, &referral, &crm);
    // Amount "50000.00" vs base 50000, lowercase currency, the ✔ suffix: all equal.
    assert!(!crm_changed_since_base(&m, &side, &base));

    let mut edited = crm.clone();
    edited["Description"] = json!("seller's note");
    let (_, side) = sides(&m, &referral, &edited);
    assert!(crm_changed_since_base(&m, &side, &base));

    // A column the mapping does not sync is not a change.
    let mut unmapped = crm;
    unmapped["Rating"] = json!("Hot");
    let (_, side) = sides(&m, &referral, &unmapped);
    assert!(!crm_changed_since_base(&m, &side, &base));
}
