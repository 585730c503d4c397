//! Properties of the three-way merge over random referrals, CRM records and bases,
//! with the mapping in `fixtures/every-direction.toml`: every direction, every owner,
//! composite and simple value tables (with an on-hold row, an empty value and a
//! fallback), text cut to a length, dates, money, booleans, a template, the record-id
//! pseudo-field and array paths.
//!
//! Plans are applied the way the engine will: the CRM update merged into the record,
//! the JSON Patch applied to the referral by an independent RFC 6902 implementation
//! (`json-patch`), and the referral parsed again.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use chrono::{DateTime, Utc};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};
use refsync_core::mapping::{EntityMapping, FieldValues, Mapping};
use refsync_core::merge::{CrmSide, MergePlan, PcSide, merge};
use refsync_core::status::check_transition;
use refsync_core::{CrmEntity, CrmRecord, Referral};
use serde_json::{Map, Value, json};

const MAPPING: &str = include_str!("fixtures/every-direction.toml");

fn mapping() -> EntityMapping {
    Mapping::from_toml(MAPPING)
        .unwrap()
        .entity(&CrmEntity::Opportunity)
        .unwrap()
        .clone()
}

fn at(hour: u32) -> DateTime<Utc> {
    refsync_core::wire::parse_datetime(&format!("2024-05-01T{hour:02}:00:00Z")).unwrap()
}

/// A value from a pool, or absent (`None` leaves the member out).
fn pick(pool: Vec<Value>) -> impl Strategy<Value = Option<Value>> {
    proptest::option::of(proptest::sample::select(pool))
}

fn text_pool() -> Vec<Value> {
    vec![
        json!("a"),
        json!("a "),
        json!("b"),
        json!("twelve chars!"),
        json!("twelve chars!!"),
        json!(""),
        Value::Null,
    ]
}

fn status_pairs() -> Vec<(&'static str, &'static str)> {
    vec![
        ("New", "Pending"),
        ("New", "Received"),
        ("Active", "Accepted"),
        ("Closed", "Won"),
        ("Closed", "Lost"),
        ("Closed", "Declined"),
        ("Closed", "Expired"),
    ]
}

fn insert(obj: &mut Map<String, Value>, key: &str, v: Option<Value>) {
    if let Some(v) = v {
        obj.insert(key.into(), v);
    }
}

fn referral_json() -> impl Strategy<Value = Value> {
    (
        (
            pick(vec![
                json!("Deal"),
                json!(" Deal "),
                json!("Deal ✔"),
                json!("Other"),
                json!(""),
            ]),
            proptest::option::of(proptest::sample::select(status_pairs())),
            pick(text_pool()),
            pick(vec![
                json!(50000),
                json!(50000.0),
                json!("50000"),
                json!(1.005),
                json!(7),
                Value::Null,
            ]),
            pick(vec![json!("usd"), json!("USD"), json!("EUR"), Value::Null]),
            pick(vec![
                json!("2024-06-30T00:00:00Z"),
                json!("2024-06-30T23:00:00-05:00"),
                json!("2024-07-01"),
                Value::Null,
            ]),
        ),
        (
            pick(vec![
                json!("Unknown"),
                json!("GeneralOrOther"),
                json!("quotesorlicensing"),
                json!("SomethingNew"),
                Value::Null,
            ]),
            pick(vec![json!("006A"), json!("006B"), Value::Null]),
            pick(vec![
                json!("98052"),
                json!(" 98052"),
                json!("10115"),
                Value::Null,
            ]),
            proptest::option::of(pick(vec![
                json!("Sue@Fabrikam.com"),
                json!("sue@fabrikam.com"),
                json!("x@y.z"),
            ])),
            pick(vec![json!(true), json!(false), Value::Null]),
            proptest::option::of(0u32..4),
        ),
    )
        .prop_map(
            |(
                (name, status, notes, deal, currency, closing),
                (help, ext, postal, team, consent, updated),
            )| {
                let mut r = Map::new();
                r.insert("id".into(), json!("r-1"));
                insert(&mut r, "name", name);
                if let Some((s, ss)) = status {
                    r.insert("status".into(), json!(s));
                    r.insert("substatus".into(), json!(ss));
                }
                insert(&mut r, "externalReferenceId", ext);
                if let Some(h) = updated {
                    r.insert("updatedDateTime".into(), json!(at(10 + h).to_rfc3339()));
                }
                let mut details = Map::new();
                insert(&mut details, "notes", notes);
                insert(&mut details, "dealValue", deal);
                insert(&mut details, "currency", currency);
                insert(&mut details, "closingDateTime", closing);
                if !details.is_empty() {
                    r.insert("details".into(), Value::Object(details));
                }
                if let Some(h) = help {
                    r.insert(
                        "inviteContext".into(),
                        json!({ "assistanceRequestCode": h }),
                    );
                }
                let mut profile = Map::new();
                if let Some(p) = postal {
                    profile.insert("address".into(), json!({ "postalCode": p }));
                }
                match team {
                    Some(Some(email)) => {
                        profile.insert("team".into(), json!([{ "email": email }]));
                    }
                    Some(None) => {
                        profile.insert("team".into(), json!([]));
                    }
                    None => {}
                }
                if !profile.is_empty() {
                    r.insert("customerProfile".into(), Value::Object(profile));
                }
                if let Some(c) = consent {
                    r.insert("consent".into(), json!({ "consentToContact": c }));
                }
                Value::Object(r)
            },
        )
}

