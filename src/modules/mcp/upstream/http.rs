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

    /// Posts one message; returns the answer with `id` (`None` for a notification). Progress
    /// notifications on the answer's event stream go to `progress`.
    async fn post(
        &self,
        message: &Value,
        id: Option<i64>,
        progress: Option<&tokio::sync::mpsc::Sender<Value>>,
    ) -> Result<Option<Value>, UpstreamError> {
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
            if is_stream {
                for event in take_events(&mut buffer) {
                    if let Some(answer) = sort_event(event, id, progress) {
                        return Ok(Some(answer));
                    }
                }
            }
        }
        let answer = if is_stream {
            // A stream that ended without a blank line after its last event.
            buffer.extend_from_slice(b"\n\n");
            take_events(&mut buffer)
                .into_iter()
                .find_map(|event| sort_event(event, id, progress))
        } else {
            serde_json::from_slice::<Value>(&buffer).ok()
        };
        answer
            .map(Some)
            .ok_or_else(|| self.unavailable("no answer to the request in the response".into()))
    }
}

/// The JSON messages of the complete events at the start of `buffer`, which keeps the rest.
fn take_events(buffer: &mut BytesMut) -> Vec<Value> {
    let mut out = Vec::new();
    loop {
        let text = String::from_utf8_lossy(buffer);
        let end = [("\n\n", 2), ("\r\n\r\n", 4)]
            .iter()
            .filter_map(|(sep, len)| text.find(sep).map(|at| (at, *len)))
            .min();
        let Some((at, len)) = end else { break };
        let event = text[..at].to_string();
        let _ = buffer.split_to(at + len);
        let data: Vec<&str> = event
            .lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .map(|d| d.strip_prefix(' ').unwrap_or(d))
            .collect();
        if let Ok(message) = serde_json::from_str::<Value>(&data.join("\n")) {
            out.push(message);
        }
    }
    out
}

/// The answer to `id`, if `event` is it; a progress notification goes to `progress`.
fn sort_event(
    event: Value,
    id: i64,
    progress: Option<&tokio::sync::mpsc::Sender<Value>>,
) -> Option<Value> {
    if event["id"].as_i64() == Some(id)
        && (event.get("result").is_some() || event.get("error").is_some())
    {
        return Some(event);
    }
    if event["method"] == "notifications/progress"
        && let Some(progress) = progress
    {
        let _ = progress.try_send(event["params"].clone());
    }
    None
}

#[async_trait]
impl Transport for HttpTransport {
    async fn request(
        &self,
        method: &str,
        params: Value,
        timeout: Duration,
        progress: Option<super::Progress>,
    ) -> Result<Value, UpstreamError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let message = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let sink = progress.map(|p| p.sink);
        let post = self.post(&message, Some(id), sink.as_ref());
        let answer = match tokio::time::timeout(timeout, post).await {
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
        let sent =
            tokio::time::timeout(Duration::from_secs(5), self.post(&message, None, None)).await;
        if let Ok(Err(e)) = sent {
            tracing::debug!(error = %e, method, "mcp notification not delivered");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_sorted_into_the_answer_and_progress() {
        let stream = b"event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{\"progress\":1}}\n\nevent: message\r\ndata: {\"jsonrpc\":\"2.0\",\"id\":3,\"result\":{}}\r\n\r\nevent: mess";
        let mut buffer = BytesMut::from(&stream[..]);
        let events = take_events(&mut buffer);
        assert_eq!(events.len(), 2);
        assert_eq!(&buffer[..], b"event: mess");
        let (tx, mut rx) = tokio::sync::mpsc::channel(4);
        let mut found = None;
        for event in events {
            found = found.or(sort_event(event, 3, Some(&tx)));
        }
        assert_eq!(
            found,
            Some(json!({"jsonrpc": "2.0", "id": 3, "result": {}}))
        );
        assert_eq!(rx.try_recv().ok(), Some(json!({"progress": 1})));
    }
}
