//! `refsync bench intake`: how many genuine, signed Partner Center webhooks the real
//! endpoint verifies and commits durably per second, and how long each waits for
//! its 200, at concurrency 1, 16 and 64.
//!
//! The Partner Center emulator serves the signing certificate exactly as Microsoft
//! does (the verifier fetches and caches it); events are signed by the emulator's
//! own chain before the clock starts, so signing is not what is measured. After each
//! run the store is checked: every acknowledged event must be in it.

use super::{BackendArgs, BenchBackend, latency_histogram, ms};
use crate::config::Config;
use crate::service::Service;
use anyhow::{Context, bail, ensure};
use chrono::{Duration as ChronoDuration, Utc};
use clap::Args;
use comfy_table::Table;
use refsync_emulators::partner_center::{
    PartnerCenterConfig, PartnerCenterEmulator, PartnerCenterServer, SignatureHeader,
};
use std::io::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// `refsync bench intake`.
#[derive(Debug, Args)]
pub struct IntakeArgs {
    /// Concurrent senders to measure at.
    #[arg(long = "concurrency", value_delimiter = ',', default_values_t = [1, 16, 64])]
    pub concurrency: Vec<usize>,
    /// Events sent at each concurrency (more for higher concurrency gives steadier figures).
    #[arg(long, default_value_t = 4000)]
    pub events: usize,
    /// Store backends.
    #[command(flatten)]
    pub backends: BackendArgs,
}

/// One measured run.
#[derive(Debug, Clone)]
pub struct IntakeFigures {
    /// Store backend.
    pub backend: BenchBackend,
    /// Concurrent senders.
    pub concurrency: usize,
    /// Events acknowledged.
    pub events: usize,
    /// Acknowledged events per second.
    pub per_second: f64,
    /// Median latency, µs.
    pub p50_us: u64,
    /// 99th percentile latency, µs.
    pub p99_us: u64,
}

pub(super) async fn run(args: IntakeArgs) -> anyhow::Result<()> {
    ensure!(args.events > 0, "--events must be positive");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let pc = PartnerCenterEmulator::start(PartnerCenterConfig::default(), listener)
        .context("starting the Partner Center emulator")?;
    let root = tempfile::NamedTempFile::new()?;
    std::fs::write(root.path(), pc.root_ca_pem())?;
    let mut all = Vec::new();
    let mut round = 0usize;
    for backend in &args.backends.backends {
        for &concurrency in &args.concurrency {
            round += 1;
            eprint!(
                "intake: {backend:?} at concurrency {concurrency}: signing {} events … ",
                args.events
            );
            std::io::stderr().flush().ok();
            let bodies = sign_events(&pc, round, args.events).await?;
            eprint!("sending … ");
            let figures = measure(
                &pc,
                root.path(),
                *backend,
                &args.backends,
                concurrency,
                bodies,
            )
            .await?;
            eprintln!("{:.0} events/s", figures.per_second);
            all.push(figures);
        }
    }
    println!("{}", figures_table(&all));
    pc.shutdown().await?;
    Ok(())
}

/// The table the README quotes.
pub fn figures_table(figures: &[IntakeFigures]) -> String {
    let mut table = Table::new();
    table.set_header(["store", "concurrency", "events", "events/s", "p50", "p99"]);
    for f in figures {
        table.add_row([
            format!("{:?}", f.backend).to_lowercase(),
            f.concurrency.to_string(),
            f.events.to_string(),
            format!("{:.0}", f.per_second),
            ms(f.p50_us),
            ms(f.p99_us),
        ]);
    }
    table.to_string()
}

type Signed = (Vec<(String, String)>, Vec<u8>);

