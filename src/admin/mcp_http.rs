//! The admin API of the MCP gateway (`modules/mcp`):
//! - `GET /admin/mcp`: whether it is on, the rules' revision, the servers (tokens shown only as
//!   present or not) and the rules;
//! - `GET /admin/mcp/tools`: every server's tools (unfiltered), its breaker and any error;
//! - `GET /admin/mcp/calls?limit=N`: the newest tool calls, as recorded;
//! - `PUT|DELETE /admin/mcp/servers/{name}` (a server as JSON, plus `"token"` for a bearer token,
//!   sealed before it is stored);
//! - `PUT|DELETE /admin/mcp/rules/{id}` (a rule as JSON; the path names its id).
//!
//! Changes go through `admin::apply` and answer with their ledger entry and the new revision.

use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::{Method, Request};
use serde_json::{Value, json};

use super::AdminChange;
use super::http::{admin_error, read_json};
use super::mcp::McpChange;
use crate::modules::mcp::McpConfig;
use crate::modules::registry::ModuleConfig;
use crate::proxy::ApiError;
use crate::secret::Secret;
use crate::server::App;

pub(super) fn serves(path: &str) -> bool {
    path == "/admin/mcp" || path.starts_with("/admin/mcp/")
}

pub(super) async fn route(
    app: &Arc<App>,
    actor: &str,
    method: &Method,
    path: &str,
    query: &str,
    request: Request<Incoming>,
) -> Result<Value, ApiError> {
    let servers = "/admin/mcp/servers/";
    let rules = "/admin/mcp/rules/";
    match (method, path) {
        (&Method::GET, "/admin/mcp") => Ok(overview(app)),
        (&Method::GET, "/admin/mcp/tools") => Ok(tools(app).await),
        (&Method::GET, "/admin/mcp/calls") => calls(app, query).await,
        (&Method::PUT, p) if p.starts_with(servers) => {
            let name = p[servers.len()..].to_string();
            let mut server: Value = read_json(request).await?;
            let token = server
                .as_object_mut()
                .and_then(|s| s.remove("token"))
                .and_then(|t| t.as_str().map(|t| Secret::new(t.to_string())));
            let change = McpChange::SetServer {
                name,
                server,
                token,
            };
            apply(app, actor, change).await
        }
        (&Method::DELETE, p) if p.starts_with(servers) => {
            let name = p[servers.len()..].to_string();
            apply(app, actor, McpChange::RemoveServer { name }).await
        }
        (&Method::PUT, p) if p.starts_with(rules) => {
            let id = p[rules.len()..].to_string();
            let mut rule: Value = read_json(request).await?;
            if !rule.is_object() {
                return Err(ApiError::AdminInvalid {
                    message: "the rule must be a JSON object".into(),
                });
            }
            rule["id"] = Value::String(id);
            apply(app, actor, McpChange::SetRule { rule }).await
        }
        (&Method::DELETE, p) if p.starts_with(rules) => {
            let id = p[rules.len()..].to_string();
            apply(app, actor, McpChange::RemoveRule { id }).await
        }
        (method, _) => Err(ApiError::MethodNotAllowed {
            method: method.to_string(),
            path: path.to_string(),
        }),
    }
}

async fn apply(app: &Arc<App>, actor: &str, change: McpChange) -> Result<Value, ApiError> {
    let entry = app
        .admin
        .apply(actor, AdminChange::Mcp(change))
        .await
        .map_err(admin_error)?;
    Ok(json!({
        "ledger_seq": entry.seq,
        "action": entry.action,
        "target": entry.target,
        "revision": entry.details["after"]["config"]["revision"],
        "details": entry.details,
    }))
}

/// The module's config in force (the chain's state), whether or not it is enabled.
fn config(app: &App) -> (bool, McpConfig) {
    let chain = app.admin.chain().load();
    let state = chain.states().iter().find(|s| s.name == "mcp");
    let enabled = state.is_some_and(|s| s.enabled);
    let config = state
        .and_then(|s| McpConfig::parse(&s.config).ok())
        .unwrap_or_default();
    (enabled, config)
}

fn overview(app: &App) -> Value {
    let (enabled, config) = config(app);
    let servers: Vec<Value> = config
        .servers
        .iter()
        .map(|(name, s)| {
            json!({
                "name": name,
                "transport": if s.url.is_some() { "http" } else { "stdio" },
                "url": s.url,
                "command": s.command,
                "has_token": s.sealed_token.is_some() || s.bearer_env.is_some(),
                "timeout_ms": s.timeout_ms.unwrap_or(config.timeout_ms),
            })
        })
        .collect();
    json!({
        "enabled": enabled,
        "revision": config.revision,
        "servers": servers,
        "rules": config.rules,
    })
}

async fn tools(app: &App) -> Value {
    let Some(installed) = crate::modules::mcp::gateway(app.admin.deps()).and_then(|g| g.current())
    else {
        return json!({"enabled": false, "servers": []});
    };
    let servers = installed.servers.all();
    let lists =
        futures_util::future::join_all(servers.iter().map(|s| s.tools(Duration::ZERO))).await;
    let out: Vec<Value> = servers
        .iter()
        .zip(lists)
        .map(|(server, tools)| match tools {
            Ok(tools) => json!({
                "server": server.name,
                "breaker_open": server.breaker_open(),
                "tools": tools.iter().map(|t| t["name"].clone()).collect::<Vec<_>>(),
            }),
            Err(e) => json!({
                "server": server.name,
                "breaker_open": server.breaker_open(),
                "error": e.to_string(),
                "tools": [],
            }),
        })
        .collect();
    json!({"enabled": true, "revision": installed.config.revision, "servers": out})
}

async fn calls(app: &App, query: &str) -> Result<Value, ApiError> {
    let limit = query
        .split('&')
        .find_map(|p| p.strip_prefix("limit="))
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(50)
        .min(1000);
    let store = app.store.mcp.clone();
    let rows = tokio::task::spawn_blocking(move || store.mcp_calls(limit))
        .await
        .map_err(|e| ApiError::Internal {
            message: e.to_string(),
        })?
        .map_err(|e| ApiError::Internal {
            message: e.to_string(),
        })?;
    Ok(json!({"calls": rows}))
}
