//! Keys and teams: virtual keys (create, shown once; edit limits and budget; revoke), teams
//! (create; edit limits and budget) and provider credentials (add, rotate, remove; a secret is
//! never shown). Listings come from the in-memory key table the request path enforces; every
//! change is the admin API's `AdminChange`, through `Admin::apply`.
//!
//! The limits forms show the values in force; a field left empty clears that limit.

use std::fmt::Write;

use hyper::{Response, StatusCode};

use super::html::{self, esc, form};
use super::{Ctx, Form, done};
use crate::admin::AdminChange;
use crate::admin::keys::{KeyOp, KeyPatch, LimitsPatch, NewKey};
use crate::modules::auth::{hasher, table};
use crate::proxy::ProxyBody;
use crate::request::grant::{Budget, Limits, Period};
use crate::secret::Secret;
use crate::store::now_ms;

const PERIODS: &[&str] = &["day", "week", "month", "total"];

pub fn page(ctx: &Ctx<'_>, issued: Option<(&str, &str)>) -> Response<ProxyBody> {
    let Some(keys) = table::of(ctx.app.admin.deps()) else {
        return super::error_page(StatusCode::INTERNAL_SERVER_ERROR, "no key table");
    };
    let state = keys.load_full();
    let s = &ctx.session;
    let mut body = String::new();
    if let Some((name, secret)) = issued {
        let _ = write!(
            body,
            "<div class=\"flash ok\">Key <b>{}</b> created. Copy it now: it is shown this once and \
             stored only as a hash.<div class=\"secret\" id=\"new-key\">{}</div></div>",
            esc(name),
            esc(secret)
        );
    }
    let teams: Vec<String> = state.teams.keys().cloned().collect();

    body.push_str("<h2>Virtual keys</h2>");
    body.push_str(&form(
        s,
        "/ui/keys/create",
        "card",
        &format!(
            "<label>Name <input name=\"name\" id=\"new-key-name\" required></label>\
             <label>Team {}</label>{}<label>Models (globs, comma-separated) \
             <input name=\"models\" size=\"18\"></label><button id=\"create-key\">Create key</button>",
            html::select("team", "none", &teams, None),
            limit_fields(&Limits::default())
        ),
    ));
    body.push_str(
        "<table id=\"keys\"><thead><tr><th>Name</th><th>Id / prefix</th><th>Team</th><th>Status</th>\
         <th>Limits</th><th></th></tr></thead><tbody>",
    );
    let mut list: Vec<_> = state.keys.values().collect();
    list.sort_by_key(|k| std::cmp::Reverse(k.created_ms));
    let now = now_ms();
    for k in list {
        let status = crate::admin::keys::key_json(k, now)["status"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let live = status == "active";
        let badge = if live { "on" } else { "off" };
        let mut actions = String::new();
        if live {
            actions.push_str(&form(
                s,
                &format!("/ui/keys/{}/update", k.id),
                "inline",
                &format!(
                    "<label>Team {}</label>{}<button class=\"plain\">Save</button>",
                    html::select("team", "none", &teams, k.team.as_deref()),
                    limit_fields(&k.limits)
                ),
            ));
            actions.push_str(
                &form(
                    s,
                    &format!("/ui/keys/{}/revoke", k.id),
                    "inline",
                    "<button class=\"danger\">Revoke</button>",
                )
                .replace(
                    "<form ",
                    "<form data-confirm=\"Revoke this key? Requests with it will be refused.\" ",
                ),
            );
        }
        let _ = write!(
            body,
            "<tr data-key=\"{}\"><td>{}</td><td><code>{}</code><br><code>{}…</code></td><td>{}</td>\
             <td><span class=\"badge {badge}\">{}</span></td><td>{}</td><td>{actions}</td></tr>",
            esc(&k.id),
            esc(&k.name),
            esc(&k.id),
            esc(&k.prefix),
            html::opt(k.team.as_deref()),
            esc(&status),
            limits_text(&k.limits)
        );
    }
    body.push_str("</tbody></table>");

    body.push_str("<h2>Teams</h2>");
    body.push_str(&form(
        s,
        "/ui/teams/create",
        "card",
        &format!(
            "<label>Name <input name=\"name\" id=\"new-team-name\" required \
             pattern=\"[A-Za-z0-9._-]{{1,64}}\"></label>{}<button id=\"create-team\">Create team</button>",
            limit_fields(&Limits::default())
        ),
    ));
    body.push_str(
        "<table id=\"teams\"><thead><tr><th>Team</th><th>Limits</th><th>Keys</th><th></th></tr></thead><tbody>",
    );
    for t in state.teams.values() {
        let members = state
            .keys
            .values()
            .filter(|k| k.revoked_ms.is_none() && k.team.as_deref() == Some(t.name.as_str()))
            .count();
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td class=\"num\">{members}</td><td>{}</td></tr>",
            esc(&t.name),
            limits_text(&t.limits),
            form(
                s,
                &format!("/ui/teams/{}/update", t.name),
                "inline",
                &format!(
                    "{}<button class=\"plain\">Save</button>",
                    limit_fields(&t.limits)
                )
            )
        );
    }
    body.push_str("</tbody></table>");
    body.push_str(&credentials(ctx));
    super::html(
        StatusCode::OK,
        html::page("Keys & teams", "/ui/keys", Some(s), &body),
    )
}

