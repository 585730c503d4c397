//! The CRM side of the demo: the Dataverse or Salesforce emulator, the
//! `[crm.*]` settings that point the real connector at it, and the seller's
//! hand in its UI (an edit that does not go through refsync).

use crate::config::{CrmConfig, CrmKind};
use anyhow::{Context, anyhow};
use refsync_core::CrmRecordRef;
use refsync_crm::dataverse::DataverseSettings;
use refsync_crm::salesforce::SalesforceSettings;
use refsync_emulators::dataverse::{DataverseConfig, DataverseEmulator};
use refsync_emulators::entra::{
    DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_TENANT_ID, EntraAuthority,
};
use refsync_emulators::salesforce::config::MultiCurrency;
use refsync_emulators::salesforce::config::{DEMO_CONSUMER_KEY, DEMO_CONSUMER_SECRET};
use refsync_emulators::salesforce::{Clock, SalesforceConfig, SalesforceEmulator};
use refsync_emulators::server::EmulatorHandle;
use secrecy::SecretString;
use serde_json::Value;
use tokio::net::TcpListener;

/// A running CRM emulator.
pub enum DemoCrm {
    /// Dynamics 365, sharing the Partner Center emulator's Entra tenant.
    Dynamics(DataverseEmulator),
    /// Salesforce, with multi-currency on (the mapping writes `CurrencyIsoCode`).
    Salesforce {
        /// The org.
        emulator: SalesforceEmulator,
        /// Its listener.
        handle: EmulatorHandle,
    },
}

impl DemoCrm {
    /// Starts the emulator for `kind` on `listener`; `lift_limits` switches off
    /// Dataverse's service protection and raises Salesforce's daily allocation.
    pub async fn start(
        kind: CrmKind,
        listener: TcpListener,
        authority: &EntraAuthority,
        lift_limits: bool,
    ) -> anyhow::Result<Self> {
        Ok(match kind {
            CrmKind::Dynamics => {
                let mut config = DataverseConfig::default();
                if lift_limits {
                    config.limits.enabled = false;
                }
                DemoCrm::Dynamics(
                    DataverseEmulator::start_with_authority(config, listener, authority.clone())
                        .context("starting the Dataverse emulator")?,
                )
            }
            CrmKind::Salesforce => {
                // The org has every currency Microsoft's generated customers use
                // enabled, as an admin would (an unknown one is a rejected write).
                let mut currencies = MultiCurrency::default();
                for code in ["BRL", "INR"] {
                    currencies.active.push(code.to_owned());
                }
                let mut config = SalesforceConfig {
                    multi_currency: Some(currencies),
                    ..SalesforceConfig::default()
                };
                if lift_limits {
                    config.limits.daily_api_requests = u64::MAX / 2;
                }
                let emulator = SalesforceEmulator::new(config, Clock::System)
                    .context("starting the Salesforce emulator")?;
                let handle = emulator.serve(listener).context("serving Salesforce")?;
                DemoCrm::Salesforce { emulator, handle }
            }
        })
    }

    /// Where it listens.
    pub fn base_url(&self) -> String {
        match self {
            DemoCrm::Dynamics(e) => e.base_url().as_str(),
            DemoCrm::Salesforce { handle, .. } => handle.base_url().as_str(),
        }
        .trim_end_matches('/')
        .to_owned()
    }

    /// `[crm]` pointing the real connector at this emulator. `authority_url` is the
    /// Entra the Dataverse emulator trusts (the Partner Center emulator's).
    pub fn crm_config(&self, authority_url: &str) -> CrmConfig {
        match self {
            DemoCrm::Dynamics(e) => CrmConfig {
                kind: Some(CrmKind::Dynamics),
                dynamics: DataverseSettings {
                    url: self.base_url(),
                    resource: Some(e.org_url().to_owned()),
                    authority_url: authority_url.to_owned(),
                    tenant: DEMO_TENANT_ID.to_string(),
                    client_id: DEMO_CLIENT_ID.to_string(),
                    client_secret: Some(SecretString::from(DEMO_CLIENT_SECRET)),
                    ..DataverseSettings::default()
                },
                ..CrmConfig::default()
            },
            DemoCrm::Salesforce { .. } => CrmConfig {
                kind: Some(CrmKind::Salesforce),
                salesforce: SalesforceSettings {
                    login_url: self.base_url(),
                    client_id: DEMO_CONSUMER_KEY.to_owned(),
                    client_secret: Some(SecretString::from(DEMO_CONSUMER_SECRET)),
                    ..SalesforceSettings::default()
                },
                ..CrmConfig::default()
            },
        }
    }

    /// A seller edits `record` in the CRM's UI (`collection` is the entity set or
    /// object name from the mapping).
    pub fn edit_as_seller(
        &self,
        collection: &str,
        record: &CrmRecordRef,
        changes: &Value,
    ) -> anyhow::Result<()> {
        match self {
            DemoCrm::Dynamics(e) => {
                let id = uuid::Uuid::parse_str(record.id.as_str())
                    .map_err(|_| anyhow!("{} is not a Dataverse id", record.id))?;
                e.dataverse()
                    .edit_as_user(collection, id, changes)
                    .map_err(|e| anyhow!("editing {collection} {}: {e}", record.id))?;
            }
            DemoCrm::Salesforce { emulator, .. } => {
                emulator
                    .update_as(None, collection, record.id.as_str(), changes)
                    .map_err(|e| anyhow!("editing {collection} {}: {e:?}", record.id))?;
            }
        }
        Ok(())
    }

    /// API calls the CRM has served so far.
    pub fn api_calls(&self) -> u64 {
        match self {
            DemoCrm::Dynamics(e) => e.dataverse().usage().requests_served,
            DemoCrm::Salesforce { emulator, .. } => emulator.api_usage().0,
        }
    }

    /// Stops the emulator.
    pub async fn shutdown(self) {
        let _ = match self {
            DemoCrm::Dynamics(e) => e.shutdown().await,
            DemoCrm::Salesforce { handle, .. } => handle.shutdown().await,
        };
    }
}
