//! Anthropic Messages API answers, so the proxy's Anthropic adapter can be tested end to end:
//! `POST /v1/messages` (`messages.rs`), `POST /v1/messages/count_tokens` (`count_tokens.rs`) and
//! Anthropic-shaped errors for every `/v1/messages...` path (`error.rs`). As in `openai/`, each
//! endpoint is a pure function from the request JSON and the [`Behavior`] to a `Reply`; the
//! server adds the `request-id` header (`req_mock_<n>`) that every Anthropic response carries.
//!
//! Shapes follow Anthropic's API reference as of 2026 and the workspace's golden files in
//! `tests/fixtures/anthropic/` (streaming: <https://platform.claude.com/docs/en/build-with-claude/streaming>,
//! errors: <https://platform.claude.com/docs/en/api/errors>). Like the real API, a request without
//! `model` or `messages` (or, for `/v1/messages`, a positive integer `max_tokens`) gets a 400
//! `invalid_request_error`, so an adapter that forgets one fails here rather than in production.
//! Nothing else is validated, and the `anthropic-version` and `x-api-key` headers are only recorded.
//!
//! # The answer
//!
//! `content` is a `thinking` block ([`THINKING_TEXT`], signature `sig_mock_<n>`) when the request's
//! `thinking.type` is `enabled` or `adaptive`, then either a text block with the behaviour's content
//! (`stop_reason: "end_turn"`) or, when `tools` is present and `tool_choice` forces a call (`any`:
//! the first tool; `tool`: the one it names), a `tool_use` block `toolu_mock_1` with input
//! `{"city":"Paris"}` (`stop_reason: "tool_use"`).
//!
//! # Token counts
//!
//! Deterministic, like `openai/`: a "word" is a whitespace-separated run (`str::split_whitespace`).
//!
//! | usage field | value |
//! |---|---|
//! | `cache_read_input_tokens` | R = `Behavior::cached_tokens` |
//! | `cache_creation_input_tokens` | W = `Behavior::cache_write_tokens` |
//! | `input_tokens` | P − R − W, at least 0, where P = words in `system` (a string, or the `text` of each text block) + per message: words in its text (a string `content`, or the `text` of each top-level `"type":"text"` block) + 4 |
//! | `output_tokens` | words in the answer text (a `tool_use` answer counts 1) + `Behavior::reasoning_tokens` |
//!
//! Anthropic's `input_tokens` excludes cache reads and writes, hence the subtraction: the prompt's
//! full size is `input_tokens + cache_read_input_tokens + cache_creation_input_tokens` = P (unless
//! R + W > P). Images, `tool_use`, `tool_result` and `thinking` blocks and the `tools` list count
//! no words; the thinking text the mock answers with counts nothing either (thinking is output,
//! and `reasoning_tokens` stands for it). `count_tokens` answers the same `input_tokens`.
//!
//! # The stream
//!
//! Every event is `event: NAME\ndata: JSON\n\n`, the data's `type` matching the name:
//!
//! 1. `message_start`: the message with `content: []`, `stop_reason: null` and usage with
//!    `input_tokens`, the two cache fields and `output_tokens: 1`;
//! 2. `ping`;
//! 3. per block, `content_block_start`, its `content_block_delta`s, `content_block_stop`: thinking
//!    (`thinking_delta`s of [`THINKING_TEXT`] word by word, then one `signature_delta`), text
//!    (`text_delta`s split over `Behavior::chunks`) or tool use (`input_json_delta`s `{"city":` and
//!    `"Paris"}`);
//! 4. `message_delta` with `stop_reason`, `stop_sequence: null` and `usage: {"output_tokens"}`;
//! 5. `message_stop`.
//!
//! The stream faults count `content_block_delta` events of any kind ("content deltas"):
//! `reset_after_chunks` and `error_event_after_chunks` cut the stream right after the Nth (before
//! the first when N = 0; after the last when N exceeds them), the first resetting the connection,
//! the second sending an `error` event (`overloaded_error`) and ending the body cleanly.
//! `malformed_body` puts one `content_block_delta` event with half its JSON before the first delta.

pub(crate) mod count_tokens;
pub(crate) mod error;
pub(crate) mod messages;

use std::collections::VecDeque;

use bytes::{BufMut, Bytes, BytesMut};
use serde_json::Value;

use crate::body::Step;
use crate::openai::words;
use crate::script::Behavior;

/// The text of the `thinking` block the mock answers with when the request enables thinking.
pub const THINKING_TEXT: &str = "Let me think.";

/// The SSE event name the stream faults count.
const DELTA: &str = "content_block_delta";

/// Whether `path` (without its query) belongs to the Anthropic API, so its errors take
/// Anthropic's shape.
pub(crate) fn serves(path: &str) -> bool {
    path == "/v1/messages" || path.starts_with("/v1/messages/")
}

/// The `request-id` header and error `request_id` of request number `n`.
pub(crate) fn request_id(n: usize) -> String {
    format!("req_mock_{n}")
}

/// Refuses a request that lacks what Anthropic requires, with Anthropic's wording
/// (`max_tokens: Field required`).
pub(crate) fn check(req: &Value, needs_max_tokens: bool) -> Result<(), String> {
    field(req, "model", Value::is_string, "a valid string")?;
    check_body(req, needs_max_tokens)
}

/// [`check`] without `model`, which Claude on Bedrock takes from the path instead.
pub(crate) fn check_body(req: &Value, needs_max_tokens: bool) -> Result<(), String> {
    if needs_max_tokens {
        field(
            req,
            "max_tokens",
            |v| v.as_u64().is_some_and(|n| n > 0),
            "a positive integer",
        )?;
    }
    field(req, "messages", Value::is_array, "a valid list")
}