/// The provider credentials section: every provider, its stored keys by fingerprint.
fn credentials(ctx: &Ctx<'_>) -> String {
    let s = &ctx.session;
    let listing = crate::admin::providers_http::listing(ctx.app);
    let mut out = String::from("<h2>Provider credentials</h2>");
    let _ = write!(
        out,
        "<p class=\"hint\">Stored keys are sealed under the master key ({}); only a fingerprint is \
         ever shown.</p>",
        esc(listing["master_key"].as_str().unwrap_or("none"))
    );
    out.push_str(&form(
        s,
        "/ui/providers/add",
        "card",
        "<label>Provider <input name=\"name\" required size=\"12\"></label>\
         <label>Kind <select name=\"kind\"><option>openai</option><option>openai_compatible</option>\
         <option>anthropic</option><option>gemini</option><option>vertex</option></select></label>\
         <label>Base URL (new providers) <input name=\"base_url\" size=\"22\"></label>\
         <label>Key <input type=\"password\" name=\"key\" required autocomplete=\"off\"></label>\
         <label>Label <input name=\"label\" size=\"10\"></label><button>Add credential</button>",
    ));
    out.push_str(
        "<table id=\"credentials\"><thead><tr><th>Provider</th><th>Kind</th><th>Key sources</th>\
         <th>Stored credential</th><th></th></tr></thead><tbody>",
    );
    for p in listing["providers"].as_array().into_iter().flatten() {
        let name = p["name"].as_str().unwrap_or_default();
        let creds = p["credentials"].as_array().cloned().unwrap_or_default();
        let from_env = if p["key_from_config_or_env"].as_bool() == Some(true) {
            "config/env"
        } else {
            "–"
        };
        if creds.is_empty() {
            let _ = write!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{from_env}</td><td>none stored</td><td></td></tr>",
                esc(name),
                esc(p["kind"].as_str().unwrap_or_default())
            );
        }
        for c in creds {
            let id = c["id"].as_str().unwrap_or_default();
            let actions = format!(
                "{}{}",
                form(
                    s,
                    &format!("/ui/providers/{id}/rotate"),
                    "inline",
                    "<label>New key <input type=\"password\" name=\"key\" required \
                     autocomplete=\"off\" size=\"12\"></label><button class=\"plain\">Rotate</button>",
                ),
                form(
                    s,
                    &format!("/ui/providers/{id}/remove"),
                    "inline",
                    "<button class=\"danger\">Remove</button>"
                )
                .replace("<form ", "<form data-confirm=\"Remove this credential?\" ")
            );
            let _ = write!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{from_env}</td><td><code>{}</code> {} <span class=\"hint\">{}</span></td>\
                 <td>{actions}</td></tr>",
                esc(name),
                esc(c["kind"].as_str().unwrap_or_default()),
                esc(c["fingerprint"].as_str().unwrap_or_default()),
                esc(c["label"].as_str().unwrap_or_default()),
                esc(id)
            );
        }
    }
    out.push_str("</tbody></table>");
    out
}

