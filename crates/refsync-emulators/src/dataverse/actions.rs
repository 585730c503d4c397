//! The Web API actions the sync needs (crm.md §1.1, §1.4):
//!
//! - `WhoAmI` → `{UserId, BusinessUnitId, OrganizationId}`.
//! - `POST leads(<id>)/Microsoft.Dynamics.CRM.QualifyLead` with `CreateAccount`,
//!   `CreateContact`, `CreateOpportunity`, `Status` (required) and optionally
//!   `OpportunityCustomerId`, `OpportunityCurrencyId`: creates the records from the
//!   lead, qualifies it (with `qualifyingopportunityid`) and returns what it created.
//! - `POST WinOpportunity` / `POST LoseOpportunity` with `Status` and an
//!   `OpportunityClose` (`subject`, `opportunityid@odata.bind`, `actualrevenue`,
//!   `actualend`, `description`): closes the opportunity and records the close.
//!   The exact body shape is **unconfirmed** (crm.md §1.4); this is the one documented there.
//!
//! Each action runs as one store transaction, so a failing action leaves nothing half done.

use super::Dataverse;
use super::config::DataverseConfig;
use super::error::DvError;
use super::schema::{Schema, StateModel, Table};
use super::store::{Row, Store};

use super::write::{self, Changes, StateChangeBy, WriteCtx};
use chrono::SecondsFormat;
use serde_json::{Map, Value, json};
use uuid::Uuid;

/// `WhoAmI` (crm.md §1.1).
pub(crate) fn who_am_i(dv: &Dataverse, user: Uuid, service_root: &str) -> Value {
    let config = dv.config();
    json!({
        "@odata.context": format!("{service_root}$metadata#Microsoft.Dynamics.CRM.WhoAmIResponse"),
        "BusinessUnitId": config.business_unit_id.to_string(),
        "UserId": user.to_string(),
        "OrganizationId": config.organization_id.to_string(),
    })
}

fn table<'a>(schema: &'a Schema, name: &str) -> Result<&'a Table, DvError> {
    schema
        .by_logical_name(name)
        .ok_or_else(|| DvError::segment_not_found(name))
}

fn required_bool(body: &Map<String, Value>, name: &str) -> Result<bool, DvError> {
    match body.get(name) {
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(DvError::invalid_argument(format!(
            "The value of the parameter '{name}' must be Edm.Boolean."
        ))),
        None => Err(DvError::invalid_argument(format!(
            "The parameter '{name}' is required."
        ))),
    }
}

fn required_int(body: &Map<String, Value>, name: &str) -> Result<i64, DvError> {
    body.get(name).and_then(Value::as_i64).ok_or_else(|| {
        DvError::invalid_argument(format!(
            "The parameter '{name}' is required and must be Edm.Int32."
        ))
    })
}

/// An entity-typed parameter: `{"@odata.type":"Microsoft.Dynamics.CRM.account","accountid":"…"}`.
fn entity_parameter(
    schema: &Schema,
    store: &Store,
    body: &Map<String, Value>,
    name: &str,
    allowed: &[&str],
) -> Result<Option<(String, Uuid)>, DvError> {
    let Some(value) = body.get(name).filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let bad = || {
        DvError::invalid_argument(format!(
            "The parameter '{name}' must be an entity reference of type {}.",
            allowed.join(" or ")
        ))
    };
    let object = value.as_object().ok_or_else(bad)?;
    let declared = object.get("@odata.type").and_then(Value::as_str).map(|t| {
        t.trim_start_matches('#')
            .trim_start_matches("Microsoft.Dynamics.CRM.")
            .to_owned()
    });
    for logical in allowed {
        let target = table(schema, logical)?;
        if declared.as_deref().is_some_and(|d| d != *logical) {
            continue;
        }
        if let Some(id) = object
            .get(&target.primary_id)
            .and_then(Value::as_str)
            .and_then(|s| Uuid::parse_str(s).ok())
        {
            if store.get(logical, &id).is_none() {
                return Err(DvError::not_found_id(logical, &id));
            }
            return Ok(Some(((*logical).to_owned(), id)));
        }
    }
    Err(bad())
}

