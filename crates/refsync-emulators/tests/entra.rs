#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
//! The Entra emulator through its HTTP surface: grants, errors, rotation, device
//! code, control API, and validation by resource servers.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use refsync_emulators::entra::{
    AcceptedTokens, BearerErrorKind, DEMO_ADMIN_USER, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET,
    DEMO_REFERRAL_USER, DEMO_TENANT_DOMAIN, DEMO_TENANT_ID, DEMO_USER_PASSWORD, EntraAuthority,
    EntraConfig,
};
use refsync_emulators::server::{EmulatorHandle, serve};
use serde_json::{Value, json};
use std::time::Duration;

const PC: &str = "https://api.partner.microsoft.com";
const PC_WEBHOOKS: &str = "https://api.partnercenter.microsoft.com";
const CRM: &str = "https://contoso.crm.dynamics.com";

struct Tenant {
    authority: EntraAuthority,
    server: EmulatorHandle,
    http: reqwest::Client,
}

async fn start(config: EntraConfig) -> Tenant {
    let authority = EntraAuthority::new(config).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = serve(authority.router(), listener).unwrap();
    Tenant {
        authority,
        server,
        http: reqwest::Client::new(),
    }
}

async fn demo() -> Tenant {
    start(EntraConfig::default()).await
}

impl Tenant {
    fn v2(&self) -> String {
        self.server
            .url(&format!("/{DEMO_TENANT_ID}/oauth2/v2.0/token"))
    }

    async fn post_form(&self, url: &str, form: &[(&str, &str)]) -> (StatusCode, Value) {
        let resp = self.http.post(url).form(form).send().await.unwrap();
        let status = StatusCode::from_u16(resp.status().as_u16()).unwrap();
        (status, resp.json().await.unwrap())
    }

    async fn app_token_v2(&self, scope: &str) -> (StatusCode, Value) {
        let id = DEMO_CLIENT_ID.to_string();
        self.post_form(
            &self.v2(),
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &id),
                ("client_secret", DEMO_CLIENT_SECRET),
                ("scope", scope),
            ],
        )
        .await
    }

    async fn password_v2(&self, user: &str, scope: &str) -> (StatusCode, Value) {
        let id = DEMO_CLIENT_ID.to_string();
        self.post_form(
            &self.v2(),
            &[
                ("grant_type", "password"),
                ("client_id", &id),
                ("client_secret", DEMO_CLIENT_SECRET),
                ("username", user),
                ("password", DEMO_USER_PASSWORD),
                ("scope", scope),
            ],
        )
        .await
    }

    async fn refresh_v2(&self, rt: &str) -> (StatusCode, Value) {
        let id = DEMO_CLIENT_ID.to_string();
        self.post_form(
            &self.v2(),
            &[
                ("grant_type", "refresh_token"),
                ("client_id", &id),
                ("client_secret", DEMO_CLIENT_SECRET),
                ("refresh_token", rt),
                ("scope", &format!("{PC}/.default offline_access")),
            ],
        )
        .await
    }
}

fn bearer(token: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        header::AUTHORIZATION,
        HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
    );
    h
}

fn assert_aad_error(body: &Value, error: &str, code: u64) {
    assert_eq!(body["error"], error, "{body}");
    assert_eq!(body["error_codes"], json!([code]), "{body}");
    let description = body["error_description"].as_str().unwrap();
    assert!(
        description.starts_with(&format!("AADSTS{code}: ")),
        "{description}"
    );
    assert!(description.contains("Trace ID: "));
    for field in ["timestamp", "trace_id", "correlation_id"] {
        assert!(body[field].is_string(), "{field} missing in {body}");
    }
}

fn claims_of(token: &str) -> Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).unwrap();
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&raw).unwrap()
}

