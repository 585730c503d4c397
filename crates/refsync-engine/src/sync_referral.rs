//! Syncing a referral key: read the referral, then take one route.
//!
//! - gone (404): audit once, keep the CRM record;
//! - another organization's half of an engagement: enqueue ours (trigger `follow`);
//! - unchanged since the last sync (same eTag, no CRM-side trigger): nothing;
//! - no CRM record yet: create one through the upsert on the referral identifier;
//! - linked to a lead and now accepted: qualify the lead into an opportunity;
//! - linked: read the record and converge (recreating it if it was deleted).
//!
//! Every route that writes ends in `finish`: the link with its new base, version
//! tags and audit entries saved in one transaction.

use crate::audit::{self, AuditSubject, Creation, Origin};
use crate::converge::{Converged, Pair};
use crate::decide::{self, Route};
use crate::engine::{SyncEngine, base_of, snapshot_of};
use crate::error::SyncError;
use crate::outcome::SyncOutcome;
use refsync_core::mapping::FieldValues;
use refsync_core::{CrmEntity, CrmRecordRef, Referral, ReferralId, SyncKey};
use refsync_store::{AuditKind, Enqueue, SyncLink, Trigger};
use serde_json::json;

impl SyncEngine {
    /// Syncs the referral `id`; `triggers` are every reason the key was enqueued.
    pub(crate) async fn sync_referral(
        &self,
        id: &ReferralId,
        triggers: &[Trigger],
    ) -> Result<SyncOutcome, SyncError> {
        let link = self.store.link_by_referral(id).await?;
        let Some(referral) = self.read_referral(id).await? else {
            return self.referral_gone(id, link.as_ref()).await;
        };
        if decide::is_foreign(&referral, self.settings.own_organization_id.as_deref()) {
            return self.follow_engagement(&referral).await;
        }
        if decide::is_unchanged(link.as_ref(), &referral, triggers) {
            return Ok(SyncOutcome::Unchanged);
        }
        let link = link.unwrap_or_else(|| SyncLink::for_referral(id.clone(), self.now()));
        match decide::route(Some(&link), &referral) {
            Route::Create(entity) => self.create_linked(id, referral, link, &entity).await,
            Route::Qualify { lead } => self.qualify(id, referral, link, lead).await,
            Route::Merge(record) => self.merge_linked(id, referral, link, record).await,
        }
    }

    /// The referral is gone (404). Its CRM record stays as it is; the first time this
    /// is seen for a linked referral it is audited.
    async fn referral_gone(
        &self,
        id: &ReferralId,
        link: Option<&SyncLink>,
    ) -> Result<SyncOutcome, SyncError> {
        let Some(link) = link else {
            return Ok(SyncOutcome::ReferralGone);
        };
        let last = self.store.audit_for_referral(id, 1).await?;
        if last
            .first()
            .is_some_and(|e| e.entry.kind == AuditKind::ReferralGone)
        {
            return Ok(SyncOutcome::ReferralGone);
        }
        let subject = AuditSubject {
            key: SyncKey::Referral(id.clone()),
            referral_id: Some(id.clone()),
            crm_record: link.crm_record.clone(),
        };
        let entry = subject.entry(
            self.now(),
            AuditKind::ReferralGone,
            "the referral no longer exists in Partner Center; the CRM record is kept".to_owned(),
            json!({ "record": link.crm_record.as_ref().map(ToString::to_string) }),
        );
        self.store.append_audit(&[entry]).await?;
        Ok(SyncOutcome::ReferralGone)
    }

    /// Another organization's referral (Microsoft's half of a co-sell): what changed
    /// there reaches our records through our own referrals of the engagement, so
    /// those are enqueued, and nothing else is done.
    async fn follow_engagement(&self, foreign: &Referral) -> Result<SyncOutcome, SyncError> {
        let Some(engagement) = &foreign.engagement_id else {
            return Ok(SyncOutcome::Skipped {
                reason: "another organization's referral without an engagement".to_owned(),
            });
        };
        let own = self.settings.own_organization_id.as_deref();
        let ours: Vec<ReferralId> = self
            .read_engagement(engagement)
            .await?
            .into_iter()
            .filter(|r| !decide::is_foreign(r, own))
            .filter_map(|r| r.id)
            .collect();
        let now = self.now();
        let items: Vec<Enqueue> = ours
            .iter()
            .map(|id| Enqueue::now(SyncKey::Referral(id.clone()), Trigger::Follow, now))
            .collect();
        if !items.is_empty() {
            self.store.enqueue_many(&items, now).await?;
            self.wakeup.notify();
        }
        Ok(SyncOutcome::FollowedEngagement { enqueued: ours })
    }

