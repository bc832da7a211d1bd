//! The admin API for keys, teams and admin keys. Listings come from the in-memory key table (what
//! the request path enforces) and never hold a key or its hash; a key is in an answer once, when
//! it is created or rotated. Every change goes through `Admin::apply`.
//!
//! - `GET|POST /admin/keys` (`POST` takes `{"name", "team"?, "limits"?, "metadata"?,
//!   "expires_ms"?}` and answers with `"key"` once); `GET|PATCH|PUT|DELETE /admin/keys/{id}`
//!   (`PATCH` takes the fields to change, `null` clears); `POST /admin/keys/{id}/revoke`;
//!   `POST /admin/keys/{id}/rotate` (a new key, the old one revoked, the same limits)
//! - `GET|POST /admin/teams` (`{"name", "limits"?}`); `GET|PATCH|PUT|DELETE /admin/teams/{name}`
//! - `GET|POST /admin/admin-keys` (`{"name", "role": "admin"|"read-only"}`, answers with `"key"`
//!   once); `DELETE /admin/admin-keys/{id or name}`, `POST /admin/admin-keys/{id}/revoke`

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Method, Request};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AdminChange;
use super::http::{admin_error, read_json};
use super::keys::{KeyOp, KeyPatch, LimitsPatch, NewKey, key_json};
use crate::ledger::LedgerEntry;
use crate::modules::auth::hasher;
use crate::modules::auth::table::{self, KeyState};
use crate::proxy::ApiError;
use crate::request::grant::Limits;
use crate::secret::Secret;
use crate::server::App;
use crate::store::{AdminRole, now_ms};

const ROOTS: [&str; 3] = ["/admin/keys", "/admin/teams", "/admin/admin-keys"];

/// Whether `path` is one of this file's.
pub fn serves(path: &str) -> bool {
    ROOTS
        .iter()
        .any(|root| path == *root || path.starts_with(&format!("{root}/")))
}

