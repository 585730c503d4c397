//! Lead conversion, as a seller does it in the UI (`Database.convertLead`,
//! crm.md §2.8). The REST API has no convert resource, so only the control API
//! offers it; what the sync engine sees is the result: a new account, contact
//! and opportunity, and the lead marked `IsConverted` with its
//! `Converted*Id` fields set. A converted lead is read-only afterwards.
//!
//! Field mapping follows Salesforce's standard lead mapping; custom fields are
//! copied to the opportunity when it has a field of the same API name (an
//! admin maps the co-sell fields that way; the real mapping is org setup).

use super::super::error::{SfError, code};
use super::super::ids::SfId;
use super::super::schema::ObjectDef;
use super::super::value::Value;
use super::{Org, Record, WriteCtx, rules::set};
use chrono::{Datelike, Months, NaiveDate};
use serde::Deserialize;
use serde_json::{Map, Value as JsonValue};

/// How to convert a lead (the options of `Database.LeadConvert`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LeadConversion {
    /// A LeadStatus with `IsConverted`; default: the only such status.
    pub converted_status: Option<String>,
    /// Merge into this account instead of creating one.
    pub account_id: Option<String>,
    /// Merge into this contact instead of creating one.
    pub contact_id: Option<String>,
    /// Name of the new opportunity; default: the lead's company.
    pub opportunity_name: Option<String>,
    /// Create no opportunity.
    pub do_not_create_opportunity: bool,
}

/// The records a conversion produced or used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Converted {
    /// The account.
    pub account: SfId,
    /// The contact.
    pub contact: SfId,
    /// The opportunity, unless none was asked for.
    pub opportunity: Option<SfId>,
}

/// The error for any write to a converted lead.
pub(super) fn converted_lead() -> SfError {
    SfError::bad_request(
        code::CANNOT_UPDATE_CONVERTED_LEAD,
        "cannot reference converted lead",
    )
}

fn copy(
    lead_def: &ObjectDef,
    lead: &Record,
    target: &ObjectDef,
    pairs: &[(&str, &str)],
) -> Map<String, JsonValue> {
    let mut body = Map::new();
    for (from, to) in pairs {
        let (Some(i), Some(_)) = (lead_def.field_index(from), target.field_index(to)) else {
            continue;
        };
        let value = lead.get(i);
        if !value.is_null() {
            body.insert((*to).to_owned(), value.to_json(&lead_def.fields[i].ty));
        }
    }
    body
}

fn end_of_quarter(today: NaiveDate) -> NaiveDate {
    let first_month = (today.month0() / 3) * 3 + 1;
    NaiveDate::from_ymd_opt(today.year(), first_month, 1)
        .and_then(|d| d.checked_add_months(Months::new(3)))
        .and_then(|d| d.pred_opt())
        .unwrap_or(today)
}

impl Org {
    /// Converts a live, unconverted lead; all or nothing.
    pub fn convert_lead(
        &mut self,
        lead_id: &SfId,
        how: &LeadConversion,
        ctx: &WriteCtx,
    ) -> Result<Converted, SfError> {
        let sp = self.savepoint();
        match self.convert_inner(lead_id, how, ctx) {
            Ok(done) => {
                self.release(sp);
                Ok(done)
            }
            Err(e) => {
                self.rollback_to(sp);
                Err(e)
            }
        }
    }

