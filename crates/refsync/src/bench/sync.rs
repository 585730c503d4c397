//! `refsync bench sync`: referrals end to end through the real service (signed
//! webhook → verify → queue → worker → GET referral → CRM upsert → PATCH
//! write-back → link saved), on the loopback emulators the demo runs.
//!
//! The sustained figure is a backlog: the burst's referrals are created first with
//! their webhooks held, then every webhook is released at once.
//!
//! Latency is from Microsoft creating the referral to refsync's link being saved,
//! which happens after both the CRM write and the write-back; it is computed from
//! the store's own timestamp, so the measuring never polls the service under load.
//! Outbound calls are counted by refsync's own `refsync_outbound_requests_total`.

use super::cpu::{CpuSpent, CpuUse};
use super::{latency_histogram, ms};
use crate::config::CrmKind;
use crate::demo::{Demo, DemoArgs};
use crate::server::metrics_handle;
use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use clap::Args;
use comfy_table::Table;
use refsync_core::ReferralId;
use refsync_emulators::partner_center::{DeliveryFaultKind, DeliveryFaultRule, SignatureHeader};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// `refsync bench sync`.
#[derive(Debug, Args)]
pub struct SyncBenchArgs {
    /// The CRM.
    #[arg(long, value_enum, default_value_t = CrmKind::Dynamics)]
    pub crm: CrmKind,
    /// Offered load: new referrals per second.
    #[arg(long, default_value_t = 100)]
    pub rate: u32,
    /// How long the offered load lasts.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Referrals sent at once for the sustained-throughput figure.
    #[arg(long, default_value_t = 2000)]
    pub burst: usize,
    /// Store URL (default: SQLite in a temporary directory).
    #[arg(long)]
    pub store: Option<String>,
}

/// The figures.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncFigures {
    /// The CRM measured.
    pub crm: CrmKind,
    /// Offered referrals per second.
    pub offered_rate: u32,
    /// Referrals sent at that rate.
    pub offered: usize,
    /// p50 / p99 latency at the offered rate (µs).
    pub offered_p50_us: u64,
    /// p99.
    pub offered_p99_us: u64,
    /// Referrals in the burst.
    pub burst: usize,
    /// Referrals per second through the burst, webhooks released to last linked.
    pub sustained_per_second: f64,
    /// CPU time per referral of the burst, every thread of the process: refsync and
    /// the emulators together, so `cores / total` bounds the sustained rate.
    pub cpu_per_referral: CpuSpent,
    /// Outbound calls per new referral, by API, its own write-back's webhook included.
    pub calls_per_new_referral: BTreeMap<String, f64>,
    /// Outbound calls per webhook whose referral did not change, by API.
    pub calls_per_unchanged_webhook: BTreeMap<String, f64>,
}

/// Runs the benchmark and prints the table.
pub async fn run(args: SyncBenchArgs) -> anyhow::Result<()> {
    let figures = measure(&args).await?;
    println!("{}", figures_table(&figures));
    Ok(())
}

/// Starts the demo's stack with the CRM's limits lifted and measures.
pub async fn measure(args: &SyncBenchArgs) -> anyhow::Result<SyncFigures> {
    let mut demo_args = DemoArgs::new(args.crm, 0);
    demo_args.store = args.store.clone();
    demo_args.lift_crm_limits = true;
    demo_args.step_timeout = Duration::from_secs(120);
    let demo = Demo::start(&demo_args).await?;
    let result = measure_on(&demo, args).await;
    demo.shutdown().await;
    result
}

async fn measure_on(demo: &Demo, args: &SyncBenchArgs) -> anyhow::Result<SyncFigures> {
    // Warm-up: tokens, currency lookups, certificate cache, SQLite pages.
    let warm = send(demo, 20);
    wait_linked(demo, &warm).await?;
    wait_idle(demo).await?;

    eprintln!("sync: {} referrals/s for {:?} …", args.rate, args.duration);
    let offered = offer_at_rate(demo, args.rate, args.duration).await?;
    let offered_latency = latencies(demo, &offered).await?;
    wait_idle(demo).await?;

    eprintln!("sync: {} referrals at once …", args.burst);
    let burst = send_backlog(demo, args.burst)?;
    let before = outbound_calls();
    let cpu = CpuUse::now();
    let sent_at = Utc::now();
    let released = demo.pc.release_held_deliveries();
    if released != args.burst {
        bail!(
            "{released} webhooks were held for a burst of {}",
            args.burst
        );
    }
    // Watch only the queue while the burst runs, so the watching costs next to
    // nothing; the links are read once it is over.
    wait_settled(demo).await?;
    let cpu_spent = cpu.spent_until(&CpuUse::now());
    let after = outbound_calls();
    let done = wait_linked(demo, &burst).await?;
    let last = done.values().max().copied().unwrap_or(sent_at);
    let seconds = (last - sent_at).num_microseconds().unwrap_or(1).max(1) as f64 / 1e6;
    let calls_per_new_referral = per_item(&before, &after, args.burst);

    eprintln!("sync: webhooks for unchanged referrals …");
    let unchanged: Vec<ReferralId> = burst.iter().take(200).map(|(id, _)| id.clone()).collect();
    let before = outbound_calls();
    post_unchanged_webhooks(demo, &unchanged).await?;
    wait_idle(demo).await?;
    let after = outbound_calls();
    let calls_per_unchanged_webhook = per_item(&before, &after, unchanged.len());

    Ok(SyncFigures {
        crm: args.crm,
        offered_rate: args.rate,
        offered: offered.len(),
        offered_p50_us: offered_latency.value_at_quantile(0.50),
        offered_p99_us: offered_latency.value_at_quantile(0.99),
        burst: args.burst,
        sustained_per_second: args.burst as f64 / seconds,
        cpu_per_referral: per_referral(cpu_spent, args.burst),
        calls_per_new_referral,
        calls_per_unchanged_webhook,
    })
}

