#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
//! The Referrals API through HTTP: tokens, get, create, PATCH, PUT, eTags, status
//! rules and unknown fields (partner-center.md §1).

mod partner_center_support;

use partner_center_support::*;
use refsync_emulators::entra::{
    DEMO_ADMIN_USER, DEMO_CLIENT_ID, DEMO_TENANT_ID, DEMO_USER_PASSWORD,
};
use refsync_emulators::partner_center::config::{REFERRALS_AUDIENCE, REGISTRATION_AUDIENCE};
use serde_json::{Value, json};
use std::time::Duration;

#[tokio::test]
async fn only_app_plus_user_tokens_for_the_referrals_audience_get_in() {
    let pc = start().await;
    let list = pc.url(REFERRALS);

    let none = pc.send(pc.http.get(&list)).await;
    assert_eq!(none.status, 401);
    assert!(
        none.header("www-authenticate")
            .unwrap()
            .starts_with("Bearer ")
    );
    none.error_description();

    let garbage = pc.get(REFERRALS, "not.a.jwt").await;
    assert_eq!(garbage.status, 401);
    assert!(
        garbage
            .header("www-authenticate")
            .unwrap()
            .contains("invalid_token")
    );

    let wrong_audience = pc
        .get(
            REFERRALS,
            &pc.user_token(DEMO_ADMIN_USER, REGISTRATION_AUDIENCE),
        )
        .await;
    assert_eq!(wrong_audience.status, 401);
    assert!(wrong_audience.error_description().contains("audience"));

    let app_only = pc.get(REFERRALS, &pc.app_token(REFERRALS_AUDIENCE)).await;
    assert_eq!(app_only.status, 403);
    assert!(
        app_only
            .header("www-authenticate")
            .unwrap()
            .contains("insufficient_scope")
    );
    assert!(app_only.error_description().contains("App+User"));

    let ok = pc.get(REFERRALS, &pc.admin).await;
    assert_eq!(ok.status, 200, "{}", ok.body);

    // Expired tokens are refused; a fresh one works again.
    pc.server.authority().expire_access_tokens();
    let expired = pc.get(REFERRALS, &pc.admin).await;
    assert_eq!(expired.status, 401);
    assert!(expired.error_description().contains("expired"));

    // The token endpoint is on the same listener: the documented v1 ROPC grant.
    let form = [
        ("grant_type", "password"),
        ("resource", REFERRALS_AUDIENCE),
        ("client_id", &DEMO_CLIENT_ID.to_string()),
        ("username", DEMO_ADMIN_USER),
        ("password", DEMO_USER_PASSWORD),
        ("scope", "openid"),
    ];
    let token: Value = pc
        .http
        .post(pc.url(&format!("/{DEMO_TENANT_ID}/oauth2/token")))
        .form(&form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let fresh = token["access_token"].as_str().unwrap();
    assert_eq!(pc.get(REFERRALS, fresh).await.status, 200);
}

#[tokio::test]
async fn a_referral_user_reads_only_their_team_and_cannot_write() {
    let pc = start().await;
    let mut mine = referral_body("Mine");
    mine["team"] = json!([{"email": "Referral.User@contoso.onmicrosoft.com"}]);
    let mine = pc.emulator().send_referral(mine).unwrap();
    let other = pc.emulator().send_referral(referral_body("Other")).unwrap();
    let user = pc.referral_user();

    let listed = pc.get(REFERRALS, &user).await;
    assert_eq!(
        ids(listed.body["value"].as_array().unwrap()),
        [mine["id"].as_str().unwrap()]
    );
    let hidden = pc
        .get(
            &format!("{REFERRALS}/{}", other["id"].as_str().unwrap()),
            &user,
        )
        .await;
    assert_eq!(hidden.status, 404);
    let write = pc
        .send(
            pc.http
                .patch(pc.url(&format!("{REFERRALS}/{}", mine["id"].as_str().unwrap())))
                .bearer_auth(&user)
                .json(&json!([{"op": "replace", "path": "/name", "value": "x"}])),
        )
        .await;
    assert_eq!(write.status, 403);
    let create = pc.post(REFERRALS, &user, &referral_body("New")).await;
    assert_eq!(create.status, 403);
}

#[tokio::test]
async fn get_by_id_returns_the_referral_or_a_404_body() {
    let pc = start().await;
    let sent = pc
        .emulator()
        .send_referral(referral_body("Fabrikam"))
        .unwrap();
    let id = sent["id"].as_str().unwrap();

    let got = pc.get(&format!("{REFERRALS}/{id}"), &pc.admin).await;
    assert_eq!(got.status, 200);
    assert!(
        got.body["@odata.context"]
            .as_str()
            .unwrap()
            .ends_with("/$metadata#Referrals/$entity")
    );
    assert_eq!(got.body["id"], id);
    assert_eq!(got.body["status"], "New");
    assert_eq!(got.body["substatus"], "Pending");
    assert_eq!(got.body["direction"], "Incoming");
    assert_eq!(
        got.body["inviteContext"]["invitedBy"]["organizationId"],
        "msft"
    );
    assert_eq!(got.body["organizationId"], DEMO_TENANT_ID.to_string());
    assert!(got.body["eTag"].as_str().unwrap().starts_with('"'));
    assert!(got.body["expirationDateTime"].is_string());
    assert_eq!(
        got.body["links"]["self"]["uri"],
        pc.url(&format!("{REFERRALS}/{id}"))
    );
    assert!(got.header("ms-correlationid").is_some());

    let missing = pc
        .get(&format!("{REFERRALS}/no-such-referral"), &pc.admin)
        .await;
    assert_eq!(missing.status, 404);
    assert!(missing.error_description().contains("no-such-referral"));
}

#[tokio::test]
async fn create_validates_and_sets_the_server_fields() {
    let pc = start().await;
    let mut incomplete = referral_body("Incomplete");
    incomplete.as_object_mut().unwrap().remove("consent");
    incomplete.as_object_mut().unwrap().remove("type");
    let refused = pc.post(REFERRALS, &pc.admin, &incomplete).await;
    assert_eq!(refused.status, 400);
    let why = refused.error_description();
    assert!(why.contains("type") && why.contains("consent"), "{why}");
    assert_eq!(refused.body["data"], json!(["type", "consent"]));

    let mut bad_value = referral_body("Bad");
    bad_value["details"]["dealValue"] = json!({"amount": 5});
    assert_eq!(pc.post(REFERRALS, &pc.admin, &bad_value).await.status, 400);
    let not_json = pc
        .send(
            pc.http
                .post(pc.url(REFERRALS))
                .bearer_auth(&pc.admin)
                .body("{"),
        )
        .await;
    assert_eq!(not_json.status, 400);

    let mut body = referral_body("Contoso deal");
    body["type"] = json!("Shared");
    body["id"] = json!("client-chosen");
    body["target"] = json!([{"type": "SolutionProfile", "id": "SOL-34104-EBB"}]);
    let created = pc.post(REFERRALS, &pc.admin, &body).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let r = &created.body;
    assert_ne!(r["id"], "client-chosen");
    assert_eq!(r["status"], "Active");
    assert_eq!(r["substatus"], "Accepted");
    assert_eq!(r["direction"], "Outgoing");
    assert_eq!(r["organizationName"], "Contoso Company");
    assert_eq!(r["acceptedDateTime"], r["createdDateTime"]);
    assert_eq!(r["createdDateTime"], r["updatedDateTime"]);
    assert!(r["eTag"].is_string() && r["engagementId"].is_string());
    let engagement = r["engagementId"].as_str().unwrap();
    assert!(
        r["links"]["relatedReferrals"]["uri"]
            .as_str()
            .unwrap()
            .contains(engagement)
    );

    // The documented second step of a co-sell: the same engagement, addressed to Microsoft.
    let mut second = referral_body("Contoso deal (Microsoft)");
    second["type"] = json!("Shared");
    second["engagementId"] = json!(engagement);
    second["target"] = json!([{"type": "BusinessProfileLocation", "id": "msft"}]);
    let second = pc.post(REFERRALS, &pc.admin, &second).await;
    assert_eq!(second.status, 201);
    assert_eq!(second.body["engagementId"], engagement);
    let related = pc
        .get(
            r["links"]["relatedReferrals"]["uri"].as_str().unwrap(),
            &pc.admin,
        )
        .await;
    assert_eq!(related.body["value"].as_array().unwrap().len(), 2);

    let mut unknown = referral_body("Lost engagement");
    unknown["engagementId"] = json!("00000000-0000-0000-0000-000000000000");
    let unknown = pc.post(REFERRALS, &pc.admin, &unknown).await;
    assert_eq!(unknown.status, 400);
    assert!(unknown.error_description().contains("engagement"));

    // The create sample sends Closed/Won: a valid combination is kept.
    let mut won = referral_body("Already won");
    won["status"] = json!("Closed");
    won["substatus"] = json!("Won");
    let won = pc.post(REFERRALS, &pc.admin, &won).await;
    assert_eq!(
        (won.body["status"].as_str(), won.body["substatus"].as_str()),
        (Some("Closed"), Some("Won"))
    );
    assert!(won.body["closedDateTime"].is_string());
    let mut nonsense = referral_body("Nonsense");
    nonsense["status"] = json!("Active");
    nonsense["substatus"] = json!("Won");
    assert_eq!(pc.post(REFERRALS, &pc.admin, &nonsense).await.status, 400);
}

#[tokio::test]
async fn a_retried_create_with_the_same_ms_request_id_makes_no_duplicate() {
    let pc = start().await;
    let create = |request_id: &'static str| {
        pc.http
            .post(pc.url(REFERRALS))
            .bearer_auth(&pc.admin)
            .header("MS-RequestId", request_id)
            .json(&referral_body("Idempotent"))
    };
    let first = pc
        .send(create("7f0c2a6e-1111-4bbb-8ccc-000000000001"))
        .await;
    let retry = pc
        .send(create("7f0c2a6e-1111-4bbb-8ccc-000000000001"))
        .await;
    assert_eq!((first.status, retry.status), (201, 201));
    assert_eq!(first.body["id"], retry.body["id"]);
    assert_eq!(
        retry.header("ms-requestid"),
        Some("7f0c2a6e-1111-4bbb-8ccc-000000000001")
    );
    let other = pc
        .send(create("7f0c2a6e-1111-4bbb-8ccc-000000000002"))
        .await;
    assert_ne!(other.body["id"], first.body["id"]);
    assert_eq!(pc.emulator().referrals().len(), 2);

    // A retried PATCH whose first try succeeded is not a 412 against its own change.
    let id = first.body["id"].as_str().unwrap();
    let etag = first.body["eTag"].as_str().unwrap().to_owned();
    let ops = json!([{"op": "replace", "path": "/name", "value": "Renamed"}]);
    let headers = [("If-Match", etag.as_str()), ("MS-RequestId", "patch-1")];
    assert_eq!(pc.patch(id, &ops, &headers).await.status, 204);
    assert_eq!(pc.patch(id, &ops, &headers).await.status, 204);
    let stale = pc.patch(id, &ops, &[("If-Match", etag.as_str())]).await;
    assert_eq!(stale.status, 412);
}

