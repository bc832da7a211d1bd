//! Modules: every known module with its state in force; toggle it, or edit its config as JSON.
//! A change is `AdminChange::UpdateModule` (as `PUT /admin/modules/{name}`), so the config is
//! merged by top-level key, checked by the module's own parser, and a refusal is shown next to
//! that module's field with the text as it was submitted.

use std::fmt::Write;

use hyper::{Response, StatusCode};
use serde_json::Value;

use super::html::{self, esc, form};
use super::{Ctx, Form, done};
use crate::admin::{AdminChange, AdminError};
use crate::proxy::ProxyBody;

/// A refused config edit: the module, the problem, the text submitted.
pub struct Refused<'a> {
    pub module: &'a str,
    pub problem: String,
    pub text: &'a str,
}

pub fn page(ctx: &Ctx<'_>, refused: Option<Refused<'_>>) -> Response<ProxyBody> {
    let s = &ctx.session;
    let mut body = String::from(
        "<p class=\"hint\">A config edit merges its top-level keys into the module's config; \
         every change is checked, applied without a restart and recorded in the ledger.</p>",
    );
    for m in ctx.app.admin.listing() {
        let (badge, label, next) = if m.enabled {
            ("on", "enabled", "false")
        } else {
            ("off", "disabled", "true")
        };
        let toggle = form(
            s,
            &format!("/ui/modules/{}", m.name),
            "inline",
            &format!(
                "<input type=\"hidden\" name=\"enabled\" value=\"{next}\">\
                 <button class=\"plain\" id=\"toggle-{}\">{}</button>",
                m.name,
                if m.enabled { "Disable" } else { "Enable" }
            ),
        );
        let mine = refused.as_ref().filter(|r| r.module == m.name);
        let text = match mine {
            Some(r) => r.text.to_string(),
            None => serde_json::to_string_pretty(&m.config).unwrap_or_default(),
        };
        let error = mine
            .map(|r| {
                format!(
                    "<p class=\"field-error\" id=\"error-{}\">{}</p>",
                    m.name,
                    esc(&r.problem)
                )
            })
            .unwrap_or_default();
        let editor = form(
            s,
            &format!("/ui/modules/{}", m.name),
            "",
            &format!(
                "<textarea name=\"config\" id=\"config-{0}\" rows=\"{rows}\" spellcheck=\"false\">{1}</textarea>\
                 {error}<button class=\"plain\" id=\"save-{0}\">Save config</button>",
                m.name,
                esc(&text),
                rows = text.lines().count().clamp(3, 16)
            ),
        );
        let _ = write!(
            body,
            "<section class=\"module\" id=\"module-{0}\"><h3>{0} <span class=\"badge {badge}\" \
             id=\"state-{0}\">{label}</span></h3><p class=\"hint\">{1}</p>{toggle}\
             <details{open}><summary>Config</summary>{editor}</details></section>",
            m.name,
            esc(m.description),
            open = if mine.is_some() { " open" } else { "" }
        );
    }
    let status = if refused.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    super::html(status, html::page("Modules", "/ui/modules", Some(s), &body))
}

pub async fn post(ctx: &Ctx<'_>, name: &str, form: Form) -> Response<ProxyBody> {
    let enabled = match form.get("enabled") {
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(other) => {
            return done(
                ctx,
                "/ui/modules",
                Err(format!("enabled: {other:?} is not true or false")),
            );
        }
        None => None,
    };
    let text = form.get("config").unwrap_or_default();
    let config = if form.get("config").is_some() {
        match serde_json::from_str::<Value>(text) {
            Ok(value) => Some(value),
            Err(e) => {
                let problem = format!("config: not valid JSON: {e}");
                return page(
                    ctx,
                    Some(Refused {
                        module: name,
                        problem,
                        text,
                    }),
                );
            }
        }
    } else {
        None
    };
    let change = AdminChange::UpdateModule {
        name: name.to_string(),
        enabled,
        config: config.clone(),
    };
    match ctx.app.admin.apply(&ctx.session.actor, change).await {
        Ok(entry) => done(
            ctx,
            "/ui/modules",
            Ok(format!(
                "{name}: {} (ledger entry {})",
                match enabled {
                    Some(true) => "enabled",
                    Some(false) => "disabled",
                    None => "config saved",
                },
                entry.seq
            )),
        ),
        // A config the module refuses is shown beside its field, as submitted.
        Err(e @ (AdminError::InvalidConfig { .. } | AdminError::Module(_))) if config.is_some() => {
            page(
                ctx,
                Some(Refused {
                    module: name,
                    problem: e.to_string(),
                    text,
                }),
            )
        }
        Err(e) => done(ctx, "/ui/modules", Err(e.to_string())),
    }
}
