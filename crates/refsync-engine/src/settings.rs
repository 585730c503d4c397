//! Settings of the engine and its loops, with the defaults the binary's
//! configuration starts from (`[sync]`, `[reconciler]`). Everything that decides
//! timing is a setting so tests can run the loops at millisecond scale.

use std::time::Duration;

/// How one sync behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineSettings {
    /// Append ✔ to the record's name after a successful sync and ✖ after a failure
    /// that was given up on, as the Microsoft connector can ("Display check mark in
    /// the opportunity name", crm.md §3.4). Off by default.
    pub checkmark_suffix: bool,
    /// Append a line to the record's Audit column on every sync that changed
    /// something, and on failures that were given up on (crm.md §3.3 "Audit").
    pub audit_column: bool,
    /// Characters the Audit column holds; older lines are dropped to fit. The real
    /// column lengths are unconfirmed (Salesforce's 2020 field was Long Text Area
    /// 100000, the Dataverse column is unpublished): the default, 2000, fits both.
    pub audit_column_max_chars: usize,
    /// How many times a Partner Center write refused with 412 (the referral changed
    /// since it was read) is re-read, re-merged and retried within one sync.
    pub max_precondition_retries: u32,
    /// Our Partner Center organization id, when known: referrals owned by any other
    /// organization are treated as the other half of an engagement. Without it only
    /// Microsoft's (`organizationId` `msft`, partner-center.md §1.5) are.
    pub own_organization_id: Option<String>,
}

impl Default for EngineSettings {
    fn default() -> Self {
        Self {
            checkmark_suffix: false,
            audit_column: true,
            audit_column_max_chars: 2000,
            max_precondition_retries: 3,
            own_organization_id: None,
        }
    }
}

/// How the workers claim and retry keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerSettings {
    /// Lease holder name shown to operators (instance and process), e.g. `host-a`.
    pub owner: String,
    /// Keys worked at once by this instance.
    pub concurrency: usize,
    /// How long a claimed key stays ours; extended while a sync runs long.
    pub lease: Duration,
    /// How often to look for due keys when nothing wakes the workers (keys retried
    /// later, keys enqueued by another instance).
    pub poll_interval: Duration,
    /// Failed attempts before a key is dead-lettered.
    pub max_attempts: u32,
    /// First retry delay; doubles per failed attempt, with jitter.
    pub retry_initial: Duration,
    /// Longest retry delay.
    pub retry_max: Duration,
    /// On shutdown, how long in-flight syncs may run before their keys are released.
    pub shutdown_grace: Duration,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        Self {
            owner: "refsync".to_owned(),
            concurrency: 8,
            lease: Duration::from_secs(120),
            poll_interval: Duration::from_secs(1),
            max_attempts: 10,
            retry_initial: Duration::from_secs(2),
            retry_max: Duration::from_secs(600),
            shutdown_grace: Duration::from_secs(20),
        }
    }
}

/// How the Partner Center reconciler runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconcilerSettings {
    /// How often to list the referrals changed since the watermark.
    pub interval: Duration,
    /// How far behind the watermark each pass starts: covers clock skew and writes
    /// that became visible late.
    pub overlap: Duration,
}

impl Default for ReconcilerSettings {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(15 * 60),
            overlap: Duration::from_secs(10 * 60),
        }
    }
}

/// How the CRM poller runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PollerSettings {
    /// How often to ask the CRM for records changed since the watermark.
    pub interval: Duration,
    /// How far behind the watermark each pass starts (records that share the
    /// watermark's timestamp, commit lag). Re-reading a record costs nothing more:
    /// changes already synced are recognised by their modified time.
    pub overlap: Duration,
    /// Records asked for per call.
    pub batch_size: usize,
    /// Calls per record type per pass at most (the loop's bound).
    pub max_batches: usize,
}

impl Default for PollerSettings {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(60),
            overlap: Duration::from_secs(60),
            batch_size: 200,
            max_batches: 50,
        }
    }
}
