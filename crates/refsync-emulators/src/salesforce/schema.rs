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
        let mut objects = standard_objects(config)?;
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

    /// An object by (case-insensitive) name.
    pub fn object(&self, name: &str) -> Option<&ObjectDef> {
        self.object_index(name).map(|i| &self.objects[i])
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

fn text(name: &str, label: &str, len: u32) -> FieldDef {
    FieldDef::new(name, label, FieldType::Text(len))
}

fn area(name: &str, label: &str, len: u32) -> FieldDef {
    FieldDef::new(name, label, FieldType::TextArea(len))
}

fn picklist(name: &str, label: &str, values: &[&str], restricted: bool) -> FieldDef {
    FieldDef::new(
        name,
        label,
        FieldType::Picklist {
            values: values.iter().map(|v| (*v).to_owned()).collect(),
            restricted,
        },
    )
}

fn reference(name: &str, label: &str, target: &str, relationship: &str) -> FieldDef {
    FieldDef::new(
        name,
        label,
        FieldType::Reference {
            target: target.to_owned(),
            relationship: relationship.to_owned(),
        },
    )
}

/// Owner and audit fields every writable object has, appended after its own fields.
fn system_fields(object: &mut ObjectDef) {
    object.push(reference("OwnerId", "Owner ID", "User", "Owner"));
    object.push(FieldDef::new("IsDeleted", "Deleted", FieldType::Boolean).read_only());
    object.push(FieldDef::new("CreatedDate", "Created Date", FieldType::DateTime).read_only());
    object.push(reference("CreatedById", "Created By ID", "User", "CreatedBy").read_only());
    object.push(
        FieldDef::new(
            "LastModifiedDate",
            "Last Modified Date",
            FieldType::DateTime,
        )
        .read_only(),
    );
    object.push(
        reference(
            "LastModifiedById",
            "Last Modified By ID",
            "User",
            "LastModifiedBy",
        )
        .read_only(),
    );
    object
        .push(FieldDef::new("SystemModstamp", "System Modstamp", FieldType::DateTime).read_only());
}

fn address(object: &mut ObjectDef, prefix: &str, label: &str) {
    object.push(area(
        &format!("{prefix}Street"),
        &format!("{label} Street"),
        255,
    ));
    object.push(text(&format!("{prefix}City"), &format!("{label} City"), 40));
    object.push(text(
        &format!("{prefix}State"),
        &format!("{label} State/Province"),
        80,
    ));
    object.push(text(
        &format!("{prefix}PostalCode"),
        &format!("{label} Zip/Postal Code"),
        20,
    ));
    object.push(text(
        &format!("{prefix}Country"),
        &format!("{label} Country"),
        80,
    ));
}

const LEAD_SOURCES: [&str; 5] = [
    "Web",
    "Phone Inquiry",
    "Partner Referral",
    "Purchased List",
    "Other",
];
const INDUSTRIES: [&str; 8] = [
    "Agriculture",
    "Banking",
    "Consulting",
    "Education",
    "Healthcare",
    "Manufacturing",
    "Retail",
    "Technology",
];

fn standard_objects(config: &SalesforceConfig) -> Result<Vec<ObjectDef>, SchemaError> {
    let statuses: Vec<&str> = config
        .lead
        .statuses
        .iter()
        .map(|s| s.api_name.as_str())
        .collect();
    if statuses.is_empty() || config.lead.statuses.iter().filter(|s| s.is_default).count() != 1 {
        return Err(SchemaError::Tables(
            "lead.statuses needs values and exactly one is_default".to_owned(),
        ));
    }
    let stages = stage_names(config);
    if stages.is_empty() {
        return Err(SchemaError::Tables(
            "opportunity_stages is empty".to_owned(),
        ));
    }
    let stage_refs: Vec<&str> = stages.iter().map(String::as_str).collect();

    let mut account = ObjectDef::new("Account", "Account", "Accounts", "001", ObjectKind::Account);
    account.push(text("Name", "Account Name", 255).required());
    account.push(picklist(
        "Type",
        "Account Type",
        &[
            "Prospect",
            "Customer - Direct",
            "Customer - Channel",
            "Partner",
            "Other",
        ],
        false,
    ));
    account.push(reference(
        "ParentId",
        "Parent Account ID",
        "Account",
        "Parent",
    ));
    address(&mut account, "Billing", "Billing");
    address(&mut account, "Shipping", "Shipping");
    account.push(FieldDef::new(
        "Phone",
        "Account Phone",
        FieldType::Phone(40),
    ));
    account.push(FieldDef::new("Website", "Website", FieldType::Url(255)));
    account.push(picklist("Industry", "Industry", &INDUSTRIES, false));
    account.push(FieldDef::new(
        "AnnualRevenue",
        "Annual Revenue",
        FieldType::Currency(18, 0),
    ));
    account.push(FieldDef::new(
        "NumberOfEmployees",
        "Employees",
        FieldType::Int,
    ));
    account.push(area("Description", "Account Description", 32_000));
    system_fields(&mut account);

    let mut contact = ObjectDef::new("Contact", "Contact", "Contacts", "003", ObjectKind::Contact);
    contact.push(reference("AccountId", "Account ID", "Account", "Account"));
    contact.push(text("LastName", "Last Name", 80).required());
    contact.push(text("FirstName", "First Name", 40));
    contact.push(text("Name", "Full Name", 121).read_only());
    contact.push(text("Title", "Title", 128));
    address(&mut contact, "Mailing", "Mailing");
    contact.push(FieldDef::new(
        "Phone",
        "Business Phone",
        FieldType::Phone(40),
    ));
    contact.push(FieldDef::new(
        "MobilePhone",
        "Mobile Phone",
        FieldType::Phone(40),
    ));
    contact.push(FieldDef::new("Email", "Email", FieldType::Email));
    contact.push(picklist("LeadSource", "Lead Source", &LEAD_SOURCES, false));
    contact.push(area("Description", "Contact Description", 32_000));
    system_fields(&mut contact);

    let mut lead = ObjectDef::new("Lead", "Lead", "Leads", "00Q", ObjectKind::Lead);
    lead.push(text("LastName", "Last Name", 80).required());
    lead.push(text("FirstName", "First Name", 40));
    lead.push(text("Name", "Full Name", 121).read_only());
    lead.push(text("Title", "Title", 128));
    lead.push(text("Company", "Company", 255).required());
    address(&mut lead, "", "");
    for f in lead.fields.iter_mut() {
        f.label = f.label.trim().to_owned();
    }
    lead.push(FieldDef::new("Phone", "Phone", FieldType::Phone(40)));
    lead.push(FieldDef::new(
        "MobilePhone",
        "Mobile Phone",
        FieldType::Phone(40),
    ));
    lead.push(FieldDef::new("Email", "Email", FieldType::Email));
    lead.push(FieldDef::new("Website", "Website", FieldType::Url(255)));
    lead.push(area("Description", "Description", 32_000));
    lead.push(picklist("LeadSource", "Lead Source", &LEAD_SOURCES, false));
    let mut status = picklist("Status", "Status", &statuses, true).required();
    if config.lead.default_status_on_create {
        status.default = config
            .lead
            .statuses
            .iter()
            .find(|s| s.is_default)
            .map(|s| Value::Text(s.api_name.clone()));
    }
    lead.push(status);
    lead.push(picklist("Industry", "Industry", &INDUSTRIES, false));
    lead.push(picklist(
        "Rating",
        "Rating",
        &["Hot", "Warm", "Cold"],
        false,
    ));
    lead.push(FieldDef::new(
        "AnnualRevenue",
        "Annual Revenue",
        FieldType::Currency(18, 0),
    ));
    lead.push(FieldDef::new(
        "NumberOfEmployees",
        "Employees",
        FieldType::Int,
    ));
    lead.push(FieldDef::new("IsConverted", "Converted", FieldType::Boolean).read_only());
    lead.push(FieldDef::new("ConvertedDate", "Converted Date", FieldType::Date).read_only());
    lead.push(
        reference(
            "ConvertedAccountId",
            "Converted Account ID",
            "Account",
            "ConvertedAccount",
        )
        .read_only(),
    );
    lead.push(
        reference(
            "ConvertedContactId",
            "Converted Contact ID",
            "Contact",
            "ConvertedContact",
        )
        .read_only(),
    );
    lead.push(
        reference(
            "ConvertedOpportunityId",
            "Converted Opportunity ID",
            "Opportunity",
            "ConvertedOpportunity",
        )
        .read_only(),
    );
    system_fields(&mut lead);

    let mut opp = ObjectDef::new(
        "Opportunity",
        "Opportunity",
        "Opportunities",
        "006",
        ObjectKind::Opportunity,
    );
    opp.push(reference("AccountId", "Account ID", "Account", "Account"));
    opp.push(reference("ContactId", "Contact ID", "Contact", "Contact"));
    opp.push(text("Name", "Name", 120).required());
    opp.push(area("Description", "Description", 32_000));
    opp.push(picklist("StageName", "Stage", &stage_refs, true).required());
    opp.push(FieldDef::new(
        "Amount",
        "Amount",
        FieldType::Currency(18, 2),
    ));
    opp.push(FieldDef::new(
        "Probability",
        "Probability (%)",
        FieldType::Percent(3, 0),
    ));
    opp.push(
        FieldDef::new(
            "ExpectedRevenue",
            "Expected Amount",
            FieldType::Currency(18, 2),
        )
        .read_only(),
    );
    opp.push(FieldDef::new("CloseDate", "Close Date", FieldType::Date).required());
    opp.push(picklist(
        "Type",
        "Opportunity Type",
        &[
            "Existing Customer - Upgrade",
            "Existing Customer - Replacement",
            "Existing Customer - Downgrade",
            "New Customer",
        ],
        false,
    ));
    opp.push(text("NextStep", "Next Step", 255));
    opp.push(picklist("LeadSource", "Lead Source", &LEAD_SOURCES, false));
    opp.push(FieldDef::new("IsClosed", "Closed", FieldType::Boolean).read_only());
    opp.push(FieldDef::new("IsWon", "Won", FieldType::Boolean).read_only());
    opp.push(
        picklist(
            "ForecastCategory",
            "Forecast Category",
            &["Omitted", "Pipeline", "BestCase", "Forecast", "Closed"],
            true,
        )
        .read_only(),
    );
    opp.push(picklist(
        "ForecastCategoryName",
        "Forecast Category",
        &["Omitted", "Pipeline", "Best Case", "Commit", "Closed"],
        true,
    ));
    opp.push(FieldDef::new("FiscalQuarter", "Fiscal Quarter", FieldType::Int).read_only());
    opp.push(FieldDef::new("FiscalYear", "Fiscal Year", FieldType::Int).read_only());
    system_fields(&mut opp);

    let mut user = ObjectDef::new("User", "User", "Users", "005", ObjectKind::User);
    user.writable = false;
    user.push(text("Username", "Username", 80).read_only());
    user.push(text("FirstName", "First Name", 40).read_only());
    user.push(text("LastName", "Last Name", 80).read_only());
    user.push(text("Name", "Full Name", 121).read_only());
    user.push(FieldDef::new("Email", "Email", FieldType::Email).read_only());
    user.push(FieldDef::new("IsActive", "Active", FieldType::Boolean).read_only());

    let mut lead_status = ObjectDef::new(
        "LeadStatus",
        "Lead Status Value",
        "Lead Status Values",
        "01J",
        ObjectKind::LeadStatus,
    );
    lead_status.writable = false;
    lead_status.push(text("ApiName", "Api Name", 255).read_only());
    lead_status.push(text("MasterLabel", "Master Label", 255).read_only());
    lead_status.push(FieldDef::new("SortOrder", "Sort Order", FieldType::Int).read_only());
    lead_status.push(FieldDef::new("IsDefault", "Is Default", FieldType::Boolean).read_only());
    lead_status.push(FieldDef::new("IsConverted", "Is Converted", FieldType::Boolean).read_only());

    let mut stage = ObjectDef::new(
        "OpportunityStage",
        "Opportunity Stage",
        "Opportunity Stages",
        "01J",
        ObjectKind::OpportunityStage,
    );
    stage.writable = false;
    stage.push(text("ApiName", "Api Name", 255).read_only());
    stage.push(text("MasterLabel", "Master Label", 255).read_only());
    stage.push(FieldDef::new("IsActive", "Is Active", FieldType::Boolean).read_only());
    stage.push(FieldDef::new("SortOrder", "Sort Order", FieldType::Int).read_only());
    stage.push(FieldDef::new("IsClosed", "Is Closed", FieldType::Boolean).read_only());
    stage.push(FieldDef::new("IsWon", "Is Won", FieldType::Boolean).read_only());
    stage.push(
        FieldDef::new(
            "DefaultProbability",
            "Default Probability",
            FieldType::Percent(3, 0),
        )
        .read_only(),
    );
    stage.push(text("ForecastCategory", "Forecast Category", 40).read_only());
    stage.push(text("ForecastCategoryName", "Forecast Category Name", 40).read_only());

    Ok(vec![account, contact, lead, opp, user, lead_status, stage])
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
        let lead = schema.object("lead").unwrap();
        assert_eq!(lead.name, "Lead");
        let referral = lead.field("referral_identifier__c").unwrap();
        assert!(referral.external_id && referral.unique);
        assert_eq!(referral.ty, FieldType::Text(100));
        let opp = schema.object("Opportunity").unwrap();
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
        let f = schema
            .object("Opportunity")
            .unwrap()
            .field("CurrencyIsoCode")
            .unwrap();
        assert_eq!(f.default, Some(Value::Text("USD".to_owned())));
    }
}
