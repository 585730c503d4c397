//! The contract between the sync engine and a CRM.
//!
//! Field values cross this boundary in the mapping's canonical CRM form (the output of
//! `EntityMapping::render_crm_fields` / a merge plan's `crm_update`): plain column names
//! and JSON values, lookups as their key value (an ISO currency code, not a GUID). Each
//! adapter turns that into what its API wants and reads records back into a
//! [`CrmRecord`] the mapping can read. The [`EntityMapping`] passed to every call says
//! which collection, primary key, referral-identifier column and lookups are involved,
//! so adapters hold no field names of their own.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use refsync_core::crm_record::CrmRecord;
use refsync_core::ids::{CrmRecordId, ReferralId};
use refsync_core::mapping::EntityMapping;
use serde_json::{Map, Value};
use std::time::Duration;
use thiserror::Error;

/// Which CRM an adapter talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CrmKind {
    /// Dynamics 365 Sales through the Dataverse Web API.
    Dynamics,
    /// Salesforce through its REST API.
    Salesforce,
}

impl std::fmt::Display for CrmKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CrmKind::Dynamics => "dynamics",
            CrmKind::Salesforce => "salesforce",
        })
    }
}

/// What to write to one record: mapped columns plus the relationships the engine decided.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RecordWrite {
    /// Columns in the mapping's canonical CRM form.
    pub fields: Map<String, Value>,
    /// The customer account (an opportunity's customer, a contact's parent).
    pub account: Option<CrmRecordId>,
    /// The customer contact (an opportunity's contact).
    pub contact: Option<CrmRecordId>,
}

impl RecordWrite {
    /// A write of these columns and no relationships.
    pub fn fields(fields: Map<String, Value>) -> Self {
        Self {
            fields,
            ..Self::default()
        }
    }

    /// True when nothing would be written.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty() && self.account.is_none() && self.contact.is_none()
    }
}

/// A related record to find by some columns, or create when none matches (the customer
/// account by name + postal code, the customer contact by e-mail).
#[derive(Debug, Clone, PartialEq)]
pub struct MatchOrCreate {
    /// Columns that identify an existing record (all must be equal).
    pub match_on: Vec<(String, Value)>,
    /// Columns of the record to create when none matches.
    pub create: Map<String, Value>,
}

/// The customer records an opportunity hangs off.
#[derive(Debug, Clone, Copy)]
pub struct Customer<'a> {
    /// The account mapping and what to match or create.
    pub account: Option<(&'a EntityMapping, &'a MatchOrCreate)>,
    /// The contact mapping and what to match or create (linked to the account).
    pub contact: Option<(&'a EntityMapping, &'a MatchOrCreate)>,
}

/// The result of [`CrmConnector::upsert_with_customer`].
#[derive(Debug, Clone, PartialEq)]
pub struct CustomerUpsert {
    /// The upserted record.
    pub upsert: UpsertOutcome,
    /// The account it points at, and whether it was created now.
    pub account: Option<(CrmRecordId, bool)>,
    /// The contact it points at, and whether it was created now.
    pub contact: Option<(CrmRecordId, bool)>,
}

/// The result of an upsert by referral identifier.
#[derive(Debug, Clone, PartialEq)]
pub struct UpsertOutcome {
    /// The record as it is after the write (id, fields, modified time, etag where the CRM has one).
    pub record: CrmRecord,
    /// True when the upsert created the record.
    pub created: bool,
}

/// API consumption an adapter can report (Salesforce's `Sforce-Limit-Info`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiUsage {
    /// Calls used in the current allocation window.
    pub used: u64,
    /// The allocation.
    pub max: u64,
}

