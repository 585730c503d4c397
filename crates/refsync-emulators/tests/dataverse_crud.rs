#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
//! The Dataverse emulator's Web API through HTTP: authentication, create/read/
//! update/delete, validation, state rules, lookups, ETags and the control API
//! (crm.md §1.2–§1.6, §1.11).

mod dataverse_support;

use dataverse_support::{app_token, start};
use refsync_emulators::dataverse::{Dataverse, DataverseConfig, DataverseEmulator};
use refsync_emulators::entra::{DEMO_CLIENT_ID, EntraAuthority};
use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;

fn lead() -> Value {
    json!({"subject": "Contoso migration", "firstname": "Jane", "lastname": "Doe", "companyname": "Contoso"})
}

#[tokio::test]
async fn tokens_must_be_for_the_environment_and_unexpired() {
    let env = start().await;
    // No token: 401 with the Dataverse error body and the Bearer challenge.
    let r = env.http.get(env.url("WhoAmI")).send().await.unwrap();
    let r = dataverse_support::read(r).await;
    assert_eq!(r.status, 401);
    assert!(r.body["error"]["message"].is_string(), "{}", r.text);
    assert!(
        r.header("www-authenticate")
            .unwrap()
            .starts_with("Bearer authorization_uri=")
    );
    // A token for another resource.
    let pc = app_token(
        &env.http,
        &env.emu,
        "https://api.partner.microsoft.com/.default",
    )
    .await;
    let r = env.send_as(&pc, Method::GET, "WhoAmI", &[], None).await;
    assert_eq!(r.status, 401);
    assert!(r.message().contains("audience"), "{}", r.message());
    // A token for the `.api.` host form is the same environment (crm.md §1.1).
    let api_host = app_token(
        &env.http,
        &env.emu,
        "https://contoso.api.crm.dynamics.com/.default",
    )
    .await;
    assert_eq!(
        env.send_as(&api_host, Method::GET, "WhoAmI", &[], None)
            .await
            .status,
        200
    );
    // A valid token works until it expires.
    let who = env.get("WhoAmI").await;
    assert_eq!(who.status, 200);
    let user = who.body["UserId"].as_str().unwrap().to_owned();
    assert_eq!(
        who.body["OrganizationId"],
        DataverseConfig::default().organization_id.to_string()
    );
    env.emu.dataverse().authority().expire_access_tokens();
    let r = env.get("WhoAmI").await;
    assert_eq!(r.status, 401);
    assert!(r.message().contains("expired"), "{}", r.message());
    // The application user is a systemuser, and owns what it creates.
    let env = start().await;
    let user2 = env.get("WhoAmI").await.body["UserId"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        user, user2,
        "the same app is the same systemuser on every run"
    );
    let id = env.create("leads", &lead()).await;
    let r = env
        .get(&format!(
            "leads({id})?$select=_ownerid_value,_createdby_value"
        ))
        .await;
    assert_eq!(r.body["_ownerid_value"], user2.as_str());
    let u = env.get(&format!("systemusers({user2})")).await;
    assert_eq!(u.body["fullname"], "# refsync");
    assert_eq!(u.body["applicationid"], DEMO_CLIENT_ID.to_string());
    assert_eq!(env.emu.dataverse().usage().unauthorized, 0);
}

#[tokio::test]
async fn create_answers_204_with_entity_id_or_201_with_the_representation() {
    let env = start().await;
    let r = env.post("leads", &lead()).await;
    assert_eq!(r.status, 204);
    assert!(r.text.is_empty());
    let location = r.header("OData-EntityId").unwrap().to_owned();
    assert!(location.starts_with(&env.emu.api_url()), "{location}");
    assert!(location.contains("/leads("));
    let id = r.entity_id();
    let got = env.get(&location).await;
    assert_eq!(got.status, 200);
    assert_eq!(got.body["leadid"], id.as_str());
    assert_eq!(got.body["fullname"], "Jane Doe");
    assert_eq!(got.body["statecode"], 0);
    assert_eq!(got.body["statuscode"], 1);
    // Every column comes back, unset ones as null, lookups as _x_value.
    assert!(got.body.get("description").unwrap().is_null());
    assert!(got.body.get("_parentaccountid_value").unwrap().is_null());
    assert!(
        got.body["@odata.context"]
            .as_str()
            .unwrap()
            .ends_with("$metadata#leads/$entity")
    );
    assert!(
        got.header("content-type")
            .unwrap()
            .starts_with("application/json")
    );
    assert_eq!(got.header("odata-version"), Some("4.0"));

    let r = env
        .send(
            Method::POST,
            "leads?$select=subject,lastname",
            &[("Prefer", "return=representation")],
            Some(&lead()),
        )
        .await;
    assert_eq!(r.status, 201);
    assert_eq!(
        r.header("Preference-Applied"),
        Some("return=representation")
    );
    assert!(r.header("OData-EntityId").is_none());
    let keys: Vec<&String> = r.body.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "@odata.context",
            "@odata.etag",
            "leadid",
            "subject",
            "lastname"
        ]
    );
    assert!(
        r.body["@odata.context"]
            .as_str()
            .unwrap()
            .ends_with("#leads(subject,lastname)/$entity")
    );
    assert_eq!(r.header("ETag"), r.body["@odata.etag"].as_str());

    // A client may choose the id.
    let chosen = "8f0a2b1c-0000-4000-8000-0000000000aa";
    let mut body = lead();
    body["leadid"] = json!(chosen);
    assert_eq!(env.create("leads", &body).await, chosen);
    let again = env.post("leads", &body).await;
    assert_eq!((again.status, again.code()), (412, "0x80040237"));
}

