//! Table metadata: entity sets, primary keys and names, column types and limits,
//! lookups and their navigation properties, state/status tables and alternate keys
//! (crm.md §1.4, §1.6, §1.13). The standard tables are in `tables.rs`; custom
//! columns and keys from the configuration are added by `customization.rs`.

use super::config::{DataverseConfig, OpportunityClose};
use super::customization::{add_custom_column, add_key};
use super::tables;
use std::collections::HashMap;

/// How required a column is (crm.md §1.4's "Required level").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requirement {
    /// Optional.
    None,
    /// Business-required in forms; enforced when [`DataverseConfig::enforce_application_required`] is on.
    Application,
    /// Always required.
    System,
}

/// One value of a choice, state or status column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    /// Stored number.
    pub value: i32,
    /// Label (the `FormattedValue` annotation).
    pub label: String,
}

/// A lookup's possible target: the table and the navigation property used to bind it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LookupTarget {
    /// Target table logical name.
    pub table: String,
    /// Navigation property (case-sensitive) for `<nav>@odata.bind`.
    pub navigation: String,
}

/// The type of a column, with its limits.
#[derive(Debug, Clone, PartialEq)]
pub enum ColumnKind {
    /// The primary key (a GUID; may be given on create).
    PrimaryKey,
    /// Single line of text (`max_len` characters; `None`: not checked).
    Text {
        /// Maximum length.
        max_len: Option<usize>,
    },
    /// Multiple lines of text.
    Memo {
        /// Maximum length.
        max_len: usize,
    },
    /// Whole number.
    Integer {
        /// Smallest value.
        min: i64,
        /// Largest value.
        max: i64,
    },
    /// Floating point.
    Double {
        /// Smallest value.
        min: f64,
        /// Largest value.
        max: f64,
    },
    /// Decimal with a precision (exchange rates).
    Decimal {
        /// Digits after the point.
        precision: u32,
    },
    /// Money: range and precision; the record's currency is `transactioncurrencyid`.
    Money {
        /// Smallest value.
        min: f64,
        /// Largest value.
        max: f64,
    },
    /// Yes/No with labels.
    Boolean {
        /// Label of `false`.
        no: String,
        /// Label of `true`.
        yes: String,
    },
    /// Date and time (UTC, second precision on the wire).
    DateTime,
    /// Date only (`YYYY-MM-DD`, crm.md §1.4 "DateOnly behavior").
    DateOnly,
    /// Choice (option set).
    Choice {
        /// Allowed values.
        options: Vec<Choice>,
    },
    /// `statecode` (its values come from the table's [`StateModel`]).
    State,
    /// `statuscode` (its values come from the table's [`StateModel`]).
    Status,
    /// A lookup, read back as `_<name>_value` (crm.md §1.4).
    Lookup {
        /// Possible targets (two for Customer columns).
        targets: Vec<LookupTarget>,
    },
    /// `versionnumber`.
    Version,
}

impl ColumnKind {
    /// True for lookups.
    pub fn is_lookup(&self) -> bool {
        matches!(self, ColumnKind::Lookup { .. })
    }
}

/// One column.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    /// Logical name.
    pub name: String,
    /// Display name.
    pub label: String,
    /// Type.
    pub kind: ColumnKind,
    /// Required level.
    pub required: Requirement,
    /// Settable on create.
    pub on_create: bool,
    /// Settable on update.
    pub on_update: bool,
    /// Value on create when none is given.
    pub default: Option<serde_json::Value>,
    /// Added through configuration.
    pub custom: bool,
}

impl Column {
    /// A writable, optional column.
    pub(crate) fn new(name: &str, label: &str, kind: ColumnKind) -> Self {
        Self {
            name: name.to_owned(),
            label: label.to_owned(),
            kind,
            required: Requirement::None,
            on_create: true,
            on_update: true,
            default: None,
            custom: false,
        }
    }