fn invalid_status(
    model: Option<&StateModel>,
    state: i32,
    status: i64,
    table: &str,
    id: &Uuid,
) -> DvError {
    let (enum_name, label) = model
        .and_then(|m| {
            m.state(i64::from(state))
                .map(|s| (m.enum_name.clone(), s.label.clone()))
        })
        .unwrap_or_default();
    DvError::invalid_argument(format!(
        "{status} is not a valid status code for state code {enum_name}.{label} on {table} with Id {id}"
    ))
}

fn status_belongs(table: &Table, state: i32, status: i64) -> bool {
    table
        .states
        .as_ref()
        .and_then(|m| m.state(i64::from(state)))
        .is_some_and(|s| s.statuses.iter().any(|c| i64::from(c.value) == status))
}

fn copy(changes: &mut Changes, from: &Row, pairs: &[(&str, &str)]) {
    for (source, target) in pairs {
        let value = from.get(source);
        if !value.is_null() {
            changes.set(target, value.clone());
        }
    }
}

const ADDRESS: [(&str, &str); 5] = [
    ("address1_line1", "address1_line1"),
    ("address1_city", "address1_city"),
    ("address1_stateorprovince", "address1_stateorprovince"),
    ("address1_postalcode", "address1_postalcode"),
    ("address1_country", "address1_country"),
];

