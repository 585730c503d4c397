//! The Partner Center emulator's settings, with documented defaults.
//!
//! Facts the reference notes mark **unconfirmed** (retry intervals, delivery
//! timeout, how the certificate file is encoded, case sensitivity of `$filter`,
//! how long an `MS-RequestId` is remembered) are settings here rather than guesses
//! baked into the code.

use crate::cosell_data::PartnerProfile;
use crate::entra::EntraConfig;
use std::time::Duration;

/// The documented `ResourceUri` of referral events (partner-center.md §2.3):
/// the webhook docs' host and path, not the Referrals API's.
pub const DEFAULT_RESOURCE_URI_TEMPLATE: &str =
    "https://api.partnercenter.microsoft.com/engagements/v1/referrals/{id}";
/// The audience Referrals API tokens must carry (§1.2).
pub const REFERRALS_AUDIENCE: &str = "https://api.partner.microsoft.com";
/// The audience webhook registration tokens must carry (§2.1).
pub const REGISTRATION_AUDIENCE: &str = "https://api.partnercenter.microsoft.com";
/// The DNS name in the documented certificate URL (§2.5).
pub const DISPATCH_DNS_NAME: &str = "pcnotifications-dispatch.microsoft.com";
/// The organization the documented validation checks for (§2.5).
pub const DISPATCH_ORGANIZATION: &str = "Microsoft Corporation";

/// How the file at the certificate URL is encoded. Microsoft's file is a `.cer`;
/// whether it holds the leaf alone (DER) or a PEM bundle is unconfirmed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CertificateFileFormat {
    /// The leaf alone, DER encoded (`application/pkix-cert`); the intermediate is
    /// reachable through the leaf's AIA caIssuers URL.
    #[default]
    LeafDer,
    /// Leaf then intermediate, PEM encoded.
    PemBundle,
}

/// Webhook delivery: attempts, pauses between them and the per-attempt timeout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryConfig {
    /// Attempts before an event is parked in the offline queue: 10, as documented (§2.4).
    pub max_attempts: u32,
    /// Pause after each failed attempt; the last entry repeats. The real intervals are
    /// unconfirmed; the default grows 1 s, 2 s, 5 s, 10 s, 30 s, 1 min, 2 min, 5 min, 10 min.
    pub retry_intervals: Vec<Duration>,
    /// How long one attempt may take before it counts as failed (unconfirmed; default 10 s).
    pub timeout: Duration,
    /// Deliveries in flight at once.
    pub max_concurrent: usize,
    /// Attempts kept in the delivery log (oldest dropped first).
    pub log_capacity: usize,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        Self {
            max_attempts: 10,
            retry_intervals: [1, 2, 5, 10, 30, 60, 120, 300, 600]
                .into_iter()
                .map(Duration::from_secs)
                .collect(),
            timeout: Duration::from_secs(10),
            max_concurrent: 32,
            log_capacity: 10_000,
        }
    }
}

impl DeliveryConfig {
    /// Short pauses (10 ms) and a 2 s timeout, for tests.
    pub fn fast() -> Self {
        Self {
            retry_intervals: vec![Duration::from_millis(10)],
            timeout: Duration::from_secs(2),
            ..Self::default()
        }
    }

    /// The pause after failed attempt number `attempt` (1-based).
    pub fn pause_after(&self, attempt: u32) -> Duration {
        let index = usize::try_from(attempt.saturating_sub(1)).unwrap_or(usize::MAX);
        self.retry_intervals
            .get(index)
            .or(self.retry_intervals.last())
            .copied()
            .unwrap_or(Duration::from_secs(1))
    }
}

/// The signing certificate chain generated at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateConfig {
    /// Subject organization of the leaf (and the intermediate): `Microsoft Corporation`.
    pub organization: String,
    /// CN and DNS SAN of the leaf, and the certificate file's name:
    /// `pcnotifications-dispatch.microsoft.com`.
    pub dns_name: String,
    /// What the certificate URL serves.
    pub file_format: CertificateFileFormat,
}

