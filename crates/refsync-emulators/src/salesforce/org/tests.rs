//! Unit tests of the save rules and savepoints.

use super::super::config::SalesforceConfig;
use super::*;
use rust_decimal::Decimal;
use serde_json::json;

fn org() -> (Org, WriteCtx) {
    let config = SalesforceConfig::default();
    let schema = Arc::new(Schema::build(&config).unwrap());
    let now = DateTime::parse_from_rfc3339("2025-03-01T12:00:00Z")
        .unwrap()
        .with_timezone(&Utc);
    let org = Org::new(schema, &config.users);
    let user = org.user_id(super::super::config::INTEGRATION_USER).unwrap();
    (org, WriteCtx { user, now })
}

fn obj(org: &Org, name: &str) -> usize {
    org.schema().object_index(name).unwrap()
}

fn body(v: JsonValue) -> Map<String, JsonValue> {
    v.as_object().unwrap().clone()
}

#[test]
fn create_sets_audit_fields_and_derived_stage_fields() {
    let (mut org, ctx) = org();
    let o = obj(&org, "Opportunity");
    let id = org
        .create(o, &body(json!({"Name":"Deal","StageName":"Closed Won","CloseDate":"2025-05-02","Amount":1000})), &ctx)
        .unwrap();
    assert_eq!(id.key_prefix(), "006");
    let def = &org.schema().objects[o];
    let r = org.live(o, &id).unwrap();
    let v = |n: &str| r.get(def.field_index(n).unwrap()).clone();
    assert_eq!(v("IsWon"), Value::Bool(true));
    assert_eq!(v("Probability"), Value::Number(Decimal::from(100)));
    assert_eq!(v("ExpectedRevenue"), Value::Number(Decimal::from(1000)));
    assert_eq!(v("FiscalQuarter"), Value::Number(Decimal::from(2)));
    assert_eq!(v("CreatedById"), Value::Text(ctx.user.to_string()));
    assert_eq!(v("SystemModstamp"), Value::DateTime(ctx.now));
}

#[test]
fn required_unknown_read_only_and_duplicate_fields_are_refused() {
    let (mut org, ctx) = org();
    let lead = obj(&org, "Lead");
    let e = org
        .create(lead, &body(json!({"FirstName":"A"})), &ctx)
        .unwrap_err();
    assert_eq!(e.errors[0].code, code::REQUIRED_FIELD_MISSING);
    assert_eq!(e.errors[0].fields, ["LastName", "Company", "Status"]);
    let e = org
        .create(lead, &body(json!({"Foo__c":1})), &ctx)
        .unwrap_err();
    assert_eq!(
        e.errors[0].message,
        "No such column 'Foo__c' on sobject of type Lead"
    );
    let e = org
        .create(lead, &body(json!({"IsConverted":true})), &ctx)
        .unwrap_err();
    assert_eq!(e.errors[0].code, code::INVALID_FIELD_FOR_INSERT_UPDATE);
    let ok = json!({"LastName":"L","Company":"C","Status":"Open - Not Contacted","Referral_Identifier__c":"RF-1"});
    org.create(lead, &body(ok.clone()), &ctx).unwrap();
    let mut dup = ok;
    dup["Referral_Identifier__c"] = json!("rf-1");
    let e = org.create(lead, &body(dup), &ctx).unwrap_err();
    assert_eq!(
        e.errors[0].code,
        code::DUPLICATE_VALUE,
        "unique is case-insensitive"
    );
}

#[test]
fn savepoints_undo_exactly_the_writes_since() {
    let (mut org, ctx) = org();
    let a = obj(&org, "Account");
    let kept = org.create(a, &body(json!({"Name":"Kept"})), &ctx).unwrap();
    let sp = org.savepoint();
    let gone = org.create(a, &body(json!({"Name":"Gone"})), &ctx).unwrap();
    org.update(a, &kept, &body(json!({"Name":"Renamed"})), &ctx)
        .unwrap();
    org.rollback_to(sp);
    assert!(org.record(a, &gone).is_none());
    let name = org.schema().objects[a].field_index("Name").unwrap();
    assert_eq!(
        org.live(a, &kept).unwrap().get(name),
        &Value::Text("Kept".into())
    );
}

#[test]
fn deleting_an_account_deletes_its_opportunities() {
    let (mut org, ctx) = org();
    let a = obj(&org, "Account");
    let o = obj(&org, "Opportunity");
    let acc = org.create(a, &body(json!({"Name":"A"})), &ctx).unwrap();
    let opp = org
        .create(o, &body(json!({"Name":"D","StageName":"Prospecting","CloseDate":"2025-01-01","AccountId":acc.as_str()})), &ctx)
        .unwrap();
    org.delete(a, &acc, &ctx).unwrap();
    assert_eq!(
        org.live(o, &opp).unwrap_err().errors[0].code,
        code::ENTITY_IS_DELETED
    );
}

#[test]
fn upsert_creates_updates_and_reports_several_matches() {
    let (mut org, ctx) = org();
    let lead = obj(&org, "Lead");
    let field = org.schema().objects[lead]
        .field_index("Referral_Identifier__c")
        .unwrap();
    let b = body(json!({"LastName":"L","Company":"C","Status":"Open - Not Contacted"}));
    let first = org
        .upsert(lead, field, &json!("RF-9"), &b, false, &ctx)
        .unwrap();
    let UpsertOutcome::Created(id) = first else {
        panic!("{first:?}")
    };
    assert_eq!(
        org.upsert(lead, field, &json!("RF-9"), &b, false, &ctx)
            .unwrap(),
        UpsertOutcome::Updated(id)
    );
    assert_eq!(
        org.upsert(lead, field, &json!("RF-10"), &b, true, &ctx)
            .unwrap_err()
            .status,
        StatusCode::NOT_FOUND
    );
}
