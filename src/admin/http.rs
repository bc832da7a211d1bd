//! The admin API under `/admin`, bearer `STOCKYARD_ADMIN_KEY` (constant-time compare), an admin
//! key made with `stockyard admin-keys create` (role `admin`, or `read-only`: `GET` only), or the
//! per-run local token from the runtime file beside the database (how the CLI on the same machine
//! reaches the server it finds there). Without a configured or stored admin key every other
//! caller gets 403 saying how to enable it. Each change is recorded in the ledger with its actor:
//! `admin` (the configured key), `admin-key:NAME`, or the CLI's `cli:USER` (local token).
//!
//! - `GET /admin/modules`; `PUT /admin/modules/{name}` with `{"enabled": bool, "config": {...}}`
//! - `GET /admin/traces?limit=N&model=M&status=S`
//! - `GET /admin/spend?by=key|team|user|model|provider|day&since=7d` (the daily rollups)
//! - `GET /admin/audit`: the ledger and its verification
//! - `PUT /admin/prices`: a price file, as `stockyard prices update` loads it
//! - `GET /admin/routing`; `PUT|DELETE /admin/aliases/{name}` (`{"target": "..."}`);
//!   `PUT|DELETE /admin/groups/{name}` (a group as JSON)
//! - `GET /admin/breakers`; `POST /admin/breakers/{deployment}/open` (`{"for_ms": N}`);
//!   `POST /admin/breakers/{deployment}/reset`
//! - keys, teams and admin keys: see `keys_http.rs`
//! - `GET /admin/prompts`, `GET|PUT /admin/prompts/{name}`, `POST /admin/prompts/{name}/rollback`:
//!   prompt templates (`prompts.rs`)
//! - `GET|POST /admin/providers`, `DELETE /admin/providers/{id or name}`,
//!   `POST /admin/secrets/rotate`: provider credentials (`providers_http.rs`)
//! - `GET /admin/mcp`, `/admin/mcp/tools`, `/admin/mcp/calls`; `PUT|DELETE
//!   /admin/mcp/servers/{name}` and `/admin/mcp/rules/{id}`: the MCP gateway (`mcp_http.rs`)
//! - `GET /admin/db/stats`, `POST /admin/retention/run`, `POST /admin/backup`: operations
//!   (`ops_http.rs`)

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::AUTHORIZATION;
use hyper::{Method, Request, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{AdminChange, AdminError};
use crate::ledger;
use crate::proxy::{ApiError, ProxyBody};
use crate::server::App;
use crate::server::routes::ok_json;
use crate::store::{StoreError, TraceQuery};

const MAX_ADMIN_BODY: usize = 64 * 1024 * 1024;

pub async fn route(app: &Arc<App>, request: Request<Incoming>) -> Response<ProxyBody> {
    let caller = match authorize(app, &request) {
        Ok(caller) => caller,
        Err(err) => return err.into_response(),
    };
    let method = request.method().clone();
    if caller.read_only && !matches!(method, Method::GET | Method::HEAD) {
        return ApiError::AdminReadOnly.into_response();
    }
    let actor = caller.actor.as_str();
    let path = request.uri().path().trim_end_matches('/').to_string();
    let query = request.uri().query().unwrap_or_default().to_string();
    let result = match (method.clone(), path.as_str()) {
        (Method::GET, "/admin/modules") => Ok(json!({"modules": app.admin.listing()})),
        (Method::PUT, p) if p.starts_with("/admin/modules/") => {
            let name = p.trim_start_matches("/admin/modules/").to_string();
            update_module(app, actor, name, request).await
        }
        (Method::GET, "/admin/traces") => traces(app, &query).await,
        (Method::GET, "/admin/spend") => {
            let (by, since) = (query_param(&query, "by"), query_param(&query, "since"));
            super::spend::report(&app.store, by, since).await
        }
        (Method::GET, "/admin/audit") => audit(app).await,
        (Method::PUT, "/admin/prices") => prices(app, actor, request).await,
        (Method::GET, "/admin/routing") => Ok(routing(app)),
        (Method::PUT, p) if p.starts_with("/admin/aliases/") => {
            let name = p.trim_start_matches("/admin/aliases/").to_string();
            set_alias(app, actor, name, Some(request)).await
        }
        (Method::DELETE, p) if p.starts_with("/admin/aliases/") => {
            let name = p.trim_start_matches("/admin/aliases/").to_string();
            set_alias(app, actor, name, None).await
        }
        (Method::PUT, p) if p.starts_with("/admin/groups/") => {
            let name = p.trim_start_matches("/admin/groups/").to_string();
            set_group(app, actor, name, Some(request)).await
        }
        (Method::DELETE, p) if p.starts_with("/admin/groups/") => {
            let name = p.trim_start_matches("/admin/groups/").to_string();
            set_group(app, actor, name, None).await
        }
        (Method::GET, "/admin/breakers") => Ok(breakers(app)),
        (Method::POST, p) if p.starts_with("/admin/breakers/") && p.ends_with("/open") => {
            let id = p["/admin/breakers/".len()..p.len() - "/open".len()].to_string();
            open_breaker(app, actor, id, request).await
        }
        (Method::POST, p) if p.starts_with("/admin/breakers/") && p.ends_with("/reset") => {
            let id = p["/admin/breakers/".len()..p.len() - "/reset".len()].to_string();
            apply_change(
                app,
                actor,
                AdminChange::Breaker {
                    deployment: id,
                    open_for_ms: None,
                },
            )
            .await
        }
        (_, p) if super::keys_http::serves(p) => {
            super::keys_http::route(app, actor, &method, p, request).await
        }
        (_, p) if super::prompts::serves(p) => {
            super::prompts::route(app, actor, &method, p, &query, request).await
        }
        (_, p) if super::cache_http::serves(p) => {
            super::cache_http::route(app, actor, &method, p, request).await
        }
        (method, p) if super::ops_http::serves(p) => {
            super::ops_http::route(app, &method, p, request).await
        }
        (method, p) if super::mcp_http::serves(p) => {
            super::mcp_http::route(app, actor, &method, p, &query, request).await
        }
        (method, p) if super::providers_http::serves(p) => {
            super::providers_http::route(app, actor, method, p, request).await
        }
        _ => Err(ApiError::NotFound { path: path.clone() }),
    };
    match result {
        Ok(value) => ok_json(value),
        Err(err) => err.into_response(),
    }
}

/// Who called, as the ledger names them, and whether they may only read.
pub(crate) struct Caller {
    pub actor: String,
    pub read_only: bool,
}

/// The CLI on this machine (the local token) says which user runs it in this header; it is
/// believed only with that token, whose file only that machine's users can read.
pub const ACTOR_HEADER: &str = "x-stockyard-actor";

fn authorize(app: &App, request: &Request<Incoming>) -> Result<Caller, ApiError> {
    let presented = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(crate::request::bearer::bearer_token)
        .unwrap_or_default();
    let caller = |actor: String, read_only| Ok(Caller { actor, read_only });
    if app.local_admin_token.matches(presented) {
        let actor = request
            .headers()
            .get(ACTOR_HEADER)
            .and_then(|v| v.to_str().ok())
            .filter(|a| a.starts_with("cli:") && a.len() <= 64)
            .unwrap_or("cli");
        return caller(actor.to_string(), false);
    }
    admin_key_caller(app, presented)
}

/// The caller an admin key names: the configured key (`admin`), or a stored admin key
/// (`admin-key:NAME`, with its role). The web console logs in with this too.
pub(crate) fn admin_key_caller(app: &App, presented: &str) -> Result<Caller, ApiError> {
    let caller = |actor: String, read_only| Ok(Caller { actor, read_only });
    if let Some(key) = &app.config.admin_key
        && key.matches(presented)
    {
        return caller("admin".to_string(), false);
    }
    let table = crate::modules::auth::table::of(app.admin.deps());
    if let Some(found) = table.as_ref().and_then(|t| t.admin(presented)) {
        let read_only = found.role == crate::store::AdminRole::ReadOnly;
        return caller(format!("admin-key:{}", found.name), read_only);
    }
    let stored = table.is_some_and(|t| t.load().has_admin_keys());
    if app.config.admin_key.is_none() && !stored {
        return Err(ApiError::AdminDisabled);
    }
    Err(ApiError::AdminUnauthorized)
}

pub(super) async fn read_json<T: for<'de> Deserialize<'de>>(
    request: Request<Incoming>,
) -> Result<T, ApiError> {
    let bytes = read_bytes(request).await?;
    // The path names the field (`limits.budget.limit_nanos`), not only a line and column.
    serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_slice(&bytes)).map_err(
        |e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            ApiError::AdminInvalid {
                message: if path == "." || inner.is_syntax() || inner.is_eof() {
                    format!("invalid body: {inner}")
                } else {
                    format!("invalid body: {path}: {inner}")
                },
            }
        },
    )
}

