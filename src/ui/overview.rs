//! Overview: requests, errors, p50/p95 latency and time to first token, tokens, spend and cache
//! savings over a range, as tiles, charts over time and a breakdown by model, provider, key or
//! team, with optional filters on the same four. Read from the roll-ups only (whole days, and hours at the ends), so a month of
//! a million traces is a few thousand rows (hour granularity: a range starts at its first hour).

use std::fmt::Write;
use std::time::Instant;

use hyper::{Response, StatusCode};

use super::charts::{self, Series};
use super::html::{self, esc};
use super::traces::RANGES;
use super::{Ctx, Form};
use crate::proxy::ProxyBody;
use crate::store::dashboard::{Dimension, Overview, OverviewQuery, Stats};
use crate::store::now_ms;

/// The overview's query from the page's query string, or an error naming the field.
pub fn query_from(query: &Form) -> Result<(OverviewQuery, String), String> {
    let (range, since) = super::traces::range_since(query.get("range"), "24h")?;
    let by_text = query.text("by").unwrap_or_else(|| "model".into());
    let by = Dimension::parse(&by_text)
        .ok_or_else(|| format!("by: {by_text:?} is not one of model, provider, key, team"))?;
    let only = Dimension::ALL
        .into_iter()
        .filter_map(|d| query.text(d.as_str()).map(|v| (d, v)))
        .collect();
    let now = now_ms();
    Ok((
        OverviewQuery {
            // "All time" starts at the first hour anyone could have recorded.
            since_ms: since.unwrap_or(0),
            until_ms: now + 1,
            by,
            only,
        },
        range,
    ))
}

pub async fn page(ctx: &Ctx<'_>, query: &Form) -> Response<ProxyBody> {
    let (q, range) = match query_from(query) {
        Ok(found) => found,
        Err(problem) => {
            return super::error_page(StatusCode::BAD_REQUEST, &problem);
        }
    };
    let dashboard = ctx.app.store.dashboard.clone();
    let started = Instant::now();
    let lookup = q.clone();
    let overview = match super::blocking(move || dashboard.overview(&lookup)).await {
        Ok(found) => found,
        Err(e) => return super::error_page(StatusCode::INTERNAL_SERVER_ERROR, &e),
    };
    let ms = started.elapsed().as_millis();
    let mut body = controls(query, &q, &range);
    body.push_str(&tiles(&overview.total));
    body.push_str(&charts_for(&overview, &q));
    body.push_str(&breakdown(&overview, q.by));
    let _ = write!(
        body,
        "<p class=\"hint\" id=\"query-ms\">{} roll-up rows in {ms} ms</p>",
        html::count(overview.rows_read as i64)
    );
    super::html(
        StatusCode::OK,
        html::page("Overview", "/ui", Some(&ctx.session), &body),
    )
}

fn controls(query: &Form, q: &OverviewQuery, range: &str) -> String {
    let ranges: Vec<String> = RANGES.iter().map(|r| r.0.to_string()).collect();
    let dims: Vec<String> = Dimension::ALL
        .iter()
        .map(|d| d.as_str().to_string())
        .collect();
    let mut out = format!(
        "<form method=\"get\" action=\"/ui\" class=\"filters\"><label>Range {}</label><label>By {}</label>",
        html::select("range", "default (24h)", &ranges, Some(range))
            .replace("<select ", "<select data-autosubmit "),
        html::select("by", "model", &dims, Some(q.by.as_str()))
            .replace("<select ", "<select data-autosubmit ")
    );
    for d in Dimension::ALL {
        let _ = write!(
            out,
            "<label>Only {0} <input name=\"{0}\" id=\"o-{0}\" value=\"{1}\" size=\"12\"></label>",
            d.as_str(),
            esc(query.get(d.as_str()).unwrap_or_default())
        );
    }
    out.push_str("<button>Show</button></form>");
    out
}

fn tiles(t: &Stats) -> String {
    let pct = |a: i64, b: i64| {
        if b > 0 {
            format!("{:.1}%", a as f64 * 100.0 / b as f64)
        } else {
            "–".into()
        }
    };
    let q = |h: &crate::store::dashboard::Histogram, p: f64| {
        h.quantile(p)
            .map(html::dur_us)
            .unwrap_or_else(|| "–".into())
    };
    let tiles = [
        ("requests", "Requests", html::count(t.requests)),
        (
            "errors",
            "Errors",
            format!("{} ({})", html::count(t.errors), pct(t.errors, t.requests)),
        ),
        ("p50", "Latency p50", q(&t.latency, 0.5)),
        ("p95", "Latency p95", q(&t.latency, 0.95)),
        ("ttft50", "TTFT p50", q(&t.ttft, 0.5)),
        ("ttft95", "TTFT p95", q(&t.ttft, 0.95)),
        (
            "tokens",
            "Tokens in / out",
            format!(
                "{} / {}",
                html::count(t.prompt_tokens),
                html::count(t.completion_tokens)
            ),
        ),
        ("spend", "Spend", html::usd(t.cost_nanos)),
        (
            "saved",
            "Cache savings",
            format!(
                "{} ({} hits)",
                html::usd(t.saved_nanos),
                html::count(t.cache_hits)
            ),
        ),
    ];
    let mut out = String::from("<div class=\"tiles\" id=\"tiles\">");
    for (id, k, v) in tiles {
        let _ = write!(
            out,
            "<div class=\"tile\" id=\"tile-{id}\"><div class=\"k\">{k}</div><div class=\"v\">{}</div></div>",
            esc(&v)
        );
    }
    out.push_str("</div>");
    out
}

