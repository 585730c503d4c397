//! Writes: upsert by external ID (crm.md §2.3), update and create (§2.2), each read
//! back in the same `/composite` call; and retiring a lead with a closed status.

use super::SalesforceConnector;
use super::composite::CompositeRequest;
use super::errors::{Reply, failure};
use super::records;
use super::rest::{query_value, segment};
use crate::connector::{CrmError, RecordWrite, UpsertOutcome};
use http::{Method, StatusCode};
use refsync_core::crm_record::CrmRecord;
use refsync_core::ids::{CrmRecordId, ReferralId};
use refsync_core::mapping::EntityMapping;
use refsync_outbound::call::Idempotency;
use serde_json::{Map, Value, json};

/// Where a created record's id appears in the read-back path (a composite reference).
const CREATED_ID: &str = "@{write.id}";

/// One write and the path that reads its result.
pub(super) struct WriteThenRead {
    /// `PATCH` or `POST`.
    pub(super) method: Method,
    /// The write's path.
    pub(super) path: String,
    /// The body.
    pub(super) body: Map<String, Value>,
    /// Whether repeating the write is harmless.
    pub(super) idempotency: Idempotency,
    /// The read's path (without the query); may hold [`CREATED_ID`].
    pub(super) read_path: String,
    /// The fields to read.
    pub(super) fields: Vec<String>,
}

/// Whether an upsert answer means "created": 201, or the `created` flag newer
/// versions add to a 200 (crm.md §2.3; 204 on update in older versions).
fn upsert_created(reply: &Reply) -> bool {
    reply
        .body
        .get("created")
        .and_then(Value::as_bool)
        .unwrap_or(reply.status == StatusCode::CREATED)
}

/// The outcome of an upsert from its write and read-back replies.
pub(super) fn upsert_result(
    entity: &EntityMapping,
    object: &str,
    key: &str,
    write: &Reply,
    read: Option<&Reply>,
) -> Result<UpsertOutcome, CrmError> {
    if write.status == StatusCode::NOT_FOUND {
        // Upsert answers 404 when the field is not an External ID of the object (§2.3).
        return Err(CrmError::Mapping(format!(
            "upserting {object} by {key}: Salesforce answered 404 — is {key} an External ID field of {object}?"
        )));
    }
    if !write.ok() {
        return Err(failure(write));
    }
    Ok(UpsertOutcome {
        created: upsert_created(write),
        record: read_back(entity, read)?,
    })
}

/// The record from a read-back reply.
pub(super) fn read_back(
    entity: &EntityMapping,
    read: Option<&Reply>,
) -> Result<CrmRecord, CrmError> {
    match read {
        Some(r) if r.ok() => records::to_record(entity, &r.body),
        Some(r) => Err(failure(r)),
        None => Err(CrmError::Unavailable(format!(
            "Salesforce did not answer the read-back of the {} write",
            entity.collection
        ))),
    }
}

impl SalesforceConnector {
    /// Sends a write and the read of its result: one `/composite` call, or — when the
    /// body holds `@{`, which `/composite` would take for a reference — two calls.
    pub(super) async fn write_then_read(
        &self,
        w: WriteThenRead,
    ) -> Result<(Reply, Option<Reply>), CrmError> {
        let fields = w.fields.join(",");
        if records::has_reference_marker(&w.body) {
            let written = self
                .rest
                .write(w.method, w.path, &Value::Object(w.body), w.idempotency)
                .await?;
            if !written.ok() {
                return Ok((written, None));
            }
            let read_path = if w.read_path.contains(CREATED_ID) {
                let id = written
                    .body
                    .get("id")
                    .and_then(Value::as_str)
                    .ok_or_else(|| {
                        CrmError::Unavailable(
                            "Salesforce created a record without an id".to_owned(),
                        )
                    })?;
                w.read_path.replace(CREATED_ID, &segment(id))
            } else {
                w.read_path
            };
            let read = self.rest.get(read_path, &[("fields", fields)]).await?;
            return Ok((written, Some(read)));
        }
        let mut request = CompositeRequest::new(false);
        request.add(
            "write",
            w.method.as_str(),
            w.path,
            Some(Value::Object(w.body)),
        );
        request.add(
            "read",
            "GET",
            format!("{}?fields={}", w.read_path, query_value(&fields)),
            None,
        );
        let reply = self.rest.composite(&request, w.idempotency).await?;
        let written = reply.get("write")?.clone();
        let read = written
            .ok()
            .then(|| reply.get("read").cloned())
            .transpose()?;
        Ok((written, read))
    }

