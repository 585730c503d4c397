//! The operator's commands against the emulators, as an operator runs them: the
//! Partner Center emulator (with its Entra tenant, signed in through `refsync
//! login`'s device code) and the Salesforce emulator, a config like a deployment's,
//! and the library functions behind `refsync sync`, `audit`, `dead-letters` and
//! `reconcile`. No webhook is registered, so nothing syncs unless a command makes
//! it. Runs on SQLite and PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use refsync::config::{Config, CrmKind, Secret};
use refsync::operator::audit::{audit_text, read_audit};
use refsync::operator::dead_letters::{dead_letters_text, retry};
use refsync::operator::reconcile::{reconcile_now, reconcile_text};
use refsync::operator::sync::{failure, sync_and_wait, sync_report};
use refsync::operator::{
    AuditArgs, DeadLettersCommand, DeadLettersListArgs, DeadLettersRetryArgs, OperatorCommand,
    run_operator,
};
use refsync::signin::run_login;
use refsync_core::{ReferralId, SyncKey};
use refsync_crm::salesforce::{RetrySettings, SalesforceSettings};
use refsync_emulators::entra::{
    DEMO_ADMIN_USER, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_TENANT_ID,
};
use refsync_emulators::faults::FaultRule;
use refsync_emulators::partner_center::{
    PartnerCenterConfig, PartnerCenterEmulator, PartnerCenterServer,
};
use refsync_emulators::salesforce::config::{
    DEMO_CONSUMER_KEY, DEMO_CONSUMER_SECRET, MultiCurrency, SalesforceConfig,
};
use refsync_emulators::salesforce::{Clock, SalesforceEmulator};
use refsync_emulators::server::{EmulatorHandle, serve};
use refsync_engine::OperatorState;
use refsync_outbound::entra::DeviceCodeOptions;
use refsync_store::{AuditKind, QueueState, Store, Trigger};
use secrecy::SecretString;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use support::{Backend, test_store};

const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
/// The Salesforce REST API's path prefix, where faults are injected.
const SALESFORCE_API: &str = "/services/data";
/// Long enough for a sync on a loaded machine; a passing run takes milliseconds.
const WAIT: Duration = Duration::from_secs(30);

struct Bed {
    _store: support::TestStore,
    pc: PartnerCenterServer,
    salesforce: SalesforceEmulator,
    _salesforce_server: EmulatorHandle,
    store: Arc<dyn Store>,
    config: Config,
}

impl Bed {
    /// Emulators, a store, a config pointing at them, and a completed sign-in.
    async fn start(backend: Backend) -> Option<Bed> {
        let test_store = test_store(backend).await?;
        let mut pc_config = PartnerCenterConfig::for_tests();
        // The approval happens at once; no reason to wait a polling interval for it.
        pc_config.entra.device_code_interval = Duration::ZERO;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let pc = PartnerCenterEmulator::start(pc_config, listener).unwrap();

        let salesforce = SalesforceEmulator::new(
            SalesforceConfig {
                multi_currency: Some(MultiCurrency::default()),
                ..SalesforceConfig::default()
            },
            Clock::System,
        )
        .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let salesforce_server = serve(salesforce.router(), listener).unwrap();

        let mut config = Config::default();
        config.store.url = test_store.url.clone();
        config.store.encryption_key = Some(Secret::new(KEY));
        config.partner_center.api_url = pc.base_url().to_owned();
        config.partner_center.authority_url = pc.base_url().to_owned();
        config.partner_center.tenant = DEMO_TENANT_ID.to_string();
        config.partner_center.client_id = DEMO_CLIENT_ID.to_string();
        config.partner_center.client_secret = Some(Secret::new(DEMO_CLIENT_SECRET));
        config.crm.kind = Some(CrmKind::Salesforce);
        config.crm.salesforce = SalesforceSettings {
            login_url: salesforce_server.url(""),
            client_id: DEMO_CONSUMER_KEY.to_owned(),
            client_secret: Some(SecretString::from(DEMO_CONSUMER_SECRET)),
            request_timeout: Duration::from_secs(10),
            requests_per_second: 1000.0,
            slowed_requests_per_second: 200.0,
            retry: RetrySettings {
                max_attempts: 2,
                min_backoff: Duration::from_millis(1),
                max_backoff: Duration::from_millis(5),
            },
            ..SalesforceSettings::default()
        };
        config.sync.workers = 2;
        config.sync.poll_interval = Duration::from_millis(20);
        config.sync.max_attempts = 3;
        config.sync.retry_initial = Duration::from_millis(10);
        config.sync.retry_max = Duration::from_millis(50);
        config.sync.shutdown_grace = Duration::from_secs(5);

        let store = refsync_store::open_store(&config.store.url).await.unwrap();
        login(&pc, &config, Arc::clone(&store)).await;
        Some(Bed {
            _store: test_store,
            pc,
            salesforce,
            _salesforce_server: salesforce_server,
            store,
            config,
        })
    }

