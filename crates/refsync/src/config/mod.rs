//! `refsync.toml`: every setting, its default, and where secrets may come from.
//!
//! Layers, later wins: compiled-in defaults → the TOML file → `REFSYNC_*` environment
//! variables (`REFSYNC_STORE__URL=…`; `__` separates a section from its key). Secrets
//! (client secrets, passwords, the store encryption key) are accepted only from the
//! environment or from a `*_file` path, never inline in the TOML file, so a config
//! file can be committed and shared without leaking anything.

use figment::{
    Figment,
    providers::{Env, Format, Serialized, Toml},
};
use refsync_partner_center::callback::{
    CertificateUrlPrefix, IntermediateUrlPrefix, PrefixError, TrustAnchorSource, VerifierConfig,
};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use thiserror::Error;

/// The commented template written by `refsync config init`.
pub mod crm;

pub use crm::{CrmConfig, CrmKind};

/// The commented configuration template `refsync config init` writes.
pub const CONFIG_TEMPLATE: &str = include_str!("../../refsync.example.toml");

/// Why configuration could not be loaded.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// A value was missing or of the wrong type; figment names the key and its source.
    #[error("invalid configuration: {0}")]
    Invalid(#[from] Box<figment::Error>),
    /// A secret was written inline in the TOML file.
    #[error(
        "{key} must not be written in the config file; set {env} or {key}_file instead (secrets come from the environment or a file)"
    )]
    InlineSecret {
        /// The offending key, e.g. `partner_center.client_secret`.
        key: String,
        /// The environment variable that may carry it instead.
        env: String,
    },
    /// A `*_file` secret could not be read.
    #[error("cannot read secret file {path}: {source}")]
    SecretFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// A secret value: redacted in `Debug` and `Display`, exposed only where it is sent.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct Secret(SecretString);

impl Secret {
    /// Wraps a value.
    pub fn new(s: impl Into<String>) -> Self {
        Self(SecretString::from(s.into()))
    }

    /// The value, for the one place that sends it.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("[redacted]")
    }
}

/// The whole configuration.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The HTTP listener (webhook, health, metrics, admin).
    pub server: ServerConfig,
    /// Where durable state lives.
    pub store: StoreConfig,
    /// The Partner Center webhook endpoint and how callbacks are authenticated.
    #[serde(default)]
    pub webhook: WebhookConfig,
    /// Partner Center APIs and sign-in.
    pub partner_center: PartnerCenterConfig,
    /// Sync behaviour.
    pub sync: SyncConfig,
    /// The periodic reconciliation pass.
    pub reconciler: ReconcilerConfig,
    /// `[poller]`.
    pub poller: PollerConfig,
    /// `[crm]`.
    #[serde(default)]
    pub crm: CrmConfig,
}

/// `[server]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
        }
    }
}

/// `[store]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// `sqlite://path` (default, embedded) or `postgres://user@host/db` (several instances).
    pub url: String,
    /// Key that encrypts stored refresh tokens (32 bytes, base64). Environment or file only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encryption_key: Option<Secret>,
    /// File holding the encryption key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encryption_key_file: Option<PathBuf>,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            url: "sqlite://refsync.db".into(),
            encryption_key: None,
            encryption_key_file: None,
        }
    }
}

/// `[webhook]`: the endpoint path plus the callback verifier's settings (certificate
/// URL allow-list, trust anchors, organization, DNS name, body limit, cache).
#[derive(Debug, Clone, Serialize)]
pub struct WebhookConfig {
    /// Path of the webhook endpoint on the server's listener.
    pub path: String,
    /// How callbacks are verified.
    #[serde(flatten)]
    pub verifier: VerifierConfig,
}

// By hand rather than `#[serde(flatten)]`: flattening would silently accept a
// misspelt key (serde drops `deny_unknown_fields` under flatten), and a typo in a
// security setting must be an error.
impl<'de> Deserialize<'de> for WebhookConfig {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let mut table = serde_json::Map::<String, serde_json::Value>::deserialize(d)?;
        let path = match table.remove("path") {
            None => WebhookConfig::default().path,
            Some(serde_json::Value::String(p)) if p.starts_with('/') => p,
            Some(other) => {
                return Err(D::Error::custom(format!(
                    "webhook.path must be a string starting with '/', not {other}"
                )));
            }
        };
        let verifier = VerifierConfig::deserialize(serde_json::Value::Object(table))
            .map_err(|e| D::Error::custom(format!("webhook: {e}")))?;
        Ok(Self { path, verifier })
    }
}

