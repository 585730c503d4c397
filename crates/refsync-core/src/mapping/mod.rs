//! Field mapping: configuration, not code (DESIGN.md "Field mapping").
//!
//! A TOML file declares, per CRM record type, where the record lives, its custom
//! fields, and each mapped field: a stable name (the key in the stored base), the
//! referral path(s), the CRM column(s), a transform, the direction it may flow and who
//! wins a conflict. [`Mapping::from_toml`] parses and validates it once; afterwards the
//! mapping reads both sides into one comparable form ([`Readout`]), renders a new CRM
//! record from a referral, and tells the merge how to write each side.
//!
//! Built-in defaults for Dynamics 365 and Salesforce ship as `mappings/*.toml` at the
//! repository root and are compiled in ([`DYNAMICS_TOML`], [`SALESFORCE_TOML`]).

mod file;
mod normalize;
mod path;
mod transform;

pub use normalize::{Case, TextRules};
pub use path::{PatchOp, PatchOpKind, ReferralPath};
pub use transform::{TableEntry, Template, Transform, ValueTable};

use crate::crm_record::CrmRecord;
use crate::ids::CrmEntity;
use crate::referral::Referral;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fmt;
use thiserror::Error;

/// The default mapping for Dynamics 365 (Dataverse), as shipped in `mappings/dynamics.toml`.
pub const DYNAMICS_TOML: &str = include_str!("../../../../mappings/dynamics.toml");
/// The default mapping for Salesforce, as shipped in `mappings/salesforce.toml`.
pub const SALESFORCE_TOML: &str = include_str!("../../../../mappings/salesforce.toml");

/// Per-field values in the comparable form, keyed by the fields' stable names. The
/// stored base has this shape too.
pub type FieldValues = BTreeMap<String, Value>;

/// Why a mapping was refused or could not render a value. Messages name the record
/// type and the field and say what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MappingError {
    /// The text is not valid TOML or does not have the expected shape.
    #[error("mapping file: {0}")]
    Toml(String),
    /// The mapping has no section for a record type that was asked for.
    #[error("the mapping has no [{0}] section")]
    MissingEntity(CrmEntity),
    /// A record type's settings are inconsistent.
    #[error("[{entity}]: {problem}")]
    Entity {
        /// The record type.
        entity: CrmEntity,
        /// What is wrong.
        problem: String,
    },
    /// A mapped field is inconsistent.
    #[error("[{entity}] field {field:?}: {problem}")]
    Field {
        /// The record type.
        entity: CrmEntity,
        /// The field's stable name.
        field: String,
        /// What is wrong.
        problem: String,
    },
    /// A referral value could not be converted for the CRM.
    #[error("[{entity}] field {field:?}: cannot convert the referral's value: {problem}")]
    Value {
        /// The record type.
        entity: CrmEntity,
        /// The field's stable name.
        field: String,
        /// What is wrong.
        problem: String,
    },
}

/// Which way a field may flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Partner Center → CRM only.
    PcToCrm,
    /// CRM → Partner Center only.
    CrmToPc,
    /// Both ways.
    Both,
}

impl Direction {
    /// True when the field may be written to the CRM.
    pub fn to_crm(self) -> bool {
        matches!(self, Direction::PcToCrm | Direction::Both)
    }

    /// True when the field may be written to Partner Center.
    pub fn to_pc(self) -> bool {
        matches!(self, Direction::CrmToPc | Direction::Both)
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Direction::PcToCrm => "pc_to_crm",
            Direction::CrmToPc => "crm_to_pc",
            Direction::Both => "both",
        })
    }
}

/// Who wins when both sides changed a field to different values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Owner {
    /// Partner Center's value wins.
    Pc,
    /// The CRM's value wins.
    Crm,
    /// The side changed last wins (`updatedDateTime` vs `modifiedon`/`SystemModstamp`).
    Newest,
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Owner::Pc => "pc",
            Owner::Crm => "crm",
            Owner::Newest => "newest",
        })
    }
}

/// The marks the connector appends to an opportunity name after a sync (crm.md §3.4).
const MARKS: [char; 2] = ['✔', '✖'];

