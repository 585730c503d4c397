//! SOQL over HTTP: filters, ordering, relationship fields, errors and paging.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod salesforce_support;

use refsync_emulators::salesforce::config::SalesforceConfig;
use reqwest::{Method, StatusCode};
use salesforce_support::{Org, Reply, V, start, start_with};
use serde_json::{Value, json};

async fn q(org: &Org, soql: &str) -> Reply {
    let url = reqwest::Url::parse_with_params(
        &org.url(&format!("/services/data/{V}/query")),
        &[("q", soql)],
    )
    .unwrap();
    org.get(&format!("{}?{}", url.path(), url.query().unwrap()))
        .await
}

fn names(r: &Reply, field: &str) -> Vec<String> {
    r.body["records"]
        .as_array()
        .unwrap_or_else(|| panic!("{:?}", r.body))
        .iter()
        .map(|rec| rec[field].as_str().unwrap_or("<null>").to_owned())
        .collect()
}

async fn seed(org: &Org) {
    let leads = [
        json!({"LastName": "Adams", "Company": "Contoso", "Status": "Open - Not Contacted", "AnnualRevenue": 100, "Email": "adams@contoso.com"}),
        json!({"LastName": "baker", "Company": "Fabrikam", "Status": "Working - Contacted", "AnnualRevenue": 5000}),
        json!({"LastName": "O'Brien", "Company": "Contoso Ltd", "Status": "Working - Contacted", "Rating": "Hot"}),
        json!({"LastName": "Chen", "Company": "Northwind", "Status": "Closed - Not Converted", "AnnualRevenue": 300, "Sync_with_Partner_Center__c": true}),
    ];
    for lead in leads {
        org.create("Lead", lead).await;
        org.advance(60);
    }
}

#[tokio::test]
async fn filters_cover_the_operators_clients_use() {
    let org = start().await;
    seed(&org).await;
    let cases: [(&str, &[&str]); 16] = [
        (
            "SELECT LastName FROM Lead WHERE Company = 'contoso'",
            &["Adams"],
        ),
        (
            "SELECT LastName FROM Lead WHERE Company != 'Contoso'",
            &["baker", "O'Brien", "Chen"],
        ),
        (
            "SELECT LastName FROM Lead WHERE Company LIKE 'Contoso%'",
            &["Adams", "O'Brien"],
        ),
        (
            "SELECT LastName FROM Lead WHERE LastName = 'O\\'Brien'",
            &["O'Brien"],
        ),
        (
            "SELECT LastName FROM Lead WHERE AnnualRevenue > 200",
            &["baker", "Chen"],
        ),
        (
            "SELECT LastName FROM Lead WHERE AnnualRevenue <= 300",
            &["Adams", "Chen"],
        ),
        (
            "SELECT LastName FROM Lead WHERE AnnualRevenue = null",
            &["O'Brien"],
        ),
        ("SELECT LastName FROM Lead WHERE Email != null", &["Adams"]),
        (
            "SELECT LastName FROM Lead WHERE Status IN ('Working - Contacted', 'Closed - Not Converted')",
            &["baker", "O'Brien", "Chen"],
        ),
        (
            "SELECT LastName FROM Lead WHERE Status NOT IN ('Working - Contacted')",
            &["Adams", "Chen"],
        ),
        (
            "SELECT LastName FROM Lead WHERE Rating != 'Hot'",
            &["Adams", "baker", "Chen"],
        ),
        (
            "SELECT LastName FROM Lead WHERE (Company LIKE 'Con%' OR AnnualRevenue > 1000) AND NOT Rating = 'Hot'",
            &["Adams", "baker"],
        ),
        (
            "SELECT LastName FROM Lead WHERE Sync_with_Partner_Center__c = true",
            &["Chen"],
        ),
        (
            "SELECT LastName FROM Lead WHERE CreatedDate > 2026-01-15T10:01:30Z",
            &["O'Brien", "Chen"],
        ),
        (
            "SELECT LastName FROM Lead WHERE SystemModstamp >= 2026-01-15T11:01:00+01:00",
            &["baker", "O'Brien", "Chen"],
        ),
        (
            "SELECT LastName FROM Lead WHERE CreatedDate = TODAY AND CreatedDate = LAST_N_DAYS:1",
            &["Adams", "baker", "O'Brien", "Chen"],
        ),
    ];
    for (soql, expected) in cases {
        let r = q(&org, soql).await;
        assert_eq!(r.status, StatusCode::OK, "{soql}: {:?}", r.body);
        assert_eq!(names(&r, "LastName"), expected, "{soql}");
        assert_eq!(r.body["totalSize"], expected.len(), "{soql}");
        assert_eq!(r.body["done"], true);
    }
    assert_eq!(
        q(&org, "SELECT Id FROM Lead WHERE CreatedDate = YESTERDAY")
            .await
            .body["totalSize"],
        0
    );
}

