//! `refsync status`: received events by outcome, queue depth by state, the oldest
//! pending key's age — read from the store, so it works whether or not a server
//! is running, and against a shared PostgreSQL for all instances at once. It also
//! says whether Partner Center sign-in is in place: a missing refresh token stops
//! every Partner Center call, so it is shown loudly with the command that fixes it.

use crate::signin::SignInStatus;
use chrono::Utc;
use comfy_table::Table;
use refsync_store::{StatusSummary, Store};
use serde_json::{Value, json};

/// The summary as JSON (`refsync status --json`), stable for scripts.
pub fn status_json(summary: &StatusSummary, sign_in: &SignInStatus) -> Value {
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
        "sign_in": {
            "method": sign_in.method,
            "refresh_token_stored": sign_in.refresh_token_stored,
            "refresh_token_updated_at": sign_in.refresh_token_updated_at,
            "login_required": login_required(sign_in),
        },
    })
}

/// The summary as a table for people.
pub fn status_table(summary: &StatusSummary, sign_in: &SignInStatus) -> String {
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
    let sign_in_line = match (sign_in.method, sign_in.refresh_token_updated_at) {
        ("password", _) => "password (legacy: ends with Microsoft's MFA enforcement)".to_owned(),
        (_, Some(at)) => format!(
            "refresh token stored, last rotated {}",
            at.format("%Y-%m-%d %H:%M:%SZ")
        ),
        (_, None) => "NOT SIGNED IN: run `refsync login`".to_owned(),
    };
    table.add_row(["partner center sign-in".to_owned(), sign_in_line]);
    table.to_string()
}

/// True when no Partner Center call can succeed until someone runs `refsync login`.
fn login_required(sign_in: &SignInStatus) -> bool {
    sign_in.method == "refresh_token" && !sign_in.refresh_token_stored
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
        let signed_in = SignInStatus {
            method: "refresh_token",
            refresh_token_stored: true,
            refresh_token_updated_at: Some(chrono::DateTime::UNIX_EPOCH),
        };
        let j = status_json(&summary, &signed_in);
        assert_eq!(j["events"]["enqueued"], 10);
        assert_eq!(j["queue"]["retrying"], 2);
        assert_eq!(j["oldest_pending_age_seconds"], 90.0);
        assert_eq!(j["sign_in"]["login_required"], false);
        let t = status_table(&summary, &signed_in);
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

    #[test]
    fn a_missing_refresh_token_says_how_to_fix_it() {
        let signed_out = SignInStatus {
            method: "refresh_token",
            refresh_token_stored: false,
            refresh_token_updated_at: None,
        };
        let summary = StatusSummary::default();
        assert_eq!(
            status_json(&summary, &signed_out)["sign_in"]["login_required"],
            true
        );
        assert!(status_table(&summary, &signed_out).contains("run `refsync login`"));
    }
}
