//! What the demo shows at the end: both sides counted from their own data (the
//! emulators' records, the CRM read through the connector), the store's view
//! (webhooks by outcome, audit entries by kind) and the time from Microsoft
//! sending a referral to its CRM record existing.

use super::Demo;
use comfy_table::Table;
use refsync_core::ReferralId;
use refsync_store::AuditKind;
use std::collections::BTreeMap;
use std::time::Duration;

/// The figures of one demo run.
#[derive(Debug, Clone, PartialEq)]
pub struct DemoReport {
    /// Referrals by Partner Center `status/substatus`.
    pub referrals_by_status: BTreeMap<String, usize>,
    /// CRM records by type and state (the mapping's status columns, as stored).
    pub crm_records_by_state: BTreeMap<(String, String), usize>,
    /// Referrals without a CRM record at the end (should be none).
    pub unlinked: usize,
    /// Webhooks stored, by outcome.
    pub webhooks_by_outcome: BTreeMap<String, u64>,
    /// Webhooks Partner Center delivered a second time (answered, stored once).
    pub duplicate_deliveries: usize,
    /// Audit entries by kind: creations, updates, write-backs, conflicts, retries.
    pub audit_by_kind: BTreeMap<String, usize>,
    /// Keys dead-lettered.
    pub dead_letters: u64,
    /// Time from Microsoft sending a referral to its CRM record being linked.
    pub arrival: Vec<Duration>,
    /// CRM API calls made during the scenario.
    pub crm_api_calls: u64,
    /// The whole scenario.
    pub elapsed: Duration,
    /// A referral with the richest audit trail (accepted, edited in the CRM, won).
    pub example: Option<ReferralId>,
}

impl DemoReport {
    /// The arrival-time percentile `q` (0–1).
    pub fn arrival_percentile(&self, q: f64) -> Duration {
        let mut sorted = self.arrival.clone();
        sorted.sort();
        if sorted.is_empty() {
            return Duration::ZERO;
        }
        let index = ((sorted.len() - 1) as f64 * q).round() as usize;
        sorted[index.min(sorted.len() - 1)]
    }

    /// The summary tables.
    pub fn render(&self) -> String {
        let mut out = String::from("\nSummary\n");
        let mut referrals = Table::new();
        referrals.set_header(["Partner Center referrals", "count"]);
        for (status, n) in &self.referrals_by_status {
            referrals.add_row([status.clone(), n.to_string()]);
        }
        out.push_str(&format!("{referrals}\n"));

        let mut records = Table::new();
        records.set_header(["CRM record", "state", "count"]);
        for ((entity, state), n) in &self.crm_records_by_state {
            records.add_row([entity.clone(), state.clone(), n.to_string()]);
        }
        out.push_str(&format!("{records}\n"));

        let mut activity = Table::new();
        activity.set_header(["refsync", "count"]);
        for (outcome, n) in &self.webhooks_by_outcome {
            activity.add_row([format!("webhooks {outcome}"), n.to_string()]);
        }
        activity.add_row([
            "webhooks delivered twice (stored once)".to_owned(),
            self.duplicate_deliveries.to_string(),
        ]);
        for (kind, n) in &self.audit_by_kind {
            activity.add_row([kind.replace('_', " "), n.to_string()]);
        }
        activity.add_row(["dead letters".to_owned(), self.dead_letters.to_string()]);
        activity.add_row([
            "referrals without a CRM record".to_owned(),
            self.unlinked.to_string(),
        ]);
        activity.add_row(["CRM API calls".to_owned(), self.crm_api_calls.to_string()]);
        out.push_str(&format!("{activity}\n"));

        out.push_str(&format!(
            "Referral sent → CRM record: p50 {} ms, p90 {} ms, max {} ms over {} referrals; scenario {:.1} s\n",
            self.arrival_percentile(0.5).as_millis(),
            self.arrival_percentile(0.9).as_millis(),
            self.arrival_percentile(1.0).as_millis(),
            self.arrival.len(),
            self.elapsed.as_secs_f64()
        ));
        out
    }
}

