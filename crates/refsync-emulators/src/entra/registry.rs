//! The tenant's directory as the emulator knows it: app registrations, users,
//! the resources tokens may be issued for, and the knobs of the token service.
//!
//! [`EntraConfig::default`] is the demo tenant (documented on the type); tests and
//! `refsync emulate` build their own.

use secrecy::{ExposeSecret, SecretString};
use std::time::Duration;
use uuid::Uuid;

/// The demo tenant id (the organization id of the Partner Center sample, §1.5).
pub const DEMO_TENANT_ID: Uuid = Uuid::from_u128(0x7d23e5ca_19dc_4eaa_aac8_5e6b559f0d1d);
/// The demo tenant's domain.
pub const DEMO_TENANT_DOMAIN: &str = "contoso.onmicrosoft.com";
/// Client id of the demo app registration ("refsync").
pub const DEMO_CLIENT_ID: Uuid = Uuid::from_u128(0x4a1f5c2e_6b3d_4c8e_9f0a_1b2c3d4e5f60);
/// Client secret of the demo app registration.
pub const DEMO_CLIENT_SECRET: &str = "refsync-demo-secret";
/// The demo Referral Admin's user name.
pub const DEMO_ADMIN_USER: &str = "referral.admin@contoso.onmicrosoft.com";
/// The demo Referral User's user name.
pub const DEMO_REFERRAL_USER: &str = "referral.user@contoso.onmicrosoft.com";
/// The password of both demo users.
pub const DEMO_USER_PASSWORD: &str = "Demo-Passw0rd!";

/// An app registration (a client of the token endpoint).
#[derive(Clone)]
pub struct AppRegistration {
    /// Application (client) id.
    pub client_id: Uuid,
    /// Client secret; `None` for a public client only.
    pub secret: Option<SecretString>,
    /// Display name (`app_displayname` in tokens).
    pub display_name: String,
    /// Object id of the app's service principal (`oid` in app-only tokens).
    pub object_id: Uuid,
    /// "Allow public client flows": device code and ROPC without a secret.
    pub public_client: bool,
    /// Application roles granted to the app (`roles` in app-only tokens).
    pub app_roles: Vec<String>,
}

impl AppRegistration {
    /// A confidential client that also allows public client flows, with no app roles.
    pub fn new(client_id: Uuid, secret: &str, display_name: &str) -> Self {
        Self {
            client_id,
            secret: Some(SecretString::from(secret.to_owned())),
            display_name: display_name.to_owned(),
            object_id: Uuid::new_v4(),
            public_client: true,
            app_roles: Vec::new(),
        }
    }

    pub(crate) fn secret_matches(&self, candidate: &str) -> bool {
        self.secret.as_ref().is_some_and(|s| {
            aws_lc_rs::constant_time::verify_slices_are_equal(
                s.expose_secret().as_bytes(),
                candidate.as_bytes(),
            )
            .is_ok()
        })
    }
}

impl std::fmt::Debug for AppRegistration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppRegistration")
            .field("client_id", &self.client_id)
            .field("secret", &self.secret.as_ref().map(|_| "[redacted]"))
            .field("display_name", &self.display_name)
            .field("public_client", &self.public_client)
            .field("app_roles", &self.app_roles)
            .finish()
    }
}

/// A user of the tenant.
#[derive(Clone)]
pub struct UserAccount {
    /// User principal name, e.g. `referral.admin@contoso.onmicrosoft.com`.
    pub username: String,
    /// Password for ROPC and the device-login page.
    pub password: SecretString,
    /// Display name (`name` in tokens).
    pub display_name: String,
    /// Object id (`oid` in user tokens).
    pub object_id: Uuid,
    /// Roles the emulated services check, e.g. `Referral Admin` or `Referral User`.
    pub roles: Vec<String>,
}

impl UserAccount {
    /// A user with a fresh object id.
    pub fn new(username: &str, password: &str, display_name: &str, roles: &[&str]) -> Self {
        Self {
            username: username.to_owned(),
            password: SecretString::from(password.to_owned()),
            display_name: display_name.to_owned(),
            object_id: Uuid::new_v4(),
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
        }
    }

    pub(crate) fn password_matches(&self, candidate: &str) -> bool {
        aws_lc_rs::constant_time::verify_slices_are_equal(
            self.password.expose_secret().as_bytes(),
            candidate.as_bytes(),
        )
        .is_ok()
    }
}

impl std::fmt::Debug for UserAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserAccount")
            .field("username", &self.username)
            .field("password", &"[redacted]")
            .field("display_name", &self.display_name)
            .field("roles", &self.roles)
            .finish()
    }
}

