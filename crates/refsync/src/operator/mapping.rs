//! `refsync mapping check [--crm …] [--mapping FILE] [--referral FILE]`: validate a
//! field mapping (DESIGN.md "Field mapping") and print, per CRM record type, its
//! fields; with a referral, print the CRM record that referral becomes — the same
//! body the engine sends when it creates the record (`decide::new_record_fields`),
//! and for an opportunity the account and contact it matches or creates.
//!
//! A bad mapping is refused by `Mapping::from_toml` with a message naming the
//! record type and the field; this command adds which file it came from.

use crate::config::{Config, CrmKind};
use crate::engine::load_mapping;
use anyhow::Context;
use comfy_table::Table;
use refsync_core::mapping::{EntityMapping, Transform};
use refsync_core::{CrmEntity, Mapping, Referral};
use refsync_crm::MatchOrCreate;
use refsync_engine::decide;
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};

use super::MappingCheckArgs;

/// Where the checked mapping came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MappingSource {
    /// A file (`--mapping`, or `crm.mapping` in the configuration).
    File(PathBuf),
    /// The mapping compiled in for a CRM (`mappings/<kind>.toml` in the repository).
    BuiltIn(CrmKind),
}

impl std::fmt::Display for MappingSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MappingSource::File(path) => write!(f, "{}", path.display()),
            MappingSource::BuiltIn(kind) => write!(f, "the built-in {kind} mapping"),
        }
    }
}

/// The mapping to check: `file` if given, else `crm.mapping` from the
/// configuration, else the built-in mapping for `crm` (default `[crm] kind`).
pub fn resolve_mapping(
    config: &Config,
    crm: Option<CrmKind>,
    file: Option<&Path>,
) -> anyhow::Result<(MappingSource, Mapping)> {
    if let Some(path) = file.or(config.crm.mapping.as_deref()) {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the mapping {}", path.display()))?;
        let mapping = Mapping::from_toml(&text)
            .with_context(|| format!("the mapping {} is not valid", path.display()))?;
        return Ok((MappingSource::File(path.to_owned()), mapping));
    }
    let kind = crm
        .or(config.crm.kind)
        .context("which CRM? pass --crm dynamics|salesforce, --mapping FILE, or set [crm] kind")?;
    Ok((MappingSource::BuiltIn(kind), load_mapping(config, kind)?))
}

/// How a transform reads in the field table.
fn transform_label(t: &Transform) -> String {
    match t {
        Transform::Text(rules) => match rules.max_len {
            Some(n) => format!("string (max {n})"),
            None => "string".to_owned(),
        },
        Transform::Decimal { scale: Some(s) } => format!("decimal ({s} places)"),
        Transform::Decimal { scale: None } => "decimal".to_owned(),
        Transform::Date => "date".to_owned(),
        Transform::Boolean => "boolean".to_owned(),
        Transform::Table(t) => format!("table ({} rows)", t.entries().len()),
        Transform::Template(_) => "template".to_owned(),
        Transform::Constant(v) => format!("constant {v}"),
        Transform::CrmRecordId => "crm record id".to_owned(),
        Transform::Lookup { target, key, .. } => format!("lookup {target}.{key}"),
    }
}

fn or_dash(items: impl Iterator<Item = String>) -> String {
    let joined: Vec<String> = items.collect();
    if joined.is_empty() {
        "—".to_owned()
    } else {
        joined.join(", ")
    }
}

