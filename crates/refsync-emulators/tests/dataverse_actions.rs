#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
//! QualifyLead, WinOpportunity, LoseOpportunity and opportunity state changes
//! through HTTP (crm.md §1.4).

mod dataverse_support;

use dataverse_support::{Env, start, start_with};
use refsync_emulators::dataverse::{DataverseConfig, OpportunityClose};
use serde_json::{Value, json};

const KEY: &str = "msft_microsoftpartnercenterreferralidentifier";

async fn cosell_lead(env: &Env) -> String {
    env.create(
        "leads",
        &json!({
            "subject": "Contoso data platform",
            "firstname": "Ana",
            "lastname": "Lopez",
            "companyname": "Contoso Pharma",
            "emailaddress1": "ana@contoso.example",
            "address1_postalcode": "98052",
            "address1_country": "US",
            "estimatedamount": 125000,
            "description": "From Partner Center",
            KEY: "RF-QL-1",
            "msft_microsoftpartnercenterreferralsync": true,
            "msft_microsoftpartnercenterhelp": 299600001,
        }),
    )
    .await
}

async fn opportunity(env: &Env) -> String {
    let account = env.create("accounts", &json!({"name": "Fabrikam"})).await;
    env.create(
        "opportunities",
        &json!({"name": "Fabrikam deal", "estimatedvalue": 40000, "customerid_account@odata.bind": format!("/accounts({account})")}),
    )
    .await
}

fn created_id<'a>(body: &'a Value, logical: &str, pk: &str) -> &'a str {
    body["value"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["@odata.type"] == format!("#Microsoft.Dynamics.CRM.{logical}"))
        .and_then(|v| v[pk].as_str())
        .unwrap_or_else(|| panic!("no {logical} in {body}"))
}

