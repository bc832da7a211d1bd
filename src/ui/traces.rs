//! Traces: the list with its filters, newest first, one page at a time by keyset (the last row's
//! `(ts_ms, rowid)` travels in `after`; there is no OFFSET, so page 1000 costs what page 1 does).
//!
//! Filters are read from the query string by [`filter_from`]; the exact-match ones are rows of
//! [`EXACT`], so a new one is a row there plus a field of `TraceFilter`.

use std::fmt::Write;
use std::time::Instant;

use hyper::{Response, StatusCode};

use super::html::{self, esc, url_enc};
use super::{Ctx, Form};
use crate::proxy::ProxyBody;
use crate::store::dashboard::{StatusFilter, TraceCursor, TraceFilter, TracePage};
use crate::store::now_ms;

const PAGE_ROWS: usize = 50;

/// Ranges offered, as `(value, label, milliseconds back)`; `0` is everything.
pub const RANGES: &[(&str, &str, i64)] = &[
    ("15m", "last 15 minutes", 15 * 60_000),
    ("1h", "last hour", 3_600_000),
    ("24h", "last 24 hours", 86_400_000),
    ("7d", "last 7 days", 7 * 86_400_000),
    ("30d", "last 30 days", 30 * 86_400_000),
    ("90d", "last 90 days", 90 * 86_400_000),
    ("all", "all time", 0),
];

/// Exact-match filters: `(query name, label, setter)`.
type Setter = fn(&mut TraceFilter, String);
const EXACT: &[(&str, &str, Setter)] = &[
    ("model", "Model", |f, v| f.model = Some(v)),
    ("provider", "Provider", |f, v| f.provider = Some(v)),
    ("key", "Key id", |f, v| f.key_id = Some(v)),
    ("team", "Team", |f, v| f.team_id = Some(v)),
    ("tag", "Tag", |f, v| f.tag = Some(v)),
];

const CACHE_OUTCOMES: &[&str] = &["hit", "semantic-hit", "miss", "skip"];

/// The range's start for `value` (`None`: all time), or an error naming the field.
pub fn range_since(value: Option<&str>, default: &str) -> Result<(String, Option<i64>), String> {
    let value = value.filter(|v| !v.is_empty()).unwrap_or(default);
    let (_, _, back) = RANGES.iter().find(|(v, _, _)| *v == value).ok_or_else(|| {
        let known: Vec<&str> = RANGES.iter().map(|r| r.0).collect();
        format!("range: {value:?} is not one of {}", known.join(", "))
    })?;
    Ok((value.to_string(), (*back > 0).then(|| now_ms() - back)))
}

/// The list's filter from the query string; a bad value is an error naming its field.
pub fn filter_from(query: &Form) -> Result<(TraceFilter, String), String> {
    let (range, since) = range_since(query.get("range"), "24h")?;
    let mut filter = TraceFilter {
        since_ms: since,
        ..TraceFilter::default()
    };
    for (name, _, set) in EXACT {
        if let Some(v) = query.text(name) {
            set(&mut filter, v);
        }
    }
    filter.status = match query.text("status").as_deref() {
        None => None,
        Some("ok") => Some(StatusFilter::Ok),
        Some("errors") => Some(StatusFilter::Errors),
        Some(code) => match code.parse::<u16>() {
            Ok(c) if (100..=599).contains(&c) => Some(StatusFilter::Exact(c)),
            _ => {
                return Err(format!(
                    "status: {code:?} is not ok, errors or an HTTP status (100 to 599)"
                ));
            }
        },
    };
    if let Some(cache) = query.text("cache") {
        if !CACHE_OUTCOMES.contains(&cache.as_str()) {
            return Err(format!(
                "cache: {cache:?} is not one of {}",
                CACHE_OUTCOMES.join(", ")
            ));
        }
        filter.cache = Some(cache);
    }
    filter.text = query.text("q");
    Ok((filter, range))
}

pub async fn page(ctx: &Ctx<'_>, query: &Form) -> Response<ProxyBody> {
    let (filter, range) = match filter_from(query) {
        Ok(found) => found,
        Err(problem) => {
            let body = format!(
                "<p class=\"flash err\" id=\"filter-error\">{}</p>{}",
                esc(&problem),
                filter_form(ctx, query, "24h")
            );
            let page = html::page("Traces", "/ui/traces", Some(&ctx.session), &body);
            return super::html(StatusCode::BAD_REQUEST, page);
        }
    };
    let after = match query.text("after") {
        None => None,
        Some(text) => match TraceCursor::parse(&text) {
            Some(c) => Some(c),
            None => {
                return super::error_page(
                    StatusCode::BAD_REQUEST,
                    "after: not a page cursor (TS.ROW)",
                );
            }
        },
    };
    let dashboard = ctx.app.store.dashboard.clone();
    let started = Instant::now();
    let lookup = filter.clone();
    let found = super::blocking(move || dashboard.trace_page(&lookup, after, PAGE_ROWS)).await;
    let elapsed = started.elapsed();
    let page = match found {
        Ok(page) => page,
        Err(e) => return super::error_page(StatusCode::INTERNAL_SERVER_ERROR, &e),
    };
    let mut body = filter_form(ctx, query, &range);
    body.push_str(&table(&page));
    body.push_str(&pager(query, &page, after.is_some(), elapsed.as_millis()));
    super::html(
        StatusCode::OK,
        html::page("Traces", "/ui/traces", Some(&ctx.session), &body),
    )
}

