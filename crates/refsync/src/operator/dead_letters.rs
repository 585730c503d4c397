//! `refsync dead-letters list|retry`: the keys the workers gave up on (after
//! `[sync] max_attempts` transient failures, or at once on a permanent one), and
//! bringing them back once the cause is fixed. Keys are printed and parsed by
//! [`SyncKey`]'s own `Display`/`parse`: `referral:<id>` or `<entity>:<id>`.

use super::{show_span, show_time};
use chrono::{DateTime, Utc};
use comfy_table::Table;
use refsync_core::SyncKey;
use refsync_store::{QueueEntry, Store};
use serde_json::{Value, json};

/// Which dead letters to bring back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RetryTarget {
    /// One key.
    One(SyncKey),
    /// All of them.
    All,
}

/// Brings the target back to the queue, due now, attempts reset; returns how many
/// keys came back (0 when the one key is not a dead letter).
pub async fn retry(
    store: &dyn Store,
    target: &RetryTarget,
    now: DateTime<Utc>,
) -> refsync_store::Result<u64> {
    match target {
        RetryTarget::One(key) => Ok(u64::from(store.retry_dead_letter(key, now).await?)),
        RetryTarget::All => store.retry_all_dead_letters(now).await,
    }
}

/// What `retry` did, for people.
pub fn retry_text(target: &RetryTarget, retried: u64) -> String {
    const NEXT: &str = "a running `refsync serve` syncs it now; or run `refsync sync <key>`";
    match (target, retried) {
        (RetryTarget::One(key), 0) => format!("{key} is not a dead letter\n"),
        (RetryTarget::One(key), _) => format!("{key} is queued again ({NEXT})\n"),
        (RetryTarget::All, 0) => "there are no dead letters\n".to_owned(),
        (RetryTarget::All, n) => format!("{n} dead letter(s) queued again ({NEXT})\n"),
    }
}

/// Why the key died: the dead-letter reason, else the last error.
fn reason(entry: &QueueEntry) -> &str {
    entry
        .dead_reason
        .as_deref()
        .or(entry.last_error.as_deref())
        .unwrap_or("")
}

/// The dead letters as a table: key, attempts, reason, since when.
pub fn dead_letters_text(entries: &[QueueEntry], now: DateTime<Utc>) -> String {
    if entries.is_empty() {
        return "no dead letters\n".to_owned();
    }
    let mut table = Table::new();
    table.set_header(["key", "attempts", "reason", "dead since"]);
    for e in entries {
        let since = e.dead_at.map_or_else(
            || "—".to_owned(),
            |at| format!("{} ({} ago)", show_time(at), show_span(at, now)),
        );
        table.add_row([
            e.key.to_string(),
            e.attempts.to_string(),
            reason(e).to_owned(),
            since,
        ]);
    }
    format!("{table}\nretry one with `refsync dead-letters retry <key>`, all with `--all`\n")
}

/// The dead letters as JSON (`--json`), stable for scripts.
pub fn dead_letters_json(entries: &[QueueEntry]) -> Value {
    Value::Array(
        entries
            .iter()
            .map(|e| {
                json!({
                    "key": e.key.to_string(),
                    "attempts": e.attempts,
                    "reason": reason(e),
                    "last_error": e.last_error,
                    "dead_at": e.dead_at,
                    "first_enqueued_at": e.first_enqueued_at,
                    "last_trigger": e.last_trigger.to_string(),
                })
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use refsync_core::{CrmEntity, CrmRecordId, CrmRecordRef, ReferralId};
    use refsync_store::{QueueState, Trigger};

    fn dead(key: SyncKey, reason: Option<&str>, last_error: &str) -> QueueEntry {
        let t = DateTime::UNIX_EPOCH;
        QueueEntry {
            key,
            state: QueueState::Dead,
            due_at: t,
            generation: 3,
            attempts: 10,
            first_enqueued_at: t,
            last_enqueued_at: t,
            last_trigger: Trigger::Webhook,
            triggers: vec![Trigger::Webhook],
            leased_by: None,
            lease_until: None,
            last_error: Some(last_error.to_owned()),
            dead_reason: reason.map(str::to_owned),
            dead_at: Some(t + chrono::Duration::seconds(60)),
        }
    }

    fn entries() -> Vec<QueueEntry> {
        vec![
            dead(
                SyncKey::Referral(ReferralId::parse("r-1").unwrap()),
                Some("gave up after 10 attempts: 503"),
                "503",
            ),
            dead(
                SyncKey::Crm(CrmRecordRef::new(
                    CrmEntity::Opportunity,
                    CrmRecordId::parse("006A").unwrap(),
                )),
                None,
                "rejected: REQUIRED_FIELD_MISSING",
            ),
        ]
    }

    #[test]
    fn the_table_prints_keys_that_parse_back() {
        let now = DateTime::UNIX_EPOCH + chrono::Duration::seconds(3660);
        let text = dead_letters_text(&entries(), now);
        for needle in [
            "referral:r-1",
            "opportunity:006A",
            "gave up after 10 attempts: 503",
            "rejected: REQUIRED_FIELD_MISSING",
            "1970-01-01 00:01:00Z (1h ago)",
        ] {
            assert!(text.contains(needle), "{needle:?} missing from\n{text}");
        }
        for e in entries() {
            assert_eq!(SyncKey::parse(&e.key.to_string()).unwrap(), e.key);
        }
        assert_eq!(dead_letters_text(&[], now), "no dead letters\n");
    }

    #[test]
    fn json_and_retry_messages() {
        let j = dead_letters_json(&entries());
        assert_eq!(j[0]["key"], "referral:r-1");
        assert_eq!(j[0]["reason"], "gave up after 10 attempts: 503");
        assert_eq!(j[1]["reason"], "rejected: REQUIRED_FIELD_MISSING");
        assert_eq!(j[1]["attempts"], 10);
        let one = RetryTarget::One(entries()[0].key.clone());
        assert!(retry_text(&one, 1).starts_with("referral:r-1 is queued again"));
        assert_eq!(retry_text(&one, 0), "referral:r-1 is not a dead letter\n");
        assert!(retry_text(&RetryTarget::All, 2).starts_with("2 dead letter(s)"));
        assert_eq!(
            retry_text(&RetryTarget::All, 0),
            "there are no dead letters\n"
        );
    }
}