#[tokio::test]
async fn records_have_attributes_and_canonical_field_names() {
    let org = start().await;
    seed(&org).await;
    let r = q(
        &org,
        "select id, lastname, COMPANY from LEAD where lastname = 'Adams'",
    )
    .await;
    let rec = &r.body["records"][0];
    let id = rec["Id"].as_str().unwrap();
    assert_eq!(
        rec["attributes"],
        json!({"type": "Lead", "url": format!("/services/data/{V}/sobjects/Lead/{id}")})
    );
    let keys: Vec<&String> = rec.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["attributes", "Id", "LastName", "Company"]);
    assert_eq!(
        r.body.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["totalSize", "done", "records"]
    );
}

#[tokio::test]
async fn ordering_limit_offset_and_count() {
    let org = start().await;
    seed(&org).await;
    let r = q(&org, "SELECT LastName FROM Lead ORDER BY LastName").await;
    assert_eq!(
        names(&r, "LastName"),
        ["Adams", "baker", "Chen", "O'Brien"],
        "case-insensitive order"
    );
    let r = q(
        &org,
        "SELECT LastName FROM Lead ORDER BY AnnualRevenue DESC",
    )
    .await;
    assert_eq!(
        names(&r, "LastName"),
        ["baker", "Chen", "Adams", "O'Brien"],
        "nulls last when descending"
    );
    let r = q(&org, "SELECT LastName FROM Lead ORDER BY AnnualRevenue ASC").await;
    assert_eq!(
        names(&r, "LastName")[0],
        "O'Brien",
        "nulls first when ascending"
    );
    let r = q(&org, "SELECT LastName FROM Lead ORDER BY AnnualRevenue ASC NULLS LAST, LastName DESC LIMIT 2 OFFSET 1").await;
    assert_eq!(names(&r, "LastName"), ["Chen", "baker"]);
    let r = q(
        &org,
        "SELECT COUNT() FROM Lead WHERE Status = 'Working - Contacted'",
    )
    .await;
    assert_eq!(r.body, json!({"totalSize": 2, "done": true, "records": []}));
    let r = q(&org, "SELECT Id FROM Lead OFFSET 2001").await;
    assert_eq!(r.error_code(), "NUMBER_OUTSIDE_VALID_RANGE");
}

#[tokio::test]
async fn relationship_fields_nest_the_parent() {
    let org = start().await;
    let account = org
        .create(
            "Account",
            json!({"Name": "Contoso", "BillingPostalCode": "98052"}),
        )
        .await;
    org.create("Opportunity", json!({"Name": "With", "StageName": "Prospecting", "CloseDate": "2026-02-01", "AccountId": account})).await;
    org.create(
        "Opportunity",
        json!({"Name": "Without", "StageName": "Prospecting", "CloseDate": "2026-02-01"}),
    )
    .await;
    let r = q(&org, "SELECT Name, Account.Name, Account.BillingPostalCode, Owner.Username FROM Opportunity WHERE Account.Name LIKE 'Cont%' OR Name = 'Without' ORDER BY Name").await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let with = &r.body["records"][0];
    assert_eq!(
        with["Account"],
        json!({"attributes": {"type": "Account", "url": format!("/services/data/{V}/sobjects/Account/{account}")}, "Name": "Contoso", "BillingPostalCode": "98052"})
    );
    assert_eq!(with["Owner"]["Username"], "refsync-integration@example.com");
    assert_eq!(r.body["records"][1]["Account"], json!(null));
}

