//! The delta half of change tracking (crm.md §1.9): a `$deltatoken` request returns
//! the rows changed since the token's version (oldest change first), then the rows
//! deleted since, as `$deletedEntity` entries, and a new `@odata.deltaLink`. Tokens
//! older than the configured lifetime (7 days by default) are refused.

use super::error::DvError;
use super::paging::DeltaToken;
use super::query::{CollectionPage, CollectionQuery, PageSettings, QueryEnv, project};
use super::schema::Table;
use super::store::Row;
use serde_json::{Value, json};

pub(crate) fn delta(
    env: &QueryEnv<'_>,
    table: &Table,
    q: &CollectionQuery,
    token: &str,
    settings: &PageSettings,
) -> Result<CollectionPage, DvError> {
    let token = DeltaToken::decode(token)
        .filter(|t| t.version <= env.store.version())
        .ok_or_else(|| DvError::bad_url(format!("The delta token '{token}' is not valid.")))?;
    let lifetime =
        chrono::Duration::from_std(settings.token_lifetime).unwrap_or(chrono::Duration::MAX);
    if env.now - token.issued > lifetime {
        // crm.md §1.9: tokens expire (7 days by default); the live message is unconfirmed.
        return Err(DvError::bad_url(
            "The delta token has expired. Request the full data set again without a $deltatoken.",
        ));
    }
    let mut changed: Vec<&Row> = env
        .store
        .rows(&table.logical_name)
        .filter(|r| r.version > token.version)
        .collect();
    changed.sort_by_key(|r| r.version);
    let mut values: Vec<Value> = changed
        .iter()
        .map(|row| Value::Object(project(env, table, row, q)))
        .collect();
    let deleted_context = format!(
        "{}$metadata#{}/$deletedEntity",
        env.links.service_root, env.links.entity_set
    );
    values.extend(env.store.deleted_since(&table.logical_name, token.version).map(|t| {
        json!({"@odata.context": deleted_context, "id": t.id.to_string(), "reason": "deleted"})
    }));
    let next = DeltaToken {
        version: env.store.version(),
        issued: env.now,
    };
    let body = json!({
        "@odata.context": env.links.context(&q.context_projection(), "/$delta"),
        "value": values,
        "@odata.deltaLink": env.links.link(&q.carried, ("$deltatoken", &next.encode())),
    });
    Ok(CollectionPage {
        body,
        applied_page_size: None,
        tracking: true,
    })
}
