//! Shared by the Referrals and registration client tests: a Partner Center
//! emulator (with its Entra tenant on the same listener) and clients signed in
//! through refsync-outbound's grants, as the service will be.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, missing_docs)]

use refsync_emulators::entra::{
    DEMO_ADMIN_USER, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_TENANT_ID, DEMO_USER_PASSWORD,
};
use refsync_emulators::partner_center::{
    PartnerCenterConfig, PartnerCenterEmulator, PartnerCenterServer,
};
use refsync_outbound::entra::{
    Audience, DeviceCodeOptions, Entra, EntraApp, PARTNER_CENTER_RESOURCE, REFERRALS_RESOURCE,
    Tenant,
};
use refsync_outbound::token::{MemoryVault, TokenCache, TokenSource};
use refsync_outbound::{ApiClient, ApiConfig, RetryPolicy};
use refsync_partner_center::{ReferralsClient, RegistrationClient};
use secrecy::SecretString;
use std::sync::Arc;
use std::time::Duration;
use url::Url;

pub struct Pc {
    pub server: PartnerCenterServer,
    pub entra: Entra,
}

pub async fn start_with(config: PartnerCenterConfig) -> Pc {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = PartnerCenterEmulator::start(config, listener).unwrap();
    let app = EntraApp::new(
        base_url(&server),
        Tenant::parse(DEMO_TENANT_ID.to_string()).unwrap(),
        DEMO_CLIENT_ID.to_string(),
        Some(SecretString::from(DEMO_CLIENT_SECRET.to_owned())),
    );
    let entra = Entra::new(app, TokenCache::new()).unwrap();
    Pc { server, entra }
}

/// The test configuration, with device codes that may be polled every 200 ms.
pub fn test_config() -> PartnerCenterConfig {
    let mut config = PartnerCenterConfig::for_tests();
    config.entra.device_code_interval = Duration::from_millis(200);
    config
}

pub async fn start() -> Pc {
    start_with(test_config()).await
}

fn base_url(server: &PartnerCenterServer) -> Url {
    Url::parse(&format!("{}/", server.base_url())).unwrap()
}

/// Retries with tiny backoffs and Retry-After waits of up to 2 s.
pub fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 4,
        max_elapsed: Duration::from_secs(20),
        min_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(20),
        max_retry_after: Duration::from_secs(2),
        jitter: true,
    }
}

impl Pc {
    pub fn emulator(&self) -> &PartnerCenterEmulator {
        self.server.emulator()
    }

    pub fn base_url(&self) -> Url {
        base_url(&self.server)
    }

    pub fn api(&self, name: &str, tokens: Arc<dyn TokenSource>) -> ApiClient {
        ApiClient::new(
            ApiConfig::new(name, self.base_url())
                .with_timeout(Duration::from_secs(5))
                .with_retry(fast_retries()),
            Some(tokens),
        )
        .unwrap()
    }

    /// App+User tokens for the Referrals API through the legacy password grant
    /// (the v1 request Microsoft's sample shows).
    pub fn admin_tokens(&self) -> Arc<dyn TokenSource> {
        self.entra.password(
            Audience::v1(REFERRALS_RESOURCE),
            DEMO_ADMIN_USER,
            SecretString::from(DEMO_USER_PASSWORD.to_owned()),
        )
    }

    /// App+User tokens the production way: a device-code sign-in once (approved
    /// here through the emulator), then the stored refresh token.
    pub async fn signed_in_tokens(&self) -> Arc<dyn TokenSource> {
        let vault = Arc::new(MemoryVault::new());
        let audience = Audience::v2(REFERRALS_RESOURCE);
        let authority = self.emulator().authority().clone();
        let options = DeviceCodeOptions {
            min_interval: Duration::ZERO,
            slow_down_increment: Duration::from_millis(100),
            ..DeviceCodeOptions::default()
        };
        self.entra
            .device_code_login(&audience, vault.as_ref(), &options, move |p| {
                authority
                    .approve_device_code(&p.user_code, DEMO_ADMIN_USER)
                    .unwrap();
            })
            .await
            .unwrap();
        self.entra.refresh_token(audience, vault)
    }

    pub fn referrals(&self) -> ReferralsClient {
        ReferralsClient::new(self.api("partner-center-referrals", self.admin_tokens()))
    }

    /// The registration API with an app-only token.
    pub fn registration(&self) -> RegistrationClient {
        let tokens = self
            .entra
            .client_credentials(Audience::v2(PARTNER_CENTER_RESOURCE));
        RegistrationClient::new(self.api("partner-center-webhooks", tokens))
    }
}
