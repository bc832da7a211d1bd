//! `/mcp`: the gateway's side of the Streamable HTTP transport. Each POST carries one JSON-RPC
//! message (or a batch); requests are answered in the POST's response, as JSON or, for a client
//! that accepts only event streams, as one `message` event; notifications get 202. `initialize`
//! opens a session (`Mcp-Session-Id`), bound to the key that opened it: a later request naming
//! an unknown session, or another key's, gets 404 as the transport requires. A request without
//! a session header is served too (clients of revisions without sessions send none). GET (the
//! server-to-client stream) answers 405: the gateway sends no requests of its own. DELETE ends a
//! session. `notifications/cancelled` stops the named request, which abandons its upstream call.
//!
//! The older HTTP+SSE transport (revision 2024-11-05) is served too, for clients that still
//! speak only it: `GET /mcp/sse` opens an event stream whose first `endpoint` event names
//! `/mcp/messages?session_id=...`; each message POSTed there gets 202 and its answer goes out on
//! that stream.
//!
//! Who the client is was settled before this (the chain's `on_headers`, as for `/v1`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::sync::{Notify, mpsc};

use super::gateway::{Gateway, Installed, RpcError};
use super::policy::Caller;
use super::upstream::PROTOCOL_VERSIONS;

const PARSE_ERROR: i64 = -32700;
const INVALID_REQUEST: i64 = -32600;

/// The most sessions kept; the oldest is forgotten past it (a client that comes back with it
/// gets 404 and starts a new one, as the transport prescribes).
const MAX_SESSIONS: usize = 10_000;

/// What `/mcp` answers; the route turns it into an HTTP response.
pub struct Answer {
    pub status: StatusCode,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// `None`: no body. Content type `application/json` unless `event_stream`.
    pub body: Option<Bytes>,
    pub event_stream: bool,
    /// An open event stream (the older SSE transport), instead of `body`.
    pub stream: Option<mpsc::Receiver<Bytes>>,
}

impl Answer {
    fn status(status: StatusCode) -> Answer {
        Answer {
            status,
            headers: Vec::new(),
            body: None,
            event_stream: false,
            stream: None,
        }
    }

    /// A JSON-RPC error outside any request (bad transport use), with its HTTP status.
    pub fn error(status: StatusCode, code: i64, message: &str) -> Answer {
        let body =
            json!({"jsonrpc": "2.0", "id": null, "error": {"code": code, "message": message}});
        Answer {
            status,
            headers: Vec::new(),
            body: Some(Bytes::from(body.to_string())),
            event_stream: false,
            stream: None,
        }
    }
}

struct Session {
    /// The key that opened it (`None` in local mode).
    key_id: Option<String>,
    created_ms: i64,
    /// The event stream of an older-transport session, where its answers go.
    events: Option<mpsc::Sender<Bytes>>,
}

/// Open sessions and the requests in flight (so a cancellation can reach them).
#[derive(Default)]
pub struct Sessions {
    open: Mutex<HashMap<String, Session>>,
    in_flight: Mutex<HashMap<String, Arc<Notify>>>,
}

impl Sessions {
    pub(super) fn open(&self, caller: &Caller) -> String {
        self.open_with(caller, None)
    }

    fn open_with(&self, caller: &Caller, events: Option<mpsc::Sender<Bytes>>) -> String {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if open.len() >= MAX_SESSIONS
            && let Some(oldest) = open
                .iter()
                .min_by_key(|(_, s)| s.created_ms)
                .map(|(k, _)| k.clone())
        {
            open.remove(&oldest);
        }
        open.insert(
            id.clone(),
            Session {
                key_id: caller.key_id.clone(),
                created_ms: crate::store::now_ms(),
                events,
            },
        );
        id
    }

    fn belongs(&self, id: &str, caller: &Caller) -> bool {
        self.open
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(id)
            .is_some_and(|s| s.key_id == caller.key_id)
    }

    /// The event stream of `caller`'s older-transport session `id`.
    fn events(&self, id: &str, caller: &Caller) -> Option<mpsc::Sender<Bytes>> {
        self.open
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(id)
            .filter(|s| s.key_id == caller.key_id)
            .and_then(|s| s.events.clone())
    }

    fn close(&self, id: &str) -> bool {
        self.open
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(id)
            .is_some()
    }

    fn start(&self, key: String) -> Arc<Notify> {
        let notify = Arc::new(Notify::new());
        self.in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key, notify.clone());
        notify
    }

    fn end(&self, key: &str) {
        self.in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(key);
    }

    fn cancel(&self, key: &str) {
        if let Some(notify) = self
            .in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(key)
        {
            notify.notify_one();
        }
    }
}

