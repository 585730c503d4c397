//! The Referrals API operations (partner-center.md §1.1), below HTTP: list, get,
//! create, PATCH and the obsolete PUT, each for an authenticated [`Caller`].

use super::access::{Caller, Visibility, is_own};
use super::error::ApiError;
use super::lifecycle::{self, NewIdentity, Owner, apply_update, parse_referral_body, typed};
use super::patch::{apply_patch, parse_patch};
use super::query::{list_page, parse_list_query};
use super::store::StoredReferral;
use super::{Change, EmulatorState, PartnerCenterEmulator};
use crate::odata::EvalOptions;
use axum::http::StatusCode;
use refsync_core::Referral;
use refsync_core::ids::{EngagementId, ReferralId};
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Map, Value, json};

impl PartnerCenterEmulator {
    pub(crate) fn owner(&self) -> Owner<'_> {
        Owner {
            organization_id: &self.config().partner.organization_id,
            organization_name: &self.config().partner.organization_name,
            api_base: self.base_url(),
        }
    }

    fn eval_options(&self) -> EvalOptions {
        EvalOptions {
            case_insensitive: self.config().filter_case_insensitive,
            ..EvalOptions::PARTNER_CENTER
        }
    }

    /// `GET /v1.0/engagements/referrals`: one page, in the documented envelope.
    pub(crate) fn list_referrals(
        &self,
        caller: &Caller,
        query: Option<&str>,
    ) -> Result<Value, ApiError> {
        let request = parse_list_query(query)?;
        let state = self.state();
        let visibility = Visibility::new(&state.store, self.owner().organization_id, caller);
        let page = list_page(
            &state.store,
            &visibility,
            &request,
            self.config().page_size,
            &self.eval_options(),
        );
        let collection = format!("{}/v1.0/engagements/referrals", self.base_url());
        let mut body = Map::new();
        body.insert(
            "@odata.context".to_owned(),
            json!(format!("{collection}/$metadata#Referrals")),
        );
        body.insert("@odata.count".to_owned(), json!(page.count));
        body.insert("value".to_owned(), Value::Array(page.value));
        if let Some(token) = page.next_token {
            body.insert(
                "@odata.nextLink".to_owned(),
                json!(format!("{collection}?$skiptoken={token}")),
            );
        }
        Ok(Value::Object(body))
    }

    /// Finds a referral the caller may read.
    fn readable<'s>(
        &self,
        state: &'s EmulatorState,
        caller: &Caller,
        id: &str,
    ) -> Result<&'s StoredReferral, ApiError> {
        let visibility = Visibility::new(&state.store, self.owner().organization_id, caller);
        state
            .store
            .get(id)
            .filter(|r| visibility.can_read(r))
            .ok_or_else(|| ApiError::referral_not_found(id))
    }

    /// Finds a referral the caller may change.
    fn writable<'s>(
        &self,
        state: &'s EmulatorState,
        caller: &Caller,
        id: &str,
    ) -> Result<&'s StoredReferral, ApiError> {
        let stored = self.readable(state, caller, id)?;
        if !caller.may_write() {
            return Err(ApiError::forbidden(
                "A Referral User can only read referrals; changing them needs the Referral Admin role.",
            ));
        }
        if !is_own(stored, self.owner().organization_id) {
            return Err(ApiError::forbidden(format!(
                "Referral '{id}' belongs to another organization and cannot be changed."
            )));
        }
        Ok(stored)
    }

    /// `GET /v1.0/engagements/referrals/{id}`, with the sample's `@odata.context`:
    /// the response body, written straight from the stored referral (no copy of
    /// it is made under the state lock every request waits on).
    pub(crate) fn get_referral(&self, caller: &Caller, id: &str) -> Result<Vec<u8>, ApiError> {
        let context = format!(
            "{}/v1.0/engagements/referrals/$metadata#Referrals/$entity",
            self.base_url()
        );
        let state = self.state();
        let stored = self.readable(&state, caller, id)?;
        let body = WithContext {
            context: &context,
            value: &stored.value,
        };
        serde_json::to_vec(&body).map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("The referral could not be written: {e}"),
            )
        })
    }

    /// `POST /v1.0/engagements/referrals`. Naming an existing `engagementId` adds the
    /// referral to that engagement: the documented second step of a shared co-sell
    /// ("POST a second referral for Microsoft with the same engagementId", §1.5).
    pub(crate) fn create_referral(&self, caller: &Caller, body: Value) -> Result<Value, ApiError> {
        if !caller.may_write() {
            return Err(ApiError::forbidden(
                "Creating referrals needs the Referral Admin role.",
            ));
        }
        let referral = parse_referral_body(body)?;
        let now = self.now();
        let mut state = self.state();
        let engagement_id = match &referral.engagement_id {
            Some(eid) => {
                let visibility =
                    Visibility::new(&state.store, self.owner().organization_id, caller);
                let known = state
                    .store
                    .engagement(eid.as_str())
                    .iter()
                    .filter_map(|id| state.store.get(id))
                    .any(|r| visibility.can_read(r));
                if !known {
                    return Err(ApiError::bad_request(format!(
                        "No engagement with id '{eid}'; omit engagementId to start a new one."
                    ))
                    .with_data([json!("engagementId")]));
                }
                eid.clone()
            }
            None => new_engagement_id()?,
        };
        let identity = NewIdentity {
            id: new_referral_id()?,
            engagement_id,
            etag: state.store.next_etag(now),
            now,
        };
        let referral = lifecycle::new_partner_referral(referral, self.owner(), identity)?;
        Ok(self.insert_and_emit(&mut state, referral, now))
    }

    /// Stores a new referral and raises its event; returns its JSON.
    pub(crate) fn insert_and_emit(
        &self,
        state: &mut EmulatorState,
        referral: Referral,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Value {
        let stored = state.store.insert(referral);
        let (id, value) = (stored.id().to_owned(), stored.value.clone());
        self.emit(
            state,
            &[Change {
                id,
                created: true,
                at: now,
            }],
        );
        value
    }

    /// Stores an updated version of a referral (checked by
    /// [`lifecycle::apply_update`]): new eTag and `updatedDateTime`, event raised.
    /// Returns the referral as stored (unchanged when nothing changed).
    pub(crate) fn store_update(
        &self,
        state: &mut EmulatorState,
        current: &Referral,
        updated: Referral,
    ) -> Result<Value, ApiError> {
        let now = self.now();
        let Some(mut updated) = apply_update(current, updated, now)? else {
            return Ok(current.to_value());
        };
        updated.e_tag = Some(state.store.next_etag(now));
        updated.updated_date_time = Some(now);
        let Some(stored) = state.store.replace(updated) else {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "The referral disappeared during the update.",
            ));
        };
        let (id, value) = (stored.id().to_owned(), stored.value.clone());
        self.emit(
            state,
            &[Change {
                id,
                created: false,
                at: now,
            }],
        );
        Ok(value)
    }

    /// `PATCH /v1.0/engagements/referrals/{id}` with a JSON Patch body; `If-Match` optional.
    pub(crate) fn patch_referral(
        &self,
        caller: &Caller,
        id: &str,
        body: &Value,
        if_match: Option<&str>,
    ) -> Result<Value, ApiError> {
        let mut state = self.state();
        let stored = self.writable(&state, caller, id)?;
        check_if_match(stored, if_match)?;
        let operations = parse_patch(body)?;
        let mut document = stored.value.clone();
        apply_patch(&mut document, &operations)?;
        let Value::Object(object) = document else {
            return Err(ApiError::bad_request(
                "The patched referral is not an object.",
            ));
        };
        let updated = typed(object)?;
        let current = stored.referral.clone();
        self.store_update(&mut state, &current, updated)
    }

    /// The obsolete `PUT /v1.0/engagements/referrals/{id}`: the whole referral, and
    /// `If-Match` is mandatory ("Be sure to set the If-Match header", §1.1). A
    /// missing `If-Match` is answered 400, within the documented 400-416 range,
    /// rather than 428.
    pub(crate) fn put_referral(
        &self,
        caller: &Caller,
        id: &str,
        body: Value,
        if_match: Option<&str>,
    ) -> Result<Value, ApiError> {
        let mut state = self.state();
        let stored = self.writable(&state, caller, id)?;
        let Some(if_match) = if_match else {
            return Err(ApiError::bad_request(
                "The If-Match header is required to update a referral with PUT.",
            )
            .with_data([json!("If-Match")]));
        };
        check_if_match(stored, Some(if_match))?;
        let updated = parse_referral_body(body)?;
        let current = stored.referral.clone();
        self.store_update(&mut state, &current, updated)
    }
}

