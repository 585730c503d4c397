//! What an emulated Dataverse environment looks like: its name and URL, the API
//! versions it answers, its service-protection limits, paging, the custom columns a
//! CRM admin added, and the choices the reference leaves open (crm.md §1.4, §1.12,
//! §1.13, partner-center.md §4.2).
//!
//! [`DataverseConfig::default`] is the demo environment `https://contoso.crm.dynamics.com`
//! with the co-sell connector's custom columns (`msft_*`) on lead and opportunity.
//! The type deserializes from TOML/JSON with every field optional, for example:
//!
//! ```toml
//! org_url = "https://fabrikam.crm4.dynamics.com"
//! opportunity_close = "actions_or_patch"   # crm.md §1.4: unconfirmed either way
//!
//! [limits]                 # crm.md §1.12 defaults: 6000 / 5m, 20m execution, 52 at once
//! requests_per_window = 100
//! window = "10s"
//! concurrent_requests = 4
//!
//! [cosell]                 # the connector's columns; their names are unconfirmed
//! sync = "new_syncwithpartnercenter"
//!
//! [[custom_columns]]       # added to the co-sell columns
//! table = "opportunity"
//! name = "new_partnertier"
//! label = "Partner Tier"
//! type = "choice"
//! options = [{ value = 100000000, label = "Gold" }, { value = 100000001, label = "Silver" }]
//! ```

pub use super::cosell::{COSELL_OPTION_VALUE_PREFIX, CosellColumns, HELP_LABELS, cosell_columns};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use uuid::Uuid;

/// The demo organization id.
pub const DEMO_ORGANIZATION_ID: Uuid = Uuid::from_u128(0x5e1c_0a0d_3f6b_4c2e_9d8a_71b2_c3d4_e5f6);
/// The demo root business unit id.
pub const DEMO_BUSINESS_UNIT_ID: Uuid = Uuid::from_u128(0x6f2d_1b1e_4a7c_4d3f_8e9b_82c3_d4e5_f607);

/// One emulated Dataverse environment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DataverseConfig {
    /// Environment name (`contoso` in `https://contoso.crm.dynamics.com`).
    pub org_name: String,
    /// The environment URL: the token audience (scope `<org_url>/.default`, crm.md §1.2).
    /// Tokens for the `.api.` host form (`https://contoso.api.crm.dynamics.com`) are
    /// accepted too, as the auth sample uses that resource (crm.md §1.1).
    pub org_url: String,
    /// Base URL written into `OData-EntityId`, `@odata.context` and `@odata.nextLink`.
    /// By default the request's `Host` over `http`, so links lead back to the emulator.
    pub public_base_url: Option<String>,
    /// API versions answered under `/api/data/<version>/` (crm.md §1.1: v9.0 code keeps working).
    pub api_versions: Vec<String>,
    /// Organization id (`WhoAmI`).
    pub organization_id: Uuid,
    /// Root business unit id (`WhoAmI`).
    pub business_unit_id: Uuid,
    /// Service-protection limits (crm.md §1.12), changeable at run time.
    pub limits: ServiceProtectionLimits,
    /// Page size without `Prefer: odata.maxpagesize` (crm.md §1.8: 5000).
    pub default_page_size: usize,
    /// Largest page size honoured; larger `odata.maxpagesize` values are lowered to it (5000).
    pub max_page_size: usize,
    /// `@odata.count` is capped here (crm.md §1.8: 5000).
    pub count_cap: usize,
    /// The co-sell connector's columns on lead and opportunity (partner-center.md §4.2),
    /// with the referral identifier as an alternate key; names configurable.
    pub cosell: CosellColumns,
    /// More columns a CRM admin added (none by default).
    pub custom_columns: Vec<CustomColumn>,
    /// More alternate keys (none by default).
    pub alternate_keys: Vec<AlternateKeyConfig>,
    /// Transaction currencies present at start; the first is the base currency.
    pub currencies: Vec<CurrencyConfig>,
    /// How an opportunity may be closed. crm.md §1.4 leaves open whether a plain
    /// statecode PATCH to Won/Lost is refused (**unconfirmed**); the default refuses it.
    pub opportunity_close: OpportunityClose,
    /// Refuse creates and updates that leave an ApplicationRequired column empty
    /// (`lead.lastname`, `lead.subject`, `opportunity.name`, `opportunity.customerid`,
    /// `account.name`, `contact.lastname`) as the emulator checklist asks (crm.md §4).
    /// Whether the live Web API enforces ApplicationRequired (rather than only forms)
    /// is **unconfirmed**; turn this off to accept such records.
    pub enforce_application_required: bool,
    /// `QualifyLead` copies custom columns present on both lead and the new opportunity
    /// (as a lead→opportunity column mapping an admin adds would). Whether the co-sell
    /// solution ships such mappings is **unconfirmed**.
    pub qualify_copies_custom_columns: bool,
    /// Tables with change tracking on (crm.md §1.9: whether lead and opportunity have
    /// it by default is **unconfirmed**; all four business tables by default here).
    pub change_tracking_tables: Vec<String>,
    /// How long a `$deltatoken` stays usable (crm.md §1.9: 7 days by default).
    #[serde(with = "humantime_serde")]
    pub change_token_lifetime: Duration,
    /// The person the control API edits records as (`modifiedby` on "user" edits).
    pub human_user: HumanUser,
}

