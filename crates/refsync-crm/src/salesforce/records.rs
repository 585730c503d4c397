//! The mapping's canonical CRM form ↔ Salesforce record JSON.
//!
//! The canonical form already is what Salesforce reads and writes for its field types
//! (crm.md §2.2, §2.8): dates as `YYYY-MM-DD`, currency and numbers as JSON numbers,
//! picklists as their API value, checkboxes as booleans. So values pass through, and
//! this module deals with what differs: relationships (`RecordWrite.account` →
//! `AccountId`, `contact` → `ContactId` where the object has them), fields that must
//! never be in a body (`Id`, the external ID on upsert), the field list to read, and
//! `SystemModstamp` as the record's modified time. Salesforce has no ETag for these
//! objects (only Account supports conditional requests, crm.md §2.2), so none is kept.

use super::soql;
use crate::connector::{CrmError, RecordWrite};
use chrono::{DateTime, Utc};
use refsync_core::crm_record::CrmRecord;
use refsync_core::ids::{CrmEntity, CrmRecordId};
use refsync_core::mapping::EntityMapping;
use serde_json::{Map, Value};

/// The record's change stamp: moves on every change, system ones included, so it is
/// the watermark to poll by (crm.md §2.9).
pub(crate) const SYSTEM_MODSTAMP: &str = "SystemModstamp";
/// Moves on user and API edits only; the fallback when a record lacks `SystemModstamp`.
pub(crate) const LAST_MODIFIED_DATE: &str = "LastModifiedDate";
/// The primary key of every object.
pub(crate) const ID: &str = "Id";

/// The standard lookup fields an object has for the customer relationships.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Relationships {
    /// Field pointing at the customer account.
    pub(crate) account: Option<&'static str>,
    /// Field pointing at the customer contact.
    pub(crate) contact: Option<&'static str>,
}

/// Opportunity has `AccountId` and `ContactId`; Contact has `AccountId`; Lead and
/// Account have neither (a lead names its company in `Company`).
pub(crate) fn relationships(entity: &CrmEntity) -> Relationships {
    match entity {
        CrmEntity::Opportunity => Relationships {
            account: Some("AccountId"),
            contact: Some("ContactId"),
        },
        CrmEntity::Contact => Relationships {
            account: Some("AccountId"),
            contact: None,
        },
        _ => Relationships {
            account: None,
            contact: None,
        },
    }
}

/// The object's API name, checked.
pub(crate) fn object(entity: &EntityMapping) -> Result<&str, CrmError> {
    soql::name(&entity.collection)
}

/// The external ID field upserts and lookups by referral go through.
pub(crate) fn external_id_field(entity: &EntityMapping) -> Result<&str, CrmError> {
    let field = entity.referral_id_field.as_deref().ok_or_else(|| {
        CrmError::Mapping(format!(
            "[{}] has no referral_id_field, so records cannot be upserted by referral",
            entity.entity
        ))
    })?;
    soql::name(field)
}

/// Every field the mapping reads, plus `Id`, the relationships and the change stamps,
/// each once (Salesforce names are case-insensitive).
pub(crate) fn read_fields(entity: &EntityMapping) -> Result<Vec<String>, CrmError> {
    let rel = relationships(&entity.entity);
    let mut out: Vec<String> = Vec::new();
    let mut add = |name: &str| -> Result<(), CrmError> {
        let name = soql::name(name)?;
        if !out.iter().any(|f| f.eq_ignore_ascii_case(name)) {
            out.push(name.to_owned());
        }
        Ok(())
    };
    add(ID)?;
    for f in &entity.fields {
        for column in &f.crm {
            add(column)?;
        }
    }
    for extra in [
        entity.referral_id_field.as_deref(),
        entity.sync_flag_field.as_deref(),
        entity.audit_field.as_deref(),
        entity.marked_name_field.as_deref(),
        rel.account,
        rel.contact,
        Some(SYSTEM_MODSTAMP),
        Some(LAST_MODIFIED_DATE),
    ]
    .into_iter()
    .flatten()
    {
        add(extra)?;
    }
    Ok(out)
}

/// The request body for a write. `omit` is the external ID field of an upsert, which
/// travels in the URL and must not be in the body (crm.md §2.3); `Id` never is (§2.2).
pub(crate) fn write_body(
    entity: &EntityMapping,
    write: &RecordWrite,
    omit: Option<&str>,
) -> Result<Map<String, Value>, CrmError> {
    let mut body = Map::new();
    for (column, value) in &write.fields {
        if column.eq_ignore_ascii_case(ID)
            || column.eq_ignore_ascii_case(&entity.primary_key)
            || omit.is_some_and(|o| column.eq_ignore_ascii_case(o))
        {
            continue;
        }
        soql::name(column)?;
        match value {
            Value::Array(_) | Value::Object(_) => {
                return Err(CrmError::Mapping(format!(
                    "[{}] {column}: a Salesforce field holds one value, not {value}",
                    entity.entity
                )));
            }
            scalar => {
                body.insert(column.clone(), scalar.clone());
            }
        }
    }
    let rel = relationships(&entity.entity);
    for (target, id, what) in [
        (rel.account, &write.account, "account"),
        (rel.contact, &write.contact, "contact"),
    ] {
        match (target, id) {
            (Some(field), Some(id)) => {
                body.insert(field.to_owned(), Value::String(id.to_string()));
            }
            (None, Some(_)) => tracing::debug!(
                object = %entity.collection,
                "no {what} relationship on this object; the {what} is not linked"
            ),
            _ => {}
        }
    }
    Ok(body)
}

