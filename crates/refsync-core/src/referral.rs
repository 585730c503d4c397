//! The Partner Center Referral resource (reference §1.5), camelCase as on the wire.
//!
//! Every object keeps the fields it does not know in `extra`, and every enum keeps
//! values it does not know in `Other`: Microsoft adds fields, and a read-modify-write
//! (the obsolete PUT sends the whole resource) must never drop them.

use crate::ids::{EngagementId, Etag, ReferralId};
use crate::open_enum;
use crate::status::{ReferralStatus, ReferralSubstatus, StatusPair};
use crate::wire::{opt_datetime, opt_decimal};
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Fields of an object that this version of refsync does not model, kept verbatim.
pub type Extra = Map<String, Value>;

open_enum! {
    /// `type`: who can see the referral.
    pub enum ReferralType {
        /// Visible to two parties, e.g. Microsoft and a partner co-selling.
        Shared = "Shared",
        /// Visible to one partner.
        Independent = "Independent",
    }
}

open_enum! {
    /// `qualification`: where the referral came from.
    pub enum ReferralQualification {
        /// Not set.
        None = "None",
        /// Created by a customer (marketplace lead).
        Direct = "Direct",
        /// From Microsoft marketing automation.
        MarketingQualified = "MarketingQualified",
        /// From a Microsoft seller.
        SalesQualified = "SalesQualified",
    }
}

open_enum! {
    /// `direction`: whether the referral was sent to us or by us.
    pub enum ReferralDirection {
        /// Received from Microsoft or another partner.
        Incoming = "Incoming",
        /// Created by us.
        Outgoing = "Outgoing",
    }
}

open_enum! {
    /// `customerProfile.size`.
    pub enum CustomerSize {
        /// 1 to 50 employees.
        OneTo50 = "1to50employees",
        /// 51 to 500 employees.
        FiftyOneTo500 = "51to500employees",
        /// More than 500 employees.
        MoreThan500 = "Morethan500employees",
        /// 1 to 9 employees.
        OneTo9 = "1to9employees",
        /// 10 to 50 employees.
        TenTo50 = "10to50employees",
        /// 51 to 250 employees.
        FiftyOneTo250 = "51to250employees",
        /// 251 to 1000 employees.
        TwoHundredFiftyOneTo1000 = "251to1000employees",
        /// 1001 to 5000 employees.
        ThousandOneTo5000 = "1001to5000employees",
        /// 5001 to 10000 employees.
        FiveThousandOneTo10000 = "5001to10000employees",
        /// 10001 to 20000 employees.
        TenThousandOneTo20000 = "10001to20000employees",
        /// More than 20000 employees.
        MoreThan20000 = "Morethan20000employees",
    }
}

open_enum! {
    /// `customerProfile.ids[].profileType`.
    pub enum CustomerProfileType {
        /// A Dun & Bradstreet number.
        Duns = "Duns",
        /// An external identifier.
        External = "External",
    }
}

open_enum! {
    /// `details.requirements.solutions[].type`.
    pub enum SolutionType {
        /// Not set.
        None = "None",
        /// A solution category.
        Category = "Category",
        /// A named solution.
        Name = "Name",
    }
}

open_enum! {
    /// `target[].type`.
    pub enum TargetType {
        /// Not set.
        None = "None",
        /// A business profile location (`msft` for Microsoft's half of a co-sell).
        BusinessProfileLocation = "BusinessProfileLocation",
        /// A partner solution profile (`SOL-…`).
        SolutionProfile = "SolutionProfile",
    }
}

open_enum! {
    /// `inviteContext.assistanceRequestCode`: the CRM's "How can Microsoft help?".
    pub enum AssistanceRequestCode {
        /// No help requested.
        Unknown = "Unknown",
        /// General or other.
        GeneralOrOther = "GeneralOrOther",
        /// Customer technical architecture.
        CustomerTechnicalArchitecture = "CustomerTechnicalArchitecture",
        /// Proof of concept or demo.
        ProofOfConceptOrDemo = "ProofOfConceptOrDemo",
        /// Quotes or licensing.
        QuotesOrLicensing = "QuotesOrLicensing",
        /// Post sales customer success.
        PostSalesCustomerSuccess = "PostSalesCustomerSuccess",
        /// Workload specific value proposition.
        WorkloadSpecificValueProposition = "WorkloadSpecificValueProposition",
    }
}