impl Default for DataverseConfig {
    fn default() -> Self {
        Self {
            org_name: "contoso".to_owned(),
            org_url: "https://contoso.crm.dynamics.com".to_owned(),
            public_base_url: None,
            api_versions: vec!["v9.0".to_owned(), "v9.1".to_owned(), "v9.2".to_owned()],
            organization_id: DEMO_ORGANIZATION_ID,
            business_unit_id: DEMO_BUSINESS_UNIT_ID,
            limits: ServiceProtectionLimits::default(),
            default_page_size: 5000,
            max_page_size: 5000,
            count_cap: 5000,
            cosell: CosellColumns::default(),
            custom_columns: Vec::new(),
            alternate_keys: Vec::new(),
            currencies: CurrencyConfig::defaults(),
            opportunity_close: OpportunityClose::default(),
            enforce_application_required: true,
            qualify_copies_custom_columns: true,
            change_tracking_tables: ["lead", "opportunity", "account", "contact"]
                .map(str::to_owned)
                .to_vec(),
            change_token_lifetime: Duration::from_secs(7 * 24 * 3600),
            human_user: HumanUser::default(),
        }
    }
}

impl DataverseConfig {
    /// The demo environment with small service-protection limits (for tests and the demo).
    pub fn with_limits(mut self, limits: ServiceProtectionLimits) -> Self {
        self.limits = limits;
        self
    }

    /// The `.api.` form of the org URL (`https://contoso.api.crm.dynamics.com`), when it has one.
    pub fn api_host_url(&self) -> Option<String> {
        let (scheme, rest) = self.org_url.split_once("://")?;
        let (org, domain) = rest.split_once('.')?;
        domain
            .starts_with("crm")
            .then(|| format!("{scheme}://{org}.api.{domain}"))
    }
}

/// Service-protection limits, counted per user (crm.md §1.12).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServiceProtectionLimits {
    /// Requests per sliding window (6000).
    pub requests_per_window: u32,
    /// Combined execution time per sliding window (20 minutes).
    #[serde(with = "humantime_serde")]
    pub execution_time_per_window: Duration,
    /// The sliding window (300 s).
    #[serde(with = "humantime_serde")]
    pub window: Duration,
    /// Requests in progress at once (52).
    pub concurrent_requests: u32,
    /// How much the wait grows for each request sent while throttled (crm.md §1.12:
    /// "the Retry-After period grows"; by how much is not published). 5 s by default.
    #[serde(with = "humantime_serde")]
    pub retry_after_growth: Duration,
    /// Off: no service protection at all (the limits are still reported).
    pub enabled: bool,
}

impl Default for ServiceProtectionLimits {
    fn default() -> Self {
        Self {
            requests_per_window: 6000,
            execution_time_per_window: Duration::from_secs(20 * 60),
            window: Duration::from_secs(300),
            concurrent_requests: 52,
            retry_after_growth: Duration::from_secs(5),
            enabled: true,
        }
    }
}

