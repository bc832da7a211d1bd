//! The SSE relay: forwards a streamed answer event by event as it arrives, never buffering it whole.
//!
//! A task reads the upstream body, splits it into events, records usage from the final usage chunk
//! (and withholds that chunk from clients that did not ask for it), runs `on_chunk`, and sends the
//! events on. It ends in one of four ways, each recorded in the trace:
//! - `[DONE]` then end of body: success;
//! - the client goes away (the response body is dropped, closing the channel): `cancelled`, and
//!   the upstream request is dropped, which closes its connection;
//! - the upstream fails, stalls past `stream_idle`, passes its total timeout, ends without
//!   `[DONE]`, or sends an error event: the client gets an SSE error event in the OpenAI shape and
//!   no `[DONE]`, so a failure never looks like a clean finish.

use std::sync::Arc;
use std::time::Instant;

use std::borrow::Cow;

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::Response;
use hyper::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use serde::Deserialize;
use tokio::sync::mpsc;

use super::egress::StreamEgress;
use super::pipeline::{finish, passthrough_headers, stamp};
use super::transcode::UpstreamBody;
use super::{ProxyBody, RequestCtx};
use crate::modules::{Chain, StreamChunk};
use crate::request::ApiError;
use crate::request::attempt::{AttemptFailure, FailureKind};
use crate::wire::openai::Usage;
use crate::wire::sse::{RawEvent, SseSplitter};

/// Events buffered between the relay and a slow client before the relay waits.
const CHANNEL_DEPTH: usize = 64;

/// Starts relaying `upstream` to the client; `prefix` holds frames already read by
/// [`wait_for_content`], which go out first.
pub fn start(
    chain: Arc<Chain>,
    mut ctx: RequestCtx,
    upstream: Response<UpstreamBody>,
    prefix: Vec<Bytes>,
) -> Response<ProxyBody> {
    let (tx, rx) = mpsc::channel(CHANNEL_DEPTH);
    let mut headers = passthrough_headers(upstream.headers());
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    let mut response = Response::new(ProxyBody::Stream(rx));
    *response.status_mut() = upstream.status();
    *response.headers_mut() = headers;
    ctx.status = upstream.status().as_u16();
    let response = stamp(response, &mut ctx);
    tokio::spawn(relay(chain, ctx, upstream.into_body(), prefix, tx));
    response
}

enum End {
    Done,
    Cancelled,
    /// Failed; `told` says whether the client already got the upstream's own error event.
    Failed {
        err: ApiError,
        told: bool,
    },
}

