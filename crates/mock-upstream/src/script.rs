//! The fault script: which [`Behavior`] answers the next request.
//!
//! Tests queue behaviours with `push`; each incoming request, on any endpoint, takes the next one,
//! and the default answers once the queue is empty. A request may also carry a top-level `"mock"`
//! object whose fields override the chosen behaviour for that request only, so the binary can be
//! driven over plain HTTP. The server calls [`Script::next`] once per request, before routing.
//!
//! The same behaviour serves every API the mock speaks: a field that only makes sense for some
//! (`cache_write_tokens` for Anthropic and Bedrock, `error_event_after_chunks` for Anthropic,
//! Gemini and the Responses API, `exception_after_chunks` for Bedrock) is ignored by the others.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

use serde::{Deserialize, Serialize};

/// The assistant text used when [`Behavior::content`] is `None`.
pub const DEFAULT_CONTENT: &str = "Hello from the mock upstream.";

/// The number of content chunks in a stream when [`Behavior::chunks`] is `None`.
pub const DEFAULT_CHUNKS: usize = 5;

/// How the mock answers one request. `Behavior::default()` is a normal, immediate answer.
///
/// The same field names (snake_case) work in a request's `"mock"` object; unknown names there are
/// refused with a 400 so that a typo doesn't silently test the happy path.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Behavior {
    /// Answer with this status and an OpenAI-style error body (`code` is `mock_<status>`), or on
    /// the Anthropic paths (`/v1/messages...`) Anthropic's error body, whose `error.type` follows
    /// the status (see `anthropic/error.rs`); on the Gemini paths Google's
    /// `{"error":{"code","message","status"}}` (`status` e.g. `RESOURCE_EXHAUSTED`, see
    /// `gemini/error.rs`); on the Bedrock paths `{"message":"mock error"}` with the error's name in
    /// `x-amzn-ErrorType` (e.g. `ThrottlingException`, see `bedrock/error.rs`). A value that
    /// isn't a valid HTTP status becomes 500.
    pub status: Option<u16>,
    /// With `status`: send a `retry-after` header with this many seconds (Gemini: also a
    /// `google.rpc.RetryInfo` detail with `retryDelay: "<s>s"`).
    pub retry_after_s: Option<u64>,
    /// With `status`: the error's `code` instead of `mock_<status>` (e.g. `context_length_exceeded`);
    /// on the Anthropic paths, the `error.type` instead of the one for the status; on the Gemini
    /// paths, the `error.status`; on the Bedrock paths, the `x-amzn-ErrorType`.
    pub error_code: Option<String>,
    /// Sleep this long before sending the response headers.
    pub headers_delay_ms: u64,
    /// Stream: sleep this long between two chunks.
    pub chunk_delay_ms: u64,
    /// Stream: number of content chunks (default 5; 0 counts as 1 so the content still arrives);
    /// Anthropic: the number of `text_delta` events; Gemini: the number of answer text chunks;
    /// Bedrock: the number of text `contentBlockDelta` events.
    pub chunks: Option<usize>,
    /// Stream: after this many content chunks, end the body with an error so the connection is
    /// torn down without the terminating chunk and without `[DONE]` (Anthropic: counting every
    /// `content_block_delta`, and without `message_stop`; Gemini: counting answer chunks, the
    /// last of which carries `finishReason`; Bedrock: counting every `contentBlockDelta`, and
    /// without `messageStop`; Responses: counting every `*.delta` event, and without
    /// `response.completed`).
    pub reset_after_chunks: Option<usize>,
    /// Anthropic stream: after this many `content_block_delta` events, send an `error` event
    /// (`overloaded_error`) and end the body cleanly, without `message_delta` or `message_stop`, as
    /// Anthropic does when it fails mid-stream. With `reset_after_chunks` the smaller count cuts
    /// the stream; on a tie the error event goes out, then the connection is reset. Gemini
    /// stream: the same after this many answer chunks, the event being
    /// `data: {"error":{"code":503,...,"status":"UNAVAILABLE"}}`. Responses stream
    /// (`/v1/responses`): after this many delta events, `error` (`server_error`) then
    /// `response.failed`, never `response.completed`.
    pub error_event_after_chunks: Option<usize>,
    /// A 200 whose body is not valid JSON (non-stream), or a stream with one `data:` line of broken
    /// JSON inserted before the first content chunk (Anthropic: before the first
    /// `content_block_delta`; Gemini: before the first answer chunk; Bedrock: a well-framed
    /// `contentBlockDelta` with half a JSON payload before the first delta).
    pub malformed_body: bool,
    /// Never report usage, even when `stream_options.include_usage` asks for it (Anthropic: no
    /// `usage` in the message, `message_start` or `message_delta`, which Anthropic always sends;
    /// Gemini: no `usageMetadata`; Bedrock: no `usage`, in the answer or the `metadata` event).
    pub omit_usage: bool,
    /// Chat Completions streams: every event written with a space after each colon and comma, as
    /// Python's `json.dumps` writes JSON and as some OpenAI-compatible servers send it.
    pub spaced_json: bool,
    /// Reported as `usage.prompt_tokens_details.cached_tokens` (Anthropic:
    /// `usage.cache_read_input_tokens`, taken out of `input_tokens`; Gemini:
    /// `cachedContentTokenCount`, part of `promptTokenCount`; Bedrock: `cacheReadInputTokens`,
    /// taken out of `inputTokens`).
    pub cached_tokens: u64,
    /// Anthropic: reported as `usage.cache_creation_input_tokens`, taken out of `input_tokens`
    /// (Bedrock: `cacheWriteInputTokens`, taken out of `inputTokens`).
    pub cache_write_tokens: u64,
    /// Reported as `usage.completion_tokens_details.reasoning_tokens`, and added to
    /// `completion_tokens` as OpenAI does (Anthropic: added to `output_tokens`; Gemini:
    /// `thoughtsTokenCount`, added to `totalTokenCount` only; Bedrock: added to `outputTokens`).
    pub reasoning_tokens: u64,
    /// The assistant's text (default [`DEFAULT_CONTENT`]).
    pub content: Option<String>,
    /// Bedrock ConverseStream: after this many `contentBlockDelta` events, send an exception frame
    /// (`:message-type: exception`, `:exception-type: throttlingException`, payload
    /// `{"message":"Too many requests"}`) and end the body cleanly, without `messageStop` or
    /// `metadata`. With `reset_after_chunks` the smaller count cuts the stream; on a tie the
    /// exception goes out, then the connection is reset.
    pub exception_after_chunks: Option<usize>,
}

