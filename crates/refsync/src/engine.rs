//! Builds the sync engine from the configuration — the Referrals client signed in
//! as configured, the CRM connector for `[crm] kind`, the field mapping — and
//! turns `[sync]`, `[reconciler]` and `[poller]` into the engine's settings.

use crate::config::{Config, CrmKind};
use crate::signin::{partner_center_entra, referrals_token_source};
use anyhow::Context;
use refsync_core::Mapping;
use refsync_crm::CrmConnector;
use refsync_crm::dataverse::DataverseConnector;
use refsync_crm::salesforce::SalesforceConnector;
use refsync_engine::{
    EngineSettings, PollerSettings, ReconcilerSettings, SyncEngine, SystemClock, WorkerSettings,
};
use refsync_outbound::TokenCache;
use refsync_outbound::token::CachedTokenSource;
use refsync_partner_center::referrals::ReferralsClient;
use refsync_store::Store;
use std::sync::Arc;
use url::Url;

/// The engine and what the service shows about it.
#[derive(Debug)]
pub struct BuiltEngine {
    /// The engine.
    pub engine: Arc<SyncEngine>,
    /// App+User tokens for the Referrals API (their health is shown at `/readyz`).
    pub referrals_tokens: Arc<CachedTokenSource>,
}

/// Builds the engine, or `None` when no `[crm] kind` is configured.
pub fn build_engine(config: &Config, store: Arc<dyn Store>) -> anyhow::Result<Option<BuiltEngine>> {
    let Some(kind) = config.crm.kind else {
        return Ok(None);
    };
    let entra = partner_center_entra(config)?;
    let referrals_tokens = referrals_token_source(config, &entra, Arc::clone(&store))?;
    let api_url = Url::parse(&config.partner_center.api_url).context("partner_center.api_url")?;
    let referrals = ReferralsClient::connect(api_url, referrals_tokens.clone())
        .context("building the Referrals API client")?;
    let crm = crm_connector(config, kind)?;
    let mapping = load_mapping(config, kind)?;
    let engine = SyncEngine::new(
        store,
        referrals,
        crm,
        Arc::new(mapping),
        engine_settings(config),
        Arc::new(SystemClock),
    )
    .context("the field mapping cannot drive a sync")?;
    Ok(Some(BuiltEngine {
        engine: Arc::new(engine),
        referrals_tokens,
    }))
}

/// The connector for `kind`, from `[crm.dynamics]` or `[crm.salesforce]`.
pub fn crm_connector(config: &Config, kind: CrmKind) -> anyhow::Result<Arc<dyn CrmConnector>> {
    let tokens = TokenCache::new();
    Ok(match kind {
        CrmKind::Dynamics => Arc::new(
            DataverseConnector::new(config.crm.dynamics.clone(), &tokens)
                .context("[crm.dynamics]")?,
        ),
        CrmKind::Salesforce => Arc::new(
            SalesforceConnector::new(config.crm.salesforce.clone(), &tokens)
                .context("[crm.salesforce]")?,
        ),
    })
}

/// `crm.mapping` if set, else the built-in mapping for `kind`.
pub fn load_mapping(config: &Config, kind: CrmKind) -> anyhow::Result<Mapping> {
    match &config.crm.mapping {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading crm.mapping {}", path.display()))?;
            Mapping::from_toml(&text).with_context(|| format!("in {}", path.display()))
        }
        None => Ok(match kind {
            CrmKind::Dynamics => Mapping::dynamics(),
            CrmKind::Salesforce => Mapping::salesforce(),
        }?),
    }
}

/// `[sync]` → how one sync behaves.
pub fn engine_settings(config: &Config) -> EngineSettings {
    EngineSettings {
        checkmark_suffix: config.sync.checkmark_suffix,
        audit_column: config.sync.audit_column,
        own_organization_id: config.partner_center.organization_id.clone(),
        ..EngineSettings::default()
    }
}

/// `[sync]` → how the workers claim and retry.
pub fn worker_settings(config: &Config) -> WorkerSettings {
    let host = hostname();
    WorkerSettings {
        owner: format!("{host}:{}", std::process::id()),
        concurrency: config.sync.workers,
        lease: config.sync.lease,
        poll_interval: config.sync.poll_interval,
        max_attempts: config.sync.max_attempts,
        retry_initial: config.sync.retry_initial,
        retry_max: config.sync.retry_max,
        shutdown_grace: config.sync.shutdown_grace,
    }
}

/// `[reconciler]`.
pub fn reconciler_settings(config: &Config) -> ReconcilerSettings {
    ReconcilerSettings {
        interval: config.reconciler.interval,
        overlap: config.reconciler.overlap,
    }
}

/// `[poller]`.
pub fn poller_settings(config: &Config) -> PollerSettings {
    PollerSettings {
        interval: config.poller.interval,
        overlap: config.poller.overlap,
        ..PollerSettings::default()
    }
}

/// The lease owner's host part: who holds a key, for operators reading the queue.
fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "refsync".to_owned())
}
