//! A small MCP server for Stockyard's tests, over stdio ([`run_stdio`]) or Streamable HTTP
//! ([`MockMcp::start`]). Its tools:
//! - `echo {text}`: answers `"<server>: <text>"`, so a test sees which server answered;
//! - `leak_secret`: answers text holding an AWS-shaped access key id (for guardrail tests);
//! - `stall {ms}`: answers after `ms` milliseconds (default 60 s), for timeout tests;
//! - `count {n}`: sends `n` progress notifications (to the call's `progressToken`), then answers.
//!
//! Requests are answered concurrently (a stalled call holds nobody else up), and the HTTP server
//! records the `authorization` header of each request so tests can check stored credentials.

use std::convert::Infallible;
use std::io::{BufRead, Write};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{Value, json};

/// The secret `leak_secret` returns: shaped like an AWS access key id.
pub const SECRET: &str = "AKIAZ7Q3R5T2W9X4Y6PL";

/// What one JSON-RPC message gets: notifications sent first, then the answer (`None` for a
/// notification), after `delay`.
struct Reply {
    notes: Vec<Value>,
    answer: Option<Value>,
    delay: Duration,
}

fn answer(server: &str, message: &Value) -> Reply {
    let id = message.get("id").cloned();
    let method = message["method"].as_str().unwrap_or_default();
    let Some(id) = id else {
        return Reply {
            notes: Vec::new(),
            answer: None,
            delay: Duration::ZERO,
        };
    };
    let mut delay = Duration::ZERO;
    let mut notes = Vec::new();
    let result = match method {
        "initialize" => Ok(json!({
            "protocolVersion": message["params"]["protocolVersion"].as_str().unwrap_or("2025-06-18"),
            "capabilities": {"tools": {}, "resources": {}, "prompts": {}},
            "serverInfo": {"name": format!("mock-mcp-{server}"), "version": "0.1.0"},
        })),
        "ping" => Ok(json!({})),
        "tools/list" => Ok(json!({"tools": [
            {"name": "echo", "description": "echoes its text",
             "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}},
            {"name": "leak_secret", "description": "answers with a credential",
             "inputSchema": {"type": "object", "properties": {}}},
            {"name": "stall", "description": "answers after ms milliseconds",
             "inputSchema": {"type": "object", "properties": {"ms": {"type": "integer"}}}},
            {"name": "count", "description": "reports n steps of progress, then answers",
             "inputSchema": {"type": "object", "properties": {"n": {"type": "integer"}}}},
        ]})),
        "tools/call" => {
            let args = &message["params"]["arguments"];
            match message["params"]["name"].as_str().unwrap_or_default() {
                "echo" => Ok(text_result(&format!(
                    "{server}: {}",
                    args["text"].as_str().unwrap_or_default()
                ))),
                "leak_secret" => Ok(text_result(&format!(
                    "the deploy key is {SECRET} keep it safe"
                ))),
                "count" => {
                    let n = args["n"].as_u64().unwrap_or(3);
                    if let Some(token) = message["params"]["_meta"].get("progressToken") {
                        for step in 1..=n {
                            notes
                                .push(json!({"jsonrpc": "2.0", "method": "notifications/progress",
                                "params": {"progressToken": token, "progress": step, "total": n}}));
                        }
                    }
                    Ok(text_result(&format!("counted to {n}")))
                }
                "stall" => {
                    delay = Duration::from_millis(args["ms"].as_u64().unwrap_or(60_000));
                    Ok(text_result("finally"))
                }
                other => Err(json!({"code": -32602, "message": format!("unknown tool {other}")})),
            }
        }
        "resources/list" => Ok(json!({"resources": [
            {"uri": "mock://readme", "name": "readme", "mimeType": "text/plain"}
        ]})),
        "resources/read" => Ok(json!({"contents": [
            {"uri": message["params"]["uri"], "mimeType": "text/plain", "text": format!("readme of {server}")}
        ]})),
        "prompts/list" => Ok(json!({"prompts": [{"name": "greet", "description": "a greeting"}]})),
        "prompts/get" => Ok(json!({"messages": [
            {"role": "user", "content": {"type": "text", "text": format!("hello from {server}")}}
        ]})),
        other => Err(json!({"code": -32601, "message": format!("method not found: {other}")})),
    };
    let body = match result {
        Ok(result) => json!({"jsonrpc": "2.0", "id": id, "result": result}),
        Err(error) => json!({"jsonrpc": "2.0", "id": id, "error": error}),
    };
    Reply {
        notes,
        answer: Some(body),
        delay,
    }
}

fn text_result(text: &str) -> Value {
    json!({"content": [{"type": "text", "text": text}], "isError": false})
}

/// Serves MCP over this process's stdin and stdout until stdin closes, then exits the process.
/// Each request is answered on its own thread, so a stalled call holds up no other.
pub fn run_stdio(server: &str) -> ! {
    let stdout = Arc::new(Mutex::new(std::io::stdout()));
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let Ok(message) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        let stdout = stdout.clone();
        let server = server.to_string();
        std::thread::spawn(move || {
            let reply = answer(&server, &message);
            let write = |line: &Value| {
                let mut out = stdout.lock().unwrap_or_else(|p| p.into_inner());
                let _ = writeln!(out, "{line}");
                let _ = out.flush();
            };
            reply.notes.iter().for_each(write);
            if let Some(answer) = reply.answer {
                std::thread::sleep(reply.delay);
                write(&answer);
            }
        });
    }
    std::process::exit(0)
}

