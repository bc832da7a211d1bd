//! `POST /v1/responses`: OpenAI's Responses API, so the proxy's native Responses path (and its
//! pass-through to OpenAI) can be tested end to end. A text answer, or a `get_weather`-style
//! function call when the request forces one, streamed or not.
//!
//! Shapes follow the Responses API reference (via the openai-python SDK types) and the workspace's
//! golden files in `tests/fixtures/responses/`; the event names and fields match what the proxy's
//! own encoder (`src/wire/responses/stream/`) emits. Nothing in the request is validated beyond
//! it being a JSON object.
//!
//! # The answer
//!
//! A `response` object (`id: resp_mock_<n>`, `status: "completed"`, `error: null`) echoing the
//! request's `model`, `instructions` (or `null`), `tools` (or `[]`), `tool_choice` (or `"auto"`),
//! `previous_response_id` (or `null`) and `store` (or `true`). Its `output` is one `message` item `msg_mock_<n>` with one
//! `output_text` part (the behaviour's content, `annotations: []`, `logprobs: []`), or, when
//! `tools` holds a function tool and `tool_choice` is `"required"` (the first function tool) or
//! `{"type":"function","name":...}` (that one), one `function_call` item `fc_mock_1` /
//! `call_mock_1` with arguments `{"city":"Paris"}`. `"auto"` and `"none"` get text, so tests
//! decide.
//!
//! # Token counts
//!
//! Deterministic, like chat (see `openai/mod.rs`); a "word" is a whitespace-separated run.
//!
//! | usage field | value |
//! |---|---|
//! | `input_tokens` | P = words in `instructions` + for a string `input`: its words + 4; for an item list, per message item (`"type":"message"`, or no `type` but a `role`): words in its `content` (a string, or the `text` of each `input_text`/`output_text` part) + 4. Other items (`function_call`, `function_call_output`, `reasoning`, ...) and `tools` count nothing |
//! | `input_tokens_details.cached_tokens` | `Behavior::cached_tokens` (part of `input_tokens`, as OpenAI reports it) |
//! | `output_tokens` | C = words in the answer (a function call counts 1, its arguments being one word) + `Behavior::reasoning_tokens` |
//! | `output_tokens_details.reasoning_tokens` | `Behavior::reasoning_tokens` |
//! | `total_tokens` | P + C |
//!
//! `omit_usage` makes `usage` `null`.
//!
//! # The stream
//!
//! Every event is `event: NAME\ndata: JSON\n\n`, the data's `type` matching the name and carrying
//! a `sequence_number` counting from 0 over the events sent:
//!
//! 1. `response.created` and `response.in_progress`: the response with `status: "in_progress"`,
//!    `output: []` and `usage: null`;
//! 2. text: `response.output_item.added` (the message, `status: "in_progress"`, `content: []`),
//!    `response.content_part.added` (empty `output_text`), `response.output_text.delta`s (split
//!    over `Behavior::chunks`), `response.output_text.done`, `response.content_part.done`,
//!    `response.output_item.done`; or a function call: `response.output_item.added` (the call with
//!    `arguments: ""`, `status: "in_progress"`), `response.function_call_arguments.delta`s
//!    `{"city":` and `"Paris"}`, `response.function_call_arguments.done`,
//!    `response.output_item.done`;
//! 3. `response.completed`: the same response as the non-streamed answer.
//!
//! `chunk_delay_ms` separates events. The stream faults count the delta events of either kind:
//! `reset_after_chunks` and `error_event_after_chunks` cut the stream right after the Nth (before
//! the first when N = 0; after the last when N exceeds them), the first resetting the connection,
//! the second sending `error` (`code: "server_error"`, `message: "mock error"`, `param: null`) and
//! `response.failed` (the response with `status: "failed"`, `output: []`, `usage: null` and
//! `error: {code, message}`) and ending the body cleanly; on a tie the events go out, then the
//! reset. `malformed_body` puts one delta event with half its JSON before the first delta.
//!
//! Built with `serde_json::Value` rather than the borrowed serializers of `chat.rs`: the
//! sequence numbers depend on where a fault cuts the stream, so they are stamped while framing,
//! and this endpoint is not on the benchmark's path.

use std::collections::VecDeque;

use bytes::{BufMut, Bytes, BytesMut};
use serde_json::{Value, json};

use super::{Reply, model, split_content, to_json, unix_now, wants_stream, words};
use crate::body::Step;
use crate::script::Behavior;

