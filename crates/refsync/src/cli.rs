//! The command tree. Each subcommand's handler lives with the feature it drives;
//! this module only describes the commands and hands parsed arguments over.

use crate::bench::BenchCommand;
use crate::emulate::EmulateCommand;
use crate::operator::OperatorCommand;
use crate::telemetry::LogFormat;
use crate::webhooks::WebhooksCommand;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// Keep Microsoft Partner Center co-sell referrals and your CRM in sync.
#[derive(Debug, Parser)]
#[command(name = "refsync", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// Configuration file (TOML). Settings can also come from REFSYNC_* variables.
    #[arg(
        long,
        short,
        global = true,
        env = "REFSYNC_CONFIG",
        value_name = "FILE"
    )]
    pub config: Option<PathBuf>,

    /// Log line format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Pretty, env = "REFSYNC_LOG_FORMAT")]
    pub log_format: LogFormat,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// See it work: Partner Center and CRM emulators plus refsync in one process, a scripted co-sell scenario, a summary.
    Demo(crate::demo::DemoArgs),
    /// Run the service: webhook endpoint, workers, reconciler (SIGTERM or Ctrl-C stops it cleanly).
    Serve,
    /// Show received events by outcome, queue depth by state, the oldest pending age and sign-in.
    Status(StatusArgs),
    /// Sign in to Partner Center once as a person (device code); the refresh token is kept, encrypted, in the store.
    Login(LoginArgs),
    /// Manage the Partner Center webhook registration.
    #[command(subcommand)]
    Webhooks(WebhooksCommand),
    /// Write or check configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Measure refsync end to end against the bundled emulators (figures for the README).
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Run a bundled emulator (Partner Center, Salesforce) on its own.
    #[command(subcommand)]
    Emulate(EmulateCommand),
    /// The operator's commands: sync, audit, dead-letters, reconcile, mapping.
    #[command(flatten)]
    Operator(OperatorCommand),
}

/// `refsync config …`.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Write a commented configuration template.
    Init(ConfigInitArgs),
    /// Load the configuration (file + environment) and print the effective settings, secrets redacted.
    Check,
}

/// `refsync config init`.
#[derive(Debug, Args)]
pub struct ConfigInitArgs {
    /// Where to write the template.
    #[arg(default_value = "refsync.toml")]
    pub path: PathBuf,
    /// Overwrite an existing file.
    #[arg(long)]
    pub force: bool,
}

/// `refsync login`.
#[derive(Debug, Args)]
pub struct LoginArgs {
    /// Give up if the code is not approved within this time.
    #[arg(long, default_value = "15m", value_parser = humantime::parse_duration)]
    pub timeout: std::time::Duration,
}

/// `refsync status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}
