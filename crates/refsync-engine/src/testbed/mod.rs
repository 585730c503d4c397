//! The end-to-end test bed (feature `test-harness`): the Partner Center emulator
//! (with its Entra tenant), a CRM ([`CrmUnderTest`]: in memory, or an emulator with
//! its connector), a store (SQLite or PostgreSQL from `refsync_store::test_harness`)
//! and the engine wired together, with the engine's workers running and Partner
//! Center's webhooks delivered into the queue — as `refsync serve` would run, at
//! millisecond timings.
//!
//! Every emulator's requests are recorded ([`RequestLog`]) so tests count outbound
//! calls and writes as the services saw them. The binary's tests, the demo and the
//! benchmark reuse it.
//!
//! ```no_run
//! # async fn demo() {
//! use refsync_engine::testbed::{CrmUnderTest, InMemory, StoreKind, TestBed};
//! let Some(bed) = TestBed::<InMemory>::start(StoreKind::Sqlite).await else { return };
//! let id = bed.send_referral();
//! bed.settle().await;
//! assert_eq!(bed.crm.records(&refsync_core::CrmEntity::Lead).len(), 1);
//! # let _ = id; }
//! ```
#![allow(clippy::expect_used, clippy::panic, missing_docs)]

mod crm;
mod dataverse;
mod requests;
mod salesforce;
mod webhook;
mod wrappers;

pub use crm::{CrmUnderTest, InMemory};
pub use dataverse::Dynamics;
pub use requests::{Recorded, RequestLog};
pub use salesforce::Salesforce;
pub use wrappers::{FlakyStore, HookedCrm, WriteHook};

use crate::clock::SystemClock;
use crate::engine::SyncEngine;
use crate::error::SyncError;
use crate::outcome::SyncOutcome;
use crate::poller::run_poller;
use crate::reconciler::run_reconciler;
use crate::settings::{EngineSettings, WorkerSettings};
use crate::settings::{PollerSettings, ReconcilerSettings};
use crate::workers::run_workers;
use chrono::Utc;
use refsync_core::{CrmEntity, CrmRecord, Referral, ReferralId, SyncKey};
use refsync_crm::CrmConnector;
use refsync_emulators::entra::{
    DEMO_ADMIN_USER, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_TENANT_ID, DEMO_USER_PASSWORD,
    EntraAuthority,
};
use refsync_emulators::partner_center::{PartnerCenterConfig, PartnerCenterEmulator};
use refsync_emulators::server::{EmulatorHandle, serve};
use refsync_outbound::entra::{
    Audience, Entra, EntraApp, PARTNER_CENTER_RESOURCE, REFERRALS_RESOURCE, Tenant,
};
use refsync_outbound::token::TokenCache;
use refsync_outbound::{ApiClient, ApiConfig, RetryPolicy};
use refsync_partner_center::registration::RegistrationRequest;
use refsync_partner_center::{ReferralsClient, RegistrationClient};
use refsync_store::test_harness::{TestSqlite, postgres_url_for_test, sqlite_url_for_test};
use refsync_store::{Claim, LeaseOwner, Store, SyncLink, Trigger};
use secrecy::SecretString;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use url::Url;

/// The path prefix of the Referrals API.
pub const REFERRALS_PATH: &str = "/v1.0/engagements/referrals";

/// Which store backend a test bed uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    /// A fresh SQLite file.
    Sqlite,
    /// A fresh database on the test PostgreSQL server.
    Postgres,
}

/// Replaces the store with a wrapper around it (fault injection in tests).
pub type WrapStore = Box<dyn FnOnce(Arc<dyn Store>) -> Arc<dyn Store> + Send>;
/// Replaces the CRM connector with a wrapper around it; the wrapper may act on
/// Partner Center (as Microsoft) at chosen moments.
pub type WrapCrm =
    Box<dyn FnOnce(Arc<dyn CrmConnector>, &PartnerCenterEmulator) -> Arc<dyn CrmConnector> + Send>;

