//! Realistic, deterministic co-sell data: customers, contacts and the referrals
//! Microsoft sends a partner, for the Partner Center emulator and the demo.
//!
//! Everything comes from one seed (rand 0.10's `StdRng`; names, companies and
//! streets from the `fake` crate, driven by the same generator), so a seed and a
//! `now` always give the same referrals. Referrals are produced the way Microsoft
//! sends them (partner-center.md §1.5): incoming, `New`/`Pending`, invited by
//! `msft`, with a realistic mix of co-sell opportunities (`Shared`/`SalesQualified`,
//! help requested) and qualified leads (`Independent`, `MarketingQualified` or
//! `SalesQualified`), plus marketplace leads (`Independent`/`Direct`) when enabled.
//! Ids, eTags and timestamps are left to the Partner Center emulator.

mod catalog;
mod places;

use catalog::{CUSTOMER_NOTES, HELP_CODES, INDUSTRIES, PRODUCTS, SELLER_NOTES, SERVICES, SIZES};
use chrono::{DateTime, Duration, Utc};
use fake::Fake;
use fake::faker::address::raw::{BuildingNumber, StreetName};
use fake::faker::company::raw::{CompanyName, CompanySuffix};
use fake::faker::job::raw::Title;
use fake::faker::name::raw::{FirstName, LastName};
use fake::locales::{DE_DE, EN, FR_FR, PT_BR};
use places::{COUNTRIES, Country, NameLocale, StreetStyle};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use refsync_core::referral::{
    Address, AssistanceRequestCode, Consent, ContactPreference, CustomerProfile, CustomerSize,
    InviteContext, InvitedBy, Member, Referral, ReferralDetails, ReferralDirection,
    ReferralQualification, ReferralRequirements, ReferralTarget, ReferralType, SolutionTag,
    SolutionType, Tag, TargetType, TrackingInfo,
};
use refsync_core::status::{ReferralStatus, ReferralSubstatus};
use rust_decimal::Decimal;
use serde_json::json;

/// The partner receiving the referrals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartnerProfile {
    /// Partner Center organization id (a GUID).
    pub organization_id: String,
    /// Organization name.
    pub organization_name: String,
    /// E-mail domain of the partner's sellers.
    pub email_domain: String,
    /// The partner's co-sell-ready solutions: (`SOL-…` id, name).
    pub solutions: Vec<(String, String)>,
}

impl Default for PartnerProfile {
    /// Contoso, the demo partner (same organization id as the demo Entra tenant).
    fn default() -> Self {
        Self {
            organization_id: crate::entra::DEMO_TENANT_ID.to_string(),
            organization_name: "Contoso Company".to_owned(),
            email_domain: "contoso.com".to_owned(),
            solutions: vec![
                (
                    "SOL-34104-EBB".to_owned(),
                    "Contoso Cloud Migration Factory".to_owned(),
                ),
                (
                    "SOL-6115380-IPC".to_owned(),
                    "Contoso Dynamics 365 Accelerator".to_owned(),
                ),
                (
                    "SOL-2208731-MWX".to_owned(),
                    "Contoso Modern Workplace".to_owned(),
                ),
            ],
        }
    }
}

/// Relative frequencies of the referral categories Microsoft sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReferralMix {
    /// Co-sell opportunities (`Shared`, `SalesQualified`, help requested).
    pub co_sell: u32,
    /// Qualified leads (`Independent`, `MarketingQualified`/`SalesQualified`).
    pub qualified_leads: u32,
    /// Marketplace leads (`Independent`, `Direct`); the Referrals API docs say these are
    /// not returned by get/list, so the default is none.
    pub marketplace_leads: u32,
}

impl Default for ReferralMix {
    fn default() -> Self {
        Self {
            co_sell: 55,
            qualified_leads: 45,
            marketplace_leads: 0,
        }
    }
}

/// Generator settings.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CosellConfig {
    /// The seed; same seed, same data.
    pub seed: u64,
    /// Who receives the referrals.
    pub partner: PartnerProfile,
    /// The category mix.
    pub mix: ReferralMix,
}

