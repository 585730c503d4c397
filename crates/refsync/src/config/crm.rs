//! The `[crm]` section: which CRM refsync syncs with, the field mapping, and the
//! connection settings of each (`[crm.dynamics]`, `[crm.salesforce]`), which are
//! the connectors' own settings types so a new connector option is a config key
//! without any code here.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};
use std::path::PathBuf;

use refsync_crm::dataverse::DataverseSettings;
use refsync_crm::salesforce::SalesforceSettings;

/// The CRM refsync syncs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum CrmKind {
    /// Dynamics 365 Sales (the Dataverse Web API).
    Dynamics,
    /// Salesforce (the REST API).
    Salesforce,
}

impl std::fmt::Display for CrmKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CrmKind::Dynamics => "dynamics",
            CrmKind::Salesforce => "salesforce",
        })
    }
}

/// `[crm]`.
#[derive(Debug, Clone, Default)]
pub struct CrmConfig {
    /// `dynamics` or `salesforce`; unset, `refsync serve` only receives and queues.
    pub kind: Option<CrmKind>,
    /// A field-mapping TOML file; unset, the built-in mapping for `kind`.
    pub mapping: Option<PathBuf>,
    /// `[crm.dynamics]`.
    pub dynamics: DataverseSettings,
    /// `[crm.salesforce]`.
    pub salesforce: SalesforceSettings,
    /// `crm.dynamics.client_secret_file`, read into `dynamics.client_secret`.
    pub dynamics_secret_file: Option<PathBuf>,
    /// `crm.salesforce.client_secret_file`, read into `salesforce.client_secret`.
    pub salesforce_secret_file: Option<PathBuf>,
}

// By hand, the mirror of `Deserialize`: `client_secret_file` goes back inside its
// section, so `config check` shows it and a written config reads back the same.
impl Serialize for CrmConfig {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{Error as _, SerializeMap};
        let mut map = s.serialize_map(None)?;
        if let Some(kind) = &self.kind {
            map.serialize_entry("kind", kind)?;
        }
        if let Some(mapping) = &self.mapping {
            map.serialize_entry("mapping", mapping)?;
        }
        let dynamics =
            section_value(&self.dynamics, &self.dynamics_secret_file).map_err(S::Error::custom)?;
        map.serialize_entry("dynamics", &dynamics)?;
        let salesforce = section_value(&self.salesforce, &self.salesforce_secret_file)
            .map_err(S::Error::custom)?;
        map.serialize_entry("salesforce", &salesforce)?;
        map.end()
    }
}

/// A connector's settings as a table, with our `client_secret_file` added back.
fn section_value(
    settings: &impl Serialize,
    secret_file: &Option<PathBuf>,
) -> Result<Value, serde_json::Error> {
    let mut value = serde_json::to_value(settings)?;
    if let (Some(path), Value::Object(table)) = (secret_file, &mut value) {
        table.insert("client_secret_file".to_owned(), serde_json::to_value(path)?);
    }
    Ok(value)
}

// By hand: the connectors' settings deny unknown keys (a typo must be an error)
// but know nothing of `client_secret_file`, which is ours; take it out first.
impl<'de> Deserialize<'de> for CrmConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut table = Map::<String, Value>::deserialize(d)?;
        let kind = take(&mut table, "kind")?;
        let mapping = take(&mut table, "mapping")?;
        let (dynamics, dynamics_secret_file) = settings(&mut table, "dynamics")?;
        let (salesforce, salesforce_secret_file) = settings(&mut table, "salesforce")?;
        if let Some(unknown) = table.keys().next() {
            return Err(D::Error::custom(format!(
                "unknown key crm.{unknown} (expected kind, mapping, dynamics, salesforce)"
            )));
        }
        Ok(Self {
            kind,
            mapping,
            dynamics,
            salesforce,
            dynamics_secret_file,
            salesforce_secret_file,
        })
    }
}

fn take<T: serde::de::DeserializeOwned, E: serde::de::Error>(
    table: &mut Map<String, Value>,
    key: &str,
) -> Result<Option<T>, E> {
    match table.remove(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => serde_json::from_value(v)
            .map(Some)
            .map_err(|e| E::custom(format!("crm.{key}: {e}"))),
    }
}

fn settings<T: serde::de::DeserializeOwned + Default, E: serde::de::Error>(
    table: &mut Map<String, Value>,
    section: &str,
) -> Result<(T, Option<PathBuf>), E> {
    let Some(value) = table.remove(section) else {
        return Ok((T::default(), None));
    };
    let Value::Object(mut inner) = value else {
        return Err(E::custom(format!("crm.{section} must be a table")));
    };
    let secret_file = take(&mut inner, "client_secret_file")
        .map_err(|e: E| E::custom(format!("crm.{section}.{e}")))?;
    let parsed = serde_json::from_value(Value::Object(inner))
        .map_err(|e| E::custom(format!("crm.{section}: {e}")))?;
    Ok((parsed, secret_file))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connector_settings_parse_and_typos_are_errors() {
        let c: CrmConfig = toml::from_str(
            r#"
            kind = "salesforce"
            [salesforce]
            login_url = "https://test.salesforce.com"
            client_id = "key"
            client_secret_file = "/run/secrets/sf"
            "#,
        )
        .unwrap();
        assert_eq!(c.kind, Some(CrmKind::Salesforce));
        assert_eq!(c.salesforce.login_url, "https://test.salesforce.com");
        assert_eq!(
            c.salesforce_secret_file,
            Some(PathBuf::from("/run/secrets/sf"))
        );
        let typo = toml::from_str::<CrmConfig>("[dynamics]\nurll = \"x\"\n").unwrap_err();
        assert!(typo.to_string().contains("urll"), "{typo}");
        let typo = toml::from_str::<CrmConfig>("knd = \"dynamics\"\n").unwrap_err();
        assert!(typo.to_string().contains("crm.knd"), "{typo}");
    }

    #[test]
    fn what_is_written_reads_back_the_same_without_the_secret() {
        let mut c = CrmConfig {
            kind: Some(CrmKind::Dynamics),
            dynamics_secret_file: Some(PathBuf::from("/run/secrets/dv")),
            ..CrmConfig::default()
        };
        c.dynamics.url = "https://contoso.crm.dynamics.com".into();
        c.dynamics.client_secret = Some(secrecy::SecretString::from("s3cret-value"));
        let text = toml::to_string(&c).unwrap();
        assert!(!text.contains("s3cret-value"), "{text}");
        assert!(text.contains("client_secret_file"), "{text}");
        let back: CrmConfig = toml::from_str(&text).unwrap();
        assert_eq!(back.kind, Some(CrmKind::Dynamics));
        assert_eq!(back.dynamics.url, c.dynamics.url);
        assert_eq!(back.dynamics_secret_file, c.dynamics_secret_file);
        assert_eq!(back.salesforce_secret_file, None);
    }
}