/// Serves one HTTP exchange on `/mcp`.
pub async fn handle(
    gateway: Arc<Gateway>,
    installed: Arc<Installed>,
    caller: &Caller,
    method: &Method,
    headers: &HeaderMap,
    body: &Bytes,
) -> Answer {
    let session = headers
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    if let Some(version) = headers.get("mcp-protocol-version") {
        let known = version
            .to_str()
            .is_ok_and(|v| PROTOCOL_VERSIONS.contains(&v));
        if !known {
            return Answer::error(
                StatusCode::BAD_REQUEST,
                INVALID_REQUEST,
                &format!(
                    "unsupported MCP-Protocol-Version {version:?}; supported: {}",
                    PROTOCOL_VERSIONS.join(", ")
                ),
            );
        }
    }
    if let Some(id) = &session
        && !gateway.sessions.belongs(id, caller)
    {
        return Answer::error(
            StatusCode::NOT_FOUND,
            INVALID_REQUEST,
            "unknown or expired Mcp-Session-Id; send initialize again",
        );
    }
    match *method {
        Method::POST => {}
        Method::DELETE => {
            return match session {
                Some(id) if gateway.sessions.close(&id) => Answer::status(StatusCode::NO_CONTENT),
                _ => Answer::error(
                    StatusCode::BAD_REQUEST,
                    INVALID_REQUEST,
                    "DELETE needs the Mcp-Session-Id of an open session",
                ),
            };
        }
        _ => {
            let mut answer = Answer::error(
                StatusCode::METHOD_NOT_ALLOWED,
                INVALID_REQUEST,
                "this endpoint takes POST (and DELETE to end a session); the gateway opens no server-to-client stream",
            );
            answer.headers.push((
                hyper::header::ALLOW,
                HeaderValue::from_static("POST, DELETE"),
            ));
            return answer;
        }
    }
    let message: Value = match serde_json::from_slice(body) {
        Ok(message) => message,
        Err(e) => {
            return Answer::error(
                StatusCode::BAD_REQUEST,
                PARSE_ERROR,
                &format!("the body is not JSON: {e}"),
            );
        }
    };
    let accepts_json = headers
        .get(hyper::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|a| a.contains("application/json") || a.contains("*/*"));
    let accepts_events = headers
        .get(hyper::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/event-stream"));
    let scope = session.clone().unwrap_or_default();
    let mut new_session = None;
    let reply = match message {
        Value::Array(batch) if !batch.is_empty() => {
            let mut replies = Vec::new();
            for item in batch {
                if let Some(r) = one(
                    &gateway,
                    &installed,
                    caller,
                    &scope,
                    item,
                    &mut new_session,
                    None,
                )
                .await
                {
                    replies.push(r);
                }
            }
            (!replies.is_empty()).then_some(Value::Array(replies))
        }
        item @ Value::Object(_) if accepts_events && wants_progress(&item) => {
            return progress_stream(gateway, installed, caller.clone(), scope, item);
        }
        item @ Value::Object(_) => {
            one(
                &gateway,
                &installed,
                caller,
                &scope,
                item,
                &mut new_session,
                None,
            )
            .await
        }
        _ => {
            return Answer::error(
                StatusCode::BAD_REQUEST,
                INVALID_REQUEST,
                "the body must be a JSON-RPC message (an object) or a batch of them",
            );
        }
    };
    let mut answer = match reply {
        None => Answer::status(StatusCode::ACCEPTED),
        Some(reply) if accepts_json => Answer {
            status: StatusCode::OK,
            headers: Vec::new(),
            body: Some(Bytes::from(reply.to_string())),
            event_stream: false,
            stream: None,
        },
        Some(reply) => Answer {
            status: StatusCode::OK,
            headers: Vec::new(),
            body: Some(Bytes::from(format!("event: message\ndata: {reply}\n\n"))),
            event_stream: true,
            stream: None,
        },
    };
    if let Some(id) = new_session
        && let Ok(value) = HeaderValue::from_str(&id)
    {
        answer
            .headers
            .push((HeaderName::from_static("mcp-session-id"), value));
    }
    answer
}

/// A tool call that asks for progress (`_meta.progressToken`).
fn wants_progress(message: &Value) -> bool {
    message["method"] == "tools/call"
        && message.get("id").is_some()
        && message["params"]["_meta"].get("progressToken").is_some()
}

/// Answers a tool call as an event stream: its progress notifications as they come, then its
/// answer, then the end of the stream.
fn progress_stream(
    gateway: Arc<Gateway>,
    installed: Arc<Installed>,
    caller: Caller,
    scope: String,
    message: Value,
) -> Answer {
    let (events, stream) = mpsc::channel::<Bytes>(64);
    tokio::spawn(async move {
        let (notes, mut incoming) = mpsc::channel::<Value>(32);
        let relay_events = events.clone();
        let relay = tokio::spawn(async move {
            while let Some(note) = incoming.recv().await {
                let event = Bytes::from(format!("event: message\ndata: {note}\n\n"));
                if relay_events.send(event).await.is_err() {
                    break;
                }
            }
        });
        let mut unused = None;
        let reply = one(
            &gateway,
            &installed,
            &caller,
            &scope,
            message,
            &mut unused,
            Some(notes),
        )
        .await;
        // Every progress note is out before the answer: the call's end dropped the last sender.
        let _ = relay.await;
        if let Some(reply) = reply {
            let _ = events
                .send(Bytes::from(format!("event: message\ndata: {reply}\n\n")))
                .await;
        }
    });
    let mut answer = Answer::status(StatusCode::OK);
    answer.event_stream = true;
    answer.stream = Some(stream);
    answer
}

/// `GET /mcp/sse` (the older transport): an event stream whose first event names where to POST.
pub fn open_event_stream(gateway: &Gateway, caller: &Caller) -> Answer {
    // Room for a burst of answers; a client that stops reading loses its session's answers
    // (the sender sees the stream full or closed) rather than holding the gateway's memory.
    let (tx, rx) = mpsc::channel(64);
    let id = gateway.sessions.open_with(caller, Some(tx.clone()));
    let first = format!("event: endpoint\ndata: /mcp/messages?session_id={id}\n\n");
    if tx.try_send(Bytes::from(first)).is_err() {
        return Answer::error(
            StatusCode::INTERNAL_SERVER_ERROR,
            -32603,
            "stream not opened",
        );
    }
    let mut answer = Answer::status(StatusCode::OK);
    answer.event_stream = true;
    answer.stream = Some(rx);
    answer
}

/// `POST /mcp/messages?session_id=...` (the older transport): 202 at once; the answer goes out
/// on the session's event stream when it is ready.
pub fn post_message(
    gateway: Arc<Gateway>,
    installed: Arc<Installed>,
    caller: Caller,
    query: &str,
    body: &Bytes,
) -> Answer {
    let Some(id) = query
        .split('&')
        .find_map(|p| p.strip_prefix("session_id="))
        .map(str::to_string)
    else {
        return Answer::error(
            StatusCode::BAD_REQUEST,
            INVALID_REQUEST,
            "session_id: required (from the endpoint event of GET /mcp/sse)",
        );
    };
    let Some(events) = gateway.sessions.events(&id, &caller) else {
        return Answer::error(
            StatusCode::NOT_FOUND,
            INVALID_REQUEST,
            "unknown session_id; open GET /mcp/sse again",
        );
    };
    let message: Value = match serde_json::from_slice(body) {
        Ok(message @ Value::Object(_)) => message,
        Ok(_) => {
            return Answer::error(
                StatusCode::BAD_REQUEST,
                INVALID_REQUEST,
                "the body must be one JSON-RPC message",
            );
        }
        Err(e) => {
            return Answer::error(
                StatusCode::BAD_REQUEST,
                PARSE_ERROR,
                &format!("the body is not JSON: {e}"),
            );
        }
    };
    tokio::spawn(async move {
        let mut unused = None;
        let reply = one(
            &gateway,
            &installed,
            &caller,
            &id,
            message,
            &mut unused,
            None,
        )
        .await;
        if let Some(reply) = reply {
            let event = Bytes::from(format!("event: message\ndata: {reply}\n\n"));
            if events.send(event).await.is_err() {
                // The client closed the stream: its session ends with it.
                gateway.sessions.close(&id);
            }
        }
    });
    Answer::status(StatusCode::ACCEPTED)
}

/// One message: its answer, or `None` for a notification or a client's answer.
async fn one(
    gateway: &Gateway,
    installed: &Installed,
    caller: &Caller,
    scope: &str,
    message: Value,
    new_session: &mut Option<String>,
    progress: Option<mpsc::Sender<Value>>,
) -> Option<Value> {
    let id = message.get("id").cloned();
    let Some(method) = message.get("method").and_then(Value::as_str) else {
        // A client's answer to a server request (the gateway sends none) or junk.
        return id.map(|id| {
            error_reply(
                id,
                &RpcError::new(INVALID_REQUEST, "not a JSON-RPC request"),
            )
        });
    };
    let params = message.get("params").cloned().unwrap_or_else(|| json!({}));
    let Some(id) = id else {
        if method == "notifications/cancelled"
            && let Some(request) = params.get("requestId")
        {
            gateway.sessions.cancel(&format!("{scope}/{request}"));
        }
        return None;
    };
    let key = format!("{scope}/{id}");
    let cancelled = gateway.sessions.start(key.clone());
    let work = super::methods::dispatch(
        gateway,
        installed,
        caller,
        method,
        &params,
        new_session,
        progress,
    );
    let result = tokio::select! {
        result = work => result,
        () = cancelled.notified() => Err(RpcError::new(-32800, "request cancelled")),
    };
    gateway.sessions.end(&key);
    Some(match result {
        Ok(result) => json!({"jsonrpc": "2.0", "id": id, "result": result}),
        Err(error) => error_reply(id, &error),
    })
}

fn error_reply(id: Value, error: &RpcError) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": error.to_json()})
}
