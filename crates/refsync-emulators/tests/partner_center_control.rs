#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
//! The control API (`/_emulator/partner-center`) and HTTP fault injection
//! (`/_emulator/faults`) through HTTP.

mod partner_center_support;

use partner_center_support::*;
use serde_json::{Value, json};

const CONTROL: &str = "/_emulator/partner-center";

async fn control(pc: &Pc, method: reqwest::Method, path: &str, body: Option<Value>) -> Reply {
    let mut request = pc.http.request(method, pc.url(&format!("{CONTROL}{path}")));
    if let Some(body) = body {
        request = request.json(&body);
    }
    pc.send(request).await
}

#[tokio::test]
async fn microsoft_sends_referrals_and_co_sells_through_the_control_api() {
    let pc = start().await;
    use reqwest::Method;

    let generated = control(&pc, Method::POST, "/referrals", Some(json!({"count": 3}))).await;
    assert_eq!(generated.status, 201, "{}", generated.body);
    let created = generated.body["created"].as_array().unwrap();
    assert_eq!(created.len(), 3);
    for r in created {
        assert_eq!(
            (r["status"].as_str(), r["substatus"].as_str()),
            (Some("New"), Some("Pending"))
        );
        assert_eq!(r["direction"], "Incoming");
    }

    let pairs = control(
        &pc,
        Method::POST,
        "/referrals",
        Some(json!({"count": 2, "co_sell_pair": true})),
    )
    .await;
    assert_eq!(pairs.status, 201);
    for pair in pairs.body["pairs"].as_array().unwrap() {
        assert_eq!(
            pair["partner"]["engagementId"],
            pair["microsoft"]["engagementId"]
        );
        assert_eq!(pair["partner"]["type"], "Shared");
        assert_eq!(pair["microsoft"]["organizationId"], "msft");
        assert_eq!(
            (
                pair["microsoft"]["status"].as_str(),
                pair["microsoft"]["direction"].as_str()
            ),
            (Some("Active"), Some("Outgoing"))
        );
    }

    let given = control(
        &pc,
        Method::POST,
        "/referrals",
        Some(json!({"referral": referral_body("Given")})),
    )
    .await;
    assert_eq!(given.status, 201);
    assert_eq!(given.body["created"][0]["name"], "Given");
    let invalid = control(
        &pc,
        Method::POST,
        "/referrals",
        Some(json!({"referral": {"name": "no type"}})),
    )
    .await;
    assert_eq!(invalid.status, 400);
    invalid.error_description();
    assert_eq!(
        control(&pc, Method::POST, "/referrals", Some(json!({})))
            .await
            .status,
        400
    );
    assert_eq!(
        control(
            &pc,
            Method::POST,
            "/referrals",
            Some(json!({"count": 1, "colour": 2}))
        )
        .await
        .status,
        400
    );

    let all = control(&pc, Method::GET, "/referrals", None).await;
    assert_eq!(all.body["value"].as_array().unwrap().len(), 3 + 4 + 1);
    // Same data as the API shows, without a token.
    let api = pc.get(REFERRALS, &pc.admin).await;
    assert_eq!(api.body["@odata.count"], 8);
}