open_enum! {
    /// `salesStage`, as the connector swagger lists it. Real responses have shown
    /// `"100"`, so the wire values are unconfirmed; anything else lands in `Other`.
    pub enum SalesStage {
        /// Qualify.
        Qualify = "Qualify",
        /// Develop.
        Develop = "Develop",
        /// Propose.
        Propose = "Propose",
        /// Close.
        Close = "Close",
    }
}

/// The referral category Microsoft's documentation derives from type, qualification
/// and inviter (reference §1.5, "Referral classification").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReferralCategory {
    /// A lead from the commercial marketplace.
    MarketplaceLead,
    /// A lead qualified by Microsoft sales or marketing.
    QualifiedLead,
    /// A co-sell opportunity.
    CoSellOpportunity,
}

/// A Partner Center referral.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Referral {
    /// Server-assigned id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<ReferralId>,
    /// Shared by the referrals of one engagement (both halves of a co-sell).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engagement_id: Option<EngagementId>,
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Owning organization (`msft` for Microsoft).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization_id: Option<String>,
    /// Owning organization's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization_name: Option<String>,
    /// The partner's own CRM record id (connectors write the lead/opportunity id here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_reference_id: Option<String>,
    /// When the referral was created.
    #[serde(
        default,
        with = "opt_datetime",
        skip_serializing_if = "Option::is_none"
    )]
    pub created_date_time: Option<DateTime<Utc>>,
    /// When the referral last changed.
    #[serde(
        default,
        with = "opt_datetime",
        skip_serializing_if = "Option::is_none"
    )]
    pub updated_date_time: Option<DateTime<Utc>>,
    /// When an unanswered referral expires.
    #[serde(
        default,
        with = "opt_datetime",
        skip_serializing_if = "Option::is_none"
    )]
    pub expiration_date_time: Option<DateTime<Utc>>,
    /// When the referral was accepted.
    #[serde(
        default,
        with = "opt_datetime",
        skip_serializing_if = "Option::is_none"
    )]
    pub accepted_date_time: Option<DateTime<Utc>>,
    /// When the referral was closed.
    #[serde(
        default,
        with = "opt_datetime",
        skip_serializing_if = "Option::is_none"
    )]
    pub closed_date_time: Option<DateTime<Utc>>,
    /// Status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ReferralStatus>,
    /// Substatus.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub substatus: Option<ReferralSubstatus>,
    /// Why the status is what it is (e.g. why it was lost).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<String>,
    /// Shared or independent.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub referral_type: Option<ReferralType>,
    /// Qualification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qualification: Option<ReferralQualification>,
    /// Incoming or outgoing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<ReferralDirection>,
    /// Source of a marketplace lead (values unconfirmed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referral_source: Option<String>,
    /// Call to action of a marketplace lead (values unconfirmed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_to_action: Option<String>,
    /// The customer's intent to transact on the marketplace (values unconfirmed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_marketplace_intent: Option<String>,
    /// The referral program (observed, usually null).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referral_program: Option<String>,
    /// Sales stage (wire values unconfirmed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sales_stage: Option<SalesStage>,
    /// Partner role, services co-sell only (placement and values unconfirmed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partner_role: Option<Value>,
    /// Solution area, services co-sell only (placement and values unconfirmed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub solution_area: Option<Value>,
    /// Solution play, services co-sell only (placement and values unconfirmed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub solution_play: Option<Value>,
    /// The customer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_profile: Option<CustomerProfile>,
    /// Consent flags.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consent: Option<Consent>,
    /// Deal details.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<ReferralDetails>,
    /// The partner's own sales team.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<Vec<Member>>,
    /// Who invited whom, and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invite_context: Option<InviteContext>,
    /// Concurrency tag; quotes are part of the value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e_tag: Option<Etag>,
    /// Where the referral is addressed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<Vec<ReferralTarget>>,
    /// Links to this and related referrals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub links: Option<ReferralLinks>,
    /// Microsoft-side tracking identifiers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracking_info: Option<TrackingInfo>,
    /// Free-form tags.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<Value>>,
    /// Deal registration status (undocumented; e.g. `None`, `ReviewPending`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration_status: Option<String>,
    /// Deal registrations (undocumented objects).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registrations: Option<Vec<Value>>,
    /// Everything else the server sent.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `customerProfile`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomerProfile {
    /// Company name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Postal address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<Address>,
    /// Company size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<CustomerSize>,
    /// Customer contacts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<Vec<Member>>,
    /// External identifiers (an array on the wire; some samples show `{}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ids: Option<Value>,
    /// Whether Microsoft finished matching the customer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_matching_complete: Option<bool>,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Extra,
}

