//! The rules a referral's life follows, independent of HTTP: what a create or an
//! update must contain, which fields the server owns, how status changes are
//! checked (`refsync_core::status`) and which dates they stamp.
//!
//! Pure: time and identifiers are passed in.

use super::error::ApiError;
use chrono::{DateTime, Utc};
use refsync_core::ids::{EngagementId, Etag, ReferralId};
use refsync_core::referral::{Link, ReferralDirection, ReferralLinks, ReferralType};
use refsync_core::status::{StatusError, check_combination, check_transition};
use refsync_core::{Referral, ReferralStatus, ReferralSubstatus, StatusPair};
use serde_json::{Map, Value, json};

/// Properties a create or a full update must carry (partner-center.md §1.5,
/// "Required fields on create").
pub(crate) const REQUIRED: [&str; 4] = ["type", "customerProfile", "consent", "details"];

/// Properties only the server writes. A PATCH touching one is refused; a PUT's
/// values for them are ignored.
pub(crate) const SERVER_OWNED: [&str; 11] = [
    "id",
    "engagementId",
    "eTag",
    "createdDateTime",
    "updatedDateTime",
    "organizationId",
    "organizationName",
    "direction",
    "links",
    "acceptedDateTime",
    "closedDateTime",
];

/// Who owns the referrals partners create, and where links point.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Owner<'a> {
    /// Our organization id.
    pub organization_id: &'a str,
    /// Our organization name.
    pub organization_name: &'a str,
    /// Base URL of the Referrals API, without a trailing `/`.
    pub api_base: &'a str,
}

/// Reads a request body as a referral: an object with the required properties, of
/// the right types. OData annotations (`@odata.context` of a GET echoed back) are dropped.
pub(crate) fn parse_referral_body(value: Value) -> Result<Referral, ApiError> {
    let Value::Object(mut object) = value else {
        return Err(ApiError::bad_request(
            "The request body must be a referral (a JSON object).",
        ));
    };
    object.retain(|k, _| !k.starts_with("@odata."));
    let missing: Vec<&str> = REQUIRED
        .iter()
        .copied()
        .filter(|name| object.get(*name).is_none_or(Value::is_null))
        .collect();
    if !missing.is_empty() {
        return Err(ApiError::bad_request(format!(
            "The referral is missing required properties: {}.",
            missing.join(", ")
        ))
        .with_data(missing.iter().map(|m| Value::String((*m).to_owned()))));
    }
    let referral = typed(object)?;
    if let Some(ReferralType::Other(t)) = &referral.referral_type {
        return Err(ApiError::bad_request(format!(
            "'{t}' is not a referral type; expected Shared or Independent."
        ))
        .with_data([json!("type")]));
    }
    Ok(referral)
}

/// Types a JSON object as a referral, naming the serde complaint in a 400.
pub(crate) fn typed(object: Map<String, Value>) -> Result<Referral, ApiError> {
    serde_json::from_value::<Referral>(Value::Object(object)).map_err(|e| {
        ApiError::bad_request(format!("The referral is not valid: {e}."))
            .with_data([Value::String(e.to_string())])
    })
}

fn status_error(e: &StatusError) -> ApiError {
    ApiError::bad_request(format!("Invalid status change: {e}."))
        .with_data([json!("status"), json!("substatus")])
}

/// The status pair a body asks for: both or neither, and a documented combination.
fn requested_status(referral: &Referral) -> Result<Option<StatusPair>, ApiError> {
    match (&referral.status, &referral.substatus) {
        (None, None) => Ok(None),
        (Some(status), Some(substatus)) => {
            let pair = StatusPair::new(status.clone(), substatus.clone());
            check_combination(&pair).map_err(|e| status_error(&e))?;
            Ok(Some(pair))
        }
        _ => Err(
            ApiError::bad_request("status and substatus must be given together.")
                .with_data([json!("status"), json!("substatus")]),
        ),
    }
}

