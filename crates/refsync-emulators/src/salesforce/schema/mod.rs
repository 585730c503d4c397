//! The org's metadata: which objects exist, their fields, types, lengths,
//! picklists and access rules.
//!
//! Standard objects carry the fields of crm.md §2.8 (lengths from there where it
//! gives them, the usual Salesforce lengths otherwise); custom fields come from
//! configuration. Field and object names are case-insensitive on input and
//! always answered in their canonical case, as the real API does.

use super::config::{
    CustomFieldConfig, CustomFieldKind, LeadStatusConfig, SalesforceConfig, StageConfig,
};
use super::value::Value;
use std::collections::HashMap;

mod standard;

/// A field's data type, with what validation needs to know.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldType {
    /// The record id.
    Id,
    /// A lookup to `target`, traversable in SOQL as `relationship`.
    Reference {
        /// Object the lookup points at.
        target: String,
        /// Relationship name (`Account` for `AccountId`).
        relationship: String,
    },
    /// Single-line text.
    Text(u32),
    /// Multi-line text.
    TextArea(u32),
    /// Email address (80).
    Email,
    /// Phone number.
    Phone(u32),
    /// URL.
    Url(u32),
    /// Picklist; `restricted` refuses other values.
    Picklist {
        /// Allowed values in order.
        values: Vec<String>,
        /// Whether values outside `values` are refused.
        restricted: bool,
    },
    /// Checkbox.
    Boolean,
    /// Date without time.
    Date,
    /// Instant.
    DateTime,
    /// Money (precision, scale).
    Currency(u32, u32),
    /// Percent (precision, scale).
    Percent(u32, u32),
    /// Decimal number (precision, scale).
    Double(u32, u32),
    /// Integer.
    Int,
}

impl FieldType {
    /// The type name `describe` reports.
    pub fn describe_name(&self) -> &'static str {
        match self {
            Self::Id => "id",
            Self::Reference { .. } => "reference",
            Self::Text(_) => "string",
            Self::TextArea(_) => "textarea",
            Self::Email => "email",
            Self::Phone(_) => "phone",
            Self::Url(_) => "url",
            Self::Picklist { .. } => "picklist",
            Self::Boolean => "boolean",
            Self::Date => "date",
            Self::DateTime => "datetime",
            Self::Currency(..) => "currency",
            Self::Percent(..) => "percent",
            Self::Double(..) => "double",
            Self::Int => "int",
        }
    }

    /// Maximum length in characters for text-like types.
    pub fn max_length(&self) -> Option<u32> {
        match self {
            Self::Id | Self::Reference { .. } => Some(18),
            Self::Text(n) | Self::TextArea(n) | Self::Phone(n) | Self::Url(n) => Some(*n),
            Self::Email => Some(80),
            Self::Picklist { .. } => Some(255),
            _ => None,
        }
    }

    /// Whether values compare as text (case-insensitively in SOQL).
    pub fn is_textual(&self) -> bool {
        matches!(
            self,
            Self::Text(_)
                | Self::TextArea(_)
                | Self::Email
                | Self::Phone(_)
                | Self::Url(_)
                | Self::Picklist { .. }
        )
    }

    /// Whether values are ids.
    pub fn is_id(&self) -> bool {
        matches!(self, Self::Id | Self::Reference { .. })
    }

    /// Whether values are numbers.
    pub fn is_numeric(&self) -> bool {
        matches!(
            self,
            Self::Currency(..) | Self::Percent(..) | Self::Double(..) | Self::Int
        )
    }
}

/// Which standard object a definition is, for behaviour beyond plain fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectKind {
    /// Lead.
    Lead,
    /// Opportunity.
    Opportunity,
    /// Account.
    Account,
    /// Contact.
    Contact,
    /// User (read-only here; from configuration).
    User,
    /// LeadStatus picklist table (read-only).
    LeadStatus,
    /// OpportunityStage picklist table (read-only).
    OpportunityStage,
}

