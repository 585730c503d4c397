#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
//! Collection queries through HTTP: `$select`, `$filter`, `$orderby`, `$top`,
//! `$count` (crm.md §1.7), paging with `odata.maxpagesize` and `$skiptoken` (§1.8),
//! and change tracking (§1.9).

mod dataverse_support;

use dataverse_support::{Env, start, start_with};
use refsync_emulators::dataverse::DataverseConfig;
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::time::Duration;

/// Leads `Lead 00`…`Lead nn` created by the human user through the control API.
fn seed_leads(env: &Env, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            let body = json!({
                "subject": format!("Lead {i:02}"),
                "lastname": if i % 3 == 0 { "Doe" } else { "Smith" },
                "estimatedamount": (i * 1000) as f64,
                "leadsourcecode": 1 + (i % 10) as i64,
            });
            let created = env.emu.dataverse().create_as_user("leads", &body).unwrap();
            created["leadid"].as_str().unwrap().to_owned()
        })
        .collect()
}

fn subjects(body: &Value) -> Vec<String> {
    body["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["subject"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn select_filter_orderby_top_and_count() {
    let env = start().await;
    seed_leads(&env, 12);
    let r = env
        .get("leads?$select=subject,lastname&$filter=lastname eq 'DOE'&$orderby=subject desc&$count=true")
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        subjects(&r.body),
        ["Lead 09", "Lead 06", "Lead 03", "Lead 00"]
    );
    assert_eq!(r.body["@odata.count"], 4);
    assert!(
        r.body["@odata.context"]
            .as_str()
            .unwrap()
            .ends_with("$metadata#leads(subject,lastname)")
    );
    let first = r.body["value"][0].as_object().unwrap();
    let keys: Vec<&str> = first.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        ["@odata.etag", "leadid", "subject", "lastname"],
        "primary key always returned"
    );
    assert!(r.body.get("@odata.nextLink").is_none());

    let r = env.get("leads?$select=subject&$filter=contains(subject,'0') and estimatedamount ge 5000&$orderby=estimatedamount").await;
    assert_eq!(
        subjects(&r.body),
        [
            "Lead 05", "Lead 06", "Lead 07", "Lead 08", "Lead 09", "Lead 10"
        ]
    );
    let r = env
        .get("leads?$select=subject&$orderby=estimatedamount desc&$top=3")
        .await;
    assert_eq!(subjects(&r.body), ["Lead 11", "Lead 10", "Lead 09"]);
    let r = env.get("leads?$select=subject&$filter=Microsoft.Dynamics.CRM.In(PropertyName='leadsourcecode',PropertyValues=['1','2'])&$orderby=subject").await;
    assert_eq!(
        subjects(&r.body),
        ["Lead 00", "Lead 01", "Lead 10", "Lead 11"]
    );
    // Selecting money brings the currency; choices get labels with annotations.
    let r = env
        .send(
            Method::GET,
            "leads?$select=estimatedamount,leadsourcecode&$top=1&$orderby=subject",
            &[(
                "Prefer",
                "odata.include-annotations=\"OData.Community.Display.V1.FormattedValue\"",
            )],
            None,
        )
        .await;
    let row = &r.body["value"][0];
    assert!(row["_transactioncurrencyid_value"].is_string());
    assert_eq!(
        row["leadsourcecode@OData.Community.Display.V1.FormattedValue"],
        "Advertisement"
    );
    assert_eq!(
        row["estimatedamount@OData.Community.Display.V1.FormattedValue"],
        "$0.00"
    );
    assert!(
        row.get("_transactioncurrencyid_value@Microsoft.Dynamics.CRM.lookuplogicalname")
            .is_none()
    );
    assert_eq!(env.get("leads/$count").await.text, "12");
}

