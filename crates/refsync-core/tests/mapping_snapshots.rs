//! What the documented sample referral (partner-center.md §1.5) becomes in each CRM
//! under the shipped default mappings, and what a merge plan looks like in an audit
//! entry. Review changes to these snapshots as changes to user-visible behaviour.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use refsync_core::merge::{CrmSide, PcSide, merge};
use refsync_core::{CrmEntity, CrmRecord, FieldValues, Mapping, Referral};
use serde_json::{Map, Value, json};

fn sample() -> Referral {
    serde_json::from_str(include_str!("fixtures/referral-sample.json")).unwrap()
}

fn render(mapping: &Mapping, entities: &[CrmEntity]) -> Value {
    let referral = sample();
    let rendered: Map<String, Value> = entities
        .iter()
        .map(|e| {
            let fields = mapping.render_crm_fields(e, &referral).unwrap();
            (e.to_string(), Value::Object(fields))
        })
        .collect();
    Value::Object(rendered)
}

#[test]
fn sample_as_a_dynamics_lead() {
    let m = Mapping::dynamics().unwrap();
    insta::assert_json_snapshot!(render(&m, &[CrmEntity::Lead]));
}

#[test]
fn sample_as_a_dynamics_opportunity_with_account_and_contact() {
    let m = Mapping::dynamics().unwrap();
    insta::assert_json_snapshot!(render(
        &m,
        &[
            CrmEntity::Opportunity,
            CrmEntity::Account,
            CrmEntity::Contact
        ]
    ));
}

#[test]
fn sample_as_a_salesforce_lead() {
    let m = Mapping::salesforce().unwrap();
    insta::assert_json_snapshot!(render(&m, &[CrmEntity::Lead]));
}

#[test]
fn sample_as_a_salesforce_opportunity_with_account_and_contact() {
    let m = Mapping::salesforce().unwrap();
    insta::assert_json_snapshot!(render(
        &m,
        &[
            CrmEntity::Opportunity,
            CrmEntity::Account,
            CrmEntity::Contact
        ]
    ));
}

/// The sample after Microsoft raised the deal value, against the Dynamics opportunity
/// created from it, on which the seller has since won the deal and edited the notes
/// and the name (which carries the connector's ✔).
#[test]
fn a_merge_plan_as_the_audit_sees_it() {
    let m = Mapping::dynamics().unwrap();
    let opp = m.entity(&CrmEntity::Opportunity).unwrap();
    let mut referral = sample();
    let mut record = CrmRecord::new(CrmEntity::Opportunity);
    record.id = Some("7a1c0d4e-0000-0000-0000-000000000001".parse().unwrap());
    record.fields = opp.render_crm_fields(&referral).unwrap();
    // First pass: the never-synced pair agrees on everything but the record id.
    let first = merge(
        opp,
        &PcSide::read(opp, &referral),
        &CrmSide::read(opp, &record),
        &FieldValues::new(),
    );
    assert!(first.conflicts.is_empty() && first.refusals.is_empty());
    let base = first.new_base.clone();

    referral.status = Some(refsync_core::ReferralStatus::Active);
    referral.substatus = Some(refsync_core::ReferralSubstatus::Accepted);
    referral.external_reference_id = Some("7a1c0d4e-0000-0000-0000-000000000001".into());
    referral.details.as_mut().unwrap().deal_value = Some(75000.into());
    referral.updated_date_time = refsync_core::wire::parse_datetime("2024-05-02T09:00:00Z");
    record.apply_update(
        json!({
            "name": "Fabrikam rollout ✔",
            "description": "Customer wants a pilot first.",
            "statecode": 1, "statuscode": 3,
        })
        .as_object()
        .unwrap(),
    );
    record.modified_at = refsync_core::wire::parse_datetime("2024-05-02T10:00:00Z");
    let plan = merge(
        opp,
        &PcSide::read(opp, &referral),
        &CrmSide::read(opp, &record),
        &base,
    );
    insta::assert_json_snapshot!(json!({ "first_pass": first, "second_pass": plan }));
}
