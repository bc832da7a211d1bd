//! Streamed answers, event by event: starting the relay ([`super::relay`], the response body
//! that forwards the stream as it arrives), what it reads of each canonical event (usage, which it
//! withholds from clients that did not ask for it; completion text; upstream error events), the
//! stream watchers' pass over each event, and late commit ([`wait_for_content`]), which reads a
//! stream up to its first content so a failure before it can still be retried.

use std::sync::Arc;
use std::time::Instant;

use std::borrow::Cow;

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::Response;
use hyper::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use serde::Deserialize;

use super::complete::{passthrough_headers, stamp};
use super::egress::StreamEgress;
use super::relay::Relay;
use super::stream_hooks::{Ended, StreamHooks};
use super::transcode::UpstreamBody;
use super::{ProxyBody, RequestCtx};
use crate::modules::{Chain, StreamEvent};
use crate::request::ApiError;
use crate::request::attempt::{AttemptFailure, FailureKind};
use crate::wire::openai::Usage;
use crate::wire::sse::{RawEvent, SseSplitter};

/// Starts relaying `upstream` to the client; `prefix` holds frames already read by
/// [`wait_for_content`], which go out first. The response's body is the relay itself.
pub fn start(
    chain: Arc<Chain>,
    mut ctx: RequestCtx,
    upstream: Response<UpstreamBody>,
    prefix: Vec<Bytes>,
) -> Response<ProxyBody> {
    let mut headers = passthrough_headers(upstream.headers());
    // Gemini's default stream is one JSON array, not SSE.
    let array = ctx.request.endpoint == crate::wire::openai::Endpoint::GenerateContent
        && !crate::wire::gemini::wants_sse(ctx.request.uri.query());
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static(if array {
            "application/json"
        } else {
            "text/event-stream"
        }),
    );
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    let status = upstream.status();
    ctx.result.status = status.as_u16();
    let mut response = Response::new(ProxyBody::Empty);
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    let mut response = stamp(response, &mut ctx);
    *response.body_mut() = ProxyBody::Stream(Box::new(Relay::new(
        chain,
        ctx,
        upstream.into_body(),
        prefix,
    )));
    response
}

pub(super) enum EventKind {
    Data,
    Done,
    /// The upstream sent an error event; its message.
    Error(String),
    /// A stream watcher ended the stream.
    Ended(Ended),
}

/// Feeds a native stream's bytes to its side decoder, recording what the chunks say.
pub(super) fn read_native(
    ctx: &mut RequestCtx,
    side: &mut dyn crate::providers::ChatStreamDecoder,
    bytes: &[u8],
) -> Result<(), String> {
    let mut failed = None;
    for chunk in side.push(bytes)? {
        if let EventKind::Error(message) = inspect_value(ctx, &chunk) {
            failed = Some(message);
        }
    }
    failed.map_or(Ok(()), Err)
}

/// Inspects one canonical event, runs the stream watchers, and appends what may go out to `out`
/// in the client's format (usage a client did not ask for is withheld).
pub(super) fn relay_event(
    ctx: &mut RequestCtx,
    egress: &mut StreamEgress,
    hooks: Option<&mut StreamHooks>,
    event: RawEvent,
    out: &mut BytesMut,
) -> EventKind {
    let mut kind = EventKind::Data;
    let mut drop = false;
    let mut json = None;
    let before = ctx.usage.completion_text.len();
    match event.data().as_deref() {
        None => {}
        Some("[DONE]") => kind = EventKind::Done,
        Some(text) => {
            // An ordinary content chunk is read by a scan; anything else (usage, an error, tool
            // calls, several choices, escapes) by the typed view, which borrows from the event.
            // The full JSON tree is built only for a client whose format needs re-encoding.
            match plain_content(text) {
                Some(content) => ctx.usage.completion_text.push_str(content),
                None => {
                    if let Ok(view) = serde_json::from_str::<ChunkView<'_>>(text) {
                        kind = inspect(ctx, &view, &mut drop);
                    }
                }
            }
            if !egress.is_openai() {
                json = serde_json::from_str::<serde_json::Value>(text).ok();
            }
        }
    }
    if matches!(kind, EventKind::Error(_)) && !egress.is_openai() {
        // The failure reaches such a client as its own format's error event, at the end.
        return kind;
    }
    if drop {
        return kind;
    }
    let ready = match hooks {
        // [DONE] ends what watchers hold: it goes out after everything held, and for an OpenAI
        // client only once the watchers judged the whole answer (the relay sends it with the
        // stream's tail), so a refusal at the end is never preceded by a clean ending.
        Some(hooks) if matches!(kind, EventKind::Done) => {
            let mut ready = match hooks.release_all(ctx) {
                Ok(ready) => ready,
                Err(ended) => return EventKind::Ended(ended),
            };
            if !egress.is_openai() {
                ready.push(StreamEvent::canonical(event.bytes, json, String::new()));
            }
            ready
        }
        Some(hooks) => {
            let text = ctx.usage.completion_text[before..].to_string();
            match hooks.run(ctx, StreamEvent::canonical(event.bytes, json, text)) {
                Ok(ready) => ready,
                Err(err) => return EventKind::Ended(err),
            }
        }
        None => {
            return match egress.push(&event.bytes, json.as_ref(), out) {
                Ok(()) => kind,
                Err(message) => EventKind::Error(format!(
                    "the answer does not fit the client's format: {message}"
                )),
            };
        }
    };
    for event in ready {
        let (raw, json) = event.into_parts();
        if let Err(message) = egress.push(&raw, json.as_ref(), out) {
            return EventKind::Error(format!(
                "the answer does not fit the client's format: {message}"
            ));
        }
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
pub(super) fn inspect_value(ctx: &mut RequestCtx, chunk: &serde_json::Value) -> EventKind {
    use crate::providers::FINAL_RESPONSE_FIELD;
    if let Some(response) = chunk.get(FINAL_RESPONSE_FIELD).filter(|r| r.is_object()) {
        ctx.request.response_id = response["id"].as_str().map(String::from);
        ctx.result.client_answer = Some(response.clone());
    }
    let text = chunk.to_string();
    match serde_json::from_str::<ChunkView<'_>>(&text) {
        Ok(view) => inspect(ctx, &view, &mut false),
        Err(_) => EventKind::Data,
    }
}