impl ServiceProtectionLimits {
    /// Small limits for tests and the demo: `requests` per `window`, `concurrent` at once.
    pub fn small(requests: u32, window: Duration, concurrent: u32) -> Self {
        Self {
            requests_per_window: requests,
            window,
            concurrent_requests: concurrent,
            retry_after_growth: Duration::from_secs(1),
            ..Self::default()
        }
    }
}

/// How an opportunity can be moved to Won or Lost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpportunityClose {
    /// Only `WinOpportunity` / `LoseOpportunity`; a statecode PATCH to Won/Lost is a 400
    /// naming the action to use (the way Dataverse treats other closable tables).
    #[default]
    ActionsOnly,
    /// The actions, or a PATCH of statecode + statuscode (no opportunityclose is recorded).
    ActionsOrPatch,
}

/// A column added to a table, as a CRM admin would add it (crm.md §1.13).
// No `deny_unknown_fields` here: serde does not support it together with `flatten`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomColumn {
    /// Table logical name (`lead`, `opportunity`, `account`, `contact`).
    pub table: String,
    /// Column logical name: lowercase, with the publisher prefix (`msft_…`, `new_…`).
    pub name: String,
    /// Display name.
    pub label: String,
    /// Type and its limits.
    #[serde(flatten)]
    pub kind: CustomColumnKind,
}

/// The type of a custom column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CustomColumnKind {
    /// Single line of text (also URL, e-mail and phone formats).
    Text {
        /// Maximum length in characters.
        max_length: usize,
    },
    /// Multiple lines of text.
    Memo {
        /// Maximum length in characters.
        max_length: usize,
    },
    /// Yes/No.
    Boolean {
        /// Value on create when none is given.
        #[serde(default)]
        default: bool,
    },
    /// Choice (option set).
    Choice {
        /// The allowed values and their labels.
        options: Vec<ChoiceOption>,
    },
    /// Whole number.
    Integer {
        /// Smallest value.
        min: i64,
        /// Largest value.
        max: i64,
    },
    /// Date only.
    Date,
    /// Lookup to one table.
    Lookup {
        /// Target table logical name.
        target: String,
        /// Navigation property for `@odata.bind`: the SchemaName, case-sensitive (crm.md §1.13).
        navigation_property: String,
    },
}

/// One value of a choice column.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChoiceOption {
    /// The stored number.
    pub value: i32,
    /// Its label.
    pub label: String,
}

impl CustomColumn {
    /// A column of `kind` named `name` on `table`.
    pub fn new(table: &str, name: &str, label: &str, kind: CustomColumnKind) -> Self {
        Self {
            table: table.to_owned(),
            name: name.to_owned(),
            label: label.to_owned(),
            kind,
        }
    }
}

/// An alternate key (crm.md §1.6).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlternateKeyConfig {
    /// Table logical name.
    pub table: String,
    /// Key name (shown in duplicate-key errors).
    pub name: String,
    /// Key columns (1–16; text, whole number, decimal, date, lookup or choice).
    pub columns: Vec<String>,
}

/// A transaction currency present at start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CurrencyConfig {
    /// Record id (fixed, so ids are stable across runs).
    pub id: Uuid,
    /// ISO 4217 code.
    pub iso_code: String,
    /// Display name.
    pub name: String,
    /// Symbol.
    pub symbol: String,
    /// Units of this currency per unit of the base currency (illustrative values).
    pub exchange_rate: f64,
}

impl CurrencyConfig {
    fn new(id: u128, iso: &str, name: &str, symbol: &str, rate: f64) -> Self {
        Self {
            id: Uuid::from_u128(id),
            iso_code: iso.to_owned(),
            name: name.to_owned(),
            symbol: symbol.to_owned(),
            exchange_rate: rate,
        }
    }

