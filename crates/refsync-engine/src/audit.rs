//! The audit trail of a sync, in two forms made from one [`SyncReport`]:
//!
//! - a short line appended to the CRM record's Audit column, where sellers look
//!   (crm.md §3.3): `2026-11-23 12:00Z ✔ updated: deal value 50000 → 62000`, newest
//!   last, older lines dropped to fit the column;
//! - entries in the store's audit log (`refsync audit <referral>`), one per kind of
//!   thing that happened, with the field-level detail as JSON.
//!
//! Pure: the time is passed in.

use chrono::{DateTime, Utc};
use refsync_core::merge::{Conflict, CrmWrite, PcWrite, Refusal, Side, WinRule};
use refsync_core::{CrmEntity, CrmRecordRef, ReferralId, SyncKey};
use refsync_store::{AuditKind, NewAuditEntry};
use serde_json::{Value, json};

/// Longest value shown in an audit line; longer ones end in `…`.
const SHOWN_VALUE_CHARS: usize = 40;
/// Longest failure reason written to the Audit column.
const SHOWN_REASON_CHARS: usize = 200;

/// How a record came to be linked in this sync.
#[derive(Debug, Clone, PartialEq)]
pub enum Origin {
    /// Created (or found, after a crash, by its referral identifier) from the referral.
    Created {
        /// The record.
        record: CrmRecordRef,
        /// False when the upsert found the record already there.
        new: bool,
    },
    /// The linked record was gone and was created again.
    Recreated {
        /// The new record.
        record: CrmRecordRef,
    },
    /// The lead was qualified: the referral now lives as this opportunity.
    Qualified {
        /// The retired lead.
        lead: CrmRecordRef,
        /// The opportunity.
        opportunity: CrmRecordRef,
    },
    /// A referral was created in Partner Center from the CRM record.
    SharedToPartnerCenter {
        /// The new referral.
        referral: ReferralId,
    },
}

/// What one sync did, for the audit trail.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SyncReport {
    /// How the record came to be linked, when that happened in this sync.
    pub origin: Option<Origin>,
    /// Fields written to the CRM.
    pub crm_writes: Vec<CrmWrite>,
    /// Fields written to Partner Center.
    pub pc_writes: Vec<PcWrite>,
    /// Fields both sides changed differently, with the winner.
    pub conflicts: Vec<Conflict>,
    /// Changes refused that were not already reported by an earlier sync.
    pub new_refusals: Vec<Refusal>,
}

impl SyncReport {
    /// True when the sync changed nothing worth a line.
    pub fn is_quiet(&self) -> bool {
        self.origin.is_none()
            && self.crm_writes.is_empty()
            && self.pc_writes.is_empty()
            && self.conflicts.is_empty()
            && self.new_refusals.is_empty()
    }

    /// The Audit column line for this sync, or `None` when it changed nothing.
    pub fn column_line(&self, at: DateTime<Utc>) -> Option<String> {
        if self.is_quiet() {
            return None;
        }
        let mut parts = Vec::new();
        match &self.origin {
            Some(Origin::Created { record, new: true }) => {
                parts.push(format!(
                    "created {} from Partner Center",
                    entity_name(&record.entity)
                ));
            }
            Some(Origin::Created { record, new: false }) => {
                parts.push(format!(
                    "linked to its Partner Center referral ({})",
                    entity_name(&record.entity)
                ));
            }
            Some(Origin::Recreated { record }) => {
                parts.push(format!(
                    "{} recreated (the linked one was gone)",
                    entity_name(&record.entity)
                ));
            }
            Some(Origin::Qualified { .. }) => parts.push("lead qualified → opportunity".to_owned()),
            Some(Origin::SharedToPartnerCenter { referral }) => {
                parts.push(format!("shared to Partner Center as referral {referral}"));
            }
            None => {}
        }
        // A record just created from the referral holds the referral's values: listing
        // each one would say nothing new.
        let fresh = matches!(
            self.origin,
            Some(Origin::Created { new: true, .. } | Origin::Recreated { .. })
        );
        if !fresh && !self.crm_writes.is_empty() {
            parts.push(format!(
                "updated: {}",
                changes(self.crm_writes.iter().map(|w| (&w.field, &w.from, &w.to)))
            ));
        }
        if !fresh && !self.pc_writes.is_empty() {
            parts.push(format!(
                "sent to Partner Center: {}",
                changes(self.pc_writes.iter().map(|w| (&w.field, &w.from, &w.to)))
            ));
        }
        for c in &self.conflicts {
            parts.push(format!(
                "conflict on {}: {} value kept ({})",
                field_label(&c.field),
                c.winner,
                short_rule(&c.rule)
            ));
        }
        let succeeded = parts.len();
        for r in &self.new_refusals {
            parts.push(format!("not sent: {}: {}", field_label(&r.field), r.reason));
        }
        let mark = if succeeded > 0 { '✔' } else { '✖' };
        Some(format!("{} {mark} {}", stamp(at), parts.join("; ")))
    }