impl CustomerProfile {
    /// The `ids` entries, when they have the array shape.
    pub fn profile_ids(&self) -> Vec<CustomerProfileId> {
        self.ids
            .as_ref()
            .and_then(|v| serde_json::from_value::<Vec<CustomerProfileId>>(v.clone()).ok())
            .unwrap_or_default()
    }
}

/// One `customerProfile.ids[]` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomerProfileId {
    /// Which kind of id.
    pub profile_type: CustomerProfileType,
    /// The id.
    #[serde(default)]
    pub id: Option<String>,
}

/// A postal address.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Address {
    /// First street line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address_line1: Option<String>,
    /// Second street line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address_line2: Option<String>,
    /// City.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    /// State or province.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// Postal code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postal_code: Option<String>,
    /// ISO 3166 alpha-2 country code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    /// Region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A person: a customer contact or a member of a sales team.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Member {
    /// First name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    /// Last name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    /// Phone number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_number: Option<String>,
    /// Email address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Job title (seen in responses).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// How the person wants to be contacted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact_preference: Option<ContactPreference>,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `contactPreference`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContactPreference {
    /// Locale, e.g. `en-US`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
    /// Whether notifications are turned off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_notifications: Option<bool>,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `consent`. Note the documented spelling `consentToToShareInfoWithOthers`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Consent {
    /// Consent to share information with other organizations.
    #[serde(
        default,
        rename = "consentToToShareInfoWithOthers",
        skip_serializing_if = "Option::is_none"
    )]
    pub consent_to_share_info_with_others: Option<bool>,
    /// Consent to be contacted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consent_to_contact: Option<bool>,
    /// Visible to Microsoft sellers; `false` makes a private deal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consent_to_share_referral_with_microsoft_sellers: Option<bool>,
    /// Seen only in the 2018 PUT sample.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consent_to_microsoft_to_contact_specific_partners: Option<bool>,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `details`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReferralDetails {
    /// Notes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    /// Deal value; a number on the wire, though the PATCH sample sends a string.
    #[serde(default, with = "opt_decimal", skip_serializing_if = "Option::is_none")]
    pub deal_value: Option<Decimal>,
    /// ISO 4217 currency code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    /// Expected close date.
    #[serde(
        default,
        with = "opt_datetime",
        skip_serializing_if = "Option::is_none"
    )]
    pub closing_date_time: Option<DateTime<Utc>>,
    /// Requirements: industries, products, services, solutions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requirements: Option<ReferralRequirements>,
    /// Whether the customer asked to be contacted (seen in responses).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_requested_contact: Option<bool>,
    /// Customer action (seen in responses).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_action: Option<String>,
    /// Incentive level (seen in responses).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incentive_level: Option<String>,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `details.requirements`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReferralRequirements {
    /// Industries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub industries: Option<Vec<Tag>>,
    /// Products.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub products: Option<Vec<Tag>>,
    /// Services.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub services: Option<Vec<Tag>>,
    /// Solutions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub solutions: Option<Vec<SolutionTag>>,
    /// Offers (seen in responses).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offers: Option<Vec<Value>>,
    /// Sales plays (seen in responses).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sales_plays: Option<Vec<Value>>,
    /// Additional requirements (schema unconfirmed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub additional_requirements: Option<Value>,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A tag such as `{ "id": "Manufacturing" }`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Tag {
    /// The tag value.
    #[serde(default)]
    pub id: Option<String>,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A solution on a referral.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SolutionTag {
    /// Solution id, e.g. `SOL-6115380-IPC`.
    #[serde(default)]
    pub id: Option<String>,
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Kind of solution.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub solution_type: Option<SolutionType>,
    /// Unknown fields (`price`, `quantity`, `publisherName`, … in responses).
    #[serde(flatten)]
    pub extra: Extra,
}