#[tokio::test]
async fn patch_applies_replace_and_add_and_refuses_the_rest() {
    let pc = start().await;
    let sent = pc
        .emulator()
        .send_referral(referral_body("Patchable"))
        .unwrap();
    let id = sent["id"].as_str().unwrap();
    pc.server.authority().advance_clock(Duration::from_secs(5));

    let ops = json!([
        {"op": "replace", "path": "/details/dealValue", "value": "10000"},
        {"op": "add", "path": "/team/-", "value": {"email": "jane.doe@contoso.com", "firstName": "Jane", "lastName": "Doe", "phoneNumber": "0000000001"}},
        {"op": "replace", "path": "/externalReferenceId", "value": "lead-42"}
    ]);
    let no_content = pc.patch(id, &ops, &[]).await;
    assert_eq!(no_content.status, 204);
    assert_eq!(no_content.body, Value::Null);
    let after = pc.emulator().referral(id).unwrap();
    assert_eq!(after["details"]["dealValue"], json!(10000));
    assert_eq!(after["team"].as_array().unwrap().len(), 2);
    assert_eq!(after["externalReferenceId"], "lead-42");
    assert_ne!(after["eTag"], sent["eTag"]);
    assert_ne!(after["updatedDateTime"], sent["updatedDateTime"]);
    assert_eq!(after["createdDateTime"], sent["createdDateTime"]);

    let represented = pc
        .patch(
            id,
            &json!([{"op": "replace", "path": "/details/notes", "value": "called"}]),
            &[("Prefer", "return=representation")],
        )
        .await;
    assert_eq!(represented.status, 200);
    assert_eq!(represented.body["details"]["notes"], "called");

    for op in ["remove", "move", "copy", "test"] {
        let refused = pc
            .patch(
                id,
                &json!([{"op": op, "path": "/name", "from": "/name", "value": "x"}]),
                &[],
            )
            .await;
        assert_eq!(refused.status, 400, "{op}");
        assert!(
            refused
                .error_description()
                .contains("only 'replace' and 'add'")
        );
    }
    for path in [
        "/id",
        "/engagementId",
        "/eTag",
        "/createdDateTime",
        "/organizationId",
        "/direction",
    ] {
        let refused = pc
            .patch(
                id,
                &json!([{"op": "replace", "path": path, "value": "x"}]),
                &[],
            )
            .await;
        assert_eq!(refused.status, 400, "{path}");
        assert!(refused.error_description().contains("read-only"), "{path}");
    }
    let bad_type = pc
        .patch(
            id,
            &json!([{"op": "replace", "path": "/details/dealValue", "value": "lots"}]),
            &[],
        )
        .await;
    assert_eq!(bad_type.status, 400);
    assert!(pc.patch(id, &json!({"op": "replace"}), &[]).await.status == 400);
    assert_eq!(
        pc.emulator().referral(id).unwrap()["details"]["notes"],
        "called"
    );
}