    /// Marks the column required at `level`.
    pub(crate) fn required(mut self, level: Requirement) -> Self {
        self.required = level;
        self
    }

    /// Marks the column read-only (system-maintained).
    pub(crate) fn read_only(mut self) -> Self {
        self.on_create = false;
        self.on_update = false;
        self
    }

    /// Sets the value used on create when none is given.
    pub(crate) fn default_value(mut self, value: serde_json::Value) -> Self {
        self.default = Some(value);
        self
    }

    /// The name the column has on the wire: `_<name>_value` for lookups.
    pub fn wire_name(&self) -> String {
        if self.kind.is_lookup() {
            format!("_{}_value", self.name)
        } else {
            self.name.clone()
        }
    }
}

/// One state (`statecode` value) with its statuses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateDef {
    /// `statecode`.
    pub code: i32,
    /// Label (`Open`, `Won`, …).
    pub label: String,
    /// `statuscode` used when only the state is given.
    pub default_status: i32,
    /// Valid `statuscode` values with their labels.
    pub statuses: Vec<Choice>,
    /// Records in this state cannot be updated until reactivated (crm.md §1.4).
    pub read_only: bool,
    /// A record may be created in this state.
    pub on_create: bool,
    /// `Some(action)`: a PATCH into this state is refused; use the named action.
    pub requires_action: Option<&'static str>,
}

/// A table's `statecode`/`statuscode` pairs (crm.md §1.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateModel {
    /// Enum name prefix in messages (`LeadState`).
    pub enum_name: String,
    /// The states; the first is the initial one.
    pub states: Vec<StateDef>,
}

impl StateModel {
    /// The state with this code.
    pub fn state(&self, code: i64) -> Option<&StateDef> {
        self.states.iter().find(|s| i64::from(s.code) == code)
    }

    /// The state a status belongs to.
    pub fn state_of_status(&self, status: i64) -> Option<&StateDef> {
        self.states
            .iter()
            .find(|s| s.statuses.iter().any(|c| i64::from(c.value) == status))
    }

    /// The initial state (`Open`/`Active`).
    pub fn initial(&self) -> Option<&StateDef> {
        self.states.first()
    }
}

/// A declared alternate key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlternateKey {
    /// Key name.
    pub name: String,
    /// Key columns (logical names; lookups as their column name).
    pub columns: Vec<String>,
}

/// Which business process a table's special actions belong to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableRole {
    /// Lead (QualifyLead).
    Lead,
    /// Opportunity (WinOpportunity / LoseOpportunity).
    Opportunity,
    /// Anything else.
    Plain,
}

/// One table.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// Logical name (`lead`).
    pub logical_name: String,
    /// Entity set (`leads`).
    pub entity_set: String,
    /// Primary id column (`leadid`).
    pub primary_id: String,
    /// Primary name column (`fullname`).
    pub primary_name: String,
    /// Columns in the order records are written out.
    pub columns: Vec<Column>,
    /// State model, for tables with `statecode`.
    pub states: Option<StateModel>,
    /// Alternate keys.
    pub keys: Vec<AlternateKey>,
    /// Creates, updates and deletes allowed through the Web API.
    pub writable: bool,
    /// User-owned: `ownerid`, `createdby`, `modifiedby` maintained.
    pub user_owned: bool,
    /// `fullname` computed from these two columns.
    pub full_name_from: Option<(String, String)>,
    /// Change tracking on (crm.md §1.9).
    pub change_tracking: bool,
    /// Special actions.
    pub role: TableRole,
    index: HashMap<String, usize>,
    nav: HashMap<String, (usize, String)>,
}

impl Table {
    /// A table with `columns`; indexes are built by [`Table::reindex`].
    pub(crate) fn new(
        logical_name: &str,
        entity_set: &str,
        primary_id: &str,
        primary_name: &str,
        columns: Vec<Column>,
    ) -> Self {
        let mut table = Self {
            logical_name: logical_name.to_owned(),
            entity_set: entity_set.to_owned(),
            primary_id: primary_id.to_owned(),
            primary_name: primary_name.to_owned(),
            columns,
            states: None,
            keys: Vec::new(),
            writable: true,
            user_owned: true,
            full_name_from: None,
            change_tracking: false,
            role: TableRole::Plain,
            index: HashMap::new(),
            nav: HashMap::new(),
        };
        table.reindex();
        table
    }