/// `inviteContext`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InviteContext {
    /// The inviter's notes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    /// Who invited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invited_by: Option<InvitedBy>,
    /// "How can Microsoft help?".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assistance_request_code: Option<AssistanceRequestCode>,
    /// The invited partner's MPN id (seen in responses).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invited_mpn_id: Option<String>,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `inviteContext.invitedBy`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InvitedBy {
    /// Inviting organization (`msft` for Microsoft).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization_id: Option<String>,
    /// Inviting organization's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization_name: Option<String>,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// One `target[]` entry.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReferralTarget {
    /// Target id (`msft`, `SOL-…`).
    #[serde(default)]
    pub id: Option<String>,
    /// Target kind.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub target_type: Option<TargetType>,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `links`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReferralLinks {
    /// The query listing the engagement's other referrals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub related_referrals: Option<Link>,
    /// This referral.
    #[serde(default, rename = "self", skip_serializing_if = "Option::is_none")]
    pub self_link: Option<Link>,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A link: URI and method.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Link {
    /// The URI.
    #[serde(default)]
    pub uri: Option<String>,
    /// The HTTP method.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `trackingInfo` (undocumented; seen in responses and the connector swagger).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TrackingInfo {
    /// Microsoft's CRM (MSX) id: probably the CRM's "Microsoft CRM Identifier".
    #[serde(
        default,
        rename = "microsoftMsxId",
        skip_serializing_if = "Option::is_none"
    )]
    pub microsoft_msx_id: Option<String>,
    /// US Federal opportunity id.
    #[serde(
        default,
        rename = "microsoftUSFedOpportunityId",
        skip_serializing_if = "Option::is_none"
    )]
    pub microsoft_us_fed_opportunity_id: Option<String>,
    /// US Federal lead id.
    #[serde(
        default,
        rename = "microsoftUSFedLeadId",
        skip_serializing_if = "Option::is_none"
    )]
    pub microsoft_us_fed_lead_id: Option<String>,
    /// Migrated PSC deal id.
    #[serde(
        default,
        rename = "migratedPSCDealId",
        skip_serializing_if = "Option::is_none"
    )]
    pub migrated_psc_deal_id: Option<String>,
    /// Migrated PSC partner deal id.
    #[serde(
        default,
        rename = "migratedPSCPartnerDealId",
        skip_serializing_if = "Option::is_none"
    )]
    pub migrated_psc_partner_deal_id: Option<String>,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Extra,
}

impl Referral {
    /// Status and substatus together, when both are present.
    pub fn status_pair(&self) -> Option<StatusPair> {
        Some(StatusPair::new(
            self.status.clone()?,
            self.substatus.clone()?,
        ))
    }

    /// True once the referral has been accepted (Active) or was worked to a win or a
    /// loss: it then lives in the CRM as an opportunity rather than a lead. Declined and
    /// expired referrals were never worked and stay leads.
    pub fn is_accepted(&self) -> bool {
        matches!(
            (&self.status, &self.substatus),
            (Some(ReferralStatus::Active), _)
                | (
                    Some(ReferralStatus::Closed),
                    Some(ReferralSubstatus::Won | ReferralSubstatus::Lost)
                )
        )
    }

    /// The documented classification (marketplace lead, qualified lead, co-sell opportunity).
    pub fn category(&self) -> ReferralCategory {
        let invited_by_msft = self
            .invite_context
            .as_ref()
            .and_then(|c| c.invited_by.as_ref())
            .and_then(|b| b.organization_id.as_deref())
            .is_none_or(|org| org.eq_ignore_ascii_case("msft"));
        match (&self.referral_type, &self.qualification) {
            (Some(ReferralType::Independent), Some(ReferralQualification::Direct))
                if invited_by_msft =>
            {
                ReferralCategory::MarketplaceLead
            }
            (
                Some(ReferralType::Independent),
                Some(
                    ReferralQualification::SalesQualified
                    | ReferralQualification::MarketingQualified,
                ),
            ) if invited_by_msft => ReferralCategory::QualifiedLead,
            _ => ReferralCategory::CoSellOpportunity,
        }
    }