/// A generated customer organisation.
#[derive(Debug, Clone, PartialEq)]
pub struct Customer {
    /// Company name.
    pub name: String,
    /// Postal address (postal code, state and country belong together).
    pub address: Address,
    /// Company size.
    pub size: CustomerSize,
    /// Customer contacts.
    pub contacts: Vec<Member>,
    /// The currency deals with this customer are usually in.
    pub currency: String,
    /// The company's e-mail domain.
    pub email_domain: String,
}

/// Bridges rand 0.10's generator to the rand 0.9 traits the `fake` crate expects,
/// so one seeded stream drives everything.
struct FakeRng<'a>(&'a mut StdRng);

impl fake::rand::RngCore for FakeRng<'_> {
    fn next_u32(&mut self) -> u32 {
        rand::Rng::next_u32(self.0)
    }
    fn next_u64(&mut self) -> u64 {
        rand::Rng::next_u64(self.0)
    }
    fn fill_bytes(&mut self, dst: &mut [u8]) {
        rand::Rng::fill_bytes(self.0, dst);
    }
}

macro_rules! localized {
    ($faker:ident, $locale:expr, $rng:expr) => {{
        let mut r = FakeRng($rng);
        match $locale {
            NameLocale::En => $faker(EN).fake_with_rng::<String, _>(&mut r),
            NameLocale::De => $faker(DE_DE).fake_with_rng::<String, _>(&mut r),
            NameLocale::Fr => $faker(FR_FR).fake_with_rng::<String, _>(&mut r),
            NameLocale::PtBr => $faker(PT_BR).fake_with_rng::<String, _>(&mut r),
        }
    }};
}

/// Deterministic generator of co-sell customers and referrals.
#[derive(Debug)]
pub struct CosellGenerator {
    rng: StdRng,
    config: CosellConfig,
    partner_team: Vec<Member>,
}

impl CosellGenerator {
    /// A generator for `config`; the partner's sales team is drawn first.
    pub fn new(mut config: CosellConfig) -> Self {
        if config.partner.solutions.is_empty() {
            // A partner needs a co-sell-ready solution to receive co-sell referrals at all.
            config.partner.solutions = PartnerProfile::default().solutions;
        }
        let mut rng = StdRng::seed_from_u64(config.seed);
        let partner_team = (0..4)
            .map(|_| {
                person(
                    &mut rng,
                    NameLocale::En,
                    &config.partner.email_domain,
                    "+1 425 555 01##",
                    "en-US",
                )
            })
            .collect();
        Self {
            rng,
            config,
            partner_team,
        }
    }

    /// The partner's sellers (assigned to referrals as `team`).
    pub fn partner_team(&self) -> &[Member] {
        &self.partner_team
    }

