//! Audit: the ledger, newest first, and a button that verifies the whole chain (the same check
//! as `GET /admin/audit`) and names the first bad entry.

use std::fmt::Write;

use hyper::{Response, StatusCode};
use serde_json::Value;

use super::html::{self, esc};
use super::{Ctx, Form};
use crate::proxy::ProxyBody;

/// Entries shown per page.
const PAGE: usize = 100;

pub async fn page(ctx: &Ctx<'_>, query: &Form) -> Response<ProxyBody> {
    let audit = match crate::admin::http::audit(ctx.app).await {
        Ok(found) => found,
        Err(e) => return super::error_page(StatusCode::INTERNAL_SERVER_ERROR, &e.message()),
    };
    let mut body = String::from(
        "<form method=\"get\" action=\"/ui/audit\" class=\"inline\"><input type=\"hidden\" \
         name=\"verify\" value=\"1\"><button id=\"verify\">Verify the ledger</button></form>",
    );
    if query.get("verify").is_some() {
        let v = &audit["verify"];
        if v["ok"].as_bool() == Some(true) {
            let _ = write!(
                body,
                "<p class=\"flash ok\" id=\"verify-result\">The ledger verifies: {} entries chained, \
                 head hash {}…, {} written before the ledger key.</p>",
                v["head_seq"],
                esc(v["head"]
                    .as_str()
                    .unwrap_or_default()
                    .get(..16)
                    .unwrap_or_default()),
                v["unanchored"]
            );
        } else {
            let _ = write!(
                body,
                "<p class=\"flash err\" id=\"verify-result\">The ledger does not verify: {}</p>",
                esc(v["error"].as_str().unwrap_or("unknown error"))
            );
        }
    }
    let before: Option<i64> = query.get("before").and_then(|b| b.parse().ok());
    let entries = audit["entries"].as_array().cloned().unwrap_or_default();
    let shown: Vec<&Value> = entries
        .iter()
        .rev()
        .filter(|e| before.is_none_or(|b| e["seq"].as_i64().unwrap_or(0) < b))
        .take(PAGE)
        .collect();
    body.push_str(
        "<table id=\"ledger\"><thead><tr><th class=\"num\">Seq</th><th>Time (UTC)</th><th>Actor</th>\
         <th>Action</th><th>Target</th><th>Details</th></tr></thead><tbody>",
    );
    for e in &shown {
        let details = serde_json::to_string(&e["details"]).unwrap_or_default();
        let details: String = details.chars().take(400).collect();
        let _ = write!(
            body,
            "<tr><td class=\"num\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td></tr>",
            e["seq"],
            html::ts(e["ts_ms"].as_i64().unwrap_or(0)),
            esc(e["actor"].as_str().unwrap_or_default()),
            esc(e["action"].as_str().unwrap_or_default()),
            esc(e["target"].as_str().unwrap_or_default()),
            esc(&details)
        );
    }
    body.push_str("</tbody></table>");
    if shown.len() == PAGE
        && let Some(last) = shown.last().and_then(|e| e["seq"].as_i64())
    {
        let _ = write!(
            body,
            "<div class=\"pager\"><a href=\"/ui/audit?before={last}\" id=\"next-page\">Older »</a></div>"
        );
    }
    super::html(
        StatusCode::OK,
        html::page("Audit", "/ui/audit", Some(&ctx.session), &body),
    )
}