impl Default for CertificateConfig {
    fn default() -> Self {
        Self {
            organization: DISPATCH_ORGANIZATION.to_owned(),
            dns_name: DISPATCH_DNS_NAME.to_owned(),
            file_format: CertificateFileFormat::default(),
        }
    }
}

/// Settings of one emulated Partner Center.
///
/// The default is the demo partner: Contoso (organization id = the demo Entra
/// tenant id), pages of 100, the documented audiences and event `ResourceUri`,
/// 10 delivery attempts, validation events throttled to 2 a minute, and a leaf
/// certificate for `pcnotifications-dispatch.microsoft.com` issued to
/// `O=Microsoft Corporation`, served as DER.
#[derive(Debug, Clone)]
pub struct PartnerCenterConfig {
    /// Our partner organization (id, name, sellers' e-mail domain, co-sell solutions).
    pub partner: PartnerProfile,
    /// The Entra tenant to create when no authority is supplied.
    pub entra: EntraConfig,
    /// Largest page of the list operation. 100 is the 2019 docs' maximum (§1.4); the
    /// current docs state none (unconfirmed).
    pub page_size: usize,
    /// Audience of Referrals API tokens.
    pub referrals_audience: String,
    /// Audience of webhook registration API tokens.
    pub registration_audience: String,
    /// Whether the Referrals API checks the caller's role (§1.2): Referral Admin (or the
    /// older Global Admin) may do everything, a Referral User may only read referrals
    /// whose `team` includes them; anyone else gets 403.
    pub enforce_referral_roles: bool,
    /// `ResourceUri` of referral events; `{id}` is replaced by the referral id and
    /// `{base}` by the emulator's base URL (without a trailing `/`).
    pub resource_uri_template: String,
    /// Base URL the emulator advertises in links, `@odata.nextLink` and the
    /// certificate URL; by default the address it listens on.
    pub public_base_url: Option<String>,
    /// Whether `$filter` compares strings ignoring case (unconfirmed; default off).
    pub filter_case_insensitive: bool,
    /// How long a write's `MS-RequestId` is remembered for idempotent retries
    /// (unconfirmed; default 10 minutes).
    pub request_id_window: Duration,
    /// Validation events allowed per minute: 2, as documented (§2.1).
    pub validation_events_per_minute: usize,
    /// Webhook delivery.
    pub delivery: DeliveryConfig,
    /// The signing certificate.
    pub certificate: CertificateConfig,
    /// Seed of the co-sell data generator behind "create referrals as Microsoft".
    pub seed: u64,
}

impl Default for PartnerCenterConfig {
    fn default() -> Self {
        Self {
            partner: PartnerProfile::default(),
            entra: EntraConfig::default(),
            page_size: 100,
            referrals_audience: REFERRALS_AUDIENCE.to_owned(),
            registration_audience: REGISTRATION_AUDIENCE.to_owned(),
            enforce_referral_roles: true,
            resource_uri_template: DEFAULT_RESOURCE_URI_TEMPLATE.to_owned(),
            public_base_url: None,
            filter_case_insensitive: false,
            request_id_window: Duration::from_secs(600),
            validation_events_per_minute: 2,
            delivery: DeliveryConfig::default(),
            certificate: CertificateConfig::default(),
            seed: 42,
        }
    }
}

impl PartnerCenterConfig {
    /// The defaults with fast delivery retries ([`DeliveryConfig::fast`]), for tests.
    pub fn for_tests() -> Self {
        Self {
            delivery: DeliveryConfig::fast(),
            ..Self::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_retry_interval_repeats() {
        let d = DeliveryConfig {
            retry_intervals: vec![Duration::from_secs(1), Duration::from_secs(5)],
            ..DeliveryConfig::default()
        };
        assert_eq!(d.pause_after(1), Duration::from_secs(1));
        assert_eq!(d.pause_after(2), Duration::from_secs(5));
        assert_eq!(d.pause_after(9), Duration::from_secs(5));
        assert_eq!(DeliveryConfig::default().max_attempts, 10);
    }
}
