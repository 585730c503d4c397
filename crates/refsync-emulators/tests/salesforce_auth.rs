//! OAuth grants, token errors, sessions and the versions list.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod salesforce_support;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use refsync_emulators::salesforce::config::{
    ConnectedAppConfig, DEMO_CONSUMER_KEY, DEMO_CONSUMER_SECRET, INTEGRATION_USER, SELLER_USER,
    SalesforceConfig,
};
use reqwest::StatusCode;
use salesforce_support::{V, reply, start, start_time, start_with};
use serde_json::json;

#[tokio::test]
async fn client_credentials_returns_a_signed_token_response() {
    let org = start().await;
    let r = org
        .token_request(&[
            ("grant_type", "client_credentials"),
            ("client_id", DEMO_CONSUMER_KEY),
            ("client_secret", DEMO_CONSUMER_SECRET),
        ])
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let b = &r.body;
    let instance = org.url("").trim_end_matches('/').to_owned();
    assert_eq!(b["instance_url"], json!(instance));
    assert_eq!(b["token_type"], "Bearer");
    assert_eq!(b["scope"], "api");
    assert_eq!(
        b["issued_at"],
        json!(start_time().timestamp_millis().to_string())
    );
    let id = b["id"].as_str().unwrap();
    assert_eq!(
        id,
        format!(
            "{instance}/id/{}/{}",
            org.emulator.org_id(),
            org.integration_user_id()
        )
    );
    let token = b["access_token"].as_str().unwrap();
    assert!(token.starts_with(&org.emulator.org_id()[..15]));
    assert!(token.contains('!'));
    // signature = Base64(HMAC-SHA256(consumer secret, id + issued_at)).
    let key = aws_lc_rs::hmac::Key::new(
        aws_lc_rs::hmac::HMAC_SHA256,
        DEMO_CONSUMER_SECRET.as_bytes(),
    );
    let expected = aws_lc_rs::hmac::sign(
        &key,
        format!("{id}{}", b["issued_at"].as_str().unwrap()).as_bytes(),
    );
    assert_eq!(b["signature"], json!(STANDARD.encode(expected.as_ref())));
    // Two grants give two different tokens, both usable.
    let other = org.client_credentials_token().await;
    assert_ne!(other, token);
}

#[tokio::test]
async fn client_credentials_may_use_http_basic() {
    let org = start().await;
    let response = org
        .http
        .post(org.url("/services/oauth2/token"))
        .basic_auth(DEMO_CONSUMER_KEY, Some(DEMO_CONSUMER_SECRET))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    let r = reply(response).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
}