    /// Microsoft sends `n` new referrals; no webhook is registered, so nobody hears of them.
    fn send_referrals(&self, n: usize) -> Vec<ReferralId> {
        self.pc
            .send_generated_referrals(n)
            .iter()
            .map(|r| ReferralId::parse(r["id"].as_str().unwrap()).unwrap())
            .collect()
    }

    /// Salesforce leads carrying this referral id.
    fn leads_for(&self, id: &ReferralId) -> Vec<Value> {
        self.salesforce
            .records("Lead", false)
            .unwrap()
            .into_iter()
            .filter(|r| r["Referral_Identifier__c"] == id.as_str())
            .collect()
    }

    async fn run(&self, command: OperatorCommand) -> refsync::operator::CommandOutput {
        run_operator(&self.config, command).await.unwrap()
    }
}

/// `refsync login`: the device code approved by the demo admin as soon as it is shown.
async fn login(pc: &PartnerCenterServer, config: &Config, store: Arc<dyn Store>) {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let authority = pc.authority().clone();
    let approve = tokio::spawn(async move {
        let user_code: String = rx.await.unwrap();
        authority
            .approve_device_code(&user_code, DEMO_ADMIN_USER)
            .unwrap();
    });
    let options = DeviceCodeOptions {
        min_interval: Duration::from_millis(10),
        max_wait: WAIT,
        ..DeviceCodeOptions::default()
    };
    run_login(config, store, &options, move |prompt| {
        tx.send(prompt.user_code.clone()).unwrap();
    })
    .await
    .unwrap();
    approve.await.unwrap();
}

async fn sync_creates_the_lead_and_audit_shows_the_timeline(backend: Backend) {
    let Some(bed) = Bed::start(backend).await else {
        return;
    };
    let id = bed.send_referrals(1).remove(0);
    let key = SyncKey::Referral(id.clone());
    assert!(bed.leads_for(&id).is_empty());

    let outcome = sync_and_wait(&bed.config, Arc::clone(&bed.store), &key, WAIT)
        .await
        .unwrap();
    assert_eq!(outcome.state, OperatorState::Done, "{outcome:?}");
    assert_eq!(failure(&key, &outcome.state), None);
    assert!(
        outcome
            .audit
            .iter()
            .any(|e| e.entry.kind == AuditKind::CreatedLead),
        "{outcome:?}"
    );
    assert_eq!(bed.leads_for(&id).len(), 1);
    assert!(bed.store.queue_entry(&key).await.unwrap().is_none());
    let report = sync_report(&key, &outcome, WAIT, chrono::Utc::now());
    assert!(report.contains(&format!("{key}: done")), "{report}");
    assert!(report.contains("created_lead"), "{report}");

    // The timeline holds what the sync wrote, in order; by bare id as by key.
    let timeline = read_audit(bed.store.as_ref(), &key, 100).await.unwrap();
    assert_eq!(
        timeline.iter().map(|e| e.id).collect::<Vec<_>>(),
        outcome.audit.iter().map(|e| e.id).collect::<Vec<_>>()
    );
    let text = audit_text(&key, &timeline);
    assert!(text.contains("created_lead"), "{text}");
    let json = bed
        .run(OperatorCommand::Audit(AuditArgs {
            target: id.to_string(),
            limit: 100,
            json: true,
        }))
        .await;
    let json: Value = serde_json::from_str(&json.text).unwrap();
    assert_eq!(json[0]["kind"], "created_lead", "{json}");
    assert_eq!(json[0]["key"], key.to_string());

    // Syncing again finds nothing to do: still one lead, done.
    let again = sync_and_wait(&bed.config, Arc::clone(&bed.store), &key, WAIT)
        .await
        .unwrap();
    assert_eq!(again.state, OperatorState::Done, "{again:?}");
    assert!(
        again
            .audit
            .iter()
            .all(|e| e.entry.kind != AuditKind::CreatedLead),
        "{again:?}"
    );
    assert_eq!(bed.leads_for(&id).len(), 1);
    bed.pc.shutdown().await.unwrap();
}

