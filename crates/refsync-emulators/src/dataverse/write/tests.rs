//! The write rules without HTTP: state tables, read-only closed records, upsert and keys.

use super::*;
use crate::dataverse::config::DataverseConfig;
use serde_json::json;

struct Env {
    schema: Schema,
    store: Store,
}

fn ctx(schema: &Schema) -> WriteCtx<'_> {
    WriteCtx {
        schema,
        now: Utc::now(),
        user: Uuid::from_u128(7),
        base_currency: None,
    }
}

impl Env {
    fn new(config: DataverseConfig) -> Self {
        Self {
            schema: Schema::from_config(&config).unwrap(),
            store: Store::new(10),
        }
    }

    fn table(&self, set: &str) -> Table {
        self.schema.by_entity_set(set).unwrap().clone()
    }

    fn create(&mut self, set: &str, body: Value) -> Result<Uuid, DvError> {
        let table = self.table(set);
        create(
            &ctx(&self.schema),
            &mut self.store,
            &table,
            body.as_object().unwrap(),
        )
    }

    fn patch(&mut self, set: &str, id: Uuid, body: Value) -> Result<Outcome, DvError> {
        let table = self.table(set);
        let pre = Preconditions {
            if_match_any: true,
            ..Preconditions::default()
        };
        upsert(
            &ctx(&self.schema),
            &mut self.store,
            &table,
            &Address::Id(id),
            body.as_object().unwrap(),
            &pre,
        )
    }

    fn state(&self, table: &str, id: Uuid) -> (i64, i64) {
        self.store.get(table, &id).unwrap().state().unwrap()
    }
}

fn lead() -> Value {
    json!({"subject": "Co-sell", "lastname": "Doe", "firstname": "Jane"})
}

#[test]
fn new_records_get_the_initial_state_defaults_and_system_columns() {
    let mut env = Env::new(DataverseConfig::default());
    let id = env.create("leads", lead()).unwrap();
    let row = env.store.get("lead", &id).unwrap();
    assert_eq!(row.state(), Some((0, 1)));
    assert_eq!(row.get("fullname"), "Jane Doe");
    assert_eq!(row.get("leadqualitycode"), 2);
    assert_eq!(row.get("msft_microsoftpartnercenterreferralsync"), false);
    assert!(row.get("createdon").is_string());
    assert_eq!(row.get("createdon"), row.get("modifiedon"));
    assert_eq!(
        row.lookup("ownerid"),
        Some(("systemuser", Uuid::from_u128(7)))
    );
    assert_eq!(row.version, 11);
}

#[test]
fn required_columns_are_checked_on_create_and_when_cleared() {
    let mut env = Env::new(DataverseConfig::default());
    let err = env.create("leads", json!({"subject": "x"})).unwrap_err();
    assert!(err.message.contains("'lastname'"), "{}", err.message);
    let err = env
        .create("opportunities", json!({"name": "x"}))
        .unwrap_err();
    assert!(err.message.contains("'customerid'"), "{}", err.message);
    let id = env.create("leads", lead()).unwrap();
    let err = env.patch("leads", id, json!({"subject": ""})).unwrap_err();
    assert!(err.message.contains("'subject'"));
    // Relaxed: ApplicationRequired is not enforced.
    let mut env = Env::new(DataverseConfig {
        enforce_application_required: false,
        ..DataverseConfig::default()
    });
    assert!(env.create("leads", json!({"subject": "x"})).is_ok());
}

#[test]
fn status_must_belong_to_the_state() {
    let mut env = Env::new(DataverseConfig::default());
    let id = env.create("leads", lead()).unwrap();
    // Status alone must belong to the current state.
    env.patch("leads", id, json!({"statuscode": 2})).unwrap();
    assert_eq!(env.state("lead", id), (0, 2));
    let err = env
        .patch("leads", id, json!({"statuscode": 4}))
        .unwrap_err();
    assert_eq!(
        err.message,
        format!("4 is not a valid status code for state code LeadState.Open on lead with Id {id}")
    );
    let err = env
        .patch("leads", id, json!({"statecode": 2, "statuscode": 3}))
        .unwrap_err();
    assert!(
        err.message
            .starts_with("3 is not a valid status code for state code LeadState.Disqualified")
    );
    // State alone takes its default status.
    env.patch("leads", id, json!({"statecode": 2})).unwrap();
    assert_eq!(env.state("lead", id), (2, 4));
    let err = env
        .create(
            "leads",
            json!({"subject": "s", "lastname": "l", "statecode": 9}),
        )
        .unwrap_err();
    assert_eq!(err.code, "0x8004431a");
}