    /// A referral with no CRM record yet: create it, tell Partner Center its id.
    async fn create_linked(
        &self,
        id: &ReferralId,
        referral: Referral,
        link: SyncLink,
        entity: &CrmEntity,
    ) -> Result<SyncOutcome, SyncError> {
        let em = self.entity(entity)?;
        let line = audit::created_line(self.now(), Creation::New(entity));
        let upserted = self.create_record(em, id, &referral, Some(&line)).await?;
        let record = record_ref(&upserted.record)?;
        let origin = Origin::Created {
            record: record.clone(),
            new: upserted.created,
        };
        let pair = Pair {
            referral,
            record: upserted.record,
        };
        let converged = self
            .converge(em, id, pair, FieldValues::new(), Some(origin))
            .await?;
        self.finish(&SyncKey::Referral(id.clone()), link, converged)
            .await?;
        Ok(SyncOutcome::Created { record })
    }

    /// The referral was accepted while it lived as a lead: create the opportunity
    /// with its customer, retire the lead, move the link (the base carries over).
    async fn qualify(
        &self,
        id: &ReferralId,
        referral: Referral,
        link: SyncLink,
        lead: CrmRecordRef,
    ) -> Result<SyncOutcome, SyncError> {
        let em = self.entity(&CrmEntity::Opportunity)?;
        let line = audit::created_line(self.now(), Creation::Qualified);
        let upserted = self.create_record(em, id, &referral, Some(&line)).await?;
        let opportunity = record_ref(&upserted.record)?;
        self.retire_lead(&lead.id, &opportunity.id).await?;
        let origin = Origin::Qualified {
            lead: lead.clone(),
            opportunity: opportunity.clone(),
        };
        let pair = Pair {
            referral,
            record: upserted.record,
        };
        let base = base_of(Some(&link));
        let converged = self.converge(em, id, pair, base, Some(origin)).await?;
        self.finish(&SyncKey::Referral(id.clone()), link, converged)
            .await?;
        Ok(SyncOutcome::Qualified { lead, opportunity })
    }

    /// A linked referral: read the record and converge; a record deleted in the CRM
    /// is created again through the upsert (and audited).
    async fn merge_linked(
        &self,
        id: &ReferralId,
        referral: Referral,
        link: SyncLink,
        linked: CrmRecordRef,
    ) -> Result<SyncOutcome, SyncError> {
        let em = self.entity(&linked.entity)?;
        let key = SyncKey::Referral(id.clone());
        let Some(record) = self.read_record(em, &linked.id).await? else {
            let line = audit::created_line(self.now(), Creation::Recreated(&linked.entity));
            let upserted = self.create_record(em, id, &referral, Some(&line)).await?;
            let record = record_ref(&upserted.record)?;
            let pair = Pair {
                referral,
                record: upserted.record,
            };
            let origin = Origin::Recreated {
                record: record.clone(),
            };
            let converged = self
                .converge(em, id, pair, FieldValues::new(), Some(origin))
                .await?;
            self.finish(&key, link, converged).await?;
            return Ok(SyncOutcome::Created { record });
        };
        let converged = self
            .converge(
                em,
                id,
                Pair { referral, record },
                base_of(Some(&link)),
                None,
            )
            .await?;
        let (crm_fields, pc_fields) = (
            converged.report.crm_writes.len(),
            converged.report.pc_writes.len(),
        );
        self.finish(&key, link, converged).await?;
        Ok(if crm_fields + pc_fields == 0 {
            SyncOutcome::InSync { record: linked }
        } else {
            SyncOutcome::Updated {
                record: linked,
                crm_fields,
                pc_fields,
            }
        })
    }

    /// Saves the link as the sync leaves it (record, base, eTag, modified times)
    /// with the sync's audit entries, in one transaction. A sync that changed
    /// nothing saves nothing.
    pub(crate) async fn finish(
        &self,
        key: &SyncKey,
        mut link: SyncLink,
        converged: Converged,
    ) -> Result<SyncLink, SyncError> {
        let Converged { pair, base, report } = converged;
        let before = link.clone();
        if pair.referral.id.is_some() {
            link.referral_id = pair.referral.id.clone();
        }
        if pair.referral.engagement_id.is_some() {
            link.engagement_id = pair.referral.engagement_id.clone();
        }
        if let Some(record) = pair.record.record_ref() {
            link.crm_record = Some(record);
        }
        link.base = snapshot_of(&base);
        link.referral_etag = pair.referral.e_tag.clone();
        link.referral_updated_at = pair.referral.updated_date_time;
        link.crm_modified_at = pair.record.modified_at.or(link.crm_modified_at);
        let subject = AuditSubject {
            key: key.clone(),
            referral_id: link.referral_id.clone(),
            crm_record: link.crm_record.clone(),
        };
        let entries = report.entries(self.now(), &subject);
        if entries.is_empty() && link == before && link.id.is_some() {
            return Ok(link);
        }
        self.save(&link, &entries).await
    }
}

/// A record's type and id; a created record without an id is the CRM's failure.
fn record_ref(record: &refsync_core::CrmRecord) -> Result<CrmRecordRef, SyncError> {
    record.record_ref().ok_or_else(|| {
        SyncError::Crm(refsync_crm::CrmError::Unavailable(
            "the CRM answered a write without the record's id".to_owned(),
        ))
    })
}
