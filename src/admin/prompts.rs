//! Prompt templates' admin path and API: `stockyard prompts put|get|list|rollback` and
//! `/admin/prompts`, each change through [`Admin::apply`] (validated and compiled, persisted
//! with its ledger entry, then swapped into the in-memory book the request path reads).
//!
//! - `GET /admin/prompts`: every template, its version in force and its newest
//! - `GET /admin/prompts/{name}` (`?version=N`): a version's definition (default: in force)
//! - `PUT /admin/prompts/{name}`: a new version (`{"messages": [...]}` or `{"variants": [...]}`),
//!   which goes in force
//! - `POST /admin/prompts/{name}/rollback` (`{"version": N}`, default: the one before the
//!   version in force)

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Method, Request};
use serde::Deserialize;
use serde_json::{Value, json};

use super::apply::{Admin, AdminChange, AdminError};
use super::http::{admin_error, read_json};
use crate::ledger::{LedgerDraft, LedgerEntry};
use crate::modules::prompt_templates::book::{self, Compiled, PromptBook, Template, name_problem};
use crate::request::ApiError;
use crate::server::App;
use crate::store::Persist;
use crate::store::prompts::{PromptVersion, PromptWrite};

pub(super) fn serves(path: &str) -> bool {
    path == "/admin/prompts" || path.starts_with("/admin/prompts/")
}

pub(super) async fn route(
    app: &Arc<App>,
    actor: &str,
    method: &Method,
    path: &str,
    query: &str,
    request: Request<Incoming>,
) -> Result<Value, ApiError> {
    let book = book::book(app.admin.deps());
    let rest = path
        .trim_start_matches("/admin/prompts")
        .trim_start_matches('/');
    match (method, rest) {
        (&Method::GET, "") => Ok(list(&book)),
        (&Method::POST, r) if r.ends_with("/rollback") => {
            #[derive(Default, Deserialize)]
            #[serde(deny_unknown_fields)]
            struct Rollback {
                version: Option<u32>,
            }
            let name = r.trim_end_matches("/rollback").to_string();
            let bytes = super::http::read_bytes(request).await?;
            let body: Rollback = if bytes.is_empty() {
                Rollback::default()
            } else {
                serde_json::from_slice(&bytes).map_err(|e| ApiError::AdminInvalid {
                    message: format!("invalid body: {e}"),
                })?
            };
            let change = AdminChange::RollbackPrompt {
                name,
                version: body.version,
            };
            applied(app, actor, change).await
        }
        (&Method::GET, name) => {
            let version = query
                .split('&')
                .find_map(|kv| kv.strip_prefix("version="))
                .map(|v| {
                    v.parse::<u32>().map_err(|_| ApiError::AdminInvalid {
                        message: format!("version: {v:?} is not a number"),
                    })
                })
                .transpose()?;
            get(&book, name, version).map_err(|message| ApiError::AdminNotFound { message })
        }
        (&Method::PUT, name) => {
            let definition: Value = read_json(request).await?;
            let change = AdminChange::PutPrompt {
                name: name.to_string(),
                definition,
            };
            applied(app, actor, change).await
        }
        _ => Err(ApiError::NotFound {
            path: path.to_string(),
        }),
    }
}

async fn applied(app: &Arc<App>, actor: &str, change: AdminChange) -> Result<Value, ApiError> {
    let entry = app.admin.apply(actor, change).await.map_err(admin_error)?;
    Ok(
        json!({"ledger_seq": entry.seq, "action": entry.action, "target": entry.target,
        "details": entry.details}),
    )
}

/// Every template: name, version in force, newest version, number of versions.
pub fn list(book: &PromptBook) -> Value {
    let templates = book.snapshot();
    let rows: Vec<Value> = templates
        .iter()
        .map(|(name, t)| {
            json!({"name": name, "active": t.active, "latest": t.latest(),
                "versions": t.versions.len()})
        })
        .collect();
    json!({"prompts": rows})
}

/// One version's definition (default: the one in force).
pub fn get(book: &PromptBook, name: &str, version: Option<u32>) -> Result<Value, String> {
    let reference = match version {
        Some(v) => format!("{name}@{v}"),
        None => name.to_string(),
    };
    let compiled = book.find(&reference)?;
    let active = book.snapshot().get(name).map(|t| t.active);
    Ok(
        json!({"name": name, "version": compiled.version, "active": active,
        "created_ms": compiled.created_ms, "definition": compiled.stored}),
    )
}

/// Stores `definition` as the next version of `name` and puts it in force.
pub(super) async fn put(
    admin: &Admin,
    actor: &str,
    name: String,
    definition: Value,
) -> Result<LedgerEntry, AdminError> {
    if let Some(problem) = name_problem(&name) {
        return Err(AdminError::Invalid(problem));
    }
    let book = book::book(admin.deps());
    let mut templates = (*book.snapshot()).clone();
    let version = templates.get(&name).map_or(1, |t| t.latest() + 1);
    let now = crate::store::now_ms();
    let compiled = Compiled::build(version, now, definition)
        .map_err(|problem| AdminError::Invalid(format!("prompt {name}: {problem}")))?;
    let body = compiled.body();
    let variants: Vec<&str> = compiled
        .stored
        .variants
        .iter()
        .map(|v| v.name.as_str())
        .collect();
    let draft = LedgerDraft {
        actor: actor.to_string(),
        action: "prompt.put".into(),
        target: name.clone(),
        details: json!({"version": version, "variants": variants,
            "sha256": hex::encode(<sha2::Sha256 as sha2::Digest>::digest(body.as_bytes()))}),
    };
    let write = PromptWrite::Put(PromptVersion {
        name: name.clone(),
        version,
        body,
        created_ms: now,
    });
    let entry = admin
        .writer
        .admin(Some(Persist::Prompt(write)), draft)
        .await?;
    let template = templates.entry(name).or_insert_with(|| Template {
        active: version,
        versions: Default::default(),
    });
    template.versions.insert(version, Arc::new(compiled));
    template.active = version;
    book.store(templates);
    Ok(entry)
}

/// Puts `version` of `name` back in force (default: the newest version before the one in force).
pub(super) async fn rollback(
    admin: &Admin,
    actor: &str,
    name: String,
    version: Option<u32>,
) -> Result<LedgerEntry, AdminError> {
    let book = book::book(admin.deps());
    let mut templates = (*book.snapshot()).clone();
    let Some(template) = templates.get_mut(&name) else {
        return Err(AdminError::NotFound(format!(
            "no prompt template named {name:?}"
        )));
    };
    let from = template.active;
    let to = match version {
        Some(v) if template.versions.contains_key(&v) => v,
        Some(v) => {
            return Err(AdminError::NotFound(format!(
                "prompt template {name:?} has no version {v}"
            )));
        }
        None => template
            .versions
            .range(..from)
            .next_back()
            .map(|(v, _)| *v)
            .ok_or_else(|| {
                AdminError::Invalid(format!(
                    "prompt template {name:?} has no version before {from} to roll back to"
                ))
            })?,
    };
    let draft = LedgerDraft {
        actor: actor.to_string(),
        action: "prompt.rollback".into(),
        target: name.clone(),
        details: json!({"from": from, "to": to}),
    };
    let write = PromptWrite::Activate {
        name: name.clone(),
        version: to,
    };
    let entry = admin
        .writer
        .admin(Some(Persist::Prompt(write)), draft)
        .await?;
    template.active = to;
    book.store(templates);
    Ok(entry)
}