    /// The referral as a JSON value (the form the mapping engine reads paths from).
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The documented GET-by-id sample (reference §1.5), plus fields Microsoft might add.
    fn documented_sample() -> Value {
        json!({
          "@odata.context": "https://api.partner.microsoft.com/v1.0/engagments/referrals/$metadata#Referrals/$entity",
          "id": "c5fbb3b6-be74-4795-9fb5-4324c73fed37",
          "engagementId": "65edc0b5-3485-41b7-a17e-dfa9ef4706e2",
          "organizationId": "7d23e5ca-19dc-4eaa-aac8-5e6b559f0d1d",
          "organizationName": "Contoso Company",
          "name": "Test Cosell Invite_20",
          "externalReferenceId": "ext-1",
          "createdDateTime": "2020-10-30T21:03:00.0000000Z",
          "updatedDateTime": "2020-10-30T21:03:00.0000000Z",
          "acceptedDateTime": "2022-02-28T17:27:47.8742597Z",
          "status": "New", "substatus": "Pending",
          "qualification": "SalesQualified", "type": "Shared", "direction": "Incoming",
          "eTag": "\"2500ec5a-0000-0000-0000-5bf4967d0000\"",
          "target": [ { "type": "SolutionProfile", "id": "SOL-34104-EBB" } ],
          "customerProfile": {
            "name": "Fabrikam Customer Inc", "size": "10to50employees",
            "address": { "addressLine1": "One Microsoft Way", "addressLine2": "", "city": "Redmond",
                         "state": "WA", "postalCode": "98052", "country": "US", "geo": {"lat": 47.6} },
            "team": [ { "firstName": "Sue", "lastName": "Smith", "phoneNumber": "1234567890",
                        "email": "sue.smith@fabrikam.com", "emailValidationStatus": "Valid",
                        "contactPreference": { "locale": "en-US", "disableNotifications": false } } ],
            "ids": [ { "profileType": "Duns", "id": "" }, { "profileType": "External", "id": "6-EC3LOVPHK" } ]
          },
          "consent": { "consentToToShareInfoWithOthers": true, "consentToContact": true,
                       "consentToShareReferralWithMicrosoftSellers": true },
          "details": {
            "notes": "n", "dealValue": 50000, "currency": "USD", "closingDateTime": "2020-12-01T00:00:00Z",
            "requirements": {
              "industries": [ { "id": "Manufacturing" } ], "products": [ { "id": "Dynamics365Enterprise" } ],
              "services": [ { "id": "DeploymentOrMigration" } ],
              "solutions": [ { "id": "SOL-6115380-IPC", "name": null, "type": "Name", "price": 10 } ]
            },
            "fy27Incentive": "Tier2"
          },
          "team": [ { "firstName": "John", "lastName": "Doe" } ],
          "inviteContext": { "notes": "…", "assistanceRequestCode": "SomethingNew",
                             "invitedBy": { "organizationId": "msft", "organizationName": "Microsoft" } },
          "links": {
            "relatedReferrals": { "uri": "https://api.partner.microsoft.com/v1.0/engagements/referrals?$filter=engagementId eq '65edc0b5'", "method": "GET" },
            "self": { "uri": "https://api.partner.microsoft.com/v1.0/engagements/referrals/c5fbb3b6", "method": "GET" }
          },
          "trackingInfo": { "microsoftMsxId": "7-ABC", "newTrackingField": 1 },
          "brandNewTopLevel": { "nested": [1, 2, 3] }
        })
    }