/// 412 when `If-Match` names another version. The header is compared with the
/// quotes or without them (the format is unconfirmed, §1.5), and `*` matches.
fn check_if_match(stored: &StoredReferral, if_match: Option<&str>) -> Result<(), ApiError> {
    let (Some(sent), Some(current)) = (if_match, stored.referral.e_tag.as_ref()) else {
        return Ok(());
    };
    if current.matches(sent) {
        Ok(())
    } else {
        Err(ApiError::etag_mismatch(sent, current.as_str()))
    }
}

fn id_error(e: refsync_core::ids::IdError) -> ApiError {
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
}

pub(crate) fn new_referral_id() -> Result<ReferralId, ApiError> {
    ReferralId::parse(uuid::Uuid::new_v4().to_string()).map_err(id_error)
}

pub(crate) fn new_engagement_id() -> Result<EngagementId, ApiError> {
    EngagementId::parse(uuid::Uuid::new_v4().to_string()).map_err(id_error)
}

/// A stored referral with `@odata.context` first, serialized without copying it.
struct WithContext<'a> {
    context: &'a str,
    value: &'a Value,
}

impl Serialize for WithContext<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut object = serializer.serialize_map(None)?;
        object.serialize_entry("@odata.context", self.context)?;
        if let Value::Object(fields) = self.value {
            for (name, value) in fields {
                object.serialize_entry(name, value)?;
            }
        }
        object.end()
    }
}
