//! Upsert by external id: every documented outcome (crm.md §2.3).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod salesforce_support;

use refsync_emulators::salesforce::config::{
    CustomFieldConfig, CustomFieldKind, SalesforceConfig, UpsertUpdateStatus,
};
use reqwest::{Method, StatusCode};
use salesforce_support::{V, start, start_with};
use serde_json::json;

fn lead() -> serde_json::Value {
    json!({"LastName": "Doe", "Company": "Contoso", "Status": "Open - Not Contacted"})
}

#[tokio::test]
async fn creates_with_201_then_updates_with_200() {
    let org = start().await;
    let path = "/sobjects/Lead/Referral_Identifier__c/5e1f0a4c-6a7b-4a8e-9c3d-1b2a3c4d5e6f";
    let created = org.patch(path, lead()).await;
    assert_eq!(created.status, StatusCode::CREATED);
    let id = created.body["id"].as_str().unwrap().to_owned();
    assert_eq!(
        created.body,
        json!({"id": id, "success": true, "errors": [], "created": true})
    );
    assert_eq!(
        created.header("location"),
        Some(format!("/services/data/{V}/sobjects/Lead/{id}").as_str())
    );
    let record = org.get(&format!("/sobjects/Lead/{id}")).await.body;
    assert_eq!(
        record["Referral_Identifier__c"], "5e1f0a4c-6a7b-4a8e-9c3d-1b2a3c4d5e6f",
        "the key is stored"
    );

    let updated = org.patch(path, json!({"Company": "Fabrikam"})).await;
    assert_eq!(updated.status, StatusCode::OK);
    assert_eq!(
        updated.body,
        json!({"id": id, "success": true, "errors": [], "created": false})
    );
    assert_eq!(
        org.get(&format!("/sobjects/Lead/{id}")).await.body["Company"],
        "Fabrikam"
    );
    // Matching ignores case, like an External ID that is not case-sensitive.
    let upper = org
        .patch(
            &path.to_uppercase().replace(
                "/SOBJECTS/LEAD/REFERRAL_IDENTIFIER__C",
                "/sobjects/Lead/Referral_Identifier__c",
            ),
            json!({"Title": "CTO"}),
        )
        .await;
    assert_eq!(upper.body["id"], json!(id));
    // Lookup and delete by external id.
    let got = org.get(path).await;
    assert_eq!(got.body["Id"], json!(id));
    assert_eq!(org.delete(path).await.status, StatusCode::NO_CONTENT);
    assert_eq!(org.get(path).await.status, StatusCode::NOT_FOUND);
    let again = org.patch(path, lead()).await;
    assert_eq!(
        again.status,
        StatusCode::CREATED,
        "deleted records no longer match"
    );
    assert_ne!(again.body["id"], json!(id));
}

#[tokio::test]
async fn update_can_answer_204_when_configured() {
    let config = SalesforceConfig {
        upsert_update_status: UpsertUpdateStatus::NoContent204,
        ..SalesforceConfig::default()
    };
    let org = start_with(config).await;
    let path = "/sobjects/Opportunity/Referral_Identifier__c/RF-204";
    let body = json!({"Name": "Deal", "StageName": "Prospecting", "CloseDate": "2026-03-31"});
    assert_eq!(
        org.patch(path, body.clone()).await.status,
        StatusCode::CREATED
    );
    let r = org.patch(path, json!({"Amount": 10})).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(r.body, json!(null));
}

