//! A local Salesforce org speaking the REST API the way the real one does
//! (crm.md §2, §4), for refsync's end-to-end tests, `refsync demo` and users
//! trying a configuration (`refsync emulate salesforce`).
//!
//! What it serves:
//!
//! - `POST /services/oauth2/token`: client-credentials, JWT-bearer (RS256,
//!   verified against the connected app's certificate) and username-password
//!   grants, with Salesforce's error bodies (`auth`).
//! - `GET /services/data/`: the versions list (not counted against limits).
//! - `/services/data/vNN.0/…` for versions `min_api_version..=max_api_version`:
//!   sObject CRUD, upsert by external id, getUpdated/getDeleted, describe, SOQL
//!   query/queryAll with cursor paging, `/composite`, sObject Collections and
//!   `/limits` (`api`). Every response carries `Sforce-Limit-Info`; past the
//!   daily allocation every call answers 403 `REQUEST_LIMIT_EXCEEDED` (`limits`).
//! - `/_emulator/salesforce/…`: inspect records without spending API calls, edit
//!   records as a human user, convert leads, reset usage, set the allocation,
//!   move a manual clock, end sessions (`control`); `/_emulator/faults` injects 403
//!   `REQUEST_LIMIT_EXCEEDED`, 503 and delays in Salesforce's error shape.
//!
//! The org's data (`org`), metadata (`schema`) and query engine (`soql`)
//! are plain synchronous code behind one mutex; handlers take the lock, do
//! their work and release it without awaiting, so a composite request with
//! `allOrNone` is atomic with respect to every other caller.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use refsync_emulators::salesforce::{Clock, SalesforceConfig, SalesforceEmulator};
//!
//! // The demo org: consumer key/secret `refsync-demo-consumer-key` /
//! // `refsync-demo-consumer-secret`, client credentials as the integration user.
//! let emulator = SalesforceEmulator::new(SalesforceConfig::default(), Clock::System)?;
//! let handle = emulator.serve(tokio::net::TcpListener::bind("127.0.0.1:0").await?)?;
//! println!("token endpoint: {}", handle.url("/services/oauth2/token"));
//! # Ok(()) }
//! ```

mod api;
mod auth;
pub mod clock;
pub mod config;
mod control;
pub mod error;
mod ids;
mod limits;
mod org;
mod schema;
mod soql;
mod value;

pub use clock::Clock;
pub use config::SalesforceConfig;
pub use error::SfError;
pub use org::{Converted, LeadConversion};
pub use schema::SchemaError;

use crate::faults::{FaultInjector, responders};
use crate::server::{EmulatorHandle, ServeError, serve};
use axum::Router;
use axum::routing::{get, post};
use chrono::TimeDelta;
use ids::SfId;
use jsonwebtoken::DecodingKey;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use tokio::net::TcpListener;

/// Why an emulator could not be built from its configuration.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// Custom fields, stages or statuses are unusable.
    #[error(transparent)]
    Schema(#[from] schema::SchemaError),
    /// The org id is not a `00D` id.
    #[error("org_id {0:?} is not a 15- or 18-character 00D id")]
    OrgId(String),
    /// A connected app's certificate is not an RSA certificate or public key.
    #[error(
        "connected app {app}: jwt_certificate_pem is not an RSA certificate or public key: {reason}"
    )]
    Certificate {
        /// The app's name.
        app: String,
        /// What was wrong.
        reason: String,
    },
    /// A connected app or the default human user names a user that does not exist.
    #[error("{0} names user {1:?}, which is not in users")]
    UnknownUser(String, String),
    /// Limits or paging values are out of range.
    #[error("{0}")]
    Invalid(String),
}

/// Mutable state of the org, behind one lock.
#[derive(Debug)]
pub(crate) struct State {
    pub(crate) org: org::Org,
    pub(crate) sessions: auth::Sessions,
    pub(crate) usage: limits::ApiUsage,
    pub(crate) cursors: api::query::Cursors,
}

/// Everything the handlers share.
pub(crate) struct Shared {
    pub(crate) config: SalesforceConfig,
    pub(crate) schema: Arc<schema::Schema>,
    pub(crate) clock: Clock,
    pub(crate) org_id: SfId,
    pub(crate) jwt_keys: Vec<Option<DecodingKey>>,
    state: Mutex<State>,
}

impl Shared {
    /// Locks the org. Never held across an await.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // A poisoned lock means a handler panicked mid-request; the data is still
        // the best there is, and an emulator should keep answering.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A Salesforce emulator: build it from configuration, then serve its [`router`](Self::router).
#[derive(Clone)]
pub struct SalesforceEmulator {
    shared: Arc<Shared>,
    faults: FaultInjector,
}

impl std::fmt::Debug for SalesforceEmulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SalesforceEmulator")
            .field("org_id", &self.shared.org_id)
            .finish_non_exhaustive()
    }
}

