//! The gateway: what `/mcp` calls for each method. It holds the servers, the rules, the guard
//! scanners and the rate counters, and records every tool call (a `mcp_calls` row and an audit
//! ledger entry, queued to the writer: the caller never waits on disk).

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::config::{GuardAction, McpConfig};
use super::guard::ResultGuard;
use super::policy::{Caller, Decision, Policy};
use super::servers::Servers;
use super::upstream::{Progress, UpstreamError};
use crate::ledger::LedgerDraft;
use crate::modules::background::Policies;
use crate::store::counters::{HotCounters, MemoryCounters, ReserveError, Window};
use crate::store::mcp::{McpCallRecord, McpCallWrite};
use crate::store::writer::Writer;

/// The separator between a server's name and its tool's in the names clients see.
pub const SEPARATOR: &str = "__";

/// JSON-RPC error codes of the gateway's own refusals (the server-defined range).
pub mod codes {
    pub const DENIED: i64 = -32001;
    pub const RATE_LIMITED: i64 = -32002;
    pub const UNAVAILABLE: i64 = -32003;
    pub const TIMEOUT: i64 = -32004;
    pub const BLOCKED: i64 = -32005;
    pub const INVALID_PARAMS: i64 = -32602;
}

/// A JSON-RPC error for the client.
#[derive(Clone, Debug, PartialEq)]
pub struct RpcError {
    pub code: i64,
    pub message: String,
    pub data: Option<Value>,
}

impl RpcError {
    pub fn new(code: i64, message: impl Into<String>) -> RpcError {
        RpcError {
            code,
            message: message.into(),
            data: None,
        }
    }

    pub fn to_json(&self) -> Value {
        let mut error = json!({"code": self.code, "message": self.message});
        if let Some(data) = &self.data {
            error["data"] = data.clone();
        }
        error
    }
}

/// What one built copy of the module holds: the rules, settings and servers of its config.
pub struct Installed {
    pub config: McpConfig,
    pub policy: Policy,
    pub guard: ResultGuard,
    pub servers: Servers,
}

/// One per proxy (in `Shared`): follows the newest chain holding the module (a candidate chain
/// that is never swapped in is dropped, and with it its copy), and keeps the per-key counters.
pub struct Gateway {
    installs: Policies<Installed>,
    pub sessions: super::server::Sessions,
    counters: MemoryCounters,
    writer: Arc<Writer>,
}

impl Gateway {
    pub fn new(writer: Arc<Writer>) -> Gateway {
        Gateway {
            installs: Policies::default(),
            sessions: super::server::Sessions::default(),
            counters: MemoryCounters::default(),
            writer,
        }
    }

    /// Notes a newly built copy of the module.
    pub fn register(&self, installed: &Arc<Installed>) {
        self.installs.register(installed);
    }

    /// The settings of the newest chain holding the module; `None` when it is disabled.
    pub fn current(&self) -> Option<Arc<Installed>> {
        self.installs.current()
    }

    /// Every tool `caller` may call, named `server__tool`, servers in name order. A server that
    /// fails to answer (down, stalled, breaker open) is left out rather than failing the list.
    pub async fn list_tools(&self, installed: &Installed, caller: &Caller) -> Vec<Value> {
        let ttl = Duration::from_millis(installed.config.tools_ttl_ms);
        let servers = installed.servers.all();
        let lists = futures_util::future::join_all(servers.iter().map(|s| s.tools(ttl))).await;
        let mut out = Vec::new();
        for (server, tools) in servers.iter().zip(lists) {
            let tools = match tools {
                Ok(tools) => tools,
                Err(e) => {
                    tracing::warn!(server = %server.name, error = %e, "mcp server left out of tools/list");
                    continue;
                }
            };
            for tool in tools.iter() {
                let Some(name) = tool["name"].as_str() else {
                    continue;
                };
                if installed.policy.may_see(caller, &server.name, name) {
                    let mut shown = tool.clone();
                    shown["name"] = Value::String(format!("{}{SEPARATOR}{name}", server.name));
                    out.push(shown);
                }
            }
        }
        out
    }