/// Reads both sides and the store after the scenario.
pub(super) async fn collect(
    demo: &Demo,
    ids: &[ReferralId],
    arrival: Vec<Duration>,
    elapsed: Duration,
    crm_calls_before: u64,
    example: Option<ReferralId>,
) -> anyhow::Result<DemoReport> {
    let crm_api_calls = demo.crm.api_calls().saturating_sub(crm_calls_before);
    let store = demo.service.store();
    let engine = demo
        .service
        .engine()
        .ok_or_else(|| anyhow::anyhow!("the demo's service runs an engine"))?;
    let mut report = DemoReport {
        referrals_by_status: BTreeMap::new(),
        crm_records_by_state: BTreeMap::new(),
        unlinked: 0,
        webhooks_by_outcome: store
            .count_events_by_outcome()
            .await?
            .into_iter()
            .map(|(outcome, n)| (outcome.to_string(), n))
            .collect(),
        duplicate_deliveries: demo
            .pc
            .delivery_log()
            .attempts
            .iter()
            .filter(|a| a.duplicate)
            .count(),
        audit_by_kind: BTreeMap::new(),
        dead_letters: store.status_summary(chrono::Utc::now()).await?.dead_letters,
        arrival,
        crm_api_calls,
        elapsed,
        example,
    };
    for id in ids {
        if let Some(r) = demo.pc.referral(id.as_str()) {
            let status = format!(
                "{}/{}",
                r["status"].as_str().unwrap_or("?"),
                r["substatus"].as_str().unwrap_or("?")
            );
            *report.referrals_by_status.entry(status).or_default() += 1;
        }
        for entry in store.audit_for_referral(id, 1000).await? {
            *report
                .audit_by_kind
                .entry(entry.entry.kind.to_string())
                .or_default() += 1;
        }
        let Some(record) = store.link_by_referral(id).await?.and_then(|l| l.crm_record) else {
            report.unlinked += 1;
            continue;
        };
        let mapping = engine.mapping().entity(&record.entity)?;
        let state = match engine.crm().get(mapping, &record.id).await? {
            Some(read) => mapping
                .field("status")
                .map(|f| {
                    f.crm
                        .iter()
                        .map(|c| match read.field(c) {
                            serde_json::Value::String(s) => s.clone(),
                            other => other.to_string(),
                        })
                        .collect::<Vec<_>>()
                        .join("/")
                })
                .unwrap_or_default(),
            None => "missing".to_owned(),
        };
        *report
            .crm_records_by_state
            .entry((record.entity.to_string(), state))
            .or_default() += 1;
    }
    // Kinds that did not happen are shown as 0, so "0 conflicts" is visible.
    for kind in [AuditKind::Conflict, AuditKind::Retry, AuditKind::WroteBack] {
        report.audit_by_kind.entry(kind.to_string()).or_default();
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_and_tables_show_every_figure() {
        let report = DemoReport {
            referrals_by_status: [("Active/Accepted".to_owned(), 3)].into(),
            crm_records_by_state: [(("opportunity".to_owned(), "0/1".to_owned()), 3)].into(),
            unlinked: 0,
            webhooks_by_outcome: [("enqueued".to_owned(), 7)].into(),
            duplicate_deliveries: 2,
            audit_by_kind: [("wrote_back".to_owned(), 4)].into(),
            dead_letters: 0,
            arrival: vec![
                Duration::from_millis(30),
                Duration::from_millis(10),
                Duration::from_millis(20),
            ],
            crm_api_calls: 12,
            elapsed: Duration::from_secs(2),
            example: None,
        };
        assert_eq!(report.arrival_percentile(0.5), Duration::from_millis(20));
        assert_eq!(report.arrival_percentile(1.0), Duration::from_millis(30));
        let text = report.render();
        for needle in [
            "Active/Accepted",
            "opportunity",
            "webhooks enqueued",
            "wrote back",
            "p50 20 ms",
            "max 30 ms",
        ] {
            assert!(text.contains(needle), "{needle} missing from\n{text}");
        }
    }
}