/// One field of an object.
#[derive(Debug, Clone)]
pub struct FieldDef {
    /// API name in canonical case.
    pub name: String,
    /// Label, used in validation messages.
    pub label: String,
    /// Data type.
    pub ty: FieldType,
    /// Settable on create.
    pub createable: bool,
    /// Settable on update.
    pub updateable: bool,
    /// Must hold a value after every save (`REQUIRED_FIELD_MISSING`).
    pub required: bool,
    /// Usable as the key of an upsert.
    pub external_id: bool,
    /// No two live records share a value.
    pub unique: bool,
    /// Whether uniqueness and matching respect case.
    pub case_sensitive: bool,
    /// A custom (`__c`) field.
    pub custom: bool,
    /// Value given on create when the body has none.
    pub default: Option<Value>,
}

impl FieldDef {
    fn new(name: &str, label: &str, ty: FieldType) -> Self {
        Self {
            name: name.to_owned(),
            label: label.to_owned(),
            ty,
            createable: true,
            updateable: true,
            required: false,
            external_id: false,
            unique: false,
            case_sensitive: false,
            custom: false,
            default: None,
        }
    }

    fn read_only(mut self) -> Self {
        self.createable = false;
        self.updateable = false;
        self
    }

    fn required(mut self) -> Self {
        self.required = true;
        self
    }

    /// Whether the field may be null (`describe`'s `nillable`).
    pub fn nillable(&self) -> bool {
        !self.required && !matches!(self.ty, FieldType::Boolean | FieldType::Id)
    }
}

/// An object (sObject type).
#[derive(Debug, Clone)]
pub struct ObjectDef {
    /// API name in canonical case.
    pub name: String,
    /// Singular label.
    pub label: String,
    /// Plural label.
    pub label_plural: String,
    /// Key prefix of its ids.
    pub key_prefix: String,
    /// Which standard object it is.
    pub kind: ObjectKind,
    /// Whether the API may create, update and delete its records.
    pub writable: bool,
    /// Fields in describe order; index 0 is always `Id`.
    pub fields: Vec<FieldDef>,
    by_name: HashMap<String, usize>,
    by_relationship: HashMap<String, usize>,
}

impl ObjectDef {
    fn new(name: &str, label: &str, plural: &str, prefix: &str, kind: ObjectKind) -> Self {
        Self {
            name: name.to_owned(),
            label: label.to_owned(),
            label_plural: plural.to_owned(),
            key_prefix: prefix.to_owned(),
            kind,
            writable: true,
            fields: vec![FieldDef::new("Id", &format!("{label} ID"), FieldType::Id).read_only()],
            by_name: HashMap::new(),
            by_relationship: HashMap::new(),
        }
    }

    fn push(&mut self, field: FieldDef) {
        self.fields.push(field);
    }

    fn index(&mut self) {
        self.by_name = self
            .fields
            .iter()
            .enumerate()
            .map(|(i, f)| (f.name.to_ascii_lowercase(), i))
            .collect();
        self.by_relationship = self
            .fields
            .iter()
            .enumerate()
            .filter_map(|(i, f)| match &f.ty {
                FieldType::Reference { relationship, .. } => {
                    Some((relationship.to_ascii_lowercase(), i))
                }
                _ => None,
            })
            .collect();
    }

    /// The index of a field by (case-insensitive) name.
    pub fn field_index(&self, name: &str) -> Option<usize> {
        self.by_name.get(&name.to_ascii_lowercase()).copied()
    }

    /// A field by (case-insensitive) name.
    pub fn field(&self, name: &str) -> Option<&FieldDef> {
        self.field_index(name).map(|i| &self.fields[i])
    }

    /// The reference field behind a relationship name (`Account` → `AccountId`).
    pub fn relationship_field(&self, relationship: &str) -> Option<usize> {
        self.by_relationship
            .get(&relationship.to_ascii_lowercase())
            .copied()
    }
}

/// All objects of the org, with the picklist tables that drive behaviour.
#[derive(Debug, Clone)]
pub struct Schema {
    /// Objects in describeGlobal order.
    pub objects: Vec<ObjectDef>,
    /// The effective `OpportunityStage` table (configured plus connector stages).
    pub stages: Vec<StageConfig>,
    /// The `LeadStatus` table.
    pub lead_statuses: Vec<LeadStatusConfig>,
    by_name: HashMap<String, usize>,
}

