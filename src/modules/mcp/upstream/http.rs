//! A remote MCP server over Streamable HTTP: each message is a POST to the server's endpoint,
//! answered by a JSON body or by an event stream that carries the answer (read until the event
//! with the request's id). The session id the server gives at `initialize` is sent back on every
//! later request, with the negotiated protocol revision. A bearer token, when configured, comes
//! from the sealed credential store or the environment, never from the config text.

use std::sync::Mutex;
use std::sync::PoisonError;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use hyper::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use serde_json::{Value, json};

use super::{Transport, UpstreamError, into_result};
use crate::providers::http::HttpClient;
use crate::secret::Secret;

/// The most of one answer read from a remote server.
const MAX_ANSWER_BYTES: usize = 16 * 1024 * 1024;

pub struct HttpTransport {
    server: String,
    url: hyper::Uri,
    client: HttpClient,
    token: Option<Secret<String>>,
    session: Mutex<Option<String>>,
    protocol: Mutex<Option<String>>,
    next_id: AtomicI64,
}

impl HttpTransport {
    pub fn new(
        server: &str,
        url: &str,
        token: Option<Secret<String>>,
    ) -> Result<HttpTransport, UpstreamError> {
        let unavailable = |detail: String| UpstreamError::Unavailable {
            server: server.to_string(),
            detail,
        };
        let url: hyper::Uri = url
            .parse()
            .map_err(|e| unavailable(format!("url: not a URL: {e}")))?;
        let client = HttpClient::new(Duration::from_secs(10)).map_err(unavailable)?;
        Ok(HttpTransport {
            server: server.to_string(),
            url,
            client,
            token,
            session: Mutex::new(None),
            protocol: Mutex::new(None),
            next_id: AtomicI64::new(1),
        })
    }

    fn unavailable(&self, detail: String) -> UpstreamError {
        UpstreamError::Unavailable {
            server: self.server.clone(),
            detail,
        }
    }

    /// Posts one message; returns the answer with `id` (`None` for a notification).
    async fn post(&self, message: &Value, id: Option<i64>) -> Result<Option<Value>, UpstreamError> {
        let mut builder = hyper::Request::post(self.url.clone())
            .header(CONTENT_TYPE, "application/json")
            .header(ACCEPT, "application/json, text/event-stream");
        if let Some(session) = self
            .session
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
        {
            builder = builder.header("mcp-session-id", session);
        }
        if let Some(protocol) = self
            .protocol
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
        {
            builder = builder.header("mcp-protocol-version", protocol);
        }
        if let Some(token) = &self.token {
            builder = builder.header(AUTHORIZATION, format!("Bearer {}", token.expose()));
        }
        let request = builder
            .body(Full::new(Bytes::from(message.to_string())))
            .map_err(|e| self.unavailable(format!("cannot build the request: {e}")))?;
        // The caller's deadline bounds the whole exchange; this is only the client's own bound.
        let response = self
            .client
            .send(&self.server, request, Duration::from_secs(3600))
            .await
            .map_err(|e| self.unavailable(e.to_string()))?;
        let status = response.status();
        if let Some(session) = response
            .headers()
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
        {
            *self.session.lock().unwrap_or_else(PoisonError::into_inner) =
                Some(session.to_string());
        }
        let is_stream = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        if !status.is_success() {
            return Err(self.unavailable(format!("answered HTTP {status}")));
        }
        let Some(id) = id else { return Ok(None) };
        let mut body = response.into_body();
        let mut buffer = BytesMut::new();
        loop {
            let frame = body
                .frame()
                .await
                .transpose()
                .map_err(|e| self.unavailable(format!("reading the answer: {e}")))?;
            let Some(frame) = frame else { break };
            if let Ok(data) = frame.into_data() {
                buffer.extend_from_slice(&data);
            }
            if buffer.len() > MAX_ANSWER_BYTES {
                return Err(self.unavailable("the answer is too large".into()));
            }
            if is_stream && let Some(answer) = answer_in_events(&buffer, id) {
                return Ok(Some(answer));
            }
        }
        let answer = if is_stream {
            answer_in_events(&buffer, id)
        } else {
            serde_json::from_slice::<Value>(&buffer).ok()
        };
        answer
            .map(Some)
            .ok_or_else(|| self.unavailable("no answer to the request in the response".into()))
    }
}

/// The JSON-RPC answer with `id` among the complete events of an event stream, if there.
fn answer_in_events(buffer: &[u8], id: i64) -> Option<Value> {
    let text = String::from_utf8_lossy(buffer).replace("\r\n", "\n");
    let complete = text.rfind("\n\n").map(|end| &text[..end])?;
    complete.split("\n\n").find_map(|event| {
        let data: Vec<&str> = event
            .lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .map(|d| d.strip_prefix(' ').unwrap_or(d))
            .collect();
        let message: Value = serde_json::from_str(&data.join("\n")).ok()?;
        (message["id"].as_i64() == Some(id)
            && (message.get("result").is_some() || message.get("error").is_some()))
        .then_some(message)
    })
}

#[async_trait]
impl Transport for HttpTransport {
    async fn request(
        &self,
        method: &str,
        params: Value,
        timeout: Duration,
    ) -> Result<Value, UpstreamError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let message = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let answer = match tokio::time::timeout(timeout, self.post(&message, Some(id))).await {
            Err(_) => {
                return Err(UpstreamError::Timeout {
                    server: self.server.clone(),
                    after_ms: timeout.as_millis() as u64,
                });
            }
            Ok(answer) => answer?,
        };
        let answer = answer.unwrap_or(Value::Null);
        let result = into_result(&self.server, &answer)?;
        if method == "initialize"
            && let Some(version) = result["protocolVersion"].as_str()
        {
            *self.protocol.lock().unwrap_or_else(PoisonError::into_inner) =
                Some(version.to_string());
        }
        Ok(result)
    }

    async fn notify(&self, method: &str, params: Value) {
        let message = json!({"jsonrpc": "2.0", "method": method, "params": params});
        // Bounded: a notification must not outlive the call that sent it by much.
        let sent = tokio::time::timeout(Duration::from_secs(5), self.post(&message, None)).await;
        if let Ok(Err(e)) = sent {
            tracing::debug!(error = %e, method, "mcp notification not delivered");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_answer_is_found_among_events() {
        let stream = b"event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\"}\n\nevent: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":3,\"result\":{}}\n\n";
        assert_eq!(
            answer_in_events(stream, 3),
            Some(json!({"jsonrpc":"2.0","id":3,"result":{}}))
        );
        assert_eq!(answer_in_events(stream, 4), None);
        assert_eq!(answer_in_events(&stream[..stream.len() - 1], 3), None);
    }
}