fn limit_fields(l: &Limits) -> String {
    let budget = l.budget.as_ref();
    let usd = budget
        .map(|b| format!("{}", b.limit_nanos as f64 / 1e9))
        .unwrap_or_default();
    let period = budget.map(|b| period_name(b.period)).unwrap_or("month");
    let periods: Vec<String> = PERIODS.iter().map(|p| p.to_string()).collect();
    let num = |v: Option<u64>| v.map(|n| n.to_string()).unwrap_or_default();
    format!(
        "<label>Budget USD <input name=\"budget_usd\" value=\"{}\" size=\"7\" inputmode=\"decimal\"></label>\
         <label>per {}</label><label>RPM <input name=\"rpm\" value=\"{}\" size=\"5\"></label>\
         <label>TPM <input name=\"tpm\" value=\"{}\" size=\"7\"></label>",
        esc(&usd),
        html::select("period", "month", &periods, Some(period)),
        num(l.rpm),
        num(l.tpm)
    )
}

fn period_name(p: Period) -> &'static str {
    match p {
        Period::Day => "day",
        Period::Week => "week",
        Period::Month => "month",
        Period::Total => "total",
    }
}

fn limits_text(l: &Limits) -> String {
    let mut parts = Vec::new();
    if let Some(b) = &l.budget {
        parts.push(format!(
            "{} per {}",
            html::usd(b.limit_nanos),
            period_name(b.period)
        ));
    }
    if let Some(rpm) = l.rpm {
        parts.push(format!("{rpm} rpm"));
    }
    if let Some(tpm) = l.tpm {
        parts.push(format!("{tpm} tpm"));
    }
    if !l.models.is_empty() {
        parts.push(format!("models {}", l.models.join(", ")));
    }
    if parts.is_empty() {
        "unlimited".into()
    } else {
        esc(&parts.join(" · "))
    }
}

/// The limits a form sets; an empty field clears its limit. Errors name the field.
fn limits_patch(form: &Form, current: Option<&Limits>) -> Result<LimitsPatch, String> {
    let number = |name: &str| -> Result<Option<u64>, String> {
        match form.text(name) {
            None => Ok(None),
            Some(v) => v
                .parse::<u64>()
                .map(Some)
                .map_err(|_| format!("{name}: {v:?} is not a whole number")),
        }
    };
    let budget = match form.text("budget_usd") {
        None => None,
        Some(v) => {
            let usd: f64 = v
                .parse()
                .ok()
                .filter(|u: &f64| u.is_finite() && *u >= 0.0)
                .ok_or_else(|| format!("budget_usd: {v:?} is not an amount of dollars"))?;
            let period_text = form.text("period").unwrap_or_else(|| "month".into());
            let period: Period = serde_json::from_value(serde_json::json!(period_text))
                .map_err(|_| format!("period: {period_text:?} is not day, week, month or total"))?;
            let alert_percents = current
                .and_then(|l| l.budget.as_ref())
                .map(|b| b.alert_percents.clone())
                .unwrap_or_default();
            Some(Budget {
                limit_nanos: (usd * 1e9).round() as i64,
                period,
                alert_percents,
            })
        }
    };
    Ok(LimitsPatch {
        budget: Some(budget),
        rpm: Some(number("rpm")?),
        tpm: Some(number("tpm")?),
        models: None,
    })
}