#[tokio::test]
async fn filters_on_lookups_dates_and_navigation_properties() {
    let env = start().await;
    let contoso = env.create("accounts", &json!({"name": "Contoso"})).await;
    let fabrikam = env.create("accounts", &json!({"name": "Fabrikam"})).await;
    for (name, account) in [("A", &contoso), ("B", &fabrikam), ("C", &contoso)] {
        env.create(
            "opportunities",
            &json!({"name": name, "customerid_account@odata.bind": format!("/accounts({account})"), "parentaccountid@odata.bind": format!("/accounts({account})")}),
        )
        .await;
    }
    let r = env
        .get(&format!(
            "opportunities?$select=name&$filter=_customerid_value eq {contoso}&$orderby=name"
        ))
        .await;
    assert_eq!(r.body["value"].as_array().unwrap().len(), 2, "{}", r.text);
    let r = env
        .get("opportunities?$select=name&$filter=parentaccountid/name eq 'fabrikam'")
        .await;
    assert_eq!(r.body["value"][0]["name"], "B", "{}", r.text);

    // The poller's query: changed since a watermark (taken a few seconds after the
    // creates: stored times are finer than the returned ones).
    env.emu.dataverse().advance_clock(Duration::from_secs(5));
    let watermark = env
        .emu
        .dataverse()
        .now()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    env.emu.dataverse().advance_clock(Duration::from_secs(10));
    let edited = env
        .get("opportunities?$select=name&$filter=name eq 'C'")
        .await
        .body["value"][0]["opportunityid"]
        .as_str()
        .unwrap()
        .to_owned();
    env.emu
        .dataverse()
        .edit_as_user(
            "opportunities",
            edited.parse().unwrap(),
            &json!({"description": "edited in the CRM"}),
        )
        .unwrap();
    let r = env.get(&format!("opportunities?$select=name,modifiedon&$filter=modifiedon gt {watermark}&$orderby=modifiedon")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let changed: Vec<&str> = r.body["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert_eq!(changed, ["C"]);

    // Errors name the problem.
    let r = env.get("opportunities?$select=nosuch").await;
    assert_eq!((r.status, r.code()), (400, "0x80060888"));
    assert_eq!(
        r.message(),
        "Could not find a property named 'nosuch' on type 'Microsoft.Dynamics.CRM.opportunity'."
    );
    let r = env.get("opportunities?$filter=name eq").await;
    assert_eq!(r.status, 400);
    assert!(r.message().contains("position"), "{}", r.message());
    let r = env.get("opportunities?$filter=customerid eq null").await;
    assert_eq!(r.status, 400, "lookups are filtered as _customerid_value");
    let r = env.get("opportunities?$skip=1").await;
    assert_eq!(r.status, 400);
    assert!(r.message().contains("$skip"));
}

#[tokio::test]
async fn paging_follows_next_links_across_many_pages() {
    let env = start().await;
    let ids = seed_leads(&env, 57);
    let mut url = "leads?$select=subject&$filter=statecode eq 0&$count=true".to_owned();
    let mut seen = Vec::new();
    let mut pages = 0;
    while pages < 20 {
        let r = env
            .send(
                Method::GET,
                &url,
                &[("Prefer", "odata.maxpagesize=10")],
                None,
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.header("Preference-Applied"), Some("odata.maxpagesize=10"));
        // The count is of the matching records now (one more after the mid-way create).
        assert_eq!(r.body["@odata.count"], if pages < 2 { 57 } else { 58 });
        pages += 1;
        let page = r.body["value"].as_array().unwrap();
        assert!(page.len() <= 10);
        seen.extend(
            page.iter()
                .map(|v| v["leadid"].as_str().unwrap().to_owned()),
        );
        if pages == 2 {
            // A record created mid-way (sorting before the cursor) neither repeats nor shifts pages.
            env.emu
                .dataverse()
                .create_as_user("leads", &json!({"leadid": "00000000-0000-4000-8000-000000000000", "subject": "late", "lastname": "x"}))
                .unwrap();
        }
        match r.body.get("@odata.nextLink").and_then(Value::as_str) {
            Some(next) => {
                assert!(
                    next.contains("$skiptoken=%3Ccookie%20pagenumber%3D%22"),
                    "{next}"
                );
                assert!(next.contains("$select=subject"), "{next}");
                url = next.to_owned();
            }
            None => break,
        }
    }
    assert_eq!(pages, 6);
    assert_eq!(seen.len(), 57);
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), 57);
    assert_eq!(unique, ids.iter().collect::<HashSet<_>>());
    // Default order is by primary key.
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(seen, sorted);
}

