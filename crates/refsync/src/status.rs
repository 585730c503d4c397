//! `refsync status`: received events by outcome, queue depth by state, the oldest
//! pending key's age — read from the store, so it works whether or not a server
//! is running, and against a shared PostgreSQL for all instances at once.

use chrono::Utc;
use comfy_table::Table;
use refsync_store::{StatusSummary, Store};
use serde_json::{Value, json};

/// The summary as JSON (`refsync status --json`), stable for scripts.
pub fn status_json(summary: &StatusSummary) -> Value {
    let events: serde_json::Map<String, Value> = summary
        .events_by_outcome
        .iter()
        .map(|(outcome, n)| (outcome.to_string(), json!(n)))
        .collect();
    json!({
        "events": events,
        "queue": {
            "due": summary.queue.due,
            "scheduled": summary.queue.scheduled,
            "retrying": summary.queue.retrying,
            "leased": summary.queue.leased,
            "dead": summary.queue.dead,
        },
        "oldest_pending_age_seconds": summary.oldest_pending_age.map(|d| d.num_milliseconds() as f64 / 1000.0),
        "dead_letters": summary.dead_letters,
    })
}

/// The summary as a table for people.
pub fn status_table(summary: &StatusSummary) -> String {
    let mut table = Table::new();
    table.set_header(["", "count"]);
    for (outcome, n) in &summary.events_by_outcome {
        table.add_row([format!("events {outcome}"), n.to_string()]);
    }
    if summary.events_by_outcome.is_empty() {
        table.add_row(["events".to_owned(), "0".to_owned()]);
    }
    let q = &summary.queue;
    for (state, n) in [
        ("queue due", q.due),
        ("queue scheduled", q.scheduled),
        ("queue retrying", q.retrying),
        ("queue leased (being synced)", q.leased),
        ("dead letters", q.dead),
    ] {
        table.add_row([state.to_owned(), n.to_string()]);
    }
    let oldest = summary
        .oldest_pending_age
        .and_then(|d| d.to_std().ok())
        .map(|d| {
            humantime::format_duration(std::time::Duration::from_secs(d.as_secs())).to_string()
        })
        .unwrap_or_else(|| "—".to_owned());
    table.add_row(["oldest pending".to_owned(), oldest]);
    table.to_string()
}

/// Reads the summary now.
pub async fn read_status(store: &dyn Store) -> anyhow::Result<StatusSummary> {
    Ok(store.status_summary(Utc::now()).await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use refsync_store::{EventOutcome, QueueDepth};

    #[test]
    fn json_and_table_show_every_figure() {
        let mut summary = StatusSummary {
            queue: QueueDepth {
                due: 3,
                scheduled: 1,
                retrying: 2,
                leased: 4,
                dead: 5,
            },
            oldest_pending_age: Some(chrono::Duration::seconds(90)),
            dead_letters: 5,
            ..StatusSummary::default()
        };
        summary.events_by_outcome.insert(EventOutcome::Enqueued, 10);
        summary
            .events_by_outcome
            .insert(EventOutcome::Acknowledged, 1);
        let j = status_json(&summary);
        assert_eq!(j["events"]["enqueued"], 10);
        assert_eq!(j["queue"]["retrying"], 2);
        assert_eq!(j["oldest_pending_age_seconds"], 90.0);
        let t = status_table(&summary);
        for needle in [
            "events enqueued",
            "10",
            "queue retrying",
            "dead letters",
            "1m 30s",
        ] {
            assert!(t.contains(needle), "{needle} missing from\n{t}");
        }
    }
}
