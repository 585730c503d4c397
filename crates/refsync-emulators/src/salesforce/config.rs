//! What an emulated org looks like: its users, connected apps, API limits,
//! picklist tables and the custom fields an admin created.
//!
//! [`SalesforceConfig::default`] is a ready-to-use demo org (every default is
//! listed on the field that holds it). It deserializes from TOML/JSON with every
//! key optional, so a config file only names what it changes.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A secret read from configuration: usable, but never shown by `Debug`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Redacted(String);

impl Redacted {
    /// Wraps a secret.
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    /// The secret itself (compare it, never log it).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Redacted(***)")
    }
}

/// The emulated org.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SalesforceConfig {
    /// The org id (`00D…`, 15 or 18 characters). Default `00D5g0000000001` (18-character form `00D5g0000000001AAA`).
    pub org_id: String,
    /// The URL returned as `instance_url` and used in `id` URLs. Default: none,
    /// meaning `http://<Host header>`, which is right for a server on an ephemeral port.
    pub instance_url: Option<String>,
    /// Accepted `aud` values of JWT-bearer assertions besides the instance URL.
    /// Default `https://login.salesforce.com`, `https://test.salesforce.com` (crm.md §2.1).
    pub login_urls: Vec<String>,
    /// Lowest API version served under `/services/data/vNN.0/`. Default 50 (Winter '21).
    pub min_api_version: u16,
    /// Highest API version served. Default 66 (Spring '26).
    pub max_api_version: u16,
    /// Seconds of inactivity after which an access token stops working
    /// (`INVALID_SESSION_ID`). Default 7200 (the org default "2 hours").
    pub session_timeout_secs: u64,
    /// API request allocation.
    pub limits: LimitsConfig,
    /// SOQL paging.
    pub query: QueryConfig,
    /// What an upsert that updates answers. Default `ok200` (200 with `created:false`);
    /// older API versions answered 204 (crm.md §2.3, unconfirmed which versions).
    pub upsert_update_status: UpsertUpdateStatus,
    /// Most subrequests in one `/composite` call. Default 25 (crm.md §2.5, unconfirmed).
    pub composite_max_subrequests: usize,
    /// Most records in one sObject Collections call. Default 200 (crm.md §2.5).
    pub collection_max_records: usize,
    /// Multi-currency: when set, every object gets a restricted `CurrencyIsoCode` picklist.
    /// Default: off.
    pub multi_currency: Option<MultiCurrency>,
    /// The `LeadStatus` table and how a missing `Status` is treated.
    pub lead: LeadConfig,
    /// The `OpportunityStage` table. Default: the standard stages (crm.md §2.8).
    pub opportunity_stages: Vec<StageConfig>,
    /// The co-sell connector's stage names (crm.md §3.4), added as open stages when absent.
    pub connector_stages: ConnectorStages,
    /// Custom fields created by an admin. Default: the co-sell connector's fields on
    /// Lead and Opportunity (partner-center.md §4.2), see [`default_custom_fields`].
    pub custom_fields: Vec<CustomFieldConfig>,
    /// Users of the org. Default: `refsync-integration@example.com` (the integration
    /// "Run As" user) and `sam.seller@example.com` (a human seller, password `demo-password`).
    pub users: Vec<UserConfig>,
    /// Username that control-API edits are made as unless the request names one.
    /// Default `sam.seller@example.com`.
    pub default_human_user: String,
    /// Connected apps / External Client Apps. Default: one app `refsync` with consumer
    /// key `refsync-demo-consumer-key`, secret `refsync-demo-consumer-secret`, client
    /// credentials running as the integration user, and no JWT certificate.
    pub connected_apps: Vec<ConnectedAppConfig>,
    /// Days a deleted record stays in the recycle bin (`queryAll`, `/deleted/`). Default 15.
    pub recycle_bin_days: u32,
    /// How far back `/updated/` and `/deleted/` may start. Default 30 days (crm.md §2.9).
    pub replication_max_days: u32,
}