#[tokio::test]
async fn columns_are_validated_with_dataverse_errors() {
    let env = start().await;
    let r = env.post("leads", &json!({"subject": "No last name"})).await;
    assert_eq!(r.status, 400);
    assert!(r.message().contains("'lastname'"), "{}", r.message());
    let r = env
        .post("opportunities", &json!({"name": "No customer"}))
        .await;
    assert_eq!(r.status, 400);
    assert!(r.message().contains("'customerid'"), "{}", r.message());
    let r = env
        .post("accounts", &json!({"description": "no name"}))
        .await;
    assert!(r.message().contains("'name'"), "{}", r.message());

    let mut long = lead();
    long["subject"] = json!("s".repeat(301));
    let r = env.post("leads", &long).await;
    assert_eq!((r.status, r.code()), (400, "0x80044331"));
    assert_eq!(
        r.message(),
        "A validation error occurred. The length of the 'subject' attribute of the 'lead' entity exceeded the maximum allowed length of '300'."
    );
    let mut long = lead();
    long["description"] = json!("d".repeat(2001));
    assert_eq!(env.post("leads", &long).await.status, 400);
    long["description"] = json!("d".repeat(2000));
    assert_eq!(env.post("leads", &long).await.status, 204);

    let mut money = lead();
    money["estimatedamount"] = json!(1_000_000_000_001.0);
    let r = env.post("leads", &money).await;
    assert_eq!(r.status, 400);
    assert!(r.message().contains("'estimatedamount'"));

    let mut unknown = lead();
    unknown["new_nosuchcolumn"] = json!("x");
    let r = env.post("leads", &unknown).await;
    assert_eq!((r.status, r.code()), (400, "0x80048d19"));
    assert!(r.message().contains(
        "The property 'new_nosuchcolumn' does not exist on type 'Microsoft.Dynamics.CRM.lead'"
    ));

    let mut choice = lead();
    choice["msft_microsoftpartnercenterhelp"] = json!(1);
    let r = env.post("leads", &choice).await;
    assert_eq!((r.status, r.code()), (400, "0x8004431a"));
    choice["msft_microsoftpartnercenterhelp"] = json!(299600002);
    choice["msft_microsoftpartnercenterreferralsync"] = json!(true);
    assert_eq!(env.post("leads", &choice).await.status, 204);

    let r = env
        .send(
            Method::POST,
            "leads",
            &[("Content-Type", "application/json")],
            None,
        )
        .await;
    assert_eq!(r.status, 400);
    let r = env.post("nosuchset", &lead()).await;
    assert_eq!(
        (r.status, r.message()),
        (404, "Resource not found for the segment 'nosuchset'.")
    );
    let r = env.post("systemusers", &json!({})).await;
    assert_eq!(r.status, 405);
}