impl WebhookConfig {
    /// Trusts exactly the Partner Center emulator at `base_url`: its root (the PEM
    /// in `root_pem_file`), its certificate location, and the intermediate its leaf
    /// points at — as a deployment trusts Microsoft's. For the demo, benchmarks and
    /// tests; `http://127.0.0.1:PORT/` is accepted only because it is written here.
    pub fn trust_emulator(
        &mut self,
        base_url: &str,
        root_pem_file: PathBuf,
    ) -> Result<(), PrefixError> {
        let location = format!("{}/cert/", base_url.trim_end_matches('/'));
        self.verifier.trust_anchors = TrustAnchorSource::PemFile(root_pem_file);
        self.verifier.certificate_url_prefixes = vec![CertificateUrlPrefix::parse(&location)?];
        self.verifier.intermediate_url_prefixes = vec![IntermediateUrlPrefix::parse(&location)?];
        Ok(())
    }
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            path: "/webhooks/partner-center".into(),
            verifier: VerifierConfig::default(),
        }
    }
}

/// How refsync signs in to the Referrals API, which accepts only App+User tokens.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignIn {
    /// A refresh token obtained once by `refsync login` (device code) and kept, encrypted, in the store.
    #[default]
    RefreshToken,
    /// Legacy: username and password (ROPC), as the 2019 connector did. Ends with Microsoft's MFA enforcement.
    Password,
}

/// `[partner_center]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PartnerCenterConfig {
    /// Referrals API base (the "Pricing and Referrals" host).
    pub api_url: String,
    /// Webhook registration API base (the usual Partner Center host).
    pub registration_api_url: String,
    /// Entra ID authority.
    pub authority_url: String,
    /// Entra tenant id or domain.
    pub tenant: String,
    /// The app registration's client id.
    pub client_id: String,
    /// The app's client secret. Environment or file only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<Secret>,
    /// File holding the client secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret_file: Option<PathBuf>,
    /// How to get App+User tokens for the Referrals API.
    pub sign_in: SignIn,
    /// Legacy password sign-in: the user.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Legacy password sign-in: the password. Environment or file only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<Secret>,
    /// File holding the legacy password.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_file: Option<PathBuf>,
    /// Timeout for one API call.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// Our Partner Center organization id. Referrals owned by any other organization
    /// are the other half of an engagement; unset, only Microsoft's (`msft`) are.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub organization_id: Option<String>,
}

impl Default for PartnerCenterConfig {
    fn default() -> Self {
        Self {
            api_url: "https://api.partner.microsoft.com".into(),
            registration_api_url: "https://api.partnercenter.microsoft.com".into(),
            authority_url: "https://login.microsoftonline.com".into(),
            tenant: "organizations".into(),
            client_id: String::new(),
            client_secret: None,
            client_secret_file: None,
            sign_in: SignIn::RefreshToken,
            username: None,
            password: None,
            password_file: None,
            request_timeout: Duration::from_secs(30),
            organization_id: None,
        }
    }
}

/// `[sync]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SyncConfig {
    /// Keys worked at once by this instance.
    pub workers: usize,
    /// How long a claimed key stays ours before another instance may take it.
    #[serde(with = "humantime_serde")]
    pub lease: Duration,
    /// Attempts before a key is dead-lettered.
    pub max_attempts: u32,
    /// First retry delay; doubles per attempt, with jitter.
    #[serde(with = "humantime_serde")]
    pub retry_initial: Duration,
    /// Longest retry delay.
    #[serde(with = "humantime_serde")]
    pub retry_max: Duration,
    /// Append ✔ / ✖ to the CRM record name after each sync, as the Microsoft connector can.
    pub checkmark_suffix: bool,
    /// Append a short line to the record's Audit column on every change.
    pub audit_column: bool,
    /// How often to look for due keys when nothing wakes the workers (retries,
    /// keys enqueued by another instance sharing PostgreSQL).
    #[serde(with = "humantime_serde")]
    pub poll_interval: Duration,
    /// On shutdown, how long in-flight syncs may finish before their keys are released.
    #[serde(with = "humantime_serde")]
    pub shutdown_grace: Duration,
}