/// Why a CRM call failed. The engine decides retry vs dead-letter with [`CrmError::is_transient`].
#[derive(Debug, Error)]
pub enum CrmError {
    /// The CRM refused the data (a required column, a length, a picklist value, a read-only
    /// record): retrying the same write cannot succeed.
    #[error("the CRM refused the write: {message}{}", code.as_deref().map(|c| format!(" ({c})")).unwrap_or_default())]
    Rejected {
        /// The CRM's error code, when it gave one.
        code: Option<String>,
        /// The CRM's message.
        message: String,
    },
    /// A conditional write lost a race (ETag / version mismatch): re-read and merge again.
    #[error("the record changed since it was read")]
    PreconditionFailed,
    /// Throttled, and still throttled after the allowed retries.
    #[error("the CRM is throttling requests{}", retry_after.map(|d| format!(" (retry after {}s)", d.as_secs())).unwrap_or_default())]
    Throttled {
        /// How long the CRM asked us to wait, if it said.
        retry_after: Option<Duration>,
    },
    /// The daily API allocation is used up (Salesforce `REQUEST_LIMIT_EXCEEDED`).
    #[error("the CRM's API allocation is exhausted")]
    AllocationExhausted,
    /// A timeout, a connection failure or a 5xx: worth retrying later.
    #[error("the CRM is unavailable: {0}")]
    Unavailable(String),
    /// Signing in failed (bad credentials, revoked consent).
    #[error("cannot sign in to the CRM: {0}")]
    Auth(String),
    /// The mapping asks for something this CRM cannot do (a misconfiguration).
    #[error("mapping problem: {0}")]
    Mapping(String),
}

impl CrmError {
    /// True when the same call may succeed later; false when only a change of data or
    /// configuration can fix it.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            CrmError::PreconditionFailed
                | CrmError::Throttled { .. }
                | CrmError::AllocationExhausted
                | CrmError::Unavailable(_)
        )
    }
}

/// Everything the sync engine needs from a CRM. Implementations are cheap to share
/// (`Arc<dyn CrmConnector>`) and safe to call concurrently.
#[async_trait]
pub trait CrmConnector: Send + Sync + 'static {
    /// Which CRM this is.
    fn kind(&self) -> CrmKind;

    /// Reads a record by primary key; `None` when it does not exist (or was deleted).
    async fn get(
        &self,
        entity: &EntityMapping,
        id: &CrmRecordId,
    ) -> Result<Option<CrmRecord>, CrmError>;

    /// Reads the record whose referral-identifier column holds `referral`.
    async fn get_by_referral(
        &self,
        entity: &EntityMapping,
        referral: &ReferralId,
    ) -> Result<Option<CrmRecord>, CrmError>;

    /// Creates or updates the record keyed by `referral` in the referral-identifier column
    /// (Dataverse alternate key, Salesforce external ID). Idempotent, so a retry, or a crash
    /// between this write and saving the link, can never make a second record.
    async fn upsert_by_referral(
        &self,
        entity: &EntityMapping,
        referral: &ReferralId,
        write: &RecordWrite,
    ) -> Result<UpsertOutcome, CrmError>;

    /// Updates columns of an existing record and returns it as it is afterwards. State
    /// columns (statecode/statuscode, StageName) are applied the way the CRM requires
    /// (close actions, reopening a closed record before editing it).
    async fn update(
        &self,
        entity: &EntityMapping,
        id: &CrmRecordId,
        write: &RecordWrite,
    ) -> Result<CrmRecord, CrmError>;

    /// Retires a lead whose referral was accepted and now lives as `opportunity`
    /// (Dataverse: qualified, pointing at the opportunity; Salesforce: a closed status).
    async fn retire_lead(
        &self,
        lead: &EntityMapping,
        id: &CrmRecordId,
        opportunity: &CrmRecordId,
    ) -> Result<(), CrmError>;

    /// Records whose columns equal the given values (string comparison as the CRM does it),
    /// at most `limit`. Used to match a customer account by name and postal code.
    async fn find_by_columns(
        &self,
        entity: &EntityMapping,
        criteria: &[(&str, &Value)],
        limit: usize,
    ) -> Result<Vec<CrmRecord>, CrmError>;

    /// Creates a record without a referral identifier (an account or a contact). Not
    /// idempotent: callers look it up with [`CrmConnector::find_by_columns`] first.
    async fn create(
        &self,
        entity: &EntityMapping,
        write: &RecordWrite,
    ) -> Result<CrmRecord, CrmError>;

    /// Upserts the record keyed by `referral` together with its customer: the account and
    /// contact are matched, created when missing, and bound to the record. The default
    /// makes one call per step; a CRM that can batch (Salesforce composite) overrides it
    /// to save calls. Safe to repeat: matching comes before creating, and the record
    /// itself goes through the idempotent upsert.
    async fn upsert_with_customer(
        &self,
        entity: &EntityMapping,
        referral: &ReferralId,
        write: &RecordWrite,
        customer: Customer<'_>,
    ) -> Result<CustomerUpsert, CrmError> {
        let account = match customer.account {
            Some((mapping, wanted)) => Some(self.match_or_create(mapping, wanted, None).await?),
            None => None,
        };
        let account_id = account.as_ref().map(|(id, _)| id.clone());
        let contact = match customer.contact {
            Some((mapping, wanted)) => Some(
                self.match_or_create(mapping, wanted, account_id.clone())
                    .await?,
            ),
            None => None,
        };
        let mut write = write.clone();
        write.account = account_id.or(write.account);
        write.contact = contact.as_ref().map(|(id, _)| id.clone()).or(write.contact);
        let upsert = self.upsert_by_referral(entity, referral, &write).await?;
        Ok(CustomerUpsert {
            upsert,
            account,
            contact,
        })
    }

    /// Finds the first record matching `wanted.match_on`, or creates `wanted.create`
    /// (linked to `account` when given). Returns its id and whether it was created.
    async fn match_or_create(
        &self,
        entity: &EntityMapping,
        wanted: &MatchOrCreate,
        account: Option<CrmRecordId>,
    ) -> Result<(CrmRecordId, bool), CrmError> {
        let criteria: Vec<(&str, &Value)> = wanted
            .match_on
            .iter()
            .map(|(k, v)| (k.as_str(), v))
            .collect();
        if let Some(found) = self
            .find_by_columns(entity, &criteria, 1)
            .await?
            .into_iter()
            .find_map(|r| r.id)
        {
            return Ok((found, false));
        }
        let write = RecordWrite {
            fields: wanted.create.clone(),
            account,
            contact: None,
        };
        let created = self.create(entity, &write).await?;
        let id = created.id.ok_or_else(|| {
            CrmError::Unavailable("the CRM created a record without an id".into())
        })?;
        Ok((id, true))
    }

    /// Records modified strictly after `since`, oldest first, at most `limit`: what the CRM
    /// poller feeds to the queue.
    async fn modified_since(
        &self,
        entity: &EntityMapping,
        since: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<CrmRecord>, CrmError>;

    /// The next step of reading a record type's changes from a CRM that tracks them
    /// (Dataverse change tracking): from `cursor`, or, without one, from the start
    /// (every record first). `Ok(None)` when the CRM does not track changes of this
    /// type; the poller then reads by modified time with [`Self::modified_since`].
    async fn tracked_changes(
        &self,
        entity: &EntityMapping,
        cursor: Option<&str>,
    ) -> Result<Option<TrackedChanges>, CrmError> {
        let _ = (entity, cursor);
        Ok(None)
    }

    /// The latest known API consumption, when the CRM reports it.
    fn usage(&self) -> Option<ApiUsage> {
        None
    }
}