impl Default for SalesforceConfig {
    fn default() -> Self {
        Self {
            org_id: "00D5g0000000001".to_owned(),
            instance_url: None,
            login_urls: vec![
                "https://login.salesforce.com".to_owned(),
                "https://test.salesforce.com".to_owned(),
            ],
            min_api_version: 50,
            max_api_version: 66,
            session_timeout_secs: 7200,
            limits: LimitsConfig::default(),
            query: QueryConfig::default(),
            upsert_update_status: UpsertUpdateStatus::Ok200,
            composite_max_subrequests: 25,
            collection_max_records: 200,
            multi_currency: None,
            lead: LeadConfig::default(),
            opportunity_stages: default_stages(),
            connector_stages: ConnectorStages::default(),
            custom_fields: default_custom_fields(),
            users: vec![
                UserConfig {
                    username: INTEGRATION_USER.to_owned(),
                    first_name: Some("Integration".to_owned()),
                    last_name: "User".to_owned(),
                    email: "refsync-integration@example.com".to_owned(),
                    password: None,
                },
                UserConfig {
                    username: SELLER_USER.to_owned(),
                    first_name: Some("Sam".to_owned()),
                    last_name: "Seller".to_owned(),
                    email: "sam.seller@example.com".to_owned(),
                    password: Some(Redacted::new("demo-password")),
                },
            ],
            default_human_user: SELLER_USER.to_owned(),
            connected_apps: vec![ConnectedAppConfig {
                name: "refsync".to_owned(),
                consumer_key: DEMO_CONSUMER_KEY.to_owned(),
                consumer_secret: Some(Redacted::new(DEMO_CONSUMER_SECRET)),
                client_credentials_user: Some(INTEGRATION_USER.to_owned()),
                jwt_certificate_pem: None,
                jwt_preauthorized_users: Vec::new(),
                scope: "api".to_owned(),
            }],
            recycle_bin_days: 15,
            replication_max_days: 30,
        }
    }
}

/// Username of the default integration user.
pub const INTEGRATION_USER: &str = "refsync-integration@example.com";
/// Username of the default human seller.
pub const SELLER_USER: &str = "sam.seller@example.com";
/// Consumer key of the default connected app.
pub const DEMO_CONSUMER_KEY: &str = "refsync-demo-consumer-key";
/// Consumer secret of the default connected app.
pub const DEMO_CONSUMER_SECRET: &str = "refsync-demo-consumer-secret";

/// The API request allocation (crm.md §2.7).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Calls allowed per rolling window. Default 100,000 (the base allocation).
    pub daily_api_requests: u64,
    /// Length of the rolling window in seconds. Default 86,400 (24 hours).
    pub window_secs: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            daily_api_requests: 100_000,
            window_secs: 86_400,
        }
    }
}

/// SOQL paging (crm.md §2.4).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QueryConfig {
    /// Page size without a `Sforce-Query-Options: batchSize` header. Default 2000;
    /// tests lower it to page through small data sets.
    pub default_batch_size: usize,
    /// Smallest batchSize honoured (smaller requests are raised to it). Default 200.
    pub min_batch_size: usize,
    /// Largest batchSize honoured. Default 2000.
    pub max_batch_size: usize,
    /// Seconds an unused query locator stays valid. Default 900 (15 minutes).
    pub cursor_idle_secs: u64,
    /// Open query locators kept per org; the oldest is dropped beyond this. Default 50.
    pub max_open_cursors: usize,
}

impl Default for QueryConfig {
    fn default() -> Self {
        Self {
            default_batch_size: 2000,
            min_batch_size: 200,
            max_batch_size: 2000,
            cursor_idle_secs: 900,
            max_open_cursors: 50,
        }
    }
}

/// The answer to an upsert that updated an existing record (crm.md §2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UpsertUpdateStatus {
    /// 200 with `{id, success, errors, created:false}` (current API versions).
    Ok200,
    /// 204 with no body (the behaviour documented for early versions).
    NoContent204,
}

/// Multi-currency settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MultiCurrency {
    /// The corporate currency, the default `CurrencyIsoCode`. Default `USD`.
    pub corporate: String,
    /// Active currencies (ISO 4217). Default USD, EUR, GBP, JPY, AUD, CAD.
    pub active: Vec<String>,
}

impl Default for MultiCurrency {
    fn default() -> Self {
        Self {
            corporate: "USD".to_owned(),
            active: ["USD", "EUR", "GBP", "JPY", "AUD", "CAD"]
                .map(str::to_owned)
                .to_vec(),
        }
    }
}

/// Lead settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LeadConfig {
    /// The `LeadStatus` values. Default: "Open - Not Contacted" (default), "Working -
    /// Contacted", "Closed - Converted" (converted), "Closed - Not Converted".
    pub statuses: Vec<LeadStatusConfig>,
    /// Whether a create without `Status` takes the default status instead of failing with
    /// `REQUIRED_FIELD_MISSING`. crm.md §2.8 lists Status as required and §4 asks for the
    /// error; whether a real org applies the picklist default on API inserts is
    /// unconfirmed, hence this switch. Default false.
    pub default_status_on_create: bool,
}

impl Default for LeadConfig {
    fn default() -> Self {
        let status = |name: &str, converted: bool, default: bool| LeadStatusConfig {
            api_name: name.to_owned(),
            is_converted: converted,
            is_default: default,
        };
        Self {
            statuses: vec![
                status("Open - Not Contacted", false, true),
                status("Working - Contacted", false, false),
                status("Closed - Converted", true, false),
                status("Closed - Not Converted", false, false),
            ],
            default_status_on_create: false,
        }
    }
}