#[tokio::test]
async fn client_credentials_v2_issue_app_only_tokens_without_refresh_token() {
    let t = demo().await;
    let (status, body) = t.app_token_v2(&format!("{PC_WEBHOOKS}/.default")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3599);
    assert_eq!(body["ext_expires_in"], 3599);
    assert!(body.get("refresh_token").is_none());
    let token = body["access_token"].as_str().unwrap();
    let claims = claims_of(token);
    assert_eq!(claims["aud"], PC_WEBHOOKS);
    assert_eq!(
        claims["iss"],
        format!("https://sts.windows.net/{DEMO_TENANT_ID}/")
    );
    assert_eq!(claims["tid"], DEMO_TENANT_ID.to_string());
    assert_eq!(claims["appid"], DEMO_CLIENT_ID.to_string());
    assert_eq!(claims["idtyp"], "app");
    assert!(claims.get("upn").is_none() && claims.get("scp").is_none());
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        3599
    );

    let ok = t
        .authority
        .authorize(&bearer(token), PC_WEBHOOKS, AcceptedTokens::Any)
        .unwrap();
    assert!(!ok.is_user());
    // The Referrals API takes App+User only: a valid app-only token is a 403.
    let e = t
        .authority
        .authorize(&bearer(token), PC_WEBHOOKS, AcceptedTokens::AppPlusUser)
        .unwrap_err();
    assert_eq!(e.kind(), BearerErrorKind::WrongTokenKind);
    assert_eq!(e.status(), StatusCode::FORBIDDEN);
    // Another resource's token is a 401 with a Bearer challenge.
    let e = t
        .authority
        .authorize(&bearer(token), CRM, AcceptedTokens::Any)
        .unwrap_err();
    assert_eq!(e.kind(), BearerErrorKind::WrongAudience);
    assert_eq!(e.status(), StatusCode::UNAUTHORIZED);
    assert!(
        e.www_authenticate()
            .starts_with("Bearer authorization_uri=\"")
    );
    assert!(e.www_authenticate().contains("error=\"invalid_token\""));
}

#[tokio::test]
async fn client_secret_may_come_by_http_basic() {
    let t = demo().await;
    let resp = t
        .http
        .post(t.v2())
        .basic_auth(DEMO_CLIENT_ID, Some(DEMO_CLIENT_SECRET))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", &format!("{CRM}/.default")),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["cache-control"].to_str().unwrap(),
        "no-store, no-cache"
    );
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        claims_of(body["access_token"].as_str().unwrap())["aud"],
        CRM
    );
}

#[tokio::test]
async fn bad_client_secret_is_401_invalid_client_and_never_echoed() {
    let t = demo().await;
    let id = DEMO_CLIENT_ID.to_string();
    let resp = t
        .http
        .post(t.v2())
        .header("client-request-id", "0b5b1c1e-2f3a-4b5c-8d6e-7f8091a2b3c4")
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", id.as_str()),
            ("client_secret", "wrong-secret-value"),
            ("scope", &format!("{PC}/.default")),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let text = resp.text().await.unwrap();
    assert!(!text.contains("wrong-secret-value"));
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_aad_error(&body, "invalid_client", 7000215);
    assert_eq!(
        body["correlation_id"],
        "0b5b1c1e-2f3a-4b5c-8d6e-7f8091a2b3c4"
    );

    // Client credentials without any secret: 401 AADSTS7000218.
    let (status, body) = t
        .post_form(
            &t.v2(),
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &id),
                ("scope", &format!("{PC}/.default")),
            ],
        )
        .await;
    assert_eq!(status, 401);
    assert_aad_error(&body, "invalid_client", 7000218);

    // Unknown application.
    let (status, body) = t
        .post_form(
            &t.v2(),
            &[
                ("grant_type", "client_credentials"),
                ("client_id", "00000000-0000-0000-0000-000000000001"),
                ("client_secret", "x"),
                ("scope", &format!("{PC}/.default")),
            ],
        )
        .await;
    assert_eq!(status, 400);
    assert_aad_error(&body, "unauthorized_client", 700016);
}

