//! The list operation's query options and paging (partner-center.md §1.4).
//!
//! `$filter` (any property of the referral, `any`/`all` over collections, the
//! documented examples and date-time comparisons), `$orderby` on `createdDateTime`
//! and `updatedDateTime`, `$top`, `$skip`, `$select` and `$count`. Pages hold at most
//! `page_size` referrals; the rest of a result (or of a larger `$top`) is reached
//! through `@odata.nextLink`, whose `$skiptoken` is an opaque keyset cursor that
//! carries the query: the sort key and creation number of the last referral
//! served. Paging therefore needs no server-side snapshot and stays stable while
//! referrals change: a referral is never served twice unless it moved past the
//! cursor by changing its sort key (an update under `$orderby=updatedDateTime`),
//! and none that stayed in place is skipped.

use super::access::Visibility;
use super::error::ApiError;
use super::store::{ReferralStore, StoredReferral};
use crate::odata::{self, EvalOptions, Expr, OrderBy, Select};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::cmp::Ordering;

/// Every top-level property of the referral resource (§1.5): what `$filter` and
/// `$select` may name.
const PROPERTIES: [&str; 36] = [
    "id",
    "engagementId",
    "name",
    "organizationId",
    "organizationName",
    "externalReferenceId",
    "createdDateTime",
    "updatedDateTime",
    "expirationDateTime",
    "acceptedDateTime",
    "closedDateTime",
    "status",
    "substatus",
    "statusReason",
    "type",
    "qualification",
    "direction",
    "referralSource",
    "callToAction",
    "customerMarketplaceIntent",
    "referralProgram",
    "salesStage",
    "partnerRole",
    "solutionArea",
    "solutionPlay",
    "customerProfile",
    "consent",
    "details",
    "team",
    "inviteContext",
    "eTag",
    "target",
    "links",
    "trackingInfo",
    "tags",
    "registrations",
];

/// The properties `$orderby` accepts (§1.4).
const ORDERABLE: [&str; 2] = ["createdDateTime", "updatedDateTime"];

/// A parsed list request (first page or continuation).
#[derive(Debug, Clone, Default)]
pub(crate) struct ListRequest {
    filter_text: Option<String>,
    filter: Option<Expr>,
    orderby_text: Option<String>,
    orderby: Option<OrderBy>,
    select_text: Option<String>,
    select: Option<Select>,
    top: Option<usize>,
    skip: usize,
    after: Option<Cursor>,
}

/// Where the previous page ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Cursor {
    /// Sort-key values of the last referral served (nanoseconds since the epoch).
    keys: Vec<Option<i64>>,
    /// Its creation number.
    seq: u64,
}

/// What `$skiptoken` carries (base64url JSON; opaque to clients).
#[derive(Debug, Serialize, Deserialize)]
struct PageToken {
    #[serde(rename = "f", default, skip_serializing_if = "Option::is_none")]
    filter: Option<String>,
    #[serde(rename = "o", default, skip_serializing_if = "Option::is_none")]
    orderby: Option<String>,
    #[serde(rename = "s", default, skip_serializing_if = "Option::is_none")]
    select: Option<String>,
    /// What is left of `$top`.
    #[serde(rename = "r", default, skip_serializing_if = "Option::is_none")]
    remaining: Option<usize>,
    #[serde(rename = "c")]
    cursor: Cursor,
}

/// One page of results.
#[derive(Debug)]
pub(crate) struct ListPage {
    /// The referrals (after `$select`).
    pub value: Vec<Value>,
    /// How many referrals match the filter in all.
    pub count: usize,
    /// `$skiptoken` of the next page, when there is one.
    pub next_token: Option<String>,
}

fn once(slot: &mut Option<String>, name: &str, value: &str) -> Result<(), ApiError> {
    if slot.is_some() {
        return Err(ApiError::bad_request(format!(
            "The query option {name} is specified more than once."
        ))
        .with_data([json!(name)]));
    }
    *slot = Some(value.to_owned());
    Ok(())
}

/// Parses the query string of a list request.
pub(crate) fn parse_list_query(raw: Option<&str>) -> Result<ListRequest, ApiError> {
    let (mut filter, mut orderby, mut select, mut top, mut skip, mut count, mut token) =
        (None, None, None, None, None, None, None);
    for (key, value) in url::form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
        match key.as_ref() {
            "$filter" => once(&mut filter, "$filter", &value)?,
            "$orderby" => once(&mut orderby, "$orderby", &value)?,
            "$select" => once(&mut select, "$select", &value)?,
            "$top" => once(&mut top, "$top", &value)?,
            "$skip" => once(&mut skip, "$skip", &value)?,
            "$count" => once(&mut count, "$count", &value)?,
            "$skiptoken" => once(&mut token, "$skiptoken", &value)?,
            other if other.starts_with('$') => {
                return Err(ApiError::bad_request(format!(
                    "The query option {other} is not supported; use $filter, $orderby, $select, $top, $skip, $count or $skiptoken."
                ))
                .with_data([json!(other)]));
            }
            // Other parameters are not OData options; the service ignores them.
            _ => {}
        }
    }
    if let Some(c) = count.as_deref()
        && !matches!(c, "true" | "false")
    {
        return Err(ApiError::bad_request(format!(
            "Invalid value for $count '{c}': expected true or false."
        ))
        .with_data([json!("$count")]));
    }
    if let Some(token) = token {
        // The token carries the query; options sent beside it are ignored, as the
        // nextLink the service returns has none.
        return continuation(&token);
    }
    let mut request = build(filter, orderby, select)?;
    request.top = top.as_deref().map(odata::parse_top).transpose()?;
    request.skip = match skip.as_deref() {
        None => 0,
        Some(s) => s.trim().parse::<usize>().map_err(|_| {
            ApiError::bad_request(format!(
                "Invalid value for $skip '{s}': expected a non-negative integer."
            ))
            .with_data([json!("$skip")])
        })?,
    };
    Ok(request)
}