/// How to build a test bed.
pub struct TestBedOptions {
    /// The store backend.
    pub store: StoreKind,
    /// Engine settings.
    pub engine: EngineSettings,
    /// Worker settings; `None` leaves the workers stopped (tests then run keys
    /// themselves with [`TestBed::run_key`]).
    pub workers: Option<WorkerSettings>,
    /// Whether to register the webhook receiver with Partner Center.
    pub webhooks: bool,
    /// The Partner Center emulator's settings.
    pub partner_center: PartnerCenterConfig,
    /// Wraps the store the engine uses.
    pub wrap_store: Option<WrapStore>,
    /// Wraps the CRM connector the engine uses.
    pub wrap_crm: Option<WrapCrm>,
    /// Use this store URL instead of a fresh test database (`sqlite://…`,
    /// `postgres://…`): the demo and the benchmark keep their data where they say.
    pub store_url: Option<String>,
    /// Also run the Partner Center reconciler with these settings.
    pub reconciler: Option<ReconcilerSettings>,
    /// Also run the CRM poller with these settings.
    pub poller: Option<PollerSettings>,
}

impl TestBedOptions {
    /// Defaults: workers running at test timings, webhooks registered, fast
    /// deliveries, nothing wrapped.
    pub fn new(store: StoreKind) -> Self {
        Self {
            store,
            engine: EngineSettings::default(),
            workers: Some(test_workers()),
            webhooks: true,
            partner_center: PartnerCenterConfig::for_tests(),
            wrap_store: None,
            wrap_crm: None,
            store_url: None,
            reconciler: None,
            poller: None,
        }
    }
}

/// Worker settings at test timings: millisecond polls and retries.
pub fn test_workers() -> WorkerSettings {
    WorkerSettings {
        owner: "testbed".to_owned(),
        concurrency: 4,
        lease: Duration::from_secs(30),
        poll_interval: Duration::from_millis(20),
        max_attempts: 6,
        retry_initial: Duration::from_millis(10),
        retry_max: Duration::from_millis(50),
        shutdown_grace: Duration::from_secs(2),
    }
}

/// In-call retries at test timings (the durable retries are the queue's).
fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 3,
        max_elapsed: Duration::from_secs(10),
        min_backoff: Duration::from_millis(2),
        max_backoff: Duration::from_millis(10),
        max_retry_after: Duration::from_secs(1),
        jitter: true,
    }
}

/// Everything wired together; see the module docs.
pub struct TestBed<C: CrmUnderTest> {
    /// The Partner Center emulator (act as Microsoft through it).
    pub pc: PartnerCenterEmulator,
    /// Requests Partner Center received.
    pub pc_requests: RequestLog,
    /// The CRM.
    pub crm: C,
    /// The store, as the engine sees it (wrapped if asked).
    pub store: Arc<dyn Store>,
    /// The engine.
    pub engine: Arc<SyncEngine>,
    /// The Partner Center emulator's base URL (`http://127.0.0.1:port/`).
    pub pc_url: Url,
    worker_settings: Option<WorkerSettings>,
    shutdown: CancellationToken,
    workers: Option<JoinHandle<()>>,
    loops_shutdown: CancellationToken,
    _servers: Vec<EmulatorHandle>,
    _sqlite: Option<TestSqlite>,
}

impl<C: CrmUnderTest> TestBed<C> {
    /// A test bed with the defaults; `None` when PostgreSQL is skipped on purpose
    /// (`REFSYNC_SKIP_POSTGRES=1`).
    pub async fn start(store: StoreKind) -> Option<Self> {
        Self::start_with(TestBedOptions::new(store)).await
    }

    /// A test bed built as `options` say; `None` when PostgreSQL is skipped on purpose.
    pub async fn start_with(options: TestBedOptions) -> Option<Self> {
        Self::start_with_crm(options, C::start().await).await
    }

