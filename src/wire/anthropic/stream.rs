//! Canonical `chat.completion.chunk`s -> Anthropic SSE events, for an Anthropic-SDK client whose
//! streamed request went to any provider. [`Encoder::push`] takes one chunk and returns the
//! `(event name, data)` pairs to send; [`Encoder::finish`] is called when the canonical stream
//! ends; [`format_sse`] writes pairs as `event: NAME\ndata: JSON\n\n`.
//!
//! | canonical | Anthropic events |
//! |---|---|
//! | first chunk | `message_start` (empty content, zero usage as a placeholder: OpenAI-style streams report usage last) |
//! | `delta.reasoning_content` | `thinking` block: `content_block_start`, `thinking_delta`s |
//! | `delta.x_thinking_blocks` entry (a complete block) | `signature_delta` + `content_block_stop` closing the open thinking block, or a whole block of its own |
//! | `delta.content` / `delta.refusal` | `text` block: `content_block_start`, `text_delta`s |
//! | `delta.tool_calls[i]` | `tool_use` block per call (`id`, `name`, `input: {}`), `input_json_delta`s |
//! | `finish_reason` | closes the open block; stop reason remembered |
//! | usage (any chunk, usually the last with `choices: []`) | remembered |
//! | end of stream ([`Encoder::finish`]) | `message_delta` (`stop_reason`, full usage) + `message_stop` |
//!
//! A block is opened when its first delta arrives and closed when a delta of another kind arrives
//! or the choice finishes, so block indexes follow the order of the content. Tool calls must come
//! one after another, as OpenAI streams them: arguments for a call whose block is closed are an
//! error, since a closed Anthropic block cannot reopen. A stream that ends without a
//! `finish_reason` ends with an `error` event, never `message_stop`, so a cut upstream never
//! looks complete. Only choice 0 is encoded (Anthropic has one answer per request).

use std::collections::HashMap;

use serde_json::{Value, json};

use super::TranslateError;
use super::response::{message_id, stop_reason, usage_to_anthropic};

/// One Anthropic SSE event: its name and its `data`.
pub type Event = (String, Value);

#[derive(Clone, Copy, PartialEq, Eq)]
enum Open {
    Text(u64),
    Thinking(u64),
    Tool { block: u64 },
}

#[derive(Default)]
pub struct Encoder {
    started: bool,
    finished: bool,
    next_block: u64,
    open: Option<Open>,
    /// OpenAI tool call index -> Anthropic block index.
    tools: HashMap<u64, u64>,
    finish_reason: Option<String>,
    saw_tool_calls: bool,
    usage: Option<Value>,
}

fn event(name: &str, data: Value) -> Event {
    (name.to_string(), data)
}

/// An Anthropic `error` event (`error_type` e.g. `overloaded_error`, `api_error`).
pub fn error_event(message: &str, error_type: &str) -> Event {
    event(
        "error",
        json!({"type": "error", "error": {"type": error_type, "message": message}}),
    )
}

/// Writes one event as SSE text.
pub fn format_event((name, data): &Event) -> String {
    format!("event: {name}\ndata: {data}\n\n")
}

/// Writes events as SSE text, `event: NAME\ndata: JSON\n\n` each.
pub fn format_sse(events: &[Event]) -> String {
    events.iter().map(format_event).collect()
}

impl Encoder {
    pub fn new() -> Encoder {
        Encoder::default()
    }

