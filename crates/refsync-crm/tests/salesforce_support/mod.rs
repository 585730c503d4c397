//! A Salesforce emulator on an ephemeral port (manual clock, multi-currency on so the
//! default mapping's `CurrencyIsoCode` exists) and a connector signed in to it, with
//! tiny retry and pacing intervals so the tests run in milliseconds.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs, dead_code)]

use chrono::{TimeDelta, Utc};
use refsync_core::ids::{CrmEntity, CrmRecordId, ReferralId};
use refsync_core::mapping::{EntityMapping, Mapping};
use refsync_core::referral::Referral;
use refsync_crm::connector::RecordWrite;
use refsync_crm::salesforce::{RetrySettings, SalesforceConnector, SalesforceSettings};
use refsync_emulators::salesforce::config::{
    DEMO_CONSUMER_KEY, DEMO_CONSUMER_SECRET, MultiCurrency, SalesforceConfig,
};
use refsync_emulators::salesforce::{Clock, SalesforceEmulator};
use refsync_emulators::server::EmulatorHandle;
use refsync_outbound::TokenCache;
use secrecy::SecretString;
use serde_json::{Map, Value, json};
use std::time::Duration;

/// The sample referral of the core crate's mapping tests.
pub const SAMPLE: &str = include_str!("../../../refsync-core/tests/fixtures/referral-sample.json");

pub struct Org {
    pub emulator: SalesforceEmulator,
    pub handle: EmulatorHandle,
    pub connector: SalesforceConnector,
    pub mapping: Mapping,
    pub tokens: TokenCache,
}

/// The demo org with multi-currency switched on.
pub fn config() -> SalesforceConfig {
    SalesforceConfig {
        multi_currency: Some(MultiCurrency::default()),
        ..SalesforceConfig::default()
    }
}

/// Client-credentials settings for the demo app, paced and retried in milliseconds.
pub fn settings(handle: &EmulatorHandle) -> SalesforceSettings {
    SalesforceSettings {
        login_url: handle.url(""),
        client_id: DEMO_CONSUMER_KEY.to_owned(),
        client_secret: Some(SecretString::from(DEMO_CONSUMER_SECRET)),
        request_timeout: Duration::from_secs(10),
        requests_per_second: 1000.0,
        slowed_requests_per_second: 200.0,
        retry: RetrySettings {
            max_attempts: 4,
            min_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(5),
        },
        ..SalesforceSettings::default()
    }
}

pub async fn start() -> Org {
    start_with(config(), |_| {}).await
}

pub async fn start_with(
    config: SalesforceConfig,
    tweak: impl FnOnce(&mut SalesforceSettings),
) -> Org {
    let emulator = SalesforceEmulator::new(config, Clock::manual(Utc::now())).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let handle = emulator.serve(listener).unwrap();
    let mut s = settings(&handle);
    tweak(&mut s);
    let tokens = TokenCache::new();
    let connector = SalesforceConnector::new(s, &tokens).unwrap();
    Org {
        emulator,
        handle,
        connector,
        mapping: Mapping::salesforce().unwrap(),
        tokens,
    }
}

pub fn sample() -> Referral {
    serde_json::from_str(SAMPLE).unwrap()
}

pub fn referral(id: &str) -> ReferralId {
    ReferralId::parse(id).unwrap()
}

pub fn id(s: &str) -> CrmRecordId {
    CrmRecordId::parse(s).unwrap()
}

pub fn object(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

impl Org {
    pub fn entity(&self, e: CrmEntity) -> &EntityMapping {
        self.mapping.entity(&e).unwrap()
    }

    /// API calls the org has counted.
    pub fn calls(&self) -> u64 {
        self.emulator.api_usage().0
    }

    /// The sample referral rendered for `e` by the default mapping, as the engine writes it.
    pub fn rendered(&self, e: CrmEntity) -> Map<String, Value> {
        self.mapping.render_crm_fields(&e, &sample()).unwrap()
    }

    /// The opportunity write for the sample referral.
    pub fn opportunity_write(&self) -> RecordWrite {
        RecordWrite::fields(self.rendered(CrmEntity::Opportunity))
    }

    /// Live records of an object, as the control API shows them (no API calls).
    pub fn records(&self, object: &str) -> Vec<Value> {
        self.emulator.records(object, false).unwrap()
    }

    /// Creates a record as the seller would (no API calls).
    pub fn create_as_seller(&self, object: &str, body: Value) -> String {
        self.emulator.create_as(None, object, &body).unwrap()
    }

    /// Moves the emulator's clock.
    pub fn advance(&self, secs: i64) {
        assert!(self.emulator.clock().advance(TimeDelta::seconds(secs)));
    }

    /// Ends every session through the control API, as an admin revoking them would.
    pub async fn revoke_sessions(&self) {
        let r = reqwest::Client::new()
            .delete(self.handle.url("/_emulator/salesforce/sessions"))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
    }
}

/// An account body for the seller to create.
pub fn account(name: &str, postal_code: &str) -> Value {
    json!({"Name": name, "BillingPostalCode": postal_code})
}
