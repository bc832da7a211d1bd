//! One trace whole: timings, attempts and the route taken, the cost by token kind (at the prices
//! in force now, beside the cost recorded then), guardrail verdicts and the captured bodies.

use std::fmt::Write;

use hyper::{Response, StatusCode};
use serde_json::Value;

use super::Ctx;
use super::html::{self, esc};
use crate::cost::Tokens;
use crate::proxy::ProxyBody;
use crate::store::TraceRecord;

pub async fn page(ctx: &Ctx<'_>, id: &str) -> Response<ProxyBody> {
    let id = url::form_urlencoded::parse(format!("id={id}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    let dashboard = ctx.app.store.dashboard.clone();
    let lookup = id.clone();
    let trace = match super::blocking(move || dashboard.trace(&lookup)).await {
        Ok(Some(trace)) => trace,
        Ok(None) => {
            return super::error_page(StatusCode::NOT_FOUND, &format!("no trace with id {id:?}"));
        }
        Err(e) => return super::error_page(StatusCode::INTERNAL_SERVER_ERROR, &e),
    };
    let body = render(ctx, &trace);
    super::html(
        StatusCode::OK,
        html::page("Trace", "/ui/traces", Some(&ctx.session), &body),
    )
}

fn render(ctx: &Ctx<'_>, t: &TraceRecord) -> String {
    let mut out = String::new();
    let fact = |out: &mut String, k: &str, v: String| {
        let _ = write!(out, "<dt>{k}</dt><dd>{v}</dd>");
    };
    out.push_str("<h2>Request</h2><dl class=\"facts\" id=\"trace-facts\">");
    fact(&mut out, "Id", format!("<code>{}</code>", esc(&t.id)));
    fact(&mut out, "Time (UTC)", html::ts(t.ts_ms));
    fact(&mut out, "Endpoint", esc(&t.endpoint));
    fact(&mut out, "Model asked", esc(&t.requested_model));
    fact(
        &mut out,
        "Status",
        format!(
            "{}{}",
            t.status,
            t.error_class
                .as_deref()
                .map(|e| format!(" <span class=\"badge err\">{}</span>", esc(e)))
                .unwrap_or_default()
        ),
    );
    fact(&mut out, "Streamed", t.stream.to_string());
    fact(&mut out, "Key", html::opt(t.key_id.as_deref()));
    fact(&mut out, "Team", html::opt(t.team_id.as_deref()));
    fact(&mut out, "User", html::opt(t.user.as_deref()));
    fact(&mut out, "Request id", esc(&t.request_id));
    out.push_str("</dl><h2>Route</h2><dl class=\"facts\" id=\"trace-route\">");
    fact(&mut out, "Provider", html::opt(t.provider.as_deref()));
    fact(
        &mut out,
        "Upstream model",
        html::opt(t.upstream_model.as_deref()),
    );
    fact(&mut out, "Deployment", html::opt(t.deployment.as_deref()));
    fact(&mut out, "Attempts", t.attempts.to_string());
    fact(&mut out, "Variant", html::opt(t.variant.as_deref()));
    fact(&mut out, "Answered by", html::opt(t.answered_by.as_deref()));
    fact(&mut out, "Cache", html::opt(t.cache.as_deref()));
    fact(
        &mut out,
        "Internal caller",
        html::opt(t.internal_caller.as_deref()),
    );
    out.push_str("</dl><h2>Timings</h2><dl class=\"facts\" id=\"trace-timings\">");
    fact(&mut out, "Total latency", html::dur_us(t.latency_us));
    fact(&mut out, "Time to first token", html::opt_dur(t.ttft_us));
    fact(&mut out, "Upstream", html::opt_dur(t.upstream_us));
    fact(&mut out, "Proxy overhead", html::dur_us(t.overhead_us));
    fact(
        &mut out,
        "Bytes in / out",
        format!("{} / {}", html::count(t.bytes_in), html::count(t.bytes_out)),
    );
    out.push_str("</dl>");
    out.push_str(&cost(ctx, t));
    out.push_str(&verdicts(t.verdicts.as_deref()));
    out.push_str("<h2>Captured bodies</h2>");
    for (label, body) in [("Request", &t.request_body), ("Response", &t.response_body)] {
        match body {
            Some(text) => {
                let _ = write!(out, "<h3>{label}</h3><pre>{}</pre>", esc(&pretty(text)));
            }
            None => {
                let _ = write!(
                    out,
                    "<p class=\"hint\">{label}: not captured (the trace module's body capture \
                     is off, or retention blanked it).</p>"
                );
            }
        }
    }
    out
}

/// Tokens by kind with what each costs at the prices in force; the recorded cost is what the
/// request was charged.
fn cost(ctx: &Ctx<'_>, t: &TraceRecord) -> String {
    let mut out = String::from(
        "<h2>Cost</h2><table id=\"trace-cost\"><thead><tr><th>Tokens</th><th class=\"num\">Count</th>\
         <th class=\"num\">Cost at today's price</th></tr></thead><tbody>",
    );
    let prices = ctx.app.admin.prices().load();
    let price = match (&t.provider, &t.upstream_model) {
        (Some(p), Some(m)) => prices.lookup(p, m).copied(),
        _ => None,
    };
    let only = |tokens: Tokens| price.map(|p| p.cost_nanos(&tokens));
    let tk = &t.tokens;
    let uncached = tk
        .prompt
        .saturating_sub(tk.cached_input)
        .saturating_sub(tk.cache_write);
    let rows = [
        (
            "Input (uncached)",
            uncached,
            only(Tokens {
                prompt: uncached,
                ..Tokens::default()
            }),
        ),
        (
            "Input read from cache",
            tk.cached_input,
            only(Tokens {
                prompt: tk.cached_input,
                cached_input: tk.cached_input,
                ..Tokens::default()
            }),
        ),
        (
            "Input written to cache",
            tk.cache_write,
            only(Tokens {
                prompt: tk.cache_write,
                cache_write: tk.cache_write,
                ..Tokens::default()
            }),
        ),
        (
            "Output (visible)",
            tk.completion.saturating_sub(tk.reasoning),
            only(Tokens {
                completion: tk.completion.saturating_sub(tk.reasoning),
                ..Tokens::default()
            }),
        ),
        (
            "Reasoning",
            tk.reasoning,
            only(Tokens {
                completion: tk.reasoning,
                reasoning: tk.reasoning,
                ..Tokens::default()
            }),
        ),
    ];
    for (label, n, nanos) in rows {
        let _ = write!(
            out,
            "<tr><td>{label}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            html::count(n as i64),
            nanos.map(html::usd).unwrap_or_else(|| "–".into())
        );
    }
    let _ = write!(
        out,
        "<tr><th>Recorded</th><th></th><th class=\"num\" id=\"trace-cost-total\">{}{}</th></tr>",
        html::usd(t.cost_nanos),
        if t.price_known {
            ""
        } else {
            " (no price known)"
        }
    );
    if t.saved_nanos > 0 {
        let _ = write!(
            out,
            "<tr><td>Saved by the cache</td><td></td><td class=\"num\">{}</td></tr>",
            html::usd(t.saved_nanos)
        );
    }
    if t.usage_estimated {
        out.push_str(
            "<tr><td colspan=\"3\" class=\"hint\">Token counts estimated by Stockyard's tokenizer \
             (the upstream reported none).</td></tr>",
        );
    }
    out.push_str("</tbody></table>");
    out
}

fn verdicts(raw: Option<&str>) -> String {
    let list: Vec<Value> = raw
        .and_then(|r| serde_json::from_str(r).ok())
        .unwrap_or_default();
    if list.is_empty() {
        return "<h2>Guardrail verdicts</h2><p class=\"hint\" id=\"no-verdicts\">None.</p>".into();
    }
    let mut out = String::from(
        "<h2>Guardrail verdicts</h2><table id=\"trace-verdicts\"><thead><tr><th>Detector</th>\
         <th>Rule</th><th>Action</th><th>Where</th></tr></thead><tbody>",
    );
    let field = |v: &Value, k: &str| match &v[k] {
        Value::String(s) => esc(s),
        Value::Null => "–".into(),
        other => esc(&other.to_string()),
    };
    for v in &list {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            field(v, "detector"),
            field(v, "rule"),
            field(v, "action"),
            field(v, "position")
        );
    }
    out.push_str("</tbody></table>");
    out
}

/// JSON indented when it parses; anything else as it is.
fn pretty(text: &str) -> String {
    serde_json::from_str::<Value>(text)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| text.to_string())
}
