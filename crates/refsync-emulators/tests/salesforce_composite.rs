//! `/composite` and sObject Collections, including allOrNone rollback.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod salesforce_support;

use reqwest::{Method, StatusCode};
use salesforce_support::{Org, V, start};
use serde_json::{Value, json};

async fn count(org: &Org, object: &str) -> u64 {
    org.get(&format!("/query?q=SELECT+COUNT()+FROM+{object}"))
        .await
        .body["totalSize"]
        .as_u64()
        .unwrap()
}

#[tokio::test]
async fn composite_chains_references_and_always_answers_200() {
    let org = start().await;
    let body = json!({
        "allOrNone": false,
        "compositeRequest": [
            {"method": "POST", "url": format!("/services/data/{V}/sobjects/Account"), "referenceId": "refAccount", "body": {"Name": "Sample Account"}},
            {"method": "POST", "url": format!("/services/data/{V}/sobjects/Contact"), "referenceId": "refContact", "body": {"LastName": "Sample", "AccountId": "@{refAccount.id}"}},
            {"method": "GET", "url": format!("/services/data/{V}/sobjects/Account/@{{refAccount.id}}?fields=Name"), "referenceId": "refRead"},
            {"method": "GET", "url": format!("/services/data/{V}/query?q=SELECT+Id,AccountId+FROM+Contact"), "referenceId": "refQuery"},
            {"method": "PATCH", "url": format!("/services/data/{V}/sobjects/Account/@{{refQuery.records[0].AccountId}}"), "referenceId": "refUpdate", "body": {"Name": "Renamed"}},
            {"method": "POST", "url": format!("/services/data/{V}/sobjects/Lead"), "referenceId": "refBad", "body": {"LastName": "No company"}},
            {"method": "PATCH", "url": format!("/services/data/{V}/sobjects/Lead/@{{refBad.id}}"), "referenceId": "refDependent", "body": {"Title": "x"}},
        ]
    });
    let r = org.post("/composite", body).await;
    assert_eq!(r.status, StatusCode::OK);
    let results = r.body["compositeResponse"].as_array().unwrap();
    assert_eq!(results.len(), 7);
    let account = results[0]["body"]["id"].as_str().unwrap().to_owned();
    assert_eq!(results[0]["httpStatusCode"], 201);
    assert_eq!(results[0]["referenceId"], "refAccount");
    assert_eq!(
        results[0]["httpHeaders"],
        json!({"Location": format!("/services/data/{V}/sobjects/Account/{account}")})
    );
    assert_eq!(results[1]["httpStatusCode"], 201);
    assert_eq!(results[2]["body"]["Name"], "Sample Account");
    assert_eq!(
        results[3]["body"]["records"][0]["AccountId"],
        json!(account)
    );
    assert_eq!(results[4]["httpStatusCode"], 204);
    assert_eq!(results[4]["body"], json!(null));
    assert_eq!(results[5]["httpStatusCode"], 400);
    assert_eq!(results[5]["body"][0]["errorCode"], "REQUIRED_FIELD_MISSING");
    assert_eq!(results[6]["httpStatusCode"], 400);
    assert_eq!(results[6]["body"][0]["errorCode"], "PROCESSING_HALTED");
    assert_eq!(
        org.get(&format!("/sobjects/Account/{account}")).await.body["Name"],
        "Renamed"
    );
    assert_eq!(
        org.emulator.api_usage().0,
        2,
        "the 7-subrequest composite counted once, the read after it once"
    );
}

#[tokio::test]
async fn composite_all_or_none_rolls_everything_back() {
    let org = start().await;
    let existing = org.create("Account", json!({"Name": "Before"})).await;
    let body = json!({
        "allOrNone": true,
        "compositeRequest": [
            {"method": "POST", "url": format!("/services/data/{V}/sobjects/Account"), "referenceId": "a", "body": {"Name": "New"}},
            {"method": "PATCH", "url": format!("/services/data/{V}/sobjects/Account/{existing}"), "referenceId": "b", "body": {"Name": "After"}},
            {"method": "POST", "url": format!("/services/data/{V}/sobjects/Opportunity"), "referenceId": "c", "body": {"Name": "No stage"}},
            {"method": "POST", "url": format!("/services/data/{V}/sobjects/Account"), "referenceId": "d", "body": {"Name": "Never"}},
        ]
    });
    let r = org.post("/composite", body).await;
    assert_eq!(r.status, StatusCode::OK);
    let results = r.body["compositeResponse"].as_array().unwrap();
    let codes: Vec<&str> = results
        .iter()
        .map(|x| x["body"][0]["errorCode"].as_str().unwrap())
        .collect();
    assert_eq!(
        codes,
        [
            "PROCESSING_HALTED",
            "PROCESSING_HALTED",
            "REQUIRED_FIELD_MISSING",
            "PROCESSING_HALTED"
        ]
    );
    assert!(results.iter().all(|x| x["httpStatusCode"] == 400));
    assert_eq!(
        results[0]["body"][0]["message"],
        "The transaction was rolled back since another operation in the same transaction failed."
    );
    assert_eq!(count(&org, "Account").await, 1);
    assert_eq!(
        org.get(&format!("/sobjects/Account/{existing}")).await.body["Name"],
        "Before"
    );
}