#[tokio::test]
async fn if_match_guards_concurrent_updates() {
    let pc = start().await;
    let sent = pc
        .emulator()
        .send_referral(referral_body("Contended"))
        .unwrap();
    let id = sent["id"].as_str().unwrap();
    let quoted = sent["eTag"].as_str().unwrap().to_owned();
    let bare = quoted.trim_matches('"').to_owned();
    let rename = |n: &str| json!([{"op": "replace", "path": "/name", "value": n}]);

    // The tag with or without its embedded quotes (the format is unconfirmed).
    assert_eq!(
        pc.patch(id, &rename("A"), &[("If-Match", &bare)])
            .await
            .status,
        204
    );
    let stale = pc.patch(id, &rename("B"), &[("If-Match", &quoted)]).await;
    assert_eq!(stale.status, 412);
    stale.error_description();
    assert_eq!(stale.body["code"], 2055);
    let current = pc.emulator().referral(id).unwrap()["eTag"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        pc.patch(id, &rename("B"), &[("If-Match", &current)])
            .await
            .status,
        204
    );
    assert_eq!(
        pc.patch(id, &rename("C"), &[("If-Match", "*")])
            .await
            .status,
        204
    );
    assert_eq!(pc.emulator().referral(id).unwrap()["name"], "C");

    // A PATCH that changes nothing keeps the version.
    let before = pc.emulator().referral(id).unwrap()["eTag"].clone();
    assert_eq!(pc.patch(id, &rename("C"), &[]).await.status, 204);
    assert_eq!(pc.emulator().referral(id).unwrap()["eTag"], before);
}