    pub(crate) fn reindex(&mut self) {
        self.index.clear();
        self.nav.clear();
        for (i, column) in self.columns.iter().enumerate() {
            self.index.insert(column.name.clone(), i);
            if let ColumnKind::Lookup { targets } = &column.kind {
                for target in targets {
                    self.nav
                        .insert(target.navigation.clone(), (i, target.table.clone()));
                }
            }
        }
    }

    /// The column with this logical name.
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.index.get(name).and_then(|i| self.columns.get(*i))
    }

    /// The column behind a wire name: `subject`, or `_parentaccountid_value` for a lookup.
    pub fn column_by_wire_name(&self, wire: &str) -> Option<&Column> {
        if let Some(inner) = wire
            .strip_prefix('_')
            .and_then(|w| w.strip_suffix("_value"))
            && let Some(column) = self.column(inner)
            && column.kind.is_lookup()
        {
            return Some(column);
        }
        self.column(wire).filter(|c| !c.kind.is_lookup())
    }

    /// The lookup column and target table a navigation property binds (case-sensitive).
    pub fn navigation(&self, nav: &str) -> Option<(&Column, &str)> {
        let (i, table) = self.nav.get(nav)?;
        Some((self.columns.get(*i)?, table.as_str()))
    }

    /// The navigation property that binds `column` to `target`.
    pub fn navigation_for(&self, column: &str, target: &str) -> Option<&str> {
        match &self.column(column)?.kind {
            ColumnKind::Lookup { targets } => targets
                .iter()
                .find(|t| t.table == target)
                .map(|t| t.navigation.as_str()),
            _ => None,
        }
    }

    /// True when the table has a money column (and so a transaction currency).
    pub fn has_money(&self) -> bool {
        self.columns
            .iter()
            .any(|c| matches!(c.kind, ColumnKind::Money { .. }))
    }

    /// The alternate key whose columns are exactly `names` (in any order).
    pub fn key_named_by(&self, names: &[&str]) -> Option<&AlternateKey> {
        self.keys.iter().find(|k| {
            k.columns.len() == names.len() && names.iter().all(|n| k.columns.iter().any(|c| c == n))
        })
    }
}

/// Why the configuration cannot make a schema.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaError {
    /// A custom column names a table the emulator does not have.
    #[error("custom column {column}: no table named {table:?}")]
    UnknownTable {
        /// The column.
        column: String,
        /// The table.
        table: String,
    },
    /// A custom column's name is not a prefixed lowercase logical name.
    #[error(
        "custom column {0:?}: a logical name is lowercase with a publisher prefix, like new_referralid (crm.md §1.13)"
    )]
    BadName(String),
    /// The column exists already.
    #[error("column {column:?} already exists on {table}")]
    Duplicate {
        /// The table.
        table: String,
        /// The column.
        column: String,
    },
    /// Something else is inconsistent.
    #[error("{0}")]
    Invalid(String),
}

/// Every table of the environment.
#[derive(Debug, Clone, PartialEq)]
pub struct Schema {
    tables: Vec<Table>,
}

impl Schema {
    /// The standard tables plus the configured custom columns and keys.
    pub fn from_config(config: &DataverseConfig) -> Result<Self, SchemaError> {
        let mut list = tables::standard(config.opportunity_close == OpportunityClose::ActionsOnly);
        for custom in config.cosell.columns().iter().chain(&config.custom_columns) {
            add_custom_column(&mut list, custom)?;
        }
        for key in config.cosell.keys().iter().chain(&config.alternate_keys) {
            add_key(&mut list, key)?;
        }
        for table in &mut list {
            table.change_tracking = config
                .change_tracking_tables
                .iter()
                .any(|t| t == &table.logical_name);
            for column in &mut table.columns {
                if column.required == Requirement::Application
                    && !config.enforce_application_required
                {
                    column.required = Requirement::None;
                }
            }
            table.reindex();
        }
        Ok(Self { tables: list })
    }