    /// The store's audit entries for this sync.
    pub fn entries(&self, at: DateTime<Utc>, subject: &AuditSubject) -> Vec<NewAuditEntry> {
        let entry = |kind: AuditKind, summary: String, detail: Value| {
            subject.entry(at, kind, summary, detail)
        };
        let mut out = Vec::new();
        match &self.origin {
            Some(Origin::Created { record, new }) => {
                let kind = match record.entity {
                    CrmEntity::Opportunity => AuditKind::CreatedOpportunity,
                    _ => AuditKind::CreatedLead,
                };
                let verb = if *new { "created" } else { "found existing" };
                out.push(entry(
                    kind,
                    format!(
                        "{verb} {} {} from the referral",
                        entity_name(&record.entity),
                        record.id
                    ),
                    json!({ "record": record.to_string(), "created": new }),
                ));
            }
            Some(Origin::Recreated { record }) => {
                let kind = match record.entity {
                    CrmEntity::Opportunity => AuditKind::CreatedOpportunity,
                    _ => AuditKind::CreatedLead,
                };
                out.push(entry(
                    kind,
                    format!("the linked record was gone; recreated it as {record}"),
                    json!({ "record": record.to_string(), "recreated": true }),
                ));
            }
            Some(Origin::Qualified { lead, opportunity }) => out.push(entry(
                AuditKind::CreatedOpportunity,
                format!("lead qualified → opportunity: {lead} retired, {opportunity} linked"),
                json!({ "lead": lead.to_string(), "opportunity": opportunity.to_string() }),
            )),
            Some(Origin::SharedToPartnerCenter { referral }) => out.push(entry(
                AuditKind::CreatedReferral,
                format!("created referral {referral} from the CRM record"),
                json!({ "referral": referral.as_str() }),
            )),
            None => {}
        }
        if !self.crm_writes.is_empty() {
            out.push(entry(
                AuditKind::UpdatedCrm,
                format!(
                    "CRM updated: {}",
                    changes(self.crm_writes.iter().map(|w| (&w.field, &w.from, &w.to)))
                ),
                field_changes(self.crm_writes.iter().map(|w| (&w.field, &w.from, &w.to))),
            ));
        }
        if !self.pc_writes.is_empty() {
            out.push(entry(
                AuditKind::WroteBack,
                format!(
                    "Partner Center updated: {}",
                    changes(self.pc_writes.iter().map(|w| (&w.field, &w.from, &w.to)))
                ),
                field_changes(self.pc_writes.iter().map(|w| (&w.field, &w.from, &w.to))),
            ));
        }
        for c in &self.conflicts {
            out.push(entry(
                AuditKind::Conflict,
                format!(
                    "conflict on {}: Partner Center {} vs CRM {}; {} won: {}",
                    field_label(&c.field),
                    show_value(&c.pc),
                    show_value(&c.crm),
                    c.winner,
                    c.rule
                ),
                serde_json::to_value(c).unwrap_or(Value::Null),
            ));
        }
        for r in &self.new_refusals {
            out.push(entry(
                AuditKind::RefusedTransition,
                format!("not sent: {}: {}", field_label(&r.field), r.reason),
                serde_json::to_value(r).unwrap_or(Value::Null),
            ));
        }
        out
    }
}

/// Who an audit entry is about.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditSubject {
    /// The queue key whose sync wrote it.
    pub key: SyncKey,
    /// The referral, when there is one.
    pub referral_id: Option<ReferralId>,
    /// The CRM record, when there is one.
    pub crm_record: Option<CrmRecordRef>,
}

impl AuditSubject {
    /// One store entry about this subject.
    pub fn entry(
        &self,
        at: DateTime<Utc>,
        kind: AuditKind,
        summary: String,
        detail: Value,
    ) -> NewAuditEntry {
        NewAuditEntry {
            at,
            key: self.key.clone(),
            referral_id: self.referral_id.clone(),
            crm_record: self.crm_record.clone(),
            kind,
            summary,
            detail,
        }
    }
}

/// The Audit column line written with a record created from a referral, before
/// its id is known: `✔ created lead from Partner Center`.
pub fn created_line(at: DateTime<Utc>, origin: Creation<'_>) -> String {
    let what = match origin {
        Creation::New(entity) => format!("created {} from Partner Center", entity_name(entity)),
        Creation::Recreated(entity) => format!(
            "{} recreated (the linked one was gone)",
            entity_name(entity)
        ),
        Creation::Qualified => "lead qualified → opportunity".to_owned(),
        Creation::Shared(referral) => format!("shared to Partner Center as referral {referral}"),
    };
    format!("{} ✔ {what}", stamp(at))
}

