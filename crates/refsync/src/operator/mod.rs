//! The operator's commands (issue 6 §1 and §4): `refsync sync`, `refsync audit`,
//! `refsync dead-letters list|retry`, `refsync reconcile` and `refsync mapping check`.
//!
//! Each command is a library function that returns values (tests call these) and a
//! pure formatter that turns the values into text or JSON; [`run_operator`] strings
//! them together for the binary. They read and write the store directly, so they
//! work the same whether or not `refsync serve` runs, and against a PostgreSQL
//! shared by several instances.
//!
//! - [`sync`]: enqueue one key and wait for its outcome, with workers in-process.
//! - [`audit`]: a referral's timeline.
//! - [`dead_letters`]: list dead letters and bring them back.
//! - [`reconcile`]: one reconciliation pass now.
//! - [`mapping`]: validate a field mapping and show what a referral becomes.

pub mod audit;
pub mod dead_letters;
pub mod mapping;
pub mod reconcile;
pub mod sync;

use crate::config::{Config, CrmKind};
use anyhow::Context;
use clap::{Args, Subcommand};
use refsync_core::{ReferralId, SyncKey};
use refsync_store::Store;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The operator's subcommands, flattened into the top-level command tree.
#[derive(Debug, Subcommand)]
pub enum OperatorCommand {
    /// Sync one referral now and wait for the outcome (workers run in this process meanwhile).
    Sync(SyncArgs),
    /// Show a referral's sync timeline from the audit trail.
    Audit(AuditArgs),
    /// List or retry keys the workers gave up on.
    #[command(subcommand, name = "dead-letters")]
    DeadLetters(DeadLettersCommand),
    /// Run one reconciliation pass now: enqueue the referrals Partner Center changed since a time.
    Reconcile(ReconcileArgs),
    /// Validate a field mapping and show what a referral becomes in the CRM.
    #[command(subcommand)]
    Mapping(MappingCommand),
}

/// `refsync sync`.
#[derive(Debug, Args)]
pub struct SyncArgs {
    /// The referral id (or a queue key as `refsync dead-letters list` prints it).
    pub target: String,
    /// Give up waiting after this long (the key stays queued).
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
}