const FUNCTION_CALL_ID: &str = "fc_mock_1";
const CALL_ID: &str = "call_mock_1";
const TOOL_ARGUMENTS: &str = r#"{"city":"Paris"}"#;
/// The streamed argument pieces; they concatenate to `TOOL_ARGUMENTS`.
const TOOL_ARGUMENT_PIECES: [&str; 2] = [r#"{"city":"#, r#""Paris"}"#];

const TEXT_DELTA: &str = "response.output_text.delta";
const ARGUMENTS_DELTA: &str = "response.function_call_arguments.delta";

/// Answers one Responses request; `n` numbers the ids (`resp_mock_<n>`, `msg_mock_<n>`).
pub(crate) fn reply(req: &Value, b: &Behavior, n: usize) -> Reply {
    let tool = forced_tool(req);
    let input_tokens = prompt_tokens(req);
    let output_tokens = match tool {
        Some(_) => words(TOOL_ARGUMENTS),
        None => words(b.content()),
    } + b.reasoning_tokens;
    let usage = if b.omit_usage {
        Value::Null
    } else {
        json!({
            "input_tokens": input_tokens,
            "input_tokens_details": {"cached_tokens": b.cached_tokens},
            "output_tokens": output_tokens,
            "output_tokens_details": {"reasoning_tokens": b.reasoning_tokens},
            "total_tokens": input_tokens + output_tokens,
        })
    };
    let answer = Answer {
        req,
        id: format!("resp_mock_{n}"),
        message_id: format!("msg_mock_{n}"),
        created_at: unix_now(),
        tool,
        content: b.content(),
        usage,
    };
    if wants_stream(req) {
        return Reply::Events(into_steps(answer.events(b.chunk_count()), &answer, b));
    }
    let output = vec![answer.item("completed", true)];
    let response = answer.response("completed", output, answer.usage.clone(), Value::Null);
    Reply::Json(Bytes::from(to_json(&response)))
}

/// The function the request forces, if any (see the module doc).
fn forced_tool(req: &Value) -> Option<&str> {
    let tools = req.get("tools")?.as_array()?;
    let first_function = || {
        tools
            .iter()
            .find(|t| t.get("type").and_then(Value::as_str) == Some("function"))?
            .get("name")?
            .as_str()
    };
    match req.get("tool_choice")? {
        Value::String(choice) if choice == "required" => first_function(),
        choice @ Value::Object(_)
            if choice.get("type").and_then(Value::as_str) == Some("function") =>
        {
            choice
                .get("name")
                .and_then(Value::as_str)
                .or_else(first_function)
        }
        _ => None,
    }
}

/// P in the module doc.
fn prompt_tokens(req: &Value) -> u64 {
    let instructions = req
        .get("instructions")
        .and_then(Value::as_str)
        .map_or(0, words);
    let input = match req.get("input") {
        Some(Value::String(s)) => words(s) + 4,
        Some(Value::Array(items)) => items
            .iter()
            .filter(|item| is_message(item))
            .map(|m| m.get("content").map_or(0, content_words) + 4)
            .sum(),
        _ => 0,
    };
    instructions + input
}

/// A message item: `"type":"message"`, or the short form with a `role` and no `type`.
fn is_message(item: &Value) -> bool {
    match item.get("type") {
        Some(kind) => kind == "message",
        None => item.get("role").is_some(),
    }
}

/// Words in a string, or in the `text` of each `input_text`/`output_text` part of a list.
fn content_words(content: &Value) -> u64 {
    match content {
        Value::String(s) => words(s),
        Value::Array(parts) => parts
            .iter()
            .filter(|p| {
                matches!(
                    p.get("type").and_then(Value::as_str),
                    Some("input_text" | "output_text")
                )
            })
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .map(words)
            .sum(),
        _ => 0,
    }
}

/// One answer, streamed or not.
struct Answer<'a> {
    req: &'a Value,
    id: String,
    message_id: String,
    created_at: u64,
    tool: Option<&'a str>,
    content: &'a str,
    /// The usage object, or `null` under `omit_usage`.
    usage: Value,
}

/// One event before framing: its name (also its `type`) and data without `sequence_number`.
struct Event {
    name: &'static str,
    data: Value,
}

impl Event {
    fn new(name: &'static str, mut data: Value) -> Event {
        if let Value::Object(map) = &mut data {
            map.insert("type".to_owned(), Value::from(name));
        }
        Event { name, data }
    }
}