    pub fn push(&mut self, chunk: &Value) -> Result<Vec<Event>, TranslateError> {
        let mut out = Vec::new();
        if self.finished {
            return Ok(out);
        }
        if !self.started {
            self.started = true;
            let id = chunk.get("id").and_then(Value::as_str).unwrap_or_default();
            out.push(event(
                "message_start",
                json!({"type": "message_start", "message": {
                    "id": message_id(id),
                    "type": "message",
                    "role": "assistant",
                    "model": chunk.get("model").cloned().unwrap_or(Value::Null),
                    "content": [],
                    "stop_reason": null,
                    "stop_sequence": null,
                    "usage": {"input_tokens": 0, "output_tokens": 0},
                }}),
            ));
        }
        if let Some(usage) = chunk.get("usage").filter(|u| !u.is_null()) {
            self.usage = Some(usage.clone());
        }
        let Some(choice) = chunk
            .get("choices")
            .and_then(Value::as_array)
            .and_then(|c| {
                c.iter()
                    .find(|c| c.get("index").and_then(Value::as_u64).unwrap_or(0) == 0)
            })
        else {
            return Ok(out);
        };
        if let Some(delta) = choice.get("delta") {
            self.delta(delta, &mut out)?;
        }
        if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
            self.finish_reason = Some(reason.to_string());
            self.close(&mut out);
        }
        Ok(out)
    }

    /// The canonical stream has ended. Closes the message, or reports the cut with an `error`
    /// event when no `finish_reason` came.
    pub fn finish(&mut self) -> Vec<Event> {
        let mut out = Vec::new();
        if self.finished {
            return out;
        }
        self.finished = true;
        self.close(&mut out);
        let Some(reason) = self.finish_reason.as_deref() else {
            out.push(error_event(
                "the upstream stream ended before the model finished",
                "api_error",
            ));
            return out;
        };
        let usage = self
            .usage
            .as_ref()
            .map(usage_to_anthropic)
            .unwrap_or_else(|| json!({"output_tokens": 0}));
        out.push(event(
            "message_delta",
            json!({
                "type": "message_delta",
                "delta": {"stop_reason": stop_reason(Some(reason), self.saw_tool_calls), "stop_sequence": null},
                "usage": usage,
            }),
        ));
        out.push(event("message_stop", json!({"type": "message_stop"})));
        out
    }

    fn delta(&mut self, delta: &Value, out: &mut Vec<Event>) -> Result<(), TranslateError> {
        if let Some(text) = delta
            .get("reasoning_content")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
        {
            let index = self.ensure_thinking(out);
            out.push(block_delta(
                index,
                json!({"type": "thinking_delta", "thinking": text}),
            ));
        }
        for block in delta
            .get("x_thinking_blocks")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            self.thinking_block(block, out);
        }
        for key in ["content", "refusal"] {
            if let Some(text) = delta
                .get(key)
                .and_then(Value::as_str)
                .filter(|t| !t.is_empty())
            {
                let index = match self.open {
                    Some(Open::Text(i)) => i,
                    _ => self.start_block(json!({"type": "text", "text": ""}), Open::Text, out),
                };
                out.push(block_delta(
                    index,
                    json!({"type": "text_delta", "text": text}),
                ));
            }
        }
        for (position, call) in delta
            .get("tool_calls")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            self.tool_call(position as u64, call, out)?;
        }
        Ok(())
    }

    fn ensure_thinking(&mut self, out: &mut Vec<Event>) -> u64 {
        match self.open {
            Some(Open::Thinking(i)) => i,
            _ => self.start_block(
                json!({"type": "thinking", "thinking": "", "signature": ""}),
                Open::Thinking,
                out,
            ),
        }
    }

    /// A complete thinking block: it closes the thinking block whose text was streamed, or is
    /// sent whole when no text came before it.
    fn thinking_block(&mut self, block: &Value, out: &mut Vec<Event>) {
        let s = |k: &str| block.get(k).and_then(Value::as_str).unwrap_or("");
        match block.get("type").and_then(Value::as_str) {
            Some("thinking") => {
                let index = match self.open {
                    Some(Open::Thinking(i)) => i,
                    _ => {
                        let i = self.ensure_thinking(out);
                        if !s("thinking").is_empty() {
                            out.push(block_delta(
                                i,
                                json!({"type": "thinking_delta", "thinking": s("thinking")}),
                            ));
                        }
                        i
                    }
                };
                if !s("signature").is_empty() {
                    out.push(block_delta(
                        index,
                        json!({"type": "signature_delta", "signature": s("signature")}),
                    ));
                }
                self.close(out);
            }
            Some("redacted_thinking") => {
                self.start_block(
                    json!({"type": "redacted_thinking", "data": s("data")}),
                    Open::Thinking,
                    out,
                );
                self.close(out);
            }
            _ => {}
        }
    }

    fn tool_call(
        &mut self,
        position: u64,
        call: &Value,
        out: &mut Vec<Event>,
    ) -> Result<(), TranslateError> {
        self.saw_tool_calls = true;
        let tool_index = call
            .get("index")
            .and_then(Value::as_u64)
            .unwrap_or(position);
        let block = match self.tools.get(&tool_index) {
            Some(&block) => {
                if self.open != Some(Open::Tool { block }) {
                    return Err(TranslateError::Malformed(format!(
                        "arguments for tool call {tool_index} arrived after another block began"
                    )));
                }
                block
            }
            None => {
                let function = call.get("function");
                let name = function
                    .and_then(|f| f.get("name"))
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let id = call.get("id").and_then(Value::as_str).unwrap_or_default();
                let block = self.start_block(
                    json!({"type": "tool_use", "id": id, "name": name, "input": {}}),
                    |block| Open::Tool { block },
                    out,
                );
                self.tools.insert(tool_index, block);
                block
            }
        };
        if let Some(args) = call
            .get("function")
            .and_then(|f| f.get("arguments"))
            .and_then(Value::as_str)
            .filter(|a| !a.is_empty())
        {
            out.push(block_delta(
                block,
                json!({"type": "input_json_delta", "partial_json": args}),
            ));
        }
        Ok(())
    }

    fn start_block(
        &mut self,
        content_block: Value,
        open: impl FnOnce(u64) -> Open,
        out: &mut Vec<Event>,
    ) -> u64 {
        self.close(out);
        let index = self.next_block;
        self.next_block += 1;
        out.push(event(
            "content_block_start",
            json!({"type": "content_block_start", "index": index, "content_block": content_block}),
        ));
        self.open = Some(open(index));
        index
    }

    fn close(&mut self, out: &mut Vec<Event>) {
        if let Some(open) = self.open.take() {
            let index = match open {
                Open::Text(i) | Open::Thinking(i) | Open::Tool { block: i } => i,
            };
            out.push(event(
                "content_block_stop",
                json!({"type": "content_block_stop", "index": index}),
            ));
        }
    }
}