    /// The table behind an entity set (`leads`).
    pub fn by_entity_set(&self, set: &str) -> Option<&Table> {
        self.tables.iter().find(|t| t.entity_set == set)
    }

    /// The table with this logical name (`lead`).
    pub fn by_logical_name(&self, name: &str) -> Option<&Table> {
        self.tables.iter().find(|t| t.logical_name == name)
    }

    /// All tables.
    pub fn tables(&self) -> &[Table] {
        &self.tables
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataverse::config::{AlternateKeyConfig, CustomColumn, CustomColumnKind};

    #[test]
    fn default_schema_has_the_tables_keys_and_custom_columns() {
        let schema = Schema::from_config(&DataverseConfig::default()).unwrap();
        let lead = schema.by_entity_set("leads").unwrap();
        assert_eq!(lead.primary_id, "leadid");
        assert_eq!(lead.primary_name, "fullname");
        assert_eq!(
            lead.key_named_by(&["msft_microsoftpartnercenterreferralidentifier"])
                .unwrap()
                .name,
            "msft_referralidentifierkey"
        );
        assert!(lead.column("msft_microsoftpartnercenterhelp").is_some());
        let opp = schema.by_logical_name("opportunity").unwrap();
        let (column, target) = opp.navigation("customerid_account").unwrap();
        assert_eq!((column.name.as_str(), target), ("customerid", "account"));
        assert!(opp.navigation("CustomerId_Account").is_none());
        assert_eq!(
            opp.column_by_wire_name("_customerid_value").unwrap().name,
            "customerid"
        );
        assert!(opp.column_by_wire_name("customerid").is_none());
        for set in [
            "accounts",
            "contacts",
            "transactioncurrencies",
            "systemusers",
        ] {
            assert!(schema.by_entity_set(set).is_some(), "{set}");
        }
    }

    #[test]
    fn bad_custom_columns_and_keys_are_refused() {
        let mut config = DataverseConfig::default();
        config.custom_columns.push(CustomColumn {
            table: "lead".to_owned(),
            name: "ReferralId".to_owned(),
            label: "x".to_owned(),
            kind: CustomColumnKind::Text { max_length: 10 },
        });
        assert!(matches!(
            Schema::from_config(&config),
            Err(SchemaError::BadName(_))
        ));

        let mut config = DataverseConfig::default();
        config.alternate_keys.push(AlternateKeyConfig {
            table: "lead".to_owned(),
            name: "k".to_owned(),
            columns: vec!["description".to_owned()],
        });
        assert!(matches!(
            Schema::from_config(&config),
            Err(SchemaError::Invalid(_))
        ));

        let mut config = DataverseConfig::default();
        config.custom_columns.push(CustomColumn {
            table: "invoice".to_owned(),
            name: "new_x".to_owned(),
            label: "x".to_owned(),
            kind: CustomColumnKind::Date,
        });
        assert!(matches!(
            Schema::from_config(&config),
            Err(SchemaError::UnknownTable { .. })
        ));
    }

    #[test]
    fn application_required_can_be_relaxed() {
        let config = DataverseConfig {
            enforce_application_required: false,
            ..DataverseConfig::default()
        };
        let schema = Schema::from_config(&config).unwrap();
        let lead = schema.by_logical_name("lead").unwrap();
        assert_eq!(lead.column("lastname").unwrap().required, Requirement::None);
        let currency = schema.by_logical_name("transactioncurrency").unwrap();
        assert_eq!(
            currency.column("isocurrencycode").unwrap().required,
            Requirement::System
        );
    }
}