pub(super) async fn read_bytes(request: Request<Incoming>) -> Result<Bytes, ApiError> {
    Limited::new(request.into_body(), MAX_ADMIN_BODY)
        .collect()
        .await
        .map(|c| c.to_bytes())
        .map_err(|e| ApiError::AdminInvalid {
            message: format!("cannot read body: {e}"),
        })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ModuleUpdate {
    #[serde(default)]
    enabled: Option<bool>,
    #[serde(default)]
    config: Option<Value>,
}

pub(crate) fn admin_error(err: AdminError) -> ApiError {
    match err {
        AdminError::UnknownModule { .. }
        | AdminError::UnknownDeployment { .. }
        | AdminError::NotFound(_) => ApiError::AdminNotFound {
            message: err.to_string(),
        },
        AdminError::Store(e) => ApiError::Internal {
            message: e.to_string(),
        },
        other => ApiError::AdminInvalid {
            message: other.to_string(),
        },
    }
}

async fn update_module(
    app: &Arc<App>,
    actor: &str,
    name: String,
    request: Request<Incoming>,
) -> Result<Value, ApiError> {
    let update: ModuleUpdate = read_json(request).await?;
    let change = AdminChange::UpdateModule {
        name: name.clone(),
        enabled: update.enabled,
        config: update.config,
    };
    let entry = app.admin.apply(actor, change).await.map_err(admin_error)?;
    let listing = app.admin.listing().into_iter().find(|m| m.name == name);
    Ok(json!({"module": listing, "ledger_seq": entry.seq, "ledger_hash": entry.hash}))
}

async fn prices(
    app: &Arc<App>,
    actor: &str,
    request: Request<Incoming>,
) -> Result<Value, ApiError> {
    let body = read_bytes(request).await?;
    let body = String::from_utf8(body.to_vec()).map_err(|_| ApiError::AdminInvalid {
        message: "price file must be UTF-8 JSON".into(),
    })?;
    let entry = app
        .admin
        .apply(actor, AdminChange::LoadPrices { body })
        .await
        .map_err(admin_error)?;
    Ok(json!({"ledger_seq": entry.seq, "details": entry.details}))
}

fn query_param<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

pub(super) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, ApiError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(ApiError::Internal {
            message: e.to_string(),
        }),
        Err(e) => Err(ApiError::Internal {
            message: e.to_string(),
        }),
    }
}