/// Why a configuration does not make a schema.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaError {
    /// A custom field names an object the emulator does not have.
    #[error("custom field {field}: no object named {object}")]
    UnknownObject {
        /// The field.
        field: String,
        /// The object named.
        object: String,
    },
    /// A custom field's name is not a custom API name or clashes with another field.
    #[error("custom field {0}: API names must end in __c and be unique on the object")]
    BadName(String),
    /// A picklist has no values, or a length is out of range.
    #[error("custom field {0}: {1}")]
    BadDefinition(String, String),
    /// Stage or status tables are unusable.
    #[error("{0}")]
    Tables(String),
}

impl Schema {
    /// Builds the org's schema from its configuration.
    pub fn build(config: &SalesforceConfig) -> Result<Self, SchemaError> {
        let mut objects = standard::standard_objects(config)?;
        for custom in &config.custom_fields {
            let object = objects
                .iter_mut()
                .find(|o| o.name.eq_ignore_ascii_case(&custom.object) && o.writable)
                .ok_or_else(|| SchemaError::UnknownObject {
                    field: custom.api_name.clone(),
                    object: custom.object.clone(),
                })?;
            let valid_name = custom.api_name.ends_with("__c")
                && custom.api_name.len() > 3
                && custom
                    .api_name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_')
                && !object
                    .fields
                    .iter()
                    .any(|f| f.name.eq_ignore_ascii_case(&custom.api_name));
            if !valid_name {
                return Err(SchemaError::BadName(custom.api_name.clone()));
            }
            object.push(custom_field(custom)?);
        }
        if let Some(mc) = &config.multi_currency {
            for object in objects.iter_mut().filter(|o| o.writable) {
                let mut f = FieldDef::new(
                    "CurrencyIsoCode",
                    &format!("{} Currency", object.label),
                    FieldType::Picklist {
                        values: mc.active.clone(),
                        restricted: true,
                    },
                );
                f.default = Some(Value::Text(mc.corporate.clone()));
                // Placed right after Id, where describe lists it.
                object.fields.insert(1, f);
            }
        }
        for object in &mut objects {
            object.index();
        }
        let by_name = objects
            .iter()
            .enumerate()
            .map(|(i, o)| (o.name.to_ascii_lowercase(), i))
            .collect();
        Ok(Self {
            objects,
            stages: stage_table(config),
            lead_statuses: config.lead.statuses.clone(),
            by_name,
        })
    }

    /// The index of an object by (case-insensitive) name.
    pub fn object_index(&self, name: &str) -> Option<usize> {
        self.by_name.get(&name.to_ascii_lowercase()).copied()
    }

    /// The object whose ids carry `prefix`.
    pub fn object_by_prefix(&self, prefix: &str) -> Option<usize> {
        self.objects.iter().position(|o| o.key_prefix == prefix)
    }
}

fn custom_field(c: &CustomFieldConfig) -> Result<FieldDef, SchemaError> {
    use CustomFieldKind as K;
    let bad = |why: &str| SchemaError::BadDefinition(c.api_name.clone(), why.to_owned());
    let precision = c.precision.unwrap_or(18);
    let ty = match c.kind {
        K::Text => {
            let n = c.length.unwrap_or(255);
            if !(1..=255).contains(&n) {
                return Err(bad("Text length must be 1-255"));
            }
            FieldType::Text(n)
        }
        K::TextArea => FieldType::TextArea(255),
        K::LongTextArea => {
            let n = c.length.unwrap_or(32_768);
            if !(256..=131_072).contains(&n) {
                return Err(bad("Long Text Area length must be 256-131072"));
            }
            FieldType::TextArea(n)
        }
        K::Url => FieldType::Url(255),
        K::Email => FieldType::Email,
        K::Phone => FieldType::Phone(40),
        K::Checkbox => FieldType::Boolean,
        K::Picklist => {
            if c.values.is_empty() {
                return Err(bad("a picklist needs values"));
            }
            FieldType::Picklist {
                values: c.values.clone(),
                restricted: c.restricted,
            }
        }
        K::Number => FieldType::Double(precision, c.scale.unwrap_or(0)),
        K::Currency => FieldType::Currency(precision, c.scale.unwrap_or(2)),
        K::Percent => FieldType::Percent(precision, c.scale.unwrap_or(0)),
        K::Date => FieldType::Date,
        K::DateTime => FieldType::DateTime,
    };
    if (c.external_id || c.unique)
        && !matches!(
            ty,
            FieldType::Text(_) | FieldType::Email | FieldType::Double(..)
        )
    {
        return Err(bad(
            "External ID and Unique need a Text, Email or Number field",
        ));
    }
    let mut f = FieldDef::new(&c.api_name, &c.label, ty);
    f.custom = true;
    f.external_id = c.external_id;
    f.unique = c.unique;
    f.case_sensitive = c.case_sensitive;
    f.required = c.required;
    if c.kind == K::Checkbox {
        f.default = Some(Value::Bool(c.default_checked));
    }
    Ok(f)
}

