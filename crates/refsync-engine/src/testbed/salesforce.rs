//! The Salesforce emulator and the real Salesforce connector as a [`CrmUnderTest`]:
//! a manual clock (moved one second before each seller edit, so an edit is always
//! newer than our last write), multi-currency on (the default mapping writes
//! `CurrencyIsoCode`), and millisecond pacing and retries.

use super::crm::{CrmUnderTest, salesforce_account, salesforce_lead, salesforce_opportunity};
use super::requests::RequestLog;
use async_trait::async_trait;
use chrono::{TimeDelta, Utc};
use refsync_core::{CrmEntity, CrmRecord, CrmRecordId, CrmRecordRef, Mapping};
use refsync_crm::CrmConnector;
use refsync_crm::salesforce::{RetrySettings, SalesforceConnector, SalesforceSettings};
use refsync_emulators::faults::FaultRule;
use refsync_emulators::salesforce::config::{
    DEMO_CONSUMER_KEY, DEMO_CONSUMER_SECRET, MultiCurrency, SalesforceConfig,
};
use refsync_emulators::salesforce::{Clock, SalesforceEmulator};
use refsync_emulators::server::{EmulatorHandle, serve};
use refsync_outbound::TokenCache;
use secrecy::SecretString;
use serde_json::{Map, Value};
use std::sync::Arc;
use std::time::Duration;

/// The REST API's path prefix (the OAuth endpoint and the control API excluded).
const API_PATH: &str = "/services/data";
/// The lead status the connector's `retire_lead` writes by default.
const CLOSED_LEAD_STATUS: &str = "Closed - Not Converted";

/// The Salesforce emulator with its connector.
pub struct Salesforce {
    /// The emulator (act as a seller through it).
    pub emulator: SalesforceEmulator,
    /// Requests the emulator received.
    pub requests: RequestLog,
    connector: Arc<SalesforceConnector>,
    mapping: Mapping,
    server: EmulatorHandle,
}

impl Salesforce {
    /// Starts the emulator on `clock`: the suite's manual clock, or
    /// [`Clock::System`] for the demo, where sellers edit records in real time.
    pub async fn start_on(clock: Clock) -> Self {
        let config = SalesforceConfig {
            multi_currency: Some(MultiCurrency::default()),
            ..SalesforceConfig::default()
        };
        let emulator = SalesforceEmulator::new(config, clock).expect("the Salesforce emulator");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind Salesforce");
        let requests = RequestLog::default();
        let server = serve(requests.record(emulator.router()), listener).expect("serve Salesforce");
        let settings = SalesforceSettings {
            login_url: server.url(""),
            client_id: DEMO_CONSUMER_KEY.to_owned(),
            client_secret: Some(SecretString::from(DEMO_CONSUMER_SECRET)),
            request_timeout: Duration::from_secs(10),
            requests_per_second: 1000.0,
            slowed_requests_per_second: 200.0,
            retry: RetrySettings {
                max_attempts: 3,
                min_backoff: Duration::from_millis(1),
                max_backoff: Duration::from_millis(5),
            },
            ..SalesforceSettings::default()
        };
        let connector = SalesforceConnector::new(settings, &TokenCache::new())
            .expect("the Salesforce connector");
        Self {
            emulator,
            requests,
            connector: Arc::new(connector),
            mapping: Mapping::salesforce().expect("the built-in Salesforce mapping is valid"),
            server,
        }
    }

    /// The emulator's base URL (`http://127.0.0.1:port/`), for the demo to print.
    pub fn base_url(&self) -> String {
        self.server.url("")
    }

    fn object(&self, entity: &CrmEntity) -> String {
        self.mapping
            .entity(entity)
            .map(|e| e.collection.clone())
            .unwrap_or_else(|_| entity.to_string())
    }

    fn to_record(&self, entity: &CrmEntity, json: Value) -> CrmRecord {
        let mut fields = json.as_object().cloned().unwrap_or_default();
        fields.remove("attributes");
        let id = fields
            .get("Id")
            .and_then(Value::as_str)
            .and_then(|s| CrmRecordId::parse(s).ok());
        let modified_at = fields
            .get("SystemModstamp")
            .and_then(Value::as_str)
            .and_then(|s| {
                chrono::DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z")
                    .or_else(|_| chrono::DateTime::parse_from_rfc3339(s))
                    .ok()
            })
            .map(|t| t.with_timezone(&Utc));
        CrmRecord {
            entity: entity.clone(),
            id,
            fields,
            modified_at,
            etag: None,
        }
    }
}