#[tokio::test]
async fn qualify_lead_creates_the_records_and_qualifies_the_lead() {
    let env = start().await;
    let lead = cosell_lead(&env).await;
    let r = env
        .post(
            &format!("leads({lead})/Microsoft.Dynamics.CRM.QualifyLead"),
            &json!({"CreateAccount": true, "CreateContact": true, "CreateOpportunity": true, "Status": 3}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(
        r.body["@odata.context"]
            .as_str()
            .unwrap()
            .ends_with("Collection(Microsoft.Dynamics.CRM.crmbaseentity)")
    );
    assert_eq!(r.body["value"].as_array().unwrap().len(), 3);
    let account = created_id(&r.body, "account", "accountid").to_owned();
    let contact = created_id(&r.body, "contact", "contactid").to_owned();
    let opp = created_id(&r.body, "opportunity", "opportunityid").to_owned();

    let l = env.get(&format!("leads({lead})")).await.body;
    assert_eq!(
        (l["statecode"].clone(), l["statuscode"].clone()),
        (json!(1), json!(3))
    );
    assert_eq!(l["_qualifyingopportunityid_value"], opp.as_str());
    let a = env.get(&format!("accounts({account})")).await.body;
    assert_eq!(a["name"], "Contoso Pharma");
    assert_eq!(a["address1_postalcode"], "98052");
    assert_eq!(a["_originatingleadid_value"], lead.as_str());
    let c = env.get(&format!("contacts({contact})")).await.body;
    assert_eq!(c["fullname"], "Ana Lopez");
    assert_eq!(c["_parentcustomerid_value"], account.as_str());
    let o = env.get(&format!("opportunities({opp})")).await.body;
    assert_eq!(o["name"], "Contoso data platform");
    assert_eq!(o["_customerid_value"], account.as_str());
    assert_eq!(o["_parentcontactid_value"], contact.as_str());
    assert_eq!(o["estimatedvalue"].as_f64(), Some(125000.0));
    assert_eq!(o["_originatingleadid_value"], lead.as_str());
    // The co-sell columns travel with it, so the referral can be upserted by key on the opportunity.
    assert_eq!(o[KEY], "RF-QL-1");
    assert_eq!(o["msft_microsoftpartnercenterhelp"], 299600001);
    assert_eq!(
        env.get(&format!("opportunities({KEY}='RF-QL-1')"))
            .await
            .body["opportunityid"],
        opp.as_str()
    );

    // The qualified lead is read-only, and cannot be qualified again.
    let r = env
        .patch(
            &format!("leads({lead})"),
            &[("If-Match", "*")],
            &json!({"subject": "x"}),
        )
        .await;
    assert_eq!(r.status, 400);
    let r = env
        .post(
            &format!("leads({lead})/Microsoft.Dynamics.CRM.QualifyLead"),
            &json!({"CreateAccount": false, "CreateContact": false, "CreateOpportunity": true, "Status": 3}),
        )
        .await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn qualify_lead_checks_its_parameters_and_changes_nothing_on_failure() {
    let env = start().await;
    let lead = cosell_lead(&env).await;
    let path = format!("leads({lead})/Microsoft.Dynamics.CRM.QualifyLead");
    let r = env.post(&path, &json!({"CreateAccount": true, "CreateContact": false, "CreateOpportunity": true, "Status": 4})).await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.message(),
        format!(
            "4 is not a valid status code for state code LeadState.Qualified on lead with Id {lead}"
        )
    );
    let r = env
        .post(&path, &json!({"CreateAccount": true, "Status": 3}))
        .await;
    assert_eq!(r.status, 400);
    assert!(r.message().contains("CreateContact"), "{}", r.message());
    // A lead without a company name cannot make an account; nothing is created.
    let bare = env
        .create(
            "leads",
            &json!({"subject": "No company", "lastname": "Roe"}),
        )
        .await;
    let r = env
        .post(
            &format!("leads({bare})/Microsoft.Dynamics.CRM.QualifyLead"),
            &json!({"CreateAccount": true, "CreateContact": true, "CreateOpportunity": true, "Status": 3}),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(env.get("accounts/$count").await.text, "0");
    assert_eq!(env.get("contacts/$count").await.text, "0");
    assert_eq!(
        env.get(&format!("leads({bare})")).await.body["statecode"],
        0
    );
    // An existing customer: the opportunity goes to it.
    let account = env.create("accounts", &json!({"name": "Existing"})).await;
    let r = env
        .post(
            &path,
            &json!({
                "CreateAccount": false, "CreateContact": false, "CreateOpportunity": true, "Status": 3,
                "OpportunityCustomerId": {"@odata.type": "Microsoft.Dynamics.CRM.account", "accountid": account},
            }),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let opp = created_id(&r.body, "opportunity", "opportunityid").to_owned();
    assert_eq!(
        env.get(&format!("opportunities({opp})")).await.body["_customerid_value"],
        account.as_str()
    );
}

#[tokio::test]
async fn win_and_lose_close_opportunities_and_reactivation_reopens_them() {
    let env = start().await;
    let opp = opportunity(&env).await;
    // crm.md §1.4 (unconfirmed): a plain PATCH to Won is refused by default.
    let r = env
        .patch(
            &format!("opportunities({opp})"),
            &[("If-Match", "*")],
            &json!({"statecode": 1, "statuscode": 3}),
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(r.message().contains("WinOpportunity"), "{}", r.message());

    let r = env
        .post(
            "WinOpportunity",
            &json!({"Status": 3, "OpportunityClose": {"subject": "Won it", "opportunityid@odata.bind": format!("/opportunities({opp})")}}),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    let o = env.get(&format!("opportunities({opp})")).await.body;
    assert_eq!(
        (o["statecode"].clone(), o["statuscode"].clone()),
        (json!(1), json!(3))
    );
    assert_eq!(o["actualvalue"].as_f64(), Some(40000.0));
    assert!(o["actualclosedate"].is_string());
    assert_eq!(o["msdyn_forecastcategory"], 100000005);
    let closes = env
        .get(&format!(
            "opportunitycloses?$filter=_opportunityid_value eq {opp}"
        ))
        .await;
    assert_eq!(
        closes.body["value"][0]["subject"], "Won it",
        "{}",
        closes.text
    );

    // Won is read-only; closing twice is refused; reopening works.
    let r = env
        .patch(
            &format!("opportunities({opp})"),
            &[("If-Match", "*")],
            &json!({"description": "x"}),
        )
        .await;
    assert_eq!(r.status, 400);
    let again = env
        .post("LoseOpportunity", &json!({"Status": 4, "OpportunityClose": {"opportunityid@odata.bind": format!("/opportunities({opp})")}}))
        .await;
    assert_eq!(again.status, 400);
    let r = env
        .patch(
            &format!("opportunities({opp})"),
            &[("If-Match", "*")],
            &json!({"statecode": 0, "statuscode": 1}),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text);

    let r = env
        .post("LoseOpportunity", &json!({"Status": 3, "OpportunityClose": {"opportunityid@odata.bind": format!("/opportunities({opp})")}}))
        .await;
    assert_eq!(r.status, 400);
    assert!(
        r.message().contains("OpportunityState.Lost"),
        "{}",
        r.message()
    );
    let r = env
        .post("LoseOpportunity", &json!({"Status": 5, "OpportunityClose": {"subject": "Out-sold", "opportunityid@odata.bind": format!("/opportunities({opp})")}}))
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    let o = env
        .get(&format!(
            "opportunities({opp})?$select=statecode,statuscode"
        ))
        .await
        .body;
    assert_eq!(
        (o["statecode"].clone(), o["statuscode"].clone()),
        (json!(2), json!(5))
    );
    assert_eq!(env.get("opportunitycloses/$count").await.text, "2");
    let r = env.post("WinOpportunity", &json!({"Status": 3})).await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn closing_by_patch_can_be_allowed() {
    let env = start_with(DataverseConfig {
        opportunity_close: OpportunityClose::ActionsOrPatch,
        ..DataverseConfig::default()
    })
    .await;
    let opp = opportunity(&env).await;
    let r = env
        .patch(
            &format!("opportunities({opp})"),
            &[("If-Match", "*")],
            &json!({"statecode": 1, "statuscode": 3}),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    let r = env
        .patch(
            &format!("opportunities({opp})"),
            &[("If-Match", "*")],
            &json!({"name": "renamed"}),
        )
        .await;
    assert_eq!(r.status, 400, "still read-only once won");
}