/// The links the service puts on a referral (§1.5 sample).
pub(crate) fn links(api_base: &str, id: &ReferralId, engagement: &EngagementId) -> ReferralLinks {
    let link = |uri: String| Link {
        uri: Some(uri),
        method: Some("GET".to_owned()),
        extra: Map::new(),
    };
    ReferralLinks {
        related_referrals: Some(link(format!(
            "{api_base}/v1.0/engagements/referrals?$filter=engagementId eq '{engagement}'"
        ))),
        self_link: Some(link(format!("{api_base}/v1.0/engagements/referrals/{id}"))),
        extra: Map::new(),
    }
}

/// Identity and time of a new referral, chosen by the server.
#[derive(Debug, Clone)]
pub(crate) struct NewIdentity {
    pub id: ReferralId,
    pub engagement_id: EngagementId,
    pub etag: Etag,
    pub now: DateTime<Utc>,
}

/// A referral a partner creates through the API: ours, outgoing, with the server's
/// fields set. A valid requested status is kept (the documented create sample sends
/// Closed/Won); without one it starts Active/Accepted, and `acceptedDateTime` is the
/// creation time ("for outgoing referrals, it's same date as referral creation", 2024 docs).
pub(crate) fn new_partner_referral(
    mut referral: Referral,
    owner: Owner<'_>,
    identity: NewIdentity,
) -> Result<Referral, ApiError> {
    let pair = requested_status(&referral)?.unwrap_or_else(StatusPair::accepted);
    referral.status = Some(pair.status.clone());
    referral.substatus = Some(pair.substatus.clone());
    referral.organization_id = Some(owner.organization_id.to_owned());
    referral.organization_name = Some(owner.organization_name.to_owned());
    referral.direction = Some(ReferralDirection::Outgoing);
    referral.accepted_date_time = Some(identity.now);
    referral.closed_date_time = (pair.status == ReferralStatus::Closed).then_some(identity.now);
    Ok(stamp_identity(referral, owner.api_base, identity))
}

/// A referral created as Microsoft (control API): owner, direction and status as
/// given (defaults: New/Pending), server fields set; an incoming New referral
/// expires after the documented 14 days (§1.1).
pub(crate) fn new_microsoft_referral(
    mut referral: Referral,
    api_base: &str,
    identity: NewIdentity,
) -> Result<Referral, ApiError> {
    let pair = requested_status(&referral)?.unwrap_or_else(StatusPair::new_pending);
    referral.status = Some(pair.status.clone());
    referral.substatus = Some(pair.substatus.clone());
    if referral.direction.is_none() {
        referral.direction = Some(ReferralDirection::Incoming);
    }
    let now = identity.now;
    referral.accepted_date_time = None;
    referral.closed_date_time = None;
    stamp_status_dates(&mut referral, None, now);
    if pair.status == ReferralStatus::New && referral.direction == Some(ReferralDirection::Incoming)
    {
        referral.expiration_date_time = Some(now + chrono::Duration::days(14));
    }
    Ok(stamp_identity(referral, api_base, identity))
}

fn stamp_identity(mut referral: Referral, api_base: &str, identity: NewIdentity) -> Referral {
    referral.links = Some(links(api_base, &identity.id, &identity.engagement_id));
    referral.id = Some(identity.id);
    referral.engagement_id = Some(identity.engagement_id);
    referral.created_date_time = Some(identity.now);
    referral.updated_date_time = Some(identity.now);
    referral.e_tag = Some(identity.etag);
    referral
}

/// `acceptedDateTime` when a referral is first accepted (or closed as won or lost,
/// which implies it), `closedDateTime` when it first closes.
fn stamp_status_dates(referral: &mut Referral, before: Option<&StatusPair>, now: DateTime<Utc>) {
    let Some(pair) = referral.status_pair() else {
        return;
    };
    let accepted = pair.status == ReferralStatus::Active
        || matches!(
            pair.substatus,
            ReferralSubstatus::Won | ReferralSubstatus::Lost
        );
    if accepted && referral.accepted_date_time.is_none() {
        referral.accepted_date_time = Some(now);
    }
    let was_closed = before.is_some_and(|b| b.status == ReferralStatus::Closed);
    if pair.status == ReferralStatus::Closed && !was_closed {
        referral.closed_date_time = Some(now);
    }
}