fn block_delta(index: u64, delta: Value) -> Event {
    event(
        "content_block_delta",
        json!({"type": "content_block_delta", "index": index, "delta": delta}),
    )
}

/// Parses a whole SSE text (as in the golden files) into `(event name, data)` pairs.
#[cfg(test)]
pub(crate) fn parse_sse(text: &str) -> Vec<(String, Value)> {
    text.split("\n\n")
        .filter_map(|event| {
            let mut name = None;
            let mut data = None;
            for line in event.lines() {
                if let Some(n) = line.strip_prefix("event:") {
                    name = Some(n.trim().to_string());
                } else if let Some(d) = line.strip_prefix("data:") {
                    data = Some(serde_json::from_str::<Value>(d.trim()).expect("data is JSON"));
                }
            }
            Some((name?, data?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::translate::assert_json_eq;

    fn encode(chunks: &[Value]) -> Vec<Event> {
        let mut encoder = Encoder::new();
        let mut events = vec![];
        for chunk in chunks {
            events.extend(encoder.push(chunk).expect("encodes"));
        }
        events.extend(encoder.finish());
        events
    }

    #[test]
    fn text_then_parallel_tool_calls_match_golden_events() {
        let chunks: Vec<Value> = serde_json::from_str(include_str!(
            "../../../tests/fixtures/anthropic/outbound_chat_stream_tools.json"
        ))
        .expect("fixture is JSON");
        let expected = parse_sse(include_str!(
            "../../../tests/fixtures/anthropic/outbound_messages_stream_tools.sse"
        ));
        let got = encode(&chunks);
        assert_json_eq(&json!(got), &json!(expected));
        // The SSE text parses back to the same events.
        assert_eq!(parse_sse(&format_sse(&got)), got);
    }

    #[test]
    fn stream_without_finish_reason_ends_with_an_error_event() {
        let mut encoder = Encoder::new();
        encoder
            .push(&json!({"id": "c", "model": "m", "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hel"}}]}))
            .expect("encodes");
        let tail = encoder.finish();
        let names: Vec<&str> = tail.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["content_block_stop", "error"]);
        assert_eq!(tail[1].1["error"]["type"], "api_error");
    }

    #[test]
    fn empty_stream_ends_with_an_error_event() {
        let tail = Encoder::new().finish();
        assert_eq!(tail.len(), 1);
        assert_eq!(tail[0].0, "error");
    }

    #[test]
    fn interleaved_tool_arguments_are_an_error() {
        let mut encoder = Encoder::new();
        let call = |index: u64, id: Option<&str>, args: &str| {
            let mut c = json!({"index": index, "function": {"arguments": args}});
            if let Some(id) = id {
                c["id"] = json!(id);
                c["function"]["name"] = json!("f");
            }
            json!({"id": "c", "choices": [{"index": 0, "delta": {"tool_calls": [c]}}]})
        };
        encoder.push(&call(0, Some("a"), "{")).expect("first");
        encoder.push(&call(1, Some("b"), "{")).expect("second");
        assert!(matches!(
            encoder.push(&call(0, None, "}")),
            Err(TranslateError::Malformed(_))
        ));
    }

    #[test]
    fn error_event_and_sse_format() {
        let e = error_event("Overloaded", "overloaded_error");
        assert_eq!(
            format_event(&e),
            "event: error\ndata: {\"error\":{\"message\":\"Overloaded\",\"type\":\"overloaded_error\"},\"type\":\"error\"}\n\n"
        );
    }
}