fn crm_record() -> impl Strategy<Value = CrmRecord> {
    (
        (
            pick(vec![
                json!("Deal"),
                json!("Deal ✔"),
                json!("Renamed ✖"),
                json!(" "),
            ]),
            pick(text_pool()),
            pick(vec![
                json!(50000),
                json!("50000.00"),
                json!(1.01),
                json!(8),
                json!("lots"),
            ]),
            pick(vec![json!("usd"), json!("EUR"), json!("")]),
            pick(vec![json!("98052"), json!("10115"), Value::Null]),
            pick(vec![
                json!("sue@fabrikam.com"),
                json!("SUE@FABRIKAM.COM"),
                json!("z@y.x"),
            ]),
        ),
        (
            pick(vec![json!("2024-06-30"), json!("2024-08-01"), Value::Null]),
            pick(vec![
                json!("https://pc.example/referrals/r-1"),
                json!("https://old.example"),
                Value::Null,
            ]),
            pick(vec![
                json!("Prospecting"),
                json!("Qualification"),
                json!("negotiation/review"),
                json!("Closed Won"),
                json!("Closed Lost"),
                json!("Renegotiating"),
                Value::Null,
            ]),
            pick(vec![
                json!(100),
                json!(101),
                json!("101"),
                json!(999),
                Value::Null,
            ]),
            pick(vec![json!(true), json!("false"), json!(1), Value::Null]),
            // Mostly set, so CRM -> Partner Center is exercised as much as the reverse.
            pick(vec![
                json!(true),
                json!(true),
                json!(true),
                json!(false),
                Value::Null,
            ]),
        ),
        proptest::option::of(proptest::sample::select(vec!["006A", "006B"])),
        proptest::option::of(0u32..4),
    )
        .prop_map(
            |(
                (name, desc, amount, currency, postal, email),
                (close, link, stage, help, consent, sync),
                id,
                modified,
            )| {
                let mut fields = Map::new();
                insert(&mut fields, "Name", name);
                insert(&mut fields, "Description", desc);
                insert(&mut fields, "Amount", amount);
                insert(&mut fields, "CurrencyIsoCode", currency);
                insert(&mut fields, "PostalCode__c", postal);
                insert(&mut fields, "Email__c", email);
                insert(&mut fields, "CloseDate", close);
                insert(&mut fields, "Link__c", link);
                insert(&mut fields, "StageName", stage);
                insert(&mut fields, "Help__c", help);
                insert(&mut fields, "Consent__c", consent);
                insert(&mut fields, "Sync__c", sync);
                let mut r = CrmRecord::new(CrmEntity::Opportunity);
                r.id = id.map(|s| s.parse().unwrap());
                r.fields = fields;
                r.modified_at = modified.map(|h| at(10 + h));
                r
            },
        )
}