/// Checks `updated` (a whole new version of `current`, from a PATCH, a PUT or the
/// control API) and prepares it for storage: server-owned fields come from
/// `current`, a missing status is kept, status moves only along the documented
/// transitions, and the status dates are stamped. `None` when nothing changed.
/// The caller sets the new eTag and `updatedDateTime`.
pub(crate) fn apply_update(
    current: &Referral,
    mut updated: Referral,
    now: DateTime<Utc>,
) -> Result<Option<Referral>, ApiError> {
    for name in REQUIRED {
        let present = match name {
            "type" => updated.referral_type.is_some(),
            "customerProfile" => updated.customer_profile.is_some(),
            "consent" => updated.consent.is_some(),
            _ => updated.details.is_some(),
        };
        if !present {
            return Err(ApiError::bad_request(format!(
                "The referral would lose the required property {name}."
            ))
            .with_data([json!(name)]));
        }
    }
    if let Some(ReferralType::Other(t)) = &updated.referral_type {
        return Err(ApiError::bad_request(format!(
            "'{t}' is not a referral type; expected Shared or Independent."
        ))
        .with_data([json!("type")]));
    }
    updated.id.clone_from(&current.id);
    updated.engagement_id.clone_from(&current.engagement_id);
    updated.e_tag.clone_from(&current.e_tag);
    updated.created_date_time = current.created_date_time;
    updated.updated_date_time = current.updated_date_time;
    updated.organization_id.clone_from(&current.organization_id);
    updated
        .organization_name
        .clone_from(&current.organization_name);
    updated.direction.clone_from(&current.direction);
    updated.links.clone_from(&current.links);
    updated.accepted_date_time = current.accepted_date_time;
    updated.closed_date_time = current.closed_date_time;
    updated.extra.retain(|k, _| !k.starts_with("@odata."));
    if updated.status.is_none() && updated.substatus.is_none() {
        updated.status.clone_from(&current.status);
        updated.substatus.clone_from(&current.substatus);
    }
    let before = current.status_pair();
    let after = requested_status(&updated)?;
    if after != before {
        match (&before, &after) {
            (Some(from), Some(to)) => check_transition(from, to).map_err(|e| status_error(&e))?,
            (None, Some(to)) => check_combination(to).map_err(|e| status_error(&e))?,
            (_, None) => {
                return Err(
                    ApiError::bad_request("status and substatus cannot be removed.")
                        .with_data([json!("status"), json!("substatus")]),
                );
            }
        }
    }
    stamp_status_dates(&mut updated, before.as_ref(), now);
    if &updated == current {
        return Ok(None);
    }
    Ok(Some(updated))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body() -> Value {
        json!({
            "name": "Fabrikam - Azure",
            "type": "Shared",
            "customerProfile": {"name": "Fabrikam", "address": {"country": "US"}},
            "consent": {"consentToContact": true},
            "details": {"dealValue": 1000, "currency": "USD"},
            "futureField": {"kept": true}
        })
    }

    fn identity() -> NewIdentity {
        NewIdentity {
            id: ReferralId::parse("r-1").unwrap(),
            engagement_id: EngagementId::parse("e-1").unwrap(),
            etag: Etag::new("\"v1\""),
            now: Utc::now(),
        }
    }

    const OWNER: Owner<'static> = Owner {
        organization_id: "org-1",
        organization_name: "Contoso",
        api_base: "http://pc",
    };

    #[test]
    fn missing_required_properties_are_named() {
        let mut b = body();
        b.as_object_mut().unwrap().remove("consent");
        b["details"] = Value::Null;
        let e = parse_referral_body(b).unwrap_err();
        assert!(
            e.description.contains("consent, details"),
            "{}",
            e.description
        );
        assert_eq!(e.data, vec![json!("consent"), json!("details")]);
    }

    #[test]
    fn wrong_types_and_unknown_referral_types_are_400() {
        let mut b = body();
        b["details"]["dealValue"] = json!("a lot");
        assert!(parse_referral_body(b).is_err());
        let mut b = body();
        b["type"] = json!("Secret");
        assert!(
            parse_referral_body(b)
                .unwrap_err()
                .description
                .contains("Secret")
        );
        assert!(parse_referral_body(json!([1])).is_err());
    }

    #[test]
    fn a_partner_referral_starts_accepted_and_keeps_unknown_fields() {
        let r = parse_referral_body(body()).unwrap();
        let r = new_partner_referral(r, OWNER, identity()).unwrap();
        assert_eq!(r.status_pair(), Some(StatusPair::accepted()));
        assert_eq!(r.accepted_date_time, r.created_date_time);
        assert_eq!(r.direction, Some(ReferralDirection::Outgoing));
        assert_eq!(r.organization_id.as_deref(), Some("org-1"));
        assert_eq!(r.extra["futureField"], json!({"kept": true}));
        let links = r.links.unwrap();
        assert_eq!(
            links.self_link.unwrap().uri.unwrap(),
            "http://pc/v1.0/engagements/referrals/r-1"
        );
    }

    #[test]
    fn a_requested_closed_won_is_kept_and_stamped() {
        let mut b = body();
        b["status"] = json!("Closed");
        b["substatus"] = json!("Won");
        let r = new_partner_referral(parse_referral_body(b).unwrap(), OWNER, identity()).unwrap();
        assert_eq!(
            r.status_pair(),
            Some(StatusPair::closed(ReferralSubstatus::Won))
        );
        assert!(r.closed_date_time.is_some());
        let mut b = body();
        b["status"] = json!("Closed");
        b["substatus"] = json!("Pending");
        assert!(new_partner_referral(parse_referral_body(b).unwrap(), OWNER, identity()).is_err());
        let mut b = body();
        b["status"] = json!("Closed");
        assert!(new_partner_referral(parse_referral_body(b).unwrap(), OWNER, identity()).is_err());
    }

    fn stored() -> Referral {
        let mut b = body();
        b["status"] = json!("New");
        b["substatus"] = json!("Pending");
        new_microsoft_referral(parse_referral_body(b).unwrap(), "http://pc", identity()).unwrap()
    }

    #[test]
    fn updates_follow_the_transitions_and_stamp_dates() {
        let current = stored();
        assert!(current.expiration_date_time.is_some());
        let mut active = current.clone();
        active.status = Some(ReferralStatus::Active);
        active.substatus = Some(ReferralSubstatus::Accepted);
        let now = Utc::now();
        let active = apply_update(&current, active, now).unwrap().unwrap();
        assert_eq!(active.accepted_date_time, Some(now));
        let mut back = active.clone();
        back.status = Some(ReferralStatus::New);
        back.substatus = Some(ReferralSubstatus::Pending);
        let e = apply_update(&active, back, now).unwrap_err();
        assert!(
            e.description.contains("cannot change from Active to New"),
            "{}",
            e.description
        );
        let mut won = active.clone();
        won.status = Some(ReferralStatus::Closed);
        won.substatus = Some(ReferralSubstatus::Won);
        let won = apply_update(&active, won, now).unwrap().unwrap();
        assert_eq!(won.closed_date_time, Some(now));
    }

    #[test]
    fn server_fields_win_and_no_change_is_none() {
        let current = stored();
        let mut sneaky = current.clone();
        sneaky.organization_id = Some("someone-else".into());
        sneaky.id = Some(ReferralId::parse("other").unwrap());
        assert_eq!(apply_update(&current, sneaky, Utc::now()).unwrap(), None);
        let mut renamed = current.clone();
        renamed.name = Some("New name".into());
        renamed.status = None;
        renamed.substatus = None;
        let out = apply_update(&current, renamed, Utc::now())
            .unwrap()
            .unwrap();
        assert_eq!(out.status, current.status);
        assert_eq!(out.id, current.id);
    }
}
