//! State changes the way Dataverse requires them (crm.md §1.4):
//!
//! - statecode is always written with statuscode;
//! - closed records are read-only until reactivated, so moving a closed record to
//!   another closed state first reopens it (statecode 0, statuscode 1 — the default
//!   open status of lead and opportunity);
//! - an opportunity is won or lost through `WinOpportunity` / `LoseOpportunity` when
//!   `close_opportunities_with_actions` is on (whether a plain PATCH is refused is
//!   unconfirmed; the actions are documented and also record the opportunityclose);
//! - a lead is qualified or disqualified by PATCH;
//! - retiring a lead qualifies it pointing at the opportunity, by PATCH;
//! - a write that reopens a closed record carries its other columns in the same PATCH
//!   (Dataverse accepts that); a write that edits a closed record without reopening
//!   it is sent as is and Dataverse's refusal comes back as `Rejected` — reopening is
//!   the mapping's call (an open status in the write), never done behind its back.
//!
//! A state change first reads the current state, so a repeat after a crash (the close
//! done, the link not yet saved) finds the record already there and does nothing.

use super::DataverseConnector;
use super::errors::failure;
use super::odata;
use super::records::{self, OPPORTUNITIES};
use super::web::Call;
use crate::connector::{CrmError, RecordWrite, UpsertOutcome};
use http::{Method, StatusCode};
use refsync_core::crm_record::CrmRecord;
use refsync_core::ids::{CrmEntity, CrmRecordId, ReferralId};
use refsync_core::mapping::EntityMapping;
use refsync_outbound::call::Idempotency;
use serde_json::{Value, json};

/// The state column.
pub(super) const STATECODE: &str = "statecode";
/// The status-reason column.
pub(super) const STATUSCODE: &str = "statuscode";
/// Opportunity statecode Won (crm.md §1.4).
const WON: i64 = 1;
/// Opportunity statecode Lost.
const LOST: i64 = 2;

/// The statecode and statuscode a write names (either may be absent).
type StateRequest = (Option<i64>, Option<i64>);

/// The state a write asks for, if it touches statecode or statuscode.
fn requested(write: &RecordWrite) -> Result<Option<StateRequest>, CrmError> {
    let read = |name: &str| -> Result<Option<i64>, CrmError> {
        match write.fields.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_i64()
                .map(Some)
                .ok_or_else(|| CrmError::Mapping(format!("{name} must be an integer, not {v}"))),
        }
    };
    let (state, status) = (read(STATECODE)?, read(STATUSCODE)?);
    Ok((state.is_some() || status.is_some()).then_some((state, status)))
}

/// The write without its state columns.
fn without_state(write: &RecordWrite) -> RecordWrite {
    let mut rest = write.clone();
    rest.fields.remove(STATECODE);
    rest.fields.remove(STATUSCODE);
    rest
}

/// The status an opportunity action sets when the write names only the state
/// (Won → 3 Won, Lost → 4 Canceled, crm.md §1.4).
fn default_close_status(state: i64) -> i64 {
    if state == WON { 3 } else { 4 }
}

impl DataverseConnector {
    /// True when this state must be reached through an opportunity action.
    fn closes_by_action(&self, entity: &EntityMapping, state: Option<i64>) -> bool {
        self.close_with_actions
            && entity.entity == CrmEntity::Opportunity
            && matches!(state, Some(WON | LOST))
    }

    /// The record's (statecode, statuscode): one `GET`.
    async fn current_state(
        &self,
        entity: &EntityMapping,
        id: &CrmRecordId,
    ) -> Result<(i64, i64), CrmError> {
        let set = records::entity_set(entity)?;
        let call = Call::get(odata::by_id(set, id.as_str())?)
            .query("$select", format!("{STATECODE},{STATUSCODE}"));
        let reply = self.web.send(call).await?;
        if !reply.ok() {
            return Err(failure(&reply));
        }
        let code = |name: &str| reply.body.get(name).and_then(Value::as_i64).unwrap_or(0);
        Ok((code(STATECODE), code(STATUSCODE)))
    }