    /// Calls a namespaced tool for `caller`, deciding, limiting, guarding and recording it.
    /// With `progress`, and a `progressToken` in the call's `_meta`, the upstream server's
    /// progress notifications reach the client (as whole notifications, under its own token).
    pub async fn call_tool(
        &self,
        installed: &Installed,
        caller: &Caller,
        params: &Value,
        progress: Option<tokio::sync::mpsc::Sender<Value>>,
    ) -> Result<Value, RpcError> {
        let started = Instant::now();
        let Some(name) = params["name"].as_str() else {
            return Err(RpcError::new(
                codes::INVALID_PARAMS,
                "params.name: a tool name is required",
            ));
        };
        let arguments = params
            .get("arguments")
            .cloned()
            .unwrap_or_else(|| json!({}));
        let Some((server_name, tool)) = name.split_once(SEPARATOR) else {
            return Err(unknown_tool(name));
        };
        let Some(server) = installed.servers.get(server_name) else {
            return Err(unknown_tool(name));
        };
        let decision = installed
            .policy
            .decide(caller, server_name, tool, &arguments);
        let mut call = CallLog::new(caller, server_name, tool, &arguments, &decision);
        if !decision.allowed {
            let error = RpcError {
                code: codes::DENIED,
                message: format!(
                    "tool {name} refused by rule {:?} (revision {}): {}",
                    decision.rule,
                    decision.revision,
                    decision.reason.as_deref().unwrap_or("denied")
                ),
                data: Some(json!({"rule": decision.rule, "revision": decision.revision})),
            };
            self.record(call.finish("denied", started, 0, None, installed));
            return Err(error);
        }
        let limit = installed.config.calls_per_minute;
        if limit > 0 {
            let key = format!("mcp:{}", caller.key_id.as_deref().unwrap_or("anonymous"));
            match self
                .counters
                .reserve(&key, 1, limit as i64, Window::fixed_ms(60_000))
                .await
            {
                Ok(_) => {}
                Err(ReserveError::Exceeded(_)) => {
                    self.record(call.finish("rate_limited", started, 0, None, installed));
                    return Err(RpcError::new(
                        codes::RATE_LIMITED,
                        format!("rate limit: at most {limit} tool calls per minute for this key"),
                    ));
                }
                Err(ReserveError::Store(e)) => tracing::warn!(error = %e, "mcp rate counter"),
            }
        }
        let mut upstream_params = json!({"name": tool, "arguments": arguments});
        if let Some(meta) = params.get("_meta") {
            upstream_params["_meta"] = meta.clone();
        }
        let relay = match (progress, params["_meta"].get("progressToken")) {
            (Some(client), Some(token)) => {
                // A token of our own upstream: two clients may both use `1`.
                let ours = format!("stockyard-{}", uuid::Uuid::new_v4().simple());
                upstream_params["_meta"]["progressToken"] = Value::String(ours.clone());
                Some(relay_progress(ours, token.clone(), client))
            }
            _ => None,
        };
        let result = server
            .request_with("tools/call", upstream_params, relay)
            .await;
        match result {
            Ok(mut result) => {
                let found = installed.guard.apply(&mut result);
                if found > 0 && installed.config.guard.action == GuardAction::Block {
                    call.record.redactions = found as i64;
                    self.record(call.finish("blocked", started, 0, None, installed));
                    return Err(RpcError::new(
                        codes::BLOCKED,
                        format!(
                            "the result of {name} was blocked by a guardrail ({found} findings)"
                        ),
                    ));
                }
                call.record.redactions = found as i64;
                let bytes_out = result.to_string().len();
                let outcome = if result["isError"] == Value::Bool(true) {
                    "tool_error"
                } else {
                    "ok"
                };
                self.record(call.finish(outcome, started, bytes_out, Some(&result), installed));
                Ok(result)
            }
            Err(error) => {
                let (outcome, rpc) = match &error {
                    UpstreamError::Timeout { .. } => {
                        ("timeout", RpcError::new(codes::TIMEOUT, error.to_string()))
                    }
                    UpstreamError::Unavailable { .. } => (
                        "unavailable",
                        RpcError::new(codes::UNAVAILABLE, error.to_string()),
                    ),
                    UpstreamError::Rpc {
                        code,
                        message,
                        data,
                        ..
                    } => (
                        "error",
                        RpcError {
                            code: *code,
                            message: message.clone(),
                            data: data.clone(),
                        },
                    ),
                };
                self.record(call.finish(outcome, started, 0, None, installed));
                Err(rpc)
            }
        }
    }

