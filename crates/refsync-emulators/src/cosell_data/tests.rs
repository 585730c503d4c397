//! The generator's output is deterministic, well-formed and realistic.

use super::*;
use refsync_core::referral::ReferralCategory;

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-23T09:30:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn generate(seed: u64, n: usize) -> Vec<Referral> {
    CosellGenerator::new(CosellConfig {
        seed,
        ..CosellConfig::default()
    })
    .referrals(n, now())
}

#[test]
fn same_seed_same_data_other_seed_other_data() {
    let a = generate(7, 20);
    assert_eq!(a, generate(7, 20));
    assert_ne!(a, generate(8, 20));
}

fn postal_code_fits(country: &str, code: &str) -> bool {
    let shape: String = code
        .chars()
        .map(|c| match c {
            '0'..='9' => '9',
            'A'..='Z' => 'A',
            other => other,
        })
        .collect();
    match country {
        "US" | "DE" | "FR" => shape == "99999",
        "AU" => shape == "9999",
        "IN" => shape == "999999",
        "NL" => shape == "9999 AA",
        "BR" => shape == "99999-999",
        "JP" => shape == "999-9999",
        "CA" => shape == "A9A 9A9",
        "GB" => ["AA9A 9AA", "A9A 9AA", "A9 9AA", "AA9 9AA", "A99 9AA"].contains(&shape.as_str()),
        _ => false,
    }
}

#[test]
fn referrals_look_like_what_microsoft_sends() {
    let referrals = generate(42, 300);
    let mut countries = std::collections::BTreeSet::new();
    for r in &referrals {
        assert_eq!(r.status, Some(ReferralStatus::New));
        assert_eq!(r.substatus, Some(ReferralSubstatus::Pending));
        assert_eq!(r.direction, Some(ReferralDirection::Incoming));
        assert!(r.id.is_none() && r.e_tag.is_none() && r.created_date_time.is_none());
        let invite = r.invite_context.as_ref().unwrap();
        assert_eq!(
            invite
                .invited_by
                .as_ref()
                .unwrap()
                .organization_id
                .as_deref(),
            Some("msft")
        );
        let help = invite.assistance_request_code.clone().unwrap();
        let consent = r.consent.as_ref().unwrap();
        match r.category() {
            ReferralCategory::CoSellOpportunity => {
                assert_eq!(r.referral_type, Some(ReferralType::Shared));
                assert_ne!(help, AssistanceRequestCode::Unknown);
                assert_eq!(
                    consent.consent_to_share_referral_with_microsoft_sellers,
                    Some(true)
                );
                assert!(
                    r.tracking_info
                        .as_ref()
                        .unwrap()
                        .microsoft_msx_id
                        .as_ref()
                        .unwrap()
                        .starts_with("7-")
                );
            }
            ReferralCategory::QualifiedLead => {
                assert_eq!(help, AssistanceRequestCode::Unknown);
            }
            ReferralCategory::MarketplaceLead => panic!("marketplace leads are off by default"),
        }
        let profile = r.customer_profile.as_ref().unwrap();
        let address = profile.address.as_ref().unwrap();
        let country = address.country.clone().unwrap();
        let postal = address.postal_code.clone().unwrap();
        assert!(postal_code_fits(&country, &postal), "{country} {postal}");
        countries.insert(country.clone());
        let contacts = profile.team.as_ref().unwrap();
        assert!(!contacts.is_empty());
        for c in contacts {
            let email = c.email.as_deref().unwrap();
            assert!(
                email.is_ascii() && email.contains('@') && !email.starts_with('.'),
                "{email}"
            );
            assert!(c.phone_number.as_deref().unwrap().starts_with('+'));
        }
        let details = r.details.as_ref().unwrap();
        assert!(details.deal_value.unwrap() > Decimal::ZERO);
        let currency = details.currency.as_deref().unwrap();
        let home = places::COUNTRIES
            .iter()
            .find(|c| c.iso2 == country)
            .unwrap()
            .currency;
        assert!(
            currency == home || currency == "USD",
            "{country} {currency}"
        );
        let closing = details.closing_date_time.unwrap();
        assert!(closing > now() + Duration::days(29) && closing < now() + Duration::days(272));
        let solutions = details
            .requirements
            .as_ref()
            .unwrap()
            .solutions
            .as_ref()
            .unwrap();
        assert!(solutions[0].id.as_deref().unwrap().starts_with("SOL-"));
        let target = &r.target.as_ref().unwrap()[0];
        assert_eq!(target.target_type, Some(TargetType::SolutionProfile));
        assert_eq!(target.id, solutions[0].id);
        assert_eq!(r.organization_name.as_deref(), Some("Contoso Company"));
        // What the emulator stores survives the wire.
        let back: Referral = serde_json::from_value(r.to_value()).unwrap();
        assert_eq!(&back, r);
    }
    let co_sell = referrals
        .iter()
        .filter(|r| r.category() == ReferralCategory::CoSellOpportunity)
        .count();
    assert!((120..=210).contains(&co_sell), "{co_sell} co-sell of 300");
    assert!(countries.len() >= 8, "{countries:?}");
}

#[test]
fn marketplace_leads_when_enabled() {
    let mut generator = CosellGenerator::new(CosellConfig {
        seed: 3,
        mix: ReferralMix {
            co_sell: 0,
            qualified_leads: 0,
            marketplace_leads: 1,
        },
        ..CosellConfig::default()
    });
    let r = generator.referral(now());
    assert_eq!(r.category(), ReferralCategory::MarketplaceLead);
    assert_eq!(r.qualification, Some(ReferralQualification::Direct));
}

#[test]
fn microsoft_half_shares_the_engagement() {
    let mut generator = CosellGenerator::new(CosellConfig::default());
    let mut ours = generator.referral(now());
    ours.engagement_id = Some(
        refsync_core::ids::EngagementId::parse("65edc0b5-3485-41b7-a17e-dfa9ef4706e2").unwrap(),
    );
    let theirs = generator.microsoft_half(&ours);
    assert_eq!(theirs.engagement_id, ours.engagement_id);
    assert_eq!(theirs.organization_id.as_deref(), Some("msft"));
    assert_eq!(
        theirs.target.as_ref().unwrap()[0].target_type,
        Some(TargetType::BusinessProfileLocation)
    );
    assert!(
        theirs.team.as_ref().unwrap().iter().all(|m| m
            .email
            .as_deref()
            .unwrap()
            .ends_with("@microsoft.com"))
    );
    assert_eq!(theirs.customer_profile, ours.customer_profile);
}

#[test]
fn helpers() {
    assert_eq!(ascii_slug("Jörg-Ünal"), "joerguenal");
    assert_eq!(company_slug("Lemke, Smith and Jones LLC"), "lemkesmith");
    assert_eq!(company_slug("GmbH"), "customer");
    let mut rng = StdRng::seed_from_u64(1);
    let code = fill("M5V %?#", &mut rng);
    assert!(postal_code_fits("CA", &code), "{code}");
}