async fn traces(app: &Arc<App>, query: &str) -> Result<Value, ApiError> {
    let parse_err = |name: &str| ApiError::InvalidField {
        param: Some(name.into()),
        message: format!("{name} must be a number"),
    };
    let limit = query_param(query, "limit")
        .map(|v| v.parse::<usize>().map_err(|_| parse_err("limit")))
        .transpose()?;
    let status = query_param(query, "status")
        .map(|v| v.parse::<u16>().map_err(|_| parse_err("status")))
        .transpose()?;
    let model = query_param(query, "model").map(|m| m.replace("%2F", "/").replace("%2f", "/"));
    let q = TraceQuery {
        limit: limit.unwrap_or(50),
        model,
        status,
    };
    let traces = app.store.traces.clone();
    let rows = blocking(move || traces.traces(&q)).await?;
    Ok(json!({"traces": rows}))
}

pub(crate) async fn audit(app: &Arc<App>) -> Result<Value, ApiError> {
    let ledger = app.store.ledger.clone();
    let entries = blocking(move || ledger.ledger()).await?;
    let verification = match ledger::verify(&entries, Some(&app.ledger_key)) {
        Ok(v) => {
            json!({"ok": true, "head": v.head.hash, "head_seq": v.head.seq, "unanchored": v.unanchored})
        }
        Err(e) => json!({"ok": false, "error": e.to_string()}),
    };
    Ok(json!({"entries": entries, "verify": verification}))
}

