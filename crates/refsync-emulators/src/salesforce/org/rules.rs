//! The save rules: body parsing, lookups, required and unique fields, and the
//! fields Salesforce derives (names, stage-driven opportunity fields).

use super::super::error::{SfError, code};
use super::super::ids::SfId;
use super::super::schema::{FieldDef, FieldType, ObjectDef, ObjectKind, Schema};
use super::super::value::{Value, coerce};
use super::Org;
use chrono::Datelike;
use rust_decimal::Decimal;
use serde_json::{Map, Value as JsonValue};

fn invalid_field(object: &ObjectDef, name: &str) -> SfError {
    SfError::field(
        code::INVALID_FIELD,
        format!("No such column '{name}' on sobject of type {}", object.name),
        &[name],
    )
}

impl Org {
    /// Parses a request body into field values, refusing `Id`, unknown and read-only fields.
    pub(super) fn parse_body(
        &self,
        def: &ObjectDef,
        body: &Map<String, JsonValue>,
        creating: bool,
    ) -> Result<Vec<(usize, Value)>, SfError> {
        let mut values = Vec::new();
        let mut read_only = Vec::new();
        let mut failed: Option<SfError> = None;
        for (key, json) in body {
            if key == "attributes" {
                continue;
            }
            let Some(i) = def.field_index(key) else {
                return Err(invalid_field(def, key));
            };
            if i == 0 {
                return Err(SfError::bad_request(
                    code::INVALID_FIELD,
                    "The Id field should not be specified in the sobject data.",
                ));
            }
            let field = &def.fields[i];
            if (creating && !field.createable) || (!creating && !field.updateable) {
                read_only.push(field.name.clone());
                continue;
            }
            match coerce(field, json) {
                Ok(v) => values.push((i, v)),
                Err(e) => match &mut failed {
                    Some(f) => f.merge(e),
                    None => failed = Some(e),
                },
            }
        }
        if !read_only.is_empty() {
            return Err(SfError::bad_request(
                code::INVALID_FIELD_FOR_INSERT_UPDATE,
                format!(
                    "Unable to create/update fields: {}. Please check the security settings of this field and verify that it is read/write for your profile or permission set.",
                    read_only.join(", ")
                ),
            )
            .with_fields(read_only));
        }
        match failed {
            Some(e) => Err(e),
            None => Ok(values),
        }
    }

    /// Checks that lookups point at live records of the right object.
    pub(super) fn check_references(
        &self,
        def: &ObjectDef,
        values: &[(usize, Value)],
    ) -> Result<(), SfError> {
        for (i, value) in values {
            let field = &def.fields[*i];
            let (FieldType::Reference { target, .. }, Value::Text(id)) = (&field.ty, value) else {
                continue;
            };
            let Some(target_index) = self.schema.object_index(target) else {
                continue;
            };
            let target_def = &self.schema.objects[target_index];
            let fields = [field.name.as_str()];
            let Some(id) = SfId::parse(id).filter(|id| id.key_prefix() == target_def.key_prefix)
            else {
                return Err(SfError::field(
                    code::FIELD_INTEGRITY_EXCEPTION,
                    format!("{}: id value of incorrect type: {id}", field.label),
                    &fields,
                ));
            };
            match self.record(target_index, &id) {
                Some(r) if r.deleted_at.is_none() => {}
                Some(_) => {
                    return Err(SfError::field(
                        code::ENTITY_IS_DELETED,
                        "entity is deleted",
                        &fields,
                    ));
                }
                None => {
                    return Err(SfError::field(
                        code::INVALID_CROSS_REFERENCE_KEY,
                        format!("invalid cross reference id: {id}"),
                        &fields,
                    ));
                }
            }
        }
        Ok(())
    }

    pub(super) fn check_required(def: &ObjectDef, values: &[Value]) -> Result<(), SfError> {
        let missing: Vec<String> = def
            .fields
            .iter()
            .enumerate()
            .filter(|(i, f)| f.required && values[*i].is_null())
            .map(|(_, f)| f.name.clone())
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        Err(SfError::bad_request(
            code::REQUIRED_FIELD_MISSING,
            format!("Required fields are missing: [{}]", missing.join(", ")),
        )
        .with_fields(missing))
    }