/// Removes trailing ✔/✖ marks (and the whitespace before them).
fn strip_marks(s: &str) -> &str {
    s.trim_end_matches(|c: char| c.is_whitespace() || MARKS.contains(&c))
}

/// One mapped field.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldMapping {
    /// Stable name: the key in the stored base and in audit entries.
    pub name: String,
    /// Referral paths (none for a constant).
    pub pc: Vec<ReferralPath>,
    /// CRM columns (none for the record-id pseudo-field).
    pub crm: Vec<String>,
    /// How values are converted.
    pub transform: Transform,
    /// Which way the field may flow.
    pub direction: Direction,
    /// Who wins a conflict; for a one-way field always its source.
    pub owner: Owner,
    /// Whether the CRM column is the name that gets ✔/✖ appended; the marks are
    /// then ignored on both sides so they never read as a change.
    strips_marks: bool,
}

impl FieldMapping {
    /// True for a constant: written when a record is created, never compared.
    pub fn is_constant(&self) -> bool {
        matches!(self.transform, Transform::Constant(_))
    }

    /// True when the field carries the referral's status and substatus, whose changes
    /// must follow `status::check_transition`.
    pub fn is_status(&self) -> bool {
        ["status", "substatus"]
            .iter()
            .all(|s| self.pc.iter().any(|p| p.as_str() == *s))
    }

    /// The value table, when the transform is one.
    pub fn table(&self) -> Option<&ValueTable> {
        match &self.transform {
            Transform::Table(t) => Some(t),
            _ => None,
        }
    }

    /// True when some of the field's values put the CRM record on hold.
    pub fn can_hold(&self) -> bool {
        self.table()
            .is_some_and(|t| t.entries().iter().any(|e| e.on_hold))
    }

    fn prepare<'a>(&self, raw: impl Iterator<Item = &'a Value>) -> Vec<Value> {
        raw.map(|v| match v {
            Value::String(s) if self.strips_marks => Value::String(strip_marks(s).to_owned()),
            other => other.clone(),
        })
        .collect()
    }

    /// The canonical value from the referral (as JSON).
    pub(crate) fn read_pc(&self, doc: &Value) -> Result<Value, String> {
        let raw = self.prepare(self.pc.iter().map(|p| p.get(doc)));
        self.transform.read_pc(&raw.iter().collect::<Vec<_>>())
    }

    /// The canonical value from the CRM record.
    pub(crate) fn read_crm(&self, record: &CrmRecord) -> Result<Value, String> {
        let raw = self.prepare(self.crm.iter().map(|c| record.field(c)));
        self.transform
            .read_crm(&raw.iter().collect::<Vec<_>>(), record.id.as_ref())
    }

    /// The CRM columns and values that hold a canonical value.
    pub(crate) fn crm_values(&self, canonical: &Value) -> Result<Map<String, Value>, String> {
        let values = self.transform.write_crm(canonical)?;
        Ok(self.crm.iter().cloned().zip(values).collect())
    }

    /// The patch operations that put a canonical value into the referral document
    /// (which is updated too, so later operations see earlier ones).
    pub(crate) fn write_pc(
        &self,
        doc: &mut Value,
        canonical: &Value,
    ) -> Result<Vec<PatchOp>, String> {
        let values = self.transform.write_pc(canonical)?;
        let mut ops = Vec::new();
        for (path, value) in self.pc.iter().zip(values) {
            ops.extend(path.write(doc, value)?);
        }
        Ok(ops)
    }

    /// A stored value brought into today's canonical form (the mapping may have changed
    /// since it was stored): written out and read back through the CRM side, or the
    /// Partner Center side for the record-id field. Values that do not convert are kept.
    pub(crate) fn canonicalize(&self, stored: &Value) -> Value {
        let round_trip = || -> Result<Value, String> {
            if matches!(self.transform, Transform::CrmRecordId) {
                let written = self.prepare(self.transform.write_pc(stored)?.iter());
                return self.transform.read_pc(&written.iter().collect::<Vec<_>>());
            }
            let written = self.prepare(self.transform.write_crm(stored)?.iter());
            self.transform
                .read_crm(&written.iter().collect::<Vec<_>>(), None)
        };
        round_trip().unwrap_or_else(|_| stored.clone())
    }
}

