//! Listing referrals: the OData options of `GET /v1.0/engagements/referrals`
//! ([`ReferralQuery`]) and the page-at-a-time walk along `@odata.nextLink`
//! ([`ReferralPages`]), bounded so a server that never stops paging cannot keep
//! the reconciler busy forever (partner-center.md §1.4).

use super::{ReferralsClient, ReferralsError, decode_referral};
use chrono::{DateTime, SecondsFormat, Utc};
use refsync_core::{EngagementId, Referral};
use refsync_outbound::ApiRequest;
use serde_json::Value;
use url::Url;

/// The two orderings the service documents (§1.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReferralOrder {
    /// `createdDateTime asc`.
    CreatedAscending,
    /// `createdDateTime desc`.
    CreatedDescending,
    /// `updatedDateTime asc`: what a reconciler walking a watermark wants.
    UpdatedAscending,
    /// `updatedDateTime desc`.
    UpdatedDescending,
}

impl ReferralOrder {
    fn as_odata(self) -> &'static str {
        match self {
            ReferralOrder::CreatedAscending => "createdDateTime asc",
            ReferralOrder::CreatedDescending => "createdDateTime desc",
            ReferralOrder::UpdatedAscending => "updatedDateTime asc",
            ReferralOrder::UpdatedDescending => "updatedDateTime desc",
        }
    }
}

/// `$filter`, `$orderby`, `$top` and `$select` of a list request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReferralQuery {
    filter: Option<String>,
    order: Option<ReferralOrder>,
    top: Option<u32>,
    select: Vec<String>,
}

impl ReferralQuery {
    /// Every referral the caller may read.
    pub fn new() -> Self {
        Self::default()
    }

    /// Referrals updated at or after `since`, oldest change first: the reconciler's pass.
    pub fn updated_since(since: DateTime<Utc>) -> Self {
        Self::new()
            .filter(format!(
                "updatedDateTime ge {}",
                since.to_rfc3339_opts(SecondsFormat::Millis, true)
            ))
            .order_by(ReferralOrder::UpdatedAscending)
    }

    /// The referrals of one engagement (both halves of a co-sell, §1.5).
    pub fn engagement(id: &EngagementId) -> Self {
        // An EngagementId holds no quote, so it needs no OData escaping.
        Self::new().filter(format!("engagementId eq '{id}'"))
    }

    /// Sets `$filter` (OData, e.g. `status eq 'New' and direction eq 'Incoming'`).
    pub fn filter(mut self, filter: impl Into<String>) -> Self {
        self.filter = Some(filter.into());
        self
    }

    /// Sets `$orderby`.
    pub fn order_by(mut self, order: ReferralOrder) -> Self {
        self.order = Some(order);
        self
    }

    /// Sets `$top`: at most this many referrals in all.
    pub fn top(mut self, top: u32) -> Self {
        self.top = Some(top);
        self
    }

    /// Sets `$select` (top-level property names, e.g. `id`, `status`, `eTag`).
    pub fn select<S: Into<String>>(mut self, properties: impl IntoIterator<Item = S>) -> Self {
        self.select = properties.into_iter().map(Into::into).collect();
        self
    }

    pub(super) fn first_request(&self) -> ApiRequest {
        let mut request = ApiRequest::get(super::COLLECTION);
        if let Some(f) = &self.filter {
            request = request.query("$filter", f.clone());
        }
        if let Some(o) = self.order {
            request = request.query("$orderby", o.as_odata());
        }
        if let Some(t) = self.top {
            request = request.query("$top", t.to_string());
        }
        if !self.select.is_empty() {
            request = request.query("$select", self.select.join(","));
        }
        request
    }
}

/// One page of a listing.
#[derive(Debug, Clone)]
pub struct ReferralPage {
    /// The referrals on this page.
    pub referrals: Vec<Referral>,
    /// `@odata.count`, when the service sent it (the whole result's size).
    pub count: Option<u64>,
}

/// A listing walked one page at a time: call [`ReferralPages::next_page`] until it
/// returns `None`.
#[derive(Debug)]
pub struct ReferralPages<'c> {
    client: &'c ReferralsClient,
    next: Option<ApiRequest>,
    pages: usize,
    last_link: Option<String>,
}

impl<'c> ReferralPages<'c> {
    pub(super) fn new(client: &'c ReferralsClient, query: &ReferralQuery) -> Self {
        Self {
            client,
            next: Some(query.first_request()),
            pages: 0,
            last_link: None,
        }
    }

    /// Pages fetched so far.
    pub fn pages_fetched(&self) -> usize {
        self.pages
    }

    /// The next page, or `None` after the last. Fails with
    /// [`ReferralsError::TooManyPages`] rather than fetch more than the client's
    /// page bound, and with [`ReferralsError::Decode`] on a next link that repeats.
    pub async fn next_page(&mut self) -> Result<Option<ReferralPage>, ReferralsError> {
        let Some(request) = self.next.take() else {
            return Ok(None);
        };
        if self.pages >= self.client.max_pages {
            return Err(ReferralsError::TooManyPages {
                max_pages: self.client.max_pages,
            });
        }
        let response = self.client.api.send(request).await?;
        self.pages += 1;
        let body: Value = response.json().map_err(|e| ReferralsError::Decode {
            detail: format!("list page: {e}"),
        })?;
        let items =
            body.get("value")
                .and_then(Value::as_array)
                .ok_or_else(|| ReferralsError::Decode {
                    detail: "list page without a `value` array".to_owned(),
                })?;
        let referrals = items
            .iter()
            .cloned()
            .map(decode_referral)
            .collect::<Result<Vec<_>, _>>()?;
        let count = body.get("@odata.count").and_then(Value::as_u64);
        if let Some(link) = body.get("@odata.nextLink").and_then(Value::as_str) {
            if self.last_link.as_deref() == Some(link) {
                return Err(ReferralsError::Decode {
                    detail: "the service returned the same @odata.nextLink twice".to_owned(),
                });
            }
            let url = self
                .client
                .api
                .base_url()
                .join(link)
                .or_else(|_| Url::parse(link))
                .map_err(|e| ReferralsError::Decode {
                    detail: format!("@odata.nextLink is not a URL: {e}"),
                })?;
            self.next = Some(ApiRequest::to_url(http::Method::GET, url));
            self.last_link = Some(link.to_owned());
        }
        Ok(Some(ReferralPage { referrals, count }))
    }

    /// Every remaining referral (still bounded by the page limit).
    pub async fn collect_all(mut self) -> Result<Vec<Referral>, ReferralsError> {
        let mut all = Vec::new();
        while let Some(page) = self.next_page().await? {
            all.extend(page.referrals);
        }
        Ok(all)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconciler_query_filters_and_orders_by_update_time() {
        let since = DateTime::parse_from_rfc3339("2026-11-23T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let q = ReferralQuery::updated_since(since);
        assert_eq!(
            q.filter.as_deref(),
            Some("updatedDateTime ge 2026-11-23T10:00:00.000Z")
        );
        assert_eq!(q.order, Some(ReferralOrder::UpdatedAscending));
        let e = ReferralQuery::engagement(&EngagementId::parse("65edc0b5-3485").unwrap());
        assert_eq!(e.filter.as_deref(), Some("engagementId eq '65edc0b5-3485'"));
    }
}