/// Configuration of one emulated Entra tenant.
///
/// The default is the demo tenant:
/// - tenant [`DEMO_TENANT_ID`], domain [`DEMO_TENANT_DOMAIN`] (also reachable as `common` and `organizations`);
/// - app "refsync", client id [`DEMO_CLIENT_ID`], secret [`DEMO_CLIENT_SECRET`], public client flows allowed;
/// - users [`DEMO_ADMIN_USER`] (`Referral Admin`) and [`DEMO_REFERRAL_USER`] (`Referral User`),
///   both with password [`DEMO_USER_PASSWORD`];
/// - resources: both Partner Center hosts, any `*.dynamics.com` environment, Microsoft Graph;
/// - access tokens live 3599 s, refresh tokens 90 days of inactivity, device codes 900 s
///   with a 5 s polling interval; used refresh tokens are invalidated.
#[derive(Debug, Clone)]
pub struct EntraConfig {
    /// The tenant id (`tid`).
    pub tenant_id: Uuid,
    /// Domain names accepted in place of the tenant id in the URL path.
    pub tenant_domains: Vec<String>,
    /// Access token lifetime (`expires_in`); changeable at run time.
    pub token_lifetime: Duration,
    /// A refresh token unused for this long expires (AADSTS700082).
    pub refresh_token_lifetime: Duration,
    /// Whether redeeming a refresh token invalidates it at once. Real Entra rotates
    /// refresh tokens on every use but does not promise to invalidate the old one
    /// immediately; on (the default) is the strict reading that catches clients that
    /// keep using a stale token. Off: old tokens stay valid until they expire.
    pub invalidate_used_refresh_tokens: bool,
    /// How long a device code may be redeemed (`expires_in`).
    pub device_code_lifetime: Duration,
    /// Minimum polling interval for device codes (`interval`); faster polls get `slow_down`.
    pub device_code_interval: Duration,
    /// Clock skew tolerated when validating access tokens (0: tokens expire exactly at `exp`).
    pub validation_leeway: Duration,
    /// Resources tokens may be issued for: exact URIs (`https://api.partner.microsoft.com`),
    /// host wildcards (`https://*.dynamics.com`) or `*` for anything.
    pub resources: Vec<String>,
    /// Base URL the device-login page is advertised under; by default taken from the
    /// request's `Host` header (`http://{host}/devicelogin`).
    pub public_base_url: Option<String>,
    /// App registrations.
    pub apps: Vec<AppRegistration>,
    /// Users.
    pub users: Vec<UserAccount>,
}

impl Default for EntraConfig {
    fn default() -> Self {
        let mut app = AppRegistration::new(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, "refsync");
        app.object_id = Uuid::from_u128(0x9b3c1d2e_0f4a_4b5c_8d6e_7f8091a2b3c4);
        let mut admin = UserAccount::new(
            DEMO_ADMIN_USER,
            DEMO_USER_PASSWORD,
            "Riley Admin",
            &["Referral Admin"],
        );
        admin.object_id = Uuid::from_u128(0x1c2d3e4f_5a6b_4c7d_8e9f_0a1b2c3d4e5f);
        let mut user = UserAccount::new(
            DEMO_REFERRAL_USER,
            DEMO_USER_PASSWORD,
            "Sam Seller",
            &["Referral User"],
        );
        user.object_id = Uuid::from_u128(0x2d3e4f5a_6b7c_4d8e_9fa0_1b2c3d4e5f60);
        Self {
            tenant_id: DEMO_TENANT_ID,
            tenant_domains: vec![DEMO_TENANT_DOMAIN.to_owned()],
            token_lifetime: Duration::from_secs(3599),
            refresh_token_lifetime: Duration::from_secs(90 * 24 * 3600),
            invalidate_used_refresh_tokens: true,
            device_code_lifetime: Duration::from_secs(900),
            device_code_interval: Duration::from_secs(5),
            validation_leeway: Duration::ZERO,
            resources: vec![
                "https://api.partner.microsoft.com".to_owned(),
                "https://api.partnercenter.microsoft.com".to_owned(),
                "https://*.dynamics.com".to_owned(),
                "https://graph.microsoft.com".to_owned(),
            ],
            public_base_url: None,
            apps: vec![app],
            users: vec![admin, user],
        }
    }
}

impl EntraConfig {
    /// True when tokens may be issued for `resource` (compared without a trailing `/`).
    pub fn accepts_resource(&self, resource: &str) -> bool {
        let resource = resource.trim_end_matches('/').to_ascii_lowercase();
        self.resources.iter().any(|pattern| {
            let pattern = pattern.trim_end_matches('/').to_ascii_lowercase();
            if pattern == "*" || pattern == resource {
                return true;
            }
            match pattern.split_once("://*.") {
                Some((scheme, suffix)) => resource
                    .strip_prefix(scheme)
                    .and_then(|r| r.strip_prefix("://"))
                    .is_some_and(|host| {
                        host.ends_with(&format!(".{suffix}")) && !host.contains('/')
                    }),
                None => false,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_patterns() {
        let c = EntraConfig::default();
        assert!(c.accepts_resource("https://api.partner.microsoft.com"));
        assert!(c.accepts_resource("https://api.partner.microsoft.com/"));
        assert!(c.accepts_resource("https://contoso.crm.dynamics.com"));
        assert!(c.accepts_resource("https://contoso.crm4.dynamics.com"));
        assert!(!c.accepts_resource("https://dynamics.com.evil.example"));
        assert!(!c.accepts_resource("http://contoso.crm.dynamics.com"));
        assert!(!c.accepts_resource("https://contoso.crm.dynamics.com/x"));
        assert!(!c.accepts_resource("https://example.com"));
    }

    #[test]
    fn debug_output_hides_secrets() {
        let c = EntraConfig::default();
        let text = format!("{c:?}");
        assert!(!text.contains(DEMO_CLIENT_SECRET));
        assert!(!text.contains(DEMO_USER_PASSWORD));
        assert!(text.contains("[redacted]"));
    }
}