/// One step of a tracked read: the records created or updated since the cursor it
/// started from, and where the next step resumes.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackedChanges {
    /// Records created or updated, as [`CrmConnector::get`] reads them. Deletions are
    /// left out: a deleted record is created again by the next sync of its referral.
    pub records: Vec<CrmRecord>,
    /// Where the next step resumes: the next page, or once caught up the delta link.
    /// Opaque; keep it as it is.
    pub cursor: String,
    /// Every change up to this step has been read (`cursor` is a delta link).
    pub caught_up: bool,
    /// The CRM refused the cursor it was given (an expired token), so this step
    /// started over and `records` begin again with every record.
    pub restarted: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_errors_are_the_ones_worth_waiting_for() {
        assert!(CrmError::Unavailable("503".into()).is_transient());
        assert!(CrmError::Throttled { retry_after: None }.is_transient());
        assert!(CrmError::PreconditionFailed.is_transient());
        assert!(
            !CrmError::Rejected {
                code: Some("0x80040237".into()),
                message: "duplicate".into()
            }
            .is_transient()
        );
        assert!(!CrmError::Auth("invalid_client".into()).is_transient());
        assert!(!CrmError::Mapping("no key".into()).is_transient());
    }

    #[test]
    fn errors_read_well() {
        let e = CrmError::Rejected {
            code: Some("REQUIRED_FIELD_MISSING".into()),
            message: "Required fields are missing: [LastName]".into(),
        };
        assert_eq!(
            e.to_string(),
            "the CRM refused the write: Required fields are missing: [LastName] (REQUIRED_FIELD_MISSING)"
        );
        let t = CrmError::Throttled {
            retry_after: Some(Duration::from_secs(5)),
        };
        assert_eq!(
            t.to_string(),
            "the CRM is throttling requests (retry after 5s)"
        );
    }
}