/// Salesforce's error body for injected faults, plus the `Sforce-Limit-Info`
/// header real responses carry (the injected call itself is not counted).
fn fault_responder(shared: Arc<Shared>) -> crate::faults::FaultResponder {
    let base = responders::salesforce();
    Arc::new(move |fault| {
        let mut response = base(fault);
        let now = shared.clock.now();
        let header = {
            let mut state = shared.lock();
            let used = state.usage.used(now);
            state.usage.header(used)
        };
        if let Ok(value) = axum::http::HeaderValue::from_str(&header) {
            response.headers_mut().insert("sforce-limit-info", value);
        }
        response
    })
}

impl SalesforceEmulator {
    /// Builds the org described by `config`, reading time from `clock`.
    pub fn new(config: SalesforceConfig, clock: Clock) -> Result<Self, SetupError> {
        let org_id = SfId::parse(&config.org_id)
            .filter(|id| id.key_prefix() == "00D")
            .ok_or_else(|| SetupError::OrgId(config.org_id.clone()))?;
        let q = &config.query;
        if q.default_batch_size == 0 || q.min_batch_size == 0 || q.min_batch_size > q.max_batch_size
        {
            return Err(SetupError::Invalid(
                "query batch sizes must be positive and min_batch_size <= max_batch_size"
                    .to_owned(),
            ));
        }
        if config.min_api_version > config.max_api_version {
            return Err(SetupError::Invalid(
                "min_api_version > max_api_version".to_owned(),
            ));
        }
        let schema = Arc::new(schema::Schema::build(&config)?);
        let org = org::Org::new(Arc::clone(&schema), &config.users);
        let user_named = |who: &str, name: &str| {
            org.user_id(name)
                .map(|_| ())
                .ok_or_else(|| SetupError::UnknownUser(who.to_owned(), name.to_owned()))
        };
        user_named("default_human_user", &config.default_human_user)?;
        let mut jwt_keys = Vec::new();
        for app in &config.connected_apps {
            if let Some(user) = &app.client_credentials_user {
                user_named(&format!("connected app {}", app.name), user)?;
            }
            jwt_keys.push(match &app.jwt_certificate_pem {
                Some(pem) => {
                    Some(
                        auth::decoding_key(pem).map_err(|reason| SetupError::Certificate {
                            app: app.name.clone(),
                            reason,
                        })?,
                    )
                }
                None => None,
            });
        }
        let usage = limits::ApiUsage::new(
            config.limits.daily_api_requests,
            TimeDelta::seconds(i64::try_from(config.limits.window_secs).unwrap_or(i64::MAX / 1000)),
        );
        let state = State {
            org,
            sessions: auth::Sessions::default(),
            usage,
            cursors: api::query::Cursors::default(),
        };
        let shared = Arc::new(Shared {
            config,
            schema,
            clock,
            org_id,
            jwt_keys,
            state: Mutex::new(state),
        });
        let faults = FaultInjector::new(fault_responder(Arc::clone(&shared)));
        Ok(Self { shared, faults })
    }

    /// The demo org on the system clock.
    pub fn demo() -> Result<Self, SetupError> {
        Self::new(SalesforceConfig::default(), Clock::System)
    }

    /// The org id (18-character form).
    pub fn org_id(&self) -> &str {
        self.shared.org_id.as_str()
    }

    /// The clock the org reads.
    pub fn clock(&self) -> &Clock {
        &self.shared.clock
    }

    /// The fault injector behind `/_emulator/faults`.
    pub fn faults(&self) -> &FaultInjector {
        &self.faults
    }

    /// The complete HTTP surface: OAuth, REST API, control API and fault injection.
    pub fn router(&self) -> Router {
        let app = Router::new()
            .route("/services/oauth2/token", post(auth::token_endpoint))
            .route("/services/data", get(api::versions))
            .route("/services/data/", get(api::versions))
            .route(
                "/services/data/{version}",
                axum::routing::any(api::entry_root),
            )
            .route(
                "/services/data/{version}/",
                axum::routing::any(api::entry_root),
            )
            .route(
                "/services/data/{version}/{*rest}",
                axum::routing::any(api::entry),
            )
            .with_state(Arc::clone(&self.shared))
            .nest(
                "/_emulator/salesforce",
                control::router(Arc::clone(&self.shared)),
            );
        self.faults.mount(app)
    }

    /// Serves the emulator on `listener` (e.g. `127.0.0.1:0` in tests).
    pub fn serve(&self, listener: TcpListener) -> Result<EmulatorHandle, ServeError> {
        serve(self.router(), listener)
    }
}
