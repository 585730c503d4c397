//! The co-sell Referrals API client (partner-center.md §1):
//! `https://api.partner.microsoft.com/v1.0/engagements/referrals`.
//!
//! - [`ReferralsClient::get`]: one referral, `None` when it does not exist;
//! - [`ReferralsClient::list`]: OData `$filter`/`$orderby`/`$top`/`$select`, walked
//!   page by page along `@odata.nextLink`, bounded ([`ReferralPages`]);
//! - [`ReferralsClient::create`]: with `MS-RequestId`, so a retried create never
//!   makes a second referral (§1.3);
//! - [`ReferralsClient::update`]: JSON Patch with optional `If-Match`; a stale eTag
//!   is [`ReferralsError::PreconditionFailed`], the caller's cue to re-read and
//!   merge again;
//! - [`ReferralsClient::put`]: the obsolete full replacement, kept because the
//!   2019 flow and the Power Platform connector still use it (§1.1).
//!
//! The API takes **App+User tokens only** (§1.2): build the [`ApiClient`] with an
//! [`Entra::refresh_token`](refsync_outbound::Entra::refresh_token) source (or the
//! legacy password grant) for `https://api.partner.microsoft.com`.
//!
//! Every write carries an `MS-RequestId`, reused on each retry, so writes are
//! retried after timeouts and 5xx like reads.

mod query;

pub use query::{ReferralOrder, ReferralPage, ReferralPages, ReferralQuery};

use http::{HeaderName, HeaderValue, StatusCode, header};
use refsync_core::mapping::PatchOp;
use refsync_core::{Etag, Referral, ReferralId};
use refsync_outbound::call::{ApiConfigError, RetryPolicy};
use refsync_outbound::{ApiClient, ApiConfig, ApiRequest, CallError, TokenSource};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use url::Url;
use uuid::Uuid;

/// The Referrals API's host (the "Pricing and Referrals" host, §1.1).
pub const DEFAULT_BASE_URL: &str = "https://api.partner.microsoft.com";
/// The collection path under the base URL.
pub const COLLECTION: &str = "v1.0/engagements/referrals";
/// Pages followed by one listing at most, by default: 1000 pages of up to 100
/// referrals (the 2019 maximum page size, §1.4) covers any realistic partner.
pub const DEFAULT_MAX_PAGES: usize = 1000;

const PREFER: HeaderName = HeaderName::from_static("prefer");

/// Why a Referrals API call failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ReferralsError {
    /// `If-Match` named an older version (412): re-read both sides and merge again.
    #[error("referral {id}: the eTag is no longer current (412); re-read and merge again")]
    PreconditionFailed {
        /// The referral.
        id: ReferralId,
    },
    /// The referral to update does not exist (404).
    #[error("referral {id} does not exist")]
    NotFound {
        /// The referral.
        id: ReferralId,
    },
    /// The listing has more pages than the client follows.
    #[error("the listing has more than {max_pages} pages; narrow the $filter")]
    TooManyPages {
        /// The bound.
        max_pages: usize,
    },
    /// The service answered with something that is not a referral (or a page of them).
    #[error("unexpected Referrals API response: {detail}")]
    Decode {
        /// What was wrong.
        detail: String,
    },
    /// The call failed (transport, timeout, throttling, token, or another status).
    #[error(transparent)]
    Call(#[from] CallError),
}

impl ReferralsError {
    /// True when the same call may succeed later without changes.
    pub fn is_transient(&self) -> bool {
        match self {
            ReferralsError::Call(e) => e.is_transient(),
            _ => false,
        }
    }
}

/// The Referrals API.
#[derive(Debug, Clone)]
pub struct ReferralsClient {
    api: ApiClient,
    max_pages: usize,
}

impl ReferralsClient {
    /// The call policy refsync uses for this API: 30 s per attempt, the default
    /// retries, `MS-CorrelationId` per call.
    pub fn default_api_config(base_url: Url) -> ApiConfig {
        ApiConfig::new("partner-center-referrals", base_url)
            .with_timeout(Duration::from_secs(30))
            .with_retry(RetryPolicy::default())
    }