/// Both sides' values read through a mapping: the comparable values, and the fields
/// whose raw value could not be converted (with why), which the merge leaves alone.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Readout {
    /// Canonical values by field name.
    pub values: FieldValues,
    /// Fields that could not be read, with the reason.
    pub unreadable: BTreeMap<String, String>,
}

/// The mapping for one CRM record type.
#[derive(Debug, Clone, PartialEq)]
pub struct EntityMapping {
    /// The record type.
    pub entity: CrmEntity,
    /// Dataverse entity set (`leads`) or Salesforce object (`Lead`).
    pub collection: String,
    /// Primary key column (`leadid`, `Id`).
    pub primary_key: String,
    /// The "Referral Identifier" column: alternate key / external ID holding the
    /// referral id, used for upsert. Upserting adapters leave it out of the body.
    pub referral_id_field: Option<String>,
    /// The "Sync with Partner Center" flag: CRM → Partner Center only when set.
    pub sync_flag_field: Option<String>,
    /// The "Audit" column the engine writes sync outcomes to.
    pub audit_field: Option<String>,
    /// The name column that gets ✔ / ✖ appended after a sync.
    pub marked_name_field: Option<String>,
    /// The mapped fields, in file order.
    pub fields: Vec<FieldMapping>,
}

impl EntityMapping {
    /// A field by stable name.
    pub fn field(&self, name: &str) -> Option<&FieldMapping> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// The fields the merge compares: everything but constants.
    pub fn synced_fields(&self) -> impl Iterator<Item = &FieldMapping> {
        self.fields.iter().filter(|f| !f.is_constant())
    }

    /// Reads a referral into comparable values.
    pub fn read_referral(&self, referral: &Referral) -> Readout {
        self.read_referral_json(&referral.to_value())
    }

    /// Reads a referral given as JSON into comparable values.
    pub fn read_referral_json(&self, doc: &Value) -> Readout {
        self.read_with(|f| f.read_pc(doc))
    }

    /// Reads a CRM record into comparable values.
    pub fn read_crm(&self, record: &CrmRecord) -> Readout {
        self.read_with(|f| f.read_crm(record))
    }

    fn read_with(&self, read: impl Fn(&FieldMapping) -> Result<Value, String>) -> Readout {
        let mut out = Readout::default();
        for f in self.synced_fields() {
            match read(f) {
                Ok(v) => {
                    out.values.insert(f.name.clone(), v);
                }
                Err(why) => {
                    out.unreadable.insert(f.name.clone(), why);
                }
            }
        }
        out
    }

    /// What a CRM record of this type should contain per Partner Center: every field
    /// the referral can fill (whatever its direction: direction governs updates, and a
    /// record created from Partner Center starts from its values) plus the constants.
    /// Null values are left out. Includes the referral id column; see
    /// [`EntityMapping::referral_id_field`].
    pub fn render_crm_fields(
        &self,
        referral: &Referral,
    ) -> Result<Map<String, Value>, MappingError> {
        let doc = referral.to_value();
        let mut out = Map::new();
        for f in &self.fields {
            if matches!(f.transform, Transform::CrmRecordId) {
                continue;
            }
            let err = |problem: String| MappingError::Value {
                entity: self.entity.clone(),
                field: f.name.clone(),
                problem,
            };
            let canonical = f.read_pc(&doc).map_err(err)?;
            for (column, value) in f.crm_values(&canonical).map_err(err)? {
                if !value.is_null() {
                    out.insert(column, value);
                }
            }
        }
        Ok(out)
    }

    /// True when the record's "Sync with Partner Center" flag is set, or the record
    /// type has no such flag configured.
    pub fn sync_enabled(&self, record: &CrmRecord) -> bool {
        self.sync_flag_field
            .as_deref()
            .is_none_or(|f| normalize::boolean(record.field(f)) == Ok(Value::Bool(true)))
    }

