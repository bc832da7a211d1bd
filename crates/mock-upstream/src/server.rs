//! The HTTP side: the accept loop, one hyper connection per socket (HTTP/1.1 keep-alive, or h2c),
//! and `handle`, which runs once per request:
//!
//! 1. count the request and read the whole body;
//! 2. take the next [`Behavior`] from the script and lay the request's `"mock"` object over it;
//! 3. answer: the scripted status fault if any, else the endpoint's reply;
//! 4. record the request, sleep `headers_delay_ms`, and send.
//!
//! Paths under `/v1/messages` speak Anthropic: their errors (status faults, bad JSON, a bad
//! `"mock"` object, unknown paths) take Anthropic's shape, and every response carries a
//! `request-id` header. Paths ending in `/models/{model}:{method}` speak Gemini (errors in
//! Google's shape), and paths ending in `/model/{modelId}/{action}` speak Bedrock (errors named
//! in `x-amzn-ErrorType`, an `x-amzn-requestid` on every response). Everything else speaks
//! OpenAI.
//!
//! Speed matters because the benchmark measures the proxy against this server: sockets get
//! `TCP_NODELAY`, whole bodies go out with `content-length` in one write, and the common path
//! takes one uncontended lock and builds the reply with borrowed, typed serializers.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderName, HeaderValue, RETRY_AFTER};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use crate::body::{MockBody, SseBody, Step};
use crate::openai::{self, Reply, error};
use crate::record::{Recorded, Recorder};
use crate::script::{Behavior, Script};
use crate::{anthropic, bedrock, gemini};

/// State shared by the handle and every connection.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    pub(crate) script: Script,
    pub(crate) recorder: Recorder,
    /// Files and batches: the only state kept between requests.
    pub(crate) objects: crate::batches::Objects,
}

/// Accepts until the task is aborted. Connections live in a `JoinSet` owned by this future, so
/// aborting it (dropping the `MockUpstream`) also tears down every open connection and stream.
pub(crate) async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).keep_alive(true);
    let builder = Arc::new(builder);
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    // Without it, Nagle's algorithm holds small SSE chunks and responses back
                    // for up to 40 ms against the client's delayed ACK. It only fails on a socket
                    // that is already dead, which hyper will report on its own.
                    let _ = stream.set_nodelay(true);
                    let builder = Arc::clone(&builder);
                    let shared = Arc::clone(&shared);
                    connections.spawn(async move {
                        let service = service_fn(move |req| handle(Arc::clone(&shared), req));
                        // A connection error is the client's business (or a scripted reset);
                        // the server carries on either way.
                        let _ = builder.serve_connection(TokioIo::new(stream), service).await;
                    });
                }
                // Usually EMFILE under load: back off instead of spinning on the error.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
            // Reap finished connections so the set doesn't grow with every one ever served.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn handle(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<MockBody>, Infallible> {
    let n = shared.recorder.count_one();
    let (parts, body) = req.into_parts();
    let api = Api::of(parts.uri.path());
    let raw = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => {
            let message = format!("could not read the request body: {e}");
            let reply = api.bad_request(&message, "unreadable_body", n);
            return Ok(api.finish(respond(reply, &Behavior::default()), n));
        }
    };
    let parsed = serde_json::from_slice::<Value>(&raw);

    let mut behavior = shared.script.next();
    let mut override_error = None;
    if let Ok(req) = &parsed
        && let Some(mock) = req.get("mock")
    {
        match behavior.overridden_by(mock) {
            Ok(b) => behavior = Arc::new(b),
            Err(message) => override_error = Some(api.bad_request(&message, "invalid_mock", n)),
        }
    }
    let reply = match override_error {
        Some(reply) => reply,
        // A scripted fault wins; otherwise files and batches answer from the mock's state.
        None if behavior.status.is_none() && crate::batches::serves(parts.uri.path()) => {
            let content_type = parts
                .headers
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            crate::batches::missing_api_version(parts.uri.path(), parts.uri.query()).unwrap_or_else(
                || {
                    shared
                        .objects
                        .reply(&parts.method, parts.uri.path(), content_type, &raw, n)
                },
            )
        }
        None => match multipart(&parts, &raw) {
            Some(reply) => reply,
            None => route(
                api,
                &parts.method,
                parts.uri.path(),
                parts.uri.query(),
                &parsed,
                &behavior,
                n,
            ),
        },
    };

    if shared.recorder.enabled() {
        shared.recorder.push(Recorded {
            method: parts.method.to_string(),
            path: parts
                .uri
                .path_and_query()
                .map_or_else(|| parts.uri.path().to_owned(), |pq| pq.as_str().to_owned()),
            headers: parts
                .headers
                .iter()
                .map(|(name, value)| {
                    let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
                    (name.as_str().to_owned(), value)
                })
                .collect(),
            body: parsed.unwrap_or(Value::Null),
            raw_body: raw,
        });
    }
    if behavior.headers_delay_ms > 0 {
        tokio::time::sleep(Duration::from_millis(behavior.headers_delay_ms)).await;
    }
    Ok(api.finish(respond(reply, &behavior), n))
}

