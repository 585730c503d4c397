#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
//! Upsert by alternate key through HTTP (crm.md §1.6): the key URL forms, quote
//! escaping, conditional headers, key columns in the body, and refused keys.

mod dataverse_support;

use dataverse_support::start;
use reqwest::Method;
use serde_json::json;

const KEY: &str = "msft_microsoftpartnercenterreferralidentifier";

fn by_key(set: &str, value: &str) -> String {
    format!("{set}({KEY}='{}')", value.replace('\'', "''"))
}

#[tokio::test]
async fn upsert_creates_then_updates_the_same_record() {
    let env = start().await;
    let url = by_key("leads", "RF-1001");
    let r = env
        .patch(&url, &[], &json!({"subject": "First", "lastname": "Doe"}))
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    // crm.md §1.6: OData-EntityId carries the key form, whichever happened.
    let entity_id = r.header("OData-EntityId").unwrap().to_owned();
    assert!(
        entity_id.ends_with(&format!("/leads({KEY}='RF-1001')")),
        "{entity_id}"
    );
    let created = env.get(&url).await;
    assert_eq!(created.status, 200);
    assert_eq!(
        created.body[KEY], "RF-1001",
        "the URL's key value is copied in"
    );
    let id = created.body["leadid"].as_str().unwrap().to_owned();

    let r = env.patch(&url, &[], &json!({"subject": "Second"})).await;
    assert_eq!(r.status, 204);
    assert_eq!(r.header("OData-EntityId"), Some(entity_id.as_str()));
    let all = env
        .get(&format!("leads?$filter={KEY} eq 'RF-1001'&$select=subject"))
        .await;
    let rows = all.body["value"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "an upsert sent twice creates no duplicate");
    assert_eq!(rows[0]["leadid"], id.as_str());
    assert_eq!(rows[0]["subject"], "Second");
    // Keys compare case-insensitively, as Dataverse's collation does.
    assert_eq!(
        env.get(&by_key("leads", "rf-1001")).await.body["leadid"],
        id.as_str()
    );

    // With return=representation: 201 when created, 200 when updated, each with an ETag.
    let url = by_key("opportunities", "RF-2002");
    let account = env.create("accounts", &json!({"name": "Contoso"})).await;
    let body =
        json!({"name": "Deal", "customerid_account@odata.bind": format!("/accounts({account})")});
    let prefer = [("Prefer", "return=representation")];
    let r = env
        .send(
            Method::PATCH,
            &format!("{url}?$select=opportunityid"),
            &prefer,
            Some(&body),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert!(r.header("ETag").unwrap().starts_with("W/\""));
    assert!(r.header("OData-EntityId").is_none());
    let r = env
        .send(
            Method::PATCH,
            &format!("{url}?$select=opportunityid"),
            &prefer,
            Some(&body),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body.as_object().unwrap().len(), 3, "{}", r.text);
}

#[tokio::test]
async fn quotes_in_key_values_are_doubled() {
    let env = start().await;
    let value = "O'Brien's RF";
    let url = by_key("leads", value);
    assert!(url.contains("O''Brien''s"));
    let r = env
        .patch(
            &url,
            &[],
            &json!({"subject": "Quoted", "lastname": "O'Brien"}),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert!(
        r.header("OData-EntityId")
            .unwrap()
            .ends_with("='O''Brien''s RF')")
    );
    let got = env.get(&url).await;
    assert_eq!(got.body[KEY], value);
    // Spaces and quotes percent-encoded by the client decode to the same key.
    let encoded = format!("leads({KEY}=%27O%27%27Brien%27%27s%20RF%27)");
    assert_eq!(env.get(&encoded).await.body[KEY], value);
}

#[tokio::test]
async fn conditional_headers_make_update_only_and_create_only() {
    let env = start().await;
    let url = by_key("leads", "RF-3003");
    let body = json!({"subject": "s", "lastname": "l"});
    // If-Match: * on a missing key: 404 and nothing created.
    let r = env.patch(&url, &[("If-Match", "*")], &body).await;
    assert_eq!((r.status, r.code()), (404, "0x80040217"));
    assert_eq!(
        r.message(),
        "A record with the specified key values does not exist in lead entity"
    );
    assert_eq!(env.get("leads/$count").await.text, "0");
    // If-None-Match: * creates, and refuses once the record exists.
    assert_eq!(
        env.patch(&url, &[("If-None-Match", "*")], &body)
            .await
            .status,
        204
    );
    let r = env.patch(&url, &[("If-None-Match", "*")], &body).await;
    assert_eq!((r.status, r.code()), (412, "0x80040237"));
    assert_eq!(
        r.message(),
        "A record with matching key values already exists."
    );
    // If-Match with the current version updates; a stale one is 412.
    let etag = env.get(&url).await.header("ETag").unwrap().to_owned();
    assert_eq!(
        env.patch(&url, &[("If-Match", &etag)], &json!({"jobtitle": "CTO"}))
            .await
            .status,
        204
    );
    let r = env
        .patch(&url, &[("If-Match", &etag)], &json!({"jobtitle": "CEO"}))
        .await;
    assert_eq!((r.status, r.code()), (412, "0x80060882"));
    assert_eq!(env.get(&url).await.body["jobtitle"], "CTO");
    // Delete by key.
    assert_eq!(env.delete(&url, &[]).await.status, 204);
    assert_eq!(env.get(&url).await.status, 404);
}

#[tokio::test]
async fn key_columns_in_the_body_follow_the_documented_rules() {
    let env = start().await;
    // On create, body values win over the URL's.
    let r = env
        .patch(
            &by_key("leads", "RF-URL"),
            &[],
            &json!({"subject": "s", "lastname": "l", KEY: "RF-BODY"}),
        )
        .await;
    assert_eq!(r.status, 204);
    assert_eq!(env.get(&by_key("leads", "RF-BODY")).await.status, 200);
    assert_eq!(env.get(&by_key("leads", "RF-URL")).await.status, 404);
    // On update, body values for the key columns are removed.
    let r = env
        .patch(
            &by_key("leads", "RF-BODY"),
            &[],
            &json!({"jobtitle": "CFO", KEY: "RF-OTHER"}),
        )
        .await;
    assert_eq!(r.status, 204);
    let got = env.get(&by_key("leads", "RF-BODY")).await;
    assert_eq!(
        (got.body[KEY].clone(), got.body["jobtitle"].clone()),
        (json!("RF-BODY"), json!("CFO"))
    );
    // A plain create or update that duplicates a key value is refused.
    let r = env
        .post(
            "leads",
            &json!({"subject": "s", "lastname": "l", KEY: "rf-body"}),
        )
        .await;
    assert_eq!((r.status, r.code()), (412, "0x80040237"));
    assert!(
        r.message().contains("msft_referralidentifierkey"),
        "{}",
        r.message()
    );
    let other = env
        .create(
            "leads",
            &json!({"subject": "s", "lastname": "l", KEY: "RF-9"}),
        )
        .await;
    let r = env
        .patch(
            &format!("leads({other})"),
            &[("If-Match", "*")],
            &json!({KEY: "RF-BODY"}),
        )
        .await;
    assert_eq!(r.status, 412);
}

#[tokio::test]
async fn keys_that_are_not_declared_or_not_addressable_are_refused() {
    let env = start().await;
    let r = env
        .patch("leads(subject='x')", &[], &json!({"lastname": "l"}))
        .await;
    assert_eq!((r.status, r.code()), (400, "0x80060888"));
    assert_eq!(
        r.message(),
        "The key in the request URI is not valid for resource 'Microsoft.Dynamics.CRM.lead'. Ensure that the names and number of key properties match the declared or alternate key properties for the resource 'Microsoft.Dynamics.CRM.lead'."
    );
    // Accounts have no alternate key by default.
    assert_eq!(env.get(&by_key("accounts", "x")).await.status, 400);
    // crm.md §1.6: / < > * % & : \ ? + in a key value do not work.
    for bad in ["RF/1", "RF:1", "RF%1", "RF+1", "RF&1"] {
        let encoded = percent_encode(bad);
        let r = env
            .patch(
                &format!("leads({KEY}='{encoded}')"),
                &[],
                &json!({"subject": "s", "lastname": "l"}),
            )
            .await;
        assert_eq!(r.status, 400, "{bad}: {}", r.text);
    }
    assert_eq!(env.get("leads/$count").await.text, "0");
    // They can still be stored and found by filter; only key addressing fails.
    let id = env
        .create(
            "leads",
            &json!({"subject": "s", "lastname": "l", KEY: "RF/1"}),
        )
        .await;
    let r = env.get(&format!("leads?$filter={KEY} eq 'RF%2F1'")).await;
    assert_eq!(r.body["value"][0]["leadid"], id.as_str());
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'-' {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