async fn relay(
    chain: Arc<Chain>,
    mut ctx: RequestCtx,
    mut body: UpstreamBody,
    prefix: Vec<Bytes>,
    tx: mpsc::Sender<Bytes>,
) {
    let mut prefix = prefix.into_iter();
    let (idle, total) = ctx
        .route
        .as_ref()
        .map(|r| {
            (
                r.provider.timeouts().stream_idle,
                r.provider.timeouts().total,
            )
        })
        .unwrap_or_default();
    let provider = ctx.provider_name().unwrap_or_default().to_string();
    let deadline = tokio::time::Instant::from_std(ctx.started + total);
    let mut egress = StreamEgress::for_request(&ctx);
    let mut native = ctx.native_decoder.take();
    let mut splitter = SseSplitter::default();
    let mut saw_done = false;

    let end = loop {
        let data = if let Some(data) = prefix.next() {
            data
        } else {
            let waiting = Instant::now();
            let next = tokio::select! {
                biased;
                _ = tx.closed() => break End::Cancelled,
                _ = tokio::time::sleep_until(deadline) => break End::Failed {
                    err: ApiError::UpstreamTimeout {
                        message: format!("provider {provider} did not finish the stream within {} ms", total.as_millis()),
                    },
                    told: false,
                },
                next = tokio::time::timeout(idle, body.frame()) => next,
            };
            ctx.upstream_time += waiting.elapsed();
            let frame = match next {
                Err(_) => {
                    break End::Failed {
                        err: ApiError::UpstreamTimeout {
                            message: format!(
                                "provider {provider} sent nothing for {} ms mid-stream",
                                idle.as_millis()
                            ),
                        },
                        told: false,
                    };
                }
                Ok(None) if saw_done => break End::Done,
                // A native stream ends with its own terminal event, which the side decoder saw.
                Ok(None) if native.is_some() => {
                    let finished = native.as_mut().map(|side| side.finish());
                    match finished {
                        Some(Ok(chunks)) => {
                            for chunk in chunks {
                                let _ = inspect_value(&mut ctx, &chunk);
                            }
                            break End::Done;
                        }
                        Some(Err(message)) => {
                            break End::Failed {
                                err: ApiError::UpstreamProtocol { message },
                                told: false,
                            };
                        }
                        None => break End::Done,
                    }
                }
                Ok(None) => {
                    break End::Failed {
                        err: ApiError::UpstreamProtocol {
                            message: format!(
                                "provider {provider} ended the stream before it finished"
                            ),
                        },
                        told: false,
                    };
                }
                Ok(Some(Err(e))) => {
                    break End::Failed {
                        err: ApiError::UpstreamProtocol {
                            message: format!("provider {provider} broke off the stream: {e}"),
                        },
                        told: false,
                    };
                }
                Ok(Some(Ok(frame))) => frame,
            };
            let Ok(data) = frame.into_data() else {
                continue;
            };
            data
        };
        let mut out = BytesMut::new();
        let mut upstream_error = None;
        if let Some(side) = native.as_mut() {
            // The client speaks the provider's own format: its bytes go out as they came, and a
            // side decoder reads usage, text and errors from them.
            out.extend_from_slice(&data);
            match side.push(&data) {
                Ok(chunks) => {
                    for chunk in chunks {
                        if let EventKind::Error(message) = inspect_value(&mut ctx, &chunk) {
                            upstream_error = Some(message);
                        }
                    }
                }
                Err(message) => upstream_error = Some(message),
            }
            let mut chunk = StreamChunk {
                raw: data.clone(),
                json: None,
                drop: false,
            };
            for module in chain.modules() {
                module.on_chunk(&mut ctx, &mut chunk);
            }
        } else {
            for event in splitter.push(&data) {
                match relay_event(&chain, &mut ctx, &mut egress, event, &mut out) {
                    EventKind::Done => saw_done = true,
                    EventKind::Error(message) => upstream_error = Some(message),
                    EventKind::Data => {}
                }
            }
        }
        if !out.is_empty() {
            ctx.ttft.get_or_insert_with(|| ctx.started.elapsed());
            ctx.bytes_out += out.len() as u64;
            if tx.send(out.freeze()).await.is_err() {
                break End::Cancelled;
            }
        }
        if let Some(message) = upstream_error {
            break End::Failed {
                err: ApiError::UpstreamProtocol { message },
                told: true,
            };
        }
    };

    // Dropping the upstream body here, before anything else, closes its connection at once.
    drop(body);
    match end {
        End::Done => {
            let tail = egress.finish(&mut ctx);
            ctx.bytes_out += tail.len() as u64;
            // Finish before the last bytes go out: a client that reacts to the end of the stream
            // at once (a follow-up turn by `previous_response_id`) must find it stored.
            finish(&chain, &mut ctx).await;
            if !tail.is_empty() {
                let _ = tx.send(tail).await;
            }
            return;
        }
        End::Cancelled => ctx.error_class = Some("cancelled".into()),
        End::Failed { err, told } => {
            ctx.error_class = Some(if told {
                "upstream_stream_error".into()
            } else {
                err.code().to_string()
            });
            // An OpenAI client already got the provider's own error event; others get theirs now.
            if !told || !egress.forwards_raw() {
                let event = egress.error_event(err.sse_event(), &err.message());
                ctx.bytes_out += event.len() as u64;
                let _ = tx.send(event).await;
            }
        }
    }
    drop(tx);
    finish(&chain, &mut ctx).await;
}

