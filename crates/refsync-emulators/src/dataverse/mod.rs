//! A local Dataverse (Dynamics 365 Sales) environment speaking the Web API the way
//! the real one does (crm.md §1, §4), for refsync's end-to-end tests and benchmarks,
//! `refsync demo`, and users trying a configuration (`refsync emulate dataverse`).
//!
//! What it serves, under `/api/data/v9.0`…`v9.2` with an Entra bearer token for the
//! environment URL (scope `https://contoso.crm.dynamics.com/.default`):
//!
//! - `leads`, `opportunities`, `accounts`, `contacts`, `transactioncurrencies`
//!   (USD, EUR, GBP, … seeded), and read-only `systemusers` and `opportunitycloses`:
//!   create (204 + `OData-EntityId`, or 201 with `Prefer: return=representation`),
//!   read, update and upsert (by primary or alternate key, with `If-Match`/`If-None-Match`),
//!   delete, single-column PUT/DELETE (rules in `write.rs`).
//! - Column types, lengths, ranges and required columns; statecode/statuscode tables
//!   with closed leads and opportunities read-only until reactivated ([`schema`], `tables.rs`).
//! - Queries with `$select`/`$filter`/`$orderby`/`$top`/`$count`, keyset paging with
//!   `Prefer: odata.maxpagesize` and a `$skiptoken` cookie, change tracking (`query.rs`).
//! - `QualifyLead`, `WinOpportunity`, `LoseOpportunity` and `WhoAmI` (`actions.rs`).
//! - Service-protection limits per user, for real ([`protection`]), and the shared
//!   fault injection at `/_emulator/faults` in Dataverse's error shape.
//! - The control API at `/_emulator/dataverse/…` (`control.rs`): records without auth
//!   or limits, edits "as a user", usage counters, limits, the clock.
//!
//! Custom columns (the co-sell connector's `msft_*` by default) and alternate keys
//! come from [`DataverseConfig`]. State is in memory behind one lock; handlers take
//! it, do their work synchronously and release it, so every write is atomic.

mod actions;
mod annotations;
mod api;
pub mod clock;
pub mod config;
mod control;
mod cosell;
mod customization;
pub mod error;
mod expand;
mod guard;
mod keys;
mod paging;
mod prefer;
pub mod protection;
mod query;
pub mod schema;
mod state;
mod store;
mod tables;
mod tracking;
mod values;
mod write;

pub use clock::Clock;
pub use config::{
    AlternateKeyConfig, ChoiceOption, CosellColumns, CurrencyConfig, CustomColumn,
    CustomColumnKind, DataverseConfig, HumanUser, OpportunityClose, ServiceProtectionLimits,
    cosell_columns,
};
pub use error::DvError;
pub use protection::{Measure, UserUsage};