    /// A client over `api` (whose token source must give App+User tokens for
    /// `https://api.partner.microsoft.com`).
    pub fn new(api: ApiClient) -> Self {
        Self {
            api,
            max_pages: DEFAULT_MAX_PAGES,
        }
    }

    /// A client for `base_url` with [`ReferralsClient::default_api_config`].
    pub fn connect(base_url: Url, tokens: Arc<dyn TokenSource>) -> Result<Self, ApiConfigError> {
        Ok(Self::new(ApiClient::new(
            Self::default_api_config(base_url),
            Some(tokens),
        )?))
    }

    /// Sets how many pages one listing follows at most.
    pub fn with_max_pages(mut self, max_pages: usize) -> Self {
        self.max_pages = max_pages.max(1);
        self
    }

    /// The underlying API client.
    pub fn api(&self) -> &ApiClient {
        &self.api
    }

    fn item_path(id: &ReferralId) -> String {
        // A ReferralId holds only letters, digits and `-_.`: safe in a path as is.
        format!("{COLLECTION}/{id}")
    }

    /// One referral; `None` when the service answers 404.
    pub async fn get(&self, id: &ReferralId) -> Result<Option<Referral>, ReferralsError> {
        match self.api.send(ApiRequest::get(Self::item_path(id))).await {
            Ok(response) => Ok(Some(decode_body(&response.body)?)),
            Err(e) if e.status() == Some(StatusCode::NOT_FOUND) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Lists referrals matching `query`, one page at a time.
    pub fn list(&self, query: &ReferralQuery) -> ReferralPages<'_> {
        ReferralPages::new(self, query)
    }

    /// Creates a referral with a fresh `MS-RequestId`.
    pub async fn create(&self, referral: &Referral) -> Result<Referral, ReferralsError> {
        self.create_with_request_id(referral, Uuid::new_v4()).await
    }

    /// Creates a referral with `request_id` as its `MS-RequestId`. Keep the id across
    /// the work queue's own retries of one create: the service answers a repeat
    /// with the referral the first request made.
    pub async fn create_with_request_id(
        &self,
        referral: &Referral,
        request_id: Uuid,
    ) -> Result<Referral, ReferralsError> {
        let request = ApiRequest::post(COLLECTION)
            .json(referral)
            .map_err(|e| ReferralsError::Decode {
                detail: format!("referral body: {e}"),
            })?
            .request_id(request_id);
        let response = self.api.send(request).await?;
        decode_body(&response.body)
    }

    /// Applies JSON Patch `ops` (`add`/`replace` only, §1.1). With `if_match` the
    /// update happens only if the referral is still at that version; a stale tag is
    /// [`ReferralsError::PreconditionFailed`]. With `return_representation` the
    /// updated referral is returned (`Prefer: return=representation`); otherwise
    /// the service answers 204 and this returns `None`.
    pub async fn update(
        &self,
        id: &ReferralId,
        ops: &[PatchOp],
        if_match: Option<&Etag>,
        return_representation: bool,
    ) -> Result<Option<Referral>, ReferralsError> {
        let mut request = ApiRequest::patch(Self::item_path(id))
            .json(ops)
            .map_err(|e| ReferralsError::Decode {
                detail: format!("patch body: {e}"),
            })?
            .request_id(Uuid::new_v4());
        if let Some(tag) = if_match {
            request = request.header(header::IF_MATCH, etag_header(tag)?);
        }
        if return_representation {
            request = request.header(PREFER, HeaderValue::from_static("return=representation"));
        }
        let response = self
            .api
            .send(request)
            .await
            .map_err(|e| write_error(id, e))?;
        if response.status == StatusCode::NO_CONTENT || response.body.is_empty() {
            return Ok(None);
        }
        decode_body(&response.body).map(Some)
    }

    /// **Obsolete** (§1.1: replaced by PATCH in 2020): replaces the whole referral,
    /// which must carry its id, at version `etag`.
    pub async fn put(&self, referral: &Referral, etag: &Etag) -> Result<Referral, ReferralsError> {
        let id = referral.id.clone().ok_or_else(|| ReferralsError::Decode {
            detail: "a referral to PUT needs its id".to_owned(),
        })?;
        let request = ApiRequest::put(Self::item_path(&id))
            .json(referral)
            .map_err(|e| ReferralsError::Decode {
                detail: format!("referral body: {e}"),
            })?
            .header(header::IF_MATCH, etag_header(etag)?)
            .request_id(Uuid::new_v4());
        let response = self
            .api
            .send(request)
            .await
            .map_err(|e| write_error(&id, e))?;
        decode_body(&response.body)
    }
}

/// The eTag exactly as the referral carried it (quotes included), as the 2019 flow
/// sent it; whether the service wants the quotes is unconfirmed (§1.5), and both
/// forms are accepted by the emulator.
fn etag_header(tag: &Etag) -> Result<HeaderValue, ReferralsError> {
    HeaderValue::from_str(tag.as_str()).map_err(|_| ReferralsError::Decode {
        detail: "the eTag holds characters a header cannot carry".to_owned(),
    })
}

fn write_error(id: &ReferralId, e: CallError) -> ReferralsError {
    match e.status() {
        Some(StatusCode::PRECONDITION_FAILED) => {
            ReferralsError::PreconditionFailed { id: id.clone() }
        }
        Some(StatusCode::NOT_FOUND) => ReferralsError::NotFound { id: id.clone() },
        _ => ReferralsError::Call(e),
    }
}

fn decode_body(body: &[u8]) -> Result<Referral, ReferralsError> {
    // Straight from the bytes: a `Value` first would build and drop a second tree.
    without_annotations(serde_json::from_slice(body))
}

/// A referral from its JSON, without the `@odata.*` annotations (which would
/// otherwise be kept among the unknown fields and sent back on a PUT).
pub(crate) fn decode_referral(value: Value) -> Result<Referral, ReferralsError> {
    without_annotations(serde_json::from_value(value))
}

/// The decoded referral, less the `@odata.*` annotations its unknown-field
/// catch-all picked up.
fn without_annotations(decoded: serde_json::Result<Referral>) -> Result<Referral, ReferralsError> {
    let mut referral = decoded.map_err(|e| ReferralsError::Decode {
        detail: format!("referral: {e}"),
    })?;
    referral.extra.retain(|k, _| !k.starts_with("@odata."));
    Ok(referral)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn odata_annotations_are_not_kept_from_bytes_either() {
        let body = br#"{"@odata.context":"x","@odata.etag":"y","id":"r-1","somethingNew":1}"#;
        let r = decode_body(body).unwrap();
        assert_eq!(r.id.unwrap().as_str(), "r-1");
        assert!(r.extra.contains_key("somethingNew"));
        assert!(!r.extra.keys().any(|k| k.starts_with("@odata")));
    }

    #[test]
    fn odata_annotations_are_not_kept() {
        let r = decode_referral(json!({
            "@odata.context": "https://api.partner.microsoft.com/v1.0/engagements/referrals/$metadata#Referrals/$entity",
            "id": "r-1",
            "eTag": "\"7\"",
            "somethingNew": 1
        }))
        .unwrap();
        assert_eq!(r.id.unwrap().as_str(), "r-1");
        assert!(r.extra.contains_key("somethingNew"));
        assert!(!r.extra.keys().any(|k| k.starts_with("@odata")));
    }

    #[test]
    fn stale_and_missing_writes_have_their_own_errors() {
        let id = ReferralId::parse("r-1").unwrap();
        let context = refsync_outbound::call::CallContext {
            api: "x".into(),
            method: http::Method::PATCH,
            path: "/p".into(),
        };
        let status = |s: u16| CallError::Status {
            context: Box::new(context.clone()),
            status: StatusCode::from_u16(s).unwrap(),
            code: None,
            message: None,
            excerpt: String::new(),
            retry_after: None,
            attempts: 1,
        };
        assert!(matches!(
            write_error(&id, status(412)),
            ReferralsError::PreconditionFailed { .. }
        ));
        assert!(matches!(
            write_error(&id, status(404)),
            ReferralsError::NotFound { .. }
        ));
        assert!(matches!(
            write_error(&id, status(400)),
            ReferralsError::Call(_)
        ));
    }
}