#[tokio::test]
async fn token_errors_use_salesforce_codes() {
    let org = start().await;
    type Form<'a> = &'a [(&'a str, &'a str)];
    let cases: [(Form<'_>, &str, &str); 5] = [
        (
            &[
                ("grant_type", "client_credentials"),
                ("client_id", "nope"),
                ("client_secret", "x"),
            ],
            "invalid_client_id",
            "client identifier invalid",
        ),
        (
            &[
                ("grant_type", "client_credentials"),
                ("client_id", DEMO_CONSUMER_KEY),
                ("client_secret", "wrong"),
            ],
            "invalid_client",
            "invalid client credentials",
        ),
        (
            &[("grant_type", "authorization_code")],
            "unsupported_grant_type",
            "grant type not supported",
        ),
        (&[], "unsupported_grant_type", "grant type not supported"),
        (
            &[
                ("grant_type", "password"),
                ("client_id", DEMO_CONSUMER_KEY),
                ("client_secret", DEMO_CONSUMER_SECRET),
                ("username", SELLER_USER),
                ("password", "wrong"),
            ],
            "invalid_grant",
            "authentication failure",
        ),
    ];
    for (form, error, description) in cases {
        let r = org.token_request(form).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{form:?}");
        assert_eq!(
            r.body,
            json!({"error": error, "error_description": description}),
            "{form:?}"
        );
    }
}

#[tokio::test]
async fn client_credentials_needs_a_run_as_user() {
    let mut config = SalesforceConfig::default();
    config.connected_apps.push(ConnectedAppConfig {
        name: "no-run-as".to_owned(),
        consumer_key: "no-run-as".to_owned(),
        client_credentials_user: None,
        ..config.connected_apps[0].clone()
    });
    let org = start_with(config).await;
    let r = org
        .token_request(&[
            ("grant_type", "client_credentials"),
            ("client_id", "no-run-as"),
            ("client_secret", DEMO_CONSUMER_SECRET),
        ])
        .await;
    assert_eq!(r.body["error"], "invalid_grant");
    assert_eq!(
        r.body["error_description"],
        "no client credentials user enabled"
    );
}

#[tokio::test]
async fn password_flow_runs_as_the_named_user() {
    let org = start().await;
    let r = org
        .token_request(&[
            ("grant_type", "password"),
            ("client_id", DEMO_CONSUMER_KEY),
            ("client_secret", DEMO_CONSUMER_SECRET),
            ("username", SELLER_USER),
            ("password", "demo-password"),
        ])
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert!(
        r.body["id"]
            .as_str()
            .unwrap()
            .ends_with(&org.seller_user_id())
    );
}

struct JwtApp {
    key_pem: String,
    cert_pem: String,
}

fn jwt_app() -> JwtApp {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();
    let cert = rcgen::CertificateParams::new(vec!["refsync-jwt".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    JwtApp {
        key_pem: key.serialize_pem(),
        cert_pem: cert.pem(),
    }
}

async fn grant(org: &salesforce_support::Org, jwt: String) -> salesforce_support::Reply {
    org.token_request(&[
        ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
        ("assertion", &jwt),
    ])
    .await
}

fn assertion(key_pem: &str, claims: serde_json::Value) -> String {
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(key_pem.as_bytes()).unwrap();
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
        &claims,
        &key,
    )
    .unwrap()
}

#[tokio::test]
async fn jwt_bearer_verifies_signature_audience_expiry_and_user() {
    let app = jwt_app();
    let stranger = jwt_app();
    let mut config = SalesforceConfig::default();
    config.connected_apps.push(ConnectedAppConfig {
        name: "jwt".to_owned(),
        consumer_key: "jwt-consumer-key".to_owned(),
        consumer_secret: None,
        client_credentials_user: None,
        jwt_certificate_pem: Some(app.cert_pem.clone()),
        jwt_preauthorized_users: vec![INTEGRATION_USER.to_owned()],
        scope: "api".to_owned(),
    });
    let org = start_with(config).await;
    let now = start_time().timestamp();
    let claims = |iss: &str, sub: &str, aud: &str, exp: i64| json!({"iss": iss, "sub": sub, "aud": aud, "exp": exp});

    let ok = grant(
        &org,
        assertion(
            &app.key_pem,
            claims(
                "jwt-consumer-key",
                INTEGRATION_USER,
                "https://login.salesforce.com",
                now + 120,
            ),
        ),
    )
    .await;
    assert_eq!(ok.status, StatusCode::OK, "{:?}", ok.body);
    assert!(
        ok.body.get("signature").is_none(),
        "no consumer secret to sign with"
    );
    let token = ok.body["access_token"].as_str().unwrap();
    let call = org
        .http
        .get(org.url(&format!("/services/data/{V}/limits")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(call.status(), StatusCode::OK);

    // The instance URL is an accepted audience too (My Domain login).
    let instance = org.url("").trim_end_matches('/').to_owned();
    let r = grant(
        &org,
        assertion(
            &app.key_pem,
            claims("jwt-consumer-key", INTEGRATION_USER, &instance, now + 60),
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    // Within the three minutes of skew.
    let r = grant(
        &org,
        assertion(
            &app.key_pem,
            claims(
                "jwt-consumer-key",
                INTEGRATION_USER,
                "https://login.salesforce.com",
                now - 170,
            ),
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);

    let failures = [
        (
            assertion(
                &stranger.key_pem,
                claims(
                    "jwt-consumer-key",
                    INTEGRATION_USER,
                    "https://login.salesforce.com",
                    now + 60,
                ),
            ),
            "invalid_grant",
            "invalid assertion",
        ),
        (
            assertion(
                &app.key_pem,
                claims(
                    "jwt-consumer-key",
                    INTEGRATION_USER,
                    "https://example.com",
                    now + 60,
                ),
            ),
            "invalid_grant",
            "audience is invalid",
        ),
        (
            assertion(
                &app.key_pem,
                claims(
                    "jwt-consumer-key",
                    INTEGRATION_USER,
                    "https://login.salesforce.com",
                    now - 400,
                ),
            ),
            "invalid_grant",
            "expired authorization code",
        ),
        (
            assertion(
                &app.key_pem,
                claims(
                    "jwt-consumer-key",
                    SELLER_USER,
                    "https://login.salesforce.com",
                    now + 60,
                ),
            ),
            "invalid_grant",
            "user hasn't approved this consumer",
        ),
        (
            assertion(
                &app.key_pem,
                claims(
                    "jwt-consumer-key",
                    "ghost@example.com",
                    "https://login.salesforce.com",
                    now + 60,
                ),
            ),
            "invalid_grant",
            "user hasn't approved this consumer",
        ),
        (
            assertion(
                &app.key_pem,
                claims(
                    "unknown-key",
                    INTEGRATION_USER,
                    "https://login.salesforce.com",
                    now + 60,
                ),
            ),
            "invalid_client_id",
            "client identifier invalid",
        ),
        ("not.a.jwt".to_owned(), "invalid_grant", "invalid assertion"),
    ];
    for (jwt, error, description) in failures {
        let r = grant(&org, jwt).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert_eq!(
            r.body,
            json!({"error": error, "error_description": description})
        );
    }
    // An app without a certificate cannot use the flow at all.
    let r = grant(
        &org,
        assertion(
            &app.key_pem,
            claims(
                DEMO_CONSUMER_KEY,
                INTEGRATION_USER,
                "https://login.salesforce.com",
                now + 60,
            ),
        ),
    )
    .await;
    assert_eq!(r.body["error_description"], "invalid assertion");
}

#[tokio::test]
async fn a_certificate_that_is_not_pem_is_refused_at_start_up() {
    let mut config = SalesforceConfig::default();
    config.connected_apps[0].jwt_certificate_pem =
        Some("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".to_owned());
    let err = refsync_emulators::salesforce::SalesforceEmulator::new(
        config,
        refsync_emulators::salesforce::Clock::System,
    )
    .unwrap_err();
    assert!(err.to_string().contains("connected app refsync"), "{err}");
}

#[tokio::test]
async fn calls_without_a_valid_session_get_invalid_session_id() {
    let mut org = start().await;
    org.token = "00Dbogus!token".to_owned();
    let r = org.get("/limits").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        r.body,
        json!([{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}])
    );
    assert_eq!(r.header("www-authenticate"), Some("Token"));
    assert!(r.header("sforce-limit-info").is_none());
    let none = reply(
        org.http
            .get(org.url(&format!("/services/data/{V}/limits")))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(none.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        org.emulator.api_usage().0,
        0,
        "unauthenticated calls are not counted"
    );
}

#[tokio::test]
async fn sessions_expire_after_the_inactivity_timeout() {
    let config = SalesforceConfig {
        session_timeout_secs: 900,
        ..SalesforceConfig::default()
    };
    let org = start_with(config).await;
    assert_eq!(org.get("/limits").await.status, StatusCode::OK);
    org.advance(800);
    assert_eq!(
        org.get("/limits").await.status,
        StatusCode::OK,
        "activity extends the session"
    );
    org.advance(800);
    assert_eq!(org.get("/limits").await.status, StatusCode::OK);
    org.advance(901);
    let r = org.get("/limits").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.error_code(), "INVALID_SESSION_ID");
}

#[tokio::test]
async fn revoking_sessions_through_the_control_api() {
    let org = start().await;
    let r = org
        .send(
            reqwest::Method::DELETE,
            "/_emulator/salesforce/sessions",
            None,
            &[],
        )
        .await;
    assert_eq!(r.body["revoked"], 1);
    assert_eq!(org.get("/limits").await.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn versions_list_is_public_and_uncounted_and_other_versions_are_404() {
    let org = start().await;
    let r = reply(
        org.http
            .get(org.url("/services/data/"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let list = r.body.as_array().unwrap();
    assert_eq!(list.len(), 17);
    assert_eq!(
        list[0],
        json!({"label": "Winter '21", "url": "/services/data/v50.0", "version": "50.0"})
    );
    assert_eq!(list[16]["version"], "66.0");
    assert!(r.header("sforce-limit-info").is_none());
    assert_eq!(org.emulator.api_usage().0, 0);
    for path in [
        "/services/data/v49.0/limits",
        "/services/data/v67.0/limits",
        "/services/data/59.0/limits",
        "/services/data/v59.1/limits",
    ] {
        let r = org.get(path).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(r.error_code(), "NOT_FOUND");
    }
    assert_eq!(
        org.get("/services/data/v50.0/limits").await.status,
        StatusCode::OK
    );
    assert_eq!(
        org.get("/services/data/v66.0/limits").await.status,
        StatusCode::OK
    );
}
