//! Writes that return the record as stored in the same call (`Prefer:
//! return=representation` with a `$select`, crm.md §1.3, §1.5, §1.6): the upsert by
//! alternate key, the plain update by id, and create.

use super::DataverseConnector;
use super::errors::{Reply, failure};
use super::odata;
use super::records;
use super::web::Call;
use crate::connector::{CrmError, RecordWrite, UpsertOutcome};
use http::{Method, StatusCode};
use refsync_core::crm_record::CrmRecord;
use refsync_core::ids::{CrmRecordId, Etag, ReferralId};
use refsync_core::mapping::EntityMapping;
use refsync_outbound::call::Idempotency;
use serde_json::{Map, Value};
use std::collections::HashMap;

/// The `Prefer` value that makes a write answer with the record (201/200, crm.md §1.3).
pub(super) const RETURN_REPRESENTATION: &str = "return=representation";

impl DataverseConnector {
    /// The body of a write, with each mapped lookup's key value resolved to its id.
    pub(super) async fn body(
        &self,
        entity: &EntityMapping,
        write: &RecordWrite,
        omit: Option<&str>,
    ) -> Result<Map<String, Value>, CrmError> {
        let mut resolved = HashMap::new();
        for lookup in records::lookup_columns(entity) {
            let id = match write.fields.get(&lookup.column) {
                None => continue,
                Some(Value::Null) => None,
                Some(Value::String(key)) => {
                    Some(self.lookups.id_for(&self.web, &lookup, key).await?)
                }
                Some(other) => {
                    return Err(CrmError::Mapping(format!(
                        "[{}] {}: a lookup is written as its {} value, not {other}",
                        entity.entity, lookup.column, lookup.key
                    )));
                }
            };
            resolved.insert(lookup.column.clone(), id);
        }
        records::write_body(entity, write, omit, &resolved)
    }

    /// The record in a return-representation answer.
    async fn returned(&self, entity: &EntityMapping, reply: &Reply) -> Result<CrmRecord, CrmError> {
        if reply.body.is_object() {
            return self.finish(entity, &reply.body).await;
        }
        Err(CrmError::Unavailable(format!(
            "Dataverse answered a {} write with HTTP {} and no record (was Prefer: return=representation dropped?)",
            entity.collection, reply.status
        )))
    }

    /// `PATCH <set>(<key>='<referral>')` with no conditional header: create or update
    /// (crm.md §1.6), 201 when created and 200 when updated, with the record. The key
    /// column stays out of the body (the URL's value is copied in on create). Repeating
    /// it is harmless, so it is retried like a read.
    pub(super) async fn upsert_plain(
        &self,
        entity: &EntityMapping,
        referral: &ReferralId,
        write: &RecordWrite,
    ) -> Result<UpsertOutcome, CrmError> {
        let set = records::entity_set(entity)?;
        let key = records::referral_key(entity)?;
        let body = self.body(entity, write, Some(key)).await?;
        let call = Call::write(
            Method::PATCH,
            odata::by_key(set, key, referral.as_str())?,
            &Value::Object(body),
            Idempotency::Idempotent,
        )?
        .prefer(RETURN_REPRESENTATION)?
        .query("$select", records::select(entity)?);
        let reply = self.web.send(call).await?;
        if !reply.ok() {
            return Err(failure(&reply));
        }
        Ok(UpsertOutcome {
            created: reply.status == StatusCode::CREATED,
            record: self.returned(entity, &reply).await?,
        })
    }

    /// `PATCH <set>(<id>)` with `If-Match: *` so a missing record is a 404 rather than
    /// a new record (crm.md §1.5), answering with the record.
    pub(super) async fn patch(
        &self,
        entity: &EntityMapping,
        id: &CrmRecordId,
        write: &RecordWrite,
    ) -> Result<CrmRecord, CrmError> {
        self.patch_if(entity, id, write, None).await
    }

    /// [`DataverseConnector::patch`] with `If-Match: <etag>` when one is given: a record
    /// changed since is a 412, [`CrmError::PreconditionFailed`].
    pub(super) async fn patch_if(
        &self,
        entity: &EntityMapping,
        id: &CrmRecordId,
        write: &RecordWrite,
        etag: Option<&Etag>,
    ) -> Result<CrmRecord, CrmError> {
        let set = records::entity_set(entity)?;
        let body = self.body(entity, write, None).await?;
        let call = Call::write(
            Method::PATCH,
            odata::by_id(set, id.as_str())?,
            &Value::Object(body),
            // The same values set twice leave the same record.
            Idempotency::Idempotent,
        )?;
        let call = match etag {
            Some(tag) => call.if_match(tag.as_str())?,
            None => call.if_match_any(),
        }
        .prefer(RETURN_REPRESENTATION)?
        .query("$select", records::select(entity)?);
        let reply = self.web.send(call).await?;
        if !reply.ok() {
            return Err(failure(&reply));
        }
        self.returned(entity, &reply).await
    }

    /// `POST <set>` answering 201 with the record. Not repeated once it may have reached
    /// Dataverse: a second create would make a second record.
    pub(super) async fn insert(
        &self,
        entity: &EntityMapping,
        write: &RecordWrite,
    ) -> Result<CrmRecord, CrmError> {
        let set = records::entity_set(entity)?;
        let body = self.body(entity, write, None).await?;
        let call = Call::write(
            Method::POST,
            set.to_owned(),
            &Value::Object(body),
            Idempotency::NotIdempotent,
        )?
        .prefer(RETURN_REPRESENTATION)?
        .query("$select", records::select(entity)?);
        let reply = self.web.send(call).await?;
        if !reply.ok() {
            return Err(failure(&reply));
        }
        self.returned(entity, &reply).await
    }
}
