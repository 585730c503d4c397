//! The service receiving real webhooks from the Partner Center emulator: registered
//! through `refsync webhooks` (app-only token from the emulator's Entra ID), signed by
//! the emulator's own chain, in both header styles, with duplicated deliveries. Runs
//! on SQLite and PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use refsync::config::{Config, Secret};
use refsync::webhooks::{RegisterArgs, TestArgs, UpdateArgs, WebhooksCommand, run_webhooks};
use refsync_core::ids::{ReferralId, SyncKey};
use refsync_emulators::entra::{DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_TENANT_ID};
use refsync_emulators::partner_center::{
    DeliveryFaultKind, DeliveryFaultRule, MicrosoftChange, PartnerCenterConfig,
    PartnerCenterEmulator, PartnerCenterServer,
};
use refsync_partner_center::test_pki::pem_file;
use std::time::Duration;
use support::{Backend, snapshot, start_service, test_store};

struct Bed {
    _store: support::TestStore,
    _root: tempfile::NamedTempFile,
    pc: PartnerCenterServer,
    service: refsync::service::Service,
    config: Config,
}

impl Bed {
    async fn start(backend: Backend) -> Option<Bed> {
        let store = test_store(backend).await?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let pc = PartnerCenterEmulator::start(PartnerCenterConfig::for_tests(), listener).unwrap();
        let root = pem_file(pc.root_ca_pem());
        let base = pc.base_url().to_owned();
        let mut config = Config::default();
        config.store.url = store.url.clone();
        config
            .webhook
            .trust_emulator(&base, root.path().into())
            .unwrap();
        config.partner_center.authority_url = base.clone();
        config.partner_center.registration_api_url = base.clone();
        config.partner_center.tenant = DEMO_TENANT_ID.to_string();
        config.partner_center.client_id = DEMO_CLIENT_ID.to_string();
        config.partner_center.client_secret = Some(Secret::new(DEMO_CLIENT_SECRET));
        let service = start_service(&config).await;
        Some(Bed {
            _store: store,
            _root: root,
            pc,
            service,
            config,
        })
    }

    fn webhook_url(&self) -> url::Url {
        url::Url::parse(&format!(
            "http://{}/webhooks/partner-center",
            self.service.local_addr()
        ))
        .unwrap()
    }

    async fn register(&self, ms_signature_header: bool) -> String {
        run_webhooks(
            &self.config,
            WebhooksCommand::Register(RegisterArgs {
                url: self.webhook_url(),
                events: Vec::new(),
                ms_signature_header,
            }),
        )
        .await
        .unwrap()
    }

    /// Every delivery attempt so far was answered 200.
    fn assert_all_deliveries_accepted(&self) {
        let log = self.pc.delivery_log();
        assert!(!log.attempts.is_empty());
        for a in &log.attempts {
            assert_eq!(a.status, Some(200), "attempt {a:?}");
        }
    }
}

fn referral_key(id: &str) -> SyncKey {
    SyncKey::Referral(ReferralId::parse(id).unwrap())
}

async fn emulator_webhooks_are_verified_stored_and_enqueued(backend: Backend, ms_header: bool) {
    let Some(bed) = Bed::start(backend).await else {
        return;
    };
    let store = bed.service.store().clone();
    let out = bed.register(ms_header).await;
    assert!(out.contains("referral-created"), "{out}");
    assert!(
        out.contains(if ms_header {
            "x-ms-signature"
        } else {
            "Authorization"
        }),
        "{out}"
    );

    let sent = bed.pc.send_generated_referrals(3);
    bed.pc.wait_for_deliveries().await;
    bed.assert_all_deliveries_accepted();
    let ids: Vec<String> = sent
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect();
    for id in &ids {
        assert!(
            store
                .queue_entry(&referral_key(id))
                .await
                .unwrap()
                .is_some(),
            "{id} not queued"
        );
    }
    assert_eq!(snapshot(&store).await.events.len(), 3);

    // Microsoft accepts one: a referral-updated event for the same key, coalesced.
    bed.pc
        .microsoft_change(&ids[0], MicrosoftChange::Accept)
        .unwrap();
    bed.pc.wait_for_deliveries().await;
    bed.assert_all_deliveries_accepted();
    let snap = snapshot(&store).await;
    assert_eq!(snap.events.len(), 4);
    let summary = store.status_summary(chrono::Utc::now()).await.unwrap();
    assert_eq!(
        summary.queue.due + summary.queue.scheduled,
        3,
        "one key per referral"
    );
}

async fn authorization_header_style(backend: Backend) {
    emulator_webhooks_are_verified_stored_and_enqueued(backend, false).await;
}

async fn x_ms_signature_header_style(backend: Backend) {
    emulator_webhooks_are_verified_stored_and_enqueued(backend, true).await;
}

async fn duplicated_deliveries_store_each_change_once(backend: Backend) {
    let Some(bed) = Bed::start(backend).await else {
        return;
    };
    let store = bed.service.store().clone();
    bed.register(true).await;
    bed.pc
        .install_delivery_fault(DeliveryFaultRule::next(DeliveryFaultKind::Duplicate, 10))
        .unwrap();
    bed.pc.send_generated_referrals(4);
    bed.pc.wait_for_deliveries().await;
    let log = bed.pc.delivery_log();
    assert!(
        log.attempts.iter().filter(|a| a.duplicate).count() >= 4,
        "{:?}",
        log.attempts
    );
    bed.assert_all_deliveries_accepted();
    assert_eq!(snapshot(&store).await.events.len(), 4);
}

async fn registration_commands_and_a_test_event(backend: Backend) {
    let Some(bed) = Bed::start(backend).await else {
        return;
    };
    let store = bed.service.store().clone();
    let shown = run_webhooks(&bed.config, WebhooksCommand::Show)
        .await
        .unwrap();
    assert!(shown.contains("no webhook is registered"), "{shown}");
    bed.register(false).await;
    let updated = run_webhooks(
        &bed.config,
        WebhooksCommand::Update(UpdateArgs {
            url: None,
            events: Vec::new(),
            ms_signature_header: Some(true),
        }),
    )
    .await
    .unwrap();
    assert!(updated.contains("x-ms-signature"), "{updated}");
    let shown = run_webhooks(&bed.config, WebhooksCommand::Show)
        .await
        .unwrap();
    assert!(shown.contains(bed.webhook_url().as_str()), "{shown}");

    let tested = run_webhooks(
        &bed.config,
        WebhooksCommand::Test(TestArgs {
            timeout: Duration::from_secs(20),
            interval: Duration::from_millis(50),
        }),
    )
    .await
    .unwrap();
    assert!(tested.contains("added test-created"), "{tested}");
    assert!(tested.contains("attempt 1: OK"), "{tested}");
    assert!(tested.contains("delivered"), "{tested}");
    // The test event was verified and stored, and enqueued nothing.
    let summary = store.status_summary(chrono::Utc::now()).await.unwrap();
    assert_eq!(summary.events_by_outcome.values().sum::<u64>(), 1);
    assert_eq!(summary.queue, Default::default());
}

backend_tests!(
    authorization_header_style,
    x_ms_signature_header_style,
    duplicated_deliveries_store_each_change_once,
    registration_commands_and_a_test_event,
);