fn filter_form(ctx: &Ctx<'_>, query: &Form, range: &str) -> String {
    let mut out = String::from("<form method=\"get\" action=\"/ui/traces\" class=\"filters\">");
    let ranges: Vec<String> = RANGES.iter().map(|r| r.0.to_string()).collect();
    let _ = write!(
        out,
        "<label>Range {}</label>",
        html::select("range", "default (24h)", &ranges, Some(range))
    );
    let models: Vec<String> = ctx
        .app
        .proxy
        .providers
        .models()
        .iter()
        .map(|m| m.name.clone())
        .collect();
    let providers: Vec<String> = ctx
        .app
        .proxy
        .providers
        .providers()
        .iter()
        .map(|p| p.name().to_string())
        .collect();
    for (name, label, _) in EXACT {
        let list = match *name {
            "model" => Some(&models),
            "provider" => Some(&providers),
            _ => None,
        };
        let datalist = list
            .map(|values| {
                let options: String = values
                    .iter()
                    .map(|v| format!("<option value=\"{}\">", esc(v)))
                    .collect();
                format!("<datalist id=\"dl-{name}\">{options}</datalist>")
            })
            .unwrap_or_default();
        let _ = write!(
            out,
            "<label>{label} <input name=\"{name}\" id=\"f-{name}\" value=\"{}\" list=\"dl-{name}\" \
             size=\"14\">{datalist}</label>",
            esc(query.get(name).unwrap_or_default())
        );
    }
    let _ = write!(
        out,
        "<label>Status <input name=\"status\" id=\"f-status\" value=\"{}\" list=\"dl-status\" size=\"7\" \
         placeholder=\"ok, errors, 429\"><datalist id=\"dl-status\"><option value=\"ok\">\
         <option value=\"errors\"><option value=\"429\"><option value=\"500\"><option value=\"502\">\
         </datalist></label>",
        esc(query.get("status").unwrap_or_default())
    );
    let outcomes: Vec<String> = CACHE_OUTCOMES.iter().map(|s| s.to_string()).collect();
    let _ = write!(
        out,
        "<label>Cache {}</label>",
        html::select("cache", "any", &outcomes, query.get("cache"))
    );
    let _ = write!(
        out,
        "<label>Text in bodies <input name=\"q\" id=\"f-q\" value=\"{}\" size=\"16\" \
         placeholder=\"where capture is on\"></label><button id=\"apply-filters\">Filter</button>\
         <a href=\"/ui/traces\">Clear</a></form>",
        esc(query.get("q").unwrap_or_default())
    );
    out
}

fn table(page: &TracePage) -> String {
    if page.rows.is_empty() {
        return "<p id=\"no-traces\">No traces match.</p>".into();
    }
    let mut out = String::from(
        "<table id=\"traces\"><thead><tr><th>Time (UTC)</th><th>Model</th><th>Provider</th>\
         <th class=\"num\">Status</th><th class=\"num\">Latency</th><th class=\"num\">TTFT</th>\
         <th class=\"num\">Tokens in/out</th><th class=\"num\">Cost</th><th>Key</th><th>Team</th>\
         <th>Cache</th></tr></thead><tbody>",
    );
    for t in &page.rows {
        let class = if t.status >= 400 {
            " class=\"err\""
        } else {
            ""
        };
        let _ = write!(
            out,
            "<tr{class} data-id=\"{id}\"><td><a href=\"/ui/traces/{id}\">{}</a></td><td>{}</td><td>{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{} / {}</td><td class=\"num\">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            html::ts(t.ts_ms),
            esc(&t.requested_model),
            html::opt(t.provider.as_deref()),
            t.status,
            html::dur_us(t.latency_us),
            html::opt_dur(t.ttft_us),
            html::count(t.prompt_tokens),
            html::count(t.completion_tokens),
            html::usd(t.cost_nanos),
            html::opt(t.key_id.as_deref()),
            html::opt(t.team_id.as_deref()),
            html::opt(t.cache.as_deref()),
            id = esc(&url_enc(&t.id)),
        );
    }
    out.push_str("</tbody></table>");
    out
}

fn pager(query: &Form, page: &TracePage, deeper: bool, ms: u128) -> String {
    let mut out = String::from("<div class=\"pager\">");
    let keep: String = query
        .0
        .iter()
        .filter(|(k, v)| k != "after" && !v.is_empty())
        .map(|(k, v)| format!("{}={}&", url_enc(k), url_enc(v)))
        .collect();
    if deeper {
        let _ = write!(
            out,
            "<a href=\"/ui/traces?{}\" id=\"first-page\">« Newest</a>",
            esc(keep.trim_end_matches('&'))
        );
    }
    if let Some(next) = page.next {
        let _ = write!(
            out,
            "<a href=\"/ui/traces?{}after={}\" id=\"next-page\">Older »</a>",
            esc(&keep),
            next.encode()
        );
    }
    if page.scan_capped {
        let _ = write!(
            out,
            "<span class=\"hint\">The text search read the newest {} traces of this page's range; \
             “Older” searches on from there.</span>",
            html::count(crate::store::dashboard::TEXT_SCAN_ROWS)
        );
    }
    let _ = write!(
        out,
        "<span class=\"hint\" id=\"query-ms\">{} rows in {ms} ms</span></div>",
        page.rows.len()
    );
    out
}
