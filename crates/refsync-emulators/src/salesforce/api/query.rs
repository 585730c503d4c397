//! `GET /query?q=…`, `/queryAll?q=…` and `/query/<locator>-<offset>` (crm.md §2.4).
//!
//! A query's full result is rendered once and kept under a query locator, as
//! Salesforce keeps a server-side cursor; `nextRecordsUrl` pages through it in
//! batches of `Sforce-Query-Options: batchSize` (clamped to the configured
//! 200–2000) or the configured default. A locator may be read again (a client
//! retrying a page gets the same rows) until it has been idle for
//! `cursor_idle_secs` or more than `max_open_cursors` newer ones exist.

use super::super::error::{SfError, code};
use super::super::ids::SfId;
use super::super::soql::{self, QueryEnv};
use super::{ApiRequest, ApiResponse, Ctx};
use axum::http::StatusCode;
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Value as JsonValue, json};
use std::collections::{HashMap, VecDeque};

#[derive(Debug)]
struct Cursor {
    rows: Vec<JsonValue>,
    batch: usize,
    last_used: DateTime<Utc>,
}

/// Open query locators.
#[derive(Debug, Default)]
pub struct Cursors {
    by_id: HashMap<String, Cursor>,
    order: VecDeque<String>,
    seq: u64,
}

impl Cursors {
    fn open(
        &mut self,
        rows: Vec<JsonValue>,
        batch: usize,
        now: DateTime<Utc>,
        max_open: usize,
    ) -> String {
        self.seq += 1;
        let id = SfId::generate("01g", self.seq).as_str().to_owned();
        self.by_id.insert(
            id.clone(),
            Cursor {
                rows,
                batch,
                last_used: now,
            },
        );
        self.order.push_back(id.clone());
        while self.order.len() > max_open.max(1) {
            if let Some(old) = self.order.pop_front() {
                self.by_id.remove(&old);
            }
        }
        id
    }

    fn expire(&mut self, now: DateTime<Utc>, idle: TimeDelta) {
        self.by_id.retain(|_, c| c.last_used + idle > now);
        let by_id = &self.by_id;
        self.order.retain(|id| by_id.contains_key(id));
    }
}

fn idle(ctx: &Ctx<'_>) -> TimeDelta {
    TimeDelta::seconds(
        i64::try_from(ctx.shared.config.query.cursor_idle_secs).unwrap_or(i64::MAX / 1000),
    )
}

fn batch_size(ctx: &Ctx<'_>, req: &ApiRequest) -> usize {
    let q = &ctx.shared.config.query;
    req.batch_size.map_or(q.default_batch_size, |b| {
        b.clamp(q.min_batch_size, q.max_batch_size)
    })
}

fn page(total: usize, rows: &[JsonValue], next: Option<String>) -> JsonValue {
    let mut body = json!({ "totalSize": total, "done": next.is_none() });
    if let (Some(next), Some(obj)) = (next, body.as_object_mut()) {
        obj.insert("nextRecordsUrl".to_owned(), JsonValue::String(next));
    }
    if let Some(obj) = body.as_object_mut() {
        obj.insert("records".to_owned(), JsonValue::Array(rows.to_vec()));
    }
    body
}

/// Runs `q` and answers its first page.
pub(crate) fn run_query(
    ctx: &mut Ctx<'_>,
    req: &ApiRequest,
    all: bool,
) -> Result<ApiResponse, SfError> {
    let text = req
        .param("q")
        .filter(|q| !q.trim().is_empty())
        .ok_or_else(|| SfError::malformed_query("A query string has to be specified"))?;
    let query = soql::parse(text)?;
    let version = ctx.version_path();
    let env = QueryEnv {
        now: ctx.now,
        version: &version,
        deleted_since: all
            .then(|| ctx.now - TimeDelta::days(i64::from(ctx.shared.config.recycle_bin_days))),
    };
    let result = soql::run(&ctx.state.org, &query, text, &env)?;
    let batch = batch_size(ctx, req);
    let total = result.total_size;
    if result.records.len() <= batch {
        return Ok(ApiResponse::json(
            StatusCode::OK,
            page(total, &result.records, None),
        ));
    }
    let first: Vec<JsonValue> = result.records[..batch].to_vec();
    let max_open = ctx.shared.config.query.max_open_cursors;
    let now = ctx.now;
    let idle = idle(ctx);
    ctx.state.cursors.expire(now, idle);
    let locator = ctx.state.cursors.open(result.records, batch, now, max_open);
    let resource = if all { "queryAll" } else { "query" };
    let next = format!("/services/data/{version}/{resource}/{locator}-{batch}");
    Ok(ApiResponse::json(
        StatusCode::OK,
        page(total, &first, Some(next)),
    ))
}

/// Answers `/query/<locator>-<offset>`.
pub(crate) fn next_page(
    ctx: &mut Ctx<'_>,
    req: &ApiRequest,
    resource: &str,
    locator: &str,
) -> Result<ApiResponse, SfError> {
    let invalid = || SfError::bad_request(code::INVALID_QUERY_LOCATOR, "invalid query locator");
    let (id, offset) = match locator.rsplit_once('-') {
        Some((id, offset)) => (id, offset.parse::<usize>().map_err(|_| invalid())?),
        None => (locator, 0),
    };
    let now = ctx.now;
    let idle = idle(ctx);
    ctx.state.cursors.expire(now, idle);
    let requested_batch = req.batch_size.map(|_| batch_size(ctx, req));
    let version = ctx.version_path();
    let cursor = ctx.state.cursors.by_id.get_mut(id).ok_or_else(invalid)?;
    if offset > cursor.rows.len() {
        return Err(invalid());
    }
    cursor.last_used = now;
    let batch = requested_batch.unwrap_or(cursor.batch);
    let end = (offset + batch).min(cursor.rows.len());
    let next = (end < cursor.rows.len())
        .then(|| format!("/services/data/{version}/{resource}/{id}-{end}"));
    Ok(ApiResponse::json(
        StatusCode::OK,
        page(cursor.rows.len(), &cursor.rows[offset..end], next),
    ))
}