/// One record type: where it lives, its special columns, and a table of its fields.
pub fn entity_text(em: &EntityMapping) -> String {
    let special = |label: &str, column: &Option<String>| {
        column
            .as_deref()
            .map(|c| format!("; {label} {c}"))
            .unwrap_or_default()
    };
    let mut out = format!(
        "[{}] {} (primary key {}){}{}{}{}\n",
        em.entity,
        em.collection,
        em.primary_key,
        special("referral id", &em.referral_id_field),
        special("sync flag", &em.sync_flag_field),
        special("audit", &em.audit_field),
        special("marked name", &em.marked_name_field),
    );
    let mut table = Table::new();
    table.set_header([
        "field",
        "referral path",
        "crm column",
        "transform",
        "direction",
        "owner",
    ]);
    for f in &em.fields {
        table.add_row([
            f.name.clone(),
            or_dash(f.pc.iter().map(ToString::to_string)),
            or_dash(f.crm.iter().cloned()),
            transform_label(&f.transform),
            f.direction.to_string(),
            f.owner.to_string(),
        ]);
    }
    out.push_str(&table.to_string());
    out.push('\n');
    out
}

/// The whole mapping: where it came from and every record type's fields.
pub fn mapping_text(source: &MappingSource, mapping: &Mapping) -> String {
    let mut out = format!("{source}: valid\n");
    for em in mapping.entities() {
        out.push('\n');
        out.push_str(&entity_text(em));
    }
    out
}

/// Reads a referral's JSON as the Referrals API returns it.
pub fn read_referral_file(path: &Path) -> anyhow::Result<Referral> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the referral {}", path.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("{} is not a referral's JSON", path.display()))
}

/// The CRM record a referral becomes when refsync first syncs it.
#[derive(Debug, Clone, PartialEq)]
pub struct NewRecord {
    /// Lead before the referral is accepted, opportunity after.
    pub entity: CrmEntity,
    /// The record's collection (Dataverse entity set, Salesforce object).
    pub collection: String,
    /// The upsert key: the Referral Identifier column and the referral id, which
    /// travel in the URL rather than the body.
    pub upsert_key: Option<(String, String)>,
    /// The body sent.
    pub fields: Map<String, Value>,
    /// For an opportunity: the account matched (or created) by company name + postal code.
    pub account: Option<MatchOrCreate>,
    /// For an opportunity: the contact matched (or created) by e-mail.
    pub contact: Option<MatchOrCreate>,
}

/// What `referral` becomes under `mapping`, as the engine would create it.
pub fn new_record(mapping: &Mapping, referral: &Referral) -> anyhow::Result<NewRecord> {
    let entity = decide::target_entity(referral, None);
    let em = mapping.entity(&entity)?;
    let fields = decide::new_record_fields(em, referral)?;
    let upsert_key = em
        .referral_id_field
        .clone()
        .zip(referral.id.as_ref().map(ToString::to_string));
    let (account, contact) = if entity == CrmEntity::Opportunity {
        decide::customer_wanted(mapping, referral)?
    } else {
        (None, None)
    };
    Ok(NewRecord {
        entity,
        collection: em.collection.clone(),
        upsert_key,
        fields,
        account,
        contact,
    })
}

