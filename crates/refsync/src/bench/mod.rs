//! `refsync bench …`: the figures the README's benchmark table quotes, measured
//! end to end against the bundled emulators on loopback, with the real service.
//!
//! - [`intake`]: verified-and-durably-stored webhook events per second, and latency.
//! - [`sync`]: referrals end to end into the CRM and back: latency at an offered
//!   rate, sustained throughput, outbound calls per referral.

mod cpu;
pub mod intake;
pub mod sync;

use clap::{Args, Subcommand, ValueEnum};
use hdrhistogram::Histogram;
use std::time::Duration;

/// `refsync bench …`.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Webhook intake: events/s and p50/p99 latency at several concurrencies, per store.
    Intake(intake::IntakeArgs),
    /// Sync: referral → CRM record + write-back, latency at an offered rate, throughput, calls per referral.
    Sync(sync::SyncBenchArgs),
}

/// The store backends a benchmark can run against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BenchBackend {
    /// A SQLite file in a temporary directory (synchronous=FULL: every commit is on disk).
    Sqlite,
    /// PostgreSQL: `--postgres-url`, or a throwaway local server started for the run.
    Postgres,
}

/// Store selection shared by the benchmarks.
#[derive(Debug, Args)]
pub struct BackendArgs {
    /// Store backends to measure.
    #[arg(long = "backend", value_enum, default_values_t = [BenchBackend::Sqlite, BenchBackend::Postgres])]
    pub backends: Vec<BenchBackend>,
    /// An existing PostgreSQL server to create the benchmark database on (default: start
    /// a throwaway one; needs the PostgreSQL binaries).
    #[arg(long, env = "REFSYNC_BENCH_POSTGRES_URL")]
    pub postgres_url: Option<String>,
}

/// Runs a benchmark and prints its report.
pub async fn run_bench(command: BenchCommand) -> anyhow::Result<()> {
    match command {
        BenchCommand::Intake(args) => intake::run(args).await,
        BenchCommand::Sync(args) => sync::run(args).await,
    }
}

/// A latency histogram in microseconds (1 µs to 60 s, 3 significant figures).
pub(crate) fn latency_histogram() -> anyhow::Result<Histogram<u64>> {
    Ok(Histogram::new_with_bounds(1, 60_000_000, 3)?)
}

/// A microsecond figure as milliseconds with one decimal.
pub(crate) fn ms(micros: u64) -> String {
    format!(
        "{:.1} ms",
        Duration::from_micros(micros).as_secs_f64() * 1000.0
    )
}