#[async_trait]
impl CrmUnderTest for Salesforce {
    async fn start() -> Self {
        Self::start_on(Clock::manual(Utc::now())).await
    }

    fn name(&self) -> &'static str {
        "salesforce"
    }

    fn connector(&self) -> Arc<dyn CrmConnector> {
        Arc::clone(&self.connector) as Arc<dyn CrmConnector>
    }

    fn mapping(&self) -> Mapping {
        self.mapping.clone()
    }

    fn records(&self, entity: &CrmEntity) -> Vec<CrmRecord> {
        self.emulator
            .records(&self.object(entity), false)
            .expect("the object exists")
            .into_iter()
            .map(|json| self.to_record(entity, json))
            .collect()
    }

    fn account_of(&self, record: &CrmRecord) -> Option<String> {
        record.field("AccountId").as_str().map(str::to_owned)
    }

    fn lead_retired(&self, lead: &CrmRecordRef) -> bool {
        self.records(&CrmEntity::Lead).iter().any(|r| {
            r.id.as_ref() == Some(&lead.id)
                && r.field("Status").as_str() == Some(CLOSED_LEAD_STATUS)
        })
    }

    fn edit_as_user(&self, record: &CrmRecordRef, fields: Map<String, Value>) {
        // A manual clock moves; the system clock moves by itself (and refuses).
        let _ = self.emulator.clock().advance(TimeDelta::seconds(1));
        self.edit_as_user_in_the_same_second(record, fields);
    }

    fn edit_as_user_in_the_same_second(&self, record: &CrmRecordRef, fields: Map<String, Value>) {
        self.emulator
            .update_as(
                None,
                &self.object(&record.entity),
                record.id.as_str(),
                &Value::Object(fields),
            )
            .expect("the seller's edit is accepted");
    }

    fn delete_as_user(&self, record: &CrmRecordRef) {
        self.emulator
            .delete_as(None, &self.object(&record.entity), record.id.as_str())
            .expect("the record exists");
    }

    fn create_flagged_lead(&self, company: &str) -> CrmRecordRef {
        let id = self
            .emulator
            .create_as(None, "Lead", &Value::Object(salesforce_lead(company)))
            .expect("a lead");
        CrmRecordRef::new(
            CrmEntity::Lead,
            CrmRecordId::parse(&id).expect("a record id"),
        )
    }

    fn create_flagged_opportunity(
        &self,
        name: &str,
        customer: &str,
        postal_code: &str,
    ) -> CrmRecordRef {
        let account = self
            .emulator
            .create_as(
                None,
                "Account",
                &Value::Object(salesforce_account(customer, postal_code)),
            )
            .expect("an account");
        let id = self
            .emulator
            .create_as(
                None,
                "Opportunity",
                &Value::Object(salesforce_opportunity(name, &account)),
            )
            .expect("an opportunity");
        CrmRecordRef::new(
            CrmEntity::Opportunity,
            CrmRecordId::parse(&id).expect("a record id"),
        )
    }

    fn api_writes(&self) -> usize {
        self.requests.writes_under(API_PATH)
    }

    fn api_log(&self) -> Vec<String> {
        self.requests.lines_under(API_PATH)
    }

    fn api_calls(&self) -> usize {
        self.requests.under(API_PATH).len()
    }

    fn storm(&self, n: usize) {
        // Salesforce answers overload with 503 and server trouble with 500; its
        // throttling is the daily allocation (403), which is not a storm (crm.md §2.7).
        let half = (n / 2).max(1) as u64;
        for status in [503, 500] {
            self.emulator
                .faults()
                .install(FaultRule::status_times(status, half).on_path(API_PATH))
                .expect("a valid fault rule");
        }
    }

    fn reject_next_write(&self) {
        self.emulator
            .faults()
            .install(
                FaultRule::status_times(400, 1)
                    .on_path(API_PATH)
                    .on_method("POST"),
            )
            .expect("a valid fault rule");
    }
}
