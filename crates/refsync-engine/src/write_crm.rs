//! Writing the CRM: creating a referral's record through the idempotent upsert on
//! its referral identifier (a lead alone, an opportunity with its customer account
//! and contact), updating a linked record, retiring a qualified lead, and marking a
//! record whose sync was given up on.

use crate::audit::failure_line;
use crate::decide::{self, Decorations};
use crate::engine::SyncEngine;
use crate::error::SyncError;
use crate::metrics as m;
use refsync_core::mapping::EntityMapping;
use refsync_core::{CrmEntity, CrmRecord, CrmRecordId, CrmRecordRef, Referral, ReferralId};
use refsync_crm::{Customer, RecordWrite};
use serde_json::{Map, Value};

/// A record created (or found) by the upsert on the referral identifier.
#[derive(Debug, Clone)]
pub(crate) struct Upserted {
    /// The record as it is after the write.
    pub record: CrmRecord,
    /// False when the record was already there (a retry after a crash, or a
    /// record an earlier connector made).
    pub created: bool,
}

impl SyncEngine {
    /// Creates the record of type `entity` for a referral through the upsert on its
    /// referral identifier, so a crash between this write and saving the link can
    /// never make a second record: the retry finds this one. The record carries the
    /// referral's values, the sync flag, the first Audit line and (when enabled) ✔.
    pub(crate) async fn create_record(
        &self,
        em: &EntityMapping,
        referral_id: &ReferralId,
        referral: &Referral,
        audit_line: Option<&str>,
    ) -> Result<Upserted, SyncError> {
        let mut fields = decide::new_record_fields(em, referral)?;
        let blank = CrmRecord::new(em.entity.clone());
        decide::decorate(
            &mut fields,
            em,
            &blank,
            Decorations {
                audit_line: audit_line.filter(|_| self.settings.audit_column),
                audit_max_chars: self.settings.audit_column_max_chars,
                mark: self.settings.checkmark_suffix.then_some(true),
            },
        );
        let write = RecordWrite::fields(fields.clone());
        let outcome = match em.entity {
            CrmEntity::Opportunity => {
                let (account, contact) = decide::customer_wanted(&self.mapping, referral)?;
                let account_em = self.mapping.entity(&CrmEntity::Account).ok();
                let contact_em = self.mapping.entity(&CrmEntity::Contact).ok();
                let customer = Customer {
                    account: account_em.zip(account.as_ref()),
                    contact: contact_em.zip(contact.as_ref()),
                };
                // Two referrals of one customer at once must not both create it.
                let _customer = self
                    .customer_locks
                    .lock(&account.as_ref().map(|a| a.match_on.clone()))
                    .await;
                let result = self
                    .crm
                    .upsert_with_customer(em, referral_id, &write, customer)
                    .await?;
                for (_, created) in [&result.account, &result.contact].into_iter().flatten() {
                    if *created {
                        m::crm_write("create_customer");
                    }
                }
                result.upsert
            }
            _ => self.crm.upsert_by_referral(em, referral_id, &write).await?,
        };
        m::crm_write("upsert");
        let column = em.referral_id_field.as_deref();
        let record = decide::as_written(outcome.record, &fields, column.map(|c| (c, referral_id)));
        Ok(Upserted {
            record,
            created: outcome.created,
        })
    }

    /// Updates a linked record and returns it as it is afterwards.
    pub(crate) async fn update_record(
        &self,
        em: &EntityMapping,
        record: &CrmRecord,
        body: Map<String, Value>,
    ) -> Result<CrmRecord, SyncError> {
        let id = record.id.clone().ok_or_else(|| {
            SyncError::Unsyncable(format!(
                "a {} record without an id cannot be updated",
                em.entity
            ))
        })?;
        let updated = self
            .crm
            .update(em, &id, &RecordWrite::fields(body.clone()))
            .await?;
        m::crm_write("update");
        Ok(decide::as_written(updated, &body, None))
    }

    /// Retires a lead whose referral now lives as `opportunity`.
    pub(crate) async fn retire_lead(
        &self,
        lead: &CrmRecordId,
        opportunity: &CrmRecordId,
    ) -> Result<(), SyncError> {
        let em = self.entity(&CrmEntity::Lead)?;
        self.crm.retire_lead(em, lead, opportunity).await?;
        m::crm_write("retire_lead");
        Ok(())
    }

    /// Best effort, after a key was dead-lettered: appends the reason to the linked
    /// record's Audit column and (when enabled) marks its name with ✖. Failures here
    /// are logged, never raised: the dead letter itself is what operators act on.
    pub(crate) async fn mark_failure(&self, record: &CrmRecordRef, reason: &str) {
        if !self.settings.audit_column && !self.settings.checkmark_suffix {
            return;
        }
        let result: Result<(), SyncError> = async {
            let em = self.entity(&record.entity)?;
            if em.audit_field.is_none()
                && (em.marked_name_field.is_none() || !self.settings.checkmark_suffix)
            {
                return Ok(());
            }
            let Some(current) = self.read_record(em, &record.id).await? else {
                return Ok(());
            };
            let line = failure_line(self.now(), reason);
            let mut body = Map::new();
            decide::decorate(
                &mut body,
                em,
                &current,
                Decorations {
                    audit_line: Some(line.as_str()).filter(|_| self.settings.audit_column),
                    audit_max_chars: self.settings.audit_column_max_chars,
                    mark: self.settings.checkmark_suffix.then_some(false),
                },
            );
            if body.is_empty() {
                return Ok(());
            }
            let updated = self.update_record(em, &current, body).await?;
            // Our own write must not read as a seller's change to the CRM poller,
            // or the dead letter would be revived (and marked again) forever.
            if let Some(mut link) = self.store.link_by_crm_record(record).await? {
                link.crm_modified_at = updated.modified_at.or(link.crm_modified_at);
                self.save(&link, &[]).await?;
            }
            Ok(())
        }
        .await;
        if let Err(e) = result {
            tracing::warn!(record = %record, error = %e, "could not mark the record's failure in the CRM");
        }
    }
}