    /// A bare state PATCH (`If-Match: *`), no answer body.
    async fn set_state(
        &self,
        entity: &EntityMapping,
        id: &CrmRecordId,
        state: i64,
        status: i64,
    ) -> Result<(), CrmError> {
        let set = records::entity_set(entity)?;
        let call = Call::write(
            Method::PATCH,
            odata::by_id(set, id.as_str())?,
            &json!({ STATECODE: state, STATUSCODE: status }),
            Idempotency::Idempotent,
        )?
        .if_match_any();
        let reply = self.web.send(call).await?;
        if reply.ok() {
            Ok(())
        } else {
            Err(failure(&reply))
        }
    }

    /// `POST WinOpportunity` / `LoseOpportunity` with the documented body (crm.md §1.4,
    /// shape unconfirmed). Not repeated: a second close of a closed opportunity fails.
    async fn close_opportunity(
        &self,
        id: &CrmRecordId,
        state: i64,
        status: i64,
    ) -> Result<(), CrmError> {
        let (action, subject) = if state == WON {
            ("WinOpportunity", "Won (Partner Center referral)")
        } else {
            ("LoseOpportunity", "Lost (Partner Center referral)")
        };
        let body = json!({
            "Status": status,
            "OpportunityClose": {
                "subject": subject,
                "opportunityid@odata.bind": odata::bind(OPPORTUNITIES, id.as_str())?,
            }
        });
        let call = Call::write(Method::POST, action, &body, Idempotency::NotIdempotent)?;
        let reply = self.web.send(call).await?;
        if reply.ok() {
            tracing::info!(opportunity = %id, action, status, "opportunity closed through its action");
            Ok(())
        } else {
            Err(failure(&reply))
        }
    }

    /// The record after a multi-step change.
    async fn reread(
        &self,
        entity: &EntityMapping,
        id: &CrmRecordId,
    ) -> Result<CrmRecord, CrmError> {
        self.read_by_id(entity, id)
            .await?
            .ok_or_else(|| CrmError::Rejected {
                code: None,
                message: format!("{} {id} does not exist", entity.collection),
            })
    }

    /// `update`: a plain `PATCH`, or the state change steps when the write touches
    /// statecode/statuscode.
    pub(super) async fn update_with_state(
        &self,
        entity: &EntityMapping,
        id: &CrmRecordId,
        write: &RecordWrite,
    ) -> Result<CrmRecord, CrmError> {
        let Some((state, status)) = requested(write)? else {
            if write.is_empty() {
                return self.reread(entity, id).await;
            }
            return self.patch(entity, id, write).await;
        };
        let current = self.current_state(entity, id).await?;
        let target_state = state.unwrap_or(current.0);
        let rest = without_state(write);
        let already = target_state == current.0 && status.is_none_or(|s| s == current.1);
        if already {
            if rest.is_empty() {
                return self.reread(entity, id).await;
            }
            return self.patch(entity, id, &rest).await;
        }
        if current.0 != 0 && target_state != 0 {
            // Closed to another closed state: closed records are read-only (§1.4).
            self.set_state(entity, id, 0, 1).await?;
        }
        if self.closes_by_action(entity, Some(target_state)) {
            if !rest.is_empty() {
                self.patch(entity, id, &rest).await?;
            }
            let status = status.unwrap_or_else(|| default_close_status(target_state));
            self.close_opportunity(id, target_state, status).await?;
            return self.reread(entity, id).await;
        }
        let mut full = write.clone();
        full.fields
            .insert(STATECODE.to_owned(), json!(target_state));
        if let Some(status) = status {
            full.fields.insert(STATUSCODE.to_owned(), json!(status));
        }
        self.patch(entity, id, &full).await
    }