impl Default for SyncConfig {
    fn default() -> Self {
        Self {
            workers: 8,
            lease: Duration::from_secs(120),
            max_attempts: 10,
            retry_initial: Duration::from_secs(2),
            retry_max: Duration::from_secs(600),
            checkmark_suffix: false,
            audit_column: true,
            poll_interval: Duration::from_secs(1),
            shutdown_grace: Duration::from_secs(20),
        }
    }
}

/// `[reconciler]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReconcilerConfig {
    /// How often to list referrals changed since the watermark.
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    /// How far behind the watermark each pass starts, to cover clock skew and late writes.
    #[serde(with = "humantime_serde")]
    pub overlap: Duration,
}

impl Default for ReconcilerConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(15 * 60),
            overlap: Duration::from_secs(10 * 60),
        }
    }
}

/// `[poller]`: how CRM-side edits are noticed.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PollerConfig {
    /// How often to ask the CRM for records changed since the watermark.
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    /// How far behind the watermark each poll starts.
    #[serde(with = "humantime_serde")]
    pub overlap: Duration,
}

impl Default for PollerConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(60),
            overlap: Duration::from_secs(60),
        }
    }
}

/// The environment provider: only `REFSYNC_*` names with a `__` are configuration.
///
/// Every configuration key sits in a section, so a name without `__` cannot be one;
/// skipping those keeps unrelated variables (`REFSYNC_LOG`, a test's
/// `REFSYNC_TEST_PYTHON`) from failing the load, while a typo inside a section
/// (`REFSYNC_STORE__URLL`) is still an error that names the key.
fn config_env() -> Env {
    Env::prefixed("REFSYNC_")
        .filter(|key| key.as_str().contains("__"))
        .split("__")
}

/// Keys that hold secrets, as `section.key`; each also accepts `section.key_file`.
const SECRET_KEYS: &[(&str, &str)] = &[
    ("store", "encryption_key"),
    ("partner_center", "client_secret"),
    ("partner_center", "password"),
    ("crm.dynamics", "client_secret"),
    ("crm.salesforce", "client_secret"),
];

impl Config {
    /// Loads defaults, then `path` (if given), then `REFSYNC_<SECTION>__<KEY>` variables.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        Self::load_from(path, config_env())
    }

    /// [`Config::load`] with an explicit environment provider (tests use a fixed one).
    pub fn load_from(path: Option<&Path>, env: Env) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = path {
            let file = Figment::from(Toml::file_exact(path));
            refuse_inline_secrets(&file)?;
            figment = figment.merge(file);
        }
        let mut config: Config = figment.merge(env).extract().map_err(Box::new)?;
        config.read_secret_files()?;
        Ok(config)
    }

    fn read_secret_files(&mut self) -> Result<(), ConfigError> {
        read_secret_file(
            &mut self.store.encryption_key,
            &self.store.encryption_key_file,
        )?;
        read_secret_file(
            &mut self.partner_center.client_secret,
            &self.partner_center.client_secret_file,
        )?;
        read_secret_file(
            &mut self.partner_center.password,
            &self.partner_center.password_file,
        )?;
        read_connector_secret_file(
            &mut self.crm.dynamics.client_secret,
            &self.crm.dynamics_secret_file,
        )?;
        read_connector_secret_file(
            &mut self.crm.salesforce.client_secret,
            &self.crm.salesforce_secret_file,
        )?;
        Ok(())
    }
}

fn refuse_inline_secrets(file: &Figment) -> Result<(), ConfigError> {
    for (section, key) in SECRET_KEYS {
        if file.find_value(&format!("{section}.{key}")).is_ok() {
            return Err(ConfigError::InlineSecret {
                key: format!("{section}.{key}"),
                env: format!(
                    "REFSYNC_{}__{}",
                    section.to_ascii_uppercase().replace('.', "__"),
                    key.to_ascii_uppercase()
                ),
            });
        }
    }
    Ok(())
}

fn read_secret_file(slot: &mut Option<Secret>, file: &Option<PathBuf>) -> Result<(), ConfigError> {
    if slot.is_none()
        && let Some(path) = file
    {
        *slot = Some(Secret::new(secret_file_text(path)?));
    }
    Ok(())
}

/// [`read_secret_file`] for the connectors' own `SecretString` settings.
fn read_connector_secret_file(
    slot: &mut Option<SecretString>,
    file: &Option<PathBuf>,
) -> Result<(), ConfigError> {
    if slot.is_none()
        && let Some(path) = file
    {
        *slot = Some(SecretString::from(secret_file_text(path)?));
    }
    Ok(())
}

