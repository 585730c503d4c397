//! `upsert_with_customer` through `/composite`: the account (and contact) matched by
//! name + postal code or created, the opportunity upserted pointing at them, and the
//! API calls counted by the emulator — 1 when the customer exists, 2 when it does not.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod salesforce_support;

use refsync_core::ids::CrmEntity;
use refsync_crm::connector::{CrmConnector, CrmError, Customer, MatchOrCreate};
use salesforce_support::{Org, account, referral, start};
use serde_json::{Value, json};

const REF: &str = "c5fbb3b6-be74-4795-9fb5-4324c73fed37";

/// Match the account by name + postal code and the contact by e-mail, creating them
/// from the sample referral, as the engine does.
fn wanted(org: &Org, name: &str) -> (MatchOrCreate, MatchOrCreate) {
    let mut create = org.rendered(CrmEntity::Account);
    create.insert("Name".into(), json!(name));
    let account = MatchOrCreate {
        match_on: vec![
            ("Name".into(), json!(name)),
            ("BillingPostalCode".into(), json!("98052")),
        ],
        create,
    };
    let contact = MatchOrCreate {
        match_on: vec![("Email".into(), json!("sue.smith@fabrikam.com"))],
        create: org.rendered(CrmEntity::Contact),
    };
    (account, contact)
}

fn customer<'a>(
    org: &'a Org,
    account: &'a MatchOrCreate,
    contact: &'a MatchOrCreate,
) -> Customer<'a> {
    Customer {
        account: Some((org.entity(CrmEntity::Account), account)),
        contact: Some((org.entity(CrmEntity::Contact), contact)),
    }
}

#[tokio::test]
async fn an_existing_account_and_contact_cost_one_call() {
    let org = start().await;
    let name = r#"Fabrikam's "Best" \ Co"#;
    let acc = org.create_as_seller("Account", account(name, "98052"));
    org.create_as_seller("Account", account(name, "10001"));
    let con = org.create_as_seller(
        "Contact",
        json!({"LastName": "Smith", "Email": "sue.smith@fabrikam.com", "AccountId": acc}),
    );
    let (a, c) = wanted(&org, name);
    let done = org
        .connector
        .upsert_with_customer(
            org.entity(CrmEntity::Opportunity),
            &referral(REF),
            &org.opportunity_write(),
            customer(&org, &a, &c),
        )
        .await
        .unwrap();
    assert_eq!(org.calls(), 1, "match and upsert in one composite call");
    assert!(done.upsert.created);
    let (account_id, account_created) = done.account.unwrap();
    assert_eq!(
        (account_id.as_str(), account_created),
        (acc.as_str(), false)
    );
    let (contact_id, contact_created) = done.contact.unwrap();
    assert_eq!(
        (contact_id.as_str(), contact_created),
        (con.as_str(), false)
    );
    let rec = &done.upsert.record;
    assert_eq!(
        rec.field("AccountId"),
        &json!(acc),
        "matched by name + postal code"
    );
    assert_eq!(rec.field("ContactId"), &json!(con));
    assert_eq!(rec.field("Referral_Identifier__c"), &json!(REF));
    assert_eq!(org.records("Account").len(), 2, "nothing created");
    assert_eq!(org.records("Contact").len(), 1);
}

#[tokio::test]
async fn a_new_account_and_contact_cost_two_calls_and_a_repeat_costs_one() {
    let org = start().await;
    let (a, c) = wanted(&org, "Fabrikam Customer Inc");
    let opp = org.entity(CrmEntity::Opportunity);
    let done = org
        .connector
        .upsert_with_customer(
            opp,
            &referral(REF),
            &org.opportunity_write(),
            customer(&org, &a, &c),
        )
        .await
        .unwrap();
    assert_eq!(org.calls(), 2, "match + upsert, then create + upsert");
    let (account_id, created) = done.account.clone().unwrap();
    assert!(created);
    let (contact_id, created) = done.contact.clone().unwrap();
    assert!(created);
    let accounts = org.records("Account");
    assert_eq!(accounts.len(), 1);
    assert_eq!(accounts[0]["Id"], json!(account_id.as_str()));
    assert_eq!(accounts[0]["BillingCity"], json!("Redmond"));
    let contacts = org.records("Contact");
    assert_eq!(
        contacts[0]["AccountId"],
        json!(account_id.as_str()),
        "the contact hangs off the new account"
    );
    assert_eq!(
        done.upsert.record.field("AccountId"),
        &json!(account_id.as_str())
    );
    assert_eq!(
        done.upsert.record.field("ContactId"),
        &json!(contact_id.as_str())
    );
    assert!(done.upsert.created);

    // The same again (a retried sync): everything matches now, one call, no duplicates.
    let again = org
        .connector
        .upsert_with_customer(
            opp,
            &referral(REF),
            &org.opportunity_write(),
            customer(&org, &a, &c),
        )
        .await
        .unwrap();
    assert_eq!(org.calls(), 3);
    assert!(!again.upsert.created);
    assert_eq!(again.account, Some((account_id, false)));
    assert_eq!(again.contact, Some((contact_id, false)));
    assert_eq!(org.records("Account").len(), 1);
    assert_eq!(org.records("Opportunity").len(), 1);
}

