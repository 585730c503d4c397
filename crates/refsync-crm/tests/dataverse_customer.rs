//! The Dataverse connector's customer and state work against the emulator: the
//! opportunity upserted with its account (matched by name + postal code) and contact,
//! the lead retired by qualifying it, and opportunities won and lost through the actions.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod dataverse_support;

use dataverse_support::*;
use refsync_core::ids::{CrmEntity, CrmRecordId};
use refsync_crm::connector::{CrmConnector, CrmError, Customer, MatchOrCreate, RecordWrite};
use refsync_emulators::dataverse::{DataverseConfig, OpportunityClose};
use serde_json::{Map, json};

const CUSTOMER: &str = "Fabrikam's Customer Inc";

fn account_wanted() -> MatchOrCreate {
    MatchOrCreate {
        match_on: vec![
            ("name".into(), json!(CUSTOMER)),
            ("address1_postalcode".into(), json!("98052")),
        ],
        create: object(
            json!({"name": CUSTOMER, "address1_postalcode": "98052", "address1_country": "US"}),
        ),
    }
}

fn contact_wanted() -> MatchOrCreate {
    MatchOrCreate {
        match_on: vec![("emailaddress1".into(), json!("sue.smith@fabrikam.com"))],
        create: object(
            json!({"firstname": "Sue", "lastname": "Smith", "emailaddress1": "sue.smith@fabrikam.com"}),
        ),
    }
}

fn opportunity_write(env: &Env) -> RecordWrite {
    RecordWrite::fields(env.rendered(CrmEntity::Opportunity))
}

fn state(s: i64, st: i64) -> RecordWrite {
    let mut f = Map::new();
    f.insert("statecode".into(), json!(s));
    f.insert("statuscode".into(), json!(st));
    RecordWrite::fields(f)
}

/// An opportunity for `referral` bound to a new account.
async fn opportunity(env: &Env, r: &str) -> CrmRecordId {
    let account = MatchOrCreate {
        match_on: vec![("name".into(), json!(format!("Customer of {r}")))],
        create: object(json!({"name": format!("Customer of {r}")})),
    };
    env.connector
        .upsert_with_customer(
            env.entity(CrmEntity::Opportunity),
            &referral(r),
            &opportunity_write(env),
            Customer {
                account: Some((env.entity(CrmEntity::Account), &account)),
                contact: None,
            },
        )
        .await
        .unwrap()
        .upsert
        .record
        .id
        .unwrap()
}

fn closes_of(env: &Env, opp: &CrmRecordId) -> usize {
    env.records("opportunitycloses")
        .iter()
        .filter(|c| c["_opportunityid_value"] == json!(opp.as_str()))
        .count()
}

#[tokio::test]
async fn the_opportunity_is_bound_to_the_matched_account_and_a_new_contact() {
    let env = start().await;
    let existing = env.seller_account(CUSTOMER, "98052");
    env.seller_account(CUSTOMER, "10001");
    let (account, contact) = (account_wanted(), contact_wanted());
    let customer = Customer {
        account: Some((env.entity(CrmEntity::Account), &account)),
        contact: Some((env.entity(CrmEntity::Contact), &contact)),
    };
    let opp = env.entity(CrmEntity::Opportunity);
    let first = env
        .connector
        .upsert_with_customer(
            opp,
            &referral("ref-cust"),
            &opportunity_write(&env),
            customer,
        )
        .await
        .unwrap();
    assert_eq!(first.account, Some((id(&existing), false)));
    let (contact_id, created) = first.contact.clone().unwrap();
    assert!(created);
    assert!(first.upsert.created);
    let record = &first.upsert.record;
    assert_eq!(record.field("_customerid_value"), &json!(existing));
    assert_eq!(record.field("_parentaccountid_value"), &json!(existing));
    assert_eq!(
        record.field("_parentcontactid_value"),
        &json!(contact_id.as_str())
    );
    assert_eq!(
        env.record("contacts", &contact_id)["_parentcustomerid_value"],
        json!(existing)
    );
    assert_eq!(record.field("transactioncurrencyid"), &json!("USD"));

    // Repeating it (a retry, a crash before the link was saved) matches everything.
    let again = env
        .connector
        .upsert_with_customer(
            opp,
            &referral("ref-cust"),
            &opportunity_write(&env),
            customer,
        )
        .await
        .unwrap();
    assert_eq!(again.account, Some((id(&existing), false)));
    assert_eq!(again.contact, Some((contact_id, false)));
    assert!(!again.upsert.created);
    assert_eq!(again.upsert.record.id, first.upsert.record.id);
    assert_eq!(env.records("accounts").len(), 2);
    assert_eq!(env.records("contacts").len(), 1);
    assert_eq!(env.records("opportunities").len(), 1);
}

#[tokio::test]
async fn a_missing_account_is_created_once() {
    let env = start().await;
    let account = account_wanted();
    let customer = Customer {
        account: Some((env.entity(CrmEntity::Account), &account)),
        contact: None,
    };
    let opp = env.entity(CrmEntity::Opportunity);
    let first = env
        .connector
        .upsert_with_customer(
            opp,
            &referral("ref-new-acct"),
            &opportunity_write(&env),
            customer,
        )
        .await
        .unwrap();
    let (account_id, created) = first.account.clone().unwrap();
    assert!(created);
    assert_eq!(env.record("accounts", &account_id)["name"], json!(CUSTOMER));
    let second = env
        .connector
        .upsert_with_customer(
            opp,
            &referral("ref-new-acct-2"),
            &opportunity_write(&env),
            customer,
        )
        .await
        .unwrap();
    assert_eq!(second.account, Some((account_id, false)));
    assert_eq!(env.records("accounts").len(), 1);
}

