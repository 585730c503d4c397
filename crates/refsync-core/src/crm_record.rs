//! The CRM side as plain values. The Dataverse and Salesforce connectors turn their
//! JSON into a [`CrmRecord`]; the mapping reads fields out of it by name and the merge
//! says which fields to write back. Field names are the CRM's own (`estimatedvalue`,
//! `StageName`), never translated here.

use crate::ids::{CrmEntity, CrmRecordId, CrmRecordRef, Etag};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One CRM record as the connectors read it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CrmRecord {
    /// The record type.
    pub entity: CrmEntity,
    /// The primary key; `None` for a record not created yet.
    pub id: Option<CrmRecordId>,
    /// The fields, keyed by the CRM's field names.
    pub fields: Map<String, Value>,
    /// When the record last changed (`modifiedon` / `SystemModstamp`).
    pub modified_at: Option<DateTime<Utc>>,
    /// The record's concurrency tag (`@odata.etag`), when the CRM has one.
    pub etag: Option<Etag>,
}

impl CrmRecord {
    /// An empty record of a type, with no id yet.
    pub fn new(entity: CrmEntity) -> Self {
        Self {
            entity,
            id: None,
            fields: Map::new(),
            modified_at: None,
            etag: None,
        }
    }

    /// A field's value, `Null` when absent. Matches the name exactly first, then
    /// ignoring ASCII case: Salesforce accepts `amount` for `Amount` on write but
    /// answers with `Amount`, and a mapping that spelled it the first way must not
    /// see the field as empty forever after (and write it again on every pass).
    pub fn field(&self, name: &str) -> &Value {
        self.fields
            .get(name)
            .or_else(|| {
                self.fields
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(name))
                    .map(|(_, v)| v)
            })
            .unwrap_or(&Value::Null)
    }

    /// Overwrites the given fields, as a successful CRM update would (a field
    /// already present under another ASCII case keeps its stored spelling).
    pub fn apply_update(&mut self, update: &Map<String, Value>) {
        for (name, value) in update {
            let key = self
                .fields
                .keys()
                .find(|k| k.eq_ignore_ascii_case(name))
                .cloned()
                .unwrap_or_else(|| name.clone());
            self.fields.insert(key, value.clone());
        }
    }

    /// The record's type and id, once it has an id.
    pub fn record_ref(&self) -> Option<CrmRecordRef> {
        self.id
            .as_ref()
            .map(|id| CrmRecordRef::new(self.entity.clone(), id.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fields_are_found_through_ascii_case() {
        let mut r = CrmRecord::new(CrmEntity::Opportunity);
        r.fields.insert("Amount".into(), json!(5));
        assert_eq!(r.field("Amount"), &json!(5));
        assert_eq!(r.field("amount"), &json!(5));
        assert_eq!(r.field("StageName"), &Value::Null);
        let mut update = Map::new();
        update.insert("amount".into(), json!(7));
        update.insert("StageName".into(), json!("Closed Won"));
        r.apply_update(&update);
        assert_eq!(r.fields.get("Amount"), Some(&json!(7)));
        assert!(!r.fields.contains_key("amount"));
        assert_eq!(r.field("stagename"), &json!("Closed Won"));
    }

    #[test]
    fn a_record_has_a_ref_once_it_has_an_id() {
        let mut r = CrmRecord::new(CrmEntity::Lead);
        assert_eq!(r.record_ref(), None);
        r.id = Some(CrmRecordId::parse("0f1e").unwrap());
        assert_eq!(r.record_ref().unwrap().to_string(), "lead:0f1e");
    }
}