    /// True when the given comparable CRM values put the record in a row marked
    /// `on_hold` (Salesforce's on-hold stage): its changes then stay in the CRM.
    pub fn is_on_hold(&self, crm_values: &FieldValues) -> bool {
        self.fields.iter().any(|f| {
            f.table()
                .zip(crm_values.get(&f.name))
                .and_then(|(t, v)| t.entry_of(v))
                .is_some_and(|e| e.on_hold)
        })
    }

    /// The name with the connector's success (✔) or failure (✖) mark, replacing any mark
    /// it already has.
    pub fn marked_name(name: &str, ok: bool) -> String {
        format!(
            "{} {}",
            strip_marks(name),
            if ok { MARKS[0] } else { MARKS[1] }
        )
    }
}

/// A validated mapping file: one [`EntityMapping`] per CRM record type it declares.
#[derive(Debug, Clone, PartialEq)]
pub struct Mapping {
    entities: BTreeMap<CrmEntity, EntityMapping>,
}

impl Mapping {
    /// Parses and validates a mapping file.
    ///
    /// ```
    /// use refsync_core::{CrmEntity, Mapping, Referral};
    ///
    /// let mapping = Mapping::from_toml(r#"
    ///     [opportunity]
    ///     collection = "opportunities"
    ///     primary_key = "opportunityid"
    ///
    ///     [[opportunity.fields]]
    ///     name = "deal_value"                 # key in the stored base
    ///     pc = "details.dealValue"            # referral path
    ///     crm = "estimatedvalue"              # CRM column
    ///     transform = { kind = "money" }
    ///     direction = "both"
    ///     owner = "newest"
    /// "#).unwrap();
    ///
    /// let referral: Referral =
    ///     serde_json::from_str(r#"{"details": {"dealValue": "50000.00"}}"#).unwrap();
    /// let fields = mapping.render_crm_fields(&CrmEntity::Opportunity, &referral).unwrap();
    /// assert_eq!(fields["estimatedvalue"], 50000);
    ///
    /// let bad = Mapping::from_toml(r#"
    ///     [opportunity]
    ///     collection = "opportunities"
    ///     primary_key = "opportunityid"
    ///     [[opportunity.fields]]
    ///     name = "deal_value"
    ///     pc = "details.dealValue"
    ///     crm = "estimatedvalue"
    ///     direction = "both"
    /// "#).unwrap_err();
    /// assert_eq!(
    ///     bad.to_string(),
    ///     "[opportunity] field \"deal_value\": a field that flows both ways needs an owner (pc, crm or newest)"
    /// );
    /// ```
    pub fn from_toml(text: &str) -> Result<Self, MappingError> {
        file::parse(text).map(|entities| Self { entities })
    }

    /// The built-in Dynamics 365 mapping.
    pub fn dynamics() -> Result<Self, MappingError> {
        Self::from_toml(DYNAMICS_TOML)
    }

    /// The built-in Salesforce mapping.
    pub fn salesforce() -> Result<Self, MappingError> {
        Self::from_toml(SALESFORCE_TOML)
    }

    /// The mapping for one record type.
    pub fn entity(&self, entity: &CrmEntity) -> Result<&EntityMapping, MappingError> {
        self.entities
            .get(entity)
            .ok_or_else(|| MappingError::MissingEntity(entity.clone()))
    }

    /// Every record type the file declares.
    pub fn entities(&self) -> impl Iterator<Item = &EntityMapping> {
        self.entities.values()
    }

    /// What a CRM record of the type should contain per Partner Center
    /// (see [`EntityMapping::render_crm_fields`]).
    pub fn render_crm_fields(
        &self,
        entity: &CrmEntity,
        referral: &Referral,
    ) -> Result<Map<String, Value>, MappingError> {
        self.entity(entity)?.render_crm_fields(referral)
    }

    /// The referral's values for the record type's fields, in comparable form.
    pub fn referral_values(
        &self,
        entity: &CrmEntity,
        referral: &Referral,
    ) -> Result<Readout, MappingError> {
        Ok(self.entity(entity)?.read_referral(referral))
    }

    /// The CRM record's values for its fields, in the same comparable form.
    pub fn referral_values_from_crm(&self, record: &CrmRecord) -> Result<Readout, MappingError> {
        Ok(self.entity(&record.entity)?.read_crm(record))
    }
}

#[cfg(test)]
mod tests;
