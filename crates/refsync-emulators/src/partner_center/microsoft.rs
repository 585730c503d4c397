//! Acting as Microsoft (and as the partner's users in the Partner Center UI):
//! sending the partner referrals, opening co-sell engagements with Microsoft's own
//! half, and changing referrals the way sellers do. Every change raises the events
//! the real service would (`referral-*` for the partner's referrals,
//! `related-referral-*` for Microsoft's half).

use super::control::ControlError;
use super::lifecycle::{self, NewIdentity, parse_referral_body};
use super::operations::{new_engagement_id, new_referral_id};
use super::{EmulatorState, PartnerCenterEmulator};
use chrono::{DateTime, Utc};
use refsync_core::referral::{
    InviteContext, InvitedBy, ReferralDirection, ReferralTarget, ReferralType, TargetType,
    TrackingInfo,
};
use refsync_core::{Referral, ReferralStatus, ReferralSubstatus};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Microsoft's organization id on its own referrals (§1.5).
pub const MICROSOFT_ORGANIZATION_ID: &str = "msft";

/// Both halves of a co-sell engagement.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CoSellPair {
    /// The partner's incoming referral (New/Pending).
    pub partner: Value,
    /// Microsoft's own referral in the same engagement (organization `msft`).
    pub microsoft: Value,
}

/// Field changes Microsoft (or the partner in the UI) makes to a referral.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MicrosoftUpdate {
    /// `name`.
    pub name: Option<String>,
    /// `details.notes`.
    pub notes: Option<String>,
    /// `details.dealValue` (a number or a numeric string).
    #[serde(default, with = "refsync_core::wire::opt_decimal")]
    pub deal_value: Option<Decimal>,
    /// `details.currency`.
    pub currency: Option<String>,
    /// `details.closingDateTime`.
    #[serde(default, with = "refsync_core::wire::opt_datetime")]
    pub closing_date_time: Option<DateTime<Utc>>,
    /// `statusReason`.
    pub status_reason: Option<String>,
    /// `trackingInfo.microsoftMsxId`: Microsoft's CRM id, set on Microsoft's half
    /// once a seller works the co-sell.
    pub msx_id: Option<String>,
}

/// A change made as Microsoft.
#[derive(Debug, Clone, PartialEq)]
pub enum MicrosoftChange {
    /// Active/Accepted.
    Accept,
    /// Closed/Declined, with an optional reason.
    Decline(Option<String>),
    /// Closed/Expired (nobody answered within 14 days).
    Expire,
    /// Closed/Won.
    Win,
    /// Closed/Lost, with an optional reason.
    Lose(Option<String>),
    /// Field changes.
    Update(MicrosoftUpdate),
}

impl PartnerCenterEmulator {
    /// Microsoft sends the partner `n` generated referrals (co-sell opportunities and
    /// qualified leads, New/Pending, incoming); returns them as stored.
    pub fn send_generated_referrals(&self, n: usize) -> Vec<Value> {
        let now = self.now();
        let mut state = self.state();
        let generated = state.generator.referrals(n, now);
        generated
            .into_iter()
            .filter_map(|r| self.insert_incoming(&mut state, r, now).ok())
            .collect()
    }

    /// Microsoft opens `n` generated co-sell engagements: the partner's incoming half
    /// plus Microsoft's own half (organization `msft`, Active/Accepted, addressed to
    /// `BusinessProfileLocation`/`msft`) sharing one engagementId.
    pub fn open_generated_cosells(&self, n: usize) -> Vec<CoSellPair> {
        let now = self.now();
        let mut state = self.state();
        let generated = state.generator.referrals(n, now);
        generated
            .into_iter()
            .filter_map(|r| self.insert_pair(&mut state, r, now).ok())
            .collect()
    }

    /// Microsoft sends the partner one referral with the given body (the four
    /// required properties needed; status defaults to New/Pending, owner to the
    /// partner, direction to Incoming, inviter to Microsoft).
    pub fn send_referral(&self, body: Value) -> Result<Value, ControlError> {
        let referral = parse_referral_body(body)?;
        let now = self.now();
        let mut state = self.state();
        self.insert_incoming(&mut state, referral, now)
    }

    /// Like [`PartnerCenterEmulator::send_referral`], plus Microsoft's own half.
    pub fn open_cosell(&self, body: Value) -> Result<CoSellPair, ControlError> {
        let referral = parse_referral_body(body)?;
        let now = self.now();
        let mut state = self.state();
        self.insert_pair(&mut state, referral, now)
    }