fn secret_file_text(path: &Path) -> Result<String, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::SecretFile {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(text.trim_end_matches(['\n', '\r']).to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> PathBuf {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn template_parses_to_the_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(&dir, "refsync.toml", CONFIG_TEMPLATE);
        let loaded = Config::load_from(Some(&p), Env::prefixed("REFSYNC_TEST_NONE_")).unwrap();
        let defaults = Config::default();
        assert_eq!(
            serde_json::to_value(&loaded).unwrap(),
            serde_json::to_value(&defaults).unwrap()
        );
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail closure returns its own large error
    fn environment_overrides_the_file() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("refsync.toml", "[store]\nurl = \"sqlite://a.db\"\n")?;
            jail.set_env("REFSYNC_STORE__URL", "postgres://u@h/db");
            jail.set_env("REFSYNC_SYNC__WORKERS", "3");
            jail.set_env("REFSYNC_TEST_PYTHON", "/usr/bin/python3");
            let c = Config::load(Some(Path::new("refsync.toml"))).map_err(|e| e.to_string())?;
            assert_eq!(c.store.url, "postgres://u@h/db");
            assert_eq!(c.sync.workers, 3);
            Ok(())
        });
    }

    #[test]
    #[allow(clippy::result_large_err)]
    fn a_typo_inside_a_section_in_the_environment_is_an_error() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("REFSYNC_STORE__URLL", "sqlite://x.db");
            let err = Config::load(None).expect_err("typo must fail");
            assert!(err.to_string().contains("urll"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn inline_secrets_are_refused_without_echoing_them() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            &dir,
            "refsync.toml",
            "[partner_center]\nclient_secret = \"hunter2-very-secret\"\n",
        );
        let err = Config::load_from(Some(&p), Env::prefixed("REFSYNC_TEST_NONE_")).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("REFSYNC_PARTNER_CENTER__CLIENT_SECRET"),
            "{msg}"
        );
        assert!(!msg.contains("hunter2"), "{msg}");
    }

    #[test]
    fn secrets_come_from_files_and_never_print() {
        let dir = tempfile::tempdir().unwrap();
        let secret = write(&dir, "secret", "s3cr3t-value\n");
        let p = write(
            &dir,
            "refsync.toml",
            &format!("[partner_center]\nclient_secret_file = {:?}\n", secret),
        );
        let c = Config::load_from(Some(&p), Env::prefixed("REFSYNC_TEST_NONE_")).unwrap();
        let s = c.partner_center.client_secret.as_ref().unwrap();
        assert_eq!(s.expose(), "s3cr3t-value");
        assert!(!format!("{c:?}").contains("s3cr3t"));
        assert!(!serde_json::to_string(&c).unwrap().contains("s3cr3t"));
    }

    #[test]
    fn webhook_keys_sit_directly_under_the_webhook_table() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            &dir,
            "refsync.toml",
            "[webhook]\npath = \"/hooks/pc\"\ncertificate_url_prefixes = [\"http://127.0.0.1:7070/cert/\"]\ntrust_anchors = \"/tmp/ca.pem\"\norganization = \"Contoso\"\nmax_body_bytes = 2048\n",
        );
        let c = Config::load_from(Some(&p), Env::prefixed("REFSYNC_TEST_NONE_")).unwrap();
        assert_eq!(c.webhook.path, "/hooks/pc");
        assert_eq!(c.webhook.verifier.organization, "Contoso");
        assert_eq!(c.webhook.verifier.max_body_bytes, 2048);
        let bad = write(
            &dir,
            "bad.toml",
            "[webhook]\ncertificate_url_prefixes = [\"http://evil.example/cert/\"]\n",
        );
        let err = Config::load_from(Some(&bad), Env::prefixed("REFSYNC_TEST_NONE_")).unwrap_err();
        assert!(
            err.to_string().contains("evil.example") || err.to_string().contains("loopback"),
            "{err}"
        );
        let typo = write(&dir, "typo.toml", "[webhook]\norganisation = \"x\"\n");
        assert!(Config::load_from(Some(&typo), Env::prefixed("REFSYNC_TEST_NONE_")).is_err());
    }

    #[test]
    fn unknown_keys_are_errors_that_name_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(&dir, "refsync.toml", "[store]\nulr = \"x\"\n");
        let err = Config::load_from(Some(&p), Env::prefixed("REFSYNC_TEST_NONE_")).unwrap_err();
        assert!(err.to_string().contains("ulr"), "{err}");
    }
}