/// Distinct events (each its own referral and change time, so none is a duplicate),
/// signed by the emulator on all cores before the clock starts.
async fn sign_events(
    pc: &PartnerCenterServer,
    round: usize,
    n: usize,
) -> anyhow::Result<Vec<Signed>> {
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    let base = Utc::now();
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..workers {
        let emulator = (**pc).clone();
        tasks.spawn_blocking(move || -> anyhow::Result<Vec<Signed>> {
            (w..n)
                .step_by(workers)
                .map(|i| {
                    let id = format!("bench-{round}-{i}");
                    let header = if i % 2 == 0 {
                        SignatureHeader::Authorization
                    } else {
                        SignatureHeader::MsSignature
                    };
                    let at = base + ChronoDuration::milliseconds(i as i64);
                    let e = emulator.signed_event("referral-updated", &id, at, header)?;
                    Ok((e.headers, e.body))
                })
                .collect()
        });
    }
    let mut out = Vec::with_capacity(n);
    while let Some(part) = tasks.join_next().await {
        out.extend(part??);
    }
    Ok(out)
}

async fn measure(
    pc: &PartnerCenterServer,
    root: &std::path::Path,
    backend: BenchBackend,
    backends: &BackendArgs,
    concurrency: usize,
    events: Vec<Signed>,
) -> anyhow::Result<IntakeFigures> {
    let (store_url, _guard) = bench_store(backend, backends).await?;
    let mut config = Config::default();
    config.store.url = store_url;
    let base = pc.base_url();
    config.webhook.trust_emulator(base, root.to_path_buf())?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let service = Service::start(&config, listener).await?;
    let url = format!("http://{}{}", service.local_addr(), config.webhook.path);
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .timeout(Duration::from_secs(30))
        .build()?;

    // One warm-up request fetches and caches the certificate, as in steady state.
    let warm = pc.signed_event(
        "referral-updated",
        "bench-warm-up",
        Utc::now(),
        SignatureHeader::Authorization,
    )?;
    send(&http, &url, &(warm.headers, warm.body)).await?;

    let total = events.len();
    let queue = Arc::new(Mutex::new(events));
    let started = Instant::now();
    let mut senders = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let queue = Arc::clone(&queue);
        let http = http.clone();
        let url = url.clone();
        senders.spawn(async move {
            let mut latencies = latency_histogram()?;
            loop {
                let Some(event) = queue.lock().await.pop() else {
                    break;
                };
                let sent = Instant::now();
                send(&http, &url, &event).await?;
                latencies.record(sent.elapsed().as_micros().max(1) as u64)?;
            }
            anyhow::Ok(latencies)
        });
    }
    let mut latencies = latency_histogram()?;
    while let Some(part) = senders.join_next().await {
        latencies.add(part??)?;
    }
    let elapsed = started.elapsed();

    // Every acknowledged event must be in the store (plus the warm-up).
    let stored: u64 = service
        .store()
        .count_events_by_outcome()
        .await?
        .values()
        .sum();
    ensure!(
        stored == total as u64 + 1,
        "{stored} events stored, {} acknowledged",
        total + 1
    );
    service.shutdown().await;
    Ok(IntakeFigures {
        backend,
        concurrency,
        events: total,
        per_second: total as f64 / elapsed.as_secs_f64(),
        p50_us: latencies.value_at_quantile(0.50),
        p99_us: latencies.value_at_quantile(0.99),
    })
}

async fn send(http: &reqwest::Client, url: &str, (headers, body): &Signed) -> anyhow::Result<()> {
    let mut request = http.post(url).body(body.clone());
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let response = request.send().await?;
    if response.status() != reqwest::StatusCode::OK {
        bail!(
            "the endpoint answered {}: {}",
            response.status(),
            response.text().await.unwrap_or_default()
        );
    }
    Ok(())
}

/// A fresh store for one run, and whatever keeps it alive.
pub(crate) async fn bench_store(
    backend: BenchBackend,
    args: &BackendArgs,
) -> anyhow::Result<(String, Option<refsync_store::test_harness::TestSqlite>)> {
    match backend {
        BenchBackend::Sqlite => {
            let guard = refsync_store::test_harness::sqlite_url_for_test();
            Ok((guard.url().to_owned(), Some(guard)))
        }
        BenchBackend::Postgres => {
            if let Some(url) = &args.postgres_url {
                return Ok((url.clone(), None));
            }
            let url = refsync_store::test_harness::postgres_url_for_test()
                .await
                .context("REFSYNC_SKIP_POSTGRES=1 is set; pass --backend sqlite instead")?;
            Ok((url, None))
        }
    }
}