/// A base: per field absent, or a value either side might hold (canonical or not).
fn base() -> impl Strategy<Value = FieldValues> {
    let pools: Vec<(&str, Vec<Value>)> = vec![
        ("notes", text_pool()),
        ("name", vec![json!("Deal"), json!("Other"), Value::Null]),
        (
            "deal_value",
            vec![json!(50000), json!("50000.00"), json!(7), json!(1.01)],
        ),
        ("consent", vec![json!(true), json!(false), Value::Null]),
        ("currency", vec![json!("USD"), json!("EUR"), Value::Null]),
        ("postal_code", vec![json!("98052"), json!("10115")]),
        (
            "contact_email",
            vec![json!("sue@fabrikam.com"), json!("x@y.z"), Value::Null],
        ),
        (
            "closing_date",
            vec![json!("2024-06-30"), json!("2024-07-01")],
        ),
        (
            "link",
            vec![json!("https://pc.example/referrals/r-1"), Value::Null],
        ),
        ("crm_record_id", vec![json!("006A"), Value::Null]),
        (
            "status",
            vec![
                json!(["New", "Pending"]),
                json!(["Active", "Accepted"]),
                json!(["Closed", "Won"]),
                json!(["Closed", "Lost"]),
            ],
        ),
        (
            "help",
            vec![
                json!("GeneralOrOther"),
                json!("QuotesOrLicensing"),
                Value::Null,
            ],
        ),
        ("other_record_type", vec![json!("kept")]),
    ];
    pools
        .into_iter()
        .map(|(name, pool)| pick(pool).prop_map(move |v| v.map(|v| (name.to_owned(), v))))
        .collect::<Vec<_>>()
        .prop_map(|entries| entries.into_iter().flatten().collect())
}

fn sides(m: &EntityMapping, referral: &Value, record: &CrmRecord) -> (PcSide, CrmSide) {
    let referral: Referral = serde_json::from_value(referral.clone()).unwrap();
    (PcSide::read(m, &referral), CrmSide::read(m, record))
}

/// The referral after Partner Center applied the patch, with its new update time.
fn apply_pc(referral: &Value, plan: &MergePlan, updated: DateTime<Utc>) -> Value {
    let ops: json_patch::Patch =
        serde_json::from_value(serde_json::to_value(plan.pc_patch()).unwrap())
            .expect("the plan's patch is RFC 6902");
    let mut doc = referral.clone();
    json_patch::patch(&mut doc, &ops).expect("the patch applies to the referral it was made for");
    if !plan.pc_writes.is_empty() {
        doc["updatedDateTime"] = json!(updated.to_rfc3339());
    }
    doc
}

/// The record after the CRM applied the update, with its new modified time.
fn apply_crm(record: &CrmRecord, plan: &MergePlan, modified: DateTime<Utc>) -> CrmRecord {
    let mut out = record.clone();
    out.apply_update(&plan.crm_update());
    if !plan.crm_writes.is_empty() {
        out.modified_at = Some(modified);
    }
    out
}

