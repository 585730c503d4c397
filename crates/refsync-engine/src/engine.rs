//! [`SyncEngine`]: everything one sync needs (store, Referrals API, CRM connector,
//! mapping, settings, clock) and [`SyncEngine::sync_key`], the one entry point the
//! workers call for a claimed key. The flows themselves live in `sync_referral`
//! (a referral key), `sync_crm_record` (a CRM record with no referral yet) and
//! `converge` (merge, write both sides, re-read on 412), over the thin I/O in
//! `read`, `write_crm` and `write_pc`.

use crate::clock::Clock;
use crate::customer_lock::CustomerLocks;
use crate::error::SyncError;
use crate::metrics as m;
use crate::outcome::SyncOutcome;
use crate::settings::EngineSettings;
use crate::workers::Wakeup;
use chrono::{DateTime, Utc};
use refsync_core::mapping::{EntityMapping, FieldValues};
use refsync_core::{CrmEntity, Mapping, MappingError, SyncKey};
use refsync_crm::CrmConnector;
use refsync_partner_center::ReferralsClient;
use refsync_store::{BaseSnapshot, Claim, NewAuditEntry, Store, SyncLink};
use std::fmt;
use std::sync::Arc;
use tracing::Instrument;

/// The sync engine: cheap to share (`Arc<SyncEngine>`), safe to call concurrently
/// for different keys (the queue's leases keep one key to one worker).
pub struct SyncEngine {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) referrals: ReferralsClient,
    pub(crate) crm: Arc<dyn CrmConnector>,
    pub(crate) mapping: Arc<Mapping>,
    pub(crate) settings: EngineSettings,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) wakeup: Wakeup,
    pub(crate) customer_locks: CustomerLocks,
    pub(crate) poll_seen: crate::poller::PollSeen,
}

impl fmt::Debug for SyncEngine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SyncEngine")
            .field("store", &self.store.backend())
            .field("crm", &self.crm.kind())
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl SyncEngine {
    /// Builds an engine. The mapping must declare `lead` and `opportunity` (the two
    /// record types a referral lives as); `account` and `contact` are optional (an
    /// opportunity is then created without its customer).
    pub fn new(
        store: Arc<dyn Store>,
        referrals: ReferralsClient,
        crm: Arc<dyn CrmConnector>,
        mapping: Arc<Mapping>,
        settings: EngineSettings,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, MappingError> {
        mapping.entity(&CrmEntity::Lead)?;
        mapping.entity(&CrmEntity::Opportunity)?;
        Ok(Self {
            store,
            referrals,
            crm,
            mapping,
            settings,
            clock,
            wakeup: Wakeup::default(),
            customer_locks: CustomerLocks::default(),
            poll_seen: crate::poller::PollSeen::default(),
        })
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The Referrals API client.
    pub fn referrals(&self) -> &ReferralsClient {
        &self.referrals
    }

    /// The CRM connector.
    pub fn crm(&self) -> &Arc<dyn CrmConnector> {
        &self.crm
    }

    /// The field mapping.
    pub fn mapping(&self) -> &Mapping {
        &self.mapping
    }

    /// The settings.
    pub fn settings(&self) -> &EngineSettings {
        &self.settings
    }

    /// What wakes the workers: poke it after enqueueing keys in-process (webhook
    /// intake, operator commands) so they are worked at once rather than at the next poll.
    pub fn wakeup(&self) -> &Wakeup {
        &self.wakeup
    }

    /// The engine's clock.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Syncs one claimed key: reads the current state of both sides and merges it
    /// against the base (never replays events). Returns what was done; an error says
    /// whether retrying can help ([`SyncError::is_transient`]).
    pub async fn sync_key(&self, claim: &Claim) -> Result<SyncOutcome, SyncError> {
        let span = tracing::info_span!(
            "sync",
            key = %claim.key,
            referral_id = tracing::field::Empty,
            attempt = claim.attempts + 1,
        );
        if let SyncKey::Referral(id) = &claim.key {
            span.record("referral_id", tracing::field::display(id));
        }
        async {
            let result = match &claim.key {
                SyncKey::Referral(id) => self.sync_referral(id, &claim.triggers).await,
                SyncKey::Crm(record) => self.sync_crm_record(record).await,
            };
            match &result {
                Ok(outcome) => {
                    m::sync_succeeded(outcome);
                    tracing::info!(outcome = %outcome, "synced");
                }
                Err(e) => {
                    m::sync_failed(e);
                    tracing::warn!(error = %e, transient = e.is_transient(), "sync failed");
                }
            }
            result
        }
        .instrument(span)
        .await
    }

    /// The mapping of one record type.
    pub(crate) fn entity(&self, entity: &CrmEntity) -> Result<&EntityMapping, SyncError> {
        Ok(self.mapping.entity(entity)?)
    }

    /// Saves a link with its audit entries in one transaction.
    pub(crate) async fn save(
        &self,
        link: &SyncLink,
        audit: &[NewAuditEntry],
    ) -> Result<SyncLink, SyncError> {
        Ok(self
            .store
            .save_link_with_audit(link, audit, self.now())
            .await?)
    }
}

/// A stored base snapshot as the merge reads it.
pub(crate) fn base_of(link: Option<&SyncLink>) -> FieldValues {
    link.map(|l| l.base.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default()
}

/// A merge's base as the store keeps it.
pub(crate) fn snapshot_of(base: &FieldValues) -> BaseSnapshot {
    base.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}