    fn pick<'t, T>(&mut self, items: &'t [T]) -> &'t T {
        let i = self.rng.random_range(0..items.len().max(1));
        &items[i.min(items.len().saturating_sub(1))]
    }

    fn pick_weighted<'t, T>(&mut self, items: &'t [T], weight: impl Fn(&T) -> u32) -> &'t T {
        let total: u32 = items.iter().map(&weight).sum();
        let mut roll = self.rng.random_range(0..total.max(1));
        for item in items {
            let w = weight(item);
            if roll < w {
                return item;
            }
            roll -= w;
        }
        &items[items.len() - 1]
    }

    /// A customer organisation with one or two contacts.
    pub fn customer(&mut self) -> Customer {
        let country: &'static Country = self.pick_weighted(COUNTRIES, |c| c.weight);
        let city = *self.pick(country.cities);
        let postal_template = *self.pick(city.postal);
        let postal_code = fill(postal_template, &mut self.rng);
        let name = match country.names {
            NameLocale::En => localized!(CompanyName, NameLocale::En, &mut self.rng),
            other => format!(
                "{} {}",
                localized!(LastName, other, &mut self.rng),
                localized!(CompanySuffix, other, &mut self.rng)
            ),
        };
        let street = localized!(StreetName, country.names, &mut self.rng);
        let number = localized!(BuildingNumber, country.names, &mut self.rng);
        let address_line1 = match country.street {
            StreetStyle::Anglo => format!("{number} {street}"),
            StreetStyle::Continental => format!("{street} {number}"),
            StreetStyle::Brazilian => format!("{street}, {number}"),
        };
        let address_line2 = if self.rng.random_bool(0.25) {
            format!("Floor {}", self.rng.random_range(2..30))
        } else {
            String::new()
        };
        let email_domain = format!("{}.{}", company_slug(&name), country.tld);
        let size = self.pick_weighted(SIZES, |(_, w)| *w).0.clone();
        let contacts = (0..self.rng.random_range(1..=2))
            .map(|_| {
                person(
                    &mut self.rng,
                    country.names,
                    &email_domain,
                    country.phone,
                    country.locale,
                )
            })
            .collect();
        Customer {
            name,
            address: Address {
                address_line1: Some(address_line1),
                address_line2: Some(address_line2),
                city: Some(city.name.to_owned()),
                state: city.state.map(str::to_owned),
                postal_code: Some(postal_code),
                country: Some(country.iso2.to_owned()),
                region: None,
                extra: Default::default(),
            },
            size,
            contacts,
            currency: country.currency.to_owned(),
            email_domain,
        }
    }

    /// A deal value in `currency`: log-uniform between about 5,000 and 2,000,000 USD, rounded.
    fn deal_value(&mut self, currency: &str) -> Decimal {
        let usd =
            (5_000f64.ln() + self.rng.random::<f64>() * (2_000_000f64.ln() - 5_000f64.ln())).exp();
        let (factor, step) = match currency {
            "JPY" => (150.0, 10_000.0),
            "INR" => (83.0, 1_000.0),
            "BRL" => (5.0, 500.0),
            "GBP" => (0.8, 500.0),
            "EUR" => (0.92, 500.0),
            "CAD" => (1.35, 500.0),
            "AUD" => (1.5, 500.0),
            _ => (1.0, 500.0),
        };
        let rounded = ((usd * factor / step).round() * step).max(step);
        Decimal::from(rounded as i64)
    }

    /// The next referral Microsoft sends the partner, as of `now`.
    pub fn referral(&mut self, now: DateTime<Utc>) -> Referral {
        let mix = self.config.mix;
        let categories = [
            (0u8, mix.co_sell),
            (1u8, mix.qualified_leads),
            (2u8, mix.marketplace_leads),
        ];
        let category = self.pick_weighted(&categories, |(_, w)| *w).0;
        let customer = self.customer();
        let (product, workload) = *self.pick(PRODUCTS);
        let industry = *self.pick(INDUSTRIES);
        let service = *self.pick(SERVICES);
        let (solution_id, solution_name) =
            self.pick(&self.config.partner.solutions.clone()).clone();
        // Non-US customers often still buy in USD.
        let currency = if customer.currency != "USD" && self.rng.random_bool(0.2) {
            "USD".to_owned()
        } else {
            customer.currency.clone()
        };
        let deal_value = self.deal_value(&currency);
        let midnight = now
            .date_naive()
            .and_hms_opt(0, 0, 0)
            .map(|d| d.and_utc())
            .unwrap_or(now);
        let closing = midnight + Duration::days(self.rng.random_range(30..=270));
        let n = self.rng.random_range(2..40) * 10;
        let note_template = *self.pick(CUSTOMER_NOTES);
        let notes = note_template
            .replace("{company}", &customer.name)
            .replace("{product}", product)
            .replace("{workload}", workload)
            .replace("{industry}", industry)
            .replace("{n}", &n.to_string());
        let seller_note = (*self.pick(SELLER_NOTES)).to_owned();
        let (referral_type, qualification, help) = match category {
            0 => (
                ReferralType::Shared,
                ReferralQualification::SalesQualified,
                self.pick(HELP_CODES).clone(),
            ),
            1 => (
                ReferralType::Independent,
                if self.rng.random_bool(0.6) {
                    ReferralQualification::MarketingQualified
                } else {
                    ReferralQualification::SalesQualified
                },
                AssistanceRequestCode::Unknown,
            ),
            _ => (
                ReferralType::Independent,
                ReferralQualification::Direct,
                AssistanceRequestCode::Unknown,
            ),
        };
        let co_sell = category == 0;
        let shared_with_sellers = co_sell || self.rng.random_bool(0.7);
        let seller = self.pick(&self.partner_team.clone()).clone();
        let duns: String = (0..9)
            .map(|_| char::from(b'0' + self.rng.random_range(0..10u8)))
            .collect();
        let msx_id = co_sell.then(|| {
            let tail: String = (0..10)
                .map(|_| {
                    char::from(b"ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"[self.rng.random_range(0..34)])
                })
                .collect();
            format!("7-{tail}")
        });
        let short_name = customer
            .name
            .split([',', ' '])
            .next()
            .unwrap_or(&customer.name)
            .to_owned();
        Referral {
            name: Some(format!("{short_name} - {workload}")),
            organization_id: Some(self.config.partner.organization_id.clone()),
            organization_name: Some(self.config.partner.organization_name.clone()),
            status: Some(ReferralStatus::New),
            substatus: Some(ReferralSubstatus::Pending),
            referral_type: Some(referral_type),
            qualification: Some(qualification),
            direction: Some(ReferralDirection::Incoming),
            customer_profile: Some(CustomerProfile {
                name: Some(customer.name.clone()),
                address: Some(customer.address.clone()),
                size: Some(customer.size.clone()),
                team: Some(customer.contacts.clone()),
                ids: Some(json!([{ "profileType": "Duns", "id": duns }])),
                is_matching_complete: None,
                extra: Default::default(),
            }),
            consent: Some(Consent {
                consent_to_share_info_with_others: Some(true),
                consent_to_contact: Some(true),
                consent_to_share_referral_with_microsoft_sellers: Some(shared_with_sellers),
                consent_to_microsoft_to_contact_specific_partners: None,
                extra: Default::default(),
            }),
            details: Some(ReferralDetails {
                notes: Some(notes),
                deal_value: Some(deal_value),
                currency: Some(currency),
                closing_date_time: Some(closing),
                requirements: Some(ReferralRequirements {
                    industries: Some(vec![tag(industry)]),
                    products: Some(vec![tag(product)]),
                    services: Some(vec![tag(service)]),
                    solutions: Some(vec![SolutionTag {
                        id: Some(solution_id.clone()),
                        name: Some(solution_name),
                        solution_type: Some(SolutionType::Name),
                        extra: Default::default(),
                    }]),
                    ..ReferralRequirements::default()
                }),
                customer_requested_contact: Some(!co_sell),
                ..ReferralDetails::default()
            }),
            team: Some(vec![seller]),
            invite_context: Some(InviteContext {
                notes: Some(seller_note),
                invited_by: Some(InvitedBy {
                    organization_id: Some("msft".to_owned()),
                    organization_name: Some("Microsoft".to_owned()),
                    extra: Default::default(),
                }),
                assistance_request_code: Some(help),
                invited_mpn_id: None,
                extra: Default::default(),
            }),
            target: Some(vec![ReferralTarget {
                id: Some(solution_id),
                target_type: Some(TargetType::SolutionProfile),
                extra: Default::default(),
            }]),
            tracking_info: Some(TrackingInfo {
                microsoft_msx_id: msx_id,
                ..TrackingInfo::default()
            }),
            ..Referral::default()
        }
    }

    /// `n` referrals as of `now`.
    pub fn referrals(&mut self, n: usize, now: DateTime<Utc>) -> Vec<Referral> {
        (0..n).map(|_| self.referral(now)).collect()
    }

    /// Microsoft's own referral in the same engagement as `partner_referral`
    /// (the "related referral" of §1.5): owned by `msft`, addressed to
    /// `BusinessProfileLocation`/`msft`, active, with Microsoft sellers as its team.
    pub fn microsoft_half(&mut self, partner_referral: &Referral) -> Referral {
        let sellers = (0..self.rng.random_range(1..=2))
            .map(|_| {
                person(
                    &mut self.rng,
                    NameLocale::En,
                    "microsoft.com",
                    "+1 425 882 ####",
                    "en-US",
                )
            })
            .collect();
        Referral {
            engagement_id: partner_referral.engagement_id.clone(),
            name: partner_referral.name.clone(),
            organization_id: Some("msft".to_owned()),
            organization_name: Some("Microsoft".to_owned()),
            status: Some(ReferralStatus::Active),
            substatus: Some(ReferralSubstatus::Accepted),
            referral_type: Some(ReferralType::Shared),
            qualification: partner_referral.qualification.clone(),
            direction: Some(ReferralDirection::Outgoing),
            customer_profile: partner_referral.customer_profile.clone(),
            consent: partner_referral.consent.clone(),
            details: partner_referral.details.clone(),
            team: Some(sellers),
            target: Some(vec![ReferralTarget {
                id: Some("msft".to_owned()),
                target_type: Some(TargetType::BusinessProfileLocation),
                extra: Default::default(),
            }]),
            tracking_info: partner_referral.tracking_info.clone(),
            ..Referral::default()
        }
    }
}