#[tokio::test]
async fn errors_name_the_problem_like_salesforce() {
    let org = start().await;
    let cases = [
        (
            "SELECT Id FROM Lead WHERE",
            "MALFORMED_QUERY",
            "unexpected token: <EOF>",
        ),
        (
            "SELECT Id FROM Lead WHERE A__c = 1 AND B__c = 2 OR C__c = 3",
            "MALFORMED_QUERY",
            "unexpected token: OR",
        ),
        (
            "SELECT Foo FROM Lead",
            "INVALID_FIELD",
            "No such column 'Foo' on entity 'Lead'",
        ),
        (
            "SELECT Id FROM Widget",
            "INVALID_TYPE",
            "sObject type 'Widget' is not supported",
        ),
        (
            "SELECT Id FROM Lead WHERE CreatedDate > '2026-01-01T00:00:00Z'",
            "INVALID_FIELD",
            "must be of type dateTime and should not be enclosed in quotes",
        ),
        (
            "SELECT Id FROM Lead WHERE CreatedDate > 2026-01-01",
            "INVALID_FIELD",
            "must be of type dateTime",
        ),
        (
            "SELECT Id FROM Lead WHERE LastName = 5",
            "INVALID_FIELD",
            "must be of type string and should be enclosed in quotes",
        ),
        (
            "SELECT Id FROM Lead WHERE Id = 'abc'",
            "INVALID_QUERY_FILTER_OPERATOR",
            "invalid ID field: abc",
        ),
        (
            "SELECT Id FROM Lead GROUP BY Status",
            "MALFORMED_QUERY",
            "not supported by the refsync Salesforce emulator",
        ),
        (
            "SELECT Bogus.Name FROM Opportunity",
            "INVALID_FIELD",
            "Didn't understand relationship 'Bogus'",
        ),
        (
            "SELECT Id, Id FROM Lead",
            "MALFORMED_QUERY",
            "duplicate field selected: Id",
        ),
    ];
    for (soql, code, fragment) in cases {
        let r = q(&org, soql).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{soql}");
        assert_eq!(r.error_code(), code, "{soql}: {:?}", r.body);
        let message = r.body[0]["message"].as_str().unwrap();
        assert!(message.contains(fragment), "{soql}: {message}");
    }
    let r = q(&org, "SELECT Id FROM Lead WHERE").await;
    assert!(
        r.body[0]["message"]
            .as_str()
            .unwrap()
            .contains("ERROR at Row:1:Column:26")
    );
    let r = org.get("/query").await;
    assert_eq!(r.error_code(), "MALFORMED_QUERY");
}

