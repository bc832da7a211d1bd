//! Routing: aliases (set, delete), groups (as JSON: set, delete) and the deployments' breakers
//! (force open for a while, reset). Reads are the admin API's own (`GET /admin/routing`,
//! `GET /admin/breakers`); changes are its `AdminChange`s.

use std::fmt::Write;

use hyper::{Response, StatusCode};
use serde_json::Value;

use super::html::{self, esc, form};
use super::{Ctx, Form, done};
use crate::admin::AdminChange;
use crate::proxy::ProxyBody;

pub fn page(ctx: &Ctx<'_>, _unused: Option<()>) -> Response<ProxyBody> {
    let s = &ctx.session;
    let routing = crate::admin::http::routing(ctx.app);
    let breakers = crate::admin::http::breakers(ctx.app);
    let config = &routing["routing"];
    let mut body = String::from("<h2>Aliases</h2>");
    body.push_str(&form(
        s,
        "/ui/routing/alias",
        "card",
        "<label>Alias <input name=\"name\" required id=\"alias-name\"></label>\
         <label>Target model or group <input name=\"target\" required id=\"alias-target\"></label>\
         <button id=\"set-alias\">Set alias</button>",
    ));
    body.push_str("<table id=\"aliases\"><thead><tr><th>Alias</th><th>Target</th><th></th></tr></thead><tbody>");
    for (name, target) in config["aliases"].as_object().into_iter().flatten() {
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(name),
            esc(target.as_str().unwrap_or_default()),
            form(
                s,
                "/ui/routing/alias-delete",
                "inline",
                &format!(
                    "<input type=\"hidden\" name=\"name\" value=\"{}\"><button class=\"danger\">Delete</button>",
                    esc(name)
                )
            )
        );
    }
    body.push_str("</tbody></table><h2>Groups</h2>");
    for (name, group) in config["groups"].as_object().into_iter().flatten() {
        let text = serde_json::to_string_pretty(group).unwrap_or_default();
        let _ = write!(
            body,
            "<section class=\"module\"><h3>{}</h3>{}{}</section>",
            esc(name),
            form(
                s,
                "/ui/routing/group",
                "",
                &format!(
                    "<input type=\"hidden\" name=\"name\" value=\"{}\"><textarea name=\"group\" rows=\"8\">{}</textarea>\
                     <button class=\"plain\">Save group</button>",
                    esc(name),
                    esc(&text)
                )
            ),
            form(
                s,
                "/ui/routing/group-delete",
                "inline",
                &format!(
                    "<input type=\"hidden\" name=\"name\" value=\"{}\"><button class=\"danger\">Delete group</button>",
                    esc(name)
                )
            )
        );
    }
    body.push_str(&form(
        s,
        "/ui/routing/group",
        "card",
        "<label>New group <input name=\"name\" required></label>\
         <label>As JSON <textarea name=\"group\" rows=\"4\">{\"deployments\": []}</textarea></label>\
         <button>Add group</button>",
    ));
    body.push_str(
        "<h2>Breakers</h2><table id=\"breakers\"><thead><tr><th>Deployment</th><th>State</th>\
         <th class=\"num\">Failures in a row</th><th>Reason</th><th></th></tr></thead><tbody>",
    );
    let mut known: Vec<String> = routing["deployments"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| d.as_str().map(String::from))
        .collect();
    let mut rows: Vec<(String, Value)> = breakers["breakers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|b| {
            (
                b["deployment"].as_str().unwrap_or_default().to_string(),
                b.clone(),
            )
        })
        .collect();
    for (d, _) in &rows {
        known.retain(|k| k != d);
    }
    rows.extend(known.into_iter().map(|d| (d, Value::Null)));
    for (deployment, b) in rows {
        let phase = match &b["state"] {
            Value::Null => "closed".to_string(),
            Value::String(s) => s.clone(),
            other => other["phase"]
                .as_str()
                .map(String::from)
                .or_else(|| other.as_object().and_then(|o| o.keys().next().cloned()))
                .unwrap_or_else(|| other.to_string()),
        };
        let actions = format!(
            "{}{}",
            form(
                s,
                "/ui/routing/breaker-open",
                "inline",
                &format!(
                    "<input type=\"hidden\" name=\"deployment\" value=\"{}\"><label>for seconds \
                     <input name=\"seconds\" value=\"60\" size=\"4\"></label><button class=\"danger\">Force open</button>",
                    esc(&deployment)
                )
            ),
            form(
                s,
                "/ui/routing/breaker-reset",
                "inline",
                &format!(
                    "<input type=\"hidden\" name=\"deployment\" value=\"{}\"><button class=\"plain\">Reset</button>",
                    esc(&deployment)
                )
            )
        );
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td><td>{actions}</td></tr>",
            esc(&deployment),
            esc(&phase),
            b["consecutive_failures"].as_u64().unwrap_or(0),
            esc(b["reason"].as_str().unwrap_or_default())
        );
    }
    body.push_str("</tbody></table>");
    super::html(
        StatusCode::OK,
        html::page("Routing", "/ui/routing", Some(s), &body),
    )
}

pub async fn post(ctx: &Ctx<'_>, segments: &[&str], form: Form) -> Response<ProxyBody> {
    let name = form.text("name").unwrap_or_default();
    let deployment = form.text("deployment").unwrap_or_default();
    let change = match segments {
        ["routing", "alias"] => match form.text("target") {
            Some(target) if !name.is_empty() => Ok(AdminChange::SetAlias {
                name,
                target: Some(target),
            }),
            _ => Err("name and target: each is required".to_string()),
        },
        ["routing", "alias-delete"] => Ok(AdminChange::SetAlias { name, target: None }),
        ["routing", "group"] => {
            match serde_json::from_str::<Value>(form.get("group").unwrap_or("")) {
                Ok(group) if !name.is_empty() => Ok(AdminChange::SetGroup {
                    name,
                    group: Some(group),
                }),
                Ok(_) => Err("name: must not be empty".to_string()),
                Err(e) => Err(format!("group: not valid JSON: {e}")),
            }
        }
        ["routing", "group-delete"] => Ok(AdminChange::SetGroup { name, group: None }),
        ["routing", "breaker-open"] => match form.text("seconds").map(|s| s.parse::<u64>()) {
            Some(Ok(seconds)) if seconds > 0 => Ok(AdminChange::Breaker {
                deployment,
                open_for_ms: Some(seconds * 1000),
            }),
            _ => Err("seconds: a whole number of seconds, at least 1".to_string()),
        },
        ["routing", "breaker-reset"] => Ok(AdminChange::Breaker {
            deployment,
            open_for_ms: None,
        }),
        _ => return super::error_page(StatusCode::NOT_FOUND, "no such action"),
    };
    let outcome = match change {
        Ok(change) => ctx
            .app
            .admin
            .apply(&ctx.session.actor, change)
            .await
            .map(|e| format!("{} {} (ledger entry {})", e.action, e.target, e.seq))
            .map_err(|e| e.to_string()),
        Err(e) => Err(e),
    };
    done(ctx, "/ui/routing", outcome)
}