#[tokio::test]
async fn request_errors_use_the_documented_codes() {
    let t = demo().await;
    let id = DEMO_CLIENT_ID.to_string();
    let (s, b) = t.post_form(&t.v2(), &[("client_id", &id)]).await;
    assert_eq!(s, 400);
    assert_aad_error(&b, "invalid_request", 900144);
    assert!(
        b["error_description"]
            .as_str()
            .unwrap()
            .contains("'grant_type'")
    );

    let (s, b) = t
        .post_form(
            &t.v2(),
            &[("grant_type", "authorization_code"), ("client_id", &id)],
        )
        .await;
    assert_eq!(s, 400);
    assert_aad_error(&b, "unsupported_grant_type", 70003);

    let (s, b) = t.app_token_v2(&format!("{PC}/user_impersonation")).await;
    assert_eq!(s, 400);
    assert_aad_error(&b, "invalid_scope", 1002012);

    let (s, b) = t
        .app_token_v2(&format!("{PC}/.default {CRM}/.default"))
        .await;
    assert_eq!(s, 400);
    assert_aad_error(&b, "invalid_scope", 70011);

    let (s, b) = t.app_token_v2("https://evil.example.com/.default").await;
    assert_eq!(s, 400);
    assert_aad_error(&b, "invalid_resource", 500011);

    let (s, b) = t
        .post_form(
            &t.server.url("/not-a-tenant.example/oauth2/v2.0/token"),
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_eq!(s, 400);
    assert_aad_error(&b, "invalid_request", 90002);

    let (s, b) = t
        .post_form(
            &t.v2(),
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &id),
                ("client_secret", DEMO_CLIENT_SECRET),
            ],
        )
        .await;
    assert_eq!(s, 400);
    assert_aad_error(&b, "invalid_request", 900144);

    let counters = t.authority.counters();
    assert_eq!(counters.errors["invalid_scope"], 2);
    assert!(counters.issued.is_empty());
}

#[tokio::test]
async fn v1_password_grant_matches_the_partner_center_sample() {
    // partner-center.md §1.2: v1 ROPC with resource= and scope=openid, tenant "common".
    let t = demo().await;
    let id = DEMO_CLIENT_ID.to_string();
    let (status, body) = t
        .post_form(
            &t.server.url("/common/oauth2/token"),
            &[
                ("resource", PC),
                ("grant_type", "password"),
                ("scope", "openid"),
                ("client_id", &id),
                ("client_secret", DEMO_CLIENT_SECRET),
                ("username", DEMO_ADMIN_USER),
                ("password", DEMO_USER_PASSWORD),
            ],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["resource"], PC);
    // The v1 endpoint sends its numbers as strings.
    assert_eq!(body["expires_in"], "3599");
    assert_eq!(body["ext_expires_in"], "3599");
    assert!(body["expires_on"].is_string() && body["not_before"].is_string());
    assert_eq!(body["scope"], "user_impersonation");
    assert!(body["refresh_token"].as_str().unwrap().starts_with("0.A"));
    let id_token = claims_of(body["id_token"].as_str().unwrap());
    assert_eq!(id_token["upn"], DEMO_ADMIN_USER);
    assert_eq!(id_token["aud"], DEMO_CLIENT_ID.to_string());

    let token = body["access_token"].as_str().unwrap();
    let claims = t
        .authority
        .authorize(&bearer(token), PC, AcceptedTokens::AppPlusUser)
        .unwrap();
    assert!(claims.is_user());
    assert_eq!(claims.upn.as_deref(), Some(DEMO_ADMIN_USER));
    assert_eq!(claims.scp.as_deref(), Some("user_impersonation"));
    assert_eq!(t.authority.roles_of(&claims), vec!["Referral Admin"]);
    let e = t
        .authority
        .authorize(&bearer(token), PC, AcceptedTokens::AppOnly)
        .unwrap_err();
    assert_eq!(e.status(), StatusCode::FORBIDDEN);
    assert_eq!(t.authority.counters().issued["password"], 1);
}