/// The stage table with the connector's stages added (crm.md §3.4).
pub fn stage_names(config: &SalesforceConfig) -> Vec<String> {
    stage_table(config)
        .into_iter()
        .map(|s| s.api_name)
        .collect()
}

/// The effective `OpportunityStage` rows: configured stages plus connector stages not among them.
pub fn stage_table(config: &SalesforceConfig) -> Vec<StageConfig> {
    let mut stages = config.opportunity_stages.clone();
    for name in [
        &config.connector_stages.on_hold,
        &config.connector_stages.active,
    ]
    .into_iter()
    .flatten()
    {
        if !stages.iter().any(|s| &s.api_name == name) {
            // An added connector stage is an open pipeline stage placed before the
            // closed ones, as an admin would insert it.
            let at = stages
                .iter()
                .position(|s| s.is_closed)
                .unwrap_or(stages.len());
            stages.insert(
                at,
                StageConfig {
                    api_name: name.clone(),
                    is_closed: false,
                    is_won: false,
                    default_probability: 10,
                    forecast_category: "Pipeline".to_owned(),
                },
            );
        }
    }
    stages
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_org_has_the_connector_fields_and_stages() {
        let config = SalesforceConfig::default();
        let schema = Schema::build(&config).unwrap();
        let lead = &schema.objects[schema.object_index("lead").unwrap()];
        assert_eq!(lead.name, "Lead");
        let referral = lead.field("referral_identifier__c").unwrap();
        assert!(referral.external_id && referral.unique);
        assert_eq!(referral.ty, FieldType::Text(100));
        let opp = &schema.objects[schema.object_index("Opportunity").unwrap()];
        assert!(opp.field("Audit__c").is_some());
        assert_eq!(
            opp.relationship_field("account"),
            opp.field_index("AccountId")
        );
        let stages = stage_names(&config);
        assert!(stages.contains(&"On Hold".to_owned()));
        assert_eq!(stages.iter().filter(|s| *s == "Qualification").count(), 1);
        assert!(
            opp.field("CurrencyIsoCode").is_none(),
            "multi-currency is off"
        );
    }

    #[test]
    fn bad_custom_fields_are_refused() {
        let mut config = SalesforceConfig::default();
        config.custom_fields[0].api_name = "NoSuffix".to_owned();
        assert!(matches!(
            Schema::build(&config),
            Err(SchemaError::BadName(_))
        ));
        let mut config = SalesforceConfig::default();
        config.custom_fields[0].object = "Widget".to_owned();
        assert!(matches!(
            Schema::build(&config),
            Err(SchemaError::UnknownObject { .. })
        ));
    }

    #[test]
    fn multi_currency_adds_currency_iso_code() {
        let config = SalesforceConfig {
            multi_currency: Some(Default::default()),
            ..SalesforceConfig::default()
        };
        let schema = Schema::build(&config).unwrap();
        let opp = &schema.objects[schema.object_index("Opportunity").unwrap()];
        let f = opp.field("CurrencyIsoCode").unwrap();
        assert_eq!(f.default, Some(Value::Text("USD".to_owned())));
    }
}
