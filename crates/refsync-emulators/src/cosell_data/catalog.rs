//! The documented tag lists a referral's requirements draw from
//! (partner-center.md §1.5, "Tag value lists", 2019–2023 docs; may be outdated),
//! and the phrases generated names and notes are built from.

use refsync_core::referral::{AssistanceRequestCode, CustomerSize};

/// `details.requirements.products[].id` values, with a workload phrase for names and notes.
pub(crate) const PRODUCTS: &[(&str, &str)] = &[
    ("Azure", "Azure migration"),
    ("Azure", "Azure data platform modernisation"),
    ("Azure", "Azure landing zone"),
    ("EnterpriseMobilityAndSecurity", "Zero Trust rollout"),
    ("Exchange", "Exchange Online migration"),
    ("DeveloperTools", "GitHub and DevOps adoption"),
    ("Dynamics365Business", "Business Central implementation"),
    ("Dynamics365Enterprise", "Dynamics 365 Sales rollout"),
    ("Dynamics365Enterprise", "Customer service modernisation"),
    ("Microsoft365", "Microsoft 365 adoption"),
    ("Microsoft365", "Copilot readiness"),
    ("Office", "Office upgrade"),
    ("PowerBI", "Power BI analytics"),
    ("Project", "Project portfolio management"),
    ("SharePoint", "SharePoint intranet"),
    ("Surface", "Surface device refresh"),
    ("SurfaceHub", "Surface Hub meeting rooms"),
    ("SQL", "SQL Server consolidation"),
    ("Teams", "Teams Phone deployment"),
    ("Visio", "Visio process mapping"),
    ("Windows", "Windows 11 deployment"),
];

/// `details.requirements.services[].id` values.
pub(crate) const SERVICES: &[&str] = &[
    "ConsultingAndProfessional",
    "CustomSolution(ISV)",
    "DeploymentOrMigration",
    "Hardware",
    "Integration",
    "IPServices(ISV)",
    "LearningAndCertification",
    "Licensing",
    "ManagedServices",
    "ProjectServices",
];

/// `details.requirements.industries[].id` values. The docs give display strings
/// such as "Financial Services" and "Retail & Consumer Goods" and say there are 14;
/// the rest of this list is unconfirmed.
pub(crate) const INDUSTRIES: &[&str] = &[
    "Automotive",
    "Education",
    "Financial Services",
    "Government",
    "Healthcare",
    "Hospitality & Travel",
    "Manufacturing",
    "Media & Communications",
    "Nonprofit",
    "Professional Services",
    "Retail & Consumer Goods",
    "Energy",
    "Agriculture",
    "Real Estate",
];

/// "How can Microsoft help?" values a co-sell request carries (never `Unknown`).
pub(crate) const HELP_CODES: &[AssistanceRequestCode] = &[
    AssistanceRequestCode::WorkloadSpecificValueProposition,
    AssistanceRequestCode::CustomerTechnicalArchitecture,
    AssistanceRequestCode::ProofOfConceptOrDemo,
    AssistanceRequestCode::QuotesOrLicensing,
    AssistanceRequestCode::PostSalesCustomerSuccess,
    AssistanceRequestCode::GeneralOrOther,
];

/// Customer sizes with relative frequencies (small companies are the most common).
pub(crate) const SIZES: &[(CustomerSize, u32)] = &[
    (CustomerSize::OneTo9, 8),
    (CustomerSize::TenTo50, 16),
    (CustomerSize::FiftyOneTo250, 20),
    (CustomerSize::TwoHundredFiftyOneTo1000, 18),
    (CustomerSize::ThousandOneTo5000, 14),
    (CustomerSize::FiveThousandOneTo10000, 8),
    (CustomerSize::TenThousandOneTo20000, 6),
    (CustomerSize::MoreThan20000, 6),
    (CustomerSize::OneTo50, 2),
    (CustomerSize::FiftyOneTo500, 2),
];

/// Customer-facing notes; `{product}`, `{workload}`, `{industry}`, `{n}` and `{company}` are filled in.
pub(crate) const CUSTOMER_NOTES: &[&str] = &[
    "{company} plans to move {n} on-premises servers to {product} before the end of the fiscal year.",
    "Looking for a partner to run a {workload} proof of concept for the finance team.",
    "Existing Microsoft customer expanding {product} to {n} more seats; needs deployment help.",
    "Customer asked for a licensing quote and an architecture review for {workload}.",
    "{company} prefers a partner with {industry} references for {workload}.",
    "Board approved budget for {workload}; decision expected this quarter.",
];

/// Notes a Microsoft seller adds when inviting a partner.
pub(crate) const SELLER_NOTES: &[&str] = &[
    "Customer is engaged with the account team; please reach out within 48 hours.",
    "Strategic account. Microsoft will join the first architecture workshop.",
    "Customer requested a certified partner in their region.",
    "Funding may be available through the partner investment programme.",
];