#[tokio::test]
async fn microsoft_changes_referrals_along_the_documented_transitions() {
    let pc = start().await;
    use reqwest::Method;
    let mut receiver = Receiver::start().await;
    pc.register(&receiver.url, &["referral-updated"], false)
        .await;
    let one = pc.emulator().send_referral(referral_body("One")).unwrap();
    let two = pc.emulator().send_referral(referral_body("Two")).unwrap();
    let (one, two) = (one["id"].as_str().unwrap(), two["id"].as_str().unwrap());

    let accepted = control(&pc, Method::POST, &format!("/referrals/{one}/accept"), None).await;
    assert_eq!(accepted.status, 200, "{}", accepted.body);
    assert_eq!(accepted.body["status"], "Active");
    assert!(accepted.body["acceptedDateTime"].is_string());
    assert_eq!(receiver.next().await.referral_id(), one);

    let declined = control(
        &pc,
        Method::POST,
        &format!("/referrals/{two}/decline"),
        Some(json!({"statusReason": "Not our region"})),
    )
    .await;
    assert_eq!(
        (
            declined.body["substatus"].as_str(),
            declined.body["statusReason"].as_str()
        ),
        (Some("Declined"), Some("Not our region"))
    );
    let refused = control(&pc, Method::POST, &format!("/referrals/{two}/accept"), None).await;
    assert_eq!(refused.status, 400);
    assert!(refused.error_description().contains("Closed"));

    let updated = control(
        &pc,
        Method::PATCH,
        &format!("/referrals/{one}"),
        Some(json!({"dealValue": 125000, "notes": "Budget approved", "closingDateTime": "2027-03-31T00:00:00Z", "msxId": "7-ABCDEF1234"})),
    )
    .await;
    assert_eq!(updated.status, 200);
    assert_eq!(updated.body["details"]["dealValue"], 125000);
    assert_eq!(updated.body["details"]["notes"], "Budget approved");
    assert_eq!(
        updated.body["details"]["closingDateTime"],
        "2027-03-31T00:00:00.0000000Z"
    );
    assert_eq!(
        updated.body["trackingInfo"]["microsoftMsxId"],
        "7-ABCDEF1234"
    );

    let won = control(&pc, Method::POST, &format!("/referrals/{one}/win"), None).await;
    assert_eq!(
        (won.body["status"].as_str(), won.body["substatus"].as_str()),
        (Some("Closed"), Some("Won"))
    );
    assert!(won.body["closedDateTime"].is_string());

    assert_eq!(
        control(&pc, Method::POST, "/referrals/nope/accept", None)
            .await
            .status,
        404
    );
    assert_eq!(
        control(
            &pc,
            Method::POST,
            &format!("/referrals/{one}/celebrate"),
            None
        )
        .await
        .status,
        400
    );
    assert_eq!(
        control(&pc, Method::GET, "/referrals/nope", None)
            .await
            .status,
        404
    );
    assert_eq!(
        control(&pc, Method::GET, &format!("/referrals/{one}"), None)
            .await
            .body["substatus"],
        "Won"
    );
}

#[tokio::test]
async fn deliveries_offline_queue_and_delivery_faults_through_http() {
    let pc = start().await;
    use reqwest::Method;
    let mut receiver = Receiver::start().await;

    assert_eq!(
        control(&pc, Method::GET, "/registration", None)
            .await
            .status,
        404
    );
    pc.register(&receiver.url, &["referral-created"], false)
        .await;
    let registration = control(&pc, Method::GET, "/registration", None).await;
    assert_eq!(registration.body["WebhookUrl"], receiver.url.as_str());

    let rule = control(
        &pc,
        Method::POST,
        "/delivery-faults",
        Some(json!({"kind": "drop", "count": 1})),
    )
    .await;
    assert_eq!(rule.status, 201, "{}", rule.body);
    assert_eq!(
        control(
            &pc,
            Method::POST,
            "/delivery-faults",
            Some(json!({"kind": "delay"}))
        )
        .await
        .status,
        400
    );
    assert_eq!(
        control(
            &pc,
            Method::POST,
            "/delivery-faults",
            Some(json!({"kind": "explode"}))
        )
        .await
        .status,
        400
    );

    let dropped = pc
        .emulator()
        .send_referral(referral_body("Dropped"))
        .unwrap();
    let waited = control(
        &pc,
        Method::POST,
        "/deliveries/wait-idle?timeout_ms=5000",
        None,
    )
    .await;
    assert_eq!(waited.status, 200);
    let offline = control(&pc, Method::GET, "/offline-queue", None).await;
    assert_eq!(offline.body["value"].as_array().unwrap().len(), 1);
    assert_eq!(offline.body["value"][0]["event_name"], "referral-created");
    let faults = control(&pc, Method::GET, "/delivery-faults", None).await;
    assert_eq!(faults.body["rules"][0]["fired"], 1);

    let redelivered = control(&pc, Method::POST, "/offline-queue/redeliver", None).await;
    assert_eq!(redelivered.body["redelivered"], 1);
    assert_eq!(
        receiver.next().await.referral_id(),
        dropped["id"].as_str().unwrap()
    );
    control(&pc, Method::POST, "/deliveries/wait-idle", None).await;
    let log = control(&pc, Method::GET, "/deliveries", None).await;
    assert_eq!(log.body["deliveries"][0]["state"], "delivered");
    assert_eq!(log.body["attempts"][0]["status"], 200);

    control(
        &pc,
        Method::POST,
        "/delivery-faults",
        Some(json!({"kind": "hold", "count": 1})),
    )
    .await;
    pc.emulator().send_referral(referral_body("Held")).unwrap();
    let released = control(&pc, Method::POST, "/delivery-faults/release-held", None).await;
    assert_eq!(released.body["released"], 1);
    receiver.next().await;
    assert_eq!(
        control(&pc, Method::DELETE, "/delivery-faults", None)
            .await
            .status,
        204
    );
    assert_eq!(
        control(&pc, Method::DELETE, "/delivery-faults/99", None)
            .await
            .status,
        404
    );

    let pem = pc
        .send(pc.http.get(pc.url(&format!("{CONTROL}/ca.pem"))))
        .await;
    assert_eq!(pem.body.as_str().unwrap(), pc.emulator().root_ca_pem());
    assert_eq!(
        control(&pc, Method::DELETE, "/registration", None)
            .await
            .status,
        204
    );
    assert!(pc.emulator().registration().is_none());
}

