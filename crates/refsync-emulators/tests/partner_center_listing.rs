#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
//! The list operation through HTTP: every documented `$filter` example, date
//! filters, `$orderby`, `$top`, `$select`, and `@odata.nextLink` paging over 250
//! referrals while they change (partner-center.md §1.4).

mod partner_center_support;

use partner_center_support::*;
use refsync_core::wire::{format_datetime, parse_datetime};
use serde_json::{Value, json};
use std::collections::{BTreeSet, HashSet};
use std::time::Duration;

fn query(pairs: &[(&str, &str)]) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    format!("{REFERRALS}?{}", s.finish())
}

fn id_of(v: &Value) -> String {
    v["id"].as_str().unwrap().to_owned()
}

fn body(name: &str, kind: &str, qualification: &str, country: &str) -> Value {
    let mut b = referral_body(name);
    b["type"] = json!(kind);
    b["qualification"] = json!(qualification);
    b["customerProfile"]["address"]["country"] = json!(country);
    b
}

#[tokio::test]
async fn every_documented_filter_selects_exactly_the_expected_referrals() {
    let pc = start().await;
    let em = pc.emulator();
    let clock = pc.server.authority();

    // t0: what Microsoft sends.
    let a = id_of(
        &em.send_referral(body("A", "Shared", "SalesQualified", "US"))
            .unwrap(),
    );
    let b = id_of(
        &em.send_referral(body("B", "Independent", "MarketingQualified", "DE"))
            .unwrap(),
    );
    let c = id_of(
        &em.send_referral(body("C", "Independent", "SalesQualified", "US"))
            .unwrap(),
    );
    let received = json!([{"op": "replace", "path": "/status", "value": "New"},
                          {"op": "replace", "path": "/substatus", "value": "Received"}]);
    assert_eq!(pc.patch(&c, &received, &[]).await.status, 204);
    let pair = em
        .open_cosell(body("F", "Shared", "SalesQualified", "US"))
        .unwrap();
    let (f, f_msft) = (id_of(&pair.partner), id_of(&pair.microsoft));
    let engagement = pair.partner["engagementId"].as_str().unwrap().to_owned();

    // t1: what the partner creates.
    clock.advance_clock(Duration::from_secs(60));
    let t1 = format_datetime(&em.now());
    let mut d = body("D", "Shared", "SalesQualified", "US");
    d["team"] = json!([{"email": "r2d2@contoso.com"}, {"email": "c3po@contoso.com"}]);
    let d = id_of(&pc.post(REFERRALS, &pc.admin, &d).await.body);
    let e = id_of(
        &pc.post(
            REFERRALS,
            &pc.admin,
            &body("E", "Shared", "SalesQualified", "US"),
        )
        .await
        .body,
    );

    // t2: one update.
    clock.advance_clock(Duration::from_secs(60));
    let t2 = format_datetime(&em.now());
    let notes = json!([{"op": "replace", "path": "/details/notes", "value": "called back"}]);
    assert_eq!(pc.patch(&b, &notes, &[]).await.status, 204);

    let set = |ids: &[&String]| ids.iter().map(|s| (*s).clone()).collect::<BTreeSet<_>>();
    let cases: Vec<(String, BTreeSet<String>)> = vec![
        (format!("engagementId eq '{engagement}'"), set(&[&f, &f_msft])),
        ("status eq 'New' and qualification eq 'SalesQualified'".into(), set(&[&a, &c, &f])),
        ("customerProfile/address/country eq 'US' and direction eq 'Incoming'".into(), set(&[&a, &c, &f])),
        ("(type eq 'Shared' and direction eq 'Incoming')".into(), set(&[&a, &f])),
        ("(direction eq 'Incoming' and substatus eq 'Pending')".into(), set(&[&a, &b, &f])),
        (
            "status eq 'Active' and direction eq 'Outgoing' and type eq 'Shared' and team/any(t:t/email eq 'r2d2@contoso.com')".into(),
            set(&[&d]),
        ),
        (format!("createdDateTime ge {t1}"), set(&[&d, &e])),
        (format!("createdDateTime lt {t1}"), set(&[&a, &b, &c, &f, &f_msft])),
        (format!("updatedDateTime ge {t2}"), set(&[&b])),
        (format!("updatedDateTime gt {t1} and updatedDateTime lt {t2}"), set(&[&d, &e])),
    ];
    for (filter, expected) in cases {
        let reply = pc.get(&query(&[("$filter", &filter)]), &pc.admin).await;
        assert_eq!(reply.status, 200, "{filter}: {}", reply.body);
        let got: BTreeSet<String> = ids(reply.body["value"].as_array().unwrap())
            .into_iter()
            .collect();
        assert_eq!(got, expected, "{filter}");
        assert_eq!(reply.body["@odata.count"], expected.len(), "{filter}");
    }
}

#[tokio::test]
async fn invalid_queries_are_400_with_a_useful_body() {
    let pc = start().await;
    for (pairs, needle) in [
        (vec![("$filter", "colour eq 'red'")], "colour"),
        (vec![("$filter", "status eq")], "position"),
        (vec![("$filter", "status eq 'New' and")], "$filter"),
        (
            vec![("$orderby", "name desc")],
            "createdDateTime or updatedDateTime",
        ),
        (vec![("$top", "many")], "$top"),
        (vec![("$select", "id,colour")], "colour"),
        (vec![("$expand", "team")], "$expand"),
        (vec![("$skiptoken", "bm90IGEgdG9rZW4")], "$skiptoken"),
    ] {
        let reply = pc.get(&query(&pairs), &pc.admin).await;
        assert_eq!(reply.status, 400, "{pairs:?}");
        let why = reply.error_description();
        assert!(why.contains(needle), "{pairs:?}: {why}");
    }
}

