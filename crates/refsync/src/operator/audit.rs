//! `refsync audit <referral-id>`: what every sync of a referral did and why, from
//! the store's audit trail, oldest first, as a table or JSON.

use super::show_time;
use comfy_table::Table;
use refsync_core::SyncKey;
use refsync_store::{AuditEntry, AuditKind, Store};
use serde_json::{Value, json};

/// The newest `limit` entries about `key`, oldest first. For a referral this is
/// every entry naming it (whichever key's sync wrote it); for a CRM record key,
/// the entries that key's syncs wrote.
pub async fn read_audit(
    store: &dyn Store,
    key: &SyncKey,
    limit: u32,
) -> refsync_store::Result<Vec<AuditEntry>> {
    let mut entries = match key {
        SyncKey::Referral(id) => store.audit_for_referral(id, limit).await?,
        SyncKey::Crm(_) => store.audit_for_key(key, limit).await?,
    };
    entries.reverse();
    Ok(entries)
}

/// True for the kinds whose structured detail people need to read: which values
/// clashed and who won, or why a change was not sent.
fn shows_detail(kind: &AuditKind) -> bool {
    matches!(kind, AuditKind::Conflict | AuditKind::RefusedTransition)
}

/// The entries as a table: time, kind, CRM record, summary (with the detail for
/// conflicts and refusals).
pub fn audit_table(entries: &[AuditEntry]) -> String {
    let mut table = Table::new();
    table.set_header(["time", "kind", "crm record", "summary"]);
    for e in entries {
        let e = &e.entry;
        let mut summary = e.summary.clone();
        if shows_detail(&e.kind) && !e.detail.is_null() {
            summary.push_str("\ndetail: ");
            summary.push_str(&e.detail.to_string());
        }
        table.add_row([
            show_time(e.at),
            e.kind.to_string(),
            e.crm_record
                .as_ref()
                .map_or_else(|| "—".to_owned(), ToString::to_string),
            summary,
        ]);
    }
    table.to_string()
}

/// The timeline for people, or a line saying there is none.
pub fn audit_text(key: &SyncKey, entries: &[AuditEntry]) -> String {
    if entries.is_empty() {
        return format!("no audit entries for {key}\n");
    }
    let mut text = audit_table(entries);
    text.push('\n');
    text
}

/// The entries as JSON (`--json`), oldest first, stable for scripts.
pub fn audit_json(entries: &[AuditEntry]) -> Value {
    Value::Array(
        entries
            .iter()
            .map(|e| {
                let n = &e.entry;
                json!({
                    "id": e.id,
                    "at": n.at,
                    "key": n.key.to_string(),
                    "referral_id": n.referral_id.as_ref().map(ToString::to_string),
                    "crm_record": n.crm_record.as_ref().map(ToString::to_string),
                    "kind": n.kind.to_string(),
                    "summary": n.summary,
                    "detail": n.detail,
                })
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::DateTime;
    use refsync_core::{CrmEntity, CrmRecordId, CrmRecordRef, ReferralId};
    use refsync_store::NewAuditEntry;

    fn entries() -> Vec<AuditEntry> {
        let id = ReferralId::parse("r-1").unwrap();
        let lead = CrmRecordRef::new(CrmEntity::Lead, CrmRecordId::parse("00Q1").unwrap());
        let make = |n: i64, kind: AuditKind, summary: &str, detail: Value| AuditEntry {
            id: n,
            entry: NewAuditEntry {
                at: DateTime::UNIX_EPOCH + chrono::Duration::seconds(n),
                key: SyncKey::Referral(id.clone()),
                referral_id: Some(id.clone()),
                crm_record: Some(lead.clone()),
                kind,
                summary: summary.to_owned(),
                detail,
            },
        };
        vec![
            make(
                1,
                AuditKind::CreatedLead,
                "created lead 00Q1",
                json!({"record": "lead:00Q1", "secret_looking": "not shown"}),
            ),
            make(
                2,
                AuditKind::Conflict,
                "conflict on deal value",
                json!({"field": "deal_value", "pc": 1, "crm": 2, "winner": "crm"}),
            ),
        ]
    }

    #[test]
    fn the_table_shows_each_entry_and_the_detail_of_conflicts_only() {
        let text = audit_text(
            &SyncKey::Referral(ReferralId::parse("r-1").unwrap()),
            &entries(),
        );
        for needle in [
            "1970-01-01 00:00:01Z",
            "created_lead",
            "lead:00Q1",
            "created lead 00Q1",
            "conflict",
            r#""winner":"crm""#,
        ] {
            assert!(text.contains(needle), "{needle:?} missing from\n{text}");
        }
        assert!(!text.contains("not shown"), "{text}");
        assert!(
            text.find("created lead").unwrap() < text.find("conflict on").unwrap(),
            "oldest first:\n{text}"
        );
    }

    #[test]
    fn json_keeps_every_field_and_an_empty_timeline_says_so() {
        let j = audit_json(&entries());
        assert_eq!(j[1]["kind"], "conflict");
        assert_eq!(j[1]["detail"]["winner"], "crm");
        assert_eq!(j[0]["key"], "referral:r-1");
        assert_eq!(j[0]["crm_record"], "lead:00Q1");
        assert_eq!(j[0]["at"], "1970-01-01T00:00:01Z");
        let key = SyncKey::Referral(ReferralId::parse("r-9").unwrap());
        assert_eq!(audit_text(&key, &[]), "no audit entries for referral:r-9\n");
    }
}