/// One `LeadStatus` row.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeadStatusConfig {
    /// The picklist value.
    pub api_name: String,
    /// Whether converting a lead uses this status.
    #[serde(default)]
    pub is_converted: bool,
    /// Whether this is the default status.
    #[serde(default)]
    pub is_default: bool,
}

/// One `OpportunityStage` row.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageConfig {
    /// The picklist value (`StageName`).
    pub api_name: String,
    /// Whether the stage closes the opportunity.
    #[serde(default)]
    pub is_closed: bool,
    /// Whether the stage wins it.
    #[serde(default)]
    pub is_won: bool,
    /// `Probability` given to opportunities entering the stage (0–100).
    pub default_probability: u8,
    /// Forecast category API name: Pipeline, BestCase, Commit, Omitted or Closed.
    pub forecast_category: String,
}

fn default_stages() -> Vec<StageConfig> {
    let stage =
        |name: &str, probability: u8, category: &str, closed: bool, won: bool| StageConfig {
            api_name: name.to_owned(),
            is_closed: closed,
            is_won: won,
            default_probability: probability,
            forecast_category: category.to_owned(),
        };
    vec![
        stage("Prospecting", 10, "Pipeline", false, false),
        stage("Qualification", 10, "Pipeline", false, false),
        stage("Needs Analysis", 20, "Pipeline", false, false),
        stage("Value Proposition", 50, "Pipeline", false, false),
        stage("Id. Decision Makers", 60, "Pipeline", false, false),
        stage("Perception Analysis", 70, "Pipeline", false, false),
        stage("Proposal/Price Quote", 75, "Pipeline", false, false),
        stage("Negotiation/Review", 90, "Pipeline", false, false),
        stage("Closed Won", 100, "Closed", true, true),
        stage("Closed Lost", 0, "Omitted", true, false),
    ]
}

/// The connector's "On-hold stage name" and "Active stage name" environment variables
/// (crm.md §3.4). Their real values are whatever the admin picked, so both are
/// configurable; a name not already in the stage table is added as an open stage.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConnectorStages {
    /// Stage for Microsoft-shared referrals not yet accepted. Default "On Hold" (10 %).
    pub on_hold: Option<String>,
    /// Stage whose selection accepts the referral. Default "Qualification".
    pub active: Option<String>,
}

impl Default for ConnectorStages {
    fn default() -> Self {
        Self {
            on_hold: Some("On Hold".to_owned()),
            active: Some("Qualification".to_owned()),
        }
    }
}

/// The kinds of custom field an admin can create (the subset the emulator knows).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CustomFieldKind {
    /// Text(length), up to 255.
    Text,
    /// Text Area (255).
    TextArea,
    /// Long Text Area(length), up to 131,072.
    LongTextArea,
    /// URL (255).
    Url,
    /// Email (80).
    Email,
    /// Phone (40).
    Phone,
    /// Checkbox.
    Checkbox,
    /// Picklist with `values`.
    Picklist,
    /// Number(precision, scale).
    Number,
    /// Currency(precision, scale).
    Currency,
    /// Percent(precision, scale).
    Percent,
    /// Date.
    Date,
    /// Date/Time.
    DateTime,
}

/// A custom field as an admin would create it in Setup.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomFieldConfig {
    /// Object API name (`Lead`, `Opportunity`, `Account`, `Contact`).
    pub object: String,
    /// Field API name, ending in `__c`.
    pub api_name: String,
    /// Field label (used in error messages).
    pub label: String,
    /// Field type.
    #[serde(rename = "type")]
    pub kind: CustomFieldKind,
    /// Length for text kinds (defaults: Text 255, Long Text Area 32,768).
    #[serde(default)]
    pub length: Option<u32>,
    /// Total digits for numeric kinds (default 18).
    #[serde(default)]
    pub precision: Option<u32>,
    /// Decimal places for numeric kinds (default 2; 0 for Percent).
    #[serde(default)]
    pub scale: Option<u32>,
    /// Picklist values.
    #[serde(default)]
    pub values: Vec<String>,
    /// Whether a picklist accepts only its values (Setup's default for new picklists).
    #[serde(default = "yes")]
    pub restricted: bool,
    /// "External ID": usable for upsert.
    #[serde(default)]
    pub external_id: bool,
    /// "Unique": no two live records share a value.
    #[serde(default)]
    pub unique: bool,
    /// Whether uniqueness and external-ID matching are case-sensitive.
    #[serde(default)]
    pub case_sensitive: bool,
    /// "Required": must have a value on every save.
    #[serde(default)]
    pub required: bool,
    /// Checkbox default (false when absent).
    #[serde(default)]
    pub default_checked: bool,
}

fn yes() -> bool {
    true
}