#[tokio::test]
async fn ropc_errors_for_bad_password_and_unknown_user() {
    let t = demo().await;
    let id = DEMO_CLIENT_ID.to_string();
    let form = |user: &'static str, pw: &'static str| {
        vec![
            ("grant_type", "password".to_owned()),
            ("client_id", id.clone()),
            ("username", user.to_owned()),
            ("password", pw.to_owned()),
            ("scope", format!("{PC}/.default")),
        ]
    };
    let resp = t
        .http
        .post(t.v2())
        .form(&form(DEMO_ADMIN_USER, "not-the-password"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let text = resp.text().await.unwrap();
    assert!(!text.contains("not-the-password"));
    assert_aad_error(
        &serde_json::from_str(&text).unwrap(),
        "invalid_grant",
        50126,
    );

    let resp = t
        .http
        .post(t.v2())
        .form(&form("nobody@contoso.onmicrosoft.com", "x"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert_aad_error(&resp.json().await.unwrap(), "invalid_grant", 50034);
}

#[tokio::test]
async fn v2_issues_refresh_tokens_only_for_offline_access() {
    let t = demo().await;
    let (_, without) = t
        .password_v2(DEMO_REFERRAL_USER, &format!("{PC}/.default"))
        .await;
    assert!(without.get("refresh_token").is_none(), "{without}");
    assert_eq!(without["scope"], format!("{PC}/user_impersonation"));
    let (_, with) = t
        .password_v2(DEMO_REFERRAL_USER, &format!("{PC}/.default offline_access"))
        .await;
    assert!(with["refresh_token"].is_string(), "{with}");
    assert_eq!(with["expires_in"], 3599);
}

#[tokio::test]
async fn refresh_tokens_rotate_and_used_ones_are_invalidated() {
    let t = demo().await;
    let (_, first) = t
        .password_v2(DEMO_ADMIN_USER, &format!("{PC}/.default offline_access"))
        .await;
    let rt1 = first["refresh_token"].as_str().unwrap().to_owned();
    let (s, second) = t.refresh_v2(&rt1).await;
    assert_eq!(s, 200, "{second}");
    let rt2 = second["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(rt1, rt2);
    // Reusing the rotated-away token fails; the new one works.
    let (s, reused) = t.refresh_v2(&rt1).await;
    assert_eq!(s, 400);
    assert_aad_error(&reused, "invalid_grant", 50173);
    let (s, third) = t.refresh_v2(&rt2).await;
    assert_eq!(s, 200);
    // A refresh token may be redeemed for another resource.
    let id = DEMO_CLIENT_ID.to_string();
    let rt3 = third["refresh_token"].as_str().unwrap();
    let (s, crm) = t
        .post_form(
            &t.v2(),
            &[
                ("grant_type", "refresh_token"),
                ("client_id", &id),
                ("refresh_token", rt3),
                ("scope", &format!("{CRM}/user_impersonation offline_access")),
            ],
        )
        .await;
    assert_eq!(s, 200, "{crm}");
    assert_eq!(claims_of(crm["access_token"].as_str().unwrap())["aud"], CRM);
    assert_eq!(t.authority.counters().issued["refresh_token"], 3);

    // Garbage is AADSTS9002313.
    let (s, garbage) = t.refresh_v2("0.Anot-a-token").await;
    assert_eq!(s, 400);
    assert_aad_error(&garbage, "invalid_grant", 9002313);
}

#[tokio::test]
async fn rotation_without_invalidation_keeps_old_tokens_usable() {
    let t = start(EntraConfig {
        invalidate_used_refresh_tokens: false,
        ..EntraConfig::default()
    })
    .await;
    let (_, first) = t
        .password_v2(DEMO_ADMIN_USER, &format!("{PC}/.default offline_access"))
        .await;
    let rt1 = first["refresh_token"].as_str().unwrap().to_owned();
    let (s, second) = t.refresh_v2(&rt1).await;
    assert_eq!(s, 200);
    assert_ne!(second["refresh_token"].as_str().unwrap(), rt1);
    let (s, _) = t.refresh_v2(&rt1).await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn revoked_and_expired_refresh_tokens() {
    let t = demo().await;
    let scope = format!("{PC}/.default offline_access");
    let (_, a) = t.password_v2(DEMO_ADMIN_USER, &scope).await;
    let (_, b) = t.password_v2(DEMO_REFERRAL_USER, &scope).await;

    let resp = t
        .http
        .post(t.server.url(&format!(
            "/_emulator/entra/users/{DEMO_ADMIN_USER}/revoke-refresh-tokens"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.json::<Value>().await.unwrap()["revoked"], 1);
    let (s, revoked) = t.refresh_v2(a["refresh_token"].as_str().unwrap()).await;
    assert_eq!(s, 400);
    assert_aad_error(&revoked, "invalid_grant", 50173);

    t.authority
        .advance_clock(Duration::from_secs(91 * 24 * 3600));
    let (s, expired) = t.refresh_v2(b["refresh_token"].as_str().unwrap()).await;
    assert_eq!(s, 400);
    assert_aad_error(&expired, "invalid_grant", 700082);
}

#[tokio::test]
async fn access_tokens_really_expire_and_can_be_expired_early() {
    let t = demo().await;
    // Lifetime through the control API.
    let resp = t
        .http
        .put(t.server.url("/_emulator/entra/token-lifetime"))
        .json(&json!({"seconds": 60}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let (_, body) = t.app_token_v2(&format!("{CRM}/.default")).await;
    assert_eq!(body["expires_in"], 60);
    let token = body["access_token"].as_str().unwrap().to_owned();
    assert!(
        t.authority
            .authorize(&bearer(&token), CRM, AcceptedTokens::Any)
            .is_ok()
    );
    t.http
        .post(t.server.url("/_emulator/entra/clock/advance"))
        .json(&json!({"seconds": 60}))
        .send()
        .await
        .unwrap();
    let e = t
        .authority
        .authorize(&bearer(&token), CRM, AcceptedTokens::Any)
        .unwrap_err();
    assert_eq!(e.kind(), BearerErrorKind::Expired);

    // "Expire all issued tokens now" hits live tokens and spares later ones.
    let (_, fresh) = t.app_token_v2(&format!("{CRM}/.default")).await;
    let fresh = fresh["access_token"].as_str().unwrap().to_owned();
    let resp = t
        .http
        .post(t.server.url("/_emulator/entra/expire-access-tokens"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.json::<Value>().await.unwrap()["expired"], 1);
    let e = t
        .authority
        .authorize(&bearer(&fresh), CRM, AcceptedTokens::Any)
        .unwrap_err();
    assert_eq!(e.kind(), BearerErrorKind::Expired);
    let (_, later) = t.app_token_v2(&format!("{CRM}/.default")).await;
    assert!(
        t.authority
            .authorize(
                &bearer(later["access_token"].as_str().unwrap()),
                CRM,
                AcceptedTokens::Any
            )
            .is_ok()
    );
}

#[tokio::test]
async fn tokens_from_another_authority_or_tampered_are_refused() {
    let t = demo().await;
    let other = EntraAuthority::demo().unwrap();
    let foreign = other.issue_app_token(DEMO_CLIENT_ID, CRM).unwrap();
    let e = t
        .authority
        .authorize(&bearer(&foreign), CRM, AcceptedTokens::Any)
        .unwrap_err();
    assert_eq!(e.kind(), BearerErrorKind::BadSignature);
    assert_eq!(e.status(), StatusCode::UNAUTHORIZED);

    // A genuine token is accepted (and its check remembered); the same token with
    // its claims swapped for another's, or its signature altered, is not.
    let genuine = t.authority.issue_app_token(DEMO_CLIENT_ID, CRM).unwrap();
    for _ in 0..2 {
        assert!(
            t.authority
                .authorize(&bearer(&genuine), CRM, AcceptedTokens::Any)
                .is_ok()
        );
    }
    let [header, _, signature]: [&str; 3] =
        genuine.split('.').collect::<Vec<_>>().try_into().unwrap();
    let foreign_claims = foreign.split('.').nth(1).unwrap();
    let mut flipped = signature.to_owned().into_bytes();
    flipped[10] = if flipped[10] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).unwrap();
    for forged in [
        format!("{header}.{foreign_claims}.{signature}"),
        format!("{header}.{}.{flipped}", genuine.split('.').nth(1).unwrap()),
    ] {
        let e = t
            .authority
            .authorize(&bearer(&forged), CRM, AcceptedTokens::Any)
            .unwrap_err();
        assert_eq!(e.kind(), BearerErrorKind::BadSignature, "{forged}");
    }

    let e = t
        .authority
        .authorize(&HeaderMap::new(), CRM, AcceptedTokens::Any)
        .unwrap_err();
    assert_eq!(e.kind(), BearerErrorKind::Missing);
    assert!(!e.www_authenticate().contains("error="));
    let e = t
        .authority
        .authorize(&bearer("not.a.jwt"), CRM, AcceptedTokens::Any)
        .unwrap_err();
    assert_eq!(e.kind(), BearerErrorKind::Malformed);
    assert_eq!(t.authority.counters().bearer_refusals, 5);

    let response = axum::response::IntoResponse::into_response(e);
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(
        response.headers()[header::WWW_AUTHENTICATE]
            .to_str()
            .unwrap()
            .starts_with("Bearer ")
    );
}

async fn start_device_flow(t: &Tenant, tenant: &str) -> Value {
    let id = DEMO_CLIENT_ID.to_string();
    let (s, body) = t
        .post_form(
            &t.server.url(&format!("/{tenant}/oauth2/v2.0/devicecode")),
            &[
                ("client_id", id.as_str()),
                ("scope", &format!("{PC}/.default offline_access")),
            ],
        )
        .await;
    assert_eq!(s, 200, "{body}");
    body
}

async fn poll(t: &Tenant, device_code: &str) -> (StatusCode, Value) {
    let id = DEMO_CLIENT_ID.to_string();
    t.post_form(
        &t.v2(),
        &[
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("client_id", &id),
            ("device_code", device_code),
        ],
    )
    .await
}

#[tokio::test]
async fn device_code_flow_pending_slow_down_approve_redeem() {
    let t = demo().await;
    let started = start_device_flow(&t, DEMO_TENANT_DOMAIN).await;
    assert_eq!(started["expires_in"], 900);
    assert_eq!(started["interval"], 5);
    let user_code = started["user_code"].as_str().unwrap();
    let device_code = started["device_code"].as_str().unwrap();
    let uri = started["verification_uri"].as_str().unwrap();
    assert_eq!(uri, t.server.url("/devicelogin"));
    assert!(started["message"].as_str().unwrap().contains(user_code));

    let (s, b) = poll(&t, device_code).await;
    assert_eq!(s, 400);
    assert_aad_error(&b, "authorization_pending", 70016);
    // Polled again within `interval`: slow down.
    let (s, b) = poll(&t, device_code).await;
    assert_eq!(s, 400);
    assert_eq!(b["error"], "slow_down");

    let listed: Value = t
        .http
        .get(t.server.url("/_emulator/entra/device-codes"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["device_codes"][0]["user_code"], user_code);
    assert_eq!(listed["device_codes"][0]["state"], "pending");

    let resp = t
        .http
        .post(t.server.url(&format!(
            "/_emulator/entra/device-codes/{user_code}/approve"
        )))
        .json(&json!({"username": DEMO_REFERRAL_USER}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    t.authority.advance_clock(Duration::from_secs(5));
    let (s, b) = poll(&t, device_code).await;
    assert_eq!(s, 200, "{b}");
    assert!(b["refresh_token"].is_string());
    let claims = claims_of(b["access_token"].as_str().unwrap());
    assert_eq!(claims["upn"], DEMO_REFERRAL_USER);
    assert_eq!(claims["aud"], PC);
    // A device code is redeemed once.
    t.authority.advance_clock(Duration::from_secs(5));
    let (s, b) = poll(&t, device_code).await;
    assert_eq!(s, 400);
    assert_eq!(b["error"], "bad_verification_code");
    assert_eq!(t.authority.counters().issued["device_code"], 1);
}

#[tokio::test]
async fn device_codes_can_be_declined_or_expire() {
    let t = demo().await;
    let declined = start_device_flow(&t, "organizations").await;
    t.authority
        .decline_device_code(declined["user_code"].as_str().unwrap())
        .unwrap();
    let (s, b) = poll(&t, declined["device_code"].as_str().unwrap()).await;
    assert_eq!(s, 400);
    assert_eq!(b["error"], "authorization_declined");

    let expiring = start_device_flow(&t, &DEMO_TENANT_ID.to_string()).await;
    t.authority.advance_clock(Duration::from_secs(901));
    let (s, b) = poll(&t, expiring["device_code"].as_str().unwrap()).await;
    assert_eq!(s, 400);
    assert_aad_error(&b, "expired_token", 70020);
    assert!(
        t.authority
            .approve_device_code(expiring["user_code"].as_str().unwrap(), DEMO_ADMIN_USER)
            .is_err()
    );
}

#[tokio::test]
async fn the_sign_in_page_approves_with_the_right_password_only() {
    let t = demo().await;
    let started = start_device_flow(&t, "common").await;
    let user_code = started["user_code"].as_str().unwrap();
    let page = t
        .http
        .get(t.server.url("/devicelogin"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("name=\"user_code\"") && html.contains("type=\"password\""));

    let resp = t
        .http
        .post(t.server.url("/devicelogin"))
        .form(&[
            ("user_code", user_code),
            ("username", DEMO_ADMIN_USER),
            ("password", "wrong"),
            ("action", "approve"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert!(resp.text().await.unwrap().contains("password is incorrect"));
    let (s, _) = poll(&t, started["device_code"].as_str().unwrap()).await;
    assert_eq!(s, 400);

    let resp = t
        .http
        .post(t.server.url("/devicelogin"))
        .form(&[
            ("user_code", &user_code.to_ascii_lowercase()[..]),
            ("username", DEMO_ADMIN_USER),
            ("password", DEMO_USER_PASSWORD),
            ("action", "approve"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.text().await.unwrap().contains("You have signed in"));
    t.authority.advance_clock(Duration::from_secs(5));
    let (s, b) = poll(&t, started["device_code"].as_str().unwrap()).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(
        claims_of(b["access_token"].as_str().unwrap())["upn"],
        DEMO_ADMIN_USER
    );
}

#[tokio::test]
async fn one_authority_serves_several_emulators() {
    // The demo: the token endpoint sits on the Partner Center listener next to the
    // API and the fault control routes, and a second emulator validates against the
    // same authority.
    use axum::routing::get;
    use refsync_emulators::faults::{FaultInjector, FaultRule, responders};
    let authority = EntraAuthority::demo().unwrap();
    let guard = authority.clone();
    let referrals = axum::Router::new().route(
        "/v1.0/engagements/referrals",
        get(move |headers: HeaderMap| {
            let guard = guard.clone();
            async move {
                match guard.authorize(&headers, PC, AcceptedTokens::AppPlusUser) {
                    Ok(claims) => {
                        axum::response::IntoResponse::into_response(claims.upn.unwrap_or_default())
                    }
                    Err(e) => axum::response::IntoResponse::into_response(e),
                }
            }
        }),
    );
    let faults = FaultInjector::new(responders::partner_center());
    let app = faults.mount(referrals.merge(authority.router()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = serve(app, listener).unwrap();
    let http = reqwest::Client::new();
    let token_url = server.url(&format!("/{DEMO_TENANT_ID}/oauth2/v2.0/token"));
    let token = |scope: String| {
        let http = http.clone();
        let token_url = token_url.clone();
        async move {
            let body: Value = http
                .post(&token_url)
                .form(&[
                    ("grant_type", "password"),
                    ("client_id", &DEMO_CLIENT_ID.to_string()),
                    ("username", DEMO_ADMIN_USER),
                    ("password", DEMO_USER_PASSWORD),
                    ("scope", &scope),
                ])
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            body["access_token"].as_str().unwrap().to_owned()
        }
    };
    let pc_token = token(format!("{PC}/.default")).await;
    let resp = http
        .get(server.url("/v1.0/engagements/referrals"))
        .bearer_auth(&pc_token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), DEMO_ADMIN_USER);
    let resp = http
        .get(server.url("/v1.0/engagements/referrals"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert!(resp.headers().contains_key("www-authenticate"));

    // The second emulator (say Dataverse) validates with the same authority.
    let crm_token = token(format!("{CRM}/.default")).await;
    assert!(
        authority
            .authorize(&bearer(&crm_token), CRM, AcceptedTokens::Any)
            .is_ok()
    );

    // Faults reach the token endpoint too, but never the control API.
    faults
        .install(FaultRule::status_times(503, 1).on_path(format!("/{DEMO_TENANT_ID}/oauth2")))
        .unwrap();
    let resp = http.post(&token_url).send().await.unwrap();
    assert_eq!(resp.status(), 503);
    let resp = http
        .get(server.url("/_emulator/entra/counters"))
        .send()
        .await
        .unwrap();
    let counters: Value = resp.json().await.unwrap();
    assert_eq!(counters["issued"]["password"], 2);
    assert_eq!(counters["bearer_refusals"], 1);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn v1_device_code_endpoint_uses_v1_field_names() {
    let t = demo().await;
    let id = DEMO_CLIENT_ID.to_string();
    let (s, body) = t
        .post_form(
            &t.server.url("/common/oauth2/devicecode"),
            &[("client_id", id.as_str()), ("resource", CRM)],
        )
        .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["expires_in"], "900");
    assert_eq!(body["interval"], "5");
    assert!(
        body["verification_url"]
            .as_str()
            .unwrap()
            .ends_with("/devicelogin")
    );
    t.authority
        .approve_device_code(body["user_code"].as_str().unwrap(), DEMO_ADMIN_USER)
        .unwrap();
    // v1 clients poll with grant_type=device_code and code=….
    let (s, token) = t
        .post_form(
            &t.server.url("/common/oauth2/token"),
            &[
                ("grant_type", "device_code"),
                ("client_id", id.as_str()),
                ("resource", CRM),
                ("code", body["device_code"].as_str().unwrap()),
            ],
        )
        .await;
    assert_eq!(s, 200, "{token}");
    assert_eq!(token["resource"], CRM);
    assert_eq!(token["expires_in"], "3599");
    assert!(token["refresh_token"].is_string());
}
