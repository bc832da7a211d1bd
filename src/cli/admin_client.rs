//! A minimal client for a running server's admin API (`--server URL`, or the server found running
//! on the database).

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Method;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE};
use serde_json::{Value, json};

use super::CliError;
use crate::admin::AdminChange;
use crate::providers::http::HttpClient;

pub async fn call(
    server: &str,
    admin_key: Option<&str>,
    method: hyper::Method,
    path: &str,
    body: Bytes,
) -> Result<Value, CliError> {
    let key = admin_key.ok_or_else(|| {
        CliError::Failed("--server needs an admin key (--admin-key or STOCKYARD_ADMIN_KEY)".into())
    })?;
    let url = format!("{}{path}", server.trim_end_matches('/'));
    let request = hyper::Request::builder()
        .method(method)
        .uri(&url)
        .header(AUTHORIZATION, format!("Bearer {key}"))
        .header(CONTENT_TYPE, "application/json")
        // Believed only with the local token: the ledger then names the user who ran the CLI.
        .header(crate::admin::http::ACTOR_HEADER, super::offline::actor())
        .body(Full::new(body))
        .map_err(|e| CliError::Failed(format!("bad server URL {url:?}: {e}")))?;
    let client = HttpClient::new(Duration::from_secs(5)).map_err(CliError::Failed)?;
    let response = client
        .send("stockyard server", request, Duration::from_secs(30))
        .await
        .map_err(|e| CliError::Failed(e.to_string()))?;
    let status = response.status();
    let bytes = response
        .into_body()
        .collect()
        .await
        .map_err(|e| CliError::Failed(e.to_string()))?
        .to_bytes();
    let value: Value = serde_json::from_slice(&bytes)
        .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into()));
    if !status.is_success() {
        let message = value["error"]["message"]
            .as_str()
            .map(String::from)
            .unwrap_or_else(|| value.to_string());
        return Err(CliError::Failed(format!(
            "server answered {status}: {message}"
        )));
    }
    Ok(value)
}

/// The array in field `field` of `GET path` on a running server (a listing).
pub async fn list(
    server: &str,
    admin_key: Option<&str>,
    path: &str,
    field: &str,
) -> Result<Vec<Value>, CliError> {
    let answer = call(server, admin_key, Method::GET, path, Bytes::new()).await?;
    Ok(answer[field].as_array().cloned().unwrap_or_default())
}

/// The admin API call that makes `change` on a running server.
pub fn request_for(change: &AdminChange) -> (Method, String, Bytes) {
    let body = |v: Value| Bytes::from(v.to_string());
    match change {
        AdminChange::SetAlias {
            name,
            target: Some(t),
        } => (
            Method::PUT,
            format!("/admin/aliases/{name}"),
            body(json!({"target": t})),
        ),
        AdminChange::SetAlias { name, target: None } => (
            Method::DELETE,
            format!("/admin/aliases/{name}"),
            Bytes::new(),
        ),
        AdminChange::SetGroup {
            name,
            group: Some(g),
        } => (
            Method::PUT,
            format!("/admin/groups/{name}"),
            body(g.clone()),
        ),
        AdminChange::SetGroup { name, group: None } => (
            Method::DELETE,
            format!("/admin/groups/{name}"),
            Bytes::new(),
        ),
        AdminChange::Breaker {
            deployment,
            open_for_ms: Some(ms),
        } => (
            Method::POST,
            format!("/admin/breakers/{deployment}/open"),
            body(json!({"for_ms": ms})),
        ),
        AdminChange::Breaker {
            deployment,
            open_for_ms: None,
        } => (
            Method::POST,
            format!("/admin/breakers/{deployment}/reset"),
            Bytes::new(),
        ),
        AdminChange::UpdateModule {
            name,
            enabled,
            config,
        } => (
            Method::PUT,
            format!("/admin/modules/{name}"),
            body(json!({"enabled": enabled, "config": config})),
        ),
        AdminChange::LoadPrices { body: b } => {
            (Method::PUT, "/admin/prices".into(), Bytes::from(b.clone()))
        }
        AdminChange::Keys(op) => super::keys_api::request_for(op),
        AdminChange::PurgeCache(purge) => (
            Method::POST,
            "/admin/cache/purge".into(),
            body(json!({"model": purge.model, "namespace": purge.namespace,
                "kind": purge.kind.map(|k| k.as_str()),
                "all": *purge == crate::store::CachePurge::default()})),
        ),
        // The key goes to the server in the body (loopback or the admin URL the operator gave),
        // never in the URL, which servers and proxies log.
        AdminChange::AddCredential {
            provider,
            kind,
            base_url,
            key,
            label,
        } => (
            Method::POST,
            "/admin/providers".into(),
            body(json!({
                "name": provider,
                "kind": kind,
                "base_url": base_url,
                "key": key.expose(),
                "label": label,
            })),
        ),
        AdminChange::PutPrompt { name, definition } => (
            Method::PUT,
            format!("/admin/prompts/{name}"),
            body(definition.clone()),
        ),
        AdminChange::RollbackPrompt { name, version } => (
            Method::POST,
            format!("/admin/prompts/{name}/rollback"),
            body(json!({"version": version})),
        ),
        AdminChange::RemoveCredential { target } => (
            Method::DELETE,
            format!("/admin/providers/{target}"),
            Bytes::new(),
        ),
        AdminChange::Mcp(change) => mcp_request(change),
        AdminChange::RotateSecrets { new_key } => (
            Method::POST,
            "/admin/secrets/rotate".into(),
            body(json!({"new_key": new_key.as_ref().map(|k| k.expose())})),
        ),
    }
}

/// The `/admin/mcp` call for an MCP gateway change; a token goes in the body, never the URL.
fn mcp_request(change: &crate::admin::mcp::McpChange) -> (Method, String, Bytes) {
    use crate::admin::mcp::McpChange;
    match change {
        McpChange::SetServer {
            name,
            server,
            token,
        } => {
            let mut server = server.clone();
            if let Some(token) = token {
                server["token"] = Value::String(token.expose().clone());
            }
            (
                Method::PUT,
                format!("/admin/mcp/servers/{name}"),
                Bytes::from(server.to_string()),
            )
        }
        McpChange::RemoveServer { name } => (
            Method::DELETE,
            format!("/admin/mcp/servers/{name}"),
            Bytes::new(),
        ),
        McpChange::SetRule { rule } => (
            Method::PUT,
            format!(
                "/admin/mcp/rules/{}",
                rule["id"].as_str().unwrap_or_default()
            ),
            Bytes::from(rule.to_string()),
        ),
        McpChange::RemoveRule { id } => (
            Method::DELETE,
            format!("/admin/mcp/rules/{id}"),
            Bytes::new(),
        ),
    }
}