/// True when a body holds `@{`, which `/composite` would read as a reference to an
/// earlier subrequest (crm.md §2.5) — such a write has to go on its own.
pub(crate) fn has_reference_marker(body: &Map<String, Value>) -> bool {
    body.values()
        .any(|v| matches!(v, Value::String(s) if s.contains("@{")))
}

/// Parses Salesforce's `2024-05-08T21:20:00.000+0000` (and RFC 3339).
pub(crate) fn parse_timestamp(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .or_else(|_| DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f%z"))
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// A record as the REST API renders it (`attributes` first, then the fields).
pub(crate) fn to_record(entity: &EntityMapping, json: &Value) -> Result<CrmRecord, CrmError> {
    let Some(obj) = json.as_object() else {
        return Err(CrmError::Unavailable(format!(
            "Salesforce answered a {} read with something that is not a record",
            entity.collection
        )));
    };
    let id = obj
        .get(ID)
        .and_then(Value::as_str)
        .map(CrmRecordId::parse)
        .transpose()
        .map_err(|e| CrmError::Unavailable(format!("Salesforce returned a bad record id: {e}")))?;
    let stamp = |name: &str| {
        obj.get(name)
            .and_then(Value::as_str)
            .and_then(parse_timestamp)
    };
    let mut fields = obj.clone();
    fields.remove("attributes");
    Ok(CrmRecord {
        entity: entity.entity.clone(),
        id,
        modified_at: stamp(SYSTEM_MODSTAMP).or_else(|| stamp(LAST_MODIFIED_DATE)),
        fields,
        etag: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use refsync_core::mapping::Mapping;
    use serde_json::json;

    fn opportunity() -> EntityMapping {
        Mapping::salesforce()
            .unwrap()
            .entity(&CrmEntity::Opportunity)
            .unwrap()
            .clone()
    }

    #[test]
    fn the_field_list_covers_the_mapping_once() {
        let fields = read_fields(&opportunity()).unwrap();
        for f in [
            "Id",
            "Name",
            "Amount",
            "CloseDate",
            "StageName",
            "Referral_Identifier__c",
            "Sync_with_Partner_Center__c",
            "Audit__c",
            "AccountId",
            "ContactId",
            "SystemModstamp",
            "LastModifiedDate",
        ] {
            assert_eq!(
                fields.iter().filter(|x| *x == f).count(),
                1,
                "{f} in {fields:?}"
            );
        }
    }

    #[test]
    fn bodies_leave_out_keys_and_carry_relationships() {
        let mut fields = Map::new();
        fields.insert("Referral_Identifier__c".into(), json!("r-1"));
        fields.insert("Id".into(), json!("006000000000001AAA"));
        fields.insert("Amount".into(), json!(50000.5));
        fields.insert("CloseDate".into(), json!("2026-03-31"));
        fields.insert("Sync_with_Partner_Center__c".into(), json!(true));
        fields.insert("Description".into(), Value::Null);
        let write = RecordWrite {
            fields,
            account: Some(CrmRecordId::parse("001000000000001AAA").unwrap()),
            contact: Some(CrmRecordId::parse("003000000000001AAA").unwrap()),
        };
        let body = write_body(&opportunity(), &write, Some("referral_identifier__c")).unwrap();
        assert_eq!(
            Value::Object(body),
            json!({"Amount": 50000.5, "CloseDate": "2026-03-31", "Sync_with_Partner_Center__c": true,
                   "Description": null, "AccountId": "001000000000001AAA", "ContactId": "003000000000001AAA"})
        );
        let mut lead = opportunity();
        lead.entity = CrmEntity::Lead;
        let body = write_body(&lead, &write, None).unwrap();
        assert!(
            !body.contains_key("AccountId"),
            "a lead has no account lookup"
        );
        assert!(body.contains_key("Referral_Identifier__c"));
        let mut bad = write.clone();
        bad.fields.insert("Amount".into(), json!([1, 2]));
        assert!(matches!(
            write_body(&opportunity(), &bad, None),
            Err(CrmError::Mapping(_))
        ));
    }

    #[test]
    fn records_read_back_with_their_modstamp() {
        let r = to_record(
            &opportunity(),
            &json!({"attributes": {"type": "Opportunity", "url": "/x"}, "Id": "006000000000001AAA",
                    "Amount": 5.0, "SystemModstamp": "2026-01-15T10:00:00.123+0000",
                    "LastModifiedDate": "2026-01-15T09:00:00.000+0000"}),
        )
        .unwrap();
        assert_eq!(r.id.unwrap().as_str(), "006000000000001AAA");
        assert!(!r.fields.contains_key("attributes"));
        assert_eq!(
            r.modified_at.unwrap(),
            parse_timestamp("2026-01-15T10:00:00.123Z").unwrap()
        );
        assert_eq!(r.etag, None);
        assert!(has_reference_marker(
            json!({"Description": "see @{x.id}"}).as_object().unwrap()
        ));
    }
}
