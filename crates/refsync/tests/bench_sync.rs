//! `refsync bench sync` on a small load: the backlog is held and released whole,
//! every referral is linked, the calls per referral are the documented ones, and
//! the CPU time is split between refsync and the emulators. Figures are not
//! asserted on (the machine decides them); what they count is.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use refsync::bench::sync::{SyncBenchArgs, figures_table, measure};
use refsync::config::CrmKind;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_run_counts_what_it_claims() {
    let args = SyncBenchArgs {
        crm: CrmKind::Dynamics,
        rate: 20,
        duration: Duration::from_millis(500),
        burst: 40,
        store: None,
    };
    let figures = measure(&args).await.unwrap();
    let table = figures_table(&figures);
    assert_eq!(figures.offered, 10, "{table}");
    assert_eq!(figures.burst, 40, "{table}");
    assert!(figures.sustained_per_second > 0.0, "{table}");
    assert!(figures.offered_p50_us <= figures.offered_p99_us, "{table}");

    // GET + upsert + PATCH, and the GET for the write-back's own webhook.
    let new = &figures.calls_per_new_referral;
    assert!(
        (new["partner-center-referrals"] - 3.0).abs() < 0.2,
        "{table}"
    );
    assert!((new["dataverse"] - 1.0).abs() < 0.2, "{table}");
    let unchanged: f64 = figures.calls_per_unchanged_webhook.values().sum();
    assert!((unchanged - 1.0).abs() < 0.2, "{table}");

    let cpu = figures.cpu_per_referral;
    assert!(cpu.total > Duration::ZERO, "{table}");
    if cfg!(target_os = "linux") {
        let (emulators, refsync) = (cpu.emulators.unwrap(), cpu.refsync.unwrap());
        // Both sides did work on their own threads: webhooks signed, referrals synced.
        assert!(emulators > Duration::ZERO, "{table}");
        assert!(refsync > Duration::ZERO, "{table}");
        assert!(table.contains("of which the emulators"), "{table}");
    }
}