    pub(super) fn check_unique(
        &self,
        object: usize,
        values: &[Value],
        own: Option<&SfId>,
    ) -> Result<(), SfError> {
        let def = &self.schema.objects[object];
        for (i, field) in def.fields.iter().enumerate() {
            if !field.unique || values[i].is_null() {
                continue;
            }
            let clash = self
                .records(object)
                .filter(|r| r.deleted_at.is_none() && Some(&r.id) != own)
                .find(|r| same_key(field, r.get(i), &values[i]));
            if let Some(other) = clash {
                return Err(SfError::field(
                    code::DUPLICATE_VALUE,
                    format!(
                        "duplicate value found: {} duplicates value on record with id: {}",
                        field.name, other.id
                    ),
                    &[field.name.as_str()],
                ));
            }
        }
        Ok(())
    }
}

pub(super) fn set(def: &ObjectDef, values: &mut [Value], name: &str, value: Value) {
    if let Some(i) = def.field_index(name) {
        values[i] = value;
    }
}

pub(super) fn get<'a>(def: &ObjectDef, values: &'a [Value], name: &str) -> &'a Value {
    def.field_index(name)
        .and_then(|i| values.get(i))
        .unwrap_or(&Value::Null)
}

/// Whether two values of `field` count as the same key.
pub fn same_key(field: &FieldDef, a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Text(x), Value::Text(y)) => {
            if field.case_sensitive || field.ty.is_id() {
                x == y
            } else {
                x.to_lowercase() == y.to_lowercase()
            }
        }
        (Value::Null, _) | (_, Value::Null) => false,
        (x, y) => x == y,
    }
}

/// (ForecastCategory API name, ForecastCategoryName label) for a configured category.
pub(super) fn forecast_category(configured: &str) -> (&'static str, &'static str) {
    match configured.to_ascii_lowercase().replace(' ', "").as_str() {
        "closed" => ("Closed", "Closed"),
        "omitted" => ("Omitted", "Omitted"),
        "bestcase" => ("BestCase", "Best Case"),
        "commit" | "forecast" => ("Forecast", "Commit"),
        _ => ("Pipeline", "Pipeline"),
    }
}

/// Fills the fields Salesforce computes: names, and the stage-driven opportunity fields.
pub(super) fn derive(
    def: &ObjectDef,
    schema: &Schema,
    values: &mut [Value],
    given: &[&str],
    creating: bool,
) {
    let given_has = |name: &str| given.iter().any(|g| g.eq_ignore_ascii_case(name));
    match def.kind {
        ObjectKind::Lead | ObjectKind::Contact => {
            let first = get(def, values, "FirstName")
                .as_text()
                .unwrap_or("")
                .to_owned();
            let last = get(def, values, "LastName")
                .as_text()
                .unwrap_or("")
                .to_owned();
            let name = format!("{first} {last}").trim().to_owned();
            let name = if name.is_empty() {
                Value::Null
            } else {
                Value::Text(name)
            };
            set(def, values, "Name", name);
        }
        ObjectKind::Opportunity => {
            let stage = get(def, values, "StageName")
                .as_text()
                .and_then(|s| schema.stages.iter().find(|st| st.api_name == s))
                .cloned();
            if let Some(stage) = stage
                && (creating || given_has("StageName"))
            {
                set(def, values, "IsClosed", Value::Bool(stage.is_closed));
                set(def, values, "IsWon", Value::Bool(stage.is_won));
                let (api, label) = forecast_category(&stage.forecast_category);
                set(def, values, "ForecastCategory", Value::Text(api.to_owned()));
                if !given_has("ForecastCategoryName") {
                    set(
                        def,
                        values,
                        "ForecastCategoryName",
                        Value::Text(label.to_owned()),
                    );
                }
                if !given_has("Probability") {
                    set(
                        def,
                        values,
                        "Probability",
                        Value::Number(Decimal::from(stage.default_probability)),
                    );
                }
            }
            let expected = match (get(def, values, "Amount"), get(def, values, "Probability")) {
                (Value::Number(a), Value::Number(p)) => {
                    Value::Number((a * p / Decimal::from(100)).round_dp(2).normalize())
                }
                _ => Value::Null,
            };
            set(def, values, "ExpectedRevenue", expected);
            let (year, quarter) = match get(def, values, "CloseDate") {
                Value::Date(d) => (
                    Value::Number(Decimal::from(d.year())),
                    Value::Number(Decimal::from(d.month0() / 3 + 1)),
                ),
                _ => (Value::Null, Value::Null),
            };
            set(def, values, "FiscalYear", year);
            set(def, values, "FiscalQuarter", quarter);
        }
        _ => {}
    }
}