pub async fn route(
    app: &Arc<App>,
    actor: &str,
    method: &Method,
    path: &str,
    request: Request<Incoming>,
) -> Result<Value, ApiError> {
    let Some(keys) = table::of(app.admin.deps()) else {
        return Err(ApiError::Internal {
            message: "no key table".into(),
        });
    };
    let state = keys.load_full();
    let (root, rest) = ROOTS
        .iter()
        .find_map(|root| path.strip_prefix(root).map(|rest| (*root, rest)))
        .unwrap_or(("", ""));
    let parts: Vec<&str> = rest.split('/').filter(|p| !p.is_empty()).collect();
    let not_found = || ApiError::NotFound {
        path: path.to_string(),
    };
    let id = |i: usize| parts.get(i).map(|s| s.to_string()).unwrap_or_default();
    match (root, method, parts.len(), parts.get(1).copied()) {
        ("/admin/keys", &Method::GET, 0, _) => Ok(json!({"keys": state
            .keys
            .values()
            .map(|k| key_json(k, now_ms()))
            .collect::<Vec<_>>()})),
        ("/admin/keys", &Method::POST, 0, _) => {
            let key: NewKey = read_json(request).await?;
            let secret = new_secret(false)?;
            let op = KeyOp::CreateKey {
                key,
                secret: secret.clone(),
            };
            let entry = apply(app, actor, op).await?;
            Ok(issued(&entry, &secret, entry.details.clone()))
        }
        ("/admin/keys", &Method::GET, 1, _) => {
            show_key(&state, &id(0)).ok_or_else(|| ApiError::AdminNotFound {
                message: format!("no virtual key with id {:?}", id(0)),
            })
        }
        ("/admin/keys", &Method::PATCH | &Method::PUT, 1, _) => {
            let patch: KeyPatch = read_json(request).await?;
            let entry = apply(app, actor, KeyOp::UpdateKey { id: id(0), patch }).await?;
            changed(&entry)
        }
        ("/admin/keys", &Method::DELETE, 1, _)
        | ("/admin/keys", &Method::POST, 2, Some("revoke")) => {
            let entry = apply(app, actor, KeyOp::RevokeKey { id: id(0) }).await?;
            changed(&entry)
        }
        ("/admin/keys", &Method::POST, 2, Some("rotate")) => {
            let secret = new_secret(false)?;
            let op = KeyOp::RotateKey {
                id: id(0),
                secret: secret.clone(),
            };
            let entry = apply(app, actor, op).await?;
            Ok(issued(&entry, &secret, entry.details["new"].clone()))
        }
        ("/admin/teams", &Method::GET, 0, _) => Ok(json!({"teams": state
            .teams
            .values()
            .map(|t| team_json(&state, &t.name))
            .collect::<Vec<_>>()})),
        ("/admin/teams", &Method::POST, 0, _) => {
            let team: NewTeam = read_json(request).await?;
            let op = KeyOp::CreateTeam {
                name: team.name,
                limits: team.limits,
            };
            changed(&apply(app, actor, op).await?)
        }
        ("/admin/teams", &Method::GET, 1, _) => {
            if !state.teams.contains_key(&id(0)) {
                return Err(ApiError::AdminNotFound {
                    message: format!("no team named {:?}", id(0)),
                });
            }
            Ok(team_json(&state, &id(0)))
        }
        ("/admin/teams", &Method::PATCH | &Method::PUT, 1, _) => {
            let patch: LimitsPatch = read_json(request).await?;
            let op = KeyOp::UpdateTeam { name: id(0), patch };
            changed(&apply(app, actor, op).await?)
        }
        ("/admin/teams", &Method::DELETE, 1, _) => {
            changed(&apply(app, actor, KeyOp::DeleteTeam { name: id(0) }).await?)
        }
        ("/admin/admin-keys", &Method::GET, 0, _) => {
            Ok(json!({"admin_keys": state.admin_keys.values().collect::<Vec<_>>()}))
        }
        ("/admin/admin-keys", &Method::POST, 0, _) => {
            let new: NewAdminKey = read_json(request).await?;
            let secret = new_secret(true)?;
            let op = KeyOp::CreateAdminKey {
                name: new.name,
                role: new.role,
                secret: secret.clone(),
            };
            let entry = apply(app, actor, op).await?;
            Ok(issued(&entry, &secret, entry.details.clone()))
        }
        ("/admin/admin-keys", &Method::DELETE, 1, _)
        | ("/admin/admin-keys", &Method::POST, 2, Some("revoke")) => {
            changed(&apply(app, actor, KeyOp::RevokeAdminKey { id: id(0) }).await?)
        }
        _ => Err(not_found()),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewTeam {
    name: String,
    #[serde(default)]
    limits: Limits,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewAdminKey {
    name: String,
    role: AdminRole,
}

fn new_secret(admin: bool) -> Result<Secret<String>, ApiError> {
    hasher::generate(admin).map_err(|message| ApiError::Internal { message })
}

async fn apply(app: &Arc<App>, actor: &str, op: KeyOp) -> Result<LedgerEntry, ApiError> {
    app.admin
        .apply(actor, AdminChange::Keys(op))
        .await
        .map_err(admin_error)
}

fn changed(entry: &LedgerEntry) -> Result<Value, ApiError> {
    Ok(
        json!({"ledger_seq": entry.seq, "ledger_hash": entry.hash, "action": entry.action,
              "target": entry.target, "details": entry.details}),
    )
}

/// The answer that carries a new key, the one time it is shown.
fn issued(entry: &LedgerEntry, secret: &Secret<String>, record: Value) -> Value {
    let mut answer = match record {
        Value::Object(map) => map,
        _ => serde_json::Map::new(),
    };
    answer.insert("key".into(), json!(secret.expose()));
    answer.insert("ledger_seq".into(), json!(entry.seq));
    answer.insert("details".into(), entry.details.clone());
    Value::Object(answer)
}

fn show_key(state: &KeyState, id: &str) -> Option<Value> {
    let key = state.keys.get(id)?;
    let mut value = key_json(key, now_ms());
    // What the request path enforces: the key's limits and its team's.
    value["team_limits"] = json!(
        key.team
            .as_ref()
            .and_then(|t| state.teams.get(t))
            .map(|t| &t.limits)
    );
    Some(value)
}

fn team_json(state: &KeyState, name: &str) -> Value {
    let mut value = json!(state.teams.get(name));
    let keys: Vec<&str> = state
        .keys
        .values()
        .filter(|k| k.revoked_ms.is_none() && k.team.as_deref() == Some(name))
        .map(|k| k.id.as_str())
        .collect();
    value["keys"] = json!(keys);
    value
}
