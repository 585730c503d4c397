//! `refsync demo` end to end, per CRM and per store: the real service (verified
//! webhooks, engine, poller) against the emulators, every scenario step converging,
//! and the summary counting both sides: one CRM record per referral, nothing
//! dead-lettered, the accepted ones as opportunities, CRM edits written back.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use refsync::config::CrmKind;
use refsync::demo::{Demo, DemoArgs};
use support::{Backend, test_store};

async fn demo_converges(crm: CrmKind, backend: Backend) {
    let Some(store) = test_store(backend).await else {
        return;
    };
    // The smallest scenario the demo runs: every step has its cases, none spare.
    let mut args = DemoArgs::new(crm, 6);
    args.store = Some(store.url.clone());
    let demo = Demo::start(&args).await.unwrap();
    let report = demo.run_scenario(6).await.unwrap();
    demo.shutdown().await;

    assert_eq!(report.unlinked, 0, "{}", report.render());
    assert_eq!(report.dead_letters, 0, "{}", report.render());
    assert_eq!(report.arrival.len(), 6);
    let count = |entity: &str| -> usize {
        report
            .crm_records_by_state
            .iter()
            .filter(|((e, _), _)| e == entity)
            .map(|(_, n)| n)
            .sum()
    };
    // 2 accepted → opportunities; the others stay leads; one record per referral.
    assert_eq!(count("opportunity"), 2, "{}", report.render());
    assert_eq!(count("lead"), 4, "{}", report.render());
    assert_eq!(report.referrals_by_status.get("Closed/Won"), Some(&2));
    assert!(
        report.audit_by_kind["wrote_back"] >= 9,
        "{}",
        report.render()
    );
    assert!(report.duplicate_deliveries > 0, "the demo shows duplicates");
}

async fn dynamics(backend: Backend) {
    demo_converges(CrmKind::Dynamics, backend).await;
}

async fn salesforce(backend: Backend) {
    demo_converges(CrmKind::Salesforce, backend).await;
}

backend_tests!(dynamics, salesforce);