impl CustomFieldConfig {
    fn new(object: &str, api_name: &str, label: &str, kind: CustomFieldKind) -> Self {
        Self {
            object: object.to_owned(),
            api_name: api_name.to_owned(),
            label: label.to_owned(),
            kind,
            length: None,
            precision: None,
            scale: None,
            values: Vec::new(),
            restricted: true,
            external_id: false,
            unique: false,
            case_sensitive: false,
            required: false,
            default_checked: false,
        }
    }
}

/// The six "How can Microsoft help?" picklist values (partner-center.md §4.2).
pub const HOW_CAN_MICROSOFT_HELP_VALUES: [&str; 6] = [
    "Workload specific value proposition",
    "Customer technical architecture",
    "Proof of concept or demo",
    "Quotes or licensing",
    "Post sales customer success",
    "General or other",
];

/// The co-sell connector's fields on Lead and Opportunity, as the 2020 connector docs
/// told admins to create them (partner-center.md §4.2). The docs print some API names
/// with typos (`sync-with-partner-center-c`, `Referral_Link__c_`); those are not valid
/// Salesforce API names, so they are normalised to `Sync_with_Partner_Center__c` and
/// `Referral_Link__c`. The managed package's real names are unpublished: configure yours.
pub fn default_custom_fields() -> Vec<CustomFieldConfig> {
    use CustomFieldKind as K;
    let mut fields = Vec::new();
    for object in ["Lead", "Opportunity"] {
        let mut referral_id =
            CustomFieldConfig::new(object, "Referral_Identifier__c", "Referral", K::Text);
        referral_id.length = Some(100);
        referral_id.external_id = true;
        referral_id.unique = true;
        fields.push(referral_id);
        fields.push(CustomFieldConfig::new(
            object,
            "Sync_with_Partner_Center__c",
            "Sync with Partner Center",
            K::Checkbox,
        ));
        fields.push(CustomFieldConfig::new(
            object,
            "Referral_Link__c",
            "Referral Link",
            K::Url,
        ));
        let mut audit = CustomFieldConfig::new(object, "Audit__c", "Audit", K::LongTextArea);
        audit.length = Some(100_000);
        fields.push(audit);
        let mut help = CustomFieldConfig::new(
            object,
            "How_can_Microsoft_help__c",
            "How can Microsoft help?",
            K::Picklist,
        );
        help.values = HOW_CAN_MICROSOFT_HELP_VALUES.map(str::to_owned).to_vec();
        fields.push(help);
    }
    fields
}

/// A user of the org.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    /// Login name (email-shaped, unique across Salesforce).
    pub username: String,
    /// First name.
    #[serde(default)]
    pub first_name: Option<String>,
    /// Last name.
    pub last_name: String,
    /// Email address.
    pub email: String,
    /// Password for the username-password flow (none: that flow is refused for the user).
    #[serde(default)]
    pub password: Option<Redacted>,
}

/// A connected app (External Client App) allowed to obtain tokens.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectedAppConfig {
    /// Display name.
    pub name: String,
    /// Consumer key (`client_id`, the JWT `iss`).
    pub consumer_key: String,
    /// Consumer secret (`client_secret`); none means the app cannot use secret-based flows.
    #[serde(default)]
    pub consumer_secret: Option<Redacted>,
    /// "Run As" username for the client-credentials flow; none disables that flow.
    #[serde(default)]
    pub client_credentials_user: Option<String>,
    /// Certificate (PEM, `CERTIFICATE` or RSA `PUBLIC KEY`) uploaded under "Use digital
    /// signatures"; none disables the JWT-bearer flow.
    #[serde(default)]
    pub jwt_certificate_pem: Option<String>,
    /// Usernames pre-authorized for the JWT-bearer flow (admin-approved profile or
    /// permission set). Empty: every user.
    #[serde(default)]
    pub jwt_preauthorized_users: Vec<String>,
    /// OAuth scopes reported in token responses.
    #[serde(default = "api_scope")]
    pub scope: String,
}

fn api_scope() -> String {
    "api".to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_do_not_appear_in_debug_output() {
        let config = SalesforceConfig::default();
        let shown = format!("{config:?}");
        assert!(!shown.contains(DEMO_CONSUMER_SECRET));
        assert!(!shown.contains("demo-password"));
    }

    #[test]
    fn partial_documents_keep_the_other_defaults() {
        let config: SalesforceConfig = serde_json::from_str(
            r#"{"limits":{"daily_api_requests":5},"query":{"default_batch_size":3}}"#,
        )
        .unwrap();
        assert_eq!(config.limits.daily_api_requests, 5);
        assert_eq!(config.limits.window_secs, 86_400);
        assert_eq!(config.query.default_batch_size, 3);
        assert_eq!(config.query.min_batch_size, 200);
        assert_eq!(config.users.len(), 2);
    }
}