#[tokio::test]
async fn status_moves_only_along_the_documented_transitions() {
    let pc = start().await;
    let sent = pc
        .emulator()
        .send_referral(referral_body("Lifecycle"))
        .unwrap();
    let id = sent["id"].as_str().unwrap();
    let set = |s: &str, ss: &str| json!([{"op": "replace", "path": "/status", "value": s}, {"op": "replace", "path": "/substatus", "value": ss}]);
    let representation = [("Prefer", "return=representation")];

    let received = pc.patch(id, &set("New", "Received"), &representation).await;
    assert_eq!(received.status, 200);
    assert!(received.body.get("acceptedDateTime").is_none());
    let accepted = pc
        .patch(id, &set("Active", "Accepted"), &representation)
        .await;
    assert_eq!(accepted.status, 200);
    assert!(accepted.body["acceptedDateTime"].is_string());

    let back = pc.patch(id, &set("New", "Pending"), &[]).await;
    assert_eq!(back.status, 400);
    assert!(
        back.error_description()
            .contains("cannot change from Active to New")
    );
    let mismatched = pc.patch(id, &set("Closed", "Accepted"), &[]).await;
    assert_eq!(mismatched.status, 400);
    let half = pc
        .patch(
            id,
            &json!([{"op": "replace", "path": "/status", "value": "Closed"}]),
            &[],
        )
        .await;
    assert_eq!(half.status, 400);
    let unknown = pc.patch(id, &set("Paused", "Pending"), &[]).await;
    assert_eq!(unknown.status, 400);

    let won = pc.patch(id, &set("Closed", "Won"), &representation).await;
    assert_eq!(won.status, 200);
    assert!(won.body["closedDateTime"].is_string());
    assert_eq!(
        won.body["acceptedDateTime"],
        accepted.body["acceptedDateTime"]
    );
    assert_eq!(
        pc.patch(id, &set("Active", "Accepted"), &[]).await.status,
        400
    );
    assert_eq!(pc.patch(id, &set("Closed", "Lost"), &[]).await.status, 204);

    // Declining straight from New is allowed.
    let other = pc
        .emulator()
        .send_referral(referral_body("Declined"))
        .unwrap();
    let declined = pc
        .patch(
            other["id"].as_str().unwrap(),
            &set("Closed", "Declined"),
            &representation,
        )
        .await;
    assert_eq!(declined.status, 200);
    assert!(declined.body.get("acceptedDateTime").is_none());
}