/// `QualifyLead`: returns the created records as (logical name, id).
pub(crate) fn qualify_lead(
    dv: &Dataverse,
    ctx: &WriteCtx<'_>,
    lead_id: &Uuid,
    body: &Map<String, Value>,
) -> Result<Vec<(String, Uuid)>, DvError> {
    let create_account = required_bool(body, "CreateAccount")?;
    let create_contact = required_bool(body, "CreateContact")?;
    let create_opportunity = required_bool(body, "CreateOpportunity")?;
    let status = required_int(body, "Status")?;
    let schema = ctx.schema;
    let config: &DataverseConfig = dv.config();
    let (lead_table, account_table, contact_table, opp_table) = (
        table(schema, "lead")?,
        table(schema, "account")?,
        table(schema, "contact")?,
        table(schema, "opportunity")?,
    );
    dv.transaction(|store| {
    let lead = store
        .get("lead", lead_id)
        .cloned()
        .ok_or_else(|| DvError::not_found_id("lead", lead_id))?;
    if lead.state().is_some_and(|(s, _)| s != 0) {
        return Err(DvError::invalid_argument(format!(
            "The lead with Id {lead_id} is closed. Reactivate it before qualifying it."
        )));
    }
    if !status_belongs(lead_table, 1, status) {
        return Err(invalid_status(
            lead_table.states.as_ref(),
            1,
            status,
            "lead",
            lead_id,
        ));
    }
    let customer = entity_parameter(
        schema,
        store,
        body,
        "OpportunityCustomerId",
        &["account", "contact"],
    )?;
    let currency = entity_parameter(
        schema,
        store,
        body,
        "OpportunityCurrencyId",
        &["transactioncurrency"],
    )?;
    let lead_ref = Some(("lead", *lead_id));
    let mut created = Vec::new();

    let account = if create_account {
        let name = lead
            .get("companyname")
            .as_str()
            .map(str::trim)
            .unwrap_or("");
        if name.is_empty() {
            return Err(DvError::invalid_argument(
                "An account cannot be created from a lead without a Company Name (companyname).",
            ));
        }
        let mut changes = Changes::default();
        copy(
            &mut changes,
            &lead,
            &[
                ("companyname", "name"),
                ("telephone1", "telephone1"),
                ("emailaddress1", "emailaddress1"),
                ("websiteurl", "websiteurl"),
            ],
        );
        copy(&mut changes, &lead, &ADDRESS);
        changes.set_lookup(
            "transactioncurrencyid",
            lead.lookup("transactioncurrencyid"),
        );
        changes.set_lookup("originatingleadid", lead_ref);
        let id = write::insert(ctx, store, account_table, None, &changes)?;
        created.push(("account".to_owned(), id));
        Some(id)
    } else {
        None
    };
    let contact = if create_contact {
        let mut changes = Changes::default();
        copy(
            &mut changes,
            &lead,
            &[
                ("firstname", "firstname"),
                ("lastname", "lastname"),
                ("emailaddress1", "emailaddress1"),
                ("telephone1", "telephone1"),
                ("mobilephone", "mobilephone"),
                ("jobtitle", "jobtitle"),
            ],
        );
        copy(&mut changes, &lead, &ADDRESS);
        let parent = account
            .map(|id| ("account", id))
            .or_else(|| lead.lookup("parentaccountid"));
        changes.set_lookup("parentcustomerid", parent);
        changes.set_lookup("originatingleadid", lead_ref);
        let id = write::insert(ctx, store, contact_table, None, &changes)?;
        created.push(("contact".to_owned(), id));
        Some(id)
    } else {
        None
    };
    let opportunity = if create_opportunity {
        let customer = customer
            .as_ref()
            .map(|(t, id)| (t.as_str(), *id))
            .or(account.map(|id| ("account", id)))
            .or(contact.map(|id| ("contact", id)))
            .or_else(|| lead.lookup("parentaccountid"))
            .or_else(|| lead.lookup("parentcontactid"))
            .or_else(|| lead.lookup("customerid"));
        let mut changes = Changes::default();
        copy(
            &mut changes,
            &lead,
            &[
                ("subject", "name"),
                ("description", "description"),
                ("estimatedamount", "estimatedvalue"),
                ("estimatedclosedate", "estimatedclosedate"),
            ],
        );
        if config.qualify_copies_custom_columns {
            for column in lead_table.columns.iter().filter(|c| c.custom) {
                if opp_table
                    .column(&column.name)
                    .is_some_and(|c| c.kind == column.kind)
                {
                    match lead.lookup(&column.name) {
                        Some(target) => changes.set_lookup(&column.name, Some(target)),
                        None if !lead.get(&column.name).is_null() => {
                            changes.set(&column.name, lead.get(&column.name).clone());
                        }
                        None => {}
                    }
                }
            }
        }
        changes.set_lookup("customerid", customer);
        changes.set_lookup(
            "transactioncurrencyid",
            currency
                .as_ref()
                .map(|(t, id)| (t.as_str(), *id))
                .or_else(|| lead.lookup("transactioncurrencyid")),
        );
        changes.set_lookup(
            "parentaccountid",
            account
                .map(|id| ("account", id))
                .or_else(|| lead.lookup("parentaccountid")),
        );
        changes.set_lookup(
            "parentcontactid",
            contact
                .map(|id| ("contact", id))
                .or_else(|| lead.lookup("parentcontactid")),
        );
        changes.set_lookup("originatingleadid", lead_ref);
        let id = write::insert(ctx, store, opp_table, None, &changes)?;
        created.push(("opportunity".to_owned(), id));
        Some(id)
    } else {
        None
    };

    let mut changes = Changes::default();
    changes.set("statecode", json!(1));
    changes.set("statuscode", json!(status));
    if let Some(id) = opportunity {
        changes.set_lookup("qualifyingopportunityid", Some(("opportunity", id)));
    }
    if let Some(id) = account
        && lead.lookup("parentaccountid").is_none()
    {
        changes.set_lookup("parentaccountid", Some(("account", id)));
    }
    if let Some(id) = contact
        && lead.lookup("parentcontactid").is_none()
    {
        changes.set_lookup("parentcontactid", Some(("contact", id)));
    }
    write::update(
        ctx,
        store,
        lead_table,
        lead_id,
        &changes,
        StateChangeBy::Action,
    )?;
    Ok(created)
    })
}

/// The `QualifyLead` response: the created records as entity references.
pub(crate) fn qualify_response(
    dv: &Dataverse,
    service_root: &str,
    created: &[(String, Uuid)],
) -> Value {
    let store = dv.store();
    let value: Vec<Value> = created
        .iter()
        .filter_map(|(logical, id)| {
            let table = dv.schema().by_logical_name(logical)?;
            let row = store.get(logical, id)?;
            Some(json!({
                "@odata.type": format!("#Microsoft.Dynamics.CRM.{logical}"),
                "@odata.etag": super::store::etag(row.version),
                table.primary_id.clone(): id.to_string(),
            }))
        })
        .collect();
    json!({
        "@odata.context": format!("{service_root}$metadata#Collection(Microsoft.Dynamics.CRM.crmbaseentity)"),
        "value": value,
    })
}