type Sent = Vec<(ReferralId, DateTime<Utc>)>;

/// Microsoft sends `n` referrals now.
fn send(demo: &Demo, n: usize) -> Sent {
    let at = Utc::now();
    demo.pc
        .send_generated_referrals(n)
        .iter()
        .filter_map(|r| r["id"].as_str().and_then(|id| ReferralId::parse(id).ok()))
        .map(|id| (id, at))
        .collect()
}

/// Microsoft creates `n` referrals while their webhooks wait in its delivery
/// queue, so the burst that follows is webhooks only, as after an outage of the
/// endpoint. Creating referrals is Partner Center's work, not refsync's, and is
/// kept out of the measured window; signing and delivering the webhooks is not.
fn send_backlog(demo: &Demo, n: usize) -> anyhow::Result<Sent> {
    let mut hold = DeliveryFaultRule::next(DeliveryFaultKind::Hold, n as u64);
    hold.event_name = Some("referral-created".to_owned());
    demo.pc.install_delivery_fault(hold)?;
    let sent = send(demo, n);
    demo.pc.clear_delivery_faults();
    Ok(sent)
}

/// One new referral every `1 / rate` s for `duration`, on a fixed schedule.
async fn offer_at_rate(demo: &Demo, rate: u32, duration: Duration) -> anyhow::Result<Sent> {
    let mut ticks = tokio::time::interval(Duration::from_secs(1) / rate.max(1));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let total = (duration.as_secs_f64() * f64::from(rate)).round() as usize;
    let mut sent = Vec::with_capacity(total);
    for _ in 0..total {
        ticks.tick().await;
        sent.extend(send(demo, 1));
    }
    Ok(sent)
}