#[tokio::test]
async fn several_matches_answer_300_with_the_records_and_change_nothing() {
    let mut config = SalesforceConfig::default();
    let mut shared_key = CustomFieldConfig {
        object: "Account".to_owned(),
        api_name: "Legacy_Key__c".to_owned(),
        label: "Legacy Key".to_owned(),
        kind: CustomFieldKind::Text,
        length: Some(40),
        precision: None,
        scale: None,
        values: Vec::new(),
        restricted: true,
        external_id: true,
        unique: false,
        case_sensitive: false,
        required: false,
        default_checked: false,
    };
    config.custom_fields.push(shared_key.clone());
    shared_key.api_name = "Plain__c".to_owned();
    shared_key.external_id = false;
    config.custom_fields.push(shared_key);
    let org = start_with(config).await;
    let a = org
        .create("Account", json!({"Name": "A", "Legacy_Key__c": "K1"}))
        .await;
    let b = org
        .create("Account", json!({"Name": "B", "Legacy_Key__c": "K1"}))
        .await;
    let r = org
        .patch("/sobjects/Account/Legacy_Key__c/K1", json!({"Name": "C"}))
        .await;
    assert_eq!(r.status, StatusCode::MULTIPLE_CHOICES);
    assert_eq!(
        r.body,
        json!([
            format!("/services/data/{V}/sobjects/Account/{a}"),
            format!("/services/data/{V}/sobjects/Account/{b}")
        ])
    );
    assert_eq!(
        org.get(&format!("/sobjects/Account/{a}")).await.body["Name"],
        "A"
    );
    // A field that exists but is not an External ID cannot key an upsert.
    let r = org
        .patch("/sobjects/Account/Plain__c/K1", json!({"Name": "C"}))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(
        r.body,
        json!([{"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}])
    );
}

#[tokio::test]
async fn unknown_fields_update_only_and_keys_in_the_body() {
    let org = start().await;
    let r = org.patch("/sobjects/Lead/NoSuchField__c/X", lead()).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.error_code(), "NOT_FOUND");
    let r = org.patch("/sobjects/Lead/LastName/Doe", lead()).await;
    assert_eq!(
        r.status,
        StatusCode::NOT_FOUND,
        "LastName is not an External ID"
    );

    let r = org
        .send(
            Method::PATCH,
            "/sobjects/Lead/Referral_Identifier__c/RF-missing?updateOnly=true",
            Some(lead()),
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(
        org.get("/query?q=SELECT+COUNT()+FROM+Lead").await.body["totalSize"],
        0,
        "nothing was created"
    );
    assert_eq!(
        org.patch("/sobjects/Lead/Referral_Identifier__c/RF-1", lead())
            .await
            .status,
        StatusCode::CREATED
    );
    let r = org
        .send(
            Method::PATCH,
            "/sobjects/Lead/Referral_Identifier__c/RF-1?updateOnly=true",
            Some(json!({"Title": "X"})),
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);

    let mut with_key = lead();
    with_key["Referral_Identifier__c"] = json!("RF-2");
    let r = org
        .patch("/sobjects/Lead/Referral_Identifier__c/RF-2", with_key)
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.error_code(), "INVALID_FIELD");
    let mut with_id = lead();
    with_id["Id"] = json!("00Q5g0000000001");
    let r = org
        .patch("/sobjects/Lead/Referral_Identifier__c/RF-2", with_id)
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        r.body[0]["message"],
        "The Id field should not be specified in the sobject data."
    );
    let r = org
        .patch(
            "/sobjects/Lead/Referral_Identifier__c/RF-3",
            json!({"LastName": "Only"}),
        )
        .await;
    assert_eq!(
        r.error_code(),
        "REQUIRED_FIELD_MISSING",
        "a create still needs the required fields"
    );
}

#[tokio::test]
async fn external_ids_with_slashes_travel_percent_encoded() {
    let org = start().await;
    let r = org
        .patch("/sobjects/Lead/Referral_Identifier__c/A%2FB%20C", lead())
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let id = r.body["id"].as_str().unwrap();
    assert_eq!(
        org.get(&format!("/sobjects/Lead/{id}")).await.body["Referral_Identifier__c"],
        "A/B C"
    );
}

#[tokio::test]
async fn upsert_on_id_and_post_to_id_creates() {
    let org = start().await;
    let r = org.post("/sobjects/Lead/Id", lead()).await;
    assert_eq!(r.status, StatusCode::CREATED);
    let id = r.body["id"].as_str().unwrap().to_owned();
    let r = org
        .patch(&format!("/sobjects/Lead/Id/{id}"), json!({"Title": "VP"}))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["created"], false);
    assert_eq!(
        org.get(&format!("/sobjects/Lead/{id}")).await.body["Title"],
        "VP"
    );
}

#[tokio::test]
async fn a_duplicate_unique_value_through_a_plain_update_is_refused() {
    let org = start().await;
    org.patch("/sobjects/Lead/Referral_Identifier__c/RF-A", lead())
        .await;
    let other = org.create_lead("Other").await;
    let r = org
        .patch(
            &format!("/sobjects/Lead/{other}"),
            json!({"Referral_Identifier__c": "rf-a"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.error_code(), "DUPLICATE_VALUE");
    assert!(r.body[0]["message"].as_str().unwrap().starts_with(
        "duplicate value found: Referral_Identifier__c duplicates value on record with id: 00Q"
    ));
}