    /// Queues the call's row and ledger entry; never waits.
    fn record(&self, write: McpCallWrite) {
        self.writer.submit_mcp_call(write);
    }
}

/// A progress channel for the upstream request whose notifications a task re-addresses to the
/// client's token and passes on; the task ends when the request drops its end.
fn relay_progress(
    ours: String,
    theirs: Value,
    client: tokio::sync::mpsc::Sender<Value>,
) -> Progress {
    let (sink, mut notes) = tokio::sync::mpsc::channel::<Value>(32);
    tokio::spawn(async move {
        while let Some(mut params) = notes.recv().await {
            params["progressToken"] = theirs.clone();
            let note =
                json!({"jsonrpc": "2.0", "method": "notifications/progress", "params": params});
            if client.send(note).await.is_err() {
                break;
            }
        }
    });
    Progress { token: ours, sink }
}

fn unknown_tool(name: &str) -> RpcError {
    RpcError::new(
        codes::INVALID_PARAMS,
        format!("unknown tool {name:?}; tools are named server{SEPARATOR}tool (see tools/list)"),
    )
}

/// What a call's record is made of, gathered as it runs.
struct CallLog {
    record: McpCallRecord,
    arguments: Value,
}

impl CallLog {
    fn new(
        caller: &Caller,
        server: &str,
        tool: &str,
        arguments: &Value,
        decision: &Decision,
    ) -> CallLog {
        let text = arguments.to_string();
        CallLog {
            record: McpCallRecord {
                id: crate::ids::uuid_v7(),
                ts_ms: crate::store::now_ms(),
                key_id: caller.key_id.clone(),
                team_id: caller.team_id.clone(),
                server: server.to_string(),
                tool: tool.to_string(),
                decision: if decision.allowed { "allow" } else { "deny" }.into(),
                rule: decision.rule.clone(),
                rule_revision: decision.revision,
                bytes_in: text.len() as i64,
                args_sha256: hex::encode(Sha256::digest(text.as_bytes())),
                ..McpCallRecord::default()
            },
            arguments: arguments.clone(),
        }
    }

    fn finish(
        &mut self,
        outcome: &str,
        started: Instant,
        bytes_out: usize,
        result: Option<&Value>,
        installed: &Installed,
    ) -> McpCallWrite {
        let mut record = std::mem::take(&mut self.record);
        record.outcome = outcome.to_string();
        record.duration_us = started.elapsed().as_micros() as i64;
        record.bytes_out = bytes_out as i64;
        if installed.config.capture {
            let mut arguments = self.arguments.clone();
            installed.guard.apply(&mut arguments);
            record.arguments = Some(arguments.to_string());
            record.result = result.map(Value::to_string);
        }
        let draft = LedgerDraft {
            actor: record
                .key_id
                .clone()
                .map_or_else(|| "anonymous".to_string(), |k| format!("key:{k}")),
            action: "mcp.call".into(),
            target: format!("{}{SEPARATOR}{}", record.server, record.tool),
            details: json!({
                "call_id": record.id,
                "key_id": record.key_id,
                "team_id": record.team_id,
                "server": record.server,
                "tool": record.tool,
                "decision": record.decision,
                "rule": record.rule,
                "rule_revision": record.rule_revision,
                "outcome": record.outcome,
                "args_sha256": record.args_sha256,
            }),
        };
        McpCallWrite { record, draft }
    }
}
