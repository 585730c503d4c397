//! The Dataverse emulator (with its own Entra tenant) and the real Dataverse
//! connector as a [`CrmUnderTest`]: the Dynamics 365 mapping, millisecond pacing and
//! retries, and the environment's clock moved one second before each seller edit
//! (`modifiedon` is returned to the second, crm.md §1.4), so an edit is always newer
//! than our last write.

use super::crm::CrmUnderTest;
use super::requests::RequestLog;
use async_trait::async_trait;
use chrono::Utc;
use refsync_core::{CrmEntity, CrmRecord, CrmRecordId, CrmRecordRef, Mapping};
use refsync_crm::CrmConnector;
use refsync_crm::dataverse::{DataverseConnector, DataverseSettings, RetrySettings};
use refsync_emulators::dataverse::{Dataverse, DataverseConfig};
use refsync_emulators::entra::{
    DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_TENANT_ID, EntraAuthority,
};
use refsync_emulators::faults::FaultRule;
use refsync_emulators::server::{EmulatorHandle, serve};
use refsync_outbound::TokenCache;
use secrecy::SecretString;
use serde_json::{Map, Value, json};
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// The Web API's path prefix (the token endpoint and the control API excluded).
const API_PATH: &str = "/api/data";
/// A lead qualified into an opportunity (crm.md §1.4).
const LEAD_QUALIFIED: i64 = 1;

/// The Dataverse emulator with its connector.
pub struct Dynamics {
    /// The environment (act as a seller through it).
    pub dataverse: Dataverse,
    /// Requests the emulator received.
    pub requests: RequestLog,
    connector: Arc<DataverseConnector>,
    mapping: Mapping,
    server: EmulatorHandle,
}

impl Dynamics {
    /// The emulator's base URL (`http://127.0.0.1:port/`), for the demo to print.
    pub fn base_url(&self) -> String {
        self.server.url("")
    }

    fn entity_mapping(&self, entity: &CrmEntity) -> &refsync_core::mapping::EntityMapping {
        self.mapping
            .entity(entity)
            .expect("the Dynamics mapping has the record type")
    }

