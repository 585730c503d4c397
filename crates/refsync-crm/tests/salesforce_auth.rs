//! Signing in: client credentials and JWT bearer (a key pair made here, its certificate
//! registered with the emulator's connected app), refused credentials, and sessions
//! that end mid-run — revoked by an admin or timed out on the org's clock — absorbed
//! by signing in again once.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod salesforce_support;

use refsync_core::ids::CrmEntity;
use refsync_crm::connector::{CrmConnector, CrmError};
use refsync_crm::salesforce::{SalesforceConnector, SalesforceSettings, SetupError};
use refsync_emulators::salesforce::config::{ConnectedAppConfig, INTEGRATION_USER};
use refsync_outbound::TokenCache;
use salesforce_support::{Org, config, referral, start, start_with};
use secrecy::SecretString;
use std::io::Write;

struct KeyPair {
    key_pem: String,
    cert_pem: String,
}

fn key_pair() -> KeyPair {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();
    let cert = rcgen::CertificateParams::new(vec!["refsync-jwt".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    KeyPair {
        key_pem: key.serialize_pem(),
        cert_pem: cert.pem(),
    }
}

fn key_file(pem: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(pem.as_bytes()).unwrap();
    f
}

/// An org whose app `jwt-app` trusts `registered`'s certificate for the integration user.
async fn jwt_org(
    registered: &KeyPair,
    signing: &tempfile::NamedTempFile,
    audience: Option<&str>,
) -> Org {
    let mut cfg = config();
    cfg.connected_apps.push(ConnectedAppConfig {
        name: "jwt".to_owned(),
        consumer_key: "jwt-app".to_owned(),
        consumer_secret: None,
        client_credentials_user: None,
        jwt_certificate_pem: Some(registered.cert_pem.clone()),
        jwt_preauthorized_users: vec![INTEGRATION_USER.to_owned()],
        scope: "api".to_owned(),
    });
    let path = signing.path().to_owned();
    let audience = audience.map(str::to_owned);
    start_with(cfg, move |s| {
        s.client_id = "jwt-app".to_owned();
        s.client_secret = None;
        s.jwt_username = Some(INTEGRATION_USER.to_owned());
        s.jwt_private_key_file = Some(path);
        s.jwt_audience = audience;
    })
    .await
}

/// One authenticated call that must succeed.
async fn read_something(org: &Org) -> Result<(), CrmError> {
    org.connector
        .get_by_referral(org.entity(CrmEntity::Opportunity), &referral("r-1"))
        .await
        .map(|_| ())
}

#[tokio::test]
async fn client_credentials_reach_the_instance_the_token_names() {
    let org = start().await;
    read_something(&org).await.unwrap();
    read_something(&org).await.unwrap();
    assert_eq!(org.calls(), 2, "the token endpoint is not an API call");
    let health = org.tokens.health_report();
    assert_eq!(health.len(), 1, "one cached token for the connector");
}

#[tokio::test]
async fn jwt_bearer_signs_in_with_the_registered_key() {
    let pair = key_pair();
    let file = key_file(&pair.key_pem);
    let org = jwt_org(&pair, &file, None).await;
    read_something(&org).await.unwrap();
    // `aud` may also name the public login host while tokens come from elsewhere.
    let org = jwt_org(&pair, &file, Some("https://login.salesforce.com")).await;
    read_something(&org).await.unwrap();
}

#[tokio::test]
async fn a_key_the_app_does_not_trust_is_an_auth_error() {
    let registered = key_pair();
    let other = key_pair();
    let file = key_file(&other.key_pem);
    let org = jwt_org(&registered, &file, None).await;
    let e = read_something(&org).await.unwrap_err();
    assert!(
        matches!(&e, CrmError::Auth(m) if m.contains("invalid_grant")),
        "{e:?}"
    );
    assert!(!e.is_transient());
}

#[tokio::test]
async fn a_wrong_secret_is_an_auth_error_that_does_not_show_it() {
    let org = start_with(config(), |s| {
        s.client_secret = Some(SecretString::from("not-the-secret-42"));
    })
    .await;
    let e = read_something(&org).await.unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, CrmError::Auth(_)), "{text}");
    assert!(text.contains("invalid_client"), "{text}");
    assert!(!text.contains("not-the-secret-42"), "{text}");
    assert!(!format!("{:?}", org.connector).contains("not-the-secret-42"));
    assert_eq!(org.calls(), 0);
}

#[tokio::test]
async fn a_key_file_that_is_not_a_key_is_refused_at_start_without_its_contents() {
    let file =
        key_file("-----BEGIN PRIVATE KEY-----\nnot-a-key-material\n-----END PRIVATE KEY-----\n");
    let settings = SalesforceSettings {
        client_id: "jwt-app".into(),
        jwt_username: Some(INTEGRATION_USER.into()),
        jwt_private_key_file: Some(file.path().to_owned()),
        ..SalesforceSettings::default()
    };
    let e = SalesforceConnector::new(settings, &TokenCache::new()).unwrap_err();
    assert!(matches!(e, SetupError::PrivateKey { .. }));
    assert!(!e.to_string().contains("not-a-key-material"), "{e}");
}

#[tokio::test]
async fn revoked_sessions_are_absorbed_by_signing_in_again() {
    let org = start().await;
    read_something(&org).await.unwrap();
    org.revoke_sessions().await;
    read_something(&org).await.unwrap();
    assert_eq!(
        org.calls(),
        2,
        "the refused call was not counted, the retry was"
    );
}

#[tokio::test]
async fn a_session_that_times_out_on_the_org_clock_is_absorbed() {
    let org = start().await;
    read_something(&org).await.unwrap();
    // Past the org's 2-hour inactivity timeout; the cached token still looks fresh here.
    org.advance(2 * 60 * 60 + 1);
    read_something(&org).await.unwrap();
    read_something(&org).await.unwrap();
}

#[tokio::test]
async fn an_org_that_keeps_refusing_the_session_is_an_auth_error() {
    let org = start().await;
    read_something(&org).await.unwrap();
    // Every API call answers 401, even with a fresh token.
    org.emulator
        .faults()
        .install(
            refsync_emulators::faults::FaultRule::status_times(401, 10).on_path("/services/data"),
        )
        .unwrap();
    let e = read_something(&org).await.unwrap_err();
    assert!(
        matches!(&e, CrmError::Auth(m) if m.contains("INVALID_SESSION_ID")),
        "{e:?}"
    );
    assert_eq!(
        org.emulator.faults().list()[0].fired,
        2,
        "one retry with a new token"
    );
}
