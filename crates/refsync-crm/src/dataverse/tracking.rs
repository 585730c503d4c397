//! Reading changes with Dataverse change tracking (crm.md §1.9): the first read
//! asks for every record with `Prefer: odata.track-changes` and pages through them;
//! its last page carries an `@odata.deltaLink`, and each GET of a delta link returns
//! only what was created, updated or deleted since, with the next delta link.
//!
//! Against a time-based poll this reads each change once: no overlap to read again,
//! no page spent on our own earlier writes. Whether lead and opportunity have
//! tracking on by default is unconfirmed, so the first read finds out: an answer that
//! did not apply `odata.track-changes` marks the table untracked for this process and
//! the poller reads it by modified time instead. A delta link the service refuses
//! (tokens expire after 7 days by default) starts the read over.

use super::DataverseConnector;
use super::errors::{Reply, failure};
use super::records;
use super::web::Call;
use crate::connector::{CrmError, TrackedChanges};
use http::StatusCode;
use refsync_core::mapping::EntityMapping;
use serde_json::Value;
use std::collections::HashSet;
use std::sync::{Mutex, PoisonError};
use url::Url;

/// The tables found not to track changes, by entity set.
#[derive(Debug, Default)]
pub(super) struct Untracked(Mutex<HashSet<String>>);

impl Untracked {
    fn contains(&self, entity_set: &str) -> bool {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(entity_set)
    }

    fn insert(&self, entity_set: &str) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(entity_set.to_owned());
    }
}

impl DataverseConnector {
    /// One step of a tracked read from `cursor` (see the module comment).
    pub(super) async fn tracked(
        &self,
        entity: &EntityMapping,
        cursor: Option<&str>,
    ) -> Result<Option<TrackedChanges>, CrmError> {
        let entity_set = records::entity_set(entity)?;
        if !self.change_tracking || self.untracked.contains(entity_set) {
            return Ok(None);
        }
        let resumed = match cursor {
            Some(link) => self.resume_tracked(entity, link).await?,
            None => None,
        };
        let restarted = cursor.is_some() && resumed.is_none();
        let reply = match resumed {
            Some(reply) => reply,
            None => self.first_tracked_page(entity).await?,
        };
        if !reply.ok() {
            return Err(failure(&reply));
        }
        if !tracking_applied(&reply) {
            tracing::info!(entity = %entity.entity, "change tracking is off for this table; reading it by modified time");
            self.untracked.insert(entity_set);
            return Ok(None);
        }
        let link = |name: &str| reply.body.get(name).and_then(Value::as_str);
        let (cursor, caught_up) = match (link("@odata.nextLink"), link("@odata.deltaLink")) {
            (Some(next), _) => (next.to_owned(), false),
            (None, Some(delta)) => (delta.to_owned(), true),
            (None, None) => {
                return Err(CrmError::Unavailable(
                    "Dataverse answered a tracked read with neither a next nor a delta link"
                        .to_owned(),
                ));
            }
        };
        let rows = reply.body.get("value").and_then(Value::as_array);
        let mut out = Vec::new();
        for row in rows.into_iter().flatten().filter(|r| !is_deletion(r)) {
            out.push(self.finish(entity, row).await?);
        }
        Ok(Some(TrackedChanges {
            records: out,
            cursor,
            caught_up,
            restarted,
        }))
    }

    /// The answer to the stored link; `None` when it cannot be used (not a URL, or
    /// refused: an expired token) and the read must start over.
    async fn resume_tracked(
        &self,
        entity: &EntityMapping,
        link: &str,
    ) -> Result<Option<Reply>, CrmError> {
        let link = match Url::parse(link) {
            Ok(link) => link,
            Err(e) => {
                tracing::warn!(entity = %entity.entity, error = %e, "the stored change-tracking link is not a URL; reading every record again");
                return Ok(None);
            }
        };
        let reply = self
            .web
            .send(self.tracked_call(Call::get_url(link))?)
            .await?;
        if reply.status == StatusCode::BAD_REQUEST {
            let (_, message) = reply.error();
            tracing::warn!(entity = %entity.entity, %message, "Dataverse refused the change-tracking link; reading every record again");
            return Ok(None);
        }
        Ok(Some(reply))
    }

    /// The first page of every record, asking for tracking.
    async fn first_tracked_page(&self, entity: &EntityMapping) -> Result<Reply, CrmError> {
        let call = Call::get(records::entity_set(entity)?.to_owned())
            .query("$select", records::select(entity)?);
        self.web.send(self.tracked_call(call)?).await
    }

    /// Every page asks for tracking, so the last page of the first read carries the
    /// delta link however the service keeps paging state.
    fn tracked_call(&self, call: Call) -> Result<Call, CrmError> {
        call.prefer(&format!(
            "odata.track-changes,odata.maxpagesize={}",
            self.page_size
        ))
    }
}

/// The answer was a tracked one: the preference was applied, or it ends in a delta link.
fn tracking_applied(reply: &Reply) -> bool {
    let applied = reply
        .headers
        .get_all("preference-applied")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim().eq_ignore_ascii_case("odata.track-changes"));
    applied || reply.body.get("@odata.deltaLink").is_some()
}

/// A `$deletedEntity` entry of a delta answer.
fn is_deletion(row: &Value) -> bool {
    row.get("@odata.context")
        .and_then(Value::as_str)
        .is_some_and(|c| c.ends_with("/$deletedEntity"))
        || row.get("reason").and_then(Value::as_str) == Some("deleted")
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderMap, HeaderValue};
    use serde_json::json;

    fn reply(applied: Option<&'static str>, body: Value) -> Reply {
        let mut headers = HeaderMap::new();
        if let Some(a) = applied {
            headers.insert("preference-applied", HeaderValue::from_static(a));
        }
        Reply {
            status: StatusCode::OK,
            headers,
            body,
        }
    }

    #[test]
    fn tracking_is_applied_when_the_preference_is_or_a_delta_link_comes_back() {
        assert!(tracking_applied(&reply(
            Some("odata.maxpagesize=500, odata.track-changes"),
            json!({"value": []})
        )));
        assert!(tracking_applied(&reply(
            None,
            json!({"value": [], "@odata.deltaLink": "https://x/api/data/v9.2/leads?$deltatoken=1"})
        )));
        assert!(!tracking_applied(&reply(
            Some("odata.maxpagesize=500"),
            json!({"value": [], "@odata.nextLink": "https://x/api/data/v9.2/leads?$skiptoken=a"})
        )));
    }

    #[test]
    fn deleted_entities_are_told_apart_from_records() {
        assert!(is_deletion(&json!({
            "@odata.context": "https://x/api/data/v9.2/$metadata#leads/$deletedEntity",
            "id": "00000000-0000-0000-0000-000000000001",
            "reason": "deleted"
        })));
        assert!(!is_deletion(
            &json!({"leadid": "00000000-0000-0000-0000-000000000001"})
        ));
    }
}
