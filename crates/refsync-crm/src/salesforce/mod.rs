//! The Salesforce connector: [`CrmConnector`] over the REST API (crm.md §2), with the
//! connector semantics of crm.md §3 and partner-center.md §4.
//!
//! - `settings`: [`SalesforceSettings`], the `[crm.salesforce]` config section.
//! - `auth`: the client-credentials and JWT-bearer grants as a token fetcher for
//!   refsync-outbound's token cache; the token response names the instance URL.
//! - `rest`: the REST session (paced, retrying, `Sforce-Limit-Info` on every answer),
//!   SOQL paging and `/composite`.
//! - `limits`: usage tracking, the slow-down past a threshold, gauges.
//! - `records`: canonical field values ↔ Salesforce record JSON, relationships.
//! - `soql`: queries with escaped literals; `composite`: `/composite` bodies and answers.
//! - `errors`: Salesforce error arrays → [`CrmError`].
//! - `reads`, `writes`, `customer`: the trait's methods.
//!
//! API calls per method (each counts one against the daily allocation):
//!
//! | method | calls | how |
//! |---|---|---|
//! | `get`, `get_by_referral`, `find_by_columns` | 1 | `GET /sobjects/…?fields=`, SOQL |
//! | `upsert_by_referral`, `update`, `create` | 1 | `/composite`: the write, then a `GET` of the result |
//! | `retire_lead` | 1 | `PATCH` of `Status` |
//! | `upsert_with_customer` | 1 if the account (and contact) exist, 2 if not | see `customer` |
//! | `modified_since` | 1 per page | SOQL on `SystemModstamp` |
//!
//! A write is followed by a read in the same composite because the engine needs the
//! record as stored (its `SystemModstamp`, and what Salesforce derived, such as
//! `Probability` from `StageName`), and the upsert answer gives only the id: a separate
//! `GET` would double the calls. A body holding `@{` (which `/composite` reads as a
//! reference) is written on its own and read back with a second call.

mod auth;
mod composite;
mod customer;
mod errors;
mod limits;
mod reads;
mod records;
mod rest;
mod settings;
mod soql;
mod writes;

pub use limits::{ALLOCATION_GAUGE, SLOWED_GAUGE, USAGE_GAUGE};
pub use settings::{ApiVersion, RetrySettings, SalesforceSettings, SetupError};

use crate::connector::{
    ApiUsage, CrmConnector, CrmError, CrmKind, Customer, CustomerUpsert, RecordWrite, UpsertOutcome,
};
use async_trait::async_trait;
use auth::{Credentials, InstanceUrl, SalesforceGrant};
use chrono::{DateTime, Utc};
use refsync_core::crm_record::CrmRecord;
use refsync_core::ids::{CrmRecordId, ReferralId};
use refsync_core::mapping::EntityMapping;
use refsync_outbound::call::{ApiClient, ApiConfig, RetryPolicy, http_client};
use refsync_outbound::token::{TokenCache, TokenKey};
use rest::{Rest, RestOptions};
use serde_json::Value;
use settings::Grant;
use std::sync::Arc;

/// The Salesforce connector. Cheap to share behind an `Arc`; safe to call concurrently.
#[derive(Debug)]
pub struct SalesforceConnector {
    rest: Rest,
    lead_closed_status: String,
}