#[tokio::test]
async fn page_size_limits_and_top_with_maxpagesize() {
    let config = DataverseConfig {
        default_page_size: 7,
        max_page_size: 20,
        count_cap: 25,
        ..DataverseConfig::default()
    };
    let env = start_with(config).await;
    seed_leads(&env, 30);
    // Without a preference: the default page size.
    let r = env.get("leads?$select=subject&$orderby=subject").await;
    assert_eq!(r.body["value"].as_array().unwrap().len(), 7);
    assert!(r.header("Preference-Applied").is_none());
    let next = r.body["@odata.nextLink"].as_str().unwrap().to_owned();
    assert_eq!(subjects(&env.get(&next).await.body)[0], "Lead 07");
    // Larger than the maximum: lowered, and the applied size is echoed.
    let r = env
        .send(
            Method::GET,
            "leads?$select=subject",
            &[("Prefer", "odata.maxpagesize=9999")],
            None,
        )
        .await;
    assert_eq!(r.header("Preference-Applied"), Some("odata.maxpagesize=20"));
    assert_eq!(r.body["value"].as_array().unwrap().len(), 20);
    // $top with maxpagesize: $top is ignored (crm.md §1.8).
    let r = env
        .send(
            Method::GET,
            "leads?$select=subject&$top=3",
            &[("Prefer", "odata.maxpagesize=5")],
            None,
        )
        .await;
    assert_eq!(r.body["value"].as_array().unwrap().len(), 5);
    assert!(r.body.get("@odata.nextLink").is_some());
    // $top alone caps the result across pages.
    let r = env
        .get("leads?$select=subject&$top=10&$orderby=subject desc")
        .await;
    assert_eq!(r.body["value"].as_array().unwrap().len(), 7);
    let next = env.get(r.body["@odata.nextLink"].as_str().unwrap()).await;
    assert_eq!(subjects(&next.body), ["Lead 22", "Lead 21", "Lead 20"]);
    assert!(next.body.get("@odata.nextLink").is_none());
    // @odata.count is capped (5000 by default, crm.md §1.8); the annotation says so.
    let r = env
        .send(
            Method::GET,
            "leads?$select=subject&$count=true",
            &[(
                "Prefer",
                "odata.include-annotations=\"Microsoft.Dynamics.CRM.*\"",
            )],
            None,
        )
        .await;
    assert_eq!(r.body["@odata.count"], 25);
    assert_eq!(r.body["@Microsoft.Dynamics.CRM.totalrecordcount"], 25);
    assert_eq!(
        r.body["@Microsoft.Dynamics.CRM.totalrecordcountlimitexceeded"],
        true
    );
    // A tampered cookie is refused.
    let r = env
        .get("leads?$skiptoken=%3Ccookie%20pagenumber%3D%222%22%20/%3E")
        .await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn change_tracking_returns_changes_then_deletions() {
    let env = start().await;
    let ids = seed_leads(&env, 3);
    let r = env
        .send(
            Method::GET,
            "leads?$select=subject",
            &[("Prefer", "odata.track-changes")],
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("Preference-Applied"), Some("odata.track-changes"));
    assert_eq!(r.body["value"].as_array().unwrap().len(), 3);
    let delta = r.body["@odata.deltaLink"].as_str().unwrap().to_owned();
    assert!(delta.contains("$deltatoken="), "{delta}");

    // Nothing changed: empty, with a new link.
    let r = env.get(&delta).await;
    assert_eq!(r.body["value"], json!([]));
    assert!(
        r.body["@odata.context"]
            .as_str()
            .unwrap()
            .ends_with("$metadata#leads(subject)/$delta")
    );

    env.patch(
        &format!("leads({})", ids[1]),
        &[("If-Match", "*")],
        &json!({"subject": "changed"}),
    )
    .await;
    let new_id = env
        .create("leads", &json!({"subject": "new", "lastname": "x"}))
        .await;
    assert_eq!(
        env.delete(&format!("leads({})", ids[0]), &[]).await.status,
        204
    );
    let r = env.get(&delta).await;
    let values = r.body["value"].as_array().unwrap();
    assert_eq!(values.len(), 3, "{}", r.text);
    assert_eq!(values[0]["leadid"], ids[1].as_str());
    assert_eq!(values[0]["subject"], "changed");
    assert_eq!(values[1]["leadid"], new_id.as_str());
    assert_eq!(values[2]["id"], ids[0].as_str());
    assert_eq!(values[2]["reason"], "deleted");
    assert!(
        values[2]["@odata.context"]
            .as_str()
            .unwrap()
            .ends_with("$metadata#leads/$deletedEntity")
    );
    let next = r.body["@odata.deltaLink"].as_str().unwrap().to_owned();
    assert_eq!(env.get(&next).await.body["value"], json!([]));

    // Not combinable with $filter/$orderby/$top.
    let r = env
        .send(
            Method::GET,
            "leads?$filter=statecode eq 0",
            &[("Prefer", "odata.track-changes")],
            None,
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.message(),
        "The \"$filter\" query parameter isn't supported when Change Tracking is enabled."
    );
    let r = env
        .send(
            Method::GET,
            "leads?$top=1",
            &[("Prefer", "odata.track-changes")],
            None,
        )
        .await;
    assert_eq!(r.status, 400);
    // Tokens expire (7 days by default).
    env.emu
        .dataverse()
        .advance_clock(Duration::from_secs(8 * 24 * 3600));
    assert_eq!(env.get(&next).await.status, 400);
}

#[tokio::test]
async fn initial_change_tracking_pages_and_ends_with_a_delta_link() {
    let env = start().await;
    seed_leads(&env, 5);
    let mut url = "leads?$select=subject".to_owned();
    let mut rows = 0;
    let mut delta = None;
    for _ in 0..10 {
        let r = env
            .send(
                Method::GET,
                &url,
                &[("Prefer", "odata.track-changes,odata.maxpagesize=2")],
                None,
            )
            .await;
        rows += r.body["value"].as_array().unwrap().len();
        if let Some(next) = r.body["@odata.nextLink"].as_str() {
            assert!(next.contains("istracking%3D%22True%22"), "{next}");
            assert!(r.body.get("@odata.deltaLink").is_none());
            url = next.to_owned();
            // A change while paging shows up in the first delta.
            env.emu
                .dataverse()
                .create_as_user("leads", &json!({"subject": "during", "lastname": "x"}))
                .unwrap();
        } else {
            delta = r.body["@odata.deltaLink"].as_str().map(str::to_owned);
            break;
        }
    }
    assert!(rows >= 5);
    let r = env.get(&delta.unwrap()).await;
    let during: Vec<&Value> = r.body["value"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["subject"] == "during")
        .collect();
    assert!(!during.is_empty(), "{}", r.text);
}

#[tokio::test]
async fn expand_reads_single_valued_lookups_in_the_same_call() {
    let env = start().await;
    let account = env.create("accounts", &json!({"name": "Contoso"})).await;
    let id = env
        .create(
            "opportunities",
            &json!({"name": "Deal", "estimatedvalue": 10, "customerid_account@odata.bind": format!("/accounts({account})")}),
        )
        .await;
    let r = env
        .get(&format!(
            "opportunities({id})?$select=name&$expand=transactioncurrencyid($select=isocurrencycode),parentaccountid"
        ))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["transactioncurrencyid"]["isocurrencycode"], "USD");
    assert!(r.body["transactioncurrencyid"]["transactioncurrencyid"].is_string());
    assert!(r.body["parentaccountid"].is_null());
    let r = env
        .get("opportunities?$select=name&$expand=customerid_account($select=name)")
        .await;
    assert_eq!(r.body["value"][0]["customerid_account"]["name"], "Contoso");
    // Unknown navigation properties and change tracking are refused.
    assert_eq!(env.get("opportunities?$expand=nosuch").await.status, 400);
    let r = env
        .send(
            Method::GET,
            "opportunities?$expand=parentaccountid",
            &[("Prefer", "odata.track-changes")],
            None,
        )
        .await;
    assert_eq!(
        r.message(),
        "The \"$expand\" query parameter isn't supported when Change Tracking is enabled."
    );
}