#[tokio::test]
async fn http_faults_answer_in_partner_centers_error_shape() {
    let pc = start().await;
    let install = |rule: Value| pc.http.post(pc.url("/_emulator/faults")).json(&rule);

    let rule = pc
        .send(install(json!({"status": 429, "count": 1, "retry_after_secs": 7, "path_prefix": "/v1.0/engagements"})))
        .await;
    assert_eq!(rule.status, 201);
    let throttled = pc.get(REFERRALS, &pc.admin).await;
    assert_eq!(throttled.status, 429);
    assert_eq!(throttled.header("retry-after"), Some("7"));
    assert!(throttled.error_description().contains("Retry-After"));
    assert_eq!(pc.get(REFERRALS, &pc.admin).await.status, 200);

    pc.send(install(
        json!({"status": 503, "count": 1, "method": "PATCH"}),
    ))
    .await;
    let sent = pc
        .emulator()
        .send_referral(referral_body("Unavailable"))
        .unwrap();
    let id = sent["id"].as_str().unwrap();
    let rename = json!([{"op": "replace", "path": "/name", "value": "x"}]);
    let unavailable = pc.patch(id, &rename, &[]).await;
    assert_eq!(unavailable.status, 503);
    unavailable.error_description();
    assert_eq!(pc.emulator().referral(id).unwrap()["name"], "Unavailable");
    assert_eq!(pc.patch(id, &rename, &[]).await.status, 204);

    // The control APIs stay reachable while the service is "down".
    pc.send(install(json!({"status": 500}))).await;
    assert_eq!(pc.get(REFERRALS, &pc.admin).await.status, 500);
    let listed = pc
        .send(pc.http.get(pc.url("/_emulator/partner-center/referrals")))
        .await;
    assert_eq!(listed.status, 200);
    assert_eq!(
        pc.send(pc.http.delete(pc.url("/_emulator/faults")))
            .await
            .status,
        204
    );
    assert_eq!(pc.get(REFERRALS, &pc.admin).await.status, 200);
}

#[tokio::test]
async fn shutting_down_stops_pending_retries() {
    use refsync_emulators::partner_center::{DeliveryConfig, PartnerCenterConfig};
    use std::time::Duration;
    let pc = start_with(PartnerCenterConfig {
        delivery: DeliveryConfig {
            retry_intervals: vec![Duration::from_secs(3600)],
            ..DeliveryConfig::fast()
        },
        ..PartnerCenterConfig::for_tests()
    })
    .await;
    let mut receiver = Receiver::start().await;
    receiver.answer(&[500]);
    pc.register(&receiver.url, &["referral-created"], false)
        .await;
    pc.emulator()
        .send_referral(referral_body("Retried later"))
        .unwrap();
    receiver.next().await;

    let emulator = pc.emulator().clone();
    let Pc { server, .. } = pc;
    server.shutdown().await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), emulator.wait_for_deliveries())
        .await
        .expect("a retry an hour away should end at shutdown");
    assert_eq!(emulator.delivery_log().attempts.len(), 1);
}