async fn a_rejected_write_is_dead_lettered_listed_and_retried(backend: Backend) {
    let Some(bed) = Bed::start(backend).await else {
        return;
    };
    let id = bed.send_referrals(1).remove(0);
    let key = SyncKey::Referral(id.clone());
    // Salesforce refuses the lead's creation as invalid data: a permanent failure.
    bed.salesforce
        .faults()
        .install(
            FaultRule::status_times(400, 1)
                .on_path(SALESFORCE_API)
                .on_method("POST"),
        )
        .unwrap();

    let outcome = sync_and_wait(&bed.config, Arc::clone(&bed.store), &key, WAIT)
        .await
        .unwrap();
    let OperatorState::DeadLettered { reason } = &outcome.state else {
        panic!("expected a dead letter, got {outcome:?}");
    };
    assert!(reason.contains("permanent"), "{reason}");
    assert!(failure(&key, &outcome.state).is_some());
    assert!(bed.leads_for(&id).is_empty());

    // Listed under the key `retry` takes.
    let listed = bed
        .run(OperatorCommand::DeadLetters(DeadLettersCommand::List(
            DeadLettersListArgs {
                limit: 100,
                json: true,
            },
        )))
        .await;
    let listed: Value = serde_json::from_str(&listed.text).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed[0]["key"], key.to_string());
    let dead = bed.store.list_dead_letters(10).await.unwrap();
    let table = dead_letters_text(&dead, chrono::Utc::now());
    assert!(table.contains(&key.to_string()), "{table}");
    assert!(table.contains("permanent"), "{table}");

    let retried = bed
        .run(OperatorCommand::DeadLetters(DeadLettersCommand::Retry(
            DeadLettersRetryArgs {
                key: Some(listed[0]["key"].as_str().unwrap().to_owned()),
                all: false,
            },
        )))
        .await;
    assert_eq!(retried.failure, None, "{retried:?}");
    let entry = bed.store.queue_entry(&key).await.unwrap().unwrap();
    assert_eq!(entry.state, QueueState::Pending);
    assert_eq!(entry.attempts, 0);
    assert!(bed.store.list_dead_letters(10).await.unwrap().is_empty());

    // Not dead any more: retrying it again is refused, and --all finds nothing.
    let again = bed
        .run(OperatorCommand::DeadLetters(DeadLettersCommand::Retry(
            DeadLettersRetryArgs {
                key: Some(key.to_string()),
                all: false,
            },
        )))
        .await;
    assert!(again.failure.is_some(), "{again:?}");
    assert_eq!(
        retry(
            bed.store.as_ref(),
            &refsync::operator::dead_letters::RetryTarget::All,
            chrono::Utc::now()
        )
        .await
        .unwrap(),
        0
    );

    // The fault was one-off: the revived key now syncs.
    let outcome = sync_and_wait(&bed.config, Arc::clone(&bed.store), &key, WAIT)
        .await
        .unwrap();
    assert_eq!(outcome.state, OperatorState::Done, "{outcome:?}");
    assert_eq!(bed.leads_for(&id).len(), 1);
    bed.pc.shutdown().await.unwrap();
}

async fn reconcile_since_enqueues_referrals_no_webhook_reported(backend: Backend) {
    let Some(bed) = Bed::start(backend).await else {
        return;
    };
    let ids = bed.send_referrals(3);
    let now = bed.pc.now();

    // Nothing after the referrals were made: nothing listed, nothing enqueued.
    let later = reconcile_now(
        &bed.config,
        Arc::clone(&bed.store),
        Some(now + chrono::Duration::hours(1)),
    )
    .await
    .unwrap();
    assert_eq!((later.listed, later.enqueued), (0, 0), "{later:?}");
    for id in &ids {
        let key = SyncKey::Referral(id.clone());
        assert!(bed.store.queue_entry(&key).await.unwrap().is_none());
    }

    let report = reconcile_now(
        &bed.config,
        Arc::clone(&bed.store),
        Some(now - chrono::Duration::hours(2)),
    )
    .await
    .unwrap();
    assert_eq!((report.listed, report.enqueued), (3, 3), "{report:?}");
    assert!(report.watermark.is_some());
    let text = reconcile_text(&report);
    assert!(text.contains("enqueued 3"), "{text}");
    for id in &ids {
        let key = SyncKey::Referral(id.clone());
        let entry = bed.store.queue_entry(&key).await.unwrap().unwrap();
        assert_eq!(entry.state, QueueState::Pending);
        assert_eq!(entry.last_trigger, Trigger::Reconciler);
    }
    // Only enqueued: `refsync serve` (or `refsync sync`) does the syncing.
    assert!(bed.salesforce.records("Lead", false).unwrap().is_empty());
    bed.pc.shutdown().await.unwrap();
}

backend_tests!(
    sync_creates_the_lead_and_audit_shows_the_timeline,
    a_rejected_write_is_dead_lettered_listed_and_retried,
    reconcile_since_enqueues_referrals_no_webhook_reported,
);