    #[test]
    fn documented_sample_parses_into_typed_fields() {
        let r: Referral = serde_json::from_value(documented_sample()).unwrap();
        assert_eq!(
            r.id.as_ref().unwrap().as_str(),
            "c5fbb3b6-be74-4795-9fb5-4324c73fed37"
        );
        assert_eq!(r.status, Some(ReferralStatus::New));
        assert_eq!(r.referral_type, Some(ReferralType::Shared));
        let details = r.details.as_ref().unwrap();
        assert_eq!(details.deal_value, Some(Decimal::from(50000)));
        let profile = r.customer_profile.as_ref().unwrap();
        assert_eq!(profile.size, Some(CustomerSize::TenTo50));
        assert_eq!(profile.profile_ids()[1].id.as_deref(), Some("6-EC3LOVPHK"));
        assert_eq!(
            r.invite_context.as_ref().unwrap().assistance_request_code,
            Some(AssistanceRequestCode::Other("SomethingNew".into()))
        );
        assert_eq!(
            r.tracking_info
                .as_ref()
                .unwrap()
                .microsoft_msx_id
                .as_deref(),
            Some("7-ABC")
        );
        assert_eq!(r.category(), ReferralCategory::CoSellOpportunity);
    }

    #[test]
    fn unknown_fields_survive_read_modify_write() {
        let mut r: Referral = serde_json::from_value(documented_sample()).unwrap();
        r.external_reference_id = Some("lead-42".into());
        let out = r.to_value();
        assert_eq!(out["brandNewTopLevel"], json!({ "nested": [1, 2, 3] }));
        assert_eq!(out["@odata.context"], documented_sample()["@odata.context"]);
        assert_eq!(out["details"]["fy27Incentive"], "Tier2");
        assert_eq!(
            out["customerProfile"]["address"]["geo"],
            json!({"lat": 47.6})
        );
        assert_eq!(
            out["customerProfile"]["team"][0]["emailValidationStatus"],
            "Valid"
        );
        assert_eq!(out["details"]["requirements"]["solutions"][0]["price"], 10);
        assert_eq!(out["trackingInfo"]["newTrackingField"], 1);
        assert_eq!(
            out["inviteContext"]["assistanceRequestCode"],
            "SomethingNew"
        );
        assert_eq!(out["externalReferenceId"], "lead-42");
        // A second trip changes nothing.
        let again: Referral = serde_json::from_value(out.clone()).unwrap();
        assert_eq!(again.to_value(), out);
    }

    #[test]
    fn deal_value_accepts_the_patch_samples_string() {
        let d: ReferralDetails = serde_json::from_value(json!({"dealValue": "10000"})).unwrap();
        assert_eq!(d.deal_value, Some(Decimal::from(10000)));
        assert_eq!(serde_json::to_value(&d).unwrap()["dealValue"], json!(10000));
    }

    #[test]
    fn classification_follows_the_documented_table() {
        let lead = |q: &str| -> Referral {
            serde_json::from_value(json!({"type": "Independent", "qualification": q,
                "inviteContext": {"invitedBy": {"organizationId": "msft"}}}))
            .unwrap()
        };
        assert_eq!(lead("Direct").category(), ReferralCategory::MarketplaceLead);
        assert_eq!(
            lead("SalesQualified").category(),
            ReferralCategory::QualifiedLead
        );
        assert_eq!(
            lead("MarketingQualified").category(),
            ReferralCategory::QualifiedLead
        );
        let partner: Referral = serde_json::from_value(json!({"type": "Independent",
            "qualification": "SalesQualified",
            "inviteContext": {"invitedBy": {"organizationId": "7d23e5ca"}}}))
        .unwrap();
        assert_eq!(partner.category(), ReferralCategory::CoSellOpportunity);
    }

    #[test]
    fn acceptance_decides_lead_or_opportunity() {
        let r = |s: &str, ss: &str| -> Referral {
            serde_json::from_value(json!({"status": s, "substatus": ss})).unwrap()
        };
        assert!(!r("New", "Pending").is_accepted());
        assert!(r("Active", "Accepted").is_accepted());
        assert!(!r("Closed", "Declined").is_accepted());
        assert!(!r("Closed", "Expired").is_accepted());
        assert!(r("Closed", "Won").is_accepted());
        assert!(r("Closed", "Lost").is_accepted());
    }
}