/// The answer of an OpenAI endpoint that takes `multipart/form-data`, if the path is one.
fn multipart(parts: &hyper::http::request::Parts, raw: &Bytes) -> Option<Reply> {
    use crate::openai::operations::{self, Form};
    let path = parts.uri.path();
    let known = [
        "/v1/images/edits",
        "/v1/images/variations",
        "/v1/audio/transcriptions",
        "/v1/audio/translations",
    ];
    if parts.method != Method::POST || !known.contains(&path) {
        return None;
    }
    let content_type = parts
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let form = match Form::parse(content_type, raw) {
        Ok(form) => form,
        Err(message) => return Some(error::bad_request(&message, "invalid_multipart")),
    };
    Some(match path {
        "/v1/audio/transcriptions" => operations::transcription(&form, false),
        "/v1/audio/translations" => operations::transcription(&form, true),
        _ => operations::image_form(&form),
    })
}

/// Which API a path belongs to, which decides the shape of its errors.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Api {
    OpenAi,
    Anthropic,
    Gemini,
    Bedrock,
}

impl Api {
    fn of(path: &str) -> Api {
        if anthropic::serves(path) {
            Api::Anthropic
        } else if gemini::serves(path) {
            Api::Gemini
        } else if bedrock::serves(path) {
            Api::Bedrock
        } else {
            Api::OpenAi
        }
    }

    /// A 400 for request `n`; `code` is OpenAI's `error.code` (the other APIs' errors have none).
    fn bad_request(self, message: &str, code: &str, n: usize) -> Reply {
        match self {
            Api::OpenAi => error::bad_request(message, code),
            Api::Anthropic => anthropic::error::invalid_request(message, n),
            Api::Gemini => gemini::error::bad_request(message),
            Api::Bedrock => bedrock::error::validation(message),
        }
    }

    /// Adds what every response of this API carries: Anthropic's `request-id`, Bedrock's
    /// `x-amzn-requestid`.
    fn finish(self, mut response: Response<MockBody>, n: usize) -> Response<MockBody> {
        let (name, id) = match self {
            Api::Anthropic => ("request-id", anthropic::request_id(n)),
            Api::Bedrock => ("x-amzn-requestid", bedrock::request_id(n)),
            Api::OpenAi | Api::Gemini => return response,
        };
        if let Ok(value) = HeaderValue::try_from(id) {
            response
                .headers_mut()
                .insert(HeaderName::from_static(name), value);
        }
        response
    }
}

