//! The upstream servers in force: one [`Server`] per configured name, each with its connection
//! (opened on first use), its breaker and its cached tool list. A server whose config is
//! unchanged keeps all three across config changes; a changed or removed one is dropped (a child
//! process is killed once no call uses it any more).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::config::{McpConfig, ServerConfig};
use super::upstream::http::HttpTransport;
use super::upstream::stdio::StdioTransport;
use super::upstream::{Progress, Transport, UpstreamError, handshake};
use crate::secret::Secret;

/// Opens a breaker after `failures` consecutive failures, for `open_for`; after that one call
/// goes through (half-open), and the breaker opens again at once if it fails.
#[derive(Default)]
struct Breaker {
    failures: u32,
    open_until: Option<Instant>,
}

pub struct Server {
    pub name: String,
    pub config: ServerConfig,
    /// The bearer token for a remote server, opened from the vault or the environment.
    token: Option<Secret<String>>,
    connection: tokio::sync::Mutex<Option<Arc<dyn Transport>>>,
    breaker: Mutex<Breaker>,
    tools: Mutex<Option<(Instant, Arc<Vec<Value>>)>>,
    pub timeout: Duration,
    failures_to_open: u32,
    open_for: Duration,
}

impl Server {
    fn new(
        name: &str,
        config: &ServerConfig,
        module: &McpConfig,
        token: Option<Secret<String>>,
    ) -> Server {
        Server {
            name: name.to_string(),
            config: config.clone(),
            token,
            connection: tokio::sync::Mutex::new(None),
            breaker: Mutex::default(),
            tools: Mutex::new(None),
            timeout: Duration::from_millis(config.timeout_ms.unwrap_or(module.timeout_ms)),
            failures_to_open: module.breaker_failures,
            open_for: Duration::from_millis(module.breaker_open_ms),
        }
    }

    /// Refuses while the breaker is open.
    pub fn admit(&self) -> Result<(), UpstreamError> {
        let breaker = self.breaker.lock().unwrap_or_else(PoisonError::into_inner);
        match breaker.open_until {
            Some(until) if Instant::now() < until => Err(UpstreamError::Unavailable {
                server: self.name.clone(),
                detail: format!(
                    "circuit open after {} failures; retry in {} ms",
                    breaker.failures,
                    until.saturating_duration_since(Instant::now()).as_millis()
                ),
            }),
            _ => Ok(()),
        }
    }

    /// Counts the outcome of a request: transport failures move the breaker, a server's own
    /// JSON-RPC error does not (it answered).
    pub fn note(&self, result: &Result<Value, UpstreamError>) {
        let mut breaker = self.breaker.lock().unwrap_or_else(PoisonError::into_inner);
        match result {
            Ok(_) | Err(UpstreamError::Rpc { .. }) => *breaker = Breaker::default(),
            Err(_) => {
                breaker.failures += 1;
                if breaker.failures >= self.failures_to_open {
                    breaker.open_until = Some(Instant::now() + self.open_for);
                }
            }
        }
    }

    pub fn breaker_open(&self) -> bool {
        self.admit().is_err()
    }

    /// The open connection, or a new one after its handshake (within this server's timeout).
    /// Only this server's callers wait on an opening.
    async fn connection(&self) -> Result<Arc<dyn Transport>, UpstreamError> {
        let mut slot = self.connection.lock().await;
        if let Some(open) = slot.as_ref().filter(|c| c.alive()) {
            return Ok(open.clone());
        }
        let transport: Arc<dyn Transport> = match &self.config.url {
            Some(url) => Arc::new(HttpTransport::new(&self.name, url, self.token.clone())?),
            None => Arc::new(StdioTransport::spawn(&self.name, &self.config)?),
        };
        handshake(transport.as_ref(), self.timeout).await?;
        *slot = Some(transport.clone());
        Ok(transport)
    }

    /// One request through the breaker and the deadline, counted by the breaker.
    pub async fn request(&self, method: &str, params: Value) -> Result<Value, UpstreamError> {
        self.request_with(method, params, None).await
    }

    /// Like [`Server::request`], passing the request's progress notifications to `progress`.
    pub async fn request_with(
        &self,
        method: &str,
        params: Value,
        progress: Option<Progress>,
    ) -> Result<Value, UpstreamError> {
        self.admit()?;
        let result = match tokio::time::timeout(self.timeout, self.connection()).await {
            Err(_) => Err(UpstreamError::Timeout {
                server: self.name.clone(),
                after_ms: self.timeout.as_millis() as u64,
            }),
            Ok(Err(e)) => Err(e),
            Ok(Ok(connection)) => {
                connection
                    .request(method, params, self.timeout, progress)
                    .await
            }
        };
        if matches!(result, Err(UpstreamError::Unavailable { .. }))
            && let Ok(mut slot) = self.connection.try_lock()
        {
            // A broken connection is opened again by the next call.
            *slot = None;
        }
        self.note(&result);
        result
    }

    /// The server's tools (its own names), from the cache while younger than `ttl`.
    pub async fn tools(&self, ttl: Duration) -> Result<Arc<Vec<Value>>, UpstreamError> {
        if let Some((at, tools)) = self
            .tools
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            && at.elapsed() < ttl
        {
            return Ok(tools.clone());
        }
        let mut all = Vec::new();
        let mut cursor: Option<String> = None;
        // Pages, bounded: a server that always hands back a cursor can't loop us forever.
        for _ in 0..50 {
            let params = match &cursor {
                Some(c) => json!({"cursor": c}),
                None => json!({}),
            };
            let page = self.request("tools/list", params).await?;
            if let Some(tools) = page["tools"].as_array() {
                all.extend(tools.iter().cloned());
            }
            cursor = page["nextCursor"].as_str().map(str::to_string);
            if cursor.is_none() {
                break;
            }
        }
        let tools = Arc::new(all);
        *self.tools.lock().unwrap_or_else(PoisonError::into_inner) =
            Some((Instant::now(), tools.clone()));
        Ok(tools)
    }
}

/// Every configured server by name.
#[derive(Default)]
pub struct Servers {
    by_name: Mutex<HashMap<String, Arc<Server>>>,
}

impl Servers {
    /// `config`'s servers, taking from `previous` those whose settings did not change (with
    /// their connections, breakers and tool lists). `token` opens a server's bearer token.
    pub fn build(
        previous: Option<&Servers>,
        config: &McpConfig,
        token: &dyn Fn(&str, &ServerConfig) -> Option<Secret<String>>,
    ) -> Servers {
        let by_name = previous
            .map(|p| {
                p.by_name
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone()
            })
            .unwrap_or_default();
        let mut next = HashMap::new();
        for (name, server) in &config.servers {
            let timeout = Duration::from_millis(server.timeout_ms.unwrap_or(config.timeout_ms));
            let kept = by_name.get(name).filter(|s| {
                s.config == *server
                    && s.timeout == timeout
                    && s.failures_to_open == config.breaker_failures
                    && s.open_for == Duration::from_millis(config.breaker_open_ms)
            });
            let entry = match kept {
                Some(kept) => kept.clone(),
                None => Arc::new(Server::new(name, server, config, token(name, server))),
            };
            next.insert(name.clone(), entry);
        }
        Servers {
            by_name: Mutex::new(next),
        }
    }

    pub fn get(&self, name: &str) -> Option<Arc<Server>> {
        self.by_name
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .cloned()
    }

    /// All servers, by name.
    pub fn all(&self) -> Vec<Arc<Server>> {
        let mut all: Vec<Arc<Server>> = self
            .by_name
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }
}
