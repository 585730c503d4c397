//! `refsync login` against the Partner Center emulator's Entra ID: the device-code
//! sign-in stores the refresh token encrypted in the store; the Referrals API then
//! works unattended; rotated refresh tokens are persisted at once; a revoked one
//! is reported as "run refsync login"; no secret shows in Debug or errors.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use refsync::config::{Config, Secret, SignIn};
use refsync::signin::{
    EncryptionKey, REFRESH_TOKEN_SECRET, StoreVault, partner_center_entra, read_sign_in_status,
    referrals_token_source, run_login,
};
use refsync_emulators::entra::{
    DEMO_ADMIN_USER, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_TENANT_ID, DEMO_USER_PASSWORD,
};
use refsync_emulators::partner_center::{
    PartnerCenterConfig, PartnerCenterEmulator, PartnerCenterServer,
};
use refsync_outbound::TokenSource;
use refsync_outbound::entra::DeviceCodeOptions;
use refsync_outbound::token::{HealthState, RefreshTokenVault};
use refsync_partner_center::referrals::{ReferralQuery, ReferralsClient};
use refsync_store::Store;
use refsync_store::test_harness::sqlite_url_for_test;
use secrecy::ExposeSecret;
use std::sync::Arc;
use std::time::Duration;

const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

async fn emulator() -> PartnerCenterServer {
    let mut config = PartnerCenterConfig::for_tests();
    config.entra.device_code_interval = Duration::from_secs(1);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    PartnerCenterEmulator::start(config, listener).unwrap()
}

fn config_for(pc: &PartnerCenterServer, store_url: &str) -> Config {
    let mut config = Config::default();
    config.store.url = store_url.to_owned();
    config.store.encryption_key = Some(Secret::new(KEY));
    config.partner_center.api_url = pc.base_url().to_owned();
    config.partner_center.authority_url = pc.base_url().to_owned();
    config.partner_center.tenant = DEMO_TENANT_ID.to_string();
    config.partner_center.client_id = DEMO_CLIENT_ID.to_string();
    config.partner_center.client_secret = Some(Secret::new(DEMO_CLIENT_SECRET));
    config
}

fn fast_polling() -> DeviceCodeOptions {
    DeviceCodeOptions {
        min_interval: Duration::from_millis(10),
        max_wait: Duration::from_secs(30),
        ..DeviceCodeOptions::default()
    }
}

/// Runs the device-code login, approving the code as the demo admin the moment it
/// is shown (what a person does in a browser).
async fn login(pc: &PartnerCenterServer, config: &Config, store: Arc<dyn Store>) {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let approve = {
        let authority = pc.authority().clone();
        tokio::spawn(async move {
            let user_code: String = rx.await.unwrap();
            authority
                .approve_device_code(&user_code, DEMO_ADMIN_USER)
                .unwrap();
        })
    };
    let outcome = run_login(config, store, &fast_polling(), move |prompt| {
        assert!(prompt.message.contains(&prompt.user_code));
        tx.send(prompt.user_code.clone()).unwrap();
    })
    .await
    .unwrap();
    approve.await.unwrap();
    assert!(!outcome.access_token.secret().expose_secret().is_empty());
}