    /// A test bed around a CRM started by the caller (e.g. the demo's Salesforce on
    /// the system clock, [`Salesforce::start_on`]); `None` when PostgreSQL is skipped
    /// on purpose.
    pub async fn start_with_crm(options: TestBedOptions, crm: C) -> Option<Self> {
        let (url, sqlite) = match (options.store_url.clone(), options.store) {
            (Some(url), _) => (url, None),
            (None, StoreKind::Sqlite) => {
                let db = sqlite_url_for_test();
                (db.url().to_owned(), Some(db))
            }
            (None, StoreKind::Postgres) => (postgres_url_for_test().await?, None),
        };
        let store = refsync_store::open_store(&url)
            .await
            .expect("open the test store");
        let store = match options.wrap_store {
            Some(wrap) => wrap(store),
            None => store,
        };

        let pc_listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind Partner Center");
        let pc_url = Url::parse(&format!(
            "http://{}/",
            pc_listener.local_addr().expect("address")
        ))
        .expect("a URL");
        let authority =
            EntraAuthority::new(options.partner_center.entra.clone()).expect("Entra tenant");
        let pc = PartnerCenterEmulator::new(options.partner_center, authority, &pc_url)
            .expect("Partner Center");
        let pc_requests = RequestLog::default();
        let pc_server =
            serve(pc_requests.record(pc.router()), pc_listener).expect("serve Partner Center");

        let entra = Entra::new(
            EntraApp::new(
                pc_url.clone(),
                Tenant::parse(DEMO_TENANT_ID.to_string()).expect("tenant"),
                DEMO_CLIENT_ID.to_string(),
                Some(SecretString::from(DEMO_CLIENT_SECRET.to_owned())),
            ),
            TokenCache::new(),
        )
        .expect("Entra client");
        let api = |name: &str, tokens| {
            ApiClient::new(
                ApiConfig::new(name, pc_url.clone())
                    .with_timeout(Duration::from_secs(5))
                    .with_retry(fast_retries()),
                Some(tokens),
            )
            .expect("API client")
        };
        let referrals = ReferralsClient::new(api(
            "partner-center-referrals",
            entra.password(
                Audience::v1(REFERRALS_RESOURCE),
                DEMO_ADMIN_USER,
                SecretString::from(DEMO_USER_PASSWORD.to_owned()),
            ),
        ));

        let connector = match options.wrap_crm {
            Some(wrap) => wrap(crm.connector(), &pc),
            None => crm.connector(),
        };
        let engine = Arc::new(
            SyncEngine::new(
                Arc::clone(&store),
                referrals,
                connector,
                Arc::new(crm.mapping()),
                options.engine,
                Arc::new(SystemClock),
            )
            .expect("the CRM's mapping declares lead and opportunity"),
        );

        let mut servers = vec![pc_server];
        if options.webhooks {
            let listener = TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind the webhook receiver");
            let hook_url = Url::parse(&format!(
                "http://{}/webhook",
                listener.local_addr().expect("address")
            ))
            .expect("a URL");
            servers.push(
                serve(
                    webhook::router(Arc::clone(&store), engine.wakeup().clone()),
                    listener,
                )
                .expect("serve the webhook receiver"),
            );
            let registration = RegistrationClient::new(api(
                "partner-center-webhooks",
                entra.client_credentials(Audience::v2(PARTNER_CENTER_RESOURCE)),
            ));
            registration
                .create(&RegistrationRequest::for_referrals(&hook_url))
                .await
                .expect("register the webhook");
        }

        let loops_shutdown = CancellationToken::new();
        if let Some(settings) = options.reconciler {
            tokio::spawn(run_reconciler(
                Arc::clone(&engine),
                settings,
                loops_shutdown.clone(),
            ));
        }
        if let Some(settings) = options.poller {
            tokio::spawn(run_poller(
                Arc::clone(&engine),
                settings,
                loops_shutdown.clone(),
            ));
        }

        let mut bed = Self {
            pc,
            pc_requests,
            pc_url,
            loops_shutdown,
            crm,
            store,
            engine,
            worker_settings: options.workers,
            shutdown: CancellationToken::new(),
            workers: None,
            _servers: servers,
            _sqlite: sqlite,
        };
        bed.start_workers();
        Some(bed)
    }