/// `WinOpportunity` (`won`) or `LoseOpportunity`.
pub(crate) fn close_opportunity(
    dv: &Dataverse,
    ctx: &WriteCtx<'_>,
    body: &Map<String, Value>,
    won: bool,
) -> Result<(), DvError> {
    let status = required_int(body, "Status")?;
    let close = body
        .get("OpportunityClose")
        .and_then(Value::as_object)
        .ok_or_else(|| {
            DvError::invalid_argument("The parameter 'OpportunityClose' is required.")
        })?;
    let schema = ctx.schema;
    let (opp_table, close_table) = (
        table(schema, "opportunity")?,
        table(schema, "opportunityclose")?,
    );
    dv.transaction(|store| {
    let mut close_changes = write::parse_body(schema, store, close_table, close, true)?;
    let opportunity_id = match close_changes_lookup(&close_changes, store, close) {
        Some(id) => id,
        None => {
            return Err(DvError::invalid_argument(
                "OpportunityClose must reference the opportunity (opportunityid@odata.bind).",
            ));
        }
    };
    let opportunity = store
        .get("opportunity", &opportunity_id)
        .cloned()
        .ok_or_else(|| DvError::not_found_id("opportunity", &opportunity_id))?;
    if opportunity.state().is_some_and(|(s, _)| s != 0) {
        return Err(DvError::invalid_argument(format!(
            "The opportunity with Id {opportunity_id} is already closed. Reopen it before closing it again."
        )));
    }
    let state = if won { 1 } else { 2 };
    if !status_belongs(opp_table, state, status) {
        return Err(invalid_status(
            opp_table.states.as_ref(),
            state,
            status,
            "opportunity",
            &opportunity_id,
        ));
    }
    let today = ctx.now.date_naive().format("%Y-%m-%d").to_string();
    let close_date = close_changes
        .value("actualend")
        .filter(|v| !v.is_null())
        .cloned()
        .unwrap_or_else(|| json!(today));
    let revenue = close_changes
        .value("actualrevenue")
        .filter(|v| !v.is_null())
        .cloned()
        .or_else(|| won.then(|| opportunity.get("estimatedvalue").clone()))
        .unwrap_or(Value::Null);

    let mut changes = Changes::default();
    changes.set("statecode", json!(state));
    changes.set("statuscode", json!(status));
    changes.set("actualclosedate", close_date.clone());
    if !revenue.is_null() {
        changes.set("actualvalue", revenue.clone());
    }
    if opp_table.column("msdyn_forecastcategory").is_some() {
        changes.set(
            "msdyn_forecastcategory",
            json!(if won { 100000005 } else { 100000006 }),
        );
    }
    write::update(
        ctx,
        store,
        opp_table,
        &opportunity_id,
        &changes,
        StateChangeBy::Action,
    )?;

    close_changes.set("actualend", close_date);
    if !revenue.is_null() {
        close_changes.set("actualrevenue", revenue);
    }
    close_changes.set("statecode", json!(1));
    close_changes.set("statuscode", json!(2));
    close_changes.set_lookup(
        "transactioncurrencyid",
        opportunity.lookup("transactioncurrencyid"),
    );
    if close_changes.value("subject").is_none_or(Value::is_null) {
        let name = opportunity.get("name").as_str().unwrap_or("");
        close_changes.set(
            "subject",
            json!(
                format!("Opportunity Close - {name}")
                    .chars()
                    .take(200)
                    .collect::<String>()
            ),
        );
    }
    write::insert(ctx, store, close_table, None, &close_changes)?;
    tracing::debug!(opportunity = %opportunity_id, won, at = %ctx.now.to_rfc3339_opts(SecondsFormat::Secs, true), "opportunity closed");
    Ok(())
    })
}

/// The opportunity an `OpportunityClose` binds (`opportunityid@odata.bind`, resolved by `parse_body`).
fn close_changes_lookup(
    changes: &Changes,
    store: &Store,
    close: &Map<String, Value>,
) -> Option<Uuid> {
    if !close.contains_key("opportunityid@odata.bind") {
        return None;
    }
    changes
        .lookup("opportunityid")
        .map(|(_, id)| id)
        .filter(|id| store.get("opportunity", id).is_some())
}