    /// `PATCH /sobjects/{Object}/{ExternalIdField}/{referral}`: the key travels in the
    /// URL, never in the body (crm.md §2.3). Idempotent, so retried like a read.
    pub(super) async fn upsert_by_external_id(
        &self,
        entity: &EntityMapping,
        referral: &ReferralId,
        write: &RecordWrite,
    ) -> Result<UpsertOutcome, CrmError> {
        let object = records::object(entity)?;
        let key = records::external_id_field(entity)?;
        let path = self.rest.data_path(&format!(
            "sobjects/{object}/{key}/{}",
            segment(referral.as_str())
        ));
        let (written, read) = self
            .write_then_read(WriteThenRead {
                method: Method::PATCH,
                read_path: path.clone(),
                path,
                body: records::write_body(entity, write, Some(key))?,
                idempotency: Idempotency::Idempotent,
                fields: records::read_fields(entity)?,
            })
            .await?;
        upsert_result(entity, object, key, &written, read.as_ref())
    }

    /// `PATCH /sobjects/{Object}/{id}` (204). Stage changes are plain fields here.
    pub(super) async fn update_by_id(
        &self,
        entity: &EntityMapping,
        id: &CrmRecordId,
        write: &RecordWrite,
    ) -> Result<CrmRecord, CrmError> {
        let object = records::object(entity)?;
        if write.is_empty() {
            return self
                .read_by_id(entity, id)
                .await?
                .ok_or_else(|| CrmError::Rejected {
                    code: Some("NOT_FOUND".to_owned()),
                    message: format!("{object} {id} does not exist"),
                });
        }
        let path = self
            .rest
            .data_path(&format!("sobjects/{object}/{}", segment(id.as_str())));
        let (written, read) = self
            .write_then_read(WriteThenRead {
                method: Method::PATCH,
                read_path: path.clone(),
                path,
                body: records::write_body(entity, write, None)?,
                // Setting the same values twice leaves the same record.
                idempotency: Idempotency::Idempotent,
                fields: records::read_fields(entity)?,
            })
            .await?;
        if !written.ok() {
            return Err(failure(&written));
        }
        read_back(entity, read.as_ref())
    }

    /// `POST /sobjects/{Object}` (201 `{id}`). Not repeated after it may have reached
    /// Salesforce: a second create would make a second record.
    pub(super) async fn insert(
        &self,
        entity: &EntityMapping,
        write: &RecordWrite,
    ) -> Result<CrmRecord, CrmError> {
        let object = records::object(entity)?;
        let (written, read) = self
            .write_then_read(WriteThenRead {
                method: Method::POST,
                path: self.rest.data_path(&format!("sobjects/{object}")),
                read_path: self
                    .rest
                    .data_path(&format!("sobjects/{object}/{CREATED_ID}")),
                body: records::write_body(entity, write, None)?,
                idempotency: Idempotency::NotIdempotent,
                fields: records::read_fields(entity)?,
            })
            .await?;
        if !written.ok() {
            return Err(failure(&written));
        }
        read_back(entity, read.as_ref())
    }

    /// Sets the lead's `Status` to `lead_closed_status`. The REST API cannot convert a
    /// lead (crm.md §2.8), so the accepted referral's opportunity is created on its own
    /// and the lead is closed. A lead already converted by a person, or deleted, needs
    /// nothing more: both count as retired.
    pub(super) async fn close_lead(
        &self,
        lead: &EntityMapping,
        id: &CrmRecordId,
        opportunity: &CrmRecordId,
    ) -> Result<(), CrmError> {
        let object = records::object(lead)?;
        let reply = self
            .rest
            .write(
                Method::PATCH,
                self.rest
                    .data_path(&format!("sobjects/{object}/{}", segment(id.as_str()))),
                &json!({ "Status": self.lead_closed_status }),
                Idempotency::Idempotent,
            )
            .await?;
        let already = reply.status == StatusCode::NOT_FOUND
            || reply.error_code().as_deref() == Some("CANNOT_UPDATE_CONVERTED_LEAD");
        if reply.ok() || already {
            tracing::info!(
                lead = %id,
                %opportunity,
                status = %self.lead_closed_status,
                already_closed = already,
                "Salesforce lead retired; the referral lives on as the opportunity"
            );
            return Ok(());
        }
        Err(failure(&reply))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(status: u16, body: Value) -> Reply {
        Reply {
            status: StatusCode::from_u16(status).unwrap(),
            body,
        }
    }

    #[test]
    fn created_follows_the_flag_then_the_status() {
        assert!(upsert_created(&reply(
            201,
            json!({"id": "x", "success": true})
        )));
        assert!(!upsert_created(&reply(
            200,
            json!({"id": "x", "created": false})
        )));
        assert!(!upsert_created(&reply(204, Value::Null)));
        assert!(upsert_created(&reply(
            200,
            json!({"id": "x", "created": true})
        )));
    }
}
