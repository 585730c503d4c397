//! The CRMs the end-to-end suite runs against, behind one trait so every scenario
//! is written once and instantiated per CRM: the in-memory CRM here, the Salesforce
//! and Dataverse emulators (with their connectors) beside it.

use crate::memory_crm::MemoryCrm;
use async_trait::async_trait;
use refsync_core::{CrmEntity, CrmRecord, CrmRecordRef, Mapping};
use refsync_crm::{CrmConnector, CrmError};
use serde_json::{Map, Value};
use std::sync::Arc;

/// A CRM the end-to-end tests run against: the connector the engine uses, and a
/// back door (the emulator's control API) to look and act as a seller without
/// spending the API calls the tests count.
#[async_trait]
pub trait CrmUnderTest: Send + Sync + Sized + 'static {
    /// Starts the CRM (its emulator, on an ephemeral port).
    async fn start() -> Self;

    /// A short name for messages.
    fn name(&self) -> &'static str;

    /// The connector the engine uses.
    fn connector(&self) -> Arc<dyn CrmConnector>;

    /// The default mapping for this CRM.
    fn mapping(&self) -> Mapping;

    /// Live records of one type, read through the back door.
    fn records(&self, entity: &CrmEntity) -> Vec<CrmRecord>;

    /// The id of the account a record is bound to.
    fn account_of(&self, record: &CrmRecord) -> Option<String>;

    /// True once the lead was retired (qualified into `opportunity`).
    fn lead_retired(&self, lead: &CrmRecordRef) -> bool;

    /// Changes fields as a seller would in the CRM's UI.
    fn edit_as_user(&self, record: &CrmRecordRef, fields: Map<String, Value>);

    /// [`CrmUnderTest::edit_as_user`] without moving the CRM's clock first: the edit
    /// carries the same modified time as refsync's last write when the CRM keeps
    /// seconds only (Dataverse), so only its values tell the two apart.
    fn edit_as_user_in_the_same_second(&self, record: &CrmRecordRef, fields: Map<String, Value>) {
        self.edit_as_user(record, fields);
    }

    /// Deletes a record as a seller would.
    fn delete_as_user(&self, record: &CrmRecordRef);

    /// Creates, as a seller, a lead flagged "Sync with Partner Center" (no referral).
    fn create_flagged_lead(&self, company: &str) -> CrmRecordRef;

    /// Creates, as a seller, an account and an opportunity bound to it and flagged
    /// "Sync with Partner Center" (no referral yet); returns the opportunity.
    fn create_flagged_opportunity(
        &self,
        name: &str,
        customer: &str,
        postal_code: &str,
    ) -> CrmRecordRef;

    /// API calls that changed data so far.
    fn api_writes(&self) -> usize;

    /// API calls so far.
    fn api_calls(&self) -> usize;

    /// The API calls so far as `METHOD path` lines, for failure messages.
    fn api_log(&self) -> Vec<String> {
        Vec::new()
    }

    /// The next `n` API calls fail as throttled or unavailable.
    fn storm(&self, n: usize);

    /// The next record write is refused as invalid data (a permanent failure).
    fn reject_next_write(&self);
}

/// The in-memory CRM with the Salesforce mapping.
#[derive(Debug, Clone, Default)]
pub struct InMemory(pub MemoryCrm);

#[async_trait]
impl CrmUnderTest for InMemory {
    async fn start() -> Self {
        Self(MemoryCrm::new())
    }

    fn name(&self) -> &'static str {
        "memory"
    }

    fn connector(&self) -> Arc<dyn CrmConnector> {
        Arc::new(self.0.clone())
    }

    fn mapping(&self) -> Mapping {
        #[allow(clippy::expect_used)]
        Mapping::salesforce().expect("the built-in Salesforce mapping is valid")
    }

    fn records(&self, entity: &CrmEntity) -> Vec<CrmRecord> {
        self.0
            .records(entity)
            .into_iter()
            .map(|r| r.record)
            .collect()
    }

    fn account_of(&self, record: &CrmRecord) -> Option<String> {
        let stored = self.0.record(&record.record_ref()?)?;
        stored.account.map(|a| a.to_string())
    }

    fn lead_retired(&self, lead: &CrmRecordRef) -> bool {
        self.0
            .record(lead)
            .is_some_and(|r| r.retired_into.is_some())
    }

    fn edit_as_user(&self, record: &CrmRecordRef, fields: Map<String, Value>) {
        self.0.edit_as_user(record, fields);
    }

    fn delete_as_user(&self, record: &CrmRecordRef) {
        assert!(self.0.delete_as_user(record), "the record exists");
    }

    fn create_flagged_lead(&self, company: &str) -> CrmRecordRef {
        self.0
            .create_as_user(CrmEntity::Lead, salesforce_lead(company))
            .expect("a lead")
    }

    fn create_flagged_opportunity(
        &self,
        name: &str,
        customer: &str,
        postal_code: &str,
    ) -> CrmRecordRef {
        let account = self
            .0
            .create_as_user(
                CrmEntity::Account,
                salesforce_account(customer, postal_code),
            )
            .expect("an account");
        self.0
            .create_as_user(
                CrmEntity::Opportunity,
                salesforce_opportunity(name, account.id.as_str()),
            )
            .expect("an opportunity")
    }

    fn api_writes(&self) -> usize {
        self.0.write_count()
    }

    fn api_calls(&self) -> usize {
        self.0.calls().len()
    }

    fn storm(&self, n: usize) {
        // Alternately 429 and 503, as a real storm mixes them.
        let flip = std::sync::Mutex::new(false);
        self.0.fail_next(n, None, move || {
            let mut f = flip.lock().unwrap_or_else(|p| p.into_inner());
            *f = !*f;
            if *f {
                CrmError::Throttled { retry_after: None }
            } else {
                CrmError::Unavailable("503 Service Unavailable".into())
            }
        });
    }

    fn reject_next_write(&self) {
        self.0.fail_next(1, Some("write"), || CrmError::Rejected {
            code: Some("REQUIRED_FIELD_MISSING".into()),
            message: "Required fields are missing: [LastName]".into(),
        });
    }
}

/// A Salesforce account body as a seller fills it in.
pub(crate) fn salesforce_account(name: &str, postal_code: &str) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("Name".into(), Value::from(name));
    m.insert("BillingPostalCode".into(), Value::from(postal_code));
    m.insert("BillingCountry".into(), Value::from("US"));
    m
}

/// A Salesforce opportunity body, flagged for Partner Center, in the active stage.
pub(crate) fn salesforce_opportunity(name: &str, account: &str) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("Name".into(), Value::from(name));
    m.insert("AccountId".into(), Value::from(account));
    m.insert("StageName".into(), Value::from("Qualification"));
    m.insert("CloseDate".into(), Value::from("2027-03-31"));
    m.insert("Amount".into(), Value::from(48_000));
    m.insert("CurrencyIsoCode".into(), Value::from("USD"));
    m.insert("Description".into(), Value::from("Started by our seller."));
    m.insert("Sync_with_Partner_Center__c".into(), Value::from(true));
    m
}

/// A Salesforce lead body, flagged for Partner Center.
pub(crate) fn salesforce_lead(company: &str) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("Company".into(), Value::from(company));
    m.insert("LastName".into(), Value::from("Nakamura"));
    m.insert("Status".into(), Value::from("Open - Not Contacted"));
    m.insert("Sync_with_Partner_Center__c".into(), Value::from(true));
    m
}