enum EventKind {
    Data,
    Done,
    /// The upstream sent an error event; its message.
    Error(String),
}

/// Inspects one event, runs `on_chunk`, and appends it to `out` in the client's format unless it
/// is withheld.
fn relay_event(
    chain: &Chain,
    ctx: &mut RequestCtx,
    egress: &mut StreamEgress,
    event: RawEvent,
    out: &mut BytesMut,
) -> EventKind {
    let mut kind = EventKind::Data;
    let mut drop = false;
    let mut json = None;
    match event.data().as_deref() {
        None => {}
        Some("[DONE]") => kind = EventKind::Done,
        Some(text) => {
            // The typed view reads only what the proxy needs, borrowing from the event; the full
            // JSON tree is built only for a client whose format needs re-encoding.
            if let Ok(view) = serde_json::from_str::<ChunkView<'_>>(text) {
                kind = inspect(ctx, &view, &mut drop);
            }
            if !egress.is_openai() {
                json = serde_json::from_str::<serde_json::Value>(text).ok();
            }
        }
    }
    let mut chunk = StreamChunk {
        raw: event.bytes,
        json,
        drop,
    };
    if matches!(kind, EventKind::Error(_)) && !egress.is_openai() {
        // The failure reaches such a client as its own format's error event, at the end.
        return kind;
    }
    for module in chain.modules() {
        module.on_chunk(ctx, &mut chunk);
    }
    if !chunk.drop
        && let Err(message) = egress.push(&chunk.raw, chunk.json.as_ref(), out)
    {
        return EventKind::Error(format!(
            "the answer does not fit the client's format: {message}"
        ));
    }
    kind
}

/// What the relay reads of a canonical chunk.
#[derive(Deserialize)]
struct ChunkView<'a> {
    #[serde(default, borrow)]
    choices: Vec<ChoiceView<'a>>,
    #[serde(default)]
    usage: Option<Usage>,
    #[serde(default)]
    error: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct ChoiceView<'a> {
    #[serde(default, borrow)]
    delta: Option<DeltaView<'a>>,
    #[serde(default, borrow)]
    text: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct DeltaView<'a> {
    #[serde(default, borrow)]
    content: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    tool_calls: Option<Vec<ToolCallView<'a>>>,
}

#[derive(Deserialize)]
struct ToolCallView<'a> {
    #[serde(default, borrow)]
    function: Option<FunctionView<'a>>,
}

#[derive(Deserialize)]
struct FunctionView<'a> {
    #[serde(default, borrow)]
    name: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    arguments: Option<Cow<'a, str>>,
}

/// [`inspect`] for a chunk the side decoder of a native stream produced (never withheld). A
/// native Responses stream's completed object is kept for storage.
fn inspect_value(ctx: &mut RequestCtx, chunk: &serde_json::Value) -> EventKind {
    use crate::providers::FINAL_RESPONSE_FIELD;
    if let Some(response) = chunk.get(FINAL_RESPONSE_FIELD).filter(|r| r.is_object()) {
        ctx.response_id = response["id"].as_str().map(String::from);
        ctx.client_answer = Some(response.clone());
    }
    let text = chunk.to_string();
    match serde_json::from_str::<ChunkView<'_>>(&text) {
        Ok(view) => inspect(ctx, &view, &mut false),
        Err(_) => EventKind::Data,
    }
}