impl SalesforceConnector {
    /// Builds the connector: checks the settings, reads the JWT key if that grant is
    /// configured, and registers the grant with `tokens` (the process's token cache).
    /// Nothing is sent until the first call.
    pub fn new(settings: SalesforceSettings, tokens: &TokenCache) -> Result<Self, SetupError> {
        let grant = settings.validate()?;
        let login = settings.login_url()?;
        let http = http_client().map_err(|e| SetupError::Http(e.without_url().to_string()))?;
        let retry = RetryPolicy {
            max_attempts: settings.retry.max_attempts,
            min_backoff: settings.retry.min_backoff,
            max_backoff: settings.retry.max_backoff.max(settings.retry.min_backoff),
            ..RetryPolicy::default()
        };
        let endpoint = ApiClient::with_http_client(
            http.clone(),
            ApiConfig::new("salesforce-login", login.clone())
                .with_timeout(settings.request_timeout)
                .with_retry(retry.clone())
                .with_correlation_header(None),
            None,
        )
        .map_err(|e| SetupError::Http(e.to_string()))?;
        let (credentials, label) = match grant {
            Grant::ClientCredentials => (
                Credentials::ClientSecret {
                    client_id: settings.client_id.clone(),
                    secret: settings
                        .client_secret
                        .clone()
                        .ok_or_else(|| SetupError::Invalid("client_secret is missing".into()))?,
                },
                "salesforce".to_owned(),
            ),
            Grant::JwtBearer { username, key_file } => {
                let key =
                    auth::read_private_key(&key_file).map_err(|reason| SetupError::PrivateKey {
                        path: key_file.clone(),
                        reason,
                    })?;
                let audience = settings
                    .jwt_audience
                    .clone()
                    .unwrap_or_else(|| settings.login_url.trim().trim_end_matches('/').to_owned());
                let label = format!("salesforce as {username}");
                (
                    Credentials::JwtBearer {
                        client_id: settings.client_id.clone(),
                        username,
                        audience,
                        key,
                    },
                    label,
                )
            }
        };
        let instance = InstanceUrl::default();
        let fetcher = Arc::new(SalesforceGrant::new(
            endpoint,
            credentials,
            settings.session_lifetime,
            label.clone(),
            instance.clone(),
        ));
        let key = TokenKey {
            authority: settings.login_url.trim().trim_end_matches('/').to_owned(),
            tenant: login.host_str().unwrap_or_default().to_owned(),
            client_id: settings.client_id.clone(),
            audience: label,
        };
        let source = tokens.source(key, fetcher);
        let rest = Rest::new(
            http,
            source,
            instance,
            RestOptions {
                version: settings.api_version.path_segment(),
                timeout: settings.request_timeout,
                retry,
                rates: (
                    settings.requests_per_second,
                    settings.slowed_requests_per_second,
                ),
                burst: settings.burst,
                threshold: settings.usage_slowdown_threshold,
            },
        );
        Ok(Self {
            rest,
            lead_closed_status: settings.lead_closed_status,
        })
    }

    /// True while API usage is past the slow-down threshold and requests go at the
    /// slowed rate.
    pub fn slowed_down(&self) -> bool {
        self.rest.slowed_down()
    }
}

#[async_trait]
impl CrmConnector for SalesforceConnector {
    fn kind(&self) -> CrmKind {
        CrmKind::Salesforce
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
        self.upsert_by_external_id(entity, referral, write).await
    }

    async fn update(
        &self,
        entity: &EntityMapping,
        id: &CrmRecordId,
        write: &RecordWrite,
    ) -> Result<CrmRecord, CrmError> {
        self.update_by_id(entity, id, write).await
    }

    async fn retire_lead(
        &self,
        lead: &EntityMapping,
        id: &CrmRecordId,
        opportunity: &CrmRecordId,
    ) -> Result<(), CrmError> {
        self.close_lead(lead, id, opportunity).await
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

    async fn upsert_with_customer(
        &self,
        entity: &EntityMapping,
        referral: &ReferralId,
        write: &RecordWrite,
        customer: Customer<'_>,
    ) -> Result<CustomerUpsert, CrmError> {
        self.upsert_with_customer_composite(entity, referral, write, customer)
            .await
    }

    async fn modified_since(
        &self,
        entity: &EntityMapping,
        since: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<CrmRecord>, CrmError> {
        self.changed_since(entity, since, limit).await
    }

    fn usage(&self) -> Option<ApiUsage> {
        self.rest.usage()
    }
}