#[tokio::test]
async fn status_must_match_state_and_closed_leads_are_read_only() {
    let env = start().await;
    let id = env.create("leads", &lead()).await;
    let path = format!("leads({id})");
    let r = env
        .patch(
            &path,
            &[("If-Match", "*")],
            &json!({"statecode": 0, "statuscode": 5}),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.message(),
        format!("5 is not a valid status code for state code LeadState.Open on lead with Id {id}")
    );
    let r = env
        .patch(
            &path,
            &[("If-Match", "*")],
            &json!({"statecode": 2, "statuscode": 6}),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    let r = env
        .patch(&path, &[("If-Match", "*")], &json!({"subject": "too late"}))
        .await;
    assert_eq!(r.status, 400);
    assert!(r.message().contains("closed"), "{}", r.message());
    let r = env
        .patch(
            &path,
            &[("If-Match", "*")],
            &json!({"statecode": 0, "statuscode": 2, "subject": "reopened"}),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    let got = env
        .get(&format!("{path}?$select=subject,statecode,statuscode"))
        .await;
    assert_eq!(
        (got.body["subject"].clone(), got.body["statuscode"].clone()),
        (json!("reopened"), json!(2))
    );

    // Accounts go inactive and stay editable.
    let account = env.create("accounts", &json!({"name": "Fabrikam"})).await;
    let path = format!("accounts({account})");
    assert_eq!(
        env.patch(
            &path,
            &[("If-Match", "*")],
            &json!({"statecode": 1, "statuscode": 2})
        )
        .await
        .status,
        204
    );
    assert_eq!(
        env.patch(
            &path,
            &[("If-Match", "*")],
            &json!({"name": "Fabrikam Ltd"})
        )
        .await
        .status,
        204
    );
    let r = env
        .patch(
            &path,
            &[("If-Match", "*")],
            &json!({"statecode": 1, "statuscode": 1}),
        )
        .await;
    assert!(
        r.message().contains("AccountState.Inactive"),
        "{}",
        r.message()
    );
}

#[tokio::test]
async fn lookups_bind_through_navigation_properties_and_read_back_as_values() {
    let env = start().await;
    let account = env
        .create("accounts", &json!({"name": "Contoso Ltd"}))
        .await;
    let usd = env
        .get("transactioncurrencies?$filter=isocurrencycode eq 'EUR'&$select=transactioncurrencyid")
        .await;
    let eur = usd.body["value"][0]["transactioncurrencyid"]
        .as_str()
        .unwrap()
        .to_owned();
    let id = env
        .create(
            "opportunities",
            &json!({
                "name": "Contoso co-sell",
                "customerid_account@odata.bind": format!("/accounts({account})"),
                "transactioncurrencyid@odata.bind": format!("/transactioncurrencies({eur})"),
                "estimatedvalue": 50000,
                "estimatedclosedate": "2025-06-30",
            }),
        )
        .await;
    let r = env
        .send(
            Method::GET,
            &format!("opportunities({id})?$select=name,_customerid_value,estimatedvalue"),
            &[("Prefer", "odata.include-annotations=\"*\"")],
            None,
        )
        .await;
    assert_eq!(r.body["_customerid_value"], account.as_str());
    assert_eq!(
        r.body["_customerid_value@Microsoft.Dynamics.CRM.lookuplogicalname"],
        "account"
    );
    assert_eq!(
        r.body["_customerid_value@Microsoft.Dynamics.CRM.associatednavigationproperty"],
        "customerid_account"
    );
    assert_eq!(
        r.body["_customerid_value@OData.Community.Display.V1.FormattedValue"],
        "Contoso Ltd"
    );
    // Money brings its currency back (crm.md §1.7).
    assert_eq!(r.body["_transactioncurrencyid_value"], eur.as_str());
    assert_eq!(
        r.body["estimatedvalue@OData.Community.Display.V1.FormattedValue"],
        "€50,000.00"
    );
    assert_eq!(
        r.header("Preference-Applied"),
        Some("odata.include-annotations=\"*\"")
    );
    let full = env.get(&format!("opportunities({id})")).await;
    assert_eq!(full.body["estimatedvalue_base"].as_f64().unwrap(), 54347.83);
    assert_eq!(full.body["exchangerate"].as_f64().unwrap(), 0.92);

    // Money without a currency gets the base currency (USD).
    let lead_id = env
        .create(
            "leads",
            &json!({"subject": "s", "lastname": "l", "estimatedamount": 10}),
        )
        .await;
    let r = env
        .get(&format!("leads({lead_id})?$select=estimatedamount"))
        .await;
    assert_eq!(
        r.body["_transactioncurrencyid_value"],
        "732e87e1-1d96-e711-80e4-00155db75426"
    );

    // Clearing a lookup with null, and a bind to a record that does not exist.
    let r = env
        .patch(
            &format!("opportunities({id})"),
            &[("If-Match", "*")],
            &json!({"parentaccountid@odata.bind": format!("/accounts({account})")}),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    let r = env
        .send(
            Method::DELETE,
            &format!("opportunities({id})/parentaccountid/$ref"),
            &[],
            None,
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert!(
        env.get(&format!("opportunities({id})")).await.body["_parentaccountid_value"].is_null()
    );
    let missing = "00000000-0000-4000-8000-000000000001";
    let r = env
        .post("contacts", &json!({"lastname": "x", "parentcustomerid_account@odata.bind": format!("/accounts({missing})")}))
        .await;
    assert_eq!((r.status, r.code()), (404, "0x80040217"));
    assert_eq!(
        r.message(),
        format!("account With Id = {missing} Does Not Exist")
    );
    // Navigation property names are case-sensitive; _x_value cannot be written.
    let r = env
        .post("contacts", &json!({"lastname": "x", "ParentCustomerId_Account@odata.bind": format!("/accounts({account})")}))
        .await;
    assert_eq!(r.status, 400);
    let r = env
        .post(
            "contacts",
            &json!({"lastname": "x", "_parentcustomerid_value": account}),
        )
        .await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn update_delete_and_single_columns() {
    let env = start().await;
    let missing = "00000000-0000-4000-8000-0000000000f1";
    // If-Match: * stops an accidental upsert (crm.md §1.5).
    let r = env
        .patch(&format!("leads({missing})"), &[("If-Match", "*")], &lead())
        .await;
    assert_eq!((r.status, r.code()), (404, "0x80040217"));
    assert_eq!(
        r.message(),
        format!("lead With Id = {missing} Does Not Exist")
    );
    // Without it, PATCH by id creates the record.
    let r = env.patch(&format!("leads({missing})"), &[], &lead()).await;
    assert_eq!(r.status, 204);
    assert_eq!(r.entity_id(), missing);
    let r = env
        .send(
            Method::PATCH,
            &format!("leads({missing})"),
            &[("Prefer", "return=representation"), ("If-Match", "*")],
            Some(&json!({"jobtitle": "CTO"})),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["jobtitle"], "CTO");
    assert_eq!(
        r.header("Preference-Applied"),
        Some("return=representation")
    );

    let column = format!("leads({missing})/jobtitle");
    let r = env
        .send(Method::PUT, &column, &[], Some(&json!({"value": "CEO"})))
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert_eq!(env.get(&column).await.body["value"], "CEO");
    assert_eq!(env.delete(&column, &[]).await.status, 204);
    assert!(env.get(&column).await.body["value"].is_null());

    assert_eq!(
        env.delete(&format!("leads({missing})"), &[]).await.status,
        204
    );
    let r = env.delete(&format!("leads({missing})"), &[]).await;
    assert_eq!((r.status, r.code()), (404, "0x80040217"));
    assert_eq!(env.get(&format!("leads({missing})")).await.status, 404);
    assert_eq!(env.get("leads(not-a-guid)").await.status, 400);
}

#[tokio::test]
async fn etags_change_on_every_write_and_drive_conditional_requests() {
    let env = start().await;
    let id = env.create("leads", &lead()).await;
    let path = format!("leads({id})");
    let first = env.get(&path).await;
    let etag1 = first.header("ETag").unwrap().to_owned();
    assert!(etag1.starts_with("W/\""), "{etag1}");
    assert_eq!(first.body["@odata.etag"], etag1.as_str());
    assert_eq!(
        first.body["versionnumber"].as_u64().unwrap().to_string(),
        etag1.trim_start_matches("W/").trim_matches('"')
    );

    // Unchanged: 304. `If-None-Match: null` (the recommended header) is not a condition.
    let r = env
        .send(Method::GET, &path, &[("If-None-Match", &etag1)], None)
        .await;
    assert_eq!(r.status, 304);
    assert!(r.text.is_empty());
    assert_eq!(
        env.send(Method::GET, &path, &[("If-None-Match", "null")], None)
            .await
            .status,
        200
    );
    // Annotations never get a 304 (crm.md §1.6).
    let r = env
        .send(
            Method::GET,
            &path,
            &[
                ("If-None-Match", &etag1),
                ("Prefer", "odata.include-annotations=\"*\""),
            ],
            None,
        )
        .await;
    assert_eq!(r.status, 200);

    env.emu.dataverse().advance_clock(Duration::from_secs(5));
    assert_eq!(
        env.patch(&path, &[("If-Match", &etag1)], &json!({"jobtitle": "CTO"}))
            .await
            .status,
        204
    );
    let second = env.get(&path).await;
    let etag2 = second.header("ETag").unwrap().to_owned();
    assert_ne!(etag1, etag2);
    assert!(second.body["modifiedon"].as_str() > first.body["modifiedon"].as_str());
    assert_eq!(second.body["createdon"], first.body["createdon"]);
    assert_eq!(
        env.send(Method::GET, &path, &[("If-None-Match", &etag1)], None)
            .await
            .status,
        200
    );

    // A stale version: 412 for PATCH and DELETE (crm.md §1.6).
    let r = env
        .patch(&path, &[("If-Match", &etag1)], &json!({"jobtitle": "CEO"}))
        .await;
    assert_eq!((r.status, r.code()), (412, "0x80060882"));
    assert_eq!(
        r.message(),
        "The version of the existing record doesn't match the RowVersion property provided."
    );
    assert_eq!(env.delete(&path, &[("If-Match", &etag1)]).await.status, 412);
    assert_eq!(env.delete(&path, &[("If-Match", &etag2)]).await.status, 204);
}

#[tokio::test]
async fn user_edits_through_the_control_api_look_like_a_person_did_them() {
    let env = start().await;
    let id = env.create("leads", &lead()).await;
    let before = env.get(&format!("leads({id})")).await.body;
    env.emu.dataverse().advance_clock(Duration::from_secs(90));
    let r = env
        .http
        .patch(env.control(&format!("/_emulator/dataverse/records/leads/{id}")))
        .json(&json!({"description": "Customer called back", "msft_microsoftpartnercenterreferralsync": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let after = env.get(&format!("leads({id})")).await.body;
    let human = DataverseConfig::default().human_user;
    assert_eq!(after["_modifiedby_value"], human.id.to_string());
    assert_eq!(after["_createdby_value"], before["_createdby_value"]);
    assert!(after["modifiedon"].as_str() > before["modifiedon"].as_str());
    assert!(after["versionnumber"].as_u64() > before["versionnumber"].as_u64());
    assert_eq!(after["description"], "Customer called back");

    // The same rules apply to user edits.
    let r = env
        .http
        .patch(env.control(&format!("/_emulator/dataverse/records/leads/{id}")))
        .json(&json!({"subject": "x".repeat(400)}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // Listing and filtering without a token, and creating as the user.
    let listed: Value = env
        .http
        .get(env.control("/_emulator/dataverse/records/leads?$filter=lastname eq 'DOE'"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["value"].as_array().unwrap().len(), 1);
    let created = env
        .emu
        .dataverse()
        .create_as_user("accounts", &json!({"name": "Woodgrove"}))
        .unwrap();
    assert_eq!(created["_ownerid_value"], human.id.to_string());
    let summary: Value = env
        .http
        .get(env.control("/_emulator/dataverse"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(summary["records"]["accounts"], 1);
    assert_eq!(
        summary["scope"],
        "https://contoso.crm.dynamics.com/.default"
    );
}

#[tokio::test]
async fn a_shared_authority_and_the_in_process_router_work_too() {
    use tower::ServiceExt;
    let authority = EntraAuthority::demo().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let emu = DataverseEmulator::start_with_authority(
        DataverseConfig::default(),
        listener,
        authority.clone(),
    )
    .unwrap();
    assert!(emu.token_url().is_none());
    let token = authority
        .issue_app_token(DEMO_CLIENT_ID, "https://contoso.crm.dynamics.com")
        .unwrap();
    let r = reqwest::Client::new()
        .get(format!("{}WhoAmI", emu.api_url()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // In-process: no listener at all.
    let dv = Dataverse::new(DataverseConfig::default(), authority).unwrap();
    let request = axum::http::Request::builder()
        .uri("/api/data/v9.0/transactioncurrencies?$select=isocurrencycode&$filter=isocurrencycode%20eq%20'gbp'")
        .header("Authorization", format!("Bearer {token}"))
        .body(axum::body::Body::empty())
        .unwrap();
    let response = dv.router().oneshot(request).await.unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = serde_json::from_slice(
        &axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(body["value"][0]["isocurrencycode"], "GBP");
    assert!(body["@odata.context"].as_str().unwrap().starts_with(
        "https://contoso.crm.dynamics.com/api/data/v9.0/$metadata#transactioncurrencies"
    ));
    let r = dv.router().oneshot(
        axum::http::Request::builder()
            .uri("/api/data/v8.0/WhoAmI")
            .header("Authorization", format!("Bearer {token}"))
            .body(axum::body::Body::empty())
            .unwrap(),
    );
    assert_eq!(r.await.unwrap().status(), 404);
}