fn show_value(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn fields_table(fields: &Map<String, Value>) -> String {
    let mut table = Table::new();
    table.set_header(["crm column", "value"]);
    for (column, value) in fields {
        table.add_row([column.clone(), show_value(value)]);
    }
    table.to_string()
}

fn customer_text(out: &mut String, label: &str, wanted: Option<&MatchOrCreate>) {
    let Some(w) = wanted else {
        out.push_str(&format!(
            "\n{label}: none (the mapping or the referral lacks its identifying values)\n"
        ));
        return;
    };
    let on: Vec<String> = w
        .match_on
        .iter()
        .map(|(c, v)| format!("{c} = {}", show_value(v)))
        .collect();
    out.push_str(&format!(
        "\n{label}: matched on {}; created when none matches, with:\n{}\n",
        on.join(", "),
        fields_table(&w.create)
    ));
}

/// The new record for people.
pub fn new_record_text(record: &NewRecord) -> String {
    let why = match record.entity {
        CrmEntity::Opportunity => "accepted",
        _ => "not accepted yet",
    };
    let mut out = format!(
        "this referral ({why}) becomes a new {} ({})\n",
        record.entity, record.collection
    );
    if let Some((column, id)) = &record.upsert_key {
        out.push_str(&format!("upsert key: {column} = {id}\n"));
    }
    out.push_str(&fields_table(&record.fields));
    out.push('\n');
    if record.entity == CrmEntity::Opportunity {
        customer_text(&mut out, "account", record.account.as_ref());
        customer_text(&mut out, "contact", record.contact.as_ref());
    }
    out
}

/// `refsync mapping check`: the report, or an error naming the file and field.
pub fn check_command(config: &Config, args: &MappingCheckArgs) -> anyhow::Result<String> {
    let (source, mapping) = resolve_mapping(config, args.crm, args.mapping.as_deref())?;
    let mut out = mapping_text(&source, &mapping);
    if let Some(path) = &args.referral {
        let referral = read_referral_file(path)?;
        let record = new_record(&mapping, &referral)
            .with_context(|| format!("rendering {} through {source}", path.display()))?;
        out.push('\n');
        out.push_str(&new_record_text(&record));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn referral(status: &str, substatus: &str) -> Referral {
        serde_json::from_value(json!({
            "id": "5c1a7e0e-0000-4000-8000-000000000001",
            "name": "Contoso cloud migration",
            "status": status,
            "substatus": substatus,
            "details": {"dealValue": 50000, "currency": "USD", "notes": "Needs Azure"},
            "customerProfile": {
                "name": "Contoso Ltd",
                "address": {"postalCode": "98052", "country": "US", "city": "Redmond"},
                "team": [{"firstName": "Ada", "lastName": "Lovelace", "email": "ada@contoso.example"}]
            }
        }))
        .unwrap()
    }

    #[test]
    fn every_field_of_the_built_in_mappings_is_listed() {
        for mapping in [Mapping::dynamics().unwrap(), Mapping::salesforce().unwrap()] {
            let text = mapping_text(&MappingSource::File("m.toml".into()), &mapping);
            assert!(text.starts_with("m.toml: valid"), "{text}");
            for em in mapping.entities() {
                assert!(text.contains(&format!("[{}] {}", em.entity, em.collection)));
                for f in &em.fields {
                    assert!(text.contains(&f.name), "{} missing from\n{text}", f.name);
                }
            }
        }
    }

    #[test]
    fn a_new_referral_becomes_a_lead_keyed_by_its_id() {
        let mapping = Mapping::salesforce().unwrap();
        let record = new_record(&mapping, &referral("New", "Pending")).unwrap();
        assert_eq!(record.entity, CrmEntity::Lead);
        let (column, id) = record.upsert_key.clone().unwrap();
        assert_eq!(id, "5c1a7e0e-0000-4000-8000-000000000001");
        assert!(
            !record.fields.contains_key(&column),
            "the key is not in the body"
        );
        let text = new_record_text(&record);
        assert!(text.contains("becomes a new lead (Lead)"), "{text}");
        assert!(text.contains("Needs Azure"), "{text}");
        assert!(!text.contains("account:"), "{text}");
    }

    #[test]
    fn an_accepted_referral_becomes_an_opportunity_with_its_customer() {
        let mapping = Mapping::salesforce().unwrap();
        let record = new_record(&mapping, &referral("Active", "Accepted")).unwrap();
        assert_eq!(record.entity, CrmEntity::Opportunity);
        let account = record.account.as_ref().expect("an account to match");
        assert!(
            account
                .match_on
                .iter()
                .any(|(_, v)| v == &json!("Contoso Ltd")),
            "{account:?}"
        );
        let text = new_record_text(&record);
        assert!(text.contains("account: matched on"), "{text}");
        assert!(text.contains("98052"), "{text}");
    }

    #[test]
    fn without_a_crm_or_file_it_asks_which() {
        let err = resolve_mapping(&Config::default(), None, None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("--crm"), "{err}");
        let (source, _) =
            resolve_mapping(&Config::default(), Some(CrmKind::Dynamics), None).unwrap();
        assert_eq!(source.to_string(), "the built-in dynamics mapping");
    }
}
