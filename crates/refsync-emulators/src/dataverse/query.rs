//! Collection reads: `$select`, `$filter`, `$orderby`, `$top`, `$count` (crm.md §1.7),
//! paging with `Prefer: odata.maxpagesize` and a `$skiptoken` cookie (§1.8), and
//! change tracking with `Prefer: odata.track-changes` and `$deltatoken` (§1.9).
//!
//! Query options are checked against the table first (an unknown property is a 400
//! naming it), `$skip` is refused as the real service refuses it, and `$top` is
//! ignored when a page size is preferred. `$filter` is evaluated by the shared
//! [`crate::odata`] module with Dataverse's case-insensitive string comparison, over
//! records as the Web API returns them (lookups as `_x_value`); single-valued
//! navigation paths such as `parentaccountid/name` read the related record.

use super::annotations::{self, Annotations};
use super::error::DvError;
use super::expand::Expand;
use super::paging::{DeltaToken, PagingCookie, QUERY_VALUE};
use super::schema::{ColumnKind, Schema, Table};
use super::store::{Row, Store, etag, render, render_only};
use crate::odata::{EvalOptions, Expr, OrderBy, Select, matches, parse_filter, parse_top};
use chrono::{DateTime, Utc};
use percent_encoding::utf8_percent_encode;
use serde_json::{Map, Value, json};
use std::cmp::Ordering;
use std::time::Duration;

/// The query options of one collection request.
#[derive(Debug, Clone, Default)]
pub(crate) struct CollectionQuery {
    select: Option<Select>,
    filter: Option<Expr>,
    orderby: Option<OrderBy>,
    top: Option<usize>,
    count: bool,
    skiptoken: Option<String>,
    deltatoken: Option<String>,
    expand: Expand,
    /// The options as received, minus the paging tokens, for the links.
    pub(crate) carried: Vec<(String, String)>,
}

/// Paging and tracking preferences (from `Prefer`) and the environment's limits.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PageSettings {
    /// `odata.maxpagesize`, when sent.
    pub max_page_size_pref: Option<usize>,
    /// `odata.track-changes`.
    pub track_changes: bool,
    /// Page size without a preference.
    pub default_page_size: usize,
    /// Largest page size.
    pub max_page_size: usize,
    /// `@odata.count` cap.
    pub count_cap: usize,
    /// Delta-token lifetime.
    pub token_lifetime: Duration,
}

/// A collection answer: the body and which preferences were applied.
#[derive(Debug, Clone)]
pub(crate) struct CollectionPage {
    /// The JSON body.
    pub body: Value,
    /// `odata.maxpagesize=N` when it was honoured.
    pub applied_page_size: Option<usize>,
    /// Change tracking was applied.
    pub tracking: bool,
}

impl CollectionQuery {
    /// Reads the query options; `$skip` and options this emulator lacks are 400s.
    pub fn parse(
        schema: &Schema,
        table: &Table,
        pairs: &[(String, String)],
    ) -> Result<Self, DvError> {
        let mut q = CollectionQuery::default();
        for (key, value) in pairs {
            let odata = |e: crate::odata::ODataError| DvError::bad_url(e.to_string());
            match key.as_str() {
                "$select" => q.select = Some(Select::parse(value).map_err(odata)?),
                "$filter" => q.filter = Some(parse_filter(value).map_err(odata)?),
                "$orderby" => q.orderby = Some(OrderBy::parse(value).map_err(odata)?),
                "$top" => q.top = Some(parse_top(value).map_err(odata)?),
                "$count" => {
                    q.count = match value.as_str() {
                        "true" => true,
                        "false" => false,
                        _ => {
                            return Err(DvError::bad_url(format!(
                                "'{value}' is not a valid count option."
                            )));
                        }
                    }
                }
                "$skiptoken" => q.skiptoken = Some(value.clone()),
                "$deltatoken" => q.deltatoken = Some(value.clone()),
                // crm.md §1.8: not supported by Dataverse.
                "$skip" => {
                    return Err(DvError::bad_url(
                        "The query parameter $skip is not supported. Use the @odata.nextLink paging link instead.",
                    ));
                }
                "$expand" => q.expand = Expand::parse(schema, table, value)?,
                "$apply" | "$search" | "$compute" => {
                    return Err(DvError::not_implemented(&format!("The {key} query option")));
                }
                "$format" => {}
                other if other.starts_with('$') => {
                    return Err(DvError::bad_url(format!(
                        "The query parameter '{other}' is not supported."
                    )));
                }
                _ => {}
            }
            if key != "$skiptoken" && key != "$deltatoken" {
                q.carried.push((key.clone(), value.clone()));
            }
        }
        q.validate(table)?;
        Ok(q)
    }