fn field(req: &Value, name: &str, valid: fn(&Value) -> bool, kind: &str) -> Result<(), String> {
    match req.get(name) {
        None | Some(Value::Null) => Err(format!("{name}: Field required")),
        Some(v) if valid(v) => Ok(()),
        Some(_) => Err(format!("{name}: Input should be {kind}")),
    }
}

/// `input_tokens` by the rule in the module doc: the prompt's words minus cache reads and writes.
pub(crate) fn input_tokens(req: &Value, b: &Behavior) -> u64 {
    prompt_words(req)
        .saturating_sub(b.cached_tokens)
        .saturating_sub(b.cache_write_tokens)
}

/// P in the module doc: words in `system`, plus per message its words and 4.
fn prompt_words(req: &Value) -> u64 {
    let system = req.get("system").map_or(0, content_words);
    let messages: u64 = req
        .get("messages")
        .and_then(Value::as_array)
        .map_or(0, |messages| {
            messages
                .iter()
                .map(|m| m.get("content").map_or(0, content_words) + 4)
                .sum()
        });
    system + messages
}

/// Words in a string, or in the `text` of each top-level text block of a list.
fn content_words(content: &Value) -> u64 {
    match content {
        Value::String(s) => words(s),
        Value::Array(blocks) => blocks
            .iter()
            .filter(|b| b.get("type").and_then(Value::as_str) == Some("text"))
            .filter_map(|b| b.get("text").and_then(Value::as_str))
            .map(words)
            .sum(),
        _ => 0,
    }
}

/// One event of a planned stream, before framing and faults.
pub(crate) struct Event {
    pub(crate) name: &'static str,
    pub(crate) data: Vec<u8>,
}

/// Frames `events` and applies the stream faults of `b` (see the module doc).
pub(crate) fn into_steps(events: &[Event], b: &Behavior) -> VecDeque<Step> {
    let deltas: Vec<usize> = events
        .iter()
        .enumerate()
        .filter(|(_, e)| e.name == DELTA)
        .map(|(i, _)| i)
        .collect();
    let first_delta = deltas.first().copied();
    // Where a fault after `n` deltas cuts: just after the nth delta, or before the first one.
    let cut_after = |n: usize| match n.min(deltas.len()).checked_sub(1) {
        Some(last) => deltas.get(last).map_or(events.len(), |&i| i + 1),
        None => first_delta.unwrap_or(events.len()),
    };
    let error_at = b.error_event_after_chunks.map(cut_after);
    let reset_at = b.reset_after_chunks.map(cut_after);
    let end = error_at.into_iter().chain(reset_at).min();

    let mut steps = VecDeque::with_capacity(events.len() + 2);
    for (i, event) in events.iter().enumerate() {
        if b.malformed_body && Some(i) == first_delta {
            // Half of an event's JSON is never valid JSON: the object closes only at its last byte.
            let half = &event.data[..event.data.len() / 2];
            steps.push_back(Step::Data(frame(DELTA, half)));
        }
        if Some(i) == end {
            break;
        }
        steps.push_back(Step::Data(frame(event.name, &event.data)));
    }
    if end.is_some() && error_at == end {
        steps.push_back(Step::Data(frame("error", &error::overloaded_event())));
    }
    if end.is_some() && reset_at == end {
        steps.push_back(Step::Abort);
    }
    steps
}

fn frame(name: &str, data: &[u8]) -> Bytes {
    let mut buf = BytesMut::with_capacity(name.len() + data.len() + 16);
    buf.put_slice(b"event: ");
    buf.put_slice(name.as_bytes());
    buf.put_slice(b"\ndata: ");
    buf.put_slice(data);
    buf.put_slice(b"\n\n");
    buf.freeze()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{check, prompt_words};

    #[test]
    fn prompt_words_count_system_text_blocks_and_four_per_message() {
        let req = json!({
            "system": [{"type": "text", "text": "Be terse."}, {"type": "text", "text": "Use metric."}],
            "messages": [
                {"role": "user", "content": "one two three"},
                {"role": "assistant", "content": [
                    {"type": "thinking", "thinking": "not counted", "signature": "s"},
                    {"type": "text", "text": "four five"},
                    {"type": "tool_use", "id": "t", "name": "f", "input": {"a": "not counted"}}
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "t", "content": "not counted"},
                    {"type": "image", "source": {"type": "url", "url": "http://x/y.png"}}
                ]}
            ]
        });
        // system 4; messages (3 + 4) + (2 + 4) + (0 + 4).
        assert_eq!(prompt_words(&req), 4 + 7 + 6 + 4);
        assert_eq!(prompt_words(&json!({"system": "a b", "messages": []})), 2);
    }

    #[test]
    fn check_names_the_missing_or_mistyped_field() {
        let ok = json!({"model": "m", "max_tokens": 5, "messages": []});
        assert_eq!(check(&ok, true), Ok(()));
        assert_eq!(
            check(&json!({"model": "m", "messages": []}), true),
            Err("max_tokens: Field required".to_owned())
        );
        assert_eq!(check(&json!({"model": "m", "messages": []}), false), Ok(()));
        assert_eq!(
            check(
                &json!({"model": "m", "max_tokens": 0, "messages": []}),
                true
            ),
            Err("max_tokens: Input should be a positive integer".to_owned())
        );
        assert_eq!(
            check(&json!({"model": 1, "messages": []}), false),
            Err("model: Input should be a valid string".to_owned())
        );
        assert_eq!(
            check(&json!({"model": "m", "max_tokens": 5}), true),
            Err("messages: Field required".to_owned())
        );
    }
}