#[test]
fn closed_records_are_read_only_until_reactivated() {
    let mut env = Env::new(DataverseConfig::default());
    let id = env.create("leads", lead()).unwrap();
    env.patch("leads", id, json!({"statecode": 2, "statuscode": 6}))
        .unwrap();
    let err = env
        .patch("leads", id, json!({"subject": "changed"}))
        .unwrap_err();
    assert!(
        err.message.contains("closed (Disqualified)"),
        "{}",
        err.message
    );
    // Closed to closed is not a reactivation either.
    assert!(
        env.patch("leads", id, json!({"statecode": 1, "statuscode": 3}))
            .is_err()
    );
    // Reactivating may carry other changes.
    env.patch(
        "leads",
        id,
        json!({"statecode": 0, "statuscode": 1, "subject": "again"}),
    )
    .unwrap();
    let row = env.store.get("lead", &id).unwrap();
    assert_eq!(
        (row.state(), row.get("subject").as_str()),
        (Some((0, 1)), Some("again"))
    );
    // Leads cannot be created closed.
    assert!(
        env.create(
            "leads",
            json!({"subject": "s", "lastname": "l", "statecode": 1})
        )
        .is_err()
    );
}

#[test]
fn opportunities_close_through_actions_unless_configured() {
    let mut env = Env::new(DataverseConfig::default());
    let account = env.create("accounts", json!({"name": "Contoso"})).unwrap();
    let body =
        json!({"name": "Deal", "customerid_account@odata.bind": format!("/accounts({account})")});
    let opp = env.create("opportunities", body.clone()).unwrap();
    let err = env
        .patch(
            "opportunities",
            opp,
            json!({"statecode": 1, "statuscode": 3}),
        )
        .unwrap_err();
    assert!(
        err.message
            .contains("use the WinOpportunityRequest message"),
        "{}",
        err.message
    );
    // On hold is a plain status change.
    env.patch("opportunities", opp, json!({"statuscode": 2}))
        .unwrap();

    let mut env = Env::new(DataverseConfig {
        opportunity_close: crate::dataverse::config::OpportunityClose::ActionsOrPatch,
        ..DataverseConfig::default()
    });
    let account = env.create("accounts", json!({"name": "Contoso"})).unwrap();
    let body =
        json!({"name": "Deal", "customerid_account@odata.bind": format!("/accounts({account})")});
    let opp = env.create("opportunities", body).unwrap();
    env.patch(
        "opportunities",
        opp,
        json!({"statecode": 2, "statuscode": 5}),
    )
    .unwrap();
    assert_eq!(env.state("opportunity", opp), (2, 5));
    assert!(
        env.patch("opportunities", opp, json!({"name": "x"}))
            .is_err()
    );
}

#[test]
fn lookups_bind_by_navigation_property_and_must_exist() {
    let mut env = Env::new(DataverseConfig::default());
    let account = env.create("accounts", json!({"name": "Contoso"})).unwrap();
    let opp = env
        .create(
            "opportunities",
            json!({"name": "Deal", "customerid_account@odata.bind": format!("https://contoso.crm.dynamics.com/api/data/v9.2/accounts({account})")}),
        )
        .unwrap();
    let row = env.store.get("opportunity", &opp).unwrap();
    assert_eq!(row.lookup("customerid"), Some(("account", account)));
    let missing = Uuid::from_u128(99);
    let err = env
        .create("opportunities", json!({"name": "Deal", "customerid_account@odata.bind": format!("/accounts({missing})")}))
        .unwrap_err();
    assert_eq!((err.status.as_u16(), err.code), (404, "0x80040217"));
    // A bind to the wrong table, a wrong-case navigation property, a direct _x_value write.
    assert!(
        env.create(
            "opportunities",
            json!({"name": "D", "customerid_account@odata.bind": format!("/contacts({account})")})
        )
        .is_err()
    );
    assert!(
        env.create(
            "opportunities",
            json!({"name": "D", "CustomerId_Account@odata.bind": format!("/accounts({account})")})
        )
        .is_err()
    );
    let err = env
        .create(
            "opportunities",
            json!({"name": "D", "_customerid_value": account.to_string()}),
        )
        .unwrap_err();
    assert!(err.message.contains("Use Navigation properties"));
}

#[test]
fn deleting_a_record_clears_lookups_to_it() {
    let mut env = Env::new(DataverseConfig::default());
    let account = env.create("accounts", json!({"name": "Contoso"})).unwrap();
    let contact = env
        .create("contacts", json!({"lastname": "Doe", "parentcustomerid_account@odata.bind": format!("/accounts({account})")}))
        .unwrap();
    let table = env.table("accounts");
    delete(
        &ctx(&env.schema),
        &mut env.store,
        &table,
        &Address::Id(account),
        &Preconditions::default(),
    )
    .unwrap();
    assert_eq!(
        env.store
            .get("contact", &contact)
            .unwrap()
            .lookup("parentcustomerid"),
        None
    );
    assert_eq!(env.store.deleted_since("account", 0).count(), 1);
}