    fn insert_incoming(
        &self,
        state: &mut EmulatorState,
        mut referral: Referral,
        now: DateTime<Utc>,
    ) -> Result<Value, ControlError> {
        let owner = self.owner();
        if referral.organization_id.is_none() {
            referral.organization_id = Some(owner.organization_id.to_owned());
            referral.organization_name = Some(owner.organization_name.to_owned());
        }
        if referral.invite_context.is_none() {
            referral.invite_context = Some(invited_by_microsoft());
        }
        let identity = NewIdentity {
            id: new_referral_id()?,
            engagement_id: match referral.engagement_id.take() {
                Some(e) => e,
                None => new_engagement_id()?,
            },
            etag: state.store.next_etag(now),
            now,
        };
        let referral = lifecycle::new_microsoft_referral(referral, owner.api_base, identity)?;
        Ok(self.insert_and_emit(state, referral, now))
    }

    fn insert_pair(
        &self,
        state: &mut EmulatorState,
        mut partner: Referral,
        now: DateTime<Utc>,
    ) -> Result<CoSellPair, ControlError> {
        partner.referral_type = Some(ReferralType::Shared);
        partner.engagement_id = Some(new_engagement_id()?);
        let mut microsoft = state.generator.microsoft_half(&partner);
        microsoft.status = Some(ReferralStatus::Active);
        microsoft.substatus = Some(ReferralSubstatus::Accepted);
        microsoft.direction = Some(ReferralDirection::Outgoing);
        microsoft.organization_id = Some(MICROSOFT_ORGANIZATION_ID.to_owned());
        microsoft.organization_name = Some("Microsoft".to_owned());
        microsoft.target = Some(vec![ReferralTarget {
            id: Some(MICROSOFT_ORGANIZATION_ID.to_owned()),
            target_type: Some(TargetType::BusinessProfileLocation),
            extra: Map::new(),
        }]);
        // The partner's half first, so Microsoft's half is "related" when it lands.
        let partner = self.insert_incoming(state, partner, now)?;
        let microsoft = self.insert_incoming(state, microsoft, now)?;
        Ok(CoSellPair { partner, microsoft })
    }

    /// Changes a referral as Microsoft would; raises `referral-updated` or
    /// `related-referral-updated`. Status changes follow the documented transitions.
    pub fn microsoft_change(
        &self,
        id: &str,
        change: MicrosoftChange,
    ) -> Result<Value, ControlError> {
        let mut state = self.state();
        let current = state
            .store
            .get(id)
            .map(|s| s.referral.clone())
            .ok_or_else(|| ControlError::NotFound(id.to_owned()))?;
        let mut updated = current.clone();
        let mut set_status = |s: ReferralStatus, ss: ReferralSubstatus, reason: Option<String>| {
            updated.status = Some(s);
            updated.substatus = Some(ss);
            if reason.is_some() {
                updated.status_reason = reason;
            }
        };
        match change {
            MicrosoftChange::Accept => {
                set_status(ReferralStatus::Active, ReferralSubstatus::Accepted, None);
            }
            MicrosoftChange::Decline(reason) => {
                set_status(ReferralStatus::Closed, ReferralSubstatus::Declined, reason);
            }
            MicrosoftChange::Expire => {
                set_status(ReferralStatus::Closed, ReferralSubstatus::Expired, None);
            }
            MicrosoftChange::Win => {
                set_status(ReferralStatus::Closed, ReferralSubstatus::Won, None)
            }
            MicrosoftChange::Lose(reason) => {
                set_status(ReferralStatus::Closed, ReferralSubstatus::Lost, reason);
            }
            MicrosoftChange::Update(fields) => apply_fields(&mut updated, fields),
        }
        Ok(self.store_update(&mut state, &current, updated)?)
    }
}

fn invited_by_microsoft() -> InviteContext {
    InviteContext {
        invited_by: Some(InvitedBy {
            organization_id: Some(MICROSOFT_ORGANIZATION_ID.to_owned()),
            organization_name: Some("Microsoft".to_owned()),
            extra: Map::new(),
        }),
        ..InviteContext::default()
    }
}

fn apply_fields(referral: &mut Referral, fields: MicrosoftUpdate) {
    if let Some(name) = fields.name {
        referral.name = Some(name);
    }
    if let Some(reason) = fields.status_reason {
        referral.status_reason = Some(reason);
    }
    let details = referral.details.get_or_insert_with(Default::default);
    if let Some(notes) = fields.notes {
        details.notes = Some(notes);
    }
    if let Some(value) = fields.deal_value {
        details.deal_value = Some(value);
    }
    if let Some(currency) = fields.currency {
        details.currency = Some(currency);
    }
    if let Some(closing) = fields.closing_date_time {
        details.closing_date_time = Some(closing);
    }
    if let Some(msx) = fields.msx_id {
        referral
            .tracking_info
            .get_or_insert_with(TrackingInfo::default)
            .microsoft_msx_id = Some(msx);
    }
}
