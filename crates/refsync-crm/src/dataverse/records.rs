//! The mapping's canonical CRM form ↔ Dataverse record JSON.
//!
//! Most values already are what the Web API reads and writes (crm.md §1.4): money and
//! numbers as JSON numbers, DateOnly columns as `YYYY-MM-DD`, choices and
//! statecode/statuscode as integers, Yes/No as booleans, unknown columns as given. So
//! values pass through, and this module deals with what differs:
//!
//! - lookups: the core sees a lookup (`transactioncurrencyid`) as its target's key value
//!   (`USD`); on write it becomes `transactioncurrencyid@odata.bind: /transactioncurrencies(<id>)`,
//!   on read `_transactioncurrencyid_value` is turned back into the key value (the ids
//!   are resolved by `lookups`);
//! - relationships the engine decides (`RecordWrite.account` / `.contact`) as the
//!   standard navigation properties of each table;
//! - columns that must never be in a body (the primary key, the alternate key on upsert,
//!   crm.md §1.6);
//! - the `$select` list, `@odata.etag` → `etag`, `modifiedon` → `modified_at`.

use super::odata;
use crate::connector::{CrmError, RecordWrite};
use chrono::{DateTime, Utc};
use refsync_core::crm_record::CrmRecord;
use refsync_core::ids::{CrmEntity, CrmRecordId, Etag};
use refsync_core::mapping::{EntityMapping, Transform};
use serde_json::{Map, Value};
use std::collections::HashMap;

/// The column every table maintains on each write (crm.md §1.5): the poll watermark.
pub(crate) const MODIFIED_ON: &str = "modifiedon";
/// The weak ETag of a record (crm.md §1.5).
pub(crate) const ETAG: &str = "@odata.etag";
/// Entity set of accounts (crm.md §1.4).
pub(crate) const ACCOUNTS: &str = "accounts";
/// Entity set of contacts.
pub(crate) const CONTACTS: &str = "contacts";
/// Entity set of opportunities.
pub(crate) const OPPORTUNITIES: &str = "opportunities";

/// A mapped lookup column and the key its target is addressed by.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct LookupColumn {
    /// The lookup (and navigation property) name, e.g. `transactioncurrencyid`.
    pub(crate) column: String,
    /// The target's entity set, e.g. `transactioncurrencies`.
    pub(crate) target: String,
    /// The target's column holding the key value, e.g. `isocurrencycode`.
    pub(crate) key: String,
}

impl LookupColumn {
    /// How the lookup is read: `_transactioncurrencyid_value` (crm.md §1.4).
    pub(crate) fn read_name(&self) -> String {
        format!("_{}_value", self.column)
    }
}

/// The mapping's lookup columns.
pub(crate) fn lookup_columns(entity: &EntityMapping) -> Vec<LookupColumn> {
    entity
        .fields
        .iter()
        .filter_map(|f| match &f.transform {
            Transform::Lookup { target, key, .. } => f.crm.first().map(|column| LookupColumn {
                column: column.clone(),
                target: target.clone(),
                key: key.clone(),
            }),
            _ => None,
        })
        .collect()
}

/// The navigation properties a table binds the engine's relationships through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Relationships {
    /// Bound to the customer account.
    pub(crate) account: &'static [&'static str],
    /// Bound to the customer contact.
    pub(crate) contact: &'static [&'static str],
    /// Lookup columns read back, so the engine sees the links.
    pub(crate) read: &'static [&'static str],
}

/// Opportunity: the customer (`customerid_account`, required, crm.md §1.4) and the
/// parent account and contact; contact: its company (`parentcustomerid_account`); lead:
/// the existing account and contact it is about.
pub(crate) fn relationships(entity: &CrmEntity) -> Relationships {
    match entity {
        CrmEntity::Opportunity => Relationships {
            account: &["customerid_account", "parentaccountid"],
            contact: &["parentcontactid"],
            read: &[
                "_customerid_value",
                "_parentaccountid_value",
                "_parentcontactid_value",
            ],
        },
        CrmEntity::Contact => Relationships {
            account: &["parentcustomerid_account"],
            contact: &[],
            read: &["_parentcustomerid_value"],
        },
        CrmEntity::Lead => Relationships {
            account: &["parentaccountid"],
            contact: &["parentcontactid"],
            read: &[
                "_parentaccountid_value",
                "_parentcontactid_value",
                "_qualifyingopportunityid_value",
            ],
        },
        _ => Relationships {
            account: &[],
            contact: &[],
            read: &[],
        },
    }
}

/// The entity set, checked.
pub(crate) fn entity_set(entity: &EntityMapping) -> Result<&str, CrmError> {
    odata::name(&entity.collection)
}

