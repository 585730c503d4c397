//! The mapping file's TOML shape and its validation into [`EntityMapping`]s. Serde
//! catches misspelt keys and wrong types; the checks here catch what is well-formed
//! but wrong: a one-way field with the other side as owner, a status table with an
//! impossible status pair, two fields writing the same column, and so on.

use super::normalize::{Case, TextRules};
use super::path::ReferralPath;
use super::transform::{TableEntry, Template, Transform, ValueTable};
use super::{Direction, EntityMapping, FieldMapping, MappingError, Owner};
use crate::ids::CrmEntity;
use crate::status::{ReferralStatus, ReferralSubstatus, StatusPair, check_combination};
use serde::Deserialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MappingFile {
    lead: Option<EntityFile>,
    opportunity: Option<EntityFile>,
    account: Option<EntityFile>,
    contact: Option<EntityFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EntityFile {
    collection: String,
    primary_key: String,
    referral_id_field: Option<String>,
    sync_flag_field: Option<String>,
    audit_field: Option<String>,
    marked_name_field: Option<String>,
    #[serde(default)]
    fields: Vec<FieldFile>,
}

#[derive(Deserialize)]
#[serde(untagged, expecting = "a string or a list of strings")]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn into_vec(this: Option<Self>) -> Vec<String> {
        match this {
            None => Vec::new(),
            Some(OneOrMany::One(s)) => vec![s],
            Some(OneOrMany::Many(v)) => v,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FieldFile {
    name: String,
    pc: Option<OneOrMany>,
    crm: Option<OneOrMany>,
    transform: Option<TransformFile>,
    direction: Option<Direction>,
    owner: Option<Owner>,
}

#[derive(Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
enum TransformFile {
    String {
        max_len: Option<usize>,
        case: Option<Case>,
    },
    Decimal {
        scale: Option<u32>,
    },
    Money {},
    Date {},
    Boolean {},
    Table {
        values: Vec<EntryFile>,
        pc_empty: Option<Value>,
        pc_fallback: Option<Value>,
    },
    Template {
        template: String,
    },
    Constant {
        value: Value,
    },
    CrmRecordId {},
    Lookup {
        target: String,
        key: String,
        max_len: Option<usize>,
        case: Option<Case>,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryFile {
    pc: Value,
    #[serde(default)]
    pc_also: Vec<Value>,
    crm: Value,
    #[serde(default)]
    crm_also: Vec<Value>,
    #[serde(default)]
    on_hold: bool,
}

/// Parses and validates a whole file.
pub(super) fn parse(text: &str) -> Result<BTreeMap<CrmEntity, EntityMapping>, MappingError> {
    let file: MappingFile = toml::from_str(text)
        .map_err(|e| MappingError::Toml(e.to_string().trim_end().to_owned()))?;
    let mut out = BTreeMap::new();
    for (entity, section) in [
        (CrmEntity::Lead, file.lead),
        (CrmEntity::Opportunity, file.opportunity),
        (CrmEntity::Account, file.account),
        (CrmEntity::Contact, file.contact),
    ] {
        if let Some(section) = section {
            out.insert(entity.clone(), section.validate(entity)?);
        }
    }
    if out.is_empty() {
        return Err(MappingError::Toml(
            "no record type is mapped: add a [lead], [opportunity], [account] or [contact] section"
                .into(),
        ));
    }
    check_shared_names(&out)?;
    Ok(out)
}

/// One link's base holds the fields of all its record types (an opportunity with its
/// account and contact, or a lead that later becomes an opportunity), so a name must
/// mean the same referral value wherever it appears.
fn check_shared_names(entities: &BTreeMap<CrmEntity, EntityMapping>) -> Result<(), MappingError> {
    let mut seen: BTreeMap<&str, (&CrmEntity, Vec<&str>)> = BTreeMap::new();
    for m in entities.values() {
        for f in m.synced_fields() {
            let paths: Vec<&str> = f.pc.iter().map(ReferralPath::as_str).collect();
            if let Some((other, other_paths)) = seen.get(f.name.as_str()) {
                if *other_paths != paths {
                    return Err(MappingError::Field {
                        entity: m.entity.clone(),
                        field: f.name.clone(),
                        problem: format!(
                            "the name is also used in [{other}] for other referral paths ({}); \
                             one name must mean one referral value",
                            other_paths.join(", ")
                        ),
                    });
                }
            } else {
                seen.insert(&f.name, (&m.entity, paths));
            }
        }
    }
    Ok(())
}

fn check_column(what: &str, s: &str) -> Result<(), String> {
    if s.trim().is_empty() {
        return Err(format!("{what} is empty"));
    }
    if s.chars().any(char::is_whitespace) {
        return Err(format!("{what} {s:?} contains whitespace"));
    }
    Ok(())
}

impl EntityFile {
    fn validate(self, entity: CrmEntity) -> Result<EntityMapping, MappingError> {
        let entity_err = |problem: String| MappingError::Entity {
            entity: entity.clone(),
            problem,
        };
        check_column("collection", &self.collection).map_err(entity_err)?;
        check_column("primary_key", &self.primary_key).map_err(entity_err)?;
        for (what, v) in [
            ("referral_id_field", &self.referral_id_field),
            ("sync_flag_field", &self.sync_flag_field),
            ("audit_field", &self.audit_field),
            ("marked_name_field", &self.marked_name_field),
        ] {
            if let Some(v) = v {
                check_column(what, v).map_err(entity_err)?;
            }
        }
        let mut fields = Vec::new();
        for f in self.fields {
            let name = f.name.clone();
            let field_err = |problem: String| MappingError::Field {
                entity: entity.clone(),
                field: name.clone(),
                problem,
            };
            if fields.iter().any(|g: &FieldMapping| g.name == f.name) {
                return Err(field_err("the name is used twice".into()));
            }
            fields.push(
                f.validate(self.marked_name_field.as_deref())
                    .map_err(field_err)?,
            );
        }
        let m = EntityMapping {
            entity: entity.clone(),
            collection: self.collection,
            primary_key: self.primary_key,
            referral_id_field: self.referral_id_field,
            sync_flag_field: self.sync_flag_field,
            audit_field: self.audit_field,
            marked_name_field: self.marked_name_field,
            fields,
        };
        check_writes(&m)?;
        Ok(m)
    }
}

/// The merge assumes that writing one field changes what no other field reads, so that
/// a write comes back as exactly that field's value (no echo through a neighbour).
fn check_writes(m: &EntityMapping) -> Result<(), MappingError> {
    let field_err = |f: &FieldMapping, problem: String| MappingError::Field {
        entity: m.entity.clone(),
        field: f.name.clone(),
        problem,
    };
    let holds = m.fields.iter().filter(|f| f.can_hold()).count();
    if holds > 1 {
        return Err(MappingError::Entity {
            entity: m.entity.clone(),
            problem: "only one field may have on_hold rows".into(),
        });
    }
    for f in &m.fields {
        let writes_crm = f.is_constant() || f.direction.to_crm();
        for c in &f.crm {
            if writes_crm && c.eq_ignore_ascii_case(&m.primary_key) {
                return Err(field_err(f, format!("writes the primary key {c}")));
            }
            if writes_crm && m.sync_flag_field.as_deref() == Some(c.as_str()) && !f.is_constant() {
                return Err(field_err(
                    f,
                    format!("writes the sync flag {c}; only a constant may set it, on creation"),
                ));
            }
        }
        for g in m.fields.iter().filter(|g| g.name != f.name) {
            if writes_crm
                && let Some(c) = f
                    .crm
                    .iter()
                    .find(|c| g.crm.iter().any(|d| d.eq_ignore_ascii_case(c)))
            {
                return Err(field_err(
                    f,
                    format!("writes CRM column {c}, which field {:?} also maps", g.name),
                ));
            }
            if f.direction.to_pc() && !f.is_constant() {
                for p in &f.pc {
                    if let Some(q) = g.pc.iter().find(|q| p.overlaps(q)) {
                        return Err(field_err(
                            f,
                            format!(
                                "writes referral path {p}, which overlaps {q} of field {:?}",
                                g.name
                            ),
                        ));
                    }
                }
            }
        }
    }
    Ok(())
}

fn text_rules(max_len: Option<usize>, case: Option<Case>) -> Result<TextRules, String> {
    if max_len == Some(0) {
        return Err("max_len must be at least 1".into());
    }
    Ok(TextRules { max_len, case })
}

impl FieldFile {
    fn validate(self, marked_name_field: Option<&str>) -> Result<FieldMapping, String> {
        if self.name.is_empty()
            || !self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        {
            return Err("a name is ASCII letters, digits and _ - . only".into());
        }
        let pc_text = OneOrMany::into_vec(self.pc);
        let crm = OneOrMany::into_vec(self.crm);
        let pc = pc_text
            .iter()
            .map(|p| ReferralPath::parse(p))
            .collect::<Result<Vec<_>, _>>()?;
        for c in &crm {
            check_column("CRM column", c)?;
        }
        let distinct: BTreeSet<String> = crm.iter().map(|c| c.to_ascii_lowercase()).collect();
        if distinct.len() != crm.len() {
            return Err("lists a CRM column twice".into());
        }
        if pc_text.iter().collect::<BTreeSet<_>>().len() != pc_text.len() {
            return Err("lists a referral path twice".into());
        }

        let counts = |want_pc: &str, pc_ok: bool, want_crm: &str, crm_ok: bool| {
            if !pc_ok {
                Err(format!(
                    "needs {want_pc} referral path(s) in pc, found {}",
                    pc.len()
                ))
            } else if !crm_ok {
                Err(format!(
                    "needs {want_crm} CRM column(s) in crm, found {}",
                    crm.len()
                ))
            } else {
                Ok(())
            }
        };
        let transform = match self.transform.unwrap_or(TransformFile::String {
            max_len: None,
            case: None,
        }) {
            TransformFile::String { max_len, case } => {
                counts("1", pc.len() == 1, "1", crm.len() == 1)?;
                Transform::Text(text_rules(max_len, case)?)
            }
            TransformFile::Decimal { scale } => {
                counts("1", pc.len() == 1, "1", crm.len() == 1)?;
                Transform::Decimal { scale }
            }
            TransformFile::Money {} => {
                counts("1", pc.len() == 1, "1", crm.len() == 1)?;
                Transform::Decimal { scale: Some(2) }
            }
            TransformFile::Date {} => {
                counts("1", pc.len() == 1, "1", crm.len() == 1)?;
                Transform::Date
            }
            TransformFile::Boolean {} => {
                counts("1", pc.len() == 1, "1", crm.len() == 1)?;
                Transform::Boolean
            }
            TransformFile::Lookup {
                target,
                key,
                max_len,
                case,
            } => {
                counts("1", pc.len() == 1, "1", crm.len() == 1)?;
                check_column("lookup target", &target)?;
                check_column("lookup key", &key)?;
                Transform::Lookup {
                    target,
                    key,
                    text: text_rules(max_len, case)?,
                }
            }
            TransformFile::Template { template } => {
                counts("at least 1", !pc.is_empty(), "1", crm.len() == 1)?;
                let paths: Vec<&str> = pc_text.iter().map(String::as_str).collect();
                Transform::Template(Template::parse(&template, &paths)?)
            }
            TransformFile::Constant { value } => {
                counts("no", pc.is_empty(), "1", crm.len() == 1)?;
                Transform::Constant(value)
            }
            TransformFile::CrmRecordId {} => {
                counts("1", pc.len() == 1, "no", crm.is_empty())?;
                Transform::CrmRecordId
            }
            TransformFile::Table {
                values,
                pc_empty,
                pc_fallback,
            } => {
                counts("at least 1", !pc.is_empty(), "at least 1", !crm.is_empty())?;
                table(values, pc_empty, pc_fallback, &pc_text, crm.len())?
            }
        };

        let (direction, owner) = direction_and_owner(&transform, self.direction, self.owner)?;
        let field = FieldMapping {
            strips_marks: marked_name_field
                .is_some_and(|m| crm.iter().any(|c| c.eq_ignore_ascii_case(m))),
            name: self.name,
            pc,
            crm,
            transform,
            direction,
            owner,
        };
        check_status(&field)?;
        Ok(field)
    }
}

fn direction_and_owner(
    transform: &Transform,
    direction: Option<Direction>,
    owner: Option<Owner>,
) -> Result<(Direction, Owner), String> {
    let direction = match (transform, direction) {
        (Transform::Constant(_), None | Some(Direction::PcToCrm)) => Direction::PcToCrm,
        (Transform::Constant(_), Some(d)) => {
            return Err(format!(
                "a constant is written to the CRM on creation; direction {d} makes no sense"
            ));
        }
        (Transform::CrmRecordId, Some(d)) if d != Direction::CrmToPc => {
            return Err("the CRM record id can only flow crm_to_pc".into());
        }
        (Transform::Template(_), Some(d)) if d != Direction::PcToCrm => {
            return Err(
                "a template is built from the referral, so it can only flow pc_to_crm".into(),
            );
        }
        (_, Some(d)) => d,
        (_, None) => return Err("direction is missing (pc_to_crm, crm_to_pc or both)".into()),
    };
    let owner = match (direction, owner) {
        (Direction::Both, Some(o)) => o,
        (Direction::Both, None) => {
            return Err("a field that flows both ways needs an owner (pc, crm or newest)".into());
        }
        (Direction::PcToCrm, None | Some(Owner::Pc)) => Owner::Pc,
        (Direction::CrmToPc, None | Some(Owner::Crm)) => Owner::Crm,
        (d, Some(o)) => {
            return Err(format!(
                "owner {o} cannot win a {d} field: only its source side's value can flow"
            ));
        }
    };
    Ok((direction, owner))
}

/// Converts one side of a table row to a tuple of the right arity.
fn tuple(v: Value, arity: usize, side: &str) -> Result<Vec<Value>, String> {
    match (arity, v) {
        (1, Value::Array(_)) => Err(format!(
            "a {side} value in the table is a list, but the field has one {side} path/column"
        )),
        (1, v) => Ok(vec![v]),
        (n, Value::Array(vs))
            if vs.len() == n && vs.iter().all(|v| !v.is_array() && !v.is_object()) =>
        {
            Ok(vs)
        }
        (n, v) => Err(format!(
            "{side} value {v} in the table should be a list of {n} values, one per {side} path/column"
        )),
    }
}

fn table(
    values: Vec<EntryFile>,
    pc_empty: Option<Value>,
    pc_fallback: Option<Value>,
    pc: &[String],
    crm_arity: usize,
) -> Result<Transform, String> {
    let pc_arity = pc.len();
    if pc_empty.is_some() && pc_arity != 1 {
        return Err("pc_empty only applies to a single referral path".into());
    }
    let mut entries = Vec::new();
    for e in values {
        entries.push(TableEntry {
            pc: tuple(e.pc, pc_arity, "Partner Center")?,
            pc_also: e
                .pc_also
                .into_iter()
                .map(|v| tuple(v, pc_arity, "Partner Center"))
                .collect::<Result<_, _>>()?,
            crm: tuple(e.crm, crm_arity, "CRM")?,
            crm_also: e
                .crm_also
                .into_iter()
                .map(|v| tuple(v, crm_arity, "CRM"))
                .collect::<Result<_, _>>()?,
            on_hold: e.on_hold,
        });
    }
    let fallback = pc_fallback
        .map(|v| tuple(v, pc_arity, "Partner Center"))
        .transpose()?;
    Ok(Transform::Table(ValueTable::new(
        entries, pc_empty, fallback,
    )?))
}

/// A status field must carry both status and substatus (the transition rules are about
/// the pair), and every pair its table writes or reads must be one Partner Center allows.
fn check_status(f: &FieldMapping) -> Result<(), String> {
    let has = |s: &str| f.pc.iter().position(|p| p.as_str() == s);
    let (status, substatus) = match (has("status"), has("substatus")) {
        (None, None) => return Ok(()),
        (Some(a), Some(b)) => (a, b),
        _ if !f.direction.to_pc() => return Ok(()),
        _ => {
            return Err(
                "writes status or substatus alone; map both, so each change can be checked \
                 against the allowed transitions"
                    .into(),
            );
        }
    };
    let Some(table) = f.table() else {
        return Err("status and substatus need a value table".into());
    };
    for e in table.entries() {
        for row in std::iter::once(&e.pc).chain(&e.pc_also) {
            let text = |i: usize| row[i].as_str().unwrap_or_default().to_owned();
            let pair = StatusPair::new(
                ReferralStatus::parse(&text(status)),
                ReferralSubstatus::parse(&text(substatus)),
            );
            check_combination(&pair).map_err(|e| format!("table row {pair}: {e}"))?;
        }
    }
    Ok(())
}
