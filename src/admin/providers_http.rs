//! The admin API for provider credentials and the master key:
//! - `GET /admin/providers`: every provider with its key sources; stored credentials by id,
//!   fingerprint and label, never a key;
//! - `POST /admin/providers` with `{"name", "kind", "base_url"?, "key", "label"?}`;
//! - `DELETE /admin/providers/{id or name}`;
//! - `POST /admin/secrets/rotate` with `{"new_key"?: hex or base64}`.

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Method, Request};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AdminChange;
use super::http::{admin_error, read_json};
use crate::proxy::ApiError;
use crate::secret::Secret;
use crate::server::App;

pub(super) fn serves(path: &str) -> bool {
    path == "/admin/providers"
        || path.starts_with("/admin/providers/")
        || path == "/admin/secrets/rotate"
}

pub(super) async fn route(
    app: &Arc<App>,
    actor: &str,
    method: Method,
    path: &str,
    request: Request<Incoming>,
) -> Result<Value, ApiError> {
    match (method, path) {
        (Method::GET, "/admin/providers") => Ok(listing(app)),
        (Method::POST, "/admin/providers") => {
            let body: AddBody = read_json(request).await?;
            let change = AdminChange::AddCredential {
                provider: body.name,
                kind: body.kind,
                base_url: body.base_url,
                key: Secret::new(body.key),
                label: body.label,
            };
            apply(app, actor, change).await
        }
        (Method::DELETE, p) if p.starts_with("/admin/providers/") => {
            let target = p.trim_start_matches("/admin/providers/").to_string();
            apply(app, actor, AdminChange::RemoveCredential { target }).await
        }
        (Method::POST, "/admin/secrets/rotate") => {
            let body: RotateBody = read_json(request).await?;
            let change = AdminChange::RotateSecrets {
                new_key: body.new_key.map(Secret::new),
            };
            apply(app, actor, change).await
        }
        (method, _) => Err(ApiError::MethodNotAllowed {
            method: method.to_string(),
            path: path.to_string(),
        }),
    }
}

/// The body of `POST /admin/providers`. Not `Debug`: it holds the key.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AddBody {
    name: String,
    kind: String,
    #[serde(default)]
    base_url: Option<String>,
    key: String,
    #[serde(default)]
    label: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RotateBody {
    #[serde(default)]
    new_key: Option<String>,
}

async fn apply(app: &Arc<App>, actor: &str, change: AdminChange) -> Result<Value, ApiError> {
    let entry = app.admin.apply(actor, change).await.map_err(admin_error)?;
    Ok(json!({
        "ledger_seq": entry.seq,
        "ledger_hash": entry.hash,
        "action": entry.action,
        "target": entry.target,
        "details": entry.details,
    }))
}

/// Every provider the proxy routes to, with where its keys come from.
pub fn listing(app: &App) -> Value {
    let stored = app
        .admin
        .vault()
        .map(|v| v.credentials())
        .unwrap_or_default();
    let providers: Vec<Value> = app
        .proxy
        .providers
        .providers()
        .iter()
        .map(|p| {
            let from_env = p.key_pool().is_some_and(|pool| pool.sources().1);
            let credentials: Vec<Value> = stored
                .iter()
                .filter(|c| c.provider == p.name())
                .map(|c| json!(c))
                .collect();
            json!({
                "name": p.name(),
                "kind": p.kind().as_str(),
                "base_url": p.base_url(),
                "configured": app.proxy.providers.configured(p.name()).is_some(),
                "key_from_config_or_env": from_env,
                "credentials": credentials,
            })
        })
        .collect();
    json!({
        "providers": providers,
        "master_key": app.admin.vault().map(|v| v.source().describe()),
    })
}