/// The alternate-key column holding the referral id.
pub(crate) fn referral_key(entity: &EntityMapping) -> Result<&str, CrmError> {
    let column = entity.referral_id_field.as_deref().ok_or_else(|| {
        CrmError::Mapping(format!(
            "[{}] has no referral_id_field, so records cannot be upserted by referral",
            entity.entity
        ))
    })?;
    odata::name(column)
}

/// The `$select` list: the primary key, every mapped column (lookups by their read
/// name), the referral key, flag, audit and name columns, the relationships and
/// `modifiedon`, each once.
pub(crate) fn select(entity: &EntityMapping) -> Result<String, CrmError> {
    let lookups = lookup_columns(entity);
    let mut out: Vec<String> = Vec::new();
    let mut add = |column: &str| -> Result<(), CrmError> {
        let read = lookups
            .iter()
            .find(|l| l.column == column)
            .map(LookupColumn::read_name)
            .unwrap_or_else(|| column.to_owned());
        odata::name(&read)?;
        if !out.contains(&read) {
            out.push(read);
        }
        Ok(())
    };
    add(&entity.primary_key)?;
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
        Some(MODIFIED_ON),
    ]
    .into_iter()
    .flatten()
    {
        add(extra)?;
    }
    for read in relationships(&entity.entity).read {
        add(read)?;
    }
    Ok(out.join(","))
}

/// The request body for a write. `omit` is the alternate-key column of an upsert,
/// which travels in the URL (crm.md §1.6); the primary key never goes in a body.
/// `resolved` holds the target id of each lookup value (`None` clears the lookup).
pub(crate) fn write_body(
    entity: &EntityMapping,
    write: &RecordWrite,
    omit: Option<&str>,
    resolved: &HashMap<String, Option<String>>,
) -> Result<Map<String, Value>, CrmError> {
    let lookups = lookup_columns(entity);
    let mut body = Map::new();
    for (column, value) in &write.fields {
        if column.eq_ignore_ascii_case(&entity.primary_key)
            || omit.is_some_and(|o| column.eq_ignore_ascii_case(o))
        {
            continue;
        }
        if let Some(lookup) = lookups.iter().find(|l| l.column == *column) {
            let bound = match resolved.get(column) {
                Some(Some(id)) => Value::String(odata::bind(&lookup.target, id)?),
                Some(None) => Value::Null,
                None => {
                    return Err(CrmError::Mapping(format!(
                        "[{}] {column}: the lookup value {value} was not resolved",
                        entity.entity
                    )));
                }
            };
            body.insert(format!("{column}@odata.bind"), bound);
            continue;
        }
        odata::name(column)?;
        match value {
            Value::Array(_) | Value::Object(_) => {
                return Err(CrmError::Mapping(format!(
                    "[{}] {column}: a Dataverse column holds one value, not {value}",
                    entity.entity
                )));
            }
            scalar => {
                body.insert(column.clone(), scalar.clone());
            }
        }
    }
    let rel = relationships(&entity.entity);
    for (properties, id, set, what) in [
        (rel.account, &write.account, ACCOUNTS, "account"),
        (rel.contact, &write.contact, CONTACTS, "contact"),
    ] {
        let Some(id) = id else { continue };
        if properties.is_empty() {
            tracing::debug!(table = %entity.collection, "no {what} relationship on this table; the {what} is not linked");
        }
        for property in properties {
            body.insert(
                format!("{property}@odata.bind"),
                Value::String(odata::bind(set, id.as_str())?),
            );
        }
    }
    Ok(body)
}

