//! Fills the read-only tables (User, LeadStatus, OpportunityStage) from configuration.

use super::super::ids::SfId;
use super::super::schema::{ObjectDef, ObjectKind};
use super::super::value::Value;
use super::rules::forecast_category;
use super::{Org, Record};
use rust_decimal::Decimal;
use std::sync::Arc;

impl Org {
    pub(super) fn seed(&mut self, users: &[super::super::config::UserConfig]) {
        let schema = Arc::clone(&self.schema);
        let text = |s: &str| {
            if s.is_empty() {
                Value::Null
            } else {
                Value::Text(s.to_owned())
            }
        };
        let number = |n: usize| Value::Number(Decimal::from(n));
        for (i, object) in schema.objects.iter().enumerate() {
            let rows: Vec<Vec<(&str, Value)>> = match object.kind {
                ObjectKind::User => users
                    .iter()
                    .map(|u| {
                        let first = u.first_name.clone().unwrap_or_default();
                        vec![
                            ("Username", text(&u.username)),
                            ("FirstName", text(&first)),
                            ("LastName", text(&u.last_name)),
                            ("Name", text(format!("{first} {}", u.last_name).trim())),
                            ("Email", text(&u.email)),
                            ("IsActive", Value::Bool(true)),
                        ]
                    })
                    .collect(),
                ObjectKind::LeadStatus => schema
                    .lead_statuses
                    .iter()
                    .enumerate()
                    .map(|(n, s)| {
                        vec![
                            ("ApiName", text(&s.api_name)),
                            ("MasterLabel", text(&s.api_name)),
                            ("SortOrder", number(n + 1)),
                            ("IsDefault", Value::Bool(s.is_default)),
                            ("IsConverted", Value::Bool(s.is_converted)),
                        ]
                    })
                    .collect(),
                ObjectKind::OpportunityStage => schema
                    .stages
                    .iter()
                    .enumerate()
                    .map(|(n, s)| {
                        let (api, label) = forecast_category(&s.forecast_category);
                        vec![
                            ("ApiName", text(&s.api_name)),
                            ("MasterLabel", text(&s.api_name)),
                            ("IsActive", Value::Bool(true)),
                            ("SortOrder", number(n + 1)),
                            ("IsClosed", Value::Bool(s.is_closed)),
                            ("IsWon", Value::Bool(s.is_won)),
                            (
                                "DefaultProbability",
                                number(usize::from(s.default_probability)),
                            ),
                            ("ForecastCategory", text(api)),
                            ("ForecastCategoryName", text(label)),
                        ]
                    })
                    .collect(),
                _ => Vec::new(),
            };
            for row in rows {
                let table = &mut self.tables[i];
                table.next_seq += 1;
                let id = SfId::generate(&object.key_prefix, table.next_seq + stage_offset(object));
                let mut values = vec![Value::Null; object.fields.len()];
                values[0] = Value::Text(id.as_str().to_owned());
                for (name, value) in row {
                    if let Some(f) = object.field_index(name) {
                        values[f] = value;
                    }
                }
                table.records.insert(
                    id.clone(),
                    Record {
                        id,
                        values,
                        deleted_at: None,
                    },
                );
            }
        }
    }
}

/// Spreads the stage and status tables' ids apart, as both share key prefix `01J`.
fn stage_offset(object: &ObjectDef) -> u64 {
    match object.kind {
        ObjectKind::OpportunityStage => 1000,
        _ => 0,
    }
}
