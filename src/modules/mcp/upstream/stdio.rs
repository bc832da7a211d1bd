//! A local MCP server as a child process: newline-delimited JSON-RPC on its stdin and stdout.
//! One thread writes, one reads and hands each answer to the request waiting for its id, so
//! requests run concurrently and a slow one holds up no other. Lines that are not JSON (a
//! server's stray log output) are skipped. The child is killed when the connection is dropped.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio as ChildStdio};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Value, json};
use tokio::sync::oneshot;

use super::{Transport, UpstreamError, into_result};
use crate::modules::mcp::config::ServerConfig;

type Pending = Arc<Mutex<HashMap<i64, oneshot::Sender<Value>>>>;
/// Progress channels by the token their request carries.
type Listeners = Arc<Mutex<HashMap<String, tokio::sync::mpsc::Sender<Value>>>>;

pub struct StdioTransport {
    server: String,
    child: Mutex<Option<Child>>,
    lines: std::sync::mpsc::Sender<String>,
    pending: Pending,
    listeners: Listeners,
    next_id: AtomicI64,
    alive: Arc<AtomicBool>,
}

impl StdioTransport {
    pub fn spawn(server: &str, config: &ServerConfig) -> Result<StdioTransport, UpstreamError> {
        let unavailable = |detail: String| UpstreamError::Unavailable {
            server: server.to_string(),
            detail,
        };
        let (program, args) = config
            .command
            .split_first()
            .ok_or_else(|| unavailable("no command configured".into()))?;
        let mut child = Command::new(program)
            .args(args)
            .envs(&config.env)
            .stdin(ChildStdio::piped())
            .stdout(ChildStdio::piped())
            .stderr(ChildStdio::null())
            .spawn()
            .map_err(|e| unavailable(format!("cannot start {program:?}: {e}")))?;
        let (Some(mut stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            let _ = child.kill();
            return Err(unavailable("the child has no stdin or stdout".into()));
        };
        let pending: Pending = Arc::default();
        let alive = Arc::new(AtomicBool::new(true));
        let (lines, outbox) = std::sync::mpsc::channel::<String>();
        let writer_alive = alive.clone();
        std::thread::Builder::new()
            .name(format!("mcp-{server}-in"))
            .spawn(move || {
                for line in outbox {
                    if writeln!(stdin, "{line}")
                        .and_then(|()| stdin.flush())
                        .is_err()
                    {
                        writer_alive.store(false, Ordering::SeqCst);
                        break;
                    }
                }
            })
            .map_err(|e| unavailable(format!("cannot start a writer thread: {e}")))?;
        let listeners: Listeners = Arc::default();
        let reader_listeners = listeners.clone();
        let reader_pending = pending.clone();
        let reader_alive = alive.clone();
        let reader_lines = lines.clone();
        std::thread::Builder::new()
            .name(format!("mcp-{server}-out"))
            .spawn(move || {
                read_loop(
                    BufReader::new(stdout),
                    &reader_pending,
                    &reader_listeners,
                    &reader_lines,
                );
                reader_alive.store(false, Ordering::SeqCst);
                // Whoever still waits gets "closed" now rather than at its deadline.
                reader_pending
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clear();
            })
            .map_err(|e| unavailable(format!("cannot start a reader thread: {e}")))?;
        Ok(StdioTransport {
            server: server.to_string(),
            child: Mutex::new(Some(child)),
            lines,
            pending,
            listeners,
            next_id: AtomicI64::new(1),
            alive,
        })
    }
}

fn read_loop(
    stdout: impl BufRead,
    pending: &Pending,
    listeners: &Listeners,
    lines: &std::sync::mpsc::Sender<String>,
) {
    for line in stdout.lines() {
        let Ok(line) = line else { break };
        let Ok(message) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        let is_answer = message.get("result").is_some() || message.get("error").is_some();
        match (message.get("id").and_then(Value::as_i64), is_answer) {
            (Some(id), true) => {
                let waiter = pending
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .remove(&id);
                if let Some(waiter) = waiter {
                    let _ = waiter.send(message);
                }
            }
            // A request from the server (sampling, roots, elicitation): not offered by this
            // gateway, so refused at once instead of leaving the server waiting.
            (_, false) if message.get("id").is_some() => {
                let refusal = json!({"jsonrpc": "2.0", "id": message["id"],
                    "error": {"code": -32601, "message": "not supported by the stockyard gateway"}});
                let _ = lines.send(refusal.to_string());
            }
            _ if message["method"] == "notifications/progress" => {
                let key = super::token_key(&message["params"]["progressToken"]);
                let listener = listeners
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .get(&key)
                    .cloned();
                if let Some(listener) = listener {
                    let _ = listener.try_send(message["params"].clone());
                }
            }
            _ => {}
        }
    }
}

#[async_trait]
impl Transport for StdioTransport {
    async fn request(
        &self,
        method: &str,
        params: Value,
        timeout: Duration,
        progress: Option<super::Progress>,
    ) -> Result<Value, UpstreamError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let _listening = progress.map(|p| Listening::new(&self.listeners, p));
        let (tx, rx) = oneshot::channel();
        self.pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, tx);
        let message = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let closed = || UpstreamError::Unavailable {
            server: self.server.clone(),
            detail: "the server process has exited".into(),
        };
        if self.lines.send(message.to_string()).is_err() || !self.alive() {
            self.pending
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&id);
            return Err(closed());
        }
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(answer)) => into_result(&self.server, &answer),
            Ok(Err(_)) => Err(closed()),
            Err(_) => {
                self.pending
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .remove(&id);
                self.notify(
                    "notifications/cancelled",
                    json!({"requestId": id, "reason": "timed out at the gateway"}),
                )
                .await;
                Err(UpstreamError::Timeout {
                    server: self.server.clone(),
                    after_ms: timeout.as_millis() as u64,
                })
            }
        }
    }

    async fn notify(&self, method: &str, params: Value) {
        let message = json!({"jsonrpc": "2.0", "method": method, "params": params});
        let _ = self.lines.send(message.to_string());
    }

    fn alive(&self) -> bool {
        self.alive.load(Ordering::SeqCst)
    }
}

/// A progress listener, filed while its request runs and removed when it ends (answered, timed
/// out or dropped).
struct Listening {
    listeners: Listeners,
    token: String,
}

impl Listening {
    fn new(listeners: &Listeners, progress: super::Progress) -> Listening {
        listeners
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(progress.token.clone(), progress.sink);
        Listening {
            listeners: listeners.clone(),
            token: progress.token,
        }
    }
}

impl Drop for Listening {
    fn drop(&mut self) {
        self.listeners
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.token);
    }
}

impl Drop for StdioTransport {
    fn drop(&mut self) {
        let child = self
            .child
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(mut child) = child {
            let _ = child.kill();
            // Reaped on a thread of its own, so a drop never blocks on the exit.
            let _ = std::thread::Builder::new()
                .name("mcp-reap".into())
                .spawn(move || child.wait());
        }
    }
}
