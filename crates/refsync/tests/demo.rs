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

/// A revoked refresh token shows at `/readyz` (which stays 200: webhooks are still
/// taken and queued) once the engine next needs a Partner Center token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_reports_a_revoked_sign_in_without_refusing_traffic() {
    let demo = Demo::start(&DemoArgs::new(CrmKind::Dynamics, 6))
        .await
        .unwrap();
    let readyz = format!("http://{}/readyz", demo.service.local_addr());
    let ready: serde_json::Value = reqwest::get(&readyz).await.unwrap().json().await.unwrap();
    assert_eq!(ready["ready"], true, "{ready}");
    assert_eq!(ready["login_required"], false, "{ready}");

    let user = refsync_emulators::entra::DEMO_ADMIN_USER;
    demo.pc.authority().revoke_refresh_tokens(user);
    demo.pc.authority().expire_access_tokens();
    demo.pc.send_generated_referrals(1);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let response = reqwest::get(&readyz).await.unwrap();
        assert_eq!(response.status(), 200);
        let body: serde_json::Value = response.json().await.unwrap();
        if body["login_required"] == true {
            assert_eq!(body["partner_center_sign_in"]["state"], "login_required");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never reported: {body}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    demo.shutdown().await;
}
