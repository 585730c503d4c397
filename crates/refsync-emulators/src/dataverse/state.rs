//! The statecode/statuscode rules of a write (crm.md §1.4): a status must belong to
//! its state, a state alone takes its default status, records are created only in
//! states that allow it, and states that need an action (`WinOpportunity`) cannot be
//! reached by a PATCH.

use super::error::DvError;
use super::schema::{StateDef, StateModel, Table};
use super::write::{Changes, StateChangeBy};
use serde_json::Value;
use uuid::Uuid;

fn invalid_status(
    model: &StateModel,
    state: &StateDef,
    status: i64,
    table: &Table,
    id: &Uuid,
) -> DvError {
    DvError::invalid_argument(format!(
        "{status} is not a valid status code for state code {}.{} on {} with Id {id}",
        model.enum_name, state.label, table.logical_name
    ))
}

/// Works out the (statecode, statuscode) a write leads to, enforcing crm.md §1.4's
/// tables; `None` when the write does not change the state.
pub(crate) fn next_state(
    table: &Table,
    current: Option<(i64, i64)>,
    changes: &Changes,
    id: &Uuid,
    by: StateChangeBy,
) -> Result<Option<(i64, i64)>, DvError> {
    let Some(model) = &table.states else {
        return Ok(None);
    };
    let state_in = changes.value("statecode").filter(|v| !v.is_null());
    let status_in = changes.value("statuscode").filter(|v| !v.is_null());
    let state_of = |code: i64| {
        model.state(code).ok_or_else(|| {
            DvError::choice_out_of_range(&code.to_string(), "statecode", &table.logical_name)
        })
    };
    let current_state = current.and_then(|(s, _)| model.state(s));
    let (state, status) = match (
        state_in.and_then(Value::as_i64),
        status_in.and_then(Value::as_i64),
    ) {
        (None, None) => match current {
            Some(_) => return Ok(None),
            None => {
                let initial = model
                    .initial()
                    .ok_or_else(|| DvError::invalid_argument("no states"))?;
                (initial, i64::from(initial.default_status))
            }
        },
        (Some(s), None) => {
            let state = state_of(s)?;
            match current {
                Some((cs, cst)) if cs == s => (state, cst),
                _ => (state, i64::from(state.default_status)),
            }
        }
        (None, Some(st)) => {
            let state = match current_state {
                Some(cs) => cs,
                None => model.state_of_status(st).ok_or_else(|| {
                    DvError::choice_out_of_range(&st.to_string(), "statuscode", &table.logical_name)
                })?,
            };
            (state, st)
        }
        (Some(s), Some(st)) => (state_of(s)?, st),
    };
    if !state.statuses.iter().any(|c| i64::from(c.value) == status) {
        return Err(invalid_status(model, state, status, table, id));
    }
    let from = current_state;
    let changing = from.is_none_or(|f| f.code != state.code);
    if from.is_none() && !state.on_create {
        let initial = model.initial().map(|s| s.label.as_str()).unwrap_or("Open");
        return Err(DvError::invalid_argument(format!(
            "A {} cannot be created in state {}. Create it {initial}, then change its state.",
            table.logical_name, state.label
        )));
    }
    if changing
        && by == StateChangeBy::Patch
        && let Some(action) = state.requires_action
    {
        return Err(DvError::invalid_argument(format!(
            "This message can not be used to set the state of {table} to {state}. In order to set state of {table} to {state}, use the {action}Request message instead.",
            table = table.logical_name,
            state = state.label,
        )));
    }
    Ok(Some((i64::from(state.code), status)))
}