fn tag(id: &str) -> Tag {
    Tag {
        id: Some(id.to_owned()),
        extra: Default::default(),
    }
}

fn person(
    rng: &mut StdRng,
    locale: NameLocale,
    domain: &str,
    phone: &str,
    contact_locale: &str,
) -> Member {
    let first = localized!(FirstName, locale, rng);
    let last = localized!(LastName, locale, rng);
    let title: String = Title(EN).fake_with_rng(&mut FakeRng(rng));
    Member {
        email: Some(format!(
            "{}.{}@{domain}",
            ascii_slug(&first),
            ascii_slug(&last)
        )),
        phone_number: Some(fill(phone, rng)),
        first_name: Some(first),
        last_name: Some(last),
        title: Some(title),
        contact_preference: Some(ContactPreference {
            locale: Some(contact_locale.to_owned()),
            disable_notifications: Some(false),
            extra: Default::default(),
        }),
        extra: Default::default(),
    }
}

/// Fills a template: `#` any digit, `%` a digit 1–9, `?` an upper-case letter.
fn fill(template: &str, rng: &mut StdRng) -> String {
    template
        .chars()
        .map(|c| match c {
            '#' => char::from(b'0' + rng.random_range(0..10u8)),
            '%' => char::from(b'1' + rng.random_range(0..9u8)),
            '?' => char::from(b"ABDEFGHJLNPQRSTUWXYZ"[rng.random_range(0..20)]),
            other => other,
        })
        .collect()
}