impl Behavior {
    /// The assistant text this behaviour answers with.
    pub fn content(&self) -> &str {
        self.content.as_deref().unwrap_or(DEFAULT_CONTENT)
    }

    /// The number of content chunks a stream is split into (at least 1).
    pub fn chunk_count(&self) -> usize {
        self.chunks.unwrap_or(DEFAULT_CHUNKS).max(1)
    }

    /// This behaviour with the fields of a request's `"mock"` object laid over it.
    ///
    /// Going through JSON keeps one list of fields (the struct) and lets `null` clear an
    /// `Option` field; it only runs for requests that carry `"mock"`, so it is off the hot path.
    pub(crate) fn overridden_by(&self, mock: &serde_json::Value) -> Result<Behavior, String> {
        let serde_json::Value::Object(fields) = mock else {
            return Err("\"mock\" must be an object of behavior fields".to_owned());
        };
        let mut merged = match serde_json::to_value(self) {
            Ok(serde_json::Value::Object(map)) => map,
            // A struct of plain fields always serializes to an object; keep the override alone
            // rather than panic if that ever changes.
            _ => serde_json::Map::new(),
        };
        for (name, value) in fields {
            merged.insert(name.clone(), value.clone());
        }
        serde_json::from_value(serde_json::Value::Object(merged))
            .map_err(|e| format!("invalid \"mock\" override: {e}"))
    }
}

/// The queue and the default, shared by the handle and the server.
#[derive(Debug, Default)]
pub(crate) struct Script {
    state: Mutex<ScriptState>,
}

#[derive(Debug, Default)]
struct ScriptState {
    // Behaviours sit behind `Arc` so the common case (empty queue) clones a pointer, not the
    // content string, on every request.
    queue: VecDeque<Arc<Behavior>>,
    default: Arc<Behavior>,
}

impl Script {
    pub(crate) fn push(&self, b: Behavior) {
        self.lock().queue.push_back(Arc::new(b));
    }

    pub(crate) fn set_default(&self, b: Behavior) {
        self.lock().default = Arc::new(b);
    }

    /// The behaviour for the next request: the head of the queue, else the default.
    pub(crate) fn next(&self) -> Arc<Behavior> {
        let mut state = self.lock();
        match state.queue.pop_front() {
            Some(b) => b,
            None => Arc::clone(&state.default),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ScriptState> {
        // Every critical section is a single push/pop/assign, so a panic elsewhere can't leave the
        // state half-updated; a poisoned lock is still consistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
