//! An in-memory CRM behind the [`CrmConnector`] trait, for the engine's unit tests
//! and, under the `test-harness` feature, as a third CRM beside the Salesforce and
//! Dataverse emulators in end-to-end tests (the binary's tests and the demo can use
//! it without a CRM emulator).
//!
//! It keeps the contract's promises the way the real CRMs do: the upsert is keyed
//! by the referral-identifier column and refuses that column in the body (crm.md
//! §1.6, §2.3), every write moves the record's modified time forward, a deleted
//! record is gone for `get` and the upsert alike. It also lets tests act as a
//! seller (edits that are not API calls), count API calls, and fail the next calls.

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use refsync_core::mapping::EntityMapping;
use refsync_core::{CrmEntity, CrmRecord, CrmRecordId, CrmRecordRef, ReferralId};
use refsync_crm::{CrmConnector, CrmError, CrmKind, RecordWrite, UpsertOutcome};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

/// One stored record.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRecord {
    /// The record as `get` returns it.
    pub record: CrmRecord,
    /// The account it is bound to.
    pub account: Option<CrmRecordId>,
    /// The contact it is bound to.
    pub contact: Option<CrmRecordId>,
    /// For a retired lead: the opportunity it became.
    pub retired_into: Option<CrmRecordId>,
    /// Deleted by a user: invisible to the API.
    pub deleted: bool,
}

/// One API call, as counted by [`MemoryCrm::calls`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// The operation (`get`, `upsert`, `update`, …).
    pub op: &'static str,
    /// The record type.
    pub entity: CrmEntity,
}

impl Call {
    /// True for an operation that changes data.
    pub fn is_write(&self) -> bool {
        matches!(self.op, "upsert" | "update" | "create" | "retire_lead")
    }
}

/// A failure to return from an upcoming call.
type Fault = Box<dyn Fn() -> CrmError + Send>;

#[derive(Default)]
struct State {
    records: BTreeMap<(CrmEntity, CrmRecordId), StoredRecord>,
    next_id: u64,
    last_modified: Option<DateTime<Utc>>,
    calls: Vec<Call>,
    faults: VecDeque<(Option<&'static str>, Fault)>,
}

/// The in-memory CRM. Clones share the same records.
#[derive(Clone, Default)]
pub struct MemoryCrm {
    state: Arc<Mutex<State>>,
}

impl std::fmt::Debug for MemoryCrm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryCrm").finish_non_exhaustive()
    }
}

impl MemoryCrm {
    /// An empty CRM.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every API call so far, oldest first.
    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    /// API calls that changed data.
    pub fn write_count(&self) -> usize {
        self.lock().calls.iter().filter(|c| c.is_write()).count()
    }

    /// Makes the next `n` calls (of operation `op`, or of any operation) fail with
    /// the error `make` builds. `op` is `get`, `upsert`, `update`, `retire_lead`,
    /// `find`, `create`, `modified_since`, or `write` for any of the writes.
    pub fn fail_next(
        &self,
        n: usize,
        op: Option<&'static str>,
        make: impl Fn() -> CrmError + Send + Sync + 'static,
    ) {
        let make = Arc::new(make);
        let mut state = self.lock();
        for _ in 0..n {
            let make = Arc::clone(&make);
            state.faults.push_back((op, Box::new(move || make())));
        }
    }

    /// Live records of one type, in id order.
    pub fn records(&self, entity: &CrmEntity) -> Vec<StoredRecord> {
        self.lock()
            .records
            .iter()
            .filter(|((e, _), r)| e == entity && !r.deleted)
            .map(|(_, r)| r.clone())
            .collect()
    }

    /// One stored record, deleted or not.
    pub fn record(&self, record: &CrmRecordRef) -> Option<StoredRecord> {
        self.lock()
            .records
            .get(&(record.entity.clone(), record.id.clone()))
            .cloned()
    }

    /// Changes fields as a seller would in the CRM's UI (not an API call).
    pub fn edit_as_user(&self, record: &CrmRecordRef, fields: Map<String, Value>) -> bool {
        let mut state = self.lock();
        let at = state.tick();
        match state
            .records
            .get_mut(&(record.entity.clone(), record.id.clone()))
        {
            Some(r) if !r.deleted => {
                r.record.apply_update(&fields);
                r.record.modified_at = Some(at);
                true
            }
            _ => false,
        }
    }

    /// Creates a record as a seller would (not an API call).
    pub fn create_as_user(
        &self,
        entity: CrmEntity,
        fields: Map<String, Value>,
    ) -> Option<CrmRecordRef> {
        let mut state = self.lock();
        let id = state.new_id(&entity).ok()?;
        let at = state.tick();
        let mut record = CrmRecord::new(entity.clone());
        record.id = Some(id.clone());
        record.fields = fields;
        record.modified_at = Some(at);
        state.insert(record, None, None);
        Some(CrmRecordRef::new(entity, id))
    }