    /// USD (the base; its id is the one in crm.md §1.4's example) and other common currencies.
    pub fn defaults() -> Vec<Self> {
        vec![
            Self::new(
                0x732e87e1_1d96_e711_80e4_00155db75426,
                "USD",
                "US Dollar",
                "$",
                1.0,
            ),
            Self::new(
                0x8a1c2b3d_1d96_e711_80e4_00155db75426,
                "EUR",
                "Euro",
                "€",
                0.92,
            ),
            Self::new(
                0x9b2d3c4e_1d96_e711_80e4_00155db75426,
                "GBP",
                "Pound Sterling",
                "£",
                0.79,
            ),
            Self::new(
                0xac3e4d5f_1d96_e711_80e4_00155db75426,
                "CAD",
                "Canadian Dollar",
                "CA$",
                1.36,
            ),
            Self::new(
                0xbd4f5e60_1d96_e711_80e4_00155db75426,
                "AUD",
                "Australian Dollar",
                "A$",
                1.52,
            ),
            Self::new(
                0xce506f71_1d96_e711_80e4_00155db75426,
                "JPY",
                "Yen",
                "¥",
                151.0,
            ),
            Self::new(
                0xdf617082_1d96_e711_80e4_00155db75426,
                "INR",
                "Indian Rupee",
                "₹",
                83.0,
            ),
            Self::new(
                0xe0728193_1d96_e711_80e4_00155db75426,
                "CHF",
                "Swiss Franc",
                "CHF",
                0.88,
            ),
            Self::new(
                0xf18392a4_1d96_e711_80e4_00155db75426,
                "BRL",
                "Brazilian Real",
                "R$",
                5.0,
            ),
        ]
    }
}

/// The person "user" edits through the control API are made as.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HumanUser {
    /// `systemuserid`.
    pub id: Uuid,
    /// Full name.
    pub full_name: String,
    /// E-mail (`internalemailaddress`).
    pub email: String,
}

impl Default for HumanUser {
    fn default() -> Self {
        Self {
            id: Uuid::from_u128(0x3e4f5a6b_7c8d_4e9f_a0b1_c2d3e4f5a6b7),
            full_name: "Sam Seller".to_owned(),
            email: "sam.seller@contoso.onmicrosoft.com".to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_example_reads() {
        let doc = include_str!("config.rs");
        let start = doc.find("//! ```toml").unwrap();
        let end = start + doc[start..].find("//! ```\n").unwrap();
        let example: String = doc[start..end]
            .lines()
            .skip(1)
            .map(|l| l.trim_start_matches("//!").trim_start_matches(' '))
            .collect::<Vec<_>>()
            .join("\n");
        let c: DataverseConfig = toml::from_str(&example).unwrap();
        assert_eq!(c.opportunity_close, OpportunityClose::ActionsOrPatch);
        assert_eq!(c.limits.window, Duration::from_secs(10));
        assert_eq!(
            c.limits.execution_time_per_window,
            Duration::from_secs(1200)
        );
        assert!(matches!(
            c.custom_columns[0].kind,
            CustomColumnKind::Choice { .. }
        ));
        let schema = crate::dataverse::schema::Schema::from_config(&c).unwrap();
        let lead = schema.by_logical_name("lead").unwrap();
        assert!(lead.column("new_syncwithpartnercenter").is_some());
        assert!(lead.column(cosell_columns::SYNC).is_none());
        assert!(lead.column(cosell_columns::REFERRAL_IDENTIFIER).is_some());
        let opp = schema.by_logical_name("opportunity").unwrap();
        assert!(opp.column("new_partnertier").is_some());
    }

    #[test]
    fn api_host_form_of_the_org_url() {
        let c = DataverseConfig::default();
        assert_eq!(
            c.api_host_url().as_deref(),
            Some("https://contoso.api.crm.dynamics.com")
        );
    }

    #[test]
    fn config_reads_from_toml_with_defaults_for_missing_fields() {
        let c: DataverseConfig = toml::from_str(
            r#"
            org_url = "https://fabrikam.crm4.dynamics.com"
            [limits]
            requests_per_window = 10
            window = "2s"
            [[custom_columns]]
            table = "account"
            name = "new_tier"
            label = "Tier"
            type = "integer"
            min = 0
            max = 5
            "#,
        )
        .unwrap();
        assert_eq!(c.limits.requests_per_window, 10);
        assert_eq!(c.limits.window, Duration::from_secs(2));
        assert_eq!(c.limits.concurrent_requests, 52);
        assert_eq!(c.custom_columns.len(), 1);
        assert_eq!(
            c.custom_columns[0].kind,
            CustomColumnKind::Integer { min: 0, max: 5 }
        );
        assert_eq!(c.default_page_size, 5000);
    }
}
