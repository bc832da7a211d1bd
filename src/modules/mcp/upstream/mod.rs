//! Connections to upstream MCP servers: a child process over stdio ([`stdio`]) or a remote server
//! over Streamable HTTP ([`http`]), behind one [`Transport`] trait. A connection is opened with
//! the `initialize` handshake on first use and kept while its server's config is unchanged.
//! Every request has a deadline; a request past it is abandoned (and, on stdio, cancelled with
//! `notifications/cancelled`), so a stalled server holds up only its own callers.

pub mod http;
pub mod stdio;

use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Value, json};
use thiserror::Error;

/// The protocol revisions this gateway speaks, newest first; it answers an `initialize` with the
/// client's revision when listed here, else with the newest.
pub const PROTOCOL_VERSIONS: &[&str] = &["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"];

#[derive(Debug, Error, Clone)]
pub enum UpstreamError {
    #[error("mcp server {server}: no answer within {after_ms} ms")]
    Timeout { server: String, after_ms: u64 },
    #[error("mcp server {server}: {detail}")]
    Unavailable { server: String, detail: String },
    /// The server answered with a JSON-RPC error: passed on to the client as it is.
    #[error("mcp server {server}: {message} ({code})")]
    Rpc {
        server: String,
        code: i64,
        message: String,
        data: Option<Value>,
    },
}

/// Where the progress notifications of one request go: the `progressToken` the request carries
/// upstream (unique to the gateway, so two clients' tokens can't collide), and the channel that
/// takes each notification's `params`. Progress is worth less than the call: a full channel
/// drops a notification rather than hold the connection up.
pub struct Progress {
    pub token: String,
    pub sink: tokio::sync::mpsc::Sender<Value>,
}

/// The key a progress token is filed under (tokens are strings or numbers).
pub fn token_key(token: &Value) -> String {
    match token {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[async_trait]
pub trait Transport: Send + Sync {
    /// Sends a request and waits for its answer, at most `timeout`, passing its progress
    /// notifications to `progress`. Cancel-safe: dropping the future abandons the request.
    async fn request(
        &self,
        method: &str,
        params: Value,
        timeout: Duration,
        progress: Option<Progress>,
    ) -> Result<Value, UpstreamError>;
    /// Sends a notification (no answer).
    async fn notify(&self, method: &str, params: Value);
    /// Whether the connection can still carry requests (a child process that exited can't).
    fn alive(&self) -> bool {
        true
    }
}

/// The `initialize` handshake, then `notifications/initialized`.
pub async fn handshake(
    transport: &dyn Transport,
    timeout: Duration,
) -> Result<Value, UpstreamError> {
    let params = json!({
        "protocolVersion": PROTOCOL_VERSIONS[1],
        "capabilities": {},
        "clientInfo": {"name": "stockyard", "version": env!("CARGO_PKG_VERSION")},
    });
    let result = transport
        .request("initialize", params, timeout, None)
        .await?;
    transport
        .notify("notifications/initialized", json!({}))
        .await;
    Ok(result)
}

/// A JSON-RPC answer's `result`, or its `error` as [`UpstreamError::Rpc`].
pub fn into_result(server: &str, answer: &Value) -> Result<Value, UpstreamError> {
    if let Some(error) = answer.get("error") {
        return Err(UpstreamError::Rpc {
            server: server.to_string(),
            code: error["code"].as_i64().unwrap_or(-32603),
            message: error["message"]
                .as_str()
                .unwrap_or("upstream error")
                .to_string(),
            data: error.get("data").cloned(),
        });
    }
    Ok(answer.get("result").cloned().unwrap_or(Value::Null))
}