    /// Deletes a record as a seller would (not an API call).
    pub fn delete_as_user(&self, record: &CrmRecordRef) -> bool {
        let mut state = self.lock();
        match state
            .records
            .get_mut(&(record.entity.clone(), record.id.clone()))
        {
            Some(r) if !r.deleted => {
                r.deleted = true;
                true
            }
            _ => false,
        }
    }

    /// Counts a call, or fails it when a fault is due.
    fn call(
        &self,
        op: &'static str,
        entity: &CrmEntity,
    ) -> Result<MutexGuard<'_, State>, CrmError> {
        let mut state = self.lock();
        state.calls.push(Call {
            op,
            entity: entity.clone(),
        });
        let due = state.faults.iter().position(|(only, _)| {
            only.is_none_or(|o| o == op || (o == "write" && WRITES.contains(&op)))
        });
        if let Some(i) = due
            && let Some((_, fault)) = state.faults.remove(i)
        {
            return Err(fault());
        }
        Ok(state)
    }
}

/// The operations that change records (`fail_next(…, Some("write"), …)`).
const WRITES: [&str; 4] = ["upsert", "update", "retire_lead", "create"];

impl State {
    /// A modified time after every earlier one, even within one clock tick.
    /// Microseconds, as real CRMs (and the store) keep times no finer than that.
    fn tick(&mut self) -> DateTime<Utc> {
        let now = chrono::SubsecRound::trunc_subsecs(Utc::now(), 6);
        let at = match self.last_modified {
            Some(last) if now <= last => last + TimeDelta::milliseconds(1),
            _ => now,
        };
        self.last_modified = Some(at);
        at
    }

    fn new_id(&mut self, entity: &CrmEntity) -> Result<CrmRecordId, CrmError> {
        self.next_id += 1;
        let prefix = match entity {
            CrmEntity::Lead => "lead",
            CrmEntity::Opportunity => "opp",
            CrmEntity::Account => "acct",
            CrmEntity::Contact => "cont",
            CrmEntity::Other(_) => "rec",
        };
        CrmRecordId::parse(format!("{prefix}-{:04}", self.next_id))
            .map_err(|e| CrmError::Unavailable(format!("cannot make a record id: {e}")))
    }

    fn insert(
        &mut self,
        record: CrmRecord,
        account: Option<CrmRecordId>,
        contact: Option<CrmRecordId>,
    ) {
        if let Some(id) = record.id.clone() {
            self.records.insert(
                (record.entity.clone(), id),
                StoredRecord {
                    record,
                    account,
                    contact,
                    retired_into: None,
                    deleted: false,
                },
            );
        }
    }

    fn live(&self, entity: &CrmEntity, id: &CrmRecordId) -> Option<&StoredRecord> {
        self.records
            .get(&(entity.clone(), id.clone()))
            .filter(|r| !r.deleted)
    }
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

#[async_trait]
impl CrmConnector for MemoryCrm {
    fn kind(&self) -> CrmKind {
        CrmKind::Salesforce
    }

    async fn get(
        &self,
        entity: &EntityMapping,
        id: &CrmRecordId,
    ) -> Result<Option<CrmRecord>, CrmError> {
        let state = self.call("get", &entity.entity)?;
        Ok(state.live(&entity.entity, id).map(|r| r.record.clone()))
    }

    async fn get_by_referral(
        &self,
        entity: &EntityMapping,
        referral: &ReferralId,
    ) -> Result<Option<CrmRecord>, CrmError> {
        let state = self.call("get", &entity.entity)?;
        let column = key_column(entity)?;
        Ok(state
            .records
            .iter()
            .filter(|((e, _), r)| *e == entity.entity && !r.deleted)
            .find(|(_, r)| r.record.field(column).as_str() == Some(referral.as_str()))
            .map(|(_, r)| r.record.clone()))
    }

