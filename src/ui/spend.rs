//! Spend: sums by key, team, model, provider or day over a range (the report `GET /admin/spend`
//! gives, from the daily roll-ups), and every budget against what its key or team has spent in
//! the budget's current period, with when that period resets.

use std::collections::HashMap;
use std::fmt::Write;

use hyper::{Response, StatusCode};

use super::html::{self, esc};
use super::{Ctx, Form};
use crate::proxy::ProxyBody;
use crate::request::grant::{Limits, Period};
use crate::store::{CalendarUnit, SpendBy, Window, now_ms};

const BY: &[&str] = &["key", "team", "model", "provider", "day"];
const SINCE: &[&str] = &["24h", "7d", "30d", "90d", "365d"];

pub async fn page(ctx: &Ctx<'_>, query: &Form) -> Response<ProxyBody> {
    let by = query.text("by").unwrap_or_else(|| "key".into());
    let since = query.text("since").unwrap_or_else(|| "30d".into());
    let report = match crate::admin::spend::report(&ctx.app.store, Some(&by), Some(&since)).await {
        Ok(report) => report,
        Err(e) => return super::error_page(e.status(), &e.message()),
    };
    let by_list: Vec<String> = BY.iter().map(|s| s.to_string()).collect();
    let since_list: Vec<String> = SINCE.iter().map(|s| s.to_string()).collect();
    let mut body = format!(
        "<form method=\"get\" action=\"/ui/spend\" class=\"filters\"><label>By {}</label>\
         <label>Since {}</label><button>Show</button></form>",
        html::select("by", "key", &by_list, Some(&by))
            .replace("<select ", "<select data-autosubmit "),
        html::select("since", "30d", &since_list, Some(&since))
            .replace("<select ", "<select data-autosubmit ")
    );
    let _ = write!(
        body,
        "<div class=\"tiles\"><div class=\"tile\"><div class=\"k\">Spent since {}</div><div class=\"v\" \
         id=\"spend-total\">{}</div></div><div class=\"tile\"><div class=\"k\">Saved by caches</div>\
         <div class=\"v\">{}</div></div></div>",
        esc(&since),
        html::usd(report["total_cost_nanos"].as_i64().unwrap_or(0)),
        html::usd(report["total_saved_nanos"].as_i64().unwrap_or(0))
    );
    let _ = write!(
        body,
        "<table id=\"spend\"><thead><tr><th>{}</th><th class=\"num\">Requests</th>\
         <th class=\"num\">Tokens in / out</th><th class=\"num\">Spend</th><th class=\"num\">Saved</th>\
         </tr></thead><tbody>",
        esc(&by)
    );
    for r in report["rows"].as_array().into_iter().flatten() {
        let n = |k: &str| r[k].as_i64().unwrap_or(0);
        let _ = write!(
            body,
            "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{} / {}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            esc(r["key"].as_str().unwrap_or_default()),
            html::count(n("requests")),
            html::count(n("prompt_tokens")),
            html::count(n("completion_tokens")),
            html::usd(n("cost_nanos")),
            html::usd(n("saved_nanos"))
        );
    }
    body.push_str("</tbody></table>");
    body.push_str(&budgets(ctx).await);
    super::html(
        StatusCode::OK,
        html::page("Spend", "/ui/spend", Some(&ctx.session), &body),
    )
}

fn unit(p: Period) -> CalendarUnit {
    match p {
        Period::Day => CalendarUnit::Day,
        Period::Week => CalendarUnit::Week,
        Period::Month => CalendarUnit::Month,
        Period::Total => CalendarUnit::Total,
    }
}

/// Every budget of a key or team: spent in the current period (from the daily roll-ups, whose
/// days line up with the calendar periods), the limit, and when it resets.
async fn budgets(ctx: &Ctx<'_>) -> String {
    let Some(table) = crate::modules::auth::table::of(ctx.app.admin.deps()) else {
        return String::new();
    };
    let state = table.load_full();
    let mut rows: Vec<(&'static str, String, String, Limits)> = Vec::new();
    for k in state.keys.values().filter(|k| k.revoked_ms.is_none()) {
        rows.push(("key", k.id.clone(), k.name.clone(), k.limits.clone()));
    }
    for t in state.teams.values() {
        rows.push(("team", t.name.clone(), t.name.clone(), t.limits.clone()));
    }
    rows.retain(|r| r.3.budget.is_some());
    let now = now_ms();
    let firsts = crate::store::first_of_rotations(&state.keys);
    // One roll-up read per (scope, period) in use.
    let mut spent: HashMap<(&'static str, i64), HashMap<String, i64>> = HashMap::new();
    for (scope, _, _, limits) in &rows {
        let Some(b) = &limits.budget else { continue };
        let start = Window::Calendar(unit(b.period)).bucket_start(now);
        if spent.contains_key(&(*scope, start)) {
            continue;
        }
        let by = if *scope == "key" {
            SpendBy::Key
        } else {
            SpendBy::Team
        };
        let store = ctx.app.store.spend.clone();
        // A key's budget counts what the keys it was rotated from spent, as enforced.
        let mut sums: HashMap<String, i64> = HashMap::new();
        for r in super::blocking(move || store.spend(by, start))
            .await
            .unwrap_or_default()
        {
            let id = match firsts.get(r.key.as_str()) {
                Some(first) if *scope == "key" => first.to_string(),
                _ => r.key,
            };
            *sums.entry(id).or_default() += r.cost_nanos;
        }
        spent.insert((*scope, start), sums);
    }
    let mut out = String::from(
        "<h2>Budgets</h2><table id=\"budgets\"><thead><tr><th>Scope</th><th>Name</th><th>Period</th>\
         <th class=\"num\">Spent</th><th class=\"num\">Limit</th><th></th><th>Resets (UTC)</th></tr>\
         </thead><tbody>",
    );
    if rows.is_empty() {
        out.push_str("<tr><td colspan=\"7\">No key or team has a budget.</td></tr>");
    }
    for (scope, id, name, limits) in &rows {
        let Some(b) = &limits.budget else { continue };
        let window = Window::Calendar(unit(b.period));
        let start = window.bucket_start(now);
        let counted = match firsts.get(id.as_str()) {
            Some(first) if *scope == "key" => *first,
            _ => id.as_str(),
        };
        let used = spent
            .get(&(*scope, start))
            .and_then(|m| m.get(counted))
            .copied()
            .unwrap_or(0);
        let pct = if b.limit_nanos > 0 {
            (used as f64 / b.limit_nanos as f64 * 100.0).min(100.0)
        } else {
            100.0
        };
        let over = if used >= b.limit_nanos { " over" } else { "" };
        let resets = if b.period == Period::Total {
            "never".to_string()
        } else {
            html::ts(window.resets_at(now))
        };
        // The bar's width is an SVG attribute: the CSP allows no inline style.
        let _ = write!(
            out,
            "<tr><td>{scope}</td><td>{}</td><td>{:?}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td><svg class=\"bar{over}\" width=\"120\" height=\"8\" viewBox=\"0 0 100 8\" \
             preserveAspectRatio=\"none\"><rect width=\"100\" height=\"8\" fill=\"#eef1f5\"/>\
             <rect width=\"{pct:.1}\" height=\"8\" fill=\"{}\"/></svg></td><td>{resets}</td></tr>",
            esc(name),
            b.period,
            html::usd(used),
            html::usd(b.limit_nanos),
            if over.is_empty() {
                "#2f6fde"
            } else {
                "#d92d20"
            }
        );
    }
    out.push_str("</tbody></table>");
    out
}