    fn convert_inner(
        &mut self,
        lead_id: &SfId,
        how: &LeadConversion,
        ctx: &WriteCtx,
    ) -> Result<Converted, SfError> {
        let schema = std::sync::Arc::clone(&self.schema);
        let index = |name: &str| schema.object_index(name).ok_or_else(SfError::not_found);
        let (lead_o, account_o, contact_o, opp_o) = (
            index("Lead")?,
            index("Account")?,
            index("Contact")?,
            index("Opportunity")?,
        );
        let (lead_def, account_def, contact_def, opp_def) = (
            &schema.objects[lead_o],
            &schema.objects[account_o],
            &schema.objects[contact_o],
            &schema.objects[opp_o],
        );
        let lead = self.live(lead_o, lead_id)?.clone();
        let is_converted = lead_def.field_index("IsConverted").map(|i| lead.get(i));
        if is_converted == Some(&Value::Bool(true)) {
            return Err(converted_lead());
        }
        let converted: Vec<&str> = schema
            .lead_statuses
            .iter()
            .filter(|s| s.is_converted)
            .map(|s| s.api_name.as_str())
            .collect();
        let status = match (&how.converted_status, converted.as_slice()) {
            (Some(s), _) if converted.contains(&s.as_str()) => s.clone(),
            (None, [only]) => (*only).to_owned(),
            _ => {
                return Err(SfError::bad_request(
                    code::INVALID_STATUS,
                    "invalid convertedStatus: use a Lead Status marked Converted",
                ));
            }
        };
        let parse = |raw: &Option<String>, object: usize| -> Result<Option<SfId>, SfError> {
            match raw {
                None => Ok(None),
                Some(raw) => {
                    let id = SfId::parse(raw).ok_or_else(SfError::not_found)?;
                    self.live(object, &id)?;
                    Ok(Some(id))
                }
            }
        };
        let (given_account, given_contact) = (
            parse(&how.account_id, account_o)?,
            parse(&how.contact_id, contact_o)?,
        );

        let account = match given_account {
            Some(id) => id,
            None => {
                let mut body = copy(
                    lead_def,
                    &lead,
                    account_def,
                    &[
                        ("Company", "Name"),
                        ("Street", "BillingStreet"),
                        ("City", "BillingCity"),
                        ("State", "BillingState"),
                        ("PostalCode", "BillingPostalCode"),
                        ("Country", "BillingCountry"),
                        ("Phone", "Phone"),
                        ("Website", "Website"),
                        ("Industry", "Industry"),
                        ("AnnualRevenue", "AnnualRevenue"),
                        ("NumberOfEmployees", "NumberOfEmployees"),
                    ],
                );
                body.insert(
                    "OwnerId".to_owned(),
                    JsonValue::String(ctx.user.as_str().to_owned()),
                );
                self.create(account_o, &body, ctx)?
            }
        };
        let contact = match given_contact {
            Some(id) => id,
            None => {
                let mut body = copy(
                    lead_def,
                    &lead,
                    contact_def,
                    &[
                        ("FirstName", "FirstName"),
                        ("LastName", "LastName"),
                        ("Title", "Title"),
                        ("Email", "Email"),
                        ("Phone", "Phone"),
                        ("MobilePhone", "MobilePhone"),
                        ("Street", "MailingStreet"),
                        ("City", "MailingCity"),
                        ("State", "MailingState"),
                        ("PostalCode", "MailingPostalCode"),
                        ("Country", "MailingCountry"),
                        ("LeadSource", "LeadSource"),
                    ],
                );
                body.insert(
                    "AccountId".to_owned(),
                    JsonValue::String(account.as_str().to_owned()),
                );
                self.create(contact_o, &body, ctx)?
            }
        };
        let opportunity = if how.do_not_create_opportunity {
            None
        } else {
            let custom: Vec<(&str, &str)> = lead_def
                .fields
                .iter()
                .filter(|f| f.custom && opp_def.field(&f.name).is_some_and(|t| t.createable))
                .map(|f| (f.name.as_str(), f.name.as_str()))
                .collect();
            let mut body = copy(lead_def, &lead, opp_def, &custom);
            body.extend(copy(
                lead_def,
                &lead,
                opp_def,
                &[("LeadSource", "LeadSource")],
            ));
            let name = how.opportunity_name.clone().or_else(|| {
                lead_def
                    .field_index("Company")
                    .and_then(|i| lead.get(i).as_text().map(str::to_owned))
            });
            let first_open = schema
                .stages
                .iter()
                .find(|s| !s.is_closed)
                .map(|s| s.api_name.clone());
            body.insert(
                "Name".to_owned(),
                name.map_or(JsonValue::Null, JsonValue::String),
            );
            body.insert(
                "StageName".to_owned(),
                first_open.map_or(JsonValue::Null, JsonValue::String),
            );
            body.insert(
                "CloseDate".to_owned(),
                JsonValue::String(
                    end_of_quarter(ctx.now.date_naive())
                        .format("%Y-%m-%d")
                        .to_string(),
                ),
            );
            body.insert(
                "AccountId".to_owned(),
                JsonValue::String(account.as_str().to_owned()),
            );
            body.insert(
                "ContactId".to_owned(),
                JsonValue::String(contact.as_str().to_owned()),
            );
            Some(self.create(opp_o, &body, ctx)?)
        };

        let mut values = lead.values.clone();
        let text = |id: &SfId| Value::Text(id.as_str().to_owned());
        set(lead_def, &mut values, "IsConverted", Value::Bool(true));
        set(
            lead_def,
            &mut values,
            "ConvertedDate",
            Value::Date(ctx.now.date_naive()),
        );
        set(lead_def, &mut values, "ConvertedAccountId", text(&account));
        set(lead_def, &mut values, "ConvertedContactId", text(&contact));
        set(
            lead_def,
            &mut values,
            "ConvertedOpportunityId",
            opportunity.as_ref().map_or(Value::Null, text),
        );
        set(lead_def, &mut values, "Status", Value::Text(status));
        set(
            lead_def,
            &mut values,
            "LastModifiedDate",
            Value::DateTime(ctx.now),
        );
        set(lead_def, &mut values, "LastModifiedById", text(&ctx.user));
        set(
            lead_def,
            &mut values,
            "SystemModstamp",
            Value::DateTime(ctx.now),
        );
        self.put(
            lead_o,
            Record {
                id: lead_id.clone(),
                values,
                deleted_at: None,
            },
        );
        Ok(Converted {
            account,
            contact,
            opportunity,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_date_defaults_to_the_end_of_the_quarter() {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        assert_eq!(end_of_quarter(d("2026-01-15")), d("2026-03-31"));
        assert_eq!(end_of_quarter(d("2026-06-30")), d("2026-06-30"));
        assert_eq!(end_of_quarter(d("2026-11-23")), d("2026-12-31"));
    }
}