fn build(
    filter_text: Option<String>,
    orderby_text: Option<String>,
    select_text: Option<String>,
) -> Result<ListRequest, ApiError> {
    let filter = filter_text
        .as_deref()
        .map(odata::parse_filter)
        .transpose()?;
    if let Some(expr) = &filter {
        check_filter(expr, &mut Vec::new()).map_err(|why| {
            ApiError::bad_request(format!(
                "Invalid $filter '{}': {why}.",
                filter_text.as_deref().unwrap_or("")
            ))
            .with_data([json!("$filter")])
        })?;
    }
    let orderby = orderby_text.as_deref().map(OrderBy::parse).transpose()?;
    if let Some(order) = &orderby {
        for key in &order.0 {
            let name = key.path.join("/");
            if !ORDERABLE.contains(&name.as_str()) {
                return Err(ApiError::bad_request(format!(
                    "$orderby on '{name}' is not supported; order by createdDateTime or updatedDateTime."
                ))
                .with_data([json!("$orderby")]));
            }
        }
    }
    let select = select_text.as_deref().map(Select::parse).transpose()?;
    if let Some(s) = &select
        && let Some(bad) =
            s.0.iter()
                .find(|n| *n != "*" && !PROPERTIES.contains(&n.as_str()))
    {
        return Err(ApiError::bad_request(format!(
            "Invalid $select: could not find a property named '{bad}' on type 'Referral'."
        ))
        .with_data([json!("$select")]));
    }
    Ok(ListRequest {
        filter_text,
        filter,
        orderby_text,
        orderby,
        select_text,
        select,
        ..ListRequest::default()
    })
}

fn continuation(token: &str) -> Result<ListRequest, ApiError> {
    let invalid = || {
        ApiError::bad_request("The $skiptoken is not valid; follow @odata.nextLink as returned.")
            .with_data([json!("$skiptoken")])
    };
    let bytes = URL_SAFE_NO_PAD
        .decode(token.trim())
        .map_err(|_| invalid())?;
    let token: PageToken = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
    let mut request = build(token.filter, token.orderby, token.select).map_err(|_| invalid())?;
    request.top = token.remaining;
    request.after = Some(token.cursor);
    Ok(request)
}

/// Checks every property path names a referral property or a lambda variable.
fn check_filter(expr: &Expr, vars: &mut Vec<String>) -> Result<(), String> {
    match expr {
        Expr::Literal(_) => Ok(()),
        Expr::Path(path) => check_path(path, vars),
        Expr::Compare { left, right, .. } | Expr::And(left, right) | Expr::Or(left, right) => {
            check_filter(left, vars)?;
            check_filter(right, vars)
        }
        Expr::Not(inner) => check_filter(inner, vars),
        Expr::Call { args, .. } => args.iter().try_for_each(|a| check_filter(a, vars)),
        Expr::Lambda {
            collection, body, ..
        } => {
            check_path(collection, vars)?;
            if let Some((var, body)) = body {
                vars.push(var.clone());
                let result = check_filter(body, vars);
                vars.pop();
                result?;
            }
            Ok(())
        }
        Expr::In { .. } => Err("Microsoft.Dynamics.CRM functions are not supported".to_owned()),
    }
}

fn check_path(path: &[String], vars: &[String]) -> Result<(), String> {
    let Some(first) = path.first() else {
        return Ok(());
    };
    if vars.contains(first) || PROPERTIES.contains(&first.as_str()) {
        Ok(())
    } else {
        Err(format!(
            "could not find a property named '{first}' on type 'Referral'"
        ))
    }
}

fn sort_keys(r: &StoredReferral, order: Option<&OrderBy>) -> Vec<Option<i64>> {
    let Some(order) = order else {
        return Vec::new();
    };
    order
        .0
        .iter()
        .map(|key| {
            let at = match key.path.first().map(String::as_str) {
                Some("updatedDateTime") => r.referral.updated_date_time,
                _ => r.referral.created_date_time,
            };
            at.and_then(|t| t.timestamp_nanos_opt())
        })
        .collect()
}