#[tokio::test]
async fn device_code_login_then_unattended_referrals_with_rotation_and_revocation() {
    let pc = emulator().await;
    pc.emulator().send_generated_referrals(2);
    let db = sqlite_url_for_test();
    let config = config_for(&pc, db.url());
    let store = refsync_store::open_store(db.url()).await.unwrap();

    let before = read_sign_in_status(&config, store.as_ref()).await.unwrap();
    assert!(!before.refresh_token_stored);

    login(&pc, &config, store.clone()).await;

    // Stored, and encrypted: the plaintext refresh token never reaches the store.
    let sealed = store
        .get_secret(REFRESH_TOKEN_SECRET)
        .await
        .unwrap()
        .unwrap();
    let vault = StoreVault::new(store.clone(), EncryptionKey::from_config(&config).unwrap());
    let first = vault.load().await.unwrap().unwrap();
    let first = first.expose_secret();
    assert!(first.len() > 16);
    assert!(
        !sealed
            .ciphertext
            .windows(first.len())
            .any(|w| w == first.as_bytes()),
        "refresh token stored in plaintext"
    );
    let status = read_sign_in_status(&config, store.as_ref()).await.unwrap();
    assert!(status.refresh_token_stored);

    // A later process (a fresh token cache) works unattended from the stored token.
    let entra = partner_center_entra(&config).unwrap();
    let tokens = referrals_token_source(&config, &entra, store.clone()).unwrap();
    let client = ReferralsClient::connect(
        url::Url::parse(&config.partner_center.api_url).unwrap(),
        tokens.clone(),
    )
    .unwrap();
    let listed = client
        .list(&ReferralQuery::new())
        .collect_all()
        .await
        .unwrap();
    assert_eq!(listed.len(), 2);

    // That refresh rotated the token; the new one was persisted before use, so a
    // second fresh process (old token now invalid in the emulator) still works.
    let rotated = store
        .get_secret(REFRESH_TOKEN_SECRET)
        .await
        .unwrap()
        .unwrap();
    assert_ne!(rotated.ciphertext, sealed.ciphertext);
    let entra2 = partner_center_entra(&config).unwrap();
    let tokens2 = referrals_token_source(&config, &entra2, store.clone()).unwrap();
    tokens2.token().await.unwrap();

    let last = vault.load().await.unwrap().unwrap();
    assert_ne!(
        last.expose_secret(),
        first,
        "the rotated token replaced the first"
    );

    // Revoked: the next refresh fails as "login required", loudly and without secrets.
    pc.authority().revoke_refresh_tokens(DEMO_ADMIN_USER);
    let entra3 = partner_center_entra(&config).unwrap();
    let tokens3 = referrals_token_source(&config, &entra3, store.clone()).unwrap();
    let err = tokens3.token().await.unwrap_err();
    assert_eq!(tokens3.health().state, HealthState::LoginRequired);
    let shown = format!("{err} {err:?} {:?} {tokens3:?}", tokens3.health());
    for token in [first, last.expose_secret()] {
        assert!(!shown.contains(token), "a refresh token leaked: {shown}");
    }
    assert!(!shown.contains(DEMO_CLIENT_SECRET), "{shown}");
    assert!(!shown.contains(KEY), "{shown}");
    pc.shutdown().await.unwrap();
}

#[tokio::test]
async fn login_needs_an_encryption_key_and_a_wrong_key_is_a_clear_error() {
    let pc = emulator().await;
    let db = sqlite_url_for_test();
    let mut config = config_for(&pc, db.url());
    let store = refsync_store::open_store(db.url()).await.unwrap();

    let mut keyless = config.clone();
    keyless.store.encryption_key = None;
    let err = run_login(&keyless, store.clone(), &fast_polling(), |_| {
        panic!("no prompt without a key")
    })
    .await
    .unwrap_err();
    assert!(
        err.to_string().contains("REFSYNC_STORE__ENCRYPTION_KEY"),
        "{err}"
    );

    login(&pc, &config, store.clone()).await;
    config.store.encryption_key = Some(Secret::new("HxwdHhsaGRgXFhUUExIREA8ODQwLCgkIBwYFBAMCAQA="));
    let entra = partner_center_entra(&config).unwrap();
    let tokens = referrals_token_source(&config, &entra, store).unwrap();
    let err = tokens.token().await.unwrap_err().to_string();
    assert!(err.contains("cannot be decrypted"), "{err}");
    pc.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_legacy_password_grant_still_signs_in() {
    let pc = emulator().await;
    let db = sqlite_url_for_test();
    let mut config = config_for(&pc, db.url());
    config.partner_center.sign_in = SignIn::Password;
    config.partner_center.username = Some(DEMO_ADMIN_USER.to_owned());
    config.partner_center.password = Some(Secret::new(DEMO_USER_PASSWORD));
    let store = refsync_store::open_store(db.url()).await.unwrap();
    let entra = partner_center_entra(&config).unwrap();
    let tokens = referrals_token_source(&config, &entra, store).unwrap();
    tokens.token().await.unwrap();
    assert!(!format!("{config:?}").contains(DEMO_USER_PASSWORD));
    pc.shutdown().await.unwrap();
}
