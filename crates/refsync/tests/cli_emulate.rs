//! `refsync emulate partner-center` as a user runs it: the real binary, a real port,
//! the root CA written where asked, and a token + Referrals API round trip over HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn emulate_partner_center_serves_tokens_referrals_and_writes_the_root_ca() {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_refsync"))
        .args(["emulate", "partner-center", "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("--ca-out")
        .arg(&ca)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let mut banner = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        banner.push_str(&line);
        banner.push('\n');
        if line.starts_with("Press Ctrl-C") {
            break;
        }
    }
    assert!(
        banner.contains(&format!("http://127.0.0.1:{port}")),
        "{banner}"
    );
    let pem = std::fs::read_to_string(&ca).unwrap();
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");

    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let token: serde_json::Value = http
        .post(format!(
            "{base}/{}/oauth2/token",
            refsync_emulators::entra::DEMO_TENANT_ID
        ))
        .form(&[
            ("grant_type", "password"),
            ("resource", "https://api.partner.microsoft.com"),
            (
                "client_id",
                &refsync_emulators::entra::DEMO_CLIENT_ID.to_string(),
            ),
            (
                "client_secret",
                refsync_emulators::entra::DEMO_CLIENT_SECRET,
            ),
            ("username", refsync_emulators::entra::DEMO_ADMIN_USER),
            ("password", refsync_emulators::entra::DEMO_USER_PASSWORD),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let bearer = token["access_token"].as_str().unwrap().to_owned();
    let created = http
        .post(format!("{base}/_emulator/partner-center/referrals"))
        .json(&serde_json::json!({ "count": 2 }))
        .send()
        .await
        .unwrap();
    assert!(created.status().is_success());
    let list: serde_json::Value = http
        .get(format!("{base}/v1.0/engagements/referrals"))
        .bearer_auth(&bearer)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["value"].as_array().unwrap().len(), 2, "{list}");

    child.kill().unwrap();
    child.wait().unwrap();
}

/// Starts `refsync emulate <what>` on a free port; returns the child and its banner.
fn start_emulator(what: &str) -> (std::process::Child, String, u16) {
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_refsync"))
        .args(["emulate", what, "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut banner = String::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        banner.push_str(&line);
        banner.push('\n');
        if line.starts_with("Press Ctrl-C") {
            break;
        }
    }
    (child, banner, port)
}

#[tokio::test]
async fn emulate_dataverse_serves_client_credentials_tokens_and_the_web_api() {
    let (mut child, banner, port) = start_emulator("dataverse");
    let base = format!("http://127.0.0.1:{port}");
    assert!(banner.contains(&base), "{banner}");
    let http = reqwest::Client::new();
    let tenant = refsync_emulators::entra::DEMO_TENANT_ID;
    let token: serde_json::Value = http
        .post(format!("{base}/{tenant}/oauth2/v2.0/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "https://contoso.crm.dynamics.com/.default"),
            (
                "client_id",
                &refsync_emulators::entra::DEMO_CLIENT_ID.to_string(),
            ),
            (
                "client_secret",
                refsync_emulators::entra::DEMO_CLIENT_SECRET,
            ),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let bearer = token["access_token"].as_str().expect("a token").to_owned();
    let unauthenticated = http
        .get(format!("{base}/api/data/v9.2/leads"))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthenticated.status(), 401);
    let leads: serde_json::Value = http
        .get(format!("{base}/api/data/v9.2/leads?$top=1"))
        .bearer_auth(&bearer)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(leads["value"].is_array(), "{leads}");
    child.kill().unwrap();
    child.wait().unwrap();
}