#[tokio::test]
async fn composite_refuses_too_many_subrequests_and_nesting() {
    let org = start().await;
    let subs: Vec<Value> = (0..26)
        .map(|i| json!({"method": "GET", "url": format!("/services/data/{V}/limits"), "referenceId": format!("r{i}")}))
        .collect();
    let r = org
        .post("/composite", json!({"compositeRequest": subs}))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let nested = json!({"compositeRequest": [{"method": "POST", "url": format!("/services/data/{V}/composite"), "referenceId": "n", "body": {"compositeRequest": []}}]});
    let r = org.post("/composite", nested).await;
    assert_eq!(r.body["compositeResponse"][0]["httpStatusCode"], 400);
    let dup = json!({"compositeRequest": [
        {"method": "GET", "url": format!("/services/data/{V}/limits"), "referenceId": "same"},
        {"method": "GET", "url": format!("/services/data/{V}/limits"), "referenceId": "same"}]});
    assert_eq!(
        org.post("/composite", dup).await.status,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn collections_create_mixed_types_in_order() {
    let org = start().await;
    let r = org
        .post(
            "/composite/sobjects",
            json!({"allOrNone": false, "records": [
                {"attributes": {"type": "Account"}, "Name": "A1"},
                {"attributes": {"type": "Lead"}, "LastName": "L", "Company": "C", "Status": "Open - Not Contacted"},
                {"attributes": {"type": "Lead"}, "LastName": "L2"},
                {"attributes": {"type": "Contact"}, "LastName": "C1"},
                {"attributes": {"type": "Account"}, "Id": "001000000000001", "Name": "With id"},
            ]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let results = r.body.as_array().unwrap();
    assert_eq!(results.len(), 5);
    assert!(results[0]["id"].as_str().unwrap().starts_with("001"));
    assert!(results[1]["id"].as_str().unwrap().starts_with("00Q"));
    assert_eq!(
        results[1],
        json!({"id": results[1]["id"], "success": true, "errors": []})
    );
    assert_eq!(
        results[2],
        json!({"success": false, "errors": [{"statusCode": "REQUIRED_FIELD_MISSING", "message": "Required fields are missing: [Company, Status]", "fields": ["Company", "Status"]}]})
    );
    assert!(results[3]["id"].as_str().unwrap().starts_with("003"));
    assert_eq!(results[4]["errors"][0]["statusCode"], "INVALID_FIELD");
    assert!(
        results[4]["errors"][0].get("errorCode").is_none(),
        "collections use statusCode"
    );
    assert_eq!(count(&org, "Account").await, 1);
}

#[tokio::test]
async fn collections_all_or_none_rolls_back_with_the_documented_code() {
    let org = start().await;
    let keep = org.create("Account", json!({"Name": "Keep"})).await;
    let r = org
        .send(
            Method::PATCH,
            "/composite/sobjects",
            Some(json!({"allOrNone": true, "records": [
                {"attributes": {"type": "Account"}, "id": keep, "Name": "Changed"},
                {"attributes": {"type": "Account"}, "id": "bogus", "Name": "X"},
            ]})),
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.body,
        json!([
            {"id": keep, "success": false, "errors": [{"statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK", "message": "Record rolled back because not all records were valid and the request was using AllOrNone header", "fields": []}]},
            {"success": false, "errors": [{"statusCode": "MALFORMED_ID", "message": "malformed id bogus", "fields": ["Id"]}]},
        ])
    );
    assert_eq!(
        org.get(&format!("/sobjects/Account/{keep}")).await.body["Name"],
        "Keep"
    );

    let r = org
        .post(
            "/composite/sobjects",
            json!({"allOrNone": true, "records": [
                {"attributes": {"type": "Account"}, "Name": "Good"},
                {"attributes": {"type": "Account"}},
            ]}),
        )
        .await;
    assert_eq!(
        r.body[0]["errors"][0]["statusCode"],
        "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    );
    assert!(
        r.body[0].get("id").is_none(),
        "a rolled-back create has no id"
    );
    assert_eq!(count(&org, "Account").await, 1);
}

#[tokio::test]
async fn collections_update_upsert_retrieve_and_delete() {
    let org = start().await;
    let a = org.create("Account", json!({"Name": "A"})).await;
    let r = org
        .send(
            Method::PATCH,
            "/composite/sobjects",
            Some(json!({"records": [
                {"attributes": {"type": "Account"}, "id": a, "Name": "A2"},
                {"attributes": {"type": "Account"}, "Name": "no id"},
                {"attributes": {"type": "Account"}, "id": format!("{}zzzzzzzz", &a[..7]), "Name": "ghost"},
            ]})),
            &[],
        )
        .await;
    assert_eq!(r.body[0], json!({"id": a, "success": true, "errors": []}));
    assert_eq!(r.body[1]["errors"][0]["statusCode"], "MISSING_ARGUMENT");
    assert_eq!(
        r.body[2]["errors"][0]["statusCode"],
        "INVALID_CROSS_REFERENCE_KEY"
    );

    let upsert = |records: Value| {
        org.send(
            Method::PATCH,
            "/composite/sobjects/Lead/Referral_Identifier__c",
            Some(json!({"records": records})),
            &[],
        )
    };
    let r = upsert(json!([
        {"attributes": {"type": "Lead"}, "Referral_Identifier__c": "RF-1", "LastName": "One", "Company": "C", "Status": "Open - Not Contacted"},
        {"attributes": {"type": "Lead"}, "Referral_Identifier__c": "RF-2", "LastName": "Two", "Company": "C", "Status": "Open - Not Contacted"},
    ]))
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(
        (r.body[0]["created"].clone(), r.body[1]["created"].clone()),
        (json!(true), json!(true))
    );
    let one = r.body[0]["id"].as_str().unwrap().to_owned();
    let r = upsert(json!([
        {"attributes": {"type": "Lead"}, "Referral_Identifier__c": "RF-1", "Title": "Updated"},
        {"attributes": {"type": "Lead"}, "Referral_Identifier__c": "RF-3", "LastName": "Three", "Company": "C", "Status": "Open - Not Contacted"},
        {"attributes": {"type": "Lead"}, "LastName": "No key"},
    ]))
    .await;
    assert_eq!(
        r.body[0],
        json!({"id": one, "success": true, "errors": [], "created": false})
    );
    assert_eq!(r.body[1]["created"], true);
    assert_eq!(r.body[2]["success"], false);
    assert_eq!(r.body[2]["created"], false);

    let two = org
        .get("/sobjects/Lead/Referral_Identifier__c/RF-2")
        .await
        .body["Id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = org
        .get(&format!(
            "/composite/sobjects/Lead?ids={one},{two},00Q5g0000009999&fields=LastName,Title"
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body[0]["Title"], "Updated");
    assert_eq!(r.body[0]["Id"], json!(one));
    assert_eq!(r.body[1]["LastName"], "Two");
    assert_eq!(r.body[2], json!(null));
    let r = org
        .post(
            "/composite/sobjects/Lead",
            json!({"ids": [one], "fields": ["LastName"]}),
        )
        .await;
    assert_eq!(r.body[0]["LastName"], "One");

    let r = org
        .delete(&format!(
            "/composite/sobjects?ids={one},{two}&allOrNone=false"
        ))
        .await;
    assert_eq!(
        r.body,
        json!([{"id": one, "success": true, "errors": []}, {"id": two, "success": true, "errors": []}])
    );
    assert_eq!(count(&org, "Lead").await, 1);
}

#[tokio::test]
async fn collections_cap_the_record_count() {
    let org = start().await;
    let records: Vec<Value> = (0..201)
        .map(|i| json!({"attributes": {"type": "Account"}, "Name": format!("A{i}")}))
        .collect();
    let r = org
        .post("/composite/sobjects", json!({"records": records}))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.error_code(), "EXCEEDED_ID_LIMIT");
    assert_eq!(count(&org, "Account").await, 0);
}

#[tokio::test]
async fn a_collection_inside_an_all_or_none_composite_is_rolled_back_with_it() {
    let org = start().await;
    let body = json!({"allOrNone": true, "compositeRequest": [
        {"method": "POST", "url": format!("/services/data/{V}/composite/sobjects"), "referenceId": "batch",
         "body": {"records": [{"attributes": {"type": "Account"}, "Name": "In batch"}]}},
        {"method": "DELETE", "url": format!("/services/data/{V}/sobjects/Account/001000000000001"), "referenceId": "fail"},
    ]});
    let r = org.post("/composite", body).await;
    assert_eq!(r.body["compositeResponse"][1]["httpStatusCode"], 404);
    assert_eq!(count(&org, "Account").await, 0);
}