    fn validate(&self, table: &Table) -> Result<(), DvError> {
        if let Some(select) = &self.select {
            for name in &select.0 {
                if name != "*" && table.column_by_wire_name(name).is_none() {
                    return Err(DvError::unknown_property(name, &table.logical_name));
                }
            }
        }
        if let Some(order) = &self.orderby {
            for key in &order.0 {
                check_path(table, &key.path)?;
            }
        }
        if let Some(filter) = &self.filter {
            check_filter(table, filter)?;
        }
        Ok(())
    }

    /// The `(select)` part of `@odata.context`.
    pub(crate) fn context_projection(&self) -> String {
        match &self.select {
            Some(s) => format!("({})", s.0.join(",")),
            None => String::new(),
        }
    }
}

/// A property path must name a column (or a single-valued navigation property, then a column).
fn check_path(table: &Table, path: &[String]) -> Result<(), DvError> {
    match path {
        [name] if table.column_by_wire_name(name).is_some() => Ok(()),
        [nav, _] if table.navigation(nav).is_some() => Ok(()),
        _ => Err(DvError::unknown_property(
            path.first().map(String::as_str).unwrap_or(""),
            &table.logical_name,
        )),
    }
}

fn check_filter(table: &Table, expr: &Expr) -> Result<(), DvError> {
    match expr {
        Expr::Literal(_) => Ok(()),
        Expr::Path(p) => check_path(table, p),
        Expr::Compare { left, right, .. } | Expr::And(left, right) | Expr::Or(left, right) => {
            check_filter(table, left)?;
            check_filter(table, right)
        }
        Expr::Not(e) => check_filter(table, e),
        Expr::Call { args, .. } => args.iter().try_for_each(|a| check_filter(table, a)),
        Expr::Lambda { collection, .. } => Err(DvError::unknown_property(
            &collection.join("/"),
            &table.logical_name,
        )),
        Expr::In { property, .. } => check_path(table, std::slice::from_ref(property)),
    }
}

/// The top-level properties a filter or order reads (the only ones rendered for
/// matching and sorting; the page's rows are rendered in full afterwards).
fn referenced(expr: Option<&Expr>, order: Option<&OrderBy>) -> Vec<String> {
    fn walk(e: &Expr, out: &mut Vec<String>) {
        match e {
            Expr::Path(p) => out.extend(p.first().cloned()),
            Expr::In { property, .. } => out.push(property.clone()),
            Expr::Compare { left, right, .. } | Expr::And(left, right) | Expr::Or(left, right) => {
                walk(left, out);
                walk(right, out);
            }
            Expr::Not(e) => walk(e, out),
            Expr::Call { args, .. } => args.iter().for_each(|a| walk(a, out)),
            Expr::Literal(_) | Expr::Lambda { .. } => {}
        }
    }
    let mut out = Vec::new();
    if let Some(e) = expr {
        walk(e, &mut out);
    }
    if let Some(o) = order {
        out.extend(o.0.iter().filter_map(|k| k.path.first().cloned()));
    }
    out.sort();
    out.dedup();
    out
}