/// The Streamable HTTP server, on 127.0.0.1 at an ephemeral port, path `/mcp`.
pub struct MockMcp {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Option<String>>>>,
    task: tokio::task::JoinHandle<()>,
}

impl MockMcp {
    pub async fn start(server: &str) -> std::io::Result<MockMcp> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let seen: Arc<Mutex<Vec<Option<String>>>> = Arc::default();
        let name = server.to_string();
        let task_seen = seen.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let name = name.clone();
                let seen = task_seen.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        handle(name.clone(), seen.clone(), request)
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(MockMcp { addr, seen, task })
    }

    pub fn url(&self) -> String {
        format!("http://{}/mcp", self.addr)
    }

    /// The `authorization` header of every request so far, in order.
    pub fn authorizations(&self) -> Vec<Option<String>> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl Drop for MockMcp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn handle(
    server: String,
    seen: Arc<Mutex<Vec<Option<String>>>>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let auth = request
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    seen.lock().unwrap_or_else(|p| p.into_inner()).push(auth);
    if request.method() != hyper::Method::POST {
        return Ok(status_only(StatusCode::METHOD_NOT_ALLOWED));
    }
    let body = match request.into_body().collect().await {
        Ok(body) => body.to_bytes(),
        Err(_) => return Ok(status_only(StatusCode::BAD_REQUEST)),
    };
    let Ok(message) = serde_json::from_slice::<Value>(&body) else {
        return Ok(status_only(StatusCode::BAD_REQUEST));
    };
    let is_call = message["method"] == "tools/call";
    let is_init = message["method"] == "initialize";
    let Reply {
        notes,
        answer: reply,
        delay,
    } = answer(&server, &message);
    tokio::time::sleep(delay).await;
    let Some(reply) = reply else {
        return Ok(status_only(StatusCode::ACCEPTED));
    };
    // Tool calls answer as an event stream (progress first), the rest as JSON: a client must
    // take both.
    let (content_type, body) = if is_call {
        let mut events: String = notes
            .iter()
            .map(|n| format!("event: message\ndata: {n}\n\n"))
            .collect();
        events.push_str(&format!("event: message\ndata: {reply}\n\n"));
        ("text/event-stream", events)
    } else {
        ("application/json", reply.to_string())
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    response.headers_mut().insert(
        "content-type",
        hyper::header::HeaderValue::from_static(content_type),
    );
    if is_init {
        response.headers_mut().insert(
            "mcp-session-id",
            hyper::header::HeaderValue::from_static("mock-session-1"),
        );
    }
    Ok(response)
}

fn status_only(status: StatusCode) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = status;
    response
}