use crate::entra::{EntraAuthority, EntraError, TokenClaims};
use crate::faults::{FaultInjector, responders};
use crate::server::{EmulatorHandle, ServeError, serve};
use axum::Router;
use chrono::{DateTime, Utc};
use protection::Protection;
use schema::{Schema, SchemaError, Table};
use serde::Serialize;
use serde_json::{Map, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use store::{Row, Store};
use tokio::net::TcpListener;
use url::Url;
use uuid::Uuid;

/// Why an emulator could not be set up or started.
#[derive(Debug, thiserror::Error)]
pub enum DataverseError {
    /// Custom columns or keys are unusable.
    #[error(transparent)]
    Schema(#[from] SchemaError),
    /// A configuration value is out of range.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The emulator's own Entra tenant could not be created.
    #[error("entra: {0}")]
    Entra(#[from] EntraError),
    /// The listener could not be served.
    #[error(transparent)]
    Serve(#[from] ServeError),
}

/// Request and response counts, as the control API reports them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DataverseUsage {
    /// Web API requests admitted (authenticated, within the limits).
    pub requests_served: u64,
    /// Requests refused for a missing or bad token.
    pub unauthorized: u64,
    /// 429s sent by service protection, per limit.
    pub throttled: BTreeMap<Measure, u64>,
    /// Every Web API response by status (injected faults included).
    pub responses: BTreeMap<u16, u64>,
    /// Each user's use of the limits.
    pub users: Vec<UserUsage>,
    /// The limits in force.
    pub limits: ServiceProtectionLimits,
}

#[derive(Debug, Default)]
struct Counters {
    served: u64,
    unauthorized: u64,
    responses: BTreeMap<u16, u64>,
}

/// The fixed id of the `SYSTEM` user (owner of seeded records).
pub const SYSTEM_USER_ID: Uuid = Uuid::from_u128(0x0c2d_6b80_34f4_4c9a_9e77_3b2a_1c0d_9e8f);

struct Inner {
    config: DataverseConfig,
    schema: Schema,
    store: Mutex<Store>,
    users: Mutex<HashMap<String, Uuid>>,
    counters: Mutex<Counters>,
    clock: Clock,
    protection: Protection,
    faults: FaultInjector,
    authority: EntraAuthority,
}

/// One emulated environment: its data, limits and routes (cheap to clone; clones share state).
#[derive(Clone)]
pub struct Dataverse {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Dataverse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dataverse")
            .field("org_url", &self.inner.config.org_url)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A poisoned lock only follows a panic mid-request; the data stays usable.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A stable systemuser id for a token's object id (the same user on every run).
fn user_id_for(oid: &str) -> Uuid {
    let digest = aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        format!("dataverse-systemuser:{oid}").as_bytes(),
    );
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest.as_ref()[..16]);
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}

fn validate(config: &DataverseConfig) -> Result<(), DataverseError> {
    let bad = |m: &str| Err(DataverseError::Config(m.to_owned()));
    if Url::parse(&config.org_url).is_err() {
        return bad("org_url is not a URL");
    }
    if let Some(base) = &config.public_base_url
        && Url::parse(base).is_err()
    {
        return bad("public_base_url is not a URL");
    }
    if config.api_versions.is_empty() {
        return bad("api_versions is empty");
    }
    if config.default_page_size == 0 || config.max_page_size == 0 {
        return bad("page sizes must be at least 1");
    }
    if config.default_page_size > config.max_page_size {
        return bad("default_page_size is larger than max_page_size");
    }
    if config.currencies.is_empty() {
        return bad("at least one currency (the base currency) is needed");
    }
    if config.limits.window.is_zero() {
        return bad("limits.window must be longer than zero");
    }
    Ok(())
}

impl Dataverse {
    /// An environment validating tokens with `authority`, seeded with the configured
    /// currencies, the `SYSTEM` user and the human user.
    pub fn new(config: DataverseConfig, authority: EntraAuthority) -> Result<Self, DataverseError> {
        validate(&config)?;
        let schema = Schema::from_config(&config)?;
        let clock = Clock::default();
        let protection = Protection::new(config.limits.clone(), clock.clone());
        let dataverse = Self {
            inner: Arc::new(Inner {
                store: Mutex::new(Store::new(1_000_000)),
                users: Mutex::new(HashMap::new()),
                counters: Mutex::new(Counters::default()),
                faults: FaultInjector::new(responders::dataverse()),
                schema,
                clock,
                protection,
                authority,
                config,
            }),
        };
        dataverse.seed();
        Ok(dataverse)
    }

    fn seed(&self) {
        let now = self.now();
        let mut store = self.store();
        let human = &self.inner.config.human_user;
        put_system_user(
            &self.inner.schema,
            &mut store,
            SYSTEM_USER_ID,
            "SYSTEM",
            None,
            None,
            now,
        );
        put_system_user(
            &self.inner.schema,
            &mut store,
            human.id,
            &human.full_name,
            Some(&human.email),
            None,
            now,
        );
        let Some(table) = self.inner.schema.by_logical_name("transactioncurrency") else {
            return;
        };
        for currency in &self.inner.config.currencies {
            let mut attrs = Map::new();
            attrs.insert(
                "transactioncurrencyid".to_owned(),
                json!(currency.id.to_string()),
            );
            attrs.insert("currencyname".to_owned(), json!(currency.name));
            attrs.insert("isocurrencycode".to_owned(), json!(currency.iso_code));
            attrs.insert("currencysymbol".to_owned(), json!(currency.symbol));
            attrs.insert("exchangerate".to_owned(), json!(currency.exchange_rate));
            attrs.insert("currencyprecision".to_owned(), json!(2));
            attrs.insert("statecode".to_owned(), json!(0));
            attrs.insert("statuscode".to_owned(), json!(1));
            attrs.insert(
                "createdon".to_owned(),
                json!(values::format_timestamp(&now)),
            );
            attrs.insert(
                "modifiedon".to_owned(),
                json!(values::format_timestamp(&now)),
            );
            let version = store.next_version();
            store.put(
                table,
                Row {
                    id: currency.id,
                    attrs,
                    lookup_tables: BTreeMap::new(),
                    version,
                },
            );
        }
    }

    /// The Web API, the control API and the fault routes, with bearer validation,
    /// service protection and fault injection (no Entra routes; see [`DataverseEmulator`]).
    /// Serve it on a listener of its own: `/_emulator/faults` would collide with another
    /// emulator's fault routes on a shared one.
    pub fn router(&self) -> Router {
        api::router(self.clone())
            .nest("/_emulator/dataverse", control::router(self.clone()))
            .nest("/_emulator/faults", self.inner.faults.control_router())
    }

    /// The configuration.
    pub fn config(&self) -> &DataverseConfig {
        &self.inner.config
    }

    /// The tables.
    pub fn schema(&self) -> &Schema {
        &self.inner.schema
    }

    /// The environment URL (the token audience).
    pub fn org_url(&self) -> &str {
        &self.inner.config.org_url
    }

    /// The scope a client asks Entra for: `<org_url>/.default` (crm.md §1.2).
    pub fn scope(&self) -> String {
        format!(
            "{}/.default",
            self.inner.config.org_url.trim_end_matches('/')
        )
    }

    /// The authority tokens are validated with.
    pub fn authority(&self) -> &EntraAuthority {
        &self.inner.authority
    }

    /// The fault rules (also at `/_emulator/faults`).
    pub fn faults(&self) -> &FaultInjector {
        &self.inner.faults
    }

    /// The environment's clock.
    pub fn clock(&self) -> &Clock {
        &self.inner.clock
    }

    /// Now, as the environment sees it.
    pub fn now(&self) -> DateTime<Utc> {
        self.inner.clock.now()
    }

    /// Moves the environment's clock forward (limits' windows pass, `modifiedon` moves).
    pub fn advance_clock(&self, by: Duration) {
        self.inner.clock.advance(by);
    }

    pub(crate) fn store(&self) -> MutexGuard<'_, Store> {
        lock(&self.inner.store)
    }

    /// Runs `f` on the store as one transaction: all of its writes, or none.
    pub(crate) fn transaction<T>(
        &self,
        f: impl FnOnce(&mut Store) -> Result<T, DvError>,
    ) -> Result<T, DvError> {
        let mut store = self.store();
        store.begin();
        let result = f(&mut store);
        match &result {
            Ok(_) => store.commit(),
            Err(_) => store.rollback(&self.inner.schema),
        }
        result
    }

    pub(crate) fn protection(&self) -> &Protection {
        &self.inner.protection
    }

    pub(crate) fn table_for_set(&self, set: &str) -> Result<&Table, DvError> {
        self.inner
            .schema
            .by_entity_set(set)
            .ok_or_else(|| DvError::segment_not_found(set))
    }

    pub(crate) fn base_currency(&self) -> Option<Uuid> {
        self.inner.config.currencies.first().map(|c| c.id)
    }

    /// The systemuser behind a token (created on first sight, as an application user
    /// or a licensed user would already exist in a real environment).
    pub(crate) fn user_for(&self, claims: &TokenClaims) -> Uuid {
        if let Some(id) = lock(&self.inner.users).get(&claims.oid) {
            return *id;
        }
        let id = user_id_for(&claims.oid);
        let (name, email, app) = if claims.is_user() {
            (
                claims.name.clone().unwrap_or_else(|| claims.oid.clone()),
                claims.upn.clone(),
                None,
            )
        } else {
            (
                format!(
                    "# {}",
                    claims.app_displayname.as_deref().unwrap_or(&claims.appid)
                ),
                None,
                Some(claims.appid.clone()),
            )
        };
        let now = self.now();
        {
            let mut store = self.store();
            if store.get("systemuser", &id).is_none() {
                put_system_user(
                    &self.inner.schema,
                    &mut store,
                    id,
                    &name,
                    email.as_deref(),
                    app.map(|a| (a, claims.oid.clone())),
                    now,
                );
            }
        }
        lock(&self.inner.users).insert(claims.oid.clone(), id);
        id
    }

    pub(crate) fn count_response(&self, status: u16, served: bool, unauthorized: bool) {
        let mut counters = lock(&self.inner.counters);
        *counters.responses.entry(status).or_default() += 1;
        if served {
            counters.served += 1;
        }
        if unauthorized {
            counters.unauthorized += 1;
        }
    }
}

fn put_system_user(
    schema: &Schema,
    store: &mut Store,
    id: Uuid,
    name: &str,
    email: Option<&str>,
    app: Option<(String, String)>,
    now: DateTime<Utc>,
) {
    let Some(table) = schema.by_logical_name("systemuser") else {
        return;
    };
    let mut attrs = Map::new();
    attrs.insert("systemuserid".to_owned(), json!(id.to_string()));
    attrs.insert("fullname".to_owned(), json!(name));
    attrs.insert("internalemailaddress".to_owned(), json!(email));
    attrs.insert(
        "applicationid".to_owned(),
        json!(app.as_ref().map(|a| a.0.clone())),
    );
    attrs.insert(
        "azureactivedirectoryobjectid".to_owned(),
        json!(app.as_ref().map(|a| a.1.clone())),
    );
    attrs.insert("isdisabled".to_owned(), json!(false));
    attrs.insert(
        "createdon".to_owned(),
        json!(values::format_timestamp(&now)),
    );
    attrs.insert(
        "modifiedon".to_owned(),
        json!(values::format_timestamp(&now)),
    );
    let version = store.next_version();
    store.put(
        table,
        Row {
            id,
            attrs,
            lookup_tables: BTreeMap::new(),
            version,
        },
    );
}

/// A Dataverse emulator on its own listener.
#[derive(Debug)]
pub struct DataverseEmulator {
    dataverse: Dataverse,
    handle: EmulatorHandle,
    own_authority: bool,
}

impl DataverseEmulator {
    /// Runs alone: creates its own Entra tenant (the demo tenant, [`crate::entra::EntraConfig::default`])
    /// and serves its token endpoint on the same listener. Must be called inside a Tokio runtime.
    pub fn start(config: DataverseConfig, listener: TcpListener) -> Result<Self, DataverseError> {
        let authority = EntraAuthority::demo()?;
        let dataverse = Dataverse::new(config, authority.clone())?;
        let app = dataverse
            .router()
            .merge(dataverse.faults().layer(authority.router()));
        let handle = serve(app, listener)?;
        Ok(Self {
            dataverse,
            handle,
            own_authority: true,
        })
    }

    /// Validates tokens with a shared `authority` (the demo shares one with the Partner
    /// Center emulator, whose listener serves its token endpoint).
    pub fn start_with_authority(
        config: DataverseConfig,
        listener: TcpListener,
        authority: EntraAuthority,
    ) -> Result<Self, DataverseError> {
        let dataverse = Dataverse::new(config, authority)?;
        let handle = serve(dataverse.router(), listener)?;
        Ok(Self {
            dataverse,
            handle,
            own_authority: false,
        })
    }

    /// `http://host:port/`.
    pub fn base_url(&self) -> &Url {
        self.handle.base_url()
    }

    /// The Web API root: `http://host:port/api/data/v9.2/` (the newest configured version).
    pub fn api_url(&self) -> String {
        let version = self
            .dataverse
            .config()
            .api_versions
            .last()
            .cloned()
            .unwrap_or_else(|| "v9.2".to_owned());
        self.handle.url(&format!("/api/data/{version}/"))
    }

    /// The v2 token endpoint on this listener, when the emulator runs its own tenant.
    pub fn token_url(&self) -> Option<String> {
        self.own_authority.then(|| {
            self.handle.url(&format!(
                "/{}/oauth2/v2.0/token",
                self.dataverse.authority().tenant_id()
            ))
        })
    }

    /// The environment URL (token audience).
    pub fn org_url(&self) -> &str {
        self.dataverse.org_url()
    }

    /// The environment: data, control operations, faults.
    pub fn dataverse(&self) -> &Dataverse {
        &self.dataverse
    }

    /// Stops the server and waits for in-flight requests.
    pub async fn shutdown(self) -> std::io::Result<()> {
        self.handle.shutdown().await
    }
}