fn config() -> Config {
    Config {
        cases: 512,
        rng_seed: RngSeed::Fixed(0x0072_6566_7379_6e63),
        failure_persistence: None,
        ..Config::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn merging_is_deterministic_and_never_writes_against_a_fields_direction(
        referral in referral_json(), record in crm_record(), base in base(),
    ) {
        let m = mapping();
        let (pc, crm) = sides(&m, &referral, &record);
        let plan = merge(&m, &pc, &crm, &base);
        prop_assert_eq!(&plan, &merge(&m, &pc, &crm, &base));
        for w in &plan.crm_writes {
            let f = m.field(&w.field).unwrap();
            prop_assert!(f.direction.to_crm(), "{} written to the CRM", w.field);
        }
        for w in &plan.pc_writes {
            let f = m.field(&w.field).unwrap();
            prop_assert!(f.direction.to_pc(), "{} written to Partner Center", w.field);
            prop_assert!(crm.sync_enabled, "{} written without the sync flag", w.field);
        }
        for c in &plan.conflicts {
            prop_assert_ne!(&c.pc, &c.crm);
        }
    }

    #[test]
    fn status_changes_sent_to_partner_center_are_allowed_transitions(
        referral in referral_json(), record in crm_record(), base in base(),
    ) {
        let m = mapping();
        let (pc, crm) = sides(&m, &referral, &record);
        let plan = merge(&m, &pc, &crm, &base);
        let after: Referral = serde_json::from_value(apply_pc(&referral, &plan, at(20))).unwrap();
        if plan.pc_writes.iter().any(|w| w.field == "status") {
            let from = pc.status.clone().unwrap_or_else(|| {
                refsync_core::StatusPair::new(
                    refsync_core::ReferralStatus::None,
                    refsync_core::ReferralSubstatus::None,
                )
            });
            let to = after.status_pair().unwrap();
            prop_assert!(check_transition(&from, &to).is_ok(), "{} -> {}", from, to);
        } else {
            prop_assert_eq!(after.status_pair(), pc.status);
        }
    }

    #[test]
    fn applying_a_plan_and_merging_again_writes_nothing(
        referral in referral_json(), record in crm_record(), base in base(),
        pc_newer in any::<bool>(),
    ) {
        let m = mapping();
        let (pc, crm) = sides(&m, &referral, &record);
        let plan = merge(&m, &pc, &crm, &base);
        // Our writes come back with new modification times, in either order.
        let (pc_time, crm_time) = if pc_newer { (at(21), at(20)) } else { (at(20), at(21)) };
        let referral2 = apply_pc(&referral, &plan, pc_time);
        let record2 = apply_crm(&record, &plan, crm_time);
        let (pc2, crm2) = sides(&m, &referral2, &record2);
        let again = merge(&m, &pc2, &crm2, &plan.new_base);
        prop_assert!(again.is_empty(), "first plan {:#?}\nsecond plan {:#?}", plan, again);
        prop_assert_eq!(&again.new_base, &plan.new_base);
        // Every field written now reads the same on both sides, and as the new base.
        for field in plan.crm_writes.iter().map(|w| &w.field).chain(plan.pc_writes.iter().map(|w| &w.field)) {
            prop_assert_eq!(pc2.values.values.get(field), crm2.values.values.get(field), "{}", field);
            prop_assert_eq!(crm2.values.values.get(field), plan.new_base.get(field), "{}", field);
        }
        // Carried-over base keys of other record types are untouched.
        prop_assert_eq!(plan.new_base.get("other_record_type"), base.get("other_record_type"));
    }

    #[test]
    fn a_crm_write_seen_before_the_partner_center_write_adds_nothing_new(
        referral in referral_json(), record in crm_record(), base in base(),
    ) {
        // CRM is written first; if the worker stops before Partner Center is written,
        // the retry sees the CRM's new state against the old base and must finish the
        // same Partner Center writes without touching the CRM again.
        let m = mapping();
        let (pc, crm) = sides(&m, &referral, &record);
        let plan = merge(&m, &pc, &crm, &base);
        let later = [pc.modified_at, crm.modified_at, Some(at(22))].into_iter().flatten().max().unwrap();
        let record2 = apply_crm(&record, &plan, later);
        let (pc2, crm2) = sides(&m, &referral, &record2);
        let retry = merge(&m, &pc2, &crm2, &base);
        prop_assert!(retry.crm_writes.is_empty(), "{:#?}", retry);
        prop_assert_eq!(retry.pc_patch(), plan.pc_patch());
        prop_assert_eq!(&retry.new_base, &plan.new_base);
    }
}
