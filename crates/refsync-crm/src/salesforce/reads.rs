//! Reads: a record by id, by referral (its external ID), by column values, and the
//! records changed since a watermark (crm.md §2.2, §2.4, §2.9).

use super::SalesforceConnector;
use super::errors::read_failure;
use super::records::{self, SYSTEM_MODSTAMP};
use super::rest::{is_absent, segment};
use super::soql;
use crate::connector::CrmError;
use chrono::{DateTime, Utc};
use refsync_core::crm_record::CrmRecord;
use refsync_core::ids::{CrmRecordId, ReferralId};
use refsync_core::mapping::EntityMapping;
use serde_json::Value;

impl SalesforceConnector {
    /// `GET /sobjects/{Object}/{id}?fields=…`; 404 (missing or deleted) is `None`.
    pub(super) async fn read_by_id(
        &self,
        entity: &EntityMapping,
        id: &CrmRecordId,
    ) -> Result<Option<CrmRecord>, CrmError> {
        let object = records::object(entity)?;
        let fields = records::read_fields(entity)?.join(",");
        let reply = self
            .rest
            .get(
                self.rest
                    .data_path(&format!("sobjects/{object}/{}", segment(id.as_str()))),
                &[("fields", fields)],
            )
            .await?;
        if reply.ok() {
            return records::to_record(entity, &reply.body).map(Some);
        }
        if is_absent(&reply) {
            return Ok(None);
        }
        Err(read_failure(&reply, object))
    }

    /// SOQL on the external ID field rather than `GET /sobjects/{Object}/{Field}/{value}`:
    /// that answers 404 both for "no such record" and "no such field", where a query
    /// tells a mapping mistake (`INVALID_FIELD`) from an absent record, and shows
    /// duplicates instead of a bare 300.
    pub(super) async fn read_by_referral(
        &self,
        entity: &EntityMapping,
        referral: &ReferralId,
    ) -> Result<Option<CrmRecord>, CrmError> {
        let object = records::object(entity)?;
        let key = records::external_id_field(entity)?;
        let value = Value::String(referral.to_string());
        let q = soql::select(
            &records::read_fields(entity)?,
            object,
            Some(&soql::all_equal(&[(key, &value)])?),
            None,
            Some(2),
        )?;
        let mut found = self.rest.query(&q, 2, object).await?;
        match found.len() {
            0 => Ok(None),
            1 => records::to_record(entity, &found.remove(0)).map(Some),
            n => Err(CrmError::Rejected {
                code: None,
                message: format!(
                    "{n} {object} records have {key} = {referral}; one referral must have one record — remove the duplicates"
                ),
            }),
        }
    }

    /// `SELECT … WHERE A = 'x' AND B = 'y'`, oldest first so repeated matching picks
    /// the same record. SOQL compares text case-insensitively, as Salesforce users expect.
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
        let object = records::object(entity)?;
        let q = soql::select(
            &records::read_fields(entity)?,
            object,
            Some(&soql::all_equal(criteria)?),
            Some("CreatedDate ASC, Id ASC"),
            Some(limit),
        )?;
        self.rest
            .query(&q, limit, object)
            .await?
            .iter()
            .map(|r| records::to_record(entity, r))
            .collect()
    }

    /// `SystemModstamp > since ORDER BY SystemModstamp, Id LIMIT n`, following
    /// `nextRecordsUrl` (at most `limit + 1` pages). SystemModstamp rather than
    /// LastModifiedDate because it also moves on system changes (crm.md §2.9).
    pub(super) async fn changed_since(
        &self,
        entity: &EntityMapping,
        since: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<CrmRecord>, CrmError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let object = records::object(entity)?;
        let q = soql::select(
            &records::read_fields(entity)?,
            object,
            Some(&format!(
                "{SYSTEM_MODSTAMP} > {}",
                soql::datetime_literal(since)
            )),
            Some(&format!("{SYSTEM_MODSTAMP} ASC, Id ASC")),
            Some(limit),
        )?;
        self.rest
            .query(&q, limit, object)
            .await?
            .iter()
            .map(|r| records::to_record(entity, r))
            .collect()
    }
}
