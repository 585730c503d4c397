//! Conversions between the domain types and the strings and integers the tables hold.
//! Both backends parse stored values through these, so a malformed row is reported
//! the same way (`StoreError::Corrupt`) whichever database it came from.

use crate::error::{Result, StoreError};
use chrono::{DateTime, Utc};
use refsync_core::{CrmEntity, CrmRecordId, CrmRecordRef, EngagementId, ReferralId, SyncKey};
use serde_json::{Map, Value};

/// SQLite keeps instants as integer microseconds since the Unix epoch: they compare
/// and sort as numbers, and match PostgreSQL's `timestamptz` precision.
pub(crate) fn to_micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

/// The inverse of [`to_micros`].
pub(crate) fn from_micros(us: i64) -> Result<DateTime<Utc>> {
    DateTime::from_timestamp_micros(us)
        .ok_or_else(|| StoreError::Corrupt(format!("timestamp out of range: {us}")))
}

/// Optional form of [`from_micros`].
pub(crate) fn opt_from_micros(us: Option<i64>) -> Result<Option<DateTime<Utc>>> {
    us.map(from_micros).transpose()
}

/// Parses a stored sync key.
pub(crate) fn parse_key(s: &str) -> Result<SyncKey> {
    SyncKey::parse(s).map_err(|e| StoreError::Corrupt(format!("sync key {s:?}: {e}")))
}

/// Parses a stored referral id.
pub(crate) fn parse_referral(s: Option<String>) -> Result<Option<ReferralId>> {
    s.map(|s| ReferralId::parse(s).map_err(|e| StoreError::Corrupt(e.to_string())))
        .transpose()
}

/// Parses a stored engagement id.
pub(crate) fn parse_engagement(s: Option<String>) -> Result<Option<EngagementId>> {
    s.map(|s| EngagementId::parse(s).map_err(|e| StoreError::Corrupt(e.to_string())))
        .transpose()
}

/// Splits a CRM record into the (entity, id) column pair.
pub(crate) fn crm_columns(r: Option<&CrmRecordRef>) -> (Option<&str>, Option<&str>) {
    match r {
        Some(r) => (Some(r.entity.as_str()), Some(r.id.as_str())),
        None => (None, None),
    }
}

/// Joins the (entity, id) column pair back into a CRM record.
pub(crate) fn parse_crm(
    entity: Option<String>,
    id: Option<String>,
) -> Result<Option<CrmRecordRef>> {
    match (entity, id) {
        (Some(e), Some(id)) => {
            let id = CrmRecordId::parse(id).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            Ok(Some(CrmRecordRef::new(CrmEntity::parse(&e), id)))
        }
        (None, None) => Ok(None),
        _ => Err(StoreError::Corrupt(
            "CRM record has an entity or an id but not both".into(),
        )),
    }
}

/// Parses a stored JSON object (a base snapshot).
pub(crate) fn parse_object(s: &str) -> Result<Map<String, Value>> {
    match serde_json::from_str(s) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(StoreError::Corrupt(
            "base snapshot is not a JSON object".into(),
        )),
        Err(e) => Err(StoreError::Corrupt(format!("base snapshot: {e}"))),
    }
}

/// Parses a stored JSON value (an audit detail).
pub(crate) fn parse_json(s: &str) -> Result<Value> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(format!("audit detail: {e}")))
}

/// Clamps a caller's limit to what SQL takes.
pub(crate) fn limit(n: u32) -> i64 {
    i64::from(n)
}

/// Counts come back as `i64`; negative would mean a broken database.
pub(crate) fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn micros_round_trip() {
        let t = Utc.timestamp_opt(1_700_000_000, 123_456_000).unwrap();
        assert_eq!(from_micros(to_micros(t)).unwrap(), t);
        assert!(from_micros(i64::MAX).is_err());
    }

    #[test]
    fn crm_pairs_must_be_whole() {
        assert!(parse_crm(Some("lead".into()), None).is_err());
        let r = parse_crm(Some("lead".into()), Some("L-1".into()))
            .unwrap()
            .unwrap();
        assert_eq!(r.to_string(), "lead:L-1");
        assert_eq!(crm_columns(Some(&r)), (Some("lead"), Some("L-1")));
    }

    #[test]
    fn base_must_be_an_object() {
        assert!(parse_object("[1]").is_err());
        assert_eq!(parse_object(r#"{"a":1}"#).unwrap()["a"], 1);
    }
}