/// Navigation properties a filter or order reads through.
fn navigations(expr: Option<&Expr>, order: Option<&OrderBy>) -> Vec<String> {
    fn walk(e: &Expr, out: &mut Vec<String>) {
        match e {
            Expr::Path(p) if p.len() == 2 => out.push(p[0].clone()),
            Expr::Compare { left, right, .. } | Expr::And(left, right) | Expr::Or(left, right) => {
                walk(left, out);
                walk(right, out);
            }
            Expr::Not(e) => walk(e, out),
            Expr::Call { args, .. } => args.iter().for_each(|a| walk(a, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    if let Some(e) = expr {
        walk(e, &mut out);
    }
    if let Some(o) = order {
        out.extend(
            o.0.iter()
                .filter(|k| k.path.len() == 2)
                .map(|k| k.path[0].clone()),
        );
    }
    out.sort();
    out.dedup();
    out
}

/// Adds the related records of `navs` to a rendered row, for filters like `parentaccountid/name`.
fn with_navigations(
    schema: &Schema,
    store: &Store,
    table: &Table,
    row: &Row,
    mut rendered: Map<String, Value>,
    navs: &[String],
) -> Map<String, Value> {
    for nav in navs {
        let Some((column, target)) = table.navigation(nav) else {
            continue;
        };
        let related = row
            .lookup(&column.name)
            .filter(|(t, _)| *t == target)
            .and_then(|(t, id)| Some((schema.by_logical_name(t)?, store.get(t, &id)?)))
            .map(|(t, r)| Value::Object(render(t, r)))
            .unwrap_or(Value::Null);
        rendered.insert(nav.clone(), related);
    }
    rendered
}

/// Service root (`http://host/api/data/v9.2/`) and the entity set, for links.
#[derive(Debug, Clone)]
pub(crate) struct Links<'a> {
    /// `…/api/data/v9.2/`.
    pub service_root: &'a str,
    /// The entity set.
    pub entity_set: &'a str,
}

impl Links<'_> {
    pub(crate) fn link(&self, carried: &[(String, String)], extra: (&str, &str)) -> String {
        let mut parts: Vec<String> = carried
            .iter()
            .map(|(k, v)| format!("{k}={}", utf8_percent_encode(v, QUERY_VALUE)))
            .collect();
        parts.push(format!(
            "{}={}",
            extra.0,
            utf8_percent_encode(extra.1, QUERY_VALUE)
        ));
        format!(
            "{}{}?{}",
            self.service_root,
            self.entity_set,
            parts.join("&")
        )
    }

    pub(crate) fn context(&self, projection: &str, suffix: &str) -> String {
        format!(
            "{}$metadata#{}{projection}{suffix}",
            self.service_root, self.entity_set
        )
    }
}

fn sort_key_names(table: &Table, q: &CollectionQuery) -> Vec<Vec<String>> {
    let mut keys: Vec<Vec<String>> = q
        .orderby
        .as_ref()
        .map(|o| o.0.iter().map(|k| k.path.clone()).collect())
        .unwrap_or_default();
    keys.push(vec![table.primary_id.clone()]);
    keys
}

/// Orders rows by `$orderby` then the primary key (Dataverse's default order).
fn compare_rows(a: &Value, b: &Value, q: &CollectionQuery, table: &Table) -> Ordering {
    let opts = EvalOptions::DATAVERSE;
    let by_order = q
        .orderby
        .as_ref()
        .map_or(Ordering::Equal, |o| o.compare(a, b, &opts));
    by_order.then_with(|| primary_key(a, table).cmp(primary_key(b, table)))
}

fn primary_key<'v>(row: &'v Value, table: &Table) -> &'v str {
    row.get(&table.primary_id)
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// Everything a collection request needs from the environment.
pub(crate) struct QueryEnv<'a> {
    /// Tables.
    pub schema: &'a Schema,
    /// Records.
    pub store: &'a Store,
    /// Links.
    pub links: Links<'a>,
    /// Annotations asked for.
    pub annotations: &'a Annotations,
    /// Now (delta-token issue and expiry).
    pub now: DateTime<Utc>,
}