// One argument per fact of the request; bundling them in a struct would only move the list.
#[allow(clippy::too_many_arguments)]
fn route(
    api: Api,
    method: &Method,
    path: &str,
    query: Option<&str>,
    parsed: &Result<Value, serde_json::Error>,
    behavior: &Behavior,
    n: usize,
) -> Reply {
    if let Some(status) = behavior.status {
        let (retry_after_s, code) = (behavior.retry_after_s, behavior.error_code.as_deref());
        return match api {
            Api::OpenAi => error::fault(status, retry_after_s, code),
            Api::Anthropic => anthropic::error::fault(status, retry_after_s, code, n),
            Api::Gemini => gemini::error::fault(status, retry_after_s, code),
            Api::Bedrock => bedrock::error::fault(status, retry_after_s, code),
        };
    }
    let with_body = |answer: &dyn Fn(&Value) -> Reply| match parsed {
        Ok(req @ Value::Object(_)) => answer(req),
        Ok(_) => api.bad_request("the request body must be a JSON object", "invalid_json", n),
        Err(e) => api.bad_request(
            &format!("the request body is not valid JSON: {e}"),
            "invalid_json",
            n,
        ),
    };
    match api {
        Api::Gemini => {
            let call = gemini::target(path).and_then(|t| {
                let call = gemini::Call::of(t.method, query)?;
                Some((t.model, call))
            });
            return match (method, call) {
                (&Method::POST, Some((model, call))) => {
                    with_body(&|req| gemini::reply(call, model, req, behavior, n))
                }
                _ => gemini::error::not_found(method.as_str(), path),
            };
        }
        Api::Bedrock => {
            let call = bedrock::target(path).and_then(|t| {
                let action = bedrock::Action::of(t.action)?;
                Some((t.model_id, action))
            });
            return match (method, call) {
                (&Method::POST, Some((model_id, action))) => {
                    with_body(&|req| bedrock::reply(action, &model_id, req, behavior, n))
                }
                _ => bedrock::error::not_found(method.as_str(), path),
            };
        }
        Api::OpenAi | Api::Anthropic => {}
    }
    match (method, path) {
        (&Method::POST, "/v1/chat/completions") => {
            with_body(&|req| openai::chat::reply(req, behavior, n))
        }
        (&Method::POST, "/v1/completions") => {
            with_body(&|req| openai::completions::reply(req, behavior, n))
        }
        (&Method::POST, "/v1/embeddings") => with_body(&openai::embeddings::reply),
        (&Method::POST, "/v1/responses") => {
            with_body(&|req| openai::responses::reply(req, behavior, n))
        }
        (&Method::GET, "/v1/models") => openai::models::reply(),
        (&Method::POST, "/v1/images/generations") => {
            with_body(&openai::operations::image_generation)
        }
        (&Method::POST, "/v1/audio/speech") => {
            with_body(&|req| openai::operations::speech(req, behavior))
        }
        (&Method::POST, "/v1/moderations") => {
            with_body(&|req| openai::operations::moderation(req, n))
        }
        (&Method::POST, "/v1/rerank" | "/v2/rerank") => {
            with_body(&|req| openai::operations::rerank(req, n))
        }
        (&Method::POST, "/v1/messages") => {
            with_body(&|req| anthropic::messages::reply(req, behavior, n))
        }
        (&Method::POST, "/v1/messages/count_tokens") => {
            with_body(&|req| anthropic::count_tokens::reply(req, behavior, n))
        }
        _ => match api {
            Api::Anthropic => anthropic::error::not_found(method.as_str(), path, n),
            Api::OpenAi | Api::Gemini | Api::Bedrock => error::not_found(method.as_str(), path),
        },
    }
}

fn respond(reply: Reply, behavior: &Behavior) -> Response<MockBody> {
    match reply {
        Reply::Json(body) => {
            let body = if behavior.malformed_body {
                // Half of a JSON object is never valid JSON: it closes only at its last byte.
                body.slice(..body.len() / 2)
            } else {
                body
            };
            json_response(StatusCode::OK, body)
        }
        Reply::Error {
            status,
            body,
            retry_after_s,
        } => {
            let mut response = json_response(status, Bytes::from(body));
            if let Some(seconds) = retry_after_s {
                response
                    .headers_mut()
                    .insert(RETRY_AFTER, HeaderValue::from(seconds));
            }
            response
        }
        Reply::Stream(plan) => sse_response(plan.into_steps(behavior), behavior),
        Reply::Events(steps) => sse_response(steps, behavior),
        Reply::EventStream(steps) => {
            let mut response = stream_response(steps, behavior);
            response.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static("application/vnd.amazon.eventstream"),
            );
            response
        }
        Reply::Raw {
            content_type,
            steps,
        } => {
            let mut response = stream_response(steps, behavior);
            response
                .headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
            response
        }
        Reply::WithHeaders(reply, headers) => {
            let mut response = respond(*reply, behavior);
            response.headers_mut().extend(headers);
            response
        }
    }
}

fn sse_response(steps: VecDeque<Step>, behavior: &Behavior) -> Response<MockBody> {
    let mut response = stream_response(steps, behavior);
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// A timed body of `steps` (SSE events or event-stream frames alike), without a content type.
fn stream_response(steps: VecDeque<Step>, behavior: &Behavior) -> Response<MockBody> {
    let delay = Duration::from_millis(behavior.chunk_delay_ms);
    Response::new(MockBody::Stream(SseBody::new(steps, delay)))
}

fn json_response(status: StatusCode, body: Bytes) -> Response<MockBody> {
    let mut response = Response::new(MockBody::whole(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}
