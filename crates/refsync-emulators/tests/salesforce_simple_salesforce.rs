//! A real client nobody here wrote: the Python library simple-salesforce must
//! create, upsert, query (with paging) and update against the emulator unchanged.
//!
//! Needs a Python with simple-salesforce in `REFSYNC_TEST_PYTHON`:
//!
//! ```sh
//! python3 -m venv .venv && .venv/bin/pip install simple-salesforce
//! REFSYNC_TEST_PYTHON=$PWD/.venv/bin/python cargo test -p refsync-emulators --test salesforce_simple_salesforce
//! ```
//!
//! Without it the test fails with these instructions, unless `REFSYNC_SKIP_PYTHON=1`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use refsync_emulators::salesforce::config::{
    DEMO_CONSUMER_KEY, DEMO_CONSUMER_SECRET, SalesforceConfig,
};
use refsync_emulators::salesforce::{Clock, SalesforceEmulator};
use std::path::PathBuf;
use std::time::Duration;

const PAGE_SIZE: usize = 25;

#[tokio::test]
async fn simple_salesforce_works_against_the_emulator_unchanged() {
    let Some(python) = std::env::var_os("REFSYNC_TEST_PYTHON") else {
        if std::env::var("REFSYNC_SKIP_PYTHON").as_deref() == Ok("1") {
            eprintln!("skipped: REFSYNC_SKIP_PYTHON=1");
            return;
        }
        panic!(
            "REFSYNC_TEST_PYTHON is not set. This test runs simple-salesforce against the emulator:\n  \
             python3 -m venv .venv && .venv/bin/pip install simple-salesforce\n  \
             export REFSYNC_TEST_PYTHON=$PWD/.venv/bin/python\n\
             or set REFSYNC_SKIP_PYTHON=1 to skip it."
        );
    };

    let mut config = SalesforceConfig::default();
    config.query.default_batch_size = PAGE_SIZE;
    // The script compares against wall-clock time (getUpdated windows), so this
    // emulator runs on the system clock.
    let emulator = SalesforceEmulator::new(config, Clock::System).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let handle = emulator.serve(listener).unwrap();
    let base = handle.url("").trim_end_matches('/').to_owned();

    let script: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "tests",
        "python",
        "simple_salesforce_check.py",
    ]
    .iter()
    .collect();
    let run = tokio::process::Command::new(&python)
        .arg(&script)
        .env("SF_EMULATOR_URL", &base)
        .env("SF_CONSUMER_KEY", DEMO_CONSUMER_KEY)
        .env("SF_CONSUMER_SECRET", DEMO_CONSUMER_SECRET)
        .env("SF_EXPECTED_PAGE_SIZE", PAGE_SIZE.to_string())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("the Python check did not finish within 120 s")
        .unwrap_or_else(|e| panic!("could not run {python:?}: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "simple-salesforce check failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        output.status
    );

    // Cross-check from the emulator's side that the library really wrote here.
    let summary: serde_json::Value =
        serde_json::from_str(stdout.lines().last().unwrap_or("")).unwrap();
    assert_eq!(summary["ok"], true);
    assert_eq!(summary["paged_rows"], PAGE_SIZE * 2 + 5);
    let opportunities = emulator.records("Opportunity", false).unwrap();
    assert_eq!(opportunities.len(), 1);
    assert_eq!(opportunities[0]["Id"], summary["opportunity"]);
    assert_eq!(opportunities[0]["StageName"], "Qualification");
    let deleted = emulator.records("Lead", true).unwrap();
    assert_eq!(deleted[0]["IsDeleted"], true);
    assert_eq!(
        emulator.records("Account", false).unwrap().len(),
        PAGE_SIZE * 2 + 5
    );
    assert!(emulator.api_usage().0 > 10);
}