/// Why a record is being created, for [`created_line`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Creation<'a> {
    /// A first record for the referral.
    New(&'a CrmEntity),
    /// The linked record was gone.
    Recreated(&'a CrmEntity),
    /// The opportunity a qualified lead becomes.
    Qualified,
    /// Not created: a CRM record shared to Partner Center as this new referral.
    Shared(&'a ReferralId),
}

/// The Audit column line for a sync that was given up on.
pub fn failure_line(at: DateTime<Utc>, reason: &str) -> String {
    format!(
        "{} ✖ sync failed: {}",
        stamp(at),
        truncate(reason, SHOWN_REASON_CHARS)
    )
}

/// The Audit column's text with `line` appended, dropping the oldest lines until it
/// fits in `max_chars` (a single line longer than that is cut).
pub fn append_line(existing: &str, line: &str, max_chars: usize) -> String {
    let mut lines: Vec<&str> = existing.lines().filter(|l| !l.trim().is_empty()).collect();
    lines.push(line);
    let length = |lines: &[&str]| {
        lines.iter().map(|l| l.chars().count()).sum::<usize>() + lines.len().saturating_sub(1)
    };
    while lines.len() > 1 && length(&lines) > max_chars {
        lines.remove(0);
    }
    let text = lines.join("\n");
    if text.chars().count() > max_chars {
        truncate(&text, max_chars)
    } else {
        text
    }
}

/// `2026-11-23 12:00Z`.
fn stamp(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%MZ").to_string()
}

fn entity_name(entity: &CrmEntity) -> &str {
    entity.as_str()
}

/// A field's stable name as people read it: `deal_value` → `deal value`.
fn field_label(field: &str) -> String {
    field.replace('_', " ")
}

fn changes<'a>(items: impl Iterator<Item = (&'a String, &'a Value, &'a Value)>) -> String {
    items
        .map(|(field, from, to)| {
            format!(
                "{} {} → {}",
                field_label(field),
                show_value(from),
                show_value(to)
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn field_changes<'a>(items: impl Iterator<Item = (&'a String, &'a Value, &'a Value)>) -> Value {
    Value::Object(
        items
            .map(|(field, from, to)| (field.clone(), json!({ "old": from, "new": to })))
            .collect(),
    )
}

fn short_rule(rule: &WinRule) -> &'static str {
    match rule {
        WinRule::Owner { .. } => "the field's owner",
        WinRule::Newest { .. } => "newest change",
        WinRule::OneWay { .. } => "one-way field",
        WinRule::CrmToPcOff => "CRM changes not shared",
        WinRule::ValueRefused { refused: Side::Pc } => "Partner Center value refused",
        WinRule::ValueRefused { refused: Side::Crm } => "CRM value refused",
    }
}

/// A comparable value as people read it: text as is, status pairs as `Closed/Won`,
/// nothing as `(empty)`, long text cut.
pub fn show_value(v: &Value) -> String {
    match v {
        Value::Null => "(empty)".to_owned(),
        Value::String(s) => truncate(s, SHOWN_VALUE_CHARS),
        Value::Bool(true) => "yes".to_owned(),
        Value::Bool(false) => "no".to_owned(),
        Value::Number(n) => n.to_string(),
        Value::Array(items) if items.iter().all(|i| !i.is_array() && !i.is_object()) => truncate(
            &items.iter().map(show_value).collect::<Vec<_>>().join("/"),
            SHOWN_VALUE_CHARS,
        ),
        other => truncate(&other.to_string(), SHOWN_VALUE_CHARS),
    }
}

fn truncate(s: &str, max: usize) -> String {
    let one_line: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if one_line.chars().count() <= max {
        return one_line;
    }
    let mut cut: String = one_line.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use refsync_core::merge::RefusalReason;
    use refsync_core::{CrmRecordId, ReferralStatus, ReferralSubstatus, StatusPair};
    use serde_json::Map;

    fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 31).unwrap()
    }

    fn write(field: &str, from: Value, to: Value) -> CrmWrite {
        CrmWrite {
            field: field.into(),
            from,
            to,
            columns: Map::new(),
        }
    }

    fn opportunity() -> CrmRecordRef {
        CrmRecordRef::new(CrmEntity::Opportunity, CrmRecordId::parse("006A").unwrap())
    }

    #[test]
    fn an_update_reads_as_one_short_line() {
        let report = SyncReport {
            crm_writes: vec![write("deal_value", json!(50000), json!(62000))],
            ..SyncReport::default()
        };
        assert_eq!(
            report.column_line(at()).unwrap(),
            "2026-11-23 12:00Z ✔ updated: deal value 50000 → 62000"
        );
    }

    #[test]
    fn a_quiet_sync_writes_no_line() {
        assert_eq!(SyncReport::default().column_line(at()), None);
        assert!(SyncReport::default().entries(at(), &subject()).is_empty());
    }

    #[test]
    fn creation_does_not_list_every_field() {
        let report = SyncReport {
            origin: Some(Origin::Created {
                record: opportunity(),
                new: true,
            }),
            crm_writes: vec![write("notes", json!(null), json!("n"))],
            pc_writes: vec![PcWrite {
                field: "crm_record_id".into(),
                from: json!(null),
                to: json!("006A"),
                ops: vec![],
            }],
            ..SyncReport::default()
        };
        assert_eq!(
            report.column_line(at()).unwrap(),
            "2026-11-23 12:00Z ✔ created opportunity from Partner Center"
        );
    }

    #[test]
    fn refusals_alone_are_marked_as_failures() {
        let report = SyncReport {
            new_refusals: vec![Refusal {
                field: "status".into(),
                reason: RefusalReason::IllegalTransition {
                    from: Some(StatusPair::closed(ReferralSubstatus::Won)),
                    to: StatusPair::new(ReferralStatus::New, ReferralSubstatus::Pending),
                    problem: "status cannot change from Closed to New".into(),
                },
            }],
            ..SyncReport::default()
        };
        let line = report.column_line(at()).unwrap();
        assert!(
            line.starts_with("2026-11-23 12:00Z ✖ not sent: status: "),
            "{line}"
        );
        let entries = report.entries(at(), &subject());
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].kind, AuditKind::RefusedTransition);
        assert_eq!(entries[0].detail["field"], "status");
    }

    #[test]
    fn values_are_shown_briefly() {
        assert_eq!(show_value(&json!(["Closed", "Won"])), "Closed/Won");
        assert_eq!(show_value(&Value::Null), "(empty)");
        let long = "x".repeat(100);
        let shown = show_value(&json!(long));
        assert_eq!(shown.chars().count(), SHOWN_VALUE_CHARS);
        assert!(shown.ends_with('…'));
        assert_eq!(show_value(&json!("two\nlines")), "two lines");
    }

    #[test]
    fn the_column_keeps_the_newest_lines_that_fit() {
        let text = append_line("", "first", 100);
        assert_eq!(text, "first");
        let text = append_line(&text, "second", 100);
        assert_eq!(text, "first\nsecond");
        // "second\nthird" is 12 characters: "first" must go.
        let text = append_line(&text, "third", 12);
        assert_eq!(text, "second\nthird");
        // A line longer than the column is cut to fit.
        let text = append_line(&text, &"y".repeat(20), 10);
        assert_eq!(text.chars().count(), 10);
        assert!(text.ends_with('…'));
    }

    #[test]
    fn every_kind_of_change_gets_a_store_entry() {
        let report = SyncReport {
            origin: Some(Origin::Qualified {
                lead: CrmRecordRef::new(CrmEntity::Lead, CrmRecordId::parse("00QA").unwrap()),
                opportunity: opportunity(),
            }),
            crm_writes: vec![write("deal_value", json!(1), json!(2))],
            pc_writes: vec![PcWrite {
                field: "name".into(),
                from: json!("a"),
                to: json!("b"),
                ops: vec![],
            }],
            conflicts: vec![Conflict {
                field: "notes".into(),
                base: None,
                pc: json!("p"),
                crm: json!("c"),
                winner: Side::Crm,
                rule: WinRule::CrmToPcOff,
            }],
            new_refusals: vec![],
        };
        let kinds: Vec<AuditKind> = report
            .entries(at(), &subject())
            .into_iter()
            .map(|e| e.kind)
            .collect();
        assert_eq!(
            kinds,
            vec![
                AuditKind::CreatedOpportunity,
                AuditKind::UpdatedCrm,
                AuditKind::WroteBack,
                AuditKind::Conflict
            ]
        );
        let line = report.column_line(at()).unwrap();
        assert_eq!(
            line,
            "2026-11-23 12:00Z ✔ lead qualified → opportunity; updated: deal value 1 → 2; \
             sent to Partner Center: name a → b; conflict on notes: CRM value kept (CRM changes not shared)"
        );
    }

    #[test]
    fn failures_are_stamped_and_cut() {
        let line = failure_line(at(), &"e".repeat(500));
        assert!(line.starts_with("2026-11-23 12:00Z ✖ sync failed: eee"));
        assert!(line.chars().count() < 250);
    }

    fn subject() -> AuditSubject {
        AuditSubject {
            key: SyncKey::Referral(ReferralId::parse("r-1").unwrap()),
            referral_id: Some(ReferralId::parse("r-1").unwrap()),
            crm_record: Some(opportunity()),
        }
    }
}