async fn apply_change(app: &Arc<App>, actor: &str, change: AdminChange) -> Result<Value, ApiError> {
    let entry = app.admin.apply(actor, change).await.map_err(admin_error)?;
    Ok(
        json!({"ledger_seq": entry.seq, "ledger_hash": entry.hash, "action": entry.action, "target": entry.target}),
    )
}

/// The routing module's aliases, groups and default retry, as configured.
pub(crate) fn routing(app: &App) -> Value {
    let chain = app.admin.chain().load();
    let config = chain
        .states()
        .iter()
        .find(|s| s.name == "routing")
        .map(|s| s.config.clone())
        .unwrap_or_else(|| json!({}));
    json!({"routing": config, "deployments": app.admin.known_deployments()})
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AliasBody {
    target: String,
}

async fn set_alias(
    app: &Arc<App>,
    actor: &str,
    name: String,
    request: Option<Request<Incoming>>,
) -> Result<Value, ApiError> {
    let target = match request {
        Some(request) => Some(read_json::<AliasBody>(request).await?.target),
        None => None,
    };
    apply_change(app, actor, AdminChange::SetAlias { name, target }).await
}

async fn set_group(
    app: &Arc<App>,
    actor: &str,
    name: String,
    request: Option<Request<Incoming>>,
) -> Result<Value, ApiError> {
    let group = match request {
        Some(request) => Some(read_json::<Value>(request).await?),
        None => None,
    };
    apply_change(app, actor, AdminChange::SetGroup { name, group }).await
}

pub(crate) fn breakers(app: &App) -> Value {
    let now = crate::store::now_ms();
    let list: Vec<Value> = app
        .admin
        .routing()
        .breakers
        .all()
        .into_iter()
        .map(|(key, state)| {
            let phase = match state.phase {
                crate::store::BreakerPhase::Open { until_ms } if until_ms <= now => json!({"phase": "half_open_pending", "until_ms": until_ms}),
                phase => json!(phase),
            };
            let (deployment, upstream) = crate::modules::routing::breaker::split_key(&key);
            json!({"deployment": deployment, "upstream": upstream, "state": phase, "consecutive_failures": state.consecutive_failures, "reason": state.reason})
        })
        .collect();
    json!({"breakers": list})
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OpenBody {
    for_ms: u64,
}

async fn open_breaker(
    app: &Arc<App>,
    actor: &str,
    deployment: String,
    request: Request<Incoming>,
) -> Result<Value, ApiError> {
    let body: OpenBody = read_json(request).await?;
    apply_change(
        app,
        actor,
        AdminChange::Breaker {
            deployment,
            open_for_ms: Some(body.for_ms),
        },
    )
    .await
}
