//! sObject CRUD, validation and the audit fields, over HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod salesforce_support;

use refsync_emulators::salesforce::config::SalesforceConfig;
use reqwest::{Method, StatusCode};
use salesforce_support::{V, start, start_with};
use serde_json::json;

#[tokio::test]
async fn create_read_update_delete_a_lead() {
    let org = start().await;
    let r = org
        .post(
            "/sobjects/Lead/",
            json!({"FirstName": "Ada", "LastName": "Lovelace", "Company": "Contoso", "Status": "Open - Not Contacted"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let id = r.body["id"].as_str().unwrap().to_owned();
    assert_eq!(r.body, json!({"id": id, "success": true, "errors": []}));
    assert_eq!(id.len(), 18);
    assert!(id.starts_with("00Q"));
    assert_eq!(
        r.header("location"),
        Some(format!("/services/data/{V}/sobjects/Lead/{id}").as_str())
    );

    let got = org.get(&format!("/sobjects/Lead/{id}")).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(
        got.body["attributes"],
        json!({"type": "Lead", "url": format!("/services/data/{V}/sobjects/Lead/{id}")})
    );
    assert_eq!(got.body["Id"], json!(id));
    assert_eq!(got.body["Name"], "Ada Lovelace");
    assert_eq!(got.body["IsConverted"], false);
    assert_eq!(
        got.body["Sync_with_Partner_Center__c"], false,
        "checkbox default"
    );
    assert_eq!(got.body["Email"], json!(null));
    let keys: Vec<&String> = got.body.as_object().unwrap().keys().collect();
    assert_eq!(keys[0], "attributes");
    assert_eq!(keys[1], "Id");

    let some = org
        .get(&format!("/sobjects/Lead/{id}?fields=LastName,Company"))
        .await;
    assert_eq!(
        some.body,
        json!({"attributes": got.body["attributes"], "LastName": "Lovelace", "Company": "Contoso", "Id": id})
    );

    let r = org
        .patch(
            &format!("/sobjects/Lead/{id}"),
            json!({"Company": "Fabrikam", "Email": "ada@example.com"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(r.body, json!(null));
    let got = org.get(&format!("/sobjects/Lead/{id}")).await;
    assert_eq!(got.body["Company"], "Fabrikam");
    assert_eq!(got.body["Email"], "ada@example.com");

    assert_eq!(
        org.delete(&format!("/sobjects/Lead/{id}")).await.status,
        StatusCode::NO_CONTENT
    );
    for r in [
        org.get(&format!("/sobjects/Lead/{id}")).await,
        org.patch(&format!("/sobjects/Lead/{id}"), json!({"Company": "X"}))
            .await,
        org.delete(&format!("/sobjects/Lead/{id}")).await,
    ] {
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        assert_eq!(
            r.body,
            json!([{"message": "entity is deleted", "errorCode": "ENTITY_IS_DELETED"}])
        );
    }
}

#[tokio::test]
async fn ids_are_accepted_in_15_and_case_folded_18_character_form() {
    let org = start().await;
    let id = org.create_lead("Short").await;
    for form in [id[..15].to_owned(), id.to_lowercase()] {
        let r = org.get(&format!("/sobjects/lead/{form}")).await;
        assert_eq!(r.status, StatusCode::OK, "{form}");
        assert_eq!(r.body["Id"], json!(id));
        assert_eq!(
            r.body["attributes"]["type"], "Lead",
            "object names are case-insensitive"
        );
    }
    let missing = org
        .get(&format!(
            "/sobjects/Lead/{}",
            &id.replace(&id[10..15], "zzzzz")[..15]
        ))
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.error_code(), "NOT_FOUND");
    let not_an_id = org.get("/sobjects/Lead/hello").await;
    assert_eq!(not_an_id.status, StatusCode::NOT_FOUND);
    assert_eq!(
        not_an_id.body[0]["message"],
        "Provided external ID field does not exist or is not accessible: hello"
    );
    let wrong_object = org.get(&format!("/sobjects/Account/{id}")).await;
    assert_eq!(wrong_object.status, StatusCode::NOT_FOUND);
    assert_eq!(
        org.get("/sobjects/Widget__c/").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn every_object_has_its_key_prefix() {
    let org = start().await;
    let account = org.create("Account", json!({"Name": "Contoso"})).await;
    let contact = org
        .create("Contact", json!({"LastName": "Doe", "AccountId": account}))
        .await;
    let opp = org
        .create("Opportunity", json!({"Name": "Deal", "StageName": "Prospecting", "CloseDate": "2026-06-30", "AccountId": account, "ContactId": contact}))
        .await;
    let lead = org.create_lead("Lead").await;
    assert_eq!(
        (&account[..3], &contact[..3], &opp[..3], &lead[..3]),
        ("001", "003", "006", "00Q")
    );
}

#[tokio::test]
async fn validation_errors_match_salesforce() {
    let org = start().await;
    let cases = [
        (
            json!({"Company": "Contoso"}),
            json!([{"message": "Required fields are missing: [LastName, Status]", "errorCode": "REQUIRED_FIELD_MISSING", "fields": ["LastName", "Status"]}]),
        ),
        (
            json!({"LastName": "", "Company": "C", "Status": "Open - Not Contacted"}),
            json!([{"message": "Required fields are missing: [LastName]", "errorCode": "REQUIRED_FIELD_MISSING", "fields": ["LastName"]}]),
        ),
        (
            json!({"LastName": "L", "Company": "C", "Status": "Open - Not Contacted", "Foo__c": 1}),
            json!([{"message": "No such column 'Foo__c' on sobject of type Lead", "errorCode": "INVALID_FIELD", "fields": ["Foo__c"]}]),
        ),
        (
            json!({"Id": "00Q5g0000000001", "LastName": "L"}),
            json!([{"message": "The Id field should not be specified in the sobject data.", "errorCode": "INVALID_FIELD"}]),
        ),
        (
            json!({"LastName": "L", "Company": "C", "Status": "Qualified"}),
            json!([{"message": "Status: bad value for restricted picklist field: Qualified", "errorCode": "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", "fields": ["Status"]}]),
        ),
        (
            json!({"LastName": "L", "Company": "C", "Status": "Open - Not Contacted", "IsConverted": true, "CreatedDate": "2020-01-01T00:00:00Z"}),
            json!([{"message": "Unable to create/update fields: IsConverted, CreatedDate. Please check the security settings of this field and verify that it is read/write for your profile or permission set.", "errorCode": "INVALID_FIELD_FOR_INSERT_UPDATE", "fields": ["IsConverted", "CreatedDate"]}]),
        ),
        (
            json!({"LastName": "L", "Company": "C", "Status": "Open - Not Contacted", "Email": "not an email"}),
            json!([{"message": "Email: invalid email address: not an email", "errorCode": "INVALID_EMAIL_ADDRESS", "fields": ["Email"]}]),
        ),
        (
            json!({"LastName": "L", "Company": "C", "Status": "Open - Not Contacted", "How_can_Microsoft_help__c": "Lunch"}),
            json!([{"message": "How can Microsoft help?: bad value for restricted picklist field: Lunch", "errorCode": "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", "fields": ["How_can_Microsoft_help__c"]}]),
        ),
    ];
    for (body, expected) in cases {
        let r = org.post("/sobjects/Lead", body.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(r.body, expected, "{body}");
    }
    let long = "x".repeat(81);
    let r = org
        .post(
            "/sobjects/Lead",
            json!({"LastName": long, "Company": "C", "Status": "Open - Not Contacted"}),
        )
        .await;
    assert_eq!(r.error_code(), "STRING_TOO_LONG");
    assert_eq!(
        r.body[0]["message"],
        format!("Last Name: data value too large: {long} (max length=80)")
    );
    let r = org.post("/sobjects/Lead", json!({"LastName": "L", "Company": "C", "Status": "Open - Not Contacted", "Referral_Identifier__c": "r".repeat(101)})).await;
    assert_eq!(r.error_code(), "STRING_TOO_LONG");
    let r = org.post("/sobjects/Lead", json!({"LastName": "L", "Company": "C", "Status": "Open - Not Contacted", "Audit__c": "a".repeat(100_000)})).await;
    assert_eq!(
        r.status,
        StatusCode::CREATED,
        "Audit__c holds 100,000 characters"
    );

    let r = org
        .post(
            "/sobjects/Opportunity",
            json!({"Name": "D", "StageName": "Prospecting", "CloseDate": "30/06/2026"}),
        )
        .await;
    assert_eq!(r.error_code(), "JSON_PARSER_ERROR");
    assert!(
        r.body[0]["message"]
            .as_str()
            .unwrap()
            .contains("Cannot deserialize instance of date from VALUE_STRING value 30/06/2026")
    );
    let r = org.post("/sobjects/Opportunity", json!({"Name": "D", "StageName": "Prospecting", "CloseDate": "2026-06-30", "Amount": "lots"})).await;
    assert_eq!(r.error_code(), "JSON_PARSER_ERROR");
    let r = org.post("/sobjects/Opportunity", json!({"Name": "D", "StageName": "Prospecting", "CloseDate": "2026-06-30", "Amount": 1e17})).await;
    assert_eq!(r.error_code(), "NUMBER_OUTSIDE_VALID_RANGE");
    let r = org
        .post("/sobjects/Opportunity", json!({"Name": "D"}))
        .await;
    assert_eq!(r.body[0]["fields"], json!(["StageName", "CloseDate"]));
    let r = org.post("/sobjects/Account", json!({})).await;
    assert_eq!(r.body[0]["fields"], json!(["Name"]));
    let r = org.send(Method::POST, "/sobjects/Account", None, &[]).await;
    assert_eq!(r.error_code(), "JSON_PARSER_ERROR");
    let r = org
        .http
        .post(org.url(&format!("/services/data/{V}/sobjects/Account")))
        .bearer_auth(&org.token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn clearing_a_required_field_on_update_is_refused() {
    let org = start().await;
    let id = org.create_lead("Keep").await;
    let r = org
        .patch(&format!("/sobjects/Lead/{id}"), json!({"Company": null}))
        .await;
    assert_eq!(r.error_code(), "REQUIRED_FIELD_MISSING");
    assert_eq!(
        org.get(&format!("/sobjects/Lead/{id}")).await.body["Company"],
        "Contoso"
    );
}

#[tokio::test]
async fn lookups_must_point_at_live_records_of_the_right_object() {
    let org = start().await;
    let lead = org.create_lead("L").await;
    let account = org.create("Account", json!({"Name": "A"})).await;
    let base = json!({"Name": "D", "StageName": "Prospecting", "CloseDate": "2026-06-30"});
    let with = |account_id: &str| {
        let mut b = base.clone();
        b["AccountId"] = json!(account_id);
        b
    };
    assert_eq!(
        org.post("/sobjects/Opportunity", with(&lead))
            .await
            .error_code(),
        "FIELD_INTEGRITY_EXCEPTION"
    );
    assert_eq!(
        org.post("/sobjects/Opportunity", with("nope"))
            .await
            .error_code(),
        "MALFORMED_ID"
    );
    let unknown = format!("{}zzzzzzzz", &account[..7]);
    assert_eq!(
        org.post("/sobjects/Opportunity", with(&unknown))
            .await
            .error_code(),
        "INVALID_CROSS_REFERENCE_KEY"
    );
    assert_eq!(
        org.post("/sobjects/Opportunity", with(&account))
            .await
            .status,
        StatusCode::CREATED
    );
    org.delete(&format!("/sobjects/Account/{account}")).await;
    assert_eq!(
        org.post("/sobjects/Opportunity", with(&account))
            .await
            .error_code(),
        "ENTITY_IS_DELETED"
    );
}

#[tokio::test]
async fn audit_fields_are_maintained_on_every_write() {
    let org = start().await;
    let id = org.create_lead("Audit").await;
    let created = org.get(&format!("/sobjects/Lead/{id}")).await.body;
    let me = org.integration_user_id();
    assert_eq!(created["CreatedById"], json!(me));
    assert_eq!(created["LastModifiedById"], json!(me));
    assert_eq!(created["OwnerId"], json!(me));
    assert_eq!(created["CreatedDate"], "2026-01-15T10:00:00.000+0000");
    assert_eq!(created["SystemModstamp"], "2026-01-15T10:00:00.000+0000");

    org.advance(90);
    org.patch(&format!("/sobjects/Lead/{id}"), json!({"Title": "CTO"}))
        .await;
    let updated = org.get(&format!("/sobjects/Lead/{id}")).await.body;
    assert_eq!(updated["CreatedDate"], created["CreatedDate"]);
    assert_eq!(updated["LastModifiedDate"], "2026-01-15T10:01:30.000+0000");
    assert_eq!(updated["SystemModstamp"], "2026-01-15T10:01:30.000+0000");

    // A seller edits the record in the UI (control API): the sync engine must see a human.
    org.advance(30);
    let r = org
        .send(
            Method::PATCH,
            &format!("/_emulator/salesforce/records/Lead/{id}"),
            Some(json!({"Title": "CEO"})),
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
    let edited = org.get(&format!("/sobjects/Lead/{id}")).await.body;
    assert_eq!(edited["Title"], "CEO");
    assert_eq!(edited["LastModifiedById"], json!(org.seller_user_id()));
    assert_eq!(edited["SystemModstamp"], "2026-01-15T10:02:00.000+0000");
    // The control API validates like the API does.
    let r = org
        .send(
            Method::PATCH,
            &format!("/_emulator/salesforce/records/Lead/{id}?as=refsync-integration@example.com"),
            Some(json!({"Status": "Nope"})),
            &[],
        )
        .await;
    assert_eq!(r.error_code(), "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST");
}

#[tokio::test]
async fn opportunity_stage_drives_closed_won_and_probability() {
    let org = start().await;
    let id = org
        .create("Opportunity", json!({"Name": "Deal", "StageName": "On Hold", "CloseDate": "2026-08-15", "Amount": 50000}))
        .await;
    let o = org.get(&format!("/sobjects/Opportunity/{id}")).await.body;
    assert_eq!(
        (o["IsClosed"].clone(), o["IsWon"].clone()),
        (json!(false), json!(false))
    );
    assert_eq!(o["Probability"], 10.0);
    assert_eq!(o["ExpectedRevenue"], 5000.0);
    assert_eq!(o["Amount"], 50000.0);
    assert_eq!(o["ForecastCategoryName"], "Pipeline");
    assert_eq!(o["FiscalQuarter"], 3);
    assert_eq!(o["FiscalYear"], 2026);

    org.patch(
        &format!("/sobjects/Opportunity/{id}"),
        json!({"StageName": "Closed Won"}),
    )
    .await;
    let o = org.get(&format!("/sobjects/Opportunity/{id}")).await.body;
    assert_eq!(
        (o["IsClosed"].clone(), o["IsWon"].clone()),
        (json!(true), json!(true))
    );
    assert_eq!(o["Probability"], 100.0);
    assert_eq!(o["ForecastCategory"], "Closed");

    org.patch(
        &format!("/sobjects/Opportunity/{id}"),
        json!({"StageName": "Closed Lost", "Probability": 5}),
    )
    .await;
    let o = org.get(&format!("/sobjects/Opportunity/{id}")).await.body;
    assert_eq!(
        (o["IsClosed"].clone(), o["IsWon"].clone()),
        (json!(true), json!(false))
    );
    assert_eq!(
        o["Probability"], 5.0,
        "an explicit probability wins over the stage default"
    );
    let r = org
        .patch(
            &format!("/sobjects/Opportunity/{id}"),
            json!({"IsWon": true}),
        )
        .await;
    assert_eq!(r.error_code(), "INVALID_FIELD_FOR_INSERT_UPDATE");
}

#[tokio::test]
async fn stages_and_statuses_are_queryable_tables() {
    let org = start().await;
    let r = org.get("/query?q=SELECT+ApiName,IsClosed,IsWon,DefaultProbability+FROM+OpportunityStage+WHERE+IsClosed+=+true").await;
    assert_eq!(r.body["totalSize"], 2);
    assert_eq!(r.body["records"][0]["ApiName"], "Closed Won");
    let r = org
        .get("/query?q=SELECT+ApiName+FROM+LeadStatus+WHERE+IsConverted+=+true")
        .await;
    assert_eq!(r.body["records"][0]["ApiName"], "Closed - Converted");
    let r = org
        .post("/sobjects/OpportunityStage", json!({"ApiName": "X"}))
        .await;
    assert_eq!(r.error_code(), "INVALID_TYPE_FOR_OPERATION");
}

#[tokio::test]
async fn multi_currency_adds_currency_iso_code() {
    let config = SalesforceConfig {
        multi_currency: Some(Default::default()),
        ..SalesforceConfig::default()
    };
    let org = start_with(config).await;
    let id = org
        .create(
            "Opportunity",
            json!({"Name": "D", "StageName": "Prospecting", "CloseDate": "2026-01-31"}),
        )
        .await;
    assert_eq!(
        org.get(&format!("/sobjects/Opportunity/{id}")).await.body["CurrencyIsoCode"],
        "USD"
    );
    let r = org
        .patch(
            &format!("/sobjects/Opportunity/{id}"),
            json!({"CurrencyIsoCode": "XXX"}),
        )
        .await;
    assert_eq!(r.error_code(), "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST");
    assert_eq!(
        org.patch(
            &format!("/sobjects/Opportunity/{id}"),
            json!({"CurrencyIsoCode": "EUR"})
        )
        .await
        .status,
        StatusCode::NO_CONTENT
    );
}

#[tokio::test]
async fn describe_reports_custom_fields_and_picklists() {
    let org = start().await;
    let d = org.get("/sobjects/Opportunity/describe").await.body;
    assert_eq!(d["name"], "Opportunity");
    assert_eq!(d["keyPrefix"], "006");
    let field = |name: &str| {
        d["fields"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == name)
            .unwrap()
            .clone()
    };
    let referral = field("Referral_Identifier__c");
    assert_eq!(
        (
            referral["externalId"].clone(),
            referral["unique"].clone(),
            referral["length"].clone()
        ),
        (json!(true), json!(true), json!(100))
    );
    assert_eq!(field("Audit__c")["length"], 100000);
    assert_eq!(
        field("How_can_Microsoft_help__c")["picklistValues"]
            .as_array()
            .unwrap()
            .len(),
        6
    );
    assert_eq!(field("AccountId")["relationshipName"], "Account");
    let global = org.get("/sobjects").await.body;
    assert!(
        global["sobjects"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["name"] == "Lead")
    );
    let info = org.get("/sobjects/Lead").await.body;
    assert_eq!(info["objectDescribe"]["keyPrefix"], "00Q");
}

#[tokio::test]
async fn wrong_methods_are_405() {
    let org = start().await;
    let id = org.create_lead("M").await;
    let r = org
        .send(
            Method::PUT,
            &format!("/sobjects/Lead/{id}"),
            Some(json!({})),
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.error_code(), "METHOD_NOT_ALLOWED");
}

#[tokio::test]
async fn a_seller_converts_a_lead_and_it_becomes_read_only() {
    let org = start().await;
    let r = org
        .patch(
            "/sobjects/Lead/Referral_Identifier__c/RF-CONVERT",
            json!({"FirstName": "Ada", "LastName": "Lovelace", "Company": "Contoso", "Status": "Working - Contacted", "PostalCode": "98052", "Email": "ada@contoso.com", "How_can_Microsoft_help__c": "Proof of concept or demo"}),
        )
        .await;
    let lead = r.body["id"].as_str().unwrap().to_owned();
    org.advance(60);
    let r = org
        .send(
            Method::POST,
            &format!("/_emulator/salesforce/leads/{lead}/convert"),
            None,
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let (account, contact, opp) = (
        r.body["accountId"].as_str().unwrap().to_owned(),
        r.body["contactId"].as_str().unwrap().to_owned(),
        r.body["opportunityId"].as_str().unwrap().to_owned(),
    );
    let seller = json!(org.seller_user_id());

    let l = org.get(&format!("/sobjects/Lead/{lead}")).await.body;
    assert_eq!(l["IsConverted"], true);
    assert_eq!(l["Status"], "Closed - Converted");
    assert_eq!(l["ConvertedDate"], "2026-01-15");
    assert_eq!(l["ConvertedOpportunityId"], json!(opp));
    assert_eq!(l["LastModifiedById"], seller);
    assert_eq!(l["SystemModstamp"], "2026-01-15T10:01:00.000+0000");

    let o = org.get(&format!("/sobjects/Opportunity/{opp}")).await.body;
    assert_eq!(o["Name"], "Contoso");
    assert_eq!(o["StageName"], "Prospecting");
    assert_eq!(o["CloseDate"], "2026-03-31");
    assert_eq!(o["AccountId"], json!(account));
    assert_eq!(o["ContactId"], json!(contact));
    assert_eq!(
        o["Referral_Identifier__c"], "RF-CONVERT",
        "custom fields map by API name"
    );
    assert_eq!(o["How_can_Microsoft_help__c"], "Proof of concept or demo");
    assert_eq!(o["CreatedById"], seller);
    let a = org.get(&format!("/sobjects/Account/{account}")).await.body;
    assert_eq!(
        (a["Name"].clone(), a["BillingPostalCode"].clone()),
        (json!("Contoso"), json!("98052"))
    );
    let c = org.get(&format!("/sobjects/Contact/{contact}")).await.body;
    assert_eq!(
        (c["Name"].clone(), c["Email"].clone()),
        (json!("Ada Lovelace"), json!("ada@contoso.com"))
    );

    let r = org
        .patch(&format!("/sobjects/Lead/{lead}"), json!({"Title": "x"}))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        r.body,
        json!([{"message": "cannot reference converted lead", "errorCode": "CANNOT_UPDATE_CONVERTED_LEAD"}])
    );
    let r = org
        .send(
            Method::POST,
            &format!("/_emulator/salesforce/leads/{lead}/convert"),
            None,
            &[],
        )
        .await;
    assert_eq!(r.error_code(), "CANNOT_UPDATE_CONVERTED_LEAD");

    // Converting into an existing account, without an opportunity.
    let other = org.create_lead("Babbage").await;
    let r = org
        .send(
            Method::POST,
            &format!("/_emulator/salesforce/leads/{other}/convert"),
            Some(json!({"account_id": account, "do_not_create_opportunity": true})),
            &[],
        )
        .await;
    assert_eq!(r.body["accountId"], json!(account));
    assert_eq!(r.body["opportunityId"], json!(null));
    let r = org
        .get("/query?q=SELECT+Id+FROM+Lead+WHERE+IsConverted+=+true")
        .await;
    assert_eq!(r.body["totalSize"], 2);
}