/// Records usage and completion text from a chunk; withholds the usage-only chunk from clients
/// that did not ask for it.
fn inspect(ctx: &mut RequestCtx, view: &ChunkView<'_>, drop: &mut bool) -> EventKind {
    if let Some(error) = &view.error {
        let message = error["message"]
            .as_str()
            .unwrap_or("the provider reported an error mid-stream");
        return EventKind::Error(format!("provider error mid-stream: {message}"));
    }
    if let Some(usage) = &view.usage {
        ctx.record_usage(usage);
        if !ctx.client_wants_usage && view.choices.is_empty() {
            *drop = true;
        }
    }
    for choice in &view.choices {
        let delta = choice.delta.as_ref();
        if let Some(text) = delta
            .and_then(|d| d.content.as_deref())
            .or(choice.text.as_deref())
        {
            ctx.completion_text.push_str(text);
        }
        for call in delta
            .and_then(|d| d.tool_calls.as_ref())
            .into_iter()
            .flatten()
        {
            if let Some(function) = &call.function {
                ctx.completion_text
                    .push_str(function.name.as_deref().unwrap_or_default());
                ctx.completion_text
                    .push_str(function.arguments.as_deref().unwrap_or_default());
            }
        }
    }
    EventKind::Data
}

/// Late commit: reads the stream until its first content (text, a tool call, usage or `[DONE]`),
/// at most `window`, so that a stream failing before any content can still be retried. Returns the
/// response with the frames read so far, or the failure. Nothing has reached the client yet.
pub async fn wait_for_content(
    ctx: &mut RequestCtx,
    upstream: Response<UpstreamBody>,
    window: std::time::Duration,
) -> Result<(Response<UpstreamBody>, Vec<Bytes>), AttemptFailure> {
    let (parts, mut body) = upstream.into_parts();
    let provider = ctx.provider_name().unwrap_or_default().to_string();
    let fail = |message: String| AttemptFailure {
        kind: FailureKind::StreamBeforeContent,
        error: ApiError::UpstreamProtocol { message },
    };
    let deadline = tokio::time::Instant::now() + window;
    let mut splitter = SseSplitter::default();
    let mut prefix = Vec::new();
    let waiting = Instant::now();
    let result = loop {
        let frame = match tokio::time::timeout_at(deadline, body.frame()).await {
            // No content within the window: commit anyway rather than hold the client longer.
            Err(_) => break Ok(()),
            Ok(None) => {
                break Err(fail(format!(
                    "provider {provider} ended the stream before any content"
                )));
            }
            Ok(Some(Err(e))) => {
                break Err(fail(format!(
                    "provider {provider} broke off the stream before any content: {e}"
                )));
            }
            Ok(Some(Ok(frame))) => frame,
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        let events = splitter.push(&data);
        prefix.push(data);
        let mut verdict = None;
        for event in events {
            match event.data().as_deref() {
                Some("[DONE]") => verdict = Some(Ok(())),
                Some(text) => {
                    let Ok(json) = serde_json::from_str::<serde_json::Value>(text) else {
                        continue;
                    };
                    if let Some(error) = json.get("error") {
                        let message = error["message"]
                            .as_str()
                            .unwrap_or("error event")
                            .to_string();
                        verdict = Some(Err(fail(format!(
                            "provider {provider} failed before any content: {message}"
                        ))));
                        break;
                    }
                    if has_content(&json) {
                        verdict = Some(Ok(()));
                    }
                }
                None => {}
            }
        }
        if let Some(verdict) = verdict {
            break verdict;
        }
    };
    ctx.upstream_time += waiting.elapsed();
    result.map(|()| (Response::from_parts(parts, body), prefix))
}

fn has_content(chunk: &serde_json::Value) -> bool {
    if chunk.get("usage").is_some_and(|u| !u.is_null()) {
        return true;
    }
    chunk["choices"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|choice| {
            let delta = &choice["delta"];
            delta["content"].as_str().is_some_and(|t| !t.is_empty())
                || delta["tool_calls"]
                    .as_array()
                    .is_some_and(|c| !c.is_empty())
                || delta["refusal"].as_str().is_some_and(|t| !t.is_empty())
                || choice["text"].as_str().is_some_and(|t| !t.is_empty())
                || choice["finish_reason"].is_string()
        })
}