/// Answers one collection request.
pub(crate) fn run(
    env: &QueryEnv<'_>,
    table: &Table,
    q: &CollectionQuery,
    settings: &PageSettings,
) -> Result<CollectionPage, DvError> {
    let tracking = (settings.track_changes || q.deltatoken.is_some()) && table.change_tracking;
    if q.deltatoken.is_some() && !table.change_tracking {
        return Err(DvError::bad_url(format!(
            "Change tracking is not enabled for the {} table.",
            table.logical_name
        )));
    }
    if tracking {
        for (option, present) in [
            ("filter", q.filter.is_some()),
            ("orderby", q.orderby.is_some()),
            ("top", q.top.is_some()),
            ("expand", !q.expand.is_empty()),
        ] {
            if present {
                return Err(DvError::bad_url(format!(
                    "The \"${option}\" query parameter isn't supported when Change Tracking is enabled."
                )));
            }
        }
        if let Some(token) = &q.deltatoken {
            return super::tracking::delta(env, table, q, token, settings);
        }
    }
    let cookie = match &q.skiptoken {
        Some(token) => Some(
            PagingCookie::decode(token)
                .ok_or_else(|| DvError::bad_url("The $skiptoken paging cookie is not valid."))?,
        ),
        None => None,
    };
    let navs = navigations(q.filter.as_ref(), q.orderby.as_ref());
    let mut columns = referenced(q.filter.as_ref(), q.orderby.as_ref());
    columns.push(table.primary_id.clone());
    let opts = EvalOptions::DATAVERSE;
    let mut matched: Vec<(Value, &Row)> = env
        .store
        .rows(&table.logical_name)
        .filter_map(|row| {
            let partial = render_only(table, row, &columns, true);
            let rendered = with_navigations(env.schema, env.store, table, row, partial, &navs);
            let value = Value::Object(rendered);
            q.filter
                .as_ref()
                .is_none_or(|f| matches(f, &value, &opts))
                .then_some((value, row))
        })
        .collect();
    matched.sort_by(|a, b| compare_rows(&a.0, &b.0, q, table));
    let total = matched.len();

    let page_size = match settings.max_page_size_pref {
        Some(n) => n.clamp(1, settings.max_page_size),
        None => settings.default_page_size,
    };
    let page_number = cookie.as_ref().map_or(1, |c| c.page_number.max(1));
    // crm.md §1.8: with a preferred page size, $top is ignored.
    let top = if settings.max_page_size_pref.is_some() {
        None
    } else {
        q.top
    };
    let already = (page_number - 1).saturating_mul(page_size);
    let limit = match top {
        Some(t) => page_size.min(t.saturating_sub(already)),
        None => page_size,
    };
    let start = match &cookie {
        Some(c) => {
            let mut last = Map::new();
            for (name, value) in &c.last {
                insert_path(&mut last, name, value.clone());
            }
            let last = Value::Object(last);
            matched
                .iter()
                .position(|(v, _)| compare_rows(v, &last, q, table) == Ordering::Greater)
                .unwrap_or(matched.len())
        }
        None => 0,
    };
    let page: Vec<&(Value, &Row)> = matched.iter().skip(start).take(limit).collect();
    let more = start + page.len() < matched.len() && top.is_none_or(|t| already + page.len() < t);

    let tracking_version = if tracking {
        Some(
            cookie
                .as_ref()
                .and_then(|c| c.tracking_version)
                .unwrap_or(env.store.version()),
        )
    } else {
        None
    };
    let mut body = Map::new();
    body.insert(
        "@odata.context".to_owned(),
        json!(env.links.context(&q.context_projection(), "")),
    );
    if q.count {
        body.insert(
            "@odata.count".to_owned(),
            json!(total.min(settings.count_cap)),
        );
        if env
            .annotations
            .wants("Microsoft.Dynamics.CRM.totalrecordcount")
        {
            body.insert(
                "@Microsoft.Dynamics.CRM.totalrecordcount".to_owned(),
                json!(total.min(settings.count_cap)),
            );
        }
        if env
            .annotations
            .wants("Microsoft.Dynamics.CRM.totalrecordcountlimitexceeded")
        {
            body.insert(
                "@Microsoft.Dynamics.CRM.totalrecordcountlimitexceeded".to_owned(),
                json!(total > settings.count_cap),
            );
        }
    }
    let values: Vec<Value> = page
        .iter()
        .map(|(_, row)| Value::Object(project(env, table, row, q)))
        .collect();
    body.insert("value".to_owned(), Value::Array(values));
    if more && let Some((last, _)) = page.last() {
        let keys = sort_key_names(table, q);
        let cookie = PagingCookie {
            page_number: page_number.saturating_add(1),
            last: keys
                .iter()
                .map(|path| {
                    let value = path.iter().try_fold(last, |v, seg| v.get(seg)).cloned();
                    (path.join("/"), value.unwrap_or(Value::Null))
                })
                .map(|(name, value)| (name.replace('/', "."), value))
                .collect(),
            tracking_version,
        };
        body.insert(
            "@odata.nextLink".to_owned(),
            json!(env.links.link(&q.carried, ("$skiptoken", &cookie.encode()))),
        );
    } else if let Some(version) = tracking_version {
        let token = DeltaToken {
            version,
            issued: env.now,
        };
        body.insert(
            "@odata.deltaLink".to_owned(),
            json!(env.links.link(&q.carried, ("$deltatoken", &token.encode()))),
        );
    }
    Ok(CollectionPage {
        body: Value::Object(body),
        applied_page_size: settings.max_page_size_pref.map(|_| page_size),
        tracking,
    })
}