    async fn upsert_by_referral(
        &self,
        entity: &EntityMapping,
        referral: &ReferralId,
        write: &RecordWrite,
    ) -> Result<UpsertOutcome, CrmError> {
        let mut state = self.call("upsert", &entity.entity)?;
        let column = key_column(entity)?;
        if write.fields.keys().any(|k| k.eq_ignore_ascii_case(column)) {
            return Err(CrmError::Rejected {
                code: Some("INVALID_FIELD".into()),
                message: format!("the external ID field {column} must not be in the body"),
            });
        }
        let at = state.tick();
        let found = state
            .records
            .iter()
            .find(|((e, _), r)| {
                *e == entity.entity
                    && !r.deleted
                    && r.record.field(column).as_str() == Some(referral.as_str())
            })
            .map(|(k, _)| k.clone());
        if let Some(key) = found
            && let Some(stored) = state.records.get_mut(&key)
        {
            stored.record.apply_update(&write.fields);
            stored.record.modified_at = Some(at);
            stored.account = write.account.clone().or(stored.account.take());
            stored.contact = write.contact.clone().or(stored.contact.take());
            return Ok(UpsertOutcome {
                record: stored.record.clone(),
                created: false,
            });
        }
        let id = state.new_id(&entity.entity)?;
        let mut record = CrmRecord::new(entity.entity.clone());
        record.id = Some(id);
        record.fields = write.fields.clone();
        record
            .fields
            .insert(column.to_owned(), Value::String(referral.to_string()));
        record.modified_at = Some(at);
        state.insert(record.clone(), write.account.clone(), write.contact.clone());
        Ok(UpsertOutcome {
            record,
            created: true,
        })
    }

    async fn update(
        &self,
        entity: &EntityMapping,
        id: &CrmRecordId,
        write: &RecordWrite,
    ) -> Result<CrmRecord, CrmError> {
        let mut state = self.call("update", &entity.entity)?;
        let at = state.tick();
        let stored = state
            .records
            .get_mut(&(entity.entity.clone(), id.clone()))
            .filter(|r| !r.deleted)
            .ok_or_else(|| CrmError::Rejected {
                code: Some("ENTITY_IS_DELETED".into()),
                message: format!("{} {id} does not exist", entity.entity),
            })?;
        stored.record.apply_update(&write.fields);
        stored.record.modified_at = Some(at);
        if write.account.is_some() {
            stored.account = write.account.clone();
        }
        if write.contact.is_some() {
            stored.contact = write.contact.clone();
        }
        Ok(stored.record.clone())
    }

    async fn retire_lead(
        &self,
        lead: &EntityMapping,
        id: &CrmRecordId,
        opportunity: &CrmRecordId,
    ) -> Result<(), CrmError> {
        let mut state = self.call("retire_lead", &lead.entity)?;
        let at = state.tick();
        let stored = state
            .records
            .get_mut(&(lead.entity.clone(), id.clone()))
            .filter(|r| !r.deleted)
            .ok_or_else(|| CrmError::Rejected {
                code: Some("ENTITY_IS_DELETED".into()),
                message: format!("lead {id} does not exist"),
            })?;
        // Retiring again (a retried qualification) changes nothing.
        if stored.retired_into.is_none() {
            stored.retired_into = Some(opportunity.clone());
            stored.record.modified_at = Some(at);
        }
        Ok(())
    }

    async fn find_by_columns(
        &self,
        entity: &EntityMapping,
        criteria: &[(&str, &Value)],
        limit: usize,
    ) -> Result<Vec<CrmRecord>, CrmError> {
        let state = self.call("find", &entity.entity)?;
        Ok(state
            .records
            .iter()
            .filter(|((e, _), r)| *e == entity.entity && !r.deleted)
            .filter(|(_, r)| {
                criteria.iter().all(|(column, value)| {
                    let have = text(r.record.field(column)).map(|s| s.to_lowercase());
                    have == text(value).map(|s| s.to_lowercase())
                })
            })
            .take(limit)
            .map(|(_, r)| r.record.clone())
            .collect())
    }

    async fn create(
        &self,
        entity: &EntityMapping,
        write: &RecordWrite,
    ) -> Result<CrmRecord, CrmError> {
        let mut state = self.call("create", &entity.entity)?;
        let at = state.tick();
        let id = state.new_id(&entity.entity)?;
        let mut record = CrmRecord::new(entity.entity.clone());
        record.id = Some(id);
        record.fields = write.fields.clone();
        record.modified_at = Some(at);
        state.insert(record.clone(), write.account.clone(), write.contact.clone());
        Ok(record)
    }

    async fn modified_since(
        &self,
        entity: &EntityMapping,
        since: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<CrmRecord>, CrmError> {
        let state = self.call("modified_since", &entity.entity)?;
        let mut changed: Vec<CrmRecord> = state
            .records
            .iter()
            .filter(|((e, _), r)| *e == entity.entity && !r.deleted)
            .filter(|(_, r)| r.record.modified_at.is_some_and(|m| m > since))
            .map(|(_, r)| r.record.clone())
            .collect();
        changed.sort_by_key(|r| r.modified_at);
        changed.truncate(limit);
        Ok(changed)
    }
}

fn key_column(entity: &EntityMapping) -> Result<&str, CrmError> {
    entity.referral_id_field.as_deref().ok_or_else(|| {
        CrmError::Mapping(format!(
            "[{}] has no referral_id_field to upsert on",
            entity.entity
        ))
    })
}