/// 250 referrals in five batches a second apart, so creation times differ.
async fn two_hundred_fifty(pc: &Pc) -> Vec<String> {
    for _ in 0..5 {
        pc.emulator().send_generated_referrals(50);
        pc.server.authority().advance_clock(Duration::from_secs(1));
    }
    pc.emulator().referrals().iter().map(id_of).collect()
}

#[tokio::test]
async fn paging_serves_every_referral_once_in_pages_of_at_most_100() {
    let pc = start().await;
    let all = two_hundred_fifty(&pc).await;

    let pages = pc.all_pages(&pc.url(REFERRALS), &pc.admin).await;
    let sizes: Vec<usize> = pages
        .iter()
        .map(|p| p["value"].as_array().unwrap().len())
        .collect();
    assert_eq!(sizes, [100, 100, 50]);
    for page in &pages {
        assert_eq!(page["@odata.count"], 250);
        assert!(
            page["@odata.context"]
                .as_str()
                .unwrap()
                .ends_with("$metadata#Referrals")
        );
    }
    let next = pages[0]["@odata.nextLink"].as_str().unwrap();
    assert!(
        next.starts_with(&pc.url(REFERRALS)) && next.contains("$skiptoken="),
        "{next}"
    );
    assert!(pages[2].get("@odata.nextLink").is_none());
    let served: Vec<String> = pages
        .iter()
        .flat_map(|p| ids(p["value"].as_array().unwrap()))
        .collect();
    assert_eq!(served, all, "creation order, no duplicates, no gaps");

    // $top larger than a page: capped per page, the rest through nextLink.
    let pages = pc
        .all_pages(&pc.url(&query(&[("$top", "150")])), &pc.admin)
        .await;
    let sizes: Vec<usize> = pages
        .iter()
        .map(|p| p["value"].as_array().unwrap().len())
        .collect();
    assert_eq!(sizes, [100, 50]);
    let pages = pc
        .all_pages(&pc.url(&query(&[("$top", "30")])), &pc.admin)
        .await;
    assert_eq!(pages.len(), 1);
    assert_eq!(pages[0]["value"].as_array().unwrap().len(), 30);

    // Newest first, across pages.
    let pages = pc
        .all_pages(
            &pc.url(&query(&[
                ("$orderby", "createdDateTime desc"),
                ("$count", "true"),
            ])),
            &pc.admin,
        )
        .await;
    let created: Vec<_> = pages
        .iter()
        .flat_map(|p| p["value"].as_array().unwrap().clone())
        .map(|r| parse_datetime(r["createdDateTime"].as_str().unwrap()).unwrap())
        .collect();
    assert_eq!(created.len(), 250);
    assert!(created.windows(2).all(|w| w[0] >= w[1]));
    assert!(created[0] > created[249]);

    // Filter, select and order survive into the continuation pages.
    let pages = pc
        .all_pages(
            &pc.url(&query(&[
                ("$filter", "direction eq 'Incoming' and status eq 'New'"),
                ("$select", "id,status"),
                ("$orderby", "updatedDateTime asc"),
            ])),
            &pc.admin,
        )
        .await;
    assert_eq!(pages.len(), 3);
    let items: Vec<Value> = pages
        .iter()
        .flat_map(|p| p["value"].as_array().unwrap().clone())
        .collect();
    assert_eq!(items.len(), 250);
    for item in &items {
        let keys: Vec<&String> = item.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["id", "status"]);
    }
    assert_eq!(items.iter().map(id_of).collect::<HashSet<_>>().len(), 250);
}

#[tokio::test]
async fn paging_stays_stable_while_referrals_change() {
    let pc = start().await;
    let all = two_hundred_fifty(&pc).await;

    let first = pc.get(REFERRALS, &pc.admin).await.body;
    let mut served = ids(first["value"].as_array().unwrap());
    // Between pages: one referral already served and one not yet served change,
    // and twenty new referrals arrive.
    let rename = json!([{"op": "replace", "path": "/name", "value": "Renamed mid-paging"}]);
    assert_eq!(pc.patch(&all[10], &rename, &[]).await.status, 204);
    assert_eq!(pc.patch(&all[220], &rename, &[]).await.status, 204);
    let newcomers: Vec<String> = pc
        .emulator()
        .send_generated_referrals(20)
        .iter()
        .map(id_of)
        .collect();

    let rest = pc
        .all_pages(first["@odata.nextLink"].as_str().unwrap(), &pc.admin)
        .await;
    served.extend(
        rest.iter()
            .flat_map(|p| ids(p["value"].as_array().unwrap())),
    );
    let unique: HashSet<&String> = served.iter().collect();
    assert_eq!(unique.len(), served.len(), "a referral was served twice");
    for id in all.iter().chain(&newcomers) {
        assert!(unique.contains(id), "{id} was skipped");
    }
}
