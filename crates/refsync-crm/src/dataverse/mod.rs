//! The Dataverse (Dynamics 365 Sales) connector: [`CrmConnector`] over the Web API
//! (crm.md §1), with the connector semantics of crm.md §3.
//!
//! - `settings`: [`DataverseSettings`], the `[crm.dynamics]` config section.
//! - `web`: the session (Entra client-credentials token, pacing under the service
//!   protection limits, the standard OData headers, bounded `@odata.nextLink` paging).
//! - `records`: canonical field values ↔ Dataverse JSON, lookups and relationships as
//!   `@odata.bind`; `lookups`: lookup key values (`USD`) ↔ ids, cached.
//! - `odata`: literals, key addresses and filters with escaping.
//! - `errors`: `{"error":{"code","message"}}` → [`CrmError`].
//! - `tracking`: reading changes with change tracking and delta links (§1.9).
//! - `reads`, `writes`, `states`: the trait's methods; `states` holds what state changes
//!   need (closing opportunities through actions, reopening, retiring a lead).
//!
//! Calls per method (each counts against the per-user limits, crm.md §1.12), once a
//! lookup value has been seen (a first sight of a currency costs one more `GET`):
//!
//! | method | calls | how |
//! |---|---|---|
//! | `get`, `get_by_referral`, `find_by_columns` | 1 | `GET` with `$select` |
//! | `upsert_by_referral`, `create` | 1 | `PATCH` to the alternate key / `POST`, `Prefer: return=representation` |
//! | `update` | 1 | `PATCH` + `If-Match: *`, `Prefer: return=representation` |
//! | `update` changing state | 2 | `GET` of the current state, then the `PATCH` (3 if a closed record must be reopened first) |
//! | `update` to Won/Lost with actions | 3–5 | `GET`, [`PATCH` of other columns], [reopen], `WinOpportunity`/`LoseOpportunity`, `GET` |
//! | `retire_lead` | 1 | `PATCH` of statecode/statuscode + `qualifyingopportunityid` |
//! | `upsert_with_customer` | 1–5 | the trait's default: match/create account, contact, then the upsert |
//! | `modified_since` | 1 per page | `$filter=modifiedon gt …`, `$orderby=modifiedon asc`, `odata.maxpagesize` |
//! | `tracked_changes` | 1 per page | `Prefer: odata.track-changes`, then the `@odata.deltaLink` (`tracking`) |

mod errors;
mod lookups;
mod odata;
mod reads;
mod records;
mod settings;
mod states;
mod tracking;
mod web;
mod writes;

pub use settings::{ApiVersion, DataverseSettings, RetrySettings, SetupError};

use crate::connector::{CrmConnector, CrmError, CrmKind, RecordWrite, UpsertOutcome};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use lookups::LookupCache;
use refsync_core::crm_record::CrmRecord;
use refsync_core::ids::{CrmRecordId, Etag, ReferralId};
use refsync_core::mapping::EntityMapping;
use refsync_outbound::call::{ApiClient, ApiConfig, Pacing, RetryPolicy, http_client};
use refsync_outbound::entra::{Audience, Entra, EntraApp, Tenant};
use refsync_outbound::token::{TokenCache, TokenSource};
use serde_json::Value;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;
use web::Web;

/// The Dataverse connector. Cheap to share behind an `Arc`; safe to call concurrently
/// (all callers share one pacer and one concurrency cap).
#[derive(Debug)]
pub struct DataverseConnector {
    web: Web,
    lookups: LookupCache,
    page_size: usize,
    close_with_actions: bool,
    change_tracking: bool,
    untracked: tracking::Untracked,
}

/// The pacing for `rate` requests per second after a burst of `burst`: 20/s is one
/// request every 50 ms once the burst is spent. Counted per 1000 s so fractional
/// rates keep their precision.
fn pacing(rate: f64, burst: u32) -> Pacing {
    let per_kilosecond = (rate * 1000.0).round().clamp(1.0, f64::from(u32::MAX)) as u32;
    Pacing::new(
        NonZeroU32::new(per_kilosecond).unwrap_or(NonZeroU32::MIN),
        Duration::from_secs(1000),
    )
    .with_burst(NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN))
}