#[tokio::test]
async fn retire_lead_qualifies_it_pointing_at_the_opportunity_and_creates_nothing() {
    let env = start().await;
    let lead = env.entity(CrmEntity::Lead);
    let lead_id = env
        .connector
        .upsert_by_referral(lead, &referral("ref-retire"), &env.lead_write())
        .await
        .unwrap()
        .record
        .id
        .unwrap();
    let opp = opportunity(&env, "ref-retire").await;
    let counts = |env: &Env| {
        (
            env.records("accounts").len(),
            env.records("contacts").len(),
            env.records("opportunities").len(),
        )
    };
    let before = counts(&env);
    env.reset_calls();
    env.connector
        .retire_lead(lead, &lead_id, &opp)
        .await
        .unwrap();
    assert_eq!(env.calls(), 1);
    let stored = env.record("leads", &lead_id);
    assert_eq!(
        (stored["statecode"].clone(), stored["statuscode"].clone()),
        (json!(1), json!(3))
    );
    assert_eq!(
        stored["_qualifyingopportunityid_value"],
        json!(opp.as_str())
    );
    assert_eq!(counts(&env), before, "no QualifyLead: nothing is created");

    // Again (a retry after a lost answer): already qualified, fine.
    env.connector
        .retire_lead(lead, &lead_id, &opp)
        .await
        .unwrap();
    // A lead deleted in the meantime needs nothing.
    env.connector
        .retire_lead(lead, &id("00000000-0000-0000-0000-0000000000ee"), &opp)
        .await
        .unwrap();

    // A disqualified lead is reopened, then qualified.
    let other = env
        .connector
        .upsert_by_referral(lead, &referral("ref-retire-2"), &env.lead_write())
        .await
        .unwrap()
        .record
        .id
        .unwrap();
    env.connector
        .update(lead, &other, &state(2, 6))
        .await
        .unwrap();
    env.connector.retire_lead(lead, &other, &opp).await.unwrap();
    assert_eq!(env.record("leads", &other)["statecode"], json!(1));
}

#[tokio::test]
async fn opportunities_are_won_and_lost_through_the_actions() {
    let env = start().await;
    let opp_mapping = env.entity(CrmEntity::Opportunity);
    let won = opportunity(&env, "ref-win").await;
    let mut write = state(1, 3);
    write
        .fields
        .insert("description".into(), json!("closed from Partner Center"));
    let r = env
        .connector
        .update(opp_mapping, &won, &write)
        .await
        .unwrap();
    assert_eq!(
        (r.field("statecode"), r.field("statuscode")),
        (&json!(1), &json!(3))
    );
    assert_eq!(r.field("description"), &json!("closed from Partner Center"));
    assert_eq!(closes_of(&env, &won), 1, "the action records the close");
    // Winning it again (a retry) changes nothing and records no second close.
    env.connector
        .update(opp_mapping, &won, &state(1, 3))
        .await
        .unwrap();
    assert_eq!(closes_of(&env, &won), 1);

    // Lost through the upsert by referral too; the state alone picks the default status.
    let lost = opportunity(&env, "ref-lose").await;
    let mut write = opportunity_write(&env);
    write.fields.insert("statecode".into(), json!(2));
    write.fields.remove("statuscode");
    let outcome = env
        .connector
        .upsert_by_referral(opp_mapping, &referral("ref-lose"), &write)
        .await
        .unwrap();
    assert!(!outcome.created);
    assert_eq!(outcome.record.id.as_ref(), Some(&lost));
    assert_eq!(
        (
            outcome.record.field("statecode"),
            outcome.record.field("statuscode")
        ),
        (&json!(2), &json!(4))
    );
    assert_eq!(closes_of(&env, &lost), 1);

    // Won after all: reopened, then won.
    let r = env
        .connector
        .update(opp_mapping, &lost, &state(1, 3))
        .await
        .unwrap();
    assert_eq!(r.field("statecode"), &json!(1));
    assert_eq!(closes_of(&env, &lost), 2);

    // Reopened by a plain PATCH.
    let r = env
        .connector
        .update(opp_mapping, &lost, &state(0, 1))
        .await
        .unwrap();
    assert_eq!(r.field("statecode"), &json!(0));
}

#[tokio::test]
async fn closing_by_patch_is_a_setting_and_dataverse_says_when_it_is_refused() {
    // The emulator refuses a statecode PATCH to Won (its default); with the actions off
    // the connector sends the PATCH and surfaces the refusal.
    let env = start_with(DataverseConfig::default(), |s| {
        s.close_opportunities_with_actions = false;
    })
    .await;
    let opp = opportunity(&env, "ref-patch").await;
    let e = env
        .connector
        .update(env.entity(CrmEntity::Opportunity), &opp, &state(1, 3))
        .await
        .unwrap_err();
    match e {
        CrmError::Rejected { message, .. } => {
            assert!(message.contains("WinOpportunity"), "{message}")
        }
        other => panic!("{other:?}"),
    }

    // An environment that accepts the PATCH closes it with one.
    let config = DataverseConfig {
        opportunity_close: OpportunityClose::ActionsOrPatch,
        ..DataverseConfig::default()
    };
    let env = start_with(config, |s| s.close_opportunities_with_actions = false).await;
    let opp = opportunity(&env, "ref-patch").await;
    let r = env
        .connector
        .update(env.entity(CrmEntity::Opportunity), &opp, &state(1, 3))
        .await
        .unwrap();
    assert_eq!(r.field("statecode"), &json!(1));
    assert_eq!(
        closes_of(&env, &opp),
        0,
        "no opportunityclose without the action"
    );
}