/// `refsync audit`.
#[derive(Debug, Args)]
pub struct AuditArgs {
    /// The referral id (or a queue key such as `opportunity:<id>`).
    pub target: String,
    /// Show at most this many entries (the newest).
    #[arg(long, default_value_t = 100)]
    pub limit: u32,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `refsync dead-letters …`.
#[derive(Debug, Subcommand)]
pub enum DeadLettersCommand {
    /// List the dead letters, most recently dead first.
    List(DeadLettersListArgs),
    /// Bring dead letters back to the queue, due now (attempts start over).
    Retry(DeadLettersRetryArgs),
}

/// `refsync dead-letters list`.
#[derive(Debug, Args)]
pub struct DeadLettersListArgs {
    /// Show at most this many.
    #[arg(long, default_value_t = 100)]
    pub limit: u32,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `refsync dead-letters retry`.
#[derive(Debug, Args)]
pub struct DeadLettersRetryArgs {
    /// The key as `list` prints it: `referral:<id>` or `<entity>:<id>`.
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    pub key: Option<String>,
    /// Every dead letter.
    #[arg(long)]
    pub all: bool,
}

/// `refsync reconcile`.
#[derive(Debug, Args)]
pub struct ReconcileArgs {
    /// List referrals updated since this RFC 3339 time or this long ago (`2h`, `3d`).
    /// Without it: from the stored watermark less `[reconciler] overlap`, or everything
    /// on the first run.
    #[arg(long)]
    pub since: Option<String>,
}

/// `refsync mapping …`.
#[derive(Debug, Subcommand)]
pub enum MappingCommand {
    /// Validate a mapping and print its fields; with `--referral`, the CRM record it becomes.
    Check(MappingCheckArgs),
}

/// `refsync mapping check`.
#[derive(Debug, Args)]
pub struct MappingCheckArgs {
    /// Which CRM's built-in mapping to check when neither `--mapping` nor `crm.mapping` names a file
    /// (default: `[crm] kind`).
    #[arg(long, value_enum)]
    pub crm: Option<CrmKind>,
    /// A mapping file to check instead of the configured one.
    #[arg(long, value_name = "FILE")]
    pub mapping: Option<PathBuf>,
    /// A referral's JSON as the Referrals API returns it: print the CRM record it becomes.
    #[arg(long, value_name = "FILE")]
    pub referral: Option<PathBuf>,
}

/// What a command printed, and whether it reached its goal (the exit status).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandOutput {
    /// Text for standard output.
    pub text: String,
    /// `Some(why)` when the command did not reach its goal: the binary exits non-zero with it.
    pub failure: Option<String>,
}

impl CommandOutput {
    fn ok(text: String) -> Self {
        Self {
            text,
            failure: None,
        }
    }
}

/// Runs one operator command against the configured store (and, for `sync` and
/// `reconcile`, the configured Partner Center and CRM).
pub async fn run_operator(
    config: &Config,
    command: OperatorCommand,
) -> anyhow::Result<CommandOutput> {
    if let OperatorCommand::Mapping(MappingCommand::Check(args)) = &command {
        // Needs no store: a mapping can be checked before anything is set up.
        return mapping::check_command(config, args).map(CommandOutput::ok);
    }
    let store = open_configured_store(config).await?;
    let result = run_with_store(config, Arc::clone(&store), command).await;
    store.close().await;
    result
}

async fn run_with_store(
    config: &Config,
    store: Arc<dyn Store>,
    command: OperatorCommand,
) -> anyhow::Result<CommandOutput> {
    let now = chrono::Utc::now();
    Ok(match command {
        OperatorCommand::Sync(args) => {
            let key = parse_target(&args.target)?;
            let outcome = sync::sync_and_wait(config, store, &key, args.timeout).await?;
            let text = sync::sync_report(&key, &outcome, args.timeout, chrono::Utc::now());
            CommandOutput {
                text,
                failure: sync::failure(&key, &outcome.state),
            }
        }
        OperatorCommand::Audit(args) => {
            let key = parse_target(&args.target)?;
            let entries = audit::read_audit(store.as_ref(), &key, args.limit).await?;
            if args.json {
                CommandOutput::ok(json_text(&audit::audit_json(&entries))?)
            } else {
                CommandOutput::ok(audit::audit_text(&key, &entries))
            }
        }
        OperatorCommand::DeadLetters(DeadLettersCommand::List(args)) => {
            let entries = store.list_dead_letters(args.limit).await?;
            if args.json {
                CommandOutput::ok(json_text(&dead_letters::dead_letters_json(&entries))?)
            } else {
                CommandOutput::ok(dead_letters::dead_letters_text(&entries, now))
            }
        }
        OperatorCommand::DeadLetters(DeadLettersCommand::Retry(args)) => {
            let target = match (args.key, args.all) {
                (_, true) => dead_letters::RetryTarget::All,
                (Some(key), false) => dead_letters::RetryTarget::One(
                    SyncKey::parse(&key).with_context(|| {
                        format!("{key:?} is not a key as `refsync dead-letters list` prints them (referral:<id> or <entity>:<id>)")
                    })?,
                ),
                (None, false) => anyhow::bail!("name a key or pass --all"),
            };
            let retried = dead_letters::retry(store.as_ref(), &target, now).await?;
            CommandOutput {
                text: dead_letters::retry_text(&target, retried),
                failure: (retried == 0 && matches!(target, dead_letters::RetryTarget::One(_)))
                    .then(|| "the key is not a dead letter".to_owned()),
            }
        }
        OperatorCommand::Reconcile(args) => {
            let since = args
                .since
                .as_deref()
                .map(|s| reconcile::parse_since(s, now))
                .transpose()?;
            let report = reconcile::reconcile_now(config, store, since).await?;
            CommandOutput::ok(reconcile::reconcile_text(&report))
        }
        OperatorCommand::Mapping(MappingCommand::Check(args)) => {
            CommandOutput::ok(mapping::check_command(config, &args)?)
        }
    })
}

/// Opens `[store] url`, saying which store could not be opened (password redacted).
pub async fn open_configured_store(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    refsync_store::open_store(&config.store.url)
        .await
        .with_context(|| {
            format!(
                "opening the store at {}",
                refsync_store::redact_url(&config.store.url)
            )
        })
}

/// A command's subject: a queue key as printed by `dead-letters list`
/// (`referral:<id>`, `<entity>:<id>`), or else a bare referral id.
pub fn parse_target(s: &str) -> anyhow::Result<SyncKey> {
    let s = s.trim();
    if let Ok(key) = SyncKey::parse(s) {
        return Ok(key);
    }
    let id = ReferralId::parse(s).with_context(|| format!("{s:?} is not a referral id"))?;
    Ok(SyncKey::Referral(id))
}

fn json_text(value: &serde_json::Value) -> anyhow::Result<String> {
    let mut text = serde_json::to_string_pretty(value).context("rendering JSON")?;
    text.push('\n');
    Ok(text)
}

/// A time as operators read it in tables: UTC to the second.
pub(crate) fn show_time(at: chrono::DateTime<chrono::Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%SZ").to_string()
}

/// How far `at` is from `now`, to the second (`3m 2s`), for "due in" and "dead for".
pub(crate) fn show_span(
    from: chrono::DateTime<chrono::Utc>,
    to: chrono::DateTime<chrono::Utc>,
) -> String {
    let secs = (to - from).num_seconds().max(0).unsigned_abs();
    humantime::format_duration(Duration::from_secs(secs)).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_keys_or_bare_referral_ids() {
        assert_eq!(
            parse_target("referral:abc").unwrap().to_string(),
            "referral:abc"
        );
        assert_eq!(
            parse_target(" 7c3e0a5e-2b1f-4f5e-9d2a-0a1b2c3d4e5f ")
                .unwrap()
                .to_string(),
            "referral:7c3e0a5e-2b1f-4f5e-9d2a-0a1b2c3d4e5f"
        );
        assert_eq!(
            parse_target("opportunity:006A").unwrap().to_string(),
            "opportunity:006A"
        );
        assert!(parse_target("").is_err());
    }

    #[test]
    fn spans_are_whole_seconds_and_never_negative() {
        let t = chrono::DateTime::UNIX_EPOCH;
        assert_eq!(
            show_span(t, t + chrono::Duration::milliseconds(62_400)),
            "1m 2s"
        );
        assert_eq!(show_span(t + chrono::Duration::seconds(5), t), "0s");
        assert_eq!(show_time(t), "1970-01-01 00:00:00Z");
    }
}