    /// `upsert_by_referral`: the upsert, and — when it asks to win or lose an
    /// opportunity that closes through actions — the upsert without the state followed
    /// by the close.
    pub(super) async fn upsert_by_key(
        &self,
        entity: &EntityMapping,
        referral: &ReferralId,
        write: &RecordWrite,
    ) -> Result<UpsertOutcome, CrmError> {
        let state = requested(write)?.and_then(|(s, _)| s);
        if !self.closes_by_action(entity, state) {
            return self.upsert_plain(entity, referral, write).await;
        }
        let outcome = self
            .upsert_plain(entity, referral, &without_state(write))
            .await?;
        let Some(id) = outcome.record.id.clone() else {
            return Ok(outcome);
        };
        let state_only = RecordWrite::fields(
            [STATECODE, STATUSCODE]
                .iter()
                .filter_map(|c| write.fields.get(*c).map(|v| ((*c).to_owned(), v.clone())))
                .collect(),
        );
        let record = self.update_with_state(entity, &id, &state_only).await?;
        Ok(UpsertOutcome {
            record,
            created: outcome.created,
        })
    }

    /// `retire_lead`: the lead Qualified (statecode 1, statuscode 3) with
    /// `qualifyingopportunityid` pointing at the opportunity, by one PATCH.
    ///
    /// Not `QualifyLead`: that action creates the account, contact and opportunity
    /// itself (crm.md §1.4), so a retry after a lost answer would create them twice, and
    /// the engine has already upserted the opportunity by referral id — the step that
    /// makes lead → opportunity crash-safe. A lead already qualified, or deleted, is
    /// retired; a disqualified one is reopened first (closed records are read-only).
    pub(super) async fn qualify_lead_by_patch(
        &self,
        lead: &EntityMapping,
        id: &CrmRecordId,
        opportunity: &CrmRecordId,
    ) -> Result<(), CrmError> {
        let set = records::entity_set(lead)?;
        let body = json!({
            STATECODE: 1,
            STATUSCODE: 3,
            "qualifyingopportunityid@odata.bind": odata::bind(OPPORTUNITIES, opportunity.as_str())?,
        });
        for attempt in 0..2 {
            let call = Call::write(
                Method::PATCH,
                odata::by_id(set, id.as_str())?,
                &body,
                Idempotency::Idempotent,
            )?
            .if_match_any();
            let reply = self.web.send(call).await?;
            if reply.ok() {
                tracing::info!(lead = %id, %opportunity, "lead qualified; the referral lives on as the opportunity");
                return Ok(());
            }
            if reply.status == StatusCode::NOT_FOUND {
                tracing::info!(lead = %id, "lead to retire no longer exists");
                return Ok(());
            }
            let refused = failure(&reply);
            if !matches!(refused, CrmError::Rejected { .. }) {
                return Err(refused);
            }
            match self.current_state(lead, id).await? {
                (1, _) => {
                    tracing::info!(lead = %id, "lead already qualified");
                    return Ok(());
                }
                (2, _) if attempt == 0 => self.set_state(lead, id, 0, 1).await?,
                _ => return Err(refused),
            }
        }
        Err(CrmError::Rejected {
            code: None,
            message: format!("lead {id} could not be qualified"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Map;

    #[test]
    fn state_columns_are_read_from_the_write() {
        let mut fields = Map::new();
        fields.insert("statecode".into(), json!(1));
        fields.insert("name".into(), json!("x"));
        let write = RecordWrite::fields(fields);
        assert_eq!(requested(&write).unwrap(), Some((Some(1), None)));
        assert!(!without_state(&write).fields.contains_key("statecode"));
        assert_eq!(requested(&RecordWrite::default()).unwrap(), None);
        let mut bad = Map::new();
        bad.insert("statuscode".into(), json!("Won"));
        assert!(requested(&RecordWrite::fields(bad)).is_err());
        assert_eq!(default_close_status(WON), 3);
        assert_eq!(default_close_status(LOST), 4);
    }
}