#[tokio::test]
async fn pages_through_many_records_with_next_records_url() {
    let mut config = SalesforceConfig::default();
    config.query.default_batch_size = 7;
    config.query.min_batch_size = 3;
    let org = start_with(config).await;
    let batch: Vec<Value> = (0..50)
        .map(|i| json!({"attributes": {"type": "Account"}, "Name": format!("Account {i:02}")}))
        .collect();
    let r = org
        .post("/composite/sobjects", json!({"records": batch}))
        .await;
    assert_eq!(r.status, StatusCode::OK);

    let mut seen = Vec::new();
    let mut r = q(&org, "SELECT Name FROM Account ORDER BY Name").await;
    let mut pages = 1;
    loop {
        assert_eq!(r.body["totalSize"], 50);
        seen.extend(names(&r, "Name"));
        if r.body["done"] == true {
            assert!(r.body.get("nextRecordsUrl").is_none());
            break;
        }
        let next = r.body["nextRecordsUrl"].as_str().unwrap().to_owned();
        assert!(
            next.starts_with(&format!("/services/data/{V}/query/01g")),
            "{next}"
        );
        assert!(next.ends_with(&format!("-{}", pages * 7)), "{next}");
        r = org.get(&next).await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        pages += 1;
        assert!(pages < 20);
    }
    assert_eq!(pages, 8);
    let expected: Vec<String> = (0..50).map(|i| format!("Account {i:02}")).collect();
    assert_eq!(seen, expected);

    // batchSize is honoured within the configured bounds.
    let r = org
        .send(
            Method::GET,
            "/query?q=SELECT+Id+FROM+Account",
            None,
            &[("Sforce-Query-Options", "batchSize=20")],
        )
        .await;
    assert_eq!(r.body["records"].as_array().unwrap().len(), 20);
    let next = r.body["nextRecordsUrl"].as_str().unwrap().to_owned();
    let page = org.get(&next).await;
    assert_eq!(page.body["records"].as_array().unwrap().len(), 20);
    let again = org.get(&next).await;
    assert_eq!(
        again.body, page.body,
        "a page can be fetched again (client retry)"
    );
    let r = org
        .send(
            Method::GET,
            "/query?q=SELECT+Id+FROM+Account",
            None,
            &[("Sforce-Query-Options", "batchSize=1")],
        )
        .await;
    assert_eq!(
        r.body["records"].as_array().unwrap().len(),
        3,
        "raised to the minimum"
    );

    let r = org.get("/query/01g5g0000000zzzAAA-7").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.error_code(), "INVALID_QUERY_LOCATOR");
}

#[tokio::test]
async fn query_locators_expire_when_idle() {
    let mut config = SalesforceConfig::default();
    config.query.default_batch_size = 2;
    config.query.min_batch_size = 1;
    let org = start_with(config).await;
    for i in 0..5 {
        org.create("Account", json!({"Name": format!("A{i}")}))
            .await;
    }
    let r = q(&org, "SELECT Id FROM Account").await;
    let next = r.body["nextRecordsUrl"].as_str().unwrap().to_owned();
    org.advance(901);
    assert_eq!(org.get(&next).await.error_code(), "INVALID_QUERY_LOCATOR");
}

#[tokio::test]
async fn query_all_includes_deleted_records() {
    let org = start().await;
    let keep = org.create_lead("Keep").await;
    let gone = org.create_lead("Gone").await;
    org.delete(&format!("/sobjects/Lead/{gone}")).await;
    let r = q(&org, "SELECT Id FROM Lead").await;
    assert_eq!(r.body["totalSize"], 1);
    assert_eq!(r.body["records"][0]["Id"], json!(keep));
    let r = org
        .get("/queryAll/?q=SELECT+Id,IsDeleted+FROM+Lead+WHERE+IsDeleted+=+true")
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["totalSize"], 1);
    assert_eq!(r.body["records"][0]["Id"], json!(gone));
    assert_eq!(r.body["records"][0]["IsDeleted"], true);
}

#[tokio::test]
async fn polling_by_system_modstamp_sees_every_change_once() {
    let org = start().await;
    let a = org.create_lead("A").await;
    org.advance(5);
    let watermark = "2026-01-15T10:00:00.000Z";
    let b = org.create_lead("B").await;
    org.advance(5);
    org.patch(&format!("/sobjects/Lead/{a}"), json!({"Title": "changed"}))
        .await;
    let r = q(&org, &format!("SELECT Id, SystemModstamp FROM Lead WHERE SystemModstamp > {watermark} ORDER BY SystemModstamp, Id")).await;
    let ids: Vec<&str> = r.body["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["Id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [b.as_str(), a.as_str()]);
    assert_eq!(
        r.body["records"][1]["SystemModstamp"],
        "2026-01-15T10:00:10.000+0000"
    );
}