    fn to_record(&self, entity: &CrmEntity, json: Value) -> CrmRecord {
        let em = self.entity_mapping(entity);
        let fields: Map<String, Value> = json
            .as_object()
            .map(|o| {
                o.iter()
                    .filter(|(k, _)| !k.contains('@'))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            })
            .unwrap_or_default();
        let id = fields
            .get(&em.primary_key)
            .and_then(Value::as_str)
            .and_then(|s| CrmRecordId::parse(s).ok());
        let modified_at = fields
            .get("modifiedon")
            .and_then(Value::as_str)
            .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
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
impl CrmUnderTest for Dynamics {
    async fn start() -> Self {
        let authority = EntraAuthority::demo().expect("the demo Entra tenant");
        let dataverse = Dataverse::new(DataverseConfig::default(), authority.clone())
            .expect("the Dataverse emulator");
        let app = dataverse
            .router()
            .merge(dataverse.faults().layer(authority.router()));
        let requests = RequestLog::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind Dataverse");
        let server = serve(requests.record(app), listener).expect("serve Dataverse");
        let base = server.url("").trim_end_matches('/').to_owned();
        let settings = DataverseSettings {
            url: base.clone(),
            resource: Some(dataverse.org_url().to_owned()),
            authority_url: base,
            tenant: DEMO_TENANT_ID.to_string(),
            client_id: DEMO_CLIENT_ID.to_string(),
            client_secret: Some(SecretString::from(DEMO_CLIENT_SECRET)),
            request_timeout: Duration::from_secs(10),
            requests_per_second: 1000.0,
            retry: RetrySettings {
                max_attempts: 3,
                min_backoff: Duration::from_millis(1),
                max_backoff: Duration::from_millis(5),
                ..RetrySettings::default()
            },
            ..DataverseSettings::default()
        };
        let connector =
            DataverseConnector::new(settings, &TokenCache::new()).expect("the Dataverse connector");
        Self {
            dataverse,
            requests,
            connector: Arc::new(connector),
            mapping: Mapping::dynamics().expect("the built-in Dynamics mapping is valid"),
            server,
        }
    }

    fn name(&self) -> &'static str {
        "dynamics"
    }

    fn connector(&self) -> Arc<dyn CrmConnector> {
        Arc::clone(&self.connector) as Arc<dyn CrmConnector>
    }

    fn mapping(&self) -> Mapping {
        self.mapping.clone()
    }

    fn records(&self, entity: &CrmEntity) -> Vec<CrmRecord> {
        let set = self.entity_mapping(entity).collection.clone();
        self.dataverse
            .records(&set)
            .expect("the entity set exists")
            .into_iter()
            .map(|json| self.to_record(entity, json))
            .filter(|r| {
                // Qualified leads stay in the table; "live" means not retired here,
                // as a deleted record would not be.
                r.entity != CrmEntity::Lead || r.field("statecode").as_i64() != Some(LEAD_QUALIFIED)
            })
            .collect()
    }

    fn account_of(&self, record: &CrmRecord) -> Option<String> {
        ["_parentaccountid_value", "_customerid_value"]
            .iter()
            .find_map(|c| record.field(c).as_str().map(str::to_owned))
    }

    fn lead_retired(&self, lead: &CrmRecordRef) -> bool {
        let Ok(id) = Uuid::parse_str(lead.id.as_str()) else {
            return false;
        };
        self.dataverse
            .record("leads", id)
            .is_ok_and(|r| r["statecode"].as_i64() == Some(LEAD_QUALIFIED))
    }

    fn edit_as_user(&self, record: &CrmRecordRef, fields: Map<String, Value>) {
        self.dataverse.advance_clock(Duration::from_secs(1));
        self.edit_as_user_in_the_same_second(record, fields);
    }

    fn edit_as_user_in_the_same_second(&self, record: &CrmRecordRef, fields: Map<String, Value>) {
        let set = self.entity_mapping(&record.entity).collection.clone();
        let id = Uuid::parse_str(record.id.as_str()).expect("a Dataverse id");
        self.dataverse
            .edit_as_user(&set, id, &Value::Object(fields))
            .expect("the seller's edit is accepted");
    }

    fn delete_as_user(&self, record: &CrmRecordRef) {
        let set = self.entity_mapping(&record.entity).collection.clone();
        let id = Uuid::parse_str(record.id.as_str()).expect("a Dataverse id");
        self.dataverse
            .delete_as_user(&set, id)
            .expect("the record exists");
    }

    fn create_flagged_lead(&self, company: &str) -> CrmRecordRef {
        let lead = self
            .dataverse
            .create_as_user(
                "leads",
                &json!({
                    "subject": format!("{company} - interest"),
                    "companyname": company,
                    "lastname": "Nakamura",
                    "msft_microsoftpartnercenterreferralsync": true,
                }),
            )
            .expect("a lead");
        let id = lead["leadid"].as_str().expect("a lead id");
        CrmRecordRef::new(
            CrmEntity::Lead,
            CrmRecordId::parse(id).expect("a record id"),
        )
    }

    fn create_flagged_opportunity(
        &self,
        name: &str,
        customer: &str,
        postal_code: &str,
    ) -> CrmRecordRef {
        let account = self
            .dataverse
            .create_as_user(
                "accounts",
                &json!({"name": customer, "address1_postalcode": postal_code, "address1_country": "US"}),
            )
            .expect("an account");
        let account_id = account["accountid"]
            .as_str()
            .expect("an account id")
            .to_owned();
        let opportunity = self
            .dataverse
            .create_as_user(
                "opportunities",
                &json!({
                    "name": name,
                    "parentaccountid@odata.bind": format!("/accounts({account_id})"),
                    "customerid_account@odata.bind": format!("/accounts({account_id})"),
                    "estimatedvalue": 48000,
                    "description": "Started by our seller.",
                    "msft_microsoftpartnercenterreferralsync": true,
                }),
            )
            .expect("an opportunity");
        let id = opportunity["opportunityid"]
            .as_str()
            .expect("an opportunity id");
        CrmRecordRef::new(
            CrmEntity::Opportunity,
            CrmRecordId::parse(id).expect("a record id"),
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
        let half = (n / 2).max(1) as u64;
        for status in [429, 503] {
            self.dataverse
                .faults()
                .install(FaultRule::status_times(status, half).on_path(API_PATH))
                .expect("a valid fault rule");
        }
    }

    fn reject_next_write(&self) {
        self.dataverse
            .faults()
            .install(
                FaultRule::status_times(400, 1)
                    .on_path(API_PATH)
                    .on_method("PATCH"),
            )
            .expect("a valid fault rule");
    }
}
