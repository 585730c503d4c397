//! Who may call which API and see which referral (partner-center.md §1.2, §2.1).
//!
//! - The Referrals API takes App+User tokens for `https://api.partner.microsoft.com`
//!   only; an app-only token is valid but refused with 403.
//! - A Referral Admin (or, in the 2020-2023 docs, a Global Admin) reads and writes
//!   every referral of the partner; a Referral User only reads referrals whose
//!   `team` includes them (checked when `enforce_referral_roles` is on).
//! - A partner sees its own referrals and the other referrals of its engagements
//!   (Microsoft's half of a co-sell, which `links.relatedReferrals` lists), and
//!   writes only its own.
//! - The registration API takes app-only and App+User tokens for
//!   `https://api.partnercenter.microsoft.com`.

use super::error::ApiError;
use super::store::{ReferralStore, StoredReferral};
use crate::entra::{AcceptedTokens, BearerError, EntraAuthority};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use std::collections::HashSet;

/// Why a request was not let in.
#[derive(Debug)]
pub(crate) enum Refusal {
    /// No, a bad, or the wrong kind of token: 401/403 with `WWW-Authenticate`.
    Token(BearerError),
    /// A valid token whose user lacks the role.
    Role(ApiError),
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::Token(e) => ApiError::from_bearer(e),
            Refusal::Role(e) => e.into_response(),
        }
    }
}

/// An authenticated Referrals API caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Caller {
    /// Reads and writes everything the partner owns.
    Admin,
    /// Reads the referrals whose team includes this address.
    ReferralUser { email: String },
}

impl Caller {
    pub(crate) fn may_write(&self) -> bool {
        matches!(self, Caller::Admin)
    }
}

const ADMIN_ROLES: [&str; 2] = ["Referral Admin", "Global Admin"];
const USER_ROLE: &str = "Referral User";

/// Authenticates a Referrals API request.
pub(crate) fn referrals_caller(
    authority: &EntraAuthority,
    headers: &HeaderMap,
    audience: &str,
    enforce_roles: bool,
) -> Result<Caller, Refusal> {
    let claims = authority
        .authorize(headers, audience, AcceptedTokens::AppPlusUser)
        .map_err(Refusal::Token)?;
    if !enforce_roles {
        return Ok(Caller::Admin);
    }
    let roles = authority.roles_of(&claims);
    let has = |role: &str| roles.iter().any(|r| r.eq_ignore_ascii_case(role));
    if ADMIN_ROLES.iter().any(|r| has(r)) {
        Ok(Caller::Admin)
    } else if has(USER_ROLE) {
        Ok(Caller::ReferralUser {
            email: claims.upn.unwrap_or_default(),
        })
    } else {
        Err(Refusal::Role(ApiError::forbidden(
            "The user needs the Referral Admin or Referral User role in Partner Center.",
        )))
    }
}

/// Authenticates a webhook registration API request (app-only or App+User).
pub(crate) fn registration_caller(
    authority: &EntraAuthority,
    headers: &HeaderMap,
    audience: &str,
) -> Result<(), Refusal> {
    authority
        .authorize(headers, audience, AcceptedTokens::Any)
        .map(|_| ())
        .map_err(Refusal::Token)
}

/// What one caller can see, worked out once per request and only as far as asked:
/// the partner's own referrals need no scan, so a GET or PATCH of one stays O(1);
/// the engagements that make Microsoft's halves visible are gathered the first
/// time such a referral is asked about.
pub(crate) struct Visibility<'s> {
    store: &'s ReferralStore,
    own_org: &'s str,
    /// Engagements in which the caller sees one of the partner's own referrals.
    engagements: std::cell::OnceCell<HashSet<&'s str>>,
    caller: Caller,
}

impl<'s> Visibility<'s> {
    pub(crate) fn new(store: &'s ReferralStore, own_org: &'s str, caller: &Caller) -> Self {
        Self {
            store,
            own_org,
            engagements: std::cell::OnceCell::new(),
            caller: caller.clone(),
        }
    }

    /// True when the caller may read `r`.
    pub(crate) fn can_read(&self, r: &StoredReferral) -> bool {
        if is_own(r, self.own_org) {
            return team_allows(r, &self.caller);
        }
        let engagements = self.engagements.get_or_init(|| {
            self.store
                .iter()
                .filter(|r| is_own(r, self.own_org) && team_allows(r, &self.caller))
                .filter_map(StoredReferral::engagement_id)
                .collect()
        });
        r.engagement_id().is_some_and(|e| engagements.contains(e))
    }
}

/// True for referrals owned by the partner organization.
pub(crate) fn is_own(r: &StoredReferral, own_org: &str) -> bool {
    r.organization_id()
        .is_some_and(|o| o.eq_ignore_ascii_case(own_org))
}

fn team_allows(r: &StoredReferral, caller: &Caller) -> bool {
    match caller {
        Caller::Admin => true,
        Caller::ReferralUser { email } => r.referral.team.as_ref().is_some_and(|team| {
            team.iter().any(|m| {
                m.email
                    .as_deref()
                    .is_some_and(|e| e.eq_ignore_ascii_case(email))
            })
        }),
    }
}