impl Answer<'_> {
    /// The request's `name` when present and not `null`, else `default`.
    fn echo(&self, name: &str, default: Value) -> Value {
        match self.req.get(name) {
            Some(v) if !v.is_null() => v.clone(),
            _ => default,
        }
    }

    fn response(&self, status: &str, output: Vec<Value>, usage: Value, error: Value) -> Value {
        json!({
            "id": self.id,
            "object": "response",
            "created_at": self.created_at,
            "status": status,
            "error": error,
            "incomplete_details": null,
            "model": model(self.req),
            "instructions": self.echo("instructions", Value::Null),
            "output": output,
            "tools": self.echo("tools", json!([])),
            "tool_choice": self.echo("tool_choice", json!("auto")),
            "previous_response_id": self.echo("previous_response_id", Value::Null),
            "store": self.echo("store", Value::Bool(true)),
            "usage": usage,
        })
    }

    /// The output item; `whole` false gives the `output_item.added` form (no content, no arguments).
    fn item(&self, status: &str, whole: bool) -> Value {
        match self.tool {
            Some(name) => json!({
                "type": "function_call",
                "id": FUNCTION_CALL_ID,
                "call_id": CALL_ID,
                "name": name,
                "arguments": if whole { TOOL_ARGUMENTS } else { "" },
                "status": status,
            }),
            None => {
                let content = if whole {
                    vec![text_part(self.content)]
                } else {
                    Vec::new()
                };
                json!({
                    "type": "message",
                    "id": self.message_id,
                    "status": status,
                    "role": "assistant",
                    "content": content,
                })
            }
        }
    }

    /// Every event of the stream, in order (see the module doc).
    fn events(&self, chunks: usize) -> Vec<Event> {
        let in_progress = self.response("in_progress", Vec::new(), Value::Null, Value::Null);
        let mut events = vec![
            Event::new("response.created", json!({"response": in_progress})),
            Event::new("response.in_progress", json!({"response": in_progress})),
            Event::new(
                "response.output_item.added",
                json!({"output_index": 0, "item": self.item("in_progress", false)}),
            ),
        ];
        match self.tool {
            Some(_) => {
                let at = json!({"item_id": FUNCTION_CALL_ID, "output_index": 0});
                for piece in TOOL_ARGUMENT_PIECES {
                    events.push(Event::new(ARGUMENTS_DELTA, with(&at, "delta", piece)));
                }
                events.push(Event::new(
                    "response.function_call_arguments.done",
                    with(&at, "arguments", TOOL_ARGUMENTS),
                ));
            }
            None => {
                let at = json!({"item_id": self.message_id, "output_index": 0, "content_index": 0});
                events.push(Event::new(
                    "response.content_part.added",
                    with(&at, "part", text_part("")),
                ));
                for piece in split_content(self.content, chunks) {
                    let delta = with(&with(&at, "delta", piece), "logprobs", json!([]));
                    events.push(Event::new(TEXT_DELTA, delta));
                }
                let done = with(&with(&at, "text", self.content), "logprobs", json!([]));
                events.push(Event::new("response.output_text.done", done));
                events.push(Event::new(
                    "response.content_part.done",
                    with(&at, "part", text_part(self.content)),
                ));
            }
        }
        events.push(Event::new(
            "response.output_item.done",
            json!({"output_index": 0, "item": self.item("completed", true)}),
        ));
        let output = vec![self.item("completed", true)];
        let completed = self.response("completed", output, self.usage.clone(), Value::Null);
        events.push(Event::new(
            "response.completed",
            json!({"response": completed}),
        ));
        events
    }

    /// `error` then `response.failed`, as OpenAI ends a stream that fails after it started.
    fn failure(&self) -> [Event; 2] {
        let error = json!({"code": "server_error", "message": "mock error"});
        let failed = self.response("failed", Vec::new(), Value::Null, error);
        [
            Event::new(
                "error",
                json!({"code": "server_error", "message": "mock error", "param": null}),
            ),
            Event::new("response.failed", json!({"response": failed})),
        ]
    }
}

fn text_part(text: &str) -> Value {
    json!({"type": "output_text", "text": text, "annotations": [], "logprobs": []})
}

