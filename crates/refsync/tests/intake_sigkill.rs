//! SIGKILL at any moment never loses an acknowledged webhook: the real `refsync
//! serve` binary receives a stream of concurrent signed webhooks and is killed
//! mid-stream, several times over the same store; afterwards every event that was
//! answered 200 is in the store. Runs on SQLite and PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use chrono::{Duration as ChronoDuration, Utc};
use refsync::config::Config;
use refsync_emulators::partner_center::{
    PartnerCenterConfig, PartnerCenterEmulator, PartnerCenterServer, SignatureHeader,
};
use refsync_partner_center::test_pki::pem_file;
use refsync_store::{EventFilter, open_store};
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::{Backend, test_store};

const ROUNDS: usize = 3;
const EVENTS_PER_ROUND: usize = 400;
const SENDERS: usize = 16;

/// A `refsync serve` child process and the address it reported.
struct Served {
    child: Child,
    addr: String,
}

impl Served {
    /// Starts the binary and waits for its "refsync serving" log line.
    fn start(config_path: &std::path::Path) -> Served {
        let mut child = Command::new(env!("CARGO_BIN_EXE_refsync"))
            .args(["--log-format", "json", "serve", "--config"])
            .arg(config_path)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Logs may go to either stream; read both until the address shows up.
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        for stream in [
            Box::new(stdout) as Box<dyn std::io::Read + Send>,
            Box::new(stderr),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    let _ = tx.send(line);
                }
            });
        }
        // From here on the guard kills the child, even if the address never comes.
        let mut served = Served {
            child,
            addr: String::new(),
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while served.addr.is_empty() {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let line = rx
                .recv_timeout(left)
                .expect("refsync serve did not report its address");
            let Ok(json) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            if let Some(addr) = json.get("local_addr").and_then(|v| v.as_str()) {
                served.addr = addr.to_owned();
            }
        }
        served
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The configuration file: the test's store, trusting exactly the emulator.
fn write_config(
    dir: &std::path::Path,
    store_url: &str,
    pc: &PartnerCenterServer,
) -> std::path::PathBuf {
    let root = pem_file(pc.root_ca_pem()).into_temp_path();
    let root_path = dir.join("emulator-root.pem");
    std::fs::copy(&root, &root_path).unwrap();
    let base = pc.base_url();
    let mut config = Config::default();
    config.server.listen = "127.0.0.1:0".parse().unwrap();
    config.store.url = store_url.to_owned();
    config.webhook.trust_emulator(base, root_path).unwrap();
    let path = dir.join("refsync.toml");
    std::fs::write(&path, toml::to_string(&config).unwrap()).unwrap();
    path
}

/// How many acknowledgements to wait for before the kill: different in every round
/// and run, and always mid-stream (some acknowledged, some still to send).
fn kill_after_acknowledgements(round: usize) -> usize {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as usize;
    10 + (nanos + round * 97) % (EVENTS_PER_ROUND / 2)
}

async fn acknowledged_events_survive_sigkill(backend: Backend) {
    let Some(store) = test_store(backend).await else {
        return;
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let pc = PartnerCenterEmulator::start(PartnerCenterConfig::for_tests(), listener).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config_path = write_config(dir.path(), &store.url, &pc);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let acknowledged: Arc<Mutex<BTreeSet<String>>> = Arc::default();
    let mut attempted = 0;

    for round in 0..ROUNDS {
        let served = Served::start(&config_path);
        let url = format!("http://{}/webhooks/partner-center", served.addr);
        let base = Utc::now();
        let events: Vec<_> = (0..EVENTS_PER_ROUND)
            .map(|i| {
                let id = format!("kill-{round}-{i}");
                let header = if i % 2 == 0 {
                    SignatureHeader::Authorization
                } else {
                    SignatureHeader::MsSignature
                };
                let at = base + ChronoDuration::milliseconds(i as i64);
                (
                    id.clone(),
                    pc.signed_event("referral-updated", &id, at, header)
                        .unwrap(),
                )
            })
            .collect();
        attempted += events.len();
        let queue = Arc::new(Mutex::new(events));
        let mut senders = tokio::task::JoinSet::new();
        for _ in 0..SENDERS {
            let (queue, http, url, acknowledged) = (
                queue.clone(),
                http.clone(),
                url.clone(),
                acknowledged.clone(),
            );
            senders.spawn(async move {
                loop {
                    let Some((id, event)) = queue.lock().unwrap().pop() else {
                        return;
                    };
                    let mut request = http.post(&url).body(event.body);
                    for (name, value) in event.headers {
                        request = request.header(name, value);
                    }
                    // Anything but a 200 (refused connection, reset, timeout) means
                    // "not acknowledged": Partner Center would deliver it again.
                    if let Ok(response) = request.send().await
                        && response.status() == 200
                    {
                        acknowledged.lock().unwrap().insert(id);
                    }
                }
            });
        }
        let target = acknowledged.lock().unwrap().len() + kill_after_acknowledgements(round);
        while acknowledged.lock().unwrap().len() < target {
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        let mut served = served;
        served.child.kill().unwrap(); // SIGKILL on Unix
        served.child.wait().unwrap();
        while senders.join_next().await.is_some() {}
    }

    let acknowledged = acknowledged.lock().unwrap().clone();
    eprintln!(
        "{backend:?}: {} of {attempted} events acknowledged across {ROUNDS} kills",
        acknowledged.len()
    );
    assert!(
        acknowledged.len() < attempted,
        "every event was acknowledged: no kill landed mid-stream"
    );
    assert!(
        !acknowledged.is_empty(),
        "no event was acknowledged before the kills; the test proved nothing"
    );
    let store = open_store(&store.url).await.unwrap();
    let stored: BTreeSet<String> = store
        .list_events(&EventFilter::default(), (attempted + 10) as u32)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|e| e.referral_id.map(|r| r.to_string()))
        .collect();
    let lost: Vec<_> = acknowledged.difference(&stored).collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged events lost after SIGKILL: {lost:?}",
        lost.len(),
        acknowledged.len()
    );
    pc.shutdown().await.unwrap();
}

backend_tests!(acknowledged_events_survive_sigkill);
