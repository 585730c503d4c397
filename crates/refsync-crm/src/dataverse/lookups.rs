//! Lookup values between the core's key form and Dataverse ids: `USD` ↔ the
//! `transactioncurrencies` row whose `isocurrencycode` is `USD` (crm.md §1.4: a lookup
//! is written as `nav@odata.bind` to the target's id and read as `_nav_value`).
//!
//! Targets such as currencies are few and almost never change, so each pair is asked
//! for once per connector and kept: a write that sets a currency already seen costs no
//! extra call, which keeps a new lead at one call. Misses cost one `GET`.

use super::errors::failure;
use super::odata;
use super::records::LookupColumn;
use super::web::{Call, Web};
use crate::connector::CrmError;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

/// (target entity set, key column, key value in upper case) → id; and (target, key
/// column, id) → key value.
#[derive(Debug, Default)]
pub(crate) struct LookupCache {
    ids: Mutex<HashMap<(String, String, String), String>>,
    keys: Mutex<HashMap<(String, String, String), String>>,
}

/// The id in a row read with `$select=<key>`: the primary key always comes back
/// (crm.md §1.7) and is the one GUID-valued `…id` column that is not a lookup.
fn row_id(row: &Value, key: &str) -> Option<String> {
    row.as_object()?
        .iter()
        .filter(|(name, _)| {
            !name.contains('@')
                && !name.starts_with('_')
                && name.as_str() != key
                && name.ends_with("id")
        })
        .filter_map(|(_, v)| v.as_str())
        .find(|v| uuid::Uuid::parse_str(v).is_ok())
        .map(|v| v.to_ascii_lowercase())
}

impl LookupCache {
    fn remember(&self, lookup: &LookupColumn, key_value: &str, id: &str) {
        let id = id.to_ascii_lowercase();
        self.ids
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(
                (
                    lookup.target.clone(),
                    lookup.key.clone(),
                    key_value.to_uppercase(),
                ),
                id.clone(),
            );
        self.keys
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(
                (lookup.target.clone(), lookup.key.clone(), id),
                key_value.to_owned(),
            );
    }

    /// The id of the target row whose key column holds `key_value` (compared without
    /// case, as Dataverse compares strings, §1.7). None matching is refused data.
    pub(crate) async fn id_for(
        &self,
        web: &Web,
        lookup: &LookupColumn,
        key_value: &str,
    ) -> Result<String, CrmError> {
        let cache_key = (
            lookup.target.clone(),
            lookup.key.clone(),
            key_value.to_uppercase(),
        );
        if let Some(id) = self
            .ids
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&cache_key)
        {
            return Ok(id.clone());
        }
        let filter = odata::all_equal(&[(&lookup.key, &Value::String(key_value.to_owned()))])?;
        let call = Call::get(odata::name(&lookup.target)?.to_owned())
            .query("$select", odata::name(&lookup.key)?)
            .query("$filter", filter)
            .query("$top", "1");
        let rows = web.collect(call, 1, None).await?;
        let Some(row) = rows.first() else {
            return Err(CrmError::Rejected {
                code: None,
                message: format!(
                    "no {} row has {} = {key_value:?} (the {} lookup cannot be set)",
                    lookup.target, lookup.key, lookup.column
                ),
            });
        };
        let id = row_id(row, &lookup.key).ok_or_else(|| {
            CrmError::Unavailable(format!(
                "Dataverse returned a {} row without its id",
                lookup.target
            ))
        })?;
        let stored = row
            .get(&lookup.key)
            .and_then(Value::as_str)
            .unwrap_or(key_value)
            .to_owned();
        self.remember(lookup, &stored, &id);
        Ok(id)
    }

    /// The key value of the target row `id`; `None` when the row is gone.
    pub(crate) async fn key_for(
        &self,
        web: &Web,
        lookup: &LookupColumn,
        id: &str,
    ) -> Result<Option<String>, CrmError> {
        let cache_key = (
            lookup.target.clone(),
            lookup.key.clone(),
            id.to_ascii_lowercase(),
        );
        if let Some(key) = self
            .keys
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&cache_key)
        {
            return Ok(Some(key.clone()));
        }
        let call = Call::get(odata::by_id(&lookup.target, id)?)
            .query("$select", odata::name(&lookup.key)?);
        let reply = web.send(call).await?;
        if reply.status == http::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !reply.ok() {
            return Err(failure(&reply));
        }
        let Some(key) = reply.body.get(&lookup.key).and_then(Value::as_str) else {
            return Ok(None);
        };
        self.remember(lookup, key, id);
        Ok(Some(key.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_row_id_is_the_guid_valued_primary_key() {
        let row = json!({
            "@odata.etag": "W/\"1\"",
            "isocurrencycode": "USD",
            "_organizationid_value": "00000000-0000-0000-0000-000000000009",
            "transactioncurrencyid": "6A1B0E3C-0000-0000-0000-000000000001"
        });
        assert_eq!(
            row_id(&row, "isocurrencycode").as_deref(),
            Some("6a1b0e3c-0000-0000-0000-000000000001")
        );
        assert_eq!(
            row_id(&json!({"isocurrencycode": "USD"}), "isocurrencycode"),
            None
        );
    }
}