fn charts_for(o: &Overview, q: &OverviewQuery) -> String {
    let step = o.bucket_ms.max(1);
    let first = o.series.first().map(|p| p.0);
    let x0 = if q.since_ms > 0 {
        q.since_ms - q.since_ms.rem_euclid(step)
    } else {
        first.unwrap_or(q.until_ms - step)
    };
    let x1 = q.until_ms - q.until_ms.rem_euclid(step) + step;
    let points = |f: &dyn Fn(&Stats) -> f64| -> Vec<(i64, f64)> {
        o.series.iter().map(|(x, s)| (*x, f(s))).collect()
    };
    let count = |v: f64| html::count(v.round() as i64);
    let ms = |v: f64| format!("{:.0} ms", v / 1000.0);
    let usd = |v: f64| html::usd(v.round() as i64);
    let quant = |p: f64, ttft: bool| Series {
        label: match (ttft, p > 0.9) {
            (false, false) => "latency p50",
            (false, true) => "latency p95",
            (true, false) => "TTFT p50",
            (true, true) => "TTFT p95",
        },
        color: match (ttft, p > 0.9) {
            (false, false) => charts::BLUE,
            (false, true) => charts::RED,
            (true, false) => charts::GREEN,
            (true, true) => charts::ORANGE,
        },
        points: o
            .series
            .iter()
            .map(|(x, s)| {
                let h = if ttft { &s.ttft } else { &s.latency };
                (*x, h.quantile(p).map(|v| v as f64))
            })
            .collect(),
    };
    let span = (x0, x1, step);
    let mut out = String::from("<div class=\"charts\">");
    out.push_str(&charts::bars(
        "chart-requests",
        "Requests",
        &points(&|s| s.requests as f64),
        span,
        charts::BLUE,
        &count,
    ));
    out.push_str(&charts::bars(
        "chart-errors",
        "Errors",
        &points(&|s| s.errors as f64),
        span,
        charts::RED,
        &count,
    ));
    out.push_str(&charts::lines(
        "chart-latency",
        "Latency and time to first token",
        &[
            quant(0.5, false),
            quant(0.95, false),
            quant(0.5, true),
            quant(0.95, true),
        ],
        (x0, x1),
        &ms,
    ));
    out.push_str(&charts::bars(
        "chart-spend",
        "Spend",
        &points(&|s| s.cost_nanos as f64),
        span,
        charts::GREEN,
        &usd,
    ));
    out.push_str(&charts::bars(
        "chart-tokens",
        "Tokens (in + out)",
        &points(&|s| (s.prompt_tokens + s.completion_tokens) as f64),
        span,
        charts::ORANGE,
        &count,
    ));
    out.push_str(&charts::bars(
        "chart-saved",
        "Cache savings",
        &points(&|s| s.saved_nanos as f64),
        span,
        charts::GREEN,
        &usd,
    ));
    out.push_str("</div>");
    out
}

fn breakdown(o: &Overview, by: Dimension) -> String {
    let label = |k: &str| {
        if k.is_empty() {
            "(none)".to_string()
        } else {
            k.to_string()
        }
    };
    let mut out = format!("<h2>By {}</h2><div class=\"charts\">", by.as_str());
    let top: Vec<&(String, Stats)> = o.by.iter().take(15).collect();
    let requests: Vec<(String, f64)> = top
        .iter()
        .map(|(k, s)| (label(k), s.requests as f64))
        .collect();
    let mut spend: Vec<(String, f64)> = top
        .iter()
        .map(|(k, s)| (label(k), s.cost_nanos as f64))
        .collect();
    spend.sort_by(|a, b| b.1.total_cmp(&a.1));
    out.push_str(&charts::hbars(
        "chart-by-requests",
        "Requests",
        &requests,
        &|v| html::count(v as i64),
    ));
    out.push_str(&charts::hbars("chart-by-spend", "Spend", &spend, &|v| {
        html::usd(v as i64)
    }));
    out.push_str("</div>");
    let _ = write!(
        out,
        "<table id=\"breakdown\"><thead><tr><th>{}</th><th class=\"num\">Requests</th>\
         <th class=\"num\">Errors</th><th class=\"num\">p50</th><th class=\"num\">p95</th>\
         <th class=\"num\">TTFT p50</th><th class=\"num\">Tokens in/out</th><th class=\"num\">Spend</th>\
         <th class=\"num\">Saved</th></tr></thead><tbody>",
        by.as_str()
    );
    for (k, s) in &o.by {
        let q = |h: &crate::store::dashboard::Histogram, p| html::opt_dur(h.quantile(p));
        let _ = write!(
            out,
            "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{} / {}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            esc(&label(k)),
            html::count(s.requests),
            html::count(s.errors),
            q(&s.latency, 0.5),
            q(&s.latency, 0.95),
            q(&s.ttft, 0.5),
            html::count(s.prompt_tokens),
            html::count(s.completion_tokens),
            html::usd(s.cost_nanos),
            html::usd(s.saved_nanos),
        );
    }
    if o.by.is_empty() {
        out.push_str("<tr><td colspan=\"9\">No requests in this range.</td></tr>");
    }
    out.push_str("</tbody></table>");
    out
}