#[tokio::test]
async fn the_obsolete_put_needs_if_match_and_keeps_server_fields() {
    let pc = start().await;
    let sent = pc
        .emulator()
        .send_referral(referral_body("Put me"))
        .unwrap();
    let id = sent["id"].as_str().unwrap();
    let put = |body: &Value, if_match: Option<&str>| {
        let mut r = pc
            .http
            .put(pc.url(&format!("{REFERRALS}/{id}")))
            .bearer_auth(&pc.admin)
            .json(body);
        if let Some(tag) = if_match {
            r = r.header("If-Match", tag);
        }
        r
    };
    let mut body = pc.get(&format!("{REFERRALS}/{id}"), &pc.admin).await.body;
    body["externalReferenceId"] = json!("lead-7");
    body["status"] = json!("Active");
    body["substatus"] = json!("Accepted");
    body["organizationId"] = json!("hijacked");
    body["createdDateTime"] = json!("2001-01-01T00:00:00Z");

    let missing = pc.send(put(&body, None)).await;
    assert_eq!(missing.status, 400);
    assert!(missing.error_description().contains("If-Match"));
    let stale = pc.send(put(&body, Some("\"not-it\""))).await;
    assert_eq!(stale.status, 412);

    let tag = body["eTag"].as_str().unwrap().to_owned();
    let ok = pc.send(put(&body, Some(&tag))).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(ok.body["externalReferenceId"], "lead-7");
    assert_eq!(ok.body["status"], "Active");
    assert_eq!(ok.body["organizationId"], sent["organizationId"]);
    assert_eq!(ok.body["createdDateTime"], sent["createdDateTime"]);
    assert!(ok.body.get("@odata.context").is_none());
    assert_ne!(ok.body["eTag"], sent["eTag"]);

    let mut regress = ok.body.clone();
    regress["status"] = json!("New");
    regress["substatus"] = json!("Pending");
    let tag = ok.body["eTag"].as_str().unwrap().to_owned();
    assert_eq!(pc.send(put(&regress, Some(&tag))).await.status, 400);
    let mut stripped = ok.body.clone();
    stripped.as_object_mut().unwrap().remove("details");
    assert_eq!(pc.send(put(&stripped, Some(&tag))).await.status, 400);
}

#[tokio::test]
async fn unknown_fields_clients_send_are_kept() {
    let pc = start().await;
    let mut body = referral_body("Future");
    body["fy27Field"] = json!({"nested": [1, 2]});
    body["details"]["incentiveTier"] = json!("Tier2");
    let created = pc.post(REFERRALS, &pc.admin, &body).await;
    let id = created.body["id"].as_str().unwrap();
    let got = pc.get(&format!("{REFERRALS}/{id}"), &pc.admin).await.body;
    assert_eq!(got["fy27Field"], json!({"nested": [1, 2]}));
    assert_eq!(got["details"]["incentiveTier"], "Tier2");
    let patched = pc
        .patch(
            id,
            &json!([{"op": "add", "path": "/customerProfile/address/geo", "value": {"lat": 47.6}}]),
            &[("Prefer", "return=representation")],
        )
        .await;
    assert_eq!(
        patched.body["customerProfile"]["address"]["geo"]["lat"],
        47.6
    );
    assert_eq!(patched.body["fy27Field"], json!({"nested": [1, 2]}));
}

#[tokio::test]
async fn microsofts_half_is_readable_but_not_writable() {
    let pc = start().await;
    let pair = pc.emulator().open_cosell(referral_body("Co-sell")).unwrap();
    let msft_id = pair.microsoft["id"].as_str().unwrap();
    assert_eq!(pair.microsoft["organizationId"], "msft");
    assert_eq!(
        pair.microsoft["target"][0],
        json!({"id": "msft", "type": "BusinessProfileLocation"})
    );
    assert_eq!(pair.microsoft["engagementId"], pair.partner["engagementId"]);
    let got = pc.get(&format!("{REFERRALS}/{msft_id}"), &pc.admin).await;
    assert_eq!(got.status, 200);
    let write = pc
        .patch(
            msft_id,
            &json!([{"op": "replace", "path": "/name", "value": "x"}]),
            &[],
        )
        .await;
    assert_eq!(write.status, 403);
}
