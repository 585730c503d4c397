//! A Dataverse emulator on an ephemeral port with its own Entra tenant, and a
//! connector signed in to it with client credentials, paced and retried in
//! milliseconds so the tests run fast.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs, dead_code)]

use refsync_core::ids::{CrmEntity, CrmRecordId, ReferralId};
use refsync_core::mapping::{EntityMapping, Mapping};
use refsync_core::referral::Referral;
use refsync_crm::connector::RecordWrite;
use refsync_crm::dataverse::{DataverseConnector, DataverseSettings, RetrySettings};
use refsync_emulators::dataverse::{DataverseConfig, DataverseEmulator};
use refsync_emulators::entra::{DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_TENANT_ID};
use refsync_outbound::TokenCache;
use secrecy::SecretString;
use serde_json::{Map, Value, json};
use std::time::Duration;
use uuid::Uuid;

/// The sample referral of the core crate's mapping tests.
pub const SAMPLE: &str = include_str!("../../../refsync-core/tests/fixtures/referral-sample.json");

pub struct Env {
    pub emu: DataverseEmulator,
    pub connector: DataverseConnector,
    pub mapping: Mapping,
    pub tokens: TokenCache,
}

/// Client-credentials settings for the demo app against `emu`, fast pacing and retries.
pub fn settings(emu: &DataverseEmulator) -> DataverseSettings {
    let base = emu.base_url().as_str().trim_end_matches('/').to_owned();
    DataverseSettings {
        url: base.clone(),
        resource: Some(emu.org_url().to_owned()),
        authority_url: base,
        tenant: DEMO_TENANT_ID.to_string(),
        client_id: DEMO_CLIENT_ID.to_string(),
        client_secret: Some(SecretString::from(DEMO_CLIENT_SECRET)),
        request_timeout: Duration::from_secs(10),
        requests_per_second: 1000.0,
        retry: RetrySettings {
            max_attempts: 5,
            min_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(5),
            ..RetrySettings::default()
        },
        ..DataverseSettings::default()
    }
}

pub async fn start() -> Env {
    start_with(DataverseConfig::default(), |_| {}).await
}

pub async fn start_with(
    config: DataverseConfig,
    tweak: impl FnOnce(&mut DataverseSettings),
) -> Env {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let emu = DataverseEmulator::start(config, listener).unwrap();
    let mut s = settings(&emu);
    tweak(&mut s);
    let tokens = TokenCache::new();
    let connector = DataverseConnector::new(s, &tokens).unwrap();
    Env {
        emu,
        connector,
        mapping: Mapping::dynamics().unwrap(),
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

pub fn uuid(id: &CrmRecordId) -> Uuid {
    Uuid::parse_str(id.as_str()).unwrap()
}

pub fn object(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

impl Env {
    pub fn entity(&self, e: CrmEntity) -> &EntityMapping {
        self.mapping.entity(&e).unwrap()
    }

    /// Web API requests the environment admitted.
    pub fn calls(&self) -> u64 {
        self.emu.dataverse().usage().requests_served
    }

    /// Zeroes the environment's counters.
    pub fn reset_calls(&self) {
        self.emu.dataverse().reset_usage();
    }

    /// The sample referral rendered for `e` by the default mapping, as the engine writes it.
    pub fn rendered(&self, e: CrmEntity) -> Map<String, Value> {
        self.mapping.render_crm_fields(&e, &sample()).unwrap()
    }

    /// Every record of an entity set, through the control API (no Web API calls).
    pub fn records(&self, set: &str) -> Vec<Value> {
        self.emu.dataverse().records(set).unwrap()
    }

    /// One record through the control API.
    pub fn record(&self, set: &str, id: &CrmRecordId) -> Value {
        self.emu.dataverse().record(set, uuid(id)).unwrap()
    }

    /// The id of a seeded currency.
    pub fn currency_id(&self, iso: &str) -> String {
        self.records("transactioncurrencies")
            .into_iter()
            .find(|c| c["isocurrencycode"] == json!(iso))
            .unwrap()["transactioncurrencyid"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Creates an account as a seller would (no Web API calls).
    pub fn seller_account(&self, name: &str, postal_code: &str) -> String {
        let r = self
            .emu
            .dataverse()
            .create_as_user(
                "accounts",
                &json!({"name": name, "address1_postalcode": postal_code}),
            )
            .unwrap();
        r["accountid"].as_str().unwrap().to_owned()
    }

    /// The sample lead write for another referral id.
    pub fn lead_write(&self) -> RecordWrite {
        RecordWrite::fields(self.rendered(CrmEntity::Lead))
    }
}
