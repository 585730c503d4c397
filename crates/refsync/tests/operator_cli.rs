//! The operator's commands through the real binary: each one's `--help`, and the
//! exit status — `mapping check` succeeds, a `dead-letters retry` of a key that is
//! not dead fails with the reason.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::process::Command;

fn refsync(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_refsync"))
        .args(args)
        .env_remove("REFSYNC_CONFIG")
        .output()
        .unwrap()
}

#[test]
fn every_operator_command_has_help() {
    for (args, needle) in [
        (&["sync", "--help"][..], "--timeout"),
        (&["audit", "--help"][..], "--limit"),
        (&["dead-letters", "list", "--help"][..], "--json"),
        (&["dead-letters", "retry", "--help"][..], "--all"),
        (&["reconcile", "--help"][..], "--since"),
        (&["mapping", "check", "--help"][..], "--referral"),
    ] {
        let out = refsync(args);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{args:?}: {out:?}");
        assert!(
            stdout.contains(needle),
            "{args:?}: {needle} missing from\n{stdout}"
        );
    }
    let top = refsync(&["--help"]);
    let stdout = String::from_utf8_lossy(&top.stdout);
    for command in ["sync", "audit", "dead-letters", "reconcile", "mapping"] {
        assert!(stdout.contains(command), "{command} missing from\n{stdout}");
    }
}

#[test]
fn exit_status_follows_the_outcome() {
    let out = refsync(&["mapping", "check", "--crm", "salesforce"]);
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("valid"));

    let db = refsync_store::test_harness::sqlite_url_for_test();
    let out = Command::new(env!("CARGO_BIN_EXE_refsync"))
        .args([
            "--log-format",
            "json",
            "dead-letters",
            "retry",
            "referral:never-dead",
        ])
        .env_remove("REFSYNC_CONFIG")
        .env("REFSYNC_STORE__URL", db.url())
        .output()
        .unwrap();
    assert!(!out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("referral:never-dead is not a dead letter"),
        "{out:?}"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not a dead letter"),
        "{out:?}"
    );

    // JSON on stdout is JSON alone: no log lines mixed in.
    let out = Command::new(env!("CARGO_BIN_EXE_refsync"))
        .args(["dead-letters", "list", "--json"])
        .env_remove("REFSYNC_CONFIG")
        .env_remove("RUST_LOG")
        .env("REFSYNC_STORE__URL", db.url())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed, serde_json::json!([]));
}