/// Orders (keys, seq) pairs: each key in its direction (nulls first ascending),
/// then creation order, so the order is total.
fn compare(
    a: (&[Option<i64>], u64),
    b: (&[Option<i64>], u64),
    order: Option<&OrderBy>,
) -> Ordering {
    if let Some(order) = order {
        for (i, key) in order.0.iter().enumerate() {
            let ord = a.0.get(i).cmp(&b.0.get(i));
            let ord = if key.descending { ord.reverse() } else { ord };
            if ord != Ordering::Equal {
                return ord;
            }
        }
    }
    a.1.cmp(&b.1)
}

/// Computes one page of the list for a caller.
pub(crate) fn list_page(
    store: &ReferralStore,
    visibility: &Visibility<'_>,
    request: &ListRequest,
    page_size: usize,
    options: &EvalOptions,
) -> ListPage {
    let order = request.orderby.as_ref();
    let mut matching: Vec<(Vec<Option<i64>>, &StoredReferral)> = store
        .iter()
        .filter(|r| visibility.can_read(r))
        .filter(|r| {
            request
                .filter
                .as_ref()
                .is_none_or(|f| odata::matches(f, &r.value, options))
        })
        .map(|r| (sort_keys(r, order), r))
        .collect();
    matching.sort_by(|a, b| compare((&a.0, a.1.seq), (&b.0, b.1.seq), order));
    let count = matching.len();
    let start = match &request.after {
        Some(cursor) => matching.partition_point(|(keys, r)| {
            compare((keys, r.seq), (&cursor.keys, cursor.seq), order) != Ordering::Greater
        }),
        None => request.skip.min(count),
    };
    let budget = request.top.unwrap_or(usize::MAX);
    let take = page_size.max(1).min(budget);
    let served = &matching[start..count.min(start.saturating_add(take))];
    let left_in_budget = budget.saturating_sub(served.len());
    let more = start + served.len() < count && left_in_budget > 0;
    let next_token = match (more, served.last()) {
        (true, Some((keys, last))) => {
            let token = PageToken {
                filter: request.filter_text.clone(),
                orderby: request.orderby_text.clone(),
                select: request.select_text.clone(),
                remaining: request.top.map(|_| left_in_budget),
                cursor: Cursor {
                    keys: keys.clone(),
                    seq: last.seq,
                },
            };
            serde_json::to_vec(&token)
                .ok()
                .map(|bytes| URL_SAFE_NO_PAD.encode(bytes))
        }
        _ => None,
    };
    let value = served
        .iter()
        .map(|(_, r)| match &request.select {
            Some(select) => select.apply(&r.value, &[]),
            None => r.value.clone(),
        })
        .collect();
    ListPage {
        value,
        count,
        next_token,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(q: &str) -> String {
        parse_list_query(Some(q)).unwrap_err().description
    }

    #[test]
    fn documented_filters_parse() {
        for f in [
            "engagementId eq '65edc0b5-3485-41b7-a17e-dfa9ef4706e2'",
            "status eq 'New' and qualification eq 'SalesQualified'",
            "customerProfile/address/country eq 'US' and direction eq 'Incoming'",
            "(type eq 'Shared' and direction eq 'Incoming')",
            "(direction eq 'Incoming' and substatus eq 'Pending')",
            "status eq 'Active' and direction eq 'Outgoing' and type eq 'Shared' and team/any(t:t/email eq 'r2d2@contoso.com')",
            "updatedDateTime ge 2024-01-01T00:00:00Z",
            "createdDateTime gt 2024-01-01T00:00:00.1234567Z",
        ] {
            let q = url::form_urlencoded::Serializer::new(String::new())
                .append_pair("$filter", f)
                .finish();
            assert!(parse_list_query(Some(&q)).is_ok(), "{f}");
        }
    }

    #[test]
    fn bad_queries_say_what_is_wrong() {
        assert!(err("$filter=colour eq 'red'").contains("'colour'"));
        assert!(err("$filter=status eq").contains("Syntax error"));
        assert!(err("$orderby=name").contains("createdDateTime or updatedDateTime"));
        assert!(err("$top=-1").contains("$top"));
        assert!(err("$top=1&$top=2").contains("more than once"));
        assert!(err("$expand=team").contains("$expand"));
        assert!(err("$select=id,colour").contains("'colour'"));
        assert!(err("$skiptoken=garbage!").contains("$skiptoken"));
        assert!(err("$count=maybe").contains("$count"));
        assert!(err("$filter=team/any(t:u/email eq 'x')").contains("'u'"));
        assert!(parse_list_query(Some("pagesize=5&$count=true")).is_ok());
    }

    #[test]
    fn ordering_is_total_and_directional() {
        let order = OrderBy::parse("updatedDateTime desc").unwrap();
        let a = [Some(5)];
        let b = [Some(7)];
        assert_eq!(compare((&a, 1), (&b, 0), Some(&order)), Ordering::Greater);
        assert_eq!(compare((&a, 1), (&a, 2), Some(&order)), Ordering::Less);
        assert_eq!(compare((&[], 3), (&[], 2), None), Ordering::Greater);
        let asc = OrderBy::parse("createdDateTime").unwrap();
        assert_eq!(compare((&[None], 9), (&a, 0), Some(&asc)), Ordering::Less);
    }
}
