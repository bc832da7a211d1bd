//! The JSON-RPC methods `/mcp` serves, whichever transport carried them: the handshake, tools
//! (decided, limited, guarded and recorded by the gateway), and the resources and prompts of the
//! servers a caller may use, namespaced like tools.

use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::gateway::{Gateway, Installed, RpcError, SEPARATOR};
use super::policy::Caller;
use super::upstream::{PROTOCOL_VERSIONS, UpstreamError};

const METHOD_NOT_FOUND: i64 = -32601;

pub(super) async fn dispatch(
    gateway: &Gateway,
    installed: &Installed,
    caller: &Caller,
    method: &str,
    params: &Value,
    new_session: &mut Option<String>,
    progress: Option<mpsc::Sender<Value>>,
) -> Result<Value, RpcError> {
    match method {
        "initialize" => {
            let asked = params["protocolVersion"].as_str().unwrap_or_default();
            let version = PROTOCOL_VERSIONS
                .iter()
                .find(|v| **v == asked)
                .copied()
                .unwrap_or(PROTOCOL_VERSIONS[0]);
            *new_session = Some(gateway.sessions.open(caller));
            Ok(json!({
                "protocolVersion": version,
                "capabilities": {
                    "tools": {"listChanged": false},
                    "resources": {"listChanged": false},
                    "prompts": {"listChanged": false},
                },
                "serverInfo": {"name": "stockyard", "version": env!("CARGO_PKG_VERSION")},
                "instructions": "Tools of several MCP servers, named server__tool.",
            }))
        }
        "ping" => Ok(json!({})),
        "tools/list" => Ok(json!({"tools": gateway.list_tools(installed, caller).await})),
        "tools/call" => gateway.call_tool(installed, caller, params, progress).await,
        "resources/list" => list_of(installed, caller, "resources/list", "resources", "uri").await,
        "resources/templates/list" => Ok(json!({"resourceTemplates": []})),
        "prompts/list" => list_of(installed, caller, "prompts/list", "prompts", "name").await,
        "resources/read" => forward(installed, caller, "resources/read", params, "uri").await,
        "prompts/get" => forward(installed, caller, "prompts/get", params, "name").await,
        other => Err(RpcError::new(
            METHOD_NOT_FOUND,
            format!("method not found: {other}"),
        )),
    }
}

/// Whether `caller` may use a server at all (some rule allows some tool of it): resources and
/// prompts are shown per server.
fn may_use(installed: &Installed, caller: &Caller, server: &str) -> bool {
    installed.policy.may_use_server(caller, server)
}

/// Resources or prompts of every server `caller` may use, their `field` namespaced like tools.
async fn list_of(
    installed: &Installed,
    caller: &Caller,
    method: &str,
    list: &str,
    field: &str,
) -> Result<Value, RpcError> {
    let servers: Vec<_> = installed
        .servers
        .all()
        .into_iter()
        .filter(|s| may_use(installed, caller, &s.name))
        .collect();
    let answers =
        futures_util::future::join_all(servers.iter().map(|s| s.request(method, json!({})))).await;
    let mut out = Vec::new();
    for (server, answer) in servers.iter().zip(answers) {
        // A server without resources or prompts answers "method not found": nothing to show.
        let Ok(answer) = answer else { continue };
        for item in answer[list].as_array().into_iter().flatten() {
            let mut item = item.clone();
            if let Some(value) = item[field].as_str() {
                item[field] = Value::String(format!("{}{SEPARATOR}{value}", server.name));
            }
            out.push(item);
        }
    }
    Ok(json!({ list: out }))
}

/// A read or get to the server its namespaced `field` names.
async fn forward(
    installed: &Installed,
    caller: &Caller,
    method: &str,
    params: &Value,
    field: &str,
) -> Result<Value, RpcError> {
    let named = params[field].as_str().unwrap_or_default();
    let unknown = || {
        RpcError::new(
            -32602,
            format!("params.{field}: unknown {named:?}; names are server{SEPARATOR}name"),
        )
    };
    let (server_name, own) = named.split_once(SEPARATOR).ok_or_else(unknown)?;
    let server = installed.servers.get(server_name).ok_or_else(unknown)?;
    if !may_use(installed, caller, server_name) {
        return Err(unknown());
    }
    let mut params = params.clone();
    params[field] = Value::String(own.to_string());
    match server.request(method, params).await {
        Ok(mut result) => {
            installed.guard.apply(&mut result);
            Ok(result)
        }
        Err(UpstreamError::Rpc {
            code,
            message,
            data,
            ..
        }) => Err(RpcError {
            code,
            message,
            data,
        }),
        Err(e) => Err(RpcError::new(
            super::gateway::codes::UNAVAILABLE,
            e.to_string(),
        )),
    }
}
