//! Reads: a record by primary key, by referral (its alternate key), by column values,
//! and the records changed since a watermark (crm.md §1.6–§1.8). Every read names its
//! columns with `$select`, and every lookup comes back as its key value.

use super::DataverseConnector;
use super::errors::failure;
use super::odata;
use super::records::{self, MODIFIED_ON};
use super::web::Call;
use crate::connector::CrmError;
use chrono::{DateTime, Utc};
use http::StatusCode;
use refsync_core::crm_record::CrmRecord;
use refsync_core::ids::{CrmRecordId, ReferralId};
use refsync_core::mapping::EntityMapping;
use serde_json::Value;

/// Largest `$top` Dataverse honours in one page (crm.md §1.8).
const MAX_TOP: usize = 5000;

impl DataverseConnector {
    /// A record as read, with each mapped lookup's `_x_value` id turned into the
    /// target's key value under the lookup's own name (`transactioncurrencyid: "USD"`).
    pub(super) async fn finish(
        &self,
        entity: &EntityMapping,
        json: &Value,
    ) -> Result<CrmRecord, CrmError> {
        let mut record = records::to_record(entity, json)?;
        for lookup in records::lookup_columns(entity) {
            let id = record
                .fields
                .get(&lookup.read_name())
                .and_then(Value::as_str)
                .map(str::to_owned);
            let key = match id {
                Some(id) => self.lookups.key_for(&self.web, &lookup, &id).await?,
                None => None,
            };
            record.fields.insert(
                lookup.column.clone(),
                key.map_or(Value::Null, Value::String),
            );
        }
        Ok(record)
    }

    /// One record from a single-record answer; 404 is `None`.
    async fn single(
        &self,
        entity: &EntityMapping,
        path: String,
    ) -> Result<Option<CrmRecord>, CrmError> {
        let call = Call::get(path).query("$select", records::select(entity)?);
        let reply = self.web.send(call).await?;
        if reply.ok() {
            return self.finish(entity, &reply.body).await.map(Some);
        }
        if reply.status == StatusCode::NOT_FOUND && !failure_names_mapping(&reply) {
            return Ok(None);
        }
        Err(failure(&reply))
    }

    /// `GET <set>(<id>)?$select=…`.
    pub(super) async fn read_by_id(
        &self,
        entity: &EntityMapping,
        id: &CrmRecordId,
    ) -> Result<Option<CrmRecord>, CrmError> {
        let set = records::entity_set(entity)?;
        self.single(entity, odata::by_id(set, id.as_str())?).await
    }

    /// `GET <set>(<key>='<referral>')?$select=…` (crm.md §1.6). Quotes in the value are
    /// doubled; a key that is not defined on the table is a mapping problem, not "absent".
    pub(super) async fn read_by_referral(
        &self,
        entity: &EntityMapping,
        referral: &ReferralId,
    ) -> Result<Option<CrmRecord>, CrmError> {
        let set = records::entity_set(entity)?;
        let key = records::referral_key(entity)?;
        self.single(entity, odata::by_key(set, key, referral.as_str())?)
            .await
    }

    /// `$filter=a eq 'x' and b eq 'y'&$top=n`, oldest first so repeated matching picks
    /// the same record. Dataverse compares strings without case (crm.md §1.7).
    pub(super) async fn find_matching(
        &self,
        entity: &EntityMapping,
        criteria: &[(&str, &Value)],
        limit: usize,
    ) -> Result<Vec<CrmRecord>, CrmError> {
        if criteria.is_empty() {
            return Err(CrmError::Mapping(format!(
                "matching {} records needs at least one column",
                entity.collection
            )));
        }
        if limit == 0 {
            return Ok(Vec::new());
        }
        let limit = limit.min(MAX_TOP);
        let lookups = records::lookup_columns(entity);
        let mut parts = Vec::with_capacity(criteria.len());
        for (column, value) in criteria {
            let part = match (lookups.iter().find(|l| l.column == *column), value) {
                // A lookup is compared by id, a GUID literal, through its read name (§1.7).
                (Some(lookup), Value::String(key)) => format!(
                    "{} eq {}",
                    odata::name(&lookup.read_name())?,
                    self.lookups.id_for(&self.web, lookup, key).await?
                ),
                (Some(lookup), other) => odata::all_equal(&[(&lookup.read_name(), other)])?,
                (None, other) => odata::all_equal(&[(column, other)])?,
            };
            parts.push(part);
        }
        let filter = parts.join(" and ");
        let call = Call::get(records::entity_set(entity)?.to_owned())
            .query("$select", records::select(entity)?)
            .query("$filter", filter)
            .query(
                "$orderby",
                format!("createdon asc,{} asc", entity.primary_key),
            )
            .query("$top", limit.to_string());
        let rows = self.web.collect(call, limit, None).await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            out.push(self.finish(entity, row).await?);
        }
        Ok(out)
    }

    /// `$filter=modifiedon gt <since>&$orderby=modifiedon asc`, in pages of `page_size`
    /// (`Prefer: odata.maxpagesize`, crm.md §1.8), following `@odata.nextLink` until
    /// `limit` records (at most `limit + 1` pages). Dataverse keeps `modifiedon` to the
    /// millisecond but returns it to the second, so a watermark taken from a returned
    /// record brings back the records of that second again: seen twice, never missed.
    pub(super) async fn changed_since(
        &self,
        entity: &EntityMapping,
        since: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<CrmRecord>, CrmError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let call = Call::get(records::entity_set(entity)?.to_owned())
            .query("$select", records::select(entity)?)
            .query(
                "$filter",
                format!("{MODIFIED_ON} gt {}", odata::datetime_literal(since)),
            )
            .query(
                "$orderby",
                format!("{MODIFIED_ON} asc,{} asc", entity.primary_key),
            );
        let rows = self
            .web
            .collect(call, limit, Some(self.page_size.min(limit)))
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            out.push(self.finish(entity, row).await?);
        }
        Ok(out)
    }
}

/// A 404 that says the entity set or key is unknown, rather than the record.
fn failure_names_mapping(reply: &super::errors::Reply) -> bool {
    matches!(failure(reply), CrmError::Mapping(_))
}