fn models(form: &Form) -> Vec<String> {
    form.text("models")
        .map(|m| {
            m.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

async fn apply(ctx: &Ctx<'_>, change: AdminChange) -> Result<String, String> {
    ctx.app
        .admin
        .apply(&ctx.session.actor, change)
        .await
        .map(|entry| {
            format!(
                "{} {} (ledger entry {})",
                entry.action, entry.target, entry.seq
            )
        })
        .map_err(|e| e.to_string())
}

pub async fn post(ctx: &Ctx<'_>, segments: &[&str], form: Form) -> Response<ProxyBody> {
    let back = "/ui/keys";
    let table = table::of(ctx.app.admin.deps());
    let state = table.as_ref().map(|t| t.load_full());
    match segments {
        ["keys", "create"] => {
            let result = async {
                let name = form.text("name").ok_or("name: must not be empty")?;
                let patch = limits_patch(&form, None)?;
                let mut limits = Limits {
                    models: models(&form),
                    ..Limits::default()
                };
                if let Some(budget) = patch.budget {
                    limits.budget = budget;
                }
                limits.rpm = patch.rpm.flatten();
                limits.tpm = patch.tpm.flatten();
                let secret = hasher::generate(false)?;
                let key = NewKey {
                    name: name.clone(),
                    team: form.text("team"),
                    limits,
                    ..NewKey::default()
                };
                let op = KeyOp::CreateKey {
                    key,
                    secret: secret.clone(),
                };
                apply(ctx, AdminChange::Keys(op)).await?;
                Ok::<_, String>((name, secret))
            }
            .await;
            match result {
                Ok((name, secret)) => page(ctx, Some((&name, secret.expose()))),
                Err(e) => done(ctx, back, Err(e)),
            }
        }
        ["keys", id, "update"] => {
            let current = state
                .as_ref()
                .and_then(|s| s.keys.get(*id))
                .map(|k| k.limits.clone());
            let outcome = match limits_patch(&form, current.as_ref()) {
                Ok(limits) => {
                    let patch = KeyPatch {
                        team: Some(form.text("team")),
                        limits,
                        ..KeyPatch::default()
                    };
                    let op = KeyOp::UpdateKey {
                        id: id.to_string(),
                        patch,
                    };
                    apply(ctx, AdminChange::Keys(op)).await
                }
                Err(e) => Err(e),
            };
            done(ctx, back, outcome)
        }
        ["keys", id, "revoke"] => {
            let op = KeyOp::RevokeKey { id: id.to_string() };
            done(ctx, back, apply(ctx, AdminChange::Keys(op)).await)
        }
        ["teams", "create"] => {
            let outcome = match (form.text("name"), limits_patch(&form, None)) {
                (None, _) => Err("name: must not be empty".to_string()),
                (_, Err(e)) => Err(e),
                (Some(name), Ok(patch)) => {
                    let limits = Limits {
                        budget: patch.budget.flatten(),
                        rpm: patch.rpm.flatten(),
                        tpm: patch.tpm.flatten(),
                        models: Vec::new(),
                    };
                    apply(ctx, AdminChange::Keys(KeyOp::CreateTeam { name, limits })).await
                }
            };
            done(ctx, back, outcome)
        }
        ["teams", name, "update"] => {
            let current = state
                .as_ref()
                .and_then(|s| s.teams.get(*name))
                .map(|t| t.limits.clone());
            let outcome = match limits_patch(&form, current.as_ref()) {
                Ok(patch) => {
                    let op = KeyOp::UpdateTeam {
                        name: name.to_string(),
                        patch,
                    };
                    apply(ctx, AdminChange::Keys(op)).await
                }
                Err(e) => Err(e),
            };
            done(ctx, back, outcome)
        }
        ["providers", "add"] => {
            let outcome = match (form.text("name"), form.text("kind"), form.text("key")) {
                (Some(provider), Some(kind), Some(key)) => {
                    let change = AdminChange::AddCredential {
                        provider,
                        kind,
                        base_url: form.text("base_url"),
                        key: Secret::new(key),
                        label: form.text("label"),
                    };
                    apply(ctx, change).await
                }
                _ => Err("name, kind and key: each is required".to_string()),
            };
            done(ctx, back, outcome)
        }
        ["providers", id, "rotate"] => done(ctx, back, rotate(ctx, id, &form).await),
        ["providers", id, "remove"] => {
            let change = AdminChange::RemoveCredential {
                target: id.to_string(),
            };
            done(ctx, back, apply(ctx, change).await)
        }
        _ => super::error_page(StatusCode::NOT_FOUND, "no such action"),
    }
}

/// A credential's rotation: the new key is stored beside the old one, then the old one removed,
/// so the provider is never without a key (two ledger entries).
async fn rotate(ctx: &Ctx<'_>, id: &str, form: &Form) -> Result<String, String> {
    let key = form.text("key").ok_or("key: the new key is required")?;
    let old = ctx
        .app
        .admin
        .vault()
        .map(|v| v.credentials())
        .unwrap_or_default()
        .into_iter()
        .find(|c| c.id == id)
        .ok_or_else(|| format!("no stored credential {id:?}"))?;
    let added = apply(
        ctx,
        AdminChange::AddCredential {
            provider: old.provider.clone(),
            kind: old.kind.clone(),
            base_url: old.base_url.clone(),
            key: Secret::new(key),
            label: old.label.clone(),
        },
    )
    .await?;
    let removed = apply(
        ctx,
        AdminChange::RemoveCredential {
            target: id.to_string(),
        },
    )
    .await?;
    Ok(format!("{added}; {removed}"))
}