/// Parses `modifiedon` (`2026-01-15T10:00:00Z`).
pub(crate) fn parse_timestamp(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// A record as the Web API renders it: annotations dropped (the ETag kept as `etag`),
/// the primary key as `id`. Lookups are still ids here; `lookups` fills in their keys.
pub(crate) fn to_record(entity: &EntityMapping, json: &Value) -> Result<CrmRecord, CrmError> {
    let Some(obj) = json.as_object() else {
        return Err(CrmError::Unavailable(format!(
            "Dataverse answered a {} read with something that is not a record",
            entity.collection
        )));
    };
    let id = obj
        .get(&entity.primary_key)
        .and_then(Value::as_str)
        .map(CrmRecordId::parse)
        .transpose()
        .map_err(|e| CrmError::Unavailable(format!("Dataverse returned a bad record id: {e}")))?;
    let etag = obj.get(ETAG).and_then(Value::as_str).map(Etag::new);
    let modified_at = obj
        .get(MODIFIED_ON)
        .and_then(Value::as_str)
        .and_then(parse_timestamp);
    let fields: Map<String, Value> = obj
        .iter()
        .filter(|(k, _)| !k.contains('@'))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Ok(CrmRecord {
        entity: entity.entity.clone(),
        id,
        fields,
        modified_at,
        etag,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use refsync_core::mapping::Mapping;
    use serde_json::json;

    fn mapping(e: CrmEntity) -> EntityMapping {
        Mapping::dynamics().unwrap().entity(&e).unwrap().clone()
    }

    const ACCOUNT: &str = "00000000-0000-0000-0000-0000000000a1";
    const CONTACT: &str = "00000000-0000-0000-0000-0000000000c1";
    const USD: &str = "00000000-0000-0000-0000-00000000005d";

    #[test]
    fn the_select_list_covers_the_mapping_once_with_lookups_by_read_name() {
        let select = select(&mapping(CrmEntity::Opportunity)).unwrap();
        let columns: Vec<&str> = select.split(',').collect();
        for c in [
            "opportunityid",
            "name",
            "estimatedvalue",
            "_transactioncurrencyid_value",
            "estimatedclosedate",
            "statecode",
            "statuscode",
            "msft_microsoftpartnercenterreferralidentifier",
            "msft_microsoftpartnercenterreferralsyncaudit",
            "modifiedon",
            "_customerid_value",
        ] {
            assert_eq!(
                columns.iter().filter(|x| **x == c).count(),
                1,
                "{c} in {select}"
            );
        }
        assert!(!columns.contains(&"transactioncurrencyid"));
    }

    #[test]
    fn bodies_bind_lookups_and_relationships_and_leave_out_keys() {
        let opp = mapping(CrmEntity::Opportunity);
        let mut fields = Map::new();
        fields.insert(
            "msft_microsoftpartnercenterreferralidentifier".into(),
            json!("r-1"),
        );
        fields.insert("opportunityid".into(), json!(ACCOUNT));
        fields.insert("estimatedvalue".into(), json!(50000.5));
        fields.insert("estimatedclosedate".into(), json!("2026-03-31"));
        fields.insert("transactioncurrencyid".into(), json!("USD"));
        fields.insert("description".into(), Value::Null);
        let write = RecordWrite {
            fields,
            account: Some(CrmRecordId::parse(ACCOUNT).unwrap()),
            contact: Some(CrmRecordId::parse(CONTACT).unwrap()),
        };
        let resolved = HashMap::from([("transactioncurrencyid".to_owned(), Some(USD.to_owned()))]);
        let body = write_body(
            &opp,
            &write,
            Some("msft_microsoftpartnercenterreferralidentifier"),
            &resolved,
        )
        .unwrap();
        assert_eq!(
            Value::Object(body),
            json!({
                "estimatedvalue": 50000.5,
                "estimatedclosedate": "2026-03-31",
                "description": null,
                "transactioncurrencyid@odata.bind": format!("/transactioncurrencies({USD})"),
                "customerid_account@odata.bind": format!("/accounts({ACCOUNT})"),
                "parentaccountid@odata.bind": format!("/accounts({ACCOUNT})"),
                "parentcontactid@odata.bind": format!("/contacts({CONTACT})"),
            })
        );
        // A contact hangs off its account through parentcustomerid.
        let contact = RecordWrite {
            fields: Map::new(),
            account: Some(CrmRecordId::parse(ACCOUNT).unwrap()),
            contact: None,
        };
        let body = write_body(
            &mapping(CrmEntity::Contact),
            &contact,
            None,
            &HashMap::new(),
        )
        .unwrap();
        assert_eq!(
            Value::Object(body),
            json!({"parentcustomerid_account@odata.bind": format!("/accounts({ACCOUNT})")})
        );
        // An unresolved lookup is a bug, never silently dropped.
        let mut unresolved = write.clone();
        unresolved.account = None;
        assert!(write_body(&opp, &unresolved, None, &HashMap::new()).is_err());
    }

    #[test]
    fn records_read_back_without_annotations() {
        let r = to_record(
            &mapping(CrmEntity::Lead),
            &json!({"@odata.context": "x", "@odata.etag": "W/\"42\"", "leadid": ACCOUNT,
                    "subject": "s", "modifiedon": "2026-01-15T10:00:00Z",
                    "_transactioncurrencyid_value": USD,
                    "_transactioncurrencyid_value@OData.Community.Display.V1.FormattedValue": "US Dollar"}),
        )
        .unwrap();
        assert_eq!(r.id.unwrap().as_str(), ACCOUNT);
        assert_eq!(r.etag.unwrap().as_str(), "W/\"42\"");
        assert_eq!(
            r.modified_at.unwrap(),
            parse_timestamp("2026-01-15T10:00:00Z").unwrap()
        );
        assert!(r.fields.keys().all(|k| !k.contains('@')), "{:?}", r.fields);
        assert_eq!(r.fields["subject"], json!("s"));
    }
}