impl DataverseConnector {
    /// Builds the connector: checks the settings and registers the client-credentials
    /// grant for `<url>/.default` with `tokens` (the process's token cache, which
    /// fetches one token at a time per key). Nothing is sent until the first call.
    pub fn new(settings: DataverseSettings, tokens: &TokenCache) -> Result<Self, SetupError> {
        settings.validate()?;
        let root = settings.api_root()?;
        let tenant = Tenant::parse(settings.tenant.clone())
            .map_err(|e| SetupError::Invalid(format!("tenant: {e}")))?;
        let app = EntraApp::new(
            settings.authority()?,
            tenant,
            settings.client_id.trim(),
            settings.client_secret.clone(),
        );
        let entra = Entra::new(app, tokens.clone()).map_err(|e| SetupError::Http(e.to_string()))?;
        let source: Arc<dyn TokenSource> =
            entra.client_credentials(Audience::v2(settings.audience()));
        let retry = RetryPolicy {
            max_attempts: settings.retry.max_attempts,
            min_backoff: settings.retry.min_backoff,
            max_backoff: settings.retry.max_backoff.max(settings.retry.min_backoff),
            max_retry_after: settings.retry.max_retry_after,
            max_elapsed: settings.retry.max_elapsed,
            jitter: true,
        };
        let config = ApiConfig::new("dataverse", root)
            .with_timeout(settings.request_timeout)
            .with_retry(retry)
            .with_pacing(pacing(settings.requests_per_second, settings.burst))
            .with_max_concurrency(settings.max_concurrent_requests)
            .with_correlation_header(None);
        let http = http_client().map_err(|e| SetupError::Http(e.without_url().to_string()))?;
        let client = ApiClient::with_http_client(http, config, Some(source))
            .map_err(|e| SetupError::Http(e.to_string()))?;
        Ok(Self {
            web: Web::new(
                client,
                settings.retry.max_attempts,
                settings.retry.max_retry_after,
            ),
            lookups: LookupCache::default(),
            page_size: settings.page_size,
            close_with_actions: settings.close_opportunities_with_actions,
            change_tracking: settings.change_tracking,
            untracked: tracking::Untracked::default(),
        })
    }

    /// Updates columns only while the record is still at `etag` (its `@odata.etag`
    /// as last read), for writes that must not overwrite a change made since
    /// (crm.md §1.6). A stale tag is [`CrmError::PreconditionFailed`]: re-read and merge
    /// again. State columns are written as given (no close actions here).
    pub async fn update_if_unchanged(
        &self,
        entity: &EntityMapping,
        id: &CrmRecordId,
        etag: &Etag,
        write: &RecordWrite,
    ) -> Result<CrmRecord, CrmError> {
        self.patch_if(entity, id, write, Some(etag)).await
    }
}

#[async_trait]
impl CrmConnector for DataverseConnector {
    fn kind(&self) -> CrmKind {
        CrmKind::Dynamics
    }

    async fn get(
        &self,
        entity: &EntityMapping,
        id: &CrmRecordId,
    ) -> Result<Option<CrmRecord>, CrmError> {
        self.read_by_id(entity, id).await
    }

    async fn get_by_referral(
        &self,
        entity: &EntityMapping,
        referral: &ReferralId,
    ) -> Result<Option<CrmRecord>, CrmError> {
        self.read_by_referral(entity, referral).await
    }

    async fn upsert_by_referral(
        &self,
        entity: &EntityMapping,
        referral: &ReferralId,
        write: &RecordWrite,
    ) -> Result<UpsertOutcome, CrmError> {
        self.upsert_by_key(entity, referral, write).await
    }

    async fn update(
        &self,
        entity: &EntityMapping,
        id: &CrmRecordId,
        write: &RecordWrite,
    ) -> Result<CrmRecord, CrmError> {
        self.update_with_state(entity, id, write).await
    }

    async fn retire_lead(
        &self,
        lead: &EntityMapping,
        id: &CrmRecordId,
        opportunity: &CrmRecordId,
    ) -> Result<(), CrmError> {
        self.qualify_lead_by_patch(lead, id, opportunity).await
    }

    async fn find_by_columns(
        &self,
        entity: &EntityMapping,
        criteria: &[(&str, &Value)],
        limit: usize,
    ) -> Result<Vec<CrmRecord>, CrmError> {
        self.find_matching(entity, criteria, limit).await
    }

    async fn create(
        &self,
        entity: &EntityMapping,
        write: &RecordWrite,
    ) -> Result<CrmRecord, CrmError> {
        self.insert(entity, write).await
    }

    async fn modified_since(
        &self,
        entity: &EntityMapping,
        since: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<CrmRecord>, CrmError> {
        self.changed_since(entity, since, limit).await
    }

    async fn tracked_changes(
        &self,
        entity: &EntityMapping,
        cursor: Option<&str>,
    ) -> Result<Option<crate::connector::TrackedChanges>, CrmError> {
        self.tracked(entity, cursor).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pacing_spreads_the_rate_evenly_after_the_burst() {
        assert_eq!(pacing(20.0, 1).interval(), Duration::from_millis(50));
        assert_eq!(pacing(0.5, 1).interval(), Duration::from_secs(2));
        assert_eq!(pacing(5000.0, 1).interval(), Duration::from_micros(200));
        assert_eq!(pacing(19.0, 300).burst.get(), 300);
        assert_eq!(pacing(19.0, 0).burst.get(), 1);
    }
}