/// `base` (an object) with `name` set to `value`.
fn with(base: &Value, name: &str, value: impl Into<Value>) -> Value {
    let mut out = base.clone();
    if let Value::Object(map) = &mut out {
        map.insert(name.to_owned(), value.into());
    }
    out
}

/// Frames `events`, applying the stream faults of `b` and numbering what is sent.
fn into_steps(events: Vec<Event>, answer: &Answer<'_>, b: &Behavior) -> VecDeque<Step> {
    let deltas: Vec<usize> = events
        .iter()
        .enumerate()
        .filter(|(_, e)| e.name == TEXT_DELTA || e.name == ARGUMENTS_DELTA)
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

    let mut steps = VecDeque::with_capacity(events.len() + 3);
    let mut sequence_number = 0u64;
    let mut send = |steps: &mut VecDeque<Step>, event: Event| {
        steps.push_back(Step::Data(frame(event, sequence_number)));
        sequence_number += 1;
    };
    for (i, event) in events.into_iter().enumerate() {
        if Some(i) == end {
            break;
        }
        if b.malformed_body && Some(i) == first_delta {
            // Half of an event's JSON is never valid JSON: the object closes only at its last byte.
            let whole = to_json(&event.data);
            let mut buf = BytesMut::new();
            buf.put_slice(b"event: ");
            buf.put_slice(event.name.as_bytes());
            buf.put_slice(b"\ndata: ");
            buf.put_slice(&whole[..whole.len() / 2]);
            buf.put_slice(b"\n\n");
            steps.push_back(Step::Data(buf.freeze()));
        }
        send(&mut steps, event);
    }
    if end.is_some() && error_at == end {
        for event in answer.failure() {
            send(&mut steps, event);
        }
    }
    if end.is_some() && reset_at == end {
        steps.push_back(Step::Abort);
    }
    steps
}

fn frame(event: Event, sequence_number: u64) -> Bytes {
    let Event { name, mut data } = event;
    if let Value::Object(map) = &mut data {
        map.insert("sequence_number".to_owned(), Value::from(sequence_number));
    }
    let data = to_json(&data);
    let mut buf = BytesMut::with_capacity(name.len() + data.len() + 16);
    buf.put_slice(b"event: ");
    buf.put_slice(name.as_bytes());
    buf.put_slice(b"\ndata: ");
    buf.put_slice(&data);
    buf.put_slice(b"\n\n");
    buf.freeze()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{TOOL_ARGUMENT_PIECES, TOOL_ARGUMENTS, forced_tool, prompt_tokens};

    #[test]
    fn streamed_argument_pieces_concatenate_to_the_whole() {
        assert_eq!(TOOL_ARGUMENT_PIECES.concat(), TOOL_ARGUMENTS);
    }

    #[test]
    fn prompt_tokens_count_instructions_and_message_items_only() {
        let req = json!({
            "instructions": "Be terse.",
            "input": [
                {"role": "user", "content": "one two three"},
                {"type": "message", "role": "user", "content": [
                    {"type": "input_text", "text": "four five"},
                    {"type": "input_image", "image_url": "http://x/y.png"}
                ]},
                {"type": "message", "role": "assistant", "content": [
                    {"type": "output_text", "text": "six", "annotations": []}
                ]},
                {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"},
                {"type": "function_call_output", "call_id": "c", "output": "not counted"}
            ]
        });
        // instructions 2; items (3 + 4) + (2 + 4) + (1 + 4).
        assert_eq!(prompt_tokens(&req), 2 + 7 + 6 + 5);
        assert_eq!(prompt_tokens(&json!({"input": "a b c"})), 7);
        assert_eq!(prompt_tokens(&json!({})), 0);
    }

    #[test]
    fn forced_tool_follows_tool_choice() {
        let tools = json!([
            {"type": "web_search"},
            {"type": "function", "name": "get_weather", "parameters": {}},
            {"type": "function", "name": "get_time", "parameters": {}}
        ]);
        let req = |choice| json!({"tools": tools, "tool_choice": choice});
        assert_eq!(forced_tool(&req(json!("required"))), Some("get_weather"));
        assert_eq!(
            forced_tool(&req(json!({"type": "function", "name": "get_time"}))),
            Some("get_time")
        );
        assert_eq!(forced_tool(&req(json!("auto"))), None);
        assert_eq!(forced_tool(&req(json!({"type": "web_search"}))), None);
        assert_eq!(forced_tool(&json!({"tool_choice": "required"})), None);
    }
}