    /// Starts the workers (when the options asked for them and they are not running).
    pub fn start_workers(&mut self) {
        if self.workers.is_some() {
            return;
        }
        if let Some(settings) = self.worker_settings.clone() {
            self.shutdown = CancellationToken::new();
            self.workers = Some(tokio::spawn(run_workers(
                Arc::clone(&self.engine),
                settings,
                self.shutdown.clone(),
            )));
        }
    }

    /// Stops the workers as SIGTERM would, waiting for them to wind down.
    pub async fn stop_workers(&mut self) {
        self.shutdown.cancel();
        if let Some(handle) = self.workers.take() {
            handle.await.expect("the workers ended cleanly");
        }
    }

    /// Microsoft sends us one generated referral (New/Pending); returns its id.
    pub fn send_referral(&self) -> ReferralId {
        let sent = self.pc.send_generated_referrals(1);
        let id = sent
            .first()
            .and_then(|r| r["id"].as_str())
            .expect("the emulator returns the referral it made");
        ReferralId::parse(id).expect("a referral id")
    }

    /// Microsoft sends us a referral with this body (the four required properties).
    pub fn send_referral_body(&self, body: serde_json::Value) -> ReferralId {
        let sent = self.pc.send_referral(body).expect("a valid referral");
        ReferralId::parse(sent["id"].as_str().expect("an id")).expect("a referral id")
    }

    /// The referral as Partner Center has it, read through the back door.
    pub fn referral(&self, id: &ReferralId) -> Referral {
        let value = self.pc.referral(id.as_str()).expect("the referral exists");
        serde_json::from_value(value).expect("the emulator's referral parses")
    }

    /// The link of a referral.
    pub async fn link(&self, id: &ReferralId) -> Option<SyncLink> {
        self.store
            .link_by_referral(id)
            .await
            .expect("read the link")
    }

    /// The CRM's live records of one type.
    pub fn records(&self, entity: &CrmEntity) -> Vec<CrmRecord> {
        self.crm.records(entity)
    }

    /// Referrals API requests so far.
    pub fn pc_api_calls(&self) -> Vec<Recorded> {
        self.pc_requests.under(REFERRALS_PATH)
    }

    /// Referrals API writes so far.
    pub fn pc_api_writes(&self) -> usize {
        self.pc_requests.writes_under(REFERRALS_PATH)
    }

    /// Runs one key right here, outside the queue, as a worker would with these
    /// triggers (tests that count calls or drive the order of events).
    pub async fn run_key(
        &self,
        key: SyncKey,
        triggers: &[Trigger],
    ) -> Result<SyncOutcome, SyncError> {
        let now = Utc::now();
        let claim = Claim {
            key,
            generation: 1,
            attempts: 0,
            first_enqueued_at: now,
            last_trigger: triggers.last().cloned().unwrap_or(Trigger::Operator),
            triggers: triggers.to_vec(),
            last_error: None,
            owner: LeaseOwner::new("testbed-inline"),
            lease_token: String::new(),
            lease_until: now,
        };
        self.engine.sync_key(&claim).await
    }

    /// Waits until everything is quiet: no webhook delivery pending (held ones
    /// excepted), no key pending or in flight. Panics after 30 s.
    pub async fn settle(&self) {
        let quiet = async {
            let mut calm = 0;
            while calm < 2 {
                self.pc.wait_for_deliveries().await;
                let summary = self
                    .store
                    .status_summary(Utc::now())
                    .await
                    .expect("read the queue");
                if summary.queue.pending() == 0 {
                    calm += 1;
                } else {
                    calm = 0;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };
        if tokio::time::timeout(Duration::from_secs(30), quiet)
            .await
            .is_err()
        {
            let summary = self.store.status_summary(Utc::now()).await;
            panic!("{}: not settled after 30 s: {summary:?}", self.crm.name());
        }
    }
}

impl<C: CrmUnderTest> Drop for TestBed<C> {
    fn drop(&mut self) {
        self.shutdown.cancel();
        self.loops_shutdown.cancel();
    }
}
