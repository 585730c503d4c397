//! The `[crm]` section: which CRM refsync syncs with, the field mapping, and the
//! connection settings of each (`[crm.dynamics]`, `[crm.salesforce]`), which are
//! the connectors' own settings types so a new connector option is a config key
//! without any code here.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};
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
#[derive(Debug, Clone, Default, Serialize)]
pub struct CrmConfig {
    /// `dynamics` or `salesforce`; unset, `refsync serve` only receives and queues.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<CrmKind>,
    /// A field-mapping TOML file; unset, the built-in mapping for `kind`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mapping: Option<PathBuf>,
    /// `[crm.dynamics]`.
    pub dynamics: DataverseSettings,
    /// `[crm.salesforce]`.
    pub salesforce: SalesforceSettings,
    /// `crm.dynamics.client_secret_file`, read into `dynamics.client_secret`.
    #[serde(skip)]
    pub dynamics_secret_file: Option<PathBuf>,
    /// `crm.salesforce.client_secret_file`, read into `salesforce.client_secret`.
    #[serde(skip)]
    pub salesforce_secret_file: Option<PathBuf>,
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
}