/// Lower-case ASCII letters and digits, with common accents folded, for e-mail addresses.
fn ascii_slug(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars().flat_map(char::to_lowercase) {
        match c {
            'a'..='z' | '0'..='9' => out.push(c),
            'ä' | 'æ' => out.push_str("ae"),
            'ö' | 'ø' | 'œ' => out.push_str("oe"),
            'ü' => out.push_str("ue"),
            'ß' => out.push_str("ss"),
            'à' | 'á' | 'â' | 'ã' | 'å' => out.push('a'),
            'ç' => out.push('c'),
            'è' | 'é' | 'ê' | 'ë' => out.push('e'),
            'ì' | 'í' | 'î' | 'ï' => out.push('i'),
            'ñ' => out.push('n'),
            'ò' | 'ó' | 'ô' | 'õ' => out.push('o'),
            'ù' | 'ú' | 'û' => out.push('u'),
            'ý' | 'ÿ' => out.push('y'),
            _ => {}
        }
    }
    if out.is_empty() {
        "contact".to_owned()
    } else {
        out
    }
}

/// `Lemke, Smith and Jones LLC` → `lemkesmithjones`: the name without legal suffixes.
fn company_slug(name: &str) -> String {
    const SUFFIXES: [&str; 14] = [
        "llc", "inc", "group", "and", "sons", "ltd", "gmbh", "ag", "sa", "sarl", "ltda", "kg",
        "se", "co",
    ];
    let words: String = name
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty() && !SUFFIXES.contains(&w.to_lowercase().as_str()))
        .take(2)
        .map(ascii_slug)
        .collect();
    if words.is_empty() {
        "customer".to_owned()
    } else {
        words
    }
}

#[cfg(test)]
mod tests;