/// The content delta of a chunk that carries nothing else the proxy needs (no usage, error,
/// tool calls or choice other than the first, no escaped characters in its content), found by a
/// scan instead of a parse: most events of a stream are such chunks. The scan reads compact JSON
/// only; a chunk with whitespace around a colon (`"usage": {`) is parsed. `None`: read it with the
/// typed view.
fn plain_content(chunk: &str) -> Option<&str> {
    use aho_corasick::packed::Searcher;
    use std::sync::LazyLock;
    const KEY: &[u8] = b"\"content\":\"";
    const INDEX: &[u8] = b"\"index\":";
    // One vectorised pass for every string, built once. The content key and the choice index
    // are read where they are found; any other string sends the chunk to the typed view. (`None`
    // where the CPU has no SIMD for it: then every chunk takes the typed view, which reads the
    // same.)
    const STRINGS: [&[u8]; 11] = [
        KEY,   // 0
        INDEX, // 1
        b"\"usage\":{",
        b"\"error\"",
        b"\"tool_calls\"",
        b"\"text\"",
        // Whitespace next to a colon: not the compact JSON the strings above are spelled in.
        b"\": ",
        b"\" :",
        b"\":\n",
        b"\":\r",
        b"\":\t",
    ];
    static NEEDLES: LazyLock<Option<Searcher>> = LazyLock::new(|| Searcher::new(STRINGS));
    let bytes = chunk.as_bytes();
    let mut content = None;
    for found in NEEDLES.as_ref()?.find_iter(bytes) {
        match found.pattern().as_usize() {
            0 => {
                content.get_or_insert(found.start());
            }
            // The first choice, `0` and not `01` or `0.5`: any other is read by the typed view.
            1 => {
                let after = &bytes[found.end()..];
                if after.first() != Some(&b'0')
                    || after
                        .get(1)
                        .is_some_and(|b| b.is_ascii_digit() || *b == b'.')
                {
                    return None;
                }
            }
            _ => return None,
        }
    }
    let Some(at) = content else {
        // No content at all (a role or finish chunk), unless it is null-valued or absent.
        return Some("");
    };
    let start = at + KEY.len();
    let len = memchr::memchr2(b'"', b'\\', &bytes[start..])?;
    // An escape inside: the typed view unescapes it properly.
    if bytes[start + len] == b'\\' {
        return None;
    }
    chunk.get(start..start + len)
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
        if !ctx.request.client_wants_usage && view.choices.is_empty() {
            *drop = true;
        }
    }
    for choice in &view.choices {
        let delta = choice.delta.as_ref();
        if let Some(text) = delta
            .and_then(|d| d.content.as_deref())
            .or(choice.text.as_deref())
        {
            ctx.usage.completion_text.push_str(text);
        }
        for call in delta
            .and_then(|d| d.tool_calls.as_ref())
            .into_iter()
            .flatten()
        {
            if let Some(function) = &call.function {
                ctx.usage
                    .completion_text
                    .push_str(function.name.as_deref().unwrap_or_default());
                ctx.usage
                    .completion_text
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
    ctx.timings.upstream_time += waiting.elapsed();
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

#[cfg(test)]
mod tests {
    use super::plain_content;

    #[test]
    fn ordinary_chunks_are_scanned_and_the_rest_parsed() {
        let chunk = r#"{"id":"c","choices":[{"index":0,"delta":{"content":"Hello "},"finish_reason":null}],"usage":null}"#;
        assert_eq!(plain_content(chunk), Some("Hello "));
        let role = r#"{"choices":[{"index":0,"delta":{"role":"assistant"}}]}"#;
        assert_eq!(plain_content(role), Some(""));
        // A content that reads like a key the scan looks for is still just content.
        let word = r#"{"choices":[{"index":0,"delta":{"content":"text"}}]}"#;
        assert_eq!(plain_content(word), Some("text"));
        let last = r#"{"choices":[{"delta":{"content":"end"},"index":0}]}"#;
        assert_eq!(plain_content(last), Some("end"));
        for other in [
            r#"{"choices":[],"usage":{"prompt_tokens":1}}"#,
            r#"{"error":{"message":"x"}}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"content":"a \"quoted\" word"}}]}"#,
            r#"{"choices":[{"index":0,"text":"legacy"}]}"#,
            r#"{"choices":[{"index":0,"delta":{"content":"hi"}}],"usage":{"prompt_tokens":1}}"#,
            r#"{"choices":[{"index":1,"delta":{"content":"hi"}}]}"#,
            r#"{"choices":[{"index":2,"delta":{"content":"hi"}}]}"#,
            r#"{"choices":[{"index":10,"delta":{"content":"hi"}}]}"#,
            // Spaced JSON, as some OpenAI-compatible servers send it: parsed, never misread.
            r#"{"choices":[{"index":0,"delta":{"content": "Hi"}}]}"#,
            r#"{"choices": [], "usage": {"prompt_tokens": 1}}"#,
            r#"{"choices":[],"usage" :{"prompt_tokens":1}}"#,
            r#"{"choices":[{"index": 1,"delta":{"content":"hi"}}]}"#,
        ] {
            assert_eq!(plain_content(other), None, "{other}");
        }
    }
}