/// Inserts `value` at a dotted cookie name (`parentaccountid.name` → nested objects).
fn insert_path(map: &mut Map<String, Value>, name: &str, value: Value) {
    match name.split_once('.') {
        None => {
            map.insert(name.to_owned(), value);
        }
        Some((head, rest)) => {
            let entry = map
                .entry(head.to_owned())
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(inner) = entry {
                insert_path(inner, rest, value);
            }
        }
    }
}

/// `$select` (primary key always; money brings its currency, crm.md §1.7) then annotations.
pub(crate) fn project(
    env: &QueryEnv<'_>,
    table: &Table,
    row: &Row,
    q: &CollectionQuery,
) -> Map<String, Value> {
    let mut out = selected(table, row, q.select.as_ref());
    q.expand.apply(env.schema, env.store, table, row, &mut out);
    annotations::annotate(env.schema, env.store, table, row, out, env.annotations)
}

/// A record with its selected columns only (every column without `$select`): the
/// ETag, the primary key (always, crm.md §1.7), the selected columns in `$select`
/// order, and the currency when a money column is selected.
pub(crate) fn selected(table: &Table, row: &Row, select: Option<&Select>) -> Map<String, Value> {
    let Some(select) = select.filter(|s| !s.0.iter().any(|n| n == "*")) else {
        return render(table, row);
    };
    let money_selected = select.0.iter().any(|name| {
        table
            .column_by_wire_name(name)
            .is_some_and(|c| matches!(c.kind, ColumnKind::Money { .. }))
    });
    let mut names = Vec::with_capacity(select.0.len() + 2);
    names.push(table.primary_id.clone());
    names.extend(select.0.iter().filter(|n| **n != table.primary_id).cloned());
    if money_selected && !names.iter().any(|n| n == "_transactioncurrencyid_value") {
        names.push("_transactioncurrencyid_value".to_owned());
    }
    let mut out = Map::with_capacity(names.len() + 1);
    out.insert("@odata.etag".to_owned(), Value::String(etag(row.version)));
    out.extend(render_only(table, row, &names, false));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataverse::config::DataverseConfig;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn unknown_properties_and_skip_are_refused() {
        let schema = Schema::from_config(&DataverseConfig::default()).unwrap();
        let lead = schema.by_logical_name("lead").unwrap();
        assert!(
            CollectionQuery::parse(
                &schema,
                lead,
                &pairs(&[("$select", "subject,_parentaccountid_value")])
            )
            .is_ok()
        );
        let err = CollectionQuery::parse(
            &schema,
            lead,
            &pairs(&[("$select", "subject,parentaccountid")]),
        )
        .unwrap_err();
        assert!(err.message.contains("'parentaccountid'"), "{}", err.message);
        assert!(
            CollectionQuery::parse(&schema, lead, &pairs(&[("$filter", "nosuch eq 1")])).is_err()
        );
        assert!(
            CollectionQuery::parse(
                &schema,
                lead,
                &pairs(&[("$filter", "parentaccountid/name eq 'x'")])
            )
            .is_ok()
        );
        assert!(
            CollectionQuery::parse(&schema, lead, &pairs(&[("$orderby", "nosuch desc")])).is_err()
        );
        let err = CollectionQuery::parse(&schema, lead, &pairs(&[("$skip", "10")])).unwrap_err();
        assert!(err.message.contains("$skip"));
        let err = CollectionQuery::parse(&schema, lead, &pairs(&[("$expand", "x")])).unwrap_err();
        assert!(err.message.contains("'x'"), "{}", err.message);
        assert!(
            CollectionQuery::parse(&schema, lead, &pairs(&[("$expand", "parentaccountid")]))
                .is_ok()
        );
        assert_eq!(
            CollectionQuery::parse(&schema, lead, &pairs(&[("$apply", "x")]))
                .unwrap_err()
                .status
                .as_u16(),
            501
        );
    }
}