#[tokio::test]
async fn a_found_account_with_a_new_contact_creates_only_the_contact() {
    let org = start().await;
    let acc = org.create_as_seller("Account", account("Fabrikam Customer Inc", "98052"));
    let (a, c) = wanted(&org, "Fabrikam Customer Inc");
    let done = org
        .connector
        .upsert_with_customer(
            org.entity(CrmEntity::Opportunity),
            &referral(REF),
            &org.opportunity_write(),
            customer(&org, &a, &c),
        )
        .await
        .unwrap();
    assert_eq!(org.calls(), 2);
    assert_eq!(
        done.account.as_ref().map(|(id, new)| (id.as_str(), *new)),
        Some((acc.as_str(), false))
    );
    assert!(done.contact.as_ref().unwrap().1);
    assert_eq!(org.records("Account").len(), 1);
    assert_eq!(org.records("Contact")[0]["AccountId"], json!(acc));
}

#[tokio::test]
async fn a_refused_opportunity_rolls_the_new_account_back() {
    let org = start().await;
    let (a, c) = wanted(&org, "Fabrikam Customer Inc");
    let mut write = org.opportunity_write();
    write.fields.remove("CloseDate");
    let e = org
        .connector
        .upsert_with_customer(
            org.entity(CrmEntity::Opportunity),
            &referral(REF),
            &write,
            customer(&org, &a, &c),
        )
        .await
        .unwrap_err();
    match &e {
        CrmError::Rejected { code, message } => {
            assert_eq!(code.as_deref(), Some("REQUIRED_FIELD_MISSING"), "{message}");
            assert!(message.contains("CloseDate"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(org.calls(), 2);
    assert!(
        org.records("Account").is_empty(),
        "allOrNone rolled the account back"
    );
    assert!(org.records("Contact").is_empty());
    assert!(org.records("Opportunity").is_empty());
}

#[tokio::test]
async fn a_refused_opportunity_with_an_existing_customer_fails_in_one_call() {
    let org = start().await;
    org.create_as_seller("Account", account("Fabrikam Customer Inc", "98052"));
    let (a, _) = wanted(&org, "Fabrikam Customer Inc");
    let mut write = org.opportunity_write();
    write
        .fields
        .insert("StageName".into(), json!("Not A Stage"));
    let e = org
        .connector
        .upsert_with_customer(
            org.entity(CrmEntity::Opportunity),
            &referral(REF),
            &write,
            Customer {
                account: Some((org.entity(CrmEntity::Account), &a)),
                contact: None,
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&e, CrmError::Rejected { code: Some(c), .. } if c == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"),
        "{e:?}"
    );
    assert_eq!(org.calls(), 1);
}

#[tokio::test]
async fn values_that_look_like_references_take_the_step_by_step_path() {
    let org = start().await;
    let (mut a, c) = wanted(&org, "Fabrikam Customer Inc");
    a.create.insert(
        "Description".into(),
        Value::String("ask @{sales.team}".into()),
    );
    let done = org
        .connector
        .upsert_with_customer(
            org.entity(CrmEntity::Opportunity),
            &referral(REF),
            &org.opportunity_write(),
            customer(&org, &a, &c),
        )
        .await
        .unwrap();
    assert!(done.account.as_ref().unwrap().1);
    assert_eq!(
        org.records("Account")[0]["Description"],
        json!("ask @{sales.team}")
    );
    // Account: find, create, read back (the marker keeps it out of /composite);
    // contact: find, create + read back; opportunity: upsert + read back.
    assert_eq!(org.calls(), 6);
}

#[tokio::test]
async fn a_lead_is_upserted_once_even_when_its_account_is_new() {
    let org = start().await;
    let (a, _) = wanted(&org, "Fabrikam Customer Inc");
    let done = org
        .connector
        .upsert_with_customer(
            org.entity(CrmEntity::Lead),
            &referral(REF),
            &refsync_crm::connector::RecordWrite::fields(org.rendered(CrmEntity::Lead)),
            Customer {
                account: Some((org.entity(CrmEntity::Account), &a)),
                contact: None,
            },
        )
        .await
        .unwrap();
    assert!(done.upsert.created, "the first call created the lead");
    assert!(done.account.unwrap().1);
    assert_eq!(org.calls(), 2, "the second call only creates the account");
    assert_eq!(org.records("Lead").len(), 1);
    assert_eq!(org.records("Account").len(), 1);
}