/// Waits until every referral is linked; returns when each link was saved.
///
/// The figures come from the store's own timestamps, not from when this loop
/// notices, so it looks as little as it can: referrals finish roughly in the order
/// sent, so each look walks forward from the first one not yet linked and stops
/// at the next one missing; the times are read in one pass at the end.
async fn wait_linked(
    demo: &Demo,
    sent: &Sent,
) -> anyhow::Result<BTreeMap<ReferralId, DateTime<Utc>>> {
    let store = demo.service.store();
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut first_missing = 0;
    while first_missing < sent.len() {
        let (id, _) = &sent[first_missing];
        let linked = store
            .link_by_referral(id)
            .await?
            .is_some_and(|l| l.crm_record.is_some());
        if linked {
            first_missing += 1;
            continue;
        }
        if Instant::now() > deadline {
            bail!(
                "{first_missing} of {} referrals synced within 300 s",
                sent.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut done = BTreeMap::new();
    for (id, _) in sent {
        let link = store
            .link_by_referral(id)
            .await?
            .with_context(|| format!("{id} was linked a moment ago"))?;
        done.insert(id.clone(), link.created_at);
    }
    Ok(done)
}

async fn latencies(demo: &Demo, sent: &Sent) -> anyhow::Result<hdrhistogram::Histogram<u64>> {
    let done = wait_linked(demo, sent).await?;
    let mut histogram = latency_histogram()?;
    for (id, at) in sent {
        let linked = done.get(id).context("linked")?;
        let micros = (*linked - *at).num_microseconds().unwrap_or(0).max(1) as u64;
        histogram.record(micros)?;
    }
    Ok(histogram)
}

/// Waits until every webhook the emulator raised (the burst's and the echoes of
/// refsync's own write-backs) is delivered and nothing is queued or being worked.
async fn wait_settled(demo: &Demo) -> anyhow::Result<()> {
    loop {
        demo.pc.wait_for_deliveries().await;
        wait_idle(demo).await?;
        if demo.pc.deliveries_pending() == 0 {
            return Ok(());
        }
    }
}

/// Waits until nothing is queued or being worked.
async fn wait_idle(demo: &Demo) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let q = demo.service.store().status_summary(Utc::now()).await?.queue;
        if q.pending() == 0 {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the queue did not drain within 300 s: {q:?}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Genuine, signed `referral-updated` webhooks for referrals that did not change
/// (a redelivery with a new change time), posted straight to refsync.
async fn post_unchanged_webhooks(demo: &Demo, ids: &[ReferralId]) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let url = format!(
        "http://{}{}",
        demo.service.local_addr(),
        demo.config.webhook.path
    );
    let base = Utc::now();
    for (i, id) in ids.iter().enumerate() {
        let at = base + chrono::Duration::milliseconds(i as i64);
        let event = demo.pc.signed_event(
            "referral-updated",
            id.as_str(),
            at,
            SignatureHeader::Authorization,
        )?;
        let mut request = http.post(&url).body(event.body);
        for (name, value) in event.headers {
            request = request.header(name, value);
        }
        let status = request.send().await?.status();
        if !status.is_success() {
            bail!("the webhook for {id} was answered {status}");
        }
    }
    Ok(())
}

/// `refsync_outbound_requests_total` summed per `api` label.
fn outbound_calls() -> BTreeMap<String, f64> {
    let mut calls = BTreeMap::new();
    let Some(handle) = metrics_handle() else {
        return calls;
    };
    for line in handle.render().lines() {
        let Some(rest) = line.strip_prefix(refsync_outbound::call::REQUESTS_TOTAL) else {
            continue;
        };
        let Some(api) = rest
            .split("api=\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
        else {
            continue;
        };
        let value: f64 = rest
            .rsplit(' ')
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        *calls.entry(api.to_owned()).or_default() += value;
    }
    calls
}

fn per_item(
    before: &BTreeMap<String, f64>,
    after: &BTreeMap<String, f64>,
    items: usize,
) -> BTreeMap<String, f64> {
    after
        .iter()
        .map(|(api, n)| {
            let delta = n - before.get(api).copied().unwrap_or(0.0);
            (api.clone(), delta / items.max(1) as f64)
        })
        .filter(|(_, per)| *per > 0.0)
        .collect()
}

/// `spent` over the burst, per referral.
fn per_referral(spent: CpuSpent, n: usize) -> CpuSpent {
    let n = u32::try_from(n.max(1)).unwrap_or(u32::MAX);
    CpuSpent {
        total: spent.total / n,
        emulators: spent.emulators.map(|d| d / n),
        refsync: spent.refsync.map(|d| d / n),
    }
}

fn ms_of(d: Duration) -> String {
    ms(u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

fn calls_text(calls: &BTreeMap<String, f64>) -> String {
    let total: f64 = calls.values().sum();
    let parts: Vec<String> = calls
        .iter()
        .map(|(api, n)| format!("{api} {n:.2}"))
        .collect();
    format!("{total:.2} ({})", parts.join(", "))
}

/// The table the README quotes.
pub fn figures_table(f: &SyncFigures) -> String {
    let mut table = Table::new();
    table.set_header(["sync, ".to_owned() + &f.crm.to_string(), "value".to_owned()]);
    table.add_row([
        format!(
            "{} referrals/s offered ({} referrals): p50",
            f.offered_rate, f.offered
        ),
        ms(f.offered_p50_us),
    ]);
    table.add_row([
        format!("{} referrals/s offered: p99", f.offered_rate),
        ms(f.offered_p99_us),
    ]);
    table.add_row([
        format!("sustained ({} at once)", f.burst),
        format!("{:.0} referrals/s", f.sustained_per_second),
    ]);
    let cpu = &f.cpu_per_referral;
    table.add_row([
        "CPU per referral in the burst: all threads (refsync + emulators)".to_owned(),
        ms_of(cpu.total),
    ]);
    if let (Some(refsync), Some(emulators)) = (cpu.refsync, cpu.emulators) {
        table.add_row([
            "  of which the emulators (Microsoft's and the CRM's side)".to_owned(),
            ms_of(emulators),
        ]);
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        table.add_row([
            format!("  of which refsync ({cores} cores ÷ this)"),
            format!(
                "{} ({:.0} referrals/s)",
                ms_of(refsync),
                cores as f64 / refsync.as_secs_f64().max(1e-9)
            ),
        ]);
    }
    table.add_row([
        "outbound calls per new referral → lead (incl. its write-back's own webhook)".to_owned(),
        calls_text(&f.calls_per_new_referral),
    ]);
    table.add_row([
        "outbound calls per webhook of an unchanged referral".to_owned(),
        calls_text(&f.calls_per_unchanged_webhook),
    ]);
    table.to_string()
}
