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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::anthropic::assert_json_eq;
    use crate::providers::anthropic::stream::{Decoder, assemble, parse_sse};
    use proptest::prelude::*;

    fn encode(chunks: &[Value]) -> Vec<Event> {
        let mut encoder = Encoder::new();
        let mut events = vec![];
        for chunk in chunks {
            events.extend(encoder.push(chunk).expect("encodes"));
        }
        events.extend(encoder.finish());
        events
    }

    fn decode(events: &[(String, Value)]) -> Vec<Value> {
        let mut decoder = Decoder::new("claude-opus-4-8", 1_767_225_600);
        let mut chunks = vec![];
        for (name, data) in events {
            chunks.extend(decoder.push(name, data).expect("decodes"));
        }
        chunks.extend(decoder.finish().expect("complete"));
        chunks
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

    /// Anthropic events -> canonical chunks -> Anthropic events keeps the golden thinking
    /// stream's text, signature and usage.
    #[test]
    fn thinking_stream_survives_decode_then_encode() {
        let original = parse_sse(include_str!(
            "../../../tests/fixtures/anthropic/stream_thinking.sse"
        ));
        let events = encode(&decode(&original));
        let back = assemble(&decode(&events));
        let first = assemble(&decode(&original));
        assert_eq!(back, first);
        let signatures: Vec<&Value> = events
            .iter()
            .filter(|(_, d)| d["delta"]["type"] == "signature_delta")
            .map(|(_, d)| &d["delta"]["signature"])
            .collect();
        assert_eq!(signatures.len(), 1);
    }

    fn input() -> impl Strategy<Value = Value> {
        proptest::collection::btree_map(
            "[a-z]{1,6}",
            prop_oneof![
                any::<i64>().prop_map(|n| json!(n)),
                "[a-z \"\\\\{}é]{0,10}".prop_map(|s| json!(s)),
                proptest::collection::vec(any::<bool>(), 0..3).prop_map(|v| json!(v)),
            ],
            0..4,
        )
        .prop_map(|m| Value::Object(m.into_iter().collect()))
    }

    proptest! {
        /// encoder(decoder(events)) keeps the text, every tool input and every thinking
        /// signature of an Anthropic stream, whatever their sizes and chunking.
        #[test]
        fn encode_of_decode_keeps_text_tool_inputs_and_signatures(
            thinking in proptest::collection::vec(("[a-z .]{0,15}", "[A-Za-z0-9+/]{1,20}"), 0..3),
            redacted in proptest::option::of("[A-Za-z0-9]{4,12}"),
            text in "[a-zA-Z ,.é]{0,30}",
            inputs in proptest::collection::vec(input(), 0..4),
            piece in 1usize..7,
        ) {
            let mut events: Vec<(String, Value)> = vec![];
            let mut push = |name: &str, data: Value| events.push((name.to_string(), data));
            push("message_start", json!({"type": "message_start", "message": {"id": "msg_q", "type": "message", "role": "assistant", "content": [], "model": "claude-opus-4-8", "stop_reason": null, "stop_sequence": null, "usage": {"input_tokens": 7, "cache_read_input_tokens": 3, "cache_creation_input_tokens": 2, "output_tokens": 1}}}));
            let mut index = 0u64;
            let mut expected_blocks = vec![];
            for (t, sig) in &thinking {
                push("content_block_start", json!({"type": "content_block_start", "index": index, "content_block": {"type": "thinking", "thinking": "", "signature": ""}}));
                for p in t.as_bytes().chunks(piece) {
                    push("content_block_delta", json!({"type": "content_block_delta", "index": index, "delta": {"type": "thinking_delta", "thinking": String::from_utf8_lossy(p)}}));
                }
                push("content_block_delta", json!({"type": "content_block_delta", "index": index, "delta": {"type": "signature_delta", "signature": sig}}));
                push("content_block_stop", json!({"type": "content_block_stop", "index": index}));
                expected_blocks.push(json!({"type": "thinking", "thinking": t, "signature": sig}));
                index += 1;
            }
            if let Some(data) = &redacted {
                push("content_block_start", json!({"type": "content_block_start", "index": index, "content_block": {"type": "redacted_thinking", "data": data}}));
                push("content_block_stop", json!({"type": "content_block_stop", "index": index}));
                expected_blocks.push(json!({"type": "redacted_thinking", "data": data}));
                index += 1;
            }
            if !text.is_empty() {
                push("content_block_start", json!({"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}}));
                for p in text.chars().collect::<Vec<_>>().chunks(piece) {
                    push("content_block_delta", json!({"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": p.iter().collect::<String>()}}));
                }
                push("content_block_stop", json!({"type": "content_block_stop", "index": index}));
                index += 1;
            }
            for (k, input) in inputs.iter().enumerate() {
                push("content_block_start", json!({"type": "content_block_start", "index": index, "content_block": {"type": "tool_use", "id": format!("toolu_{k}"), "name": "lookup", "input": {}}}));
                for p in input.to_string().chars().collect::<Vec<_>>().chunks(piece) {
                    push("content_block_delta", json!({"type": "content_block_delta", "index": index, "delta": {"type": "input_json_delta", "partial_json": p.iter().collect::<String>()}}));
                }
                push("content_block_stop", json!({"type": "content_block_stop", "index": index}));
                index += 1;
            }
            let stop = if inputs.is_empty() { "end_turn" } else { "tool_use" };
            push("message_delta", json!({"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": null}, "usage": {"output_tokens": 99}}));
            push("message_stop", json!({"type": "message_stop"}));

            let reencoded = encode(&decode(&events));

            // Text, thinking blocks (signatures included) and tool inputs, as the client's SDK
            // would accumulate them from the re-encoded events.
            let mut blocks: Vec<Value> = vec![];
            let mut partial: HashMap<u64, String> = HashMap::new();
            let mut stop_reason = Value::Null;
            let mut usage = Value::Null;
            for (name, data) in &reencoded {
                let i = data["index"].as_u64().unwrap_or(0) as usize;
                match name.as_str() {
                    "content_block_start" => {
                        prop_assert_eq!(i, blocks.len());
                        blocks.push(data["content_block"].clone());
                    }
                    "content_block_delta" => {
                        let d = &data["delta"];
                        let b = &mut blocks[i];
                        match d["type"].as_str() {
                            Some("text_delta") => b["text"] = json!(b["text"].as_str().unwrap_or("").to_string() + d["text"].as_str().unwrap_or("")),
                            Some("thinking_delta") => b["thinking"] = json!(b["thinking"].as_str().unwrap_or("").to_string() + d["thinking"].as_str().unwrap_or("")),
                            Some("signature_delta") => b["signature"] = json!(b["signature"].as_str().unwrap_or("").to_string() + d["signature"].as_str().unwrap_or("")),
                            Some("input_json_delta") => partial.entry(i as u64).or_default().push_str(d["partial_json"].as_str().unwrap_or("")),
                            _ => {}
                        }
                    }
                    "message_delta" => {
                        stop_reason = data["delta"]["stop_reason"].clone();
                        usage = data["usage"].clone();
                    }
                    _ => {}
                }
            }
            for (i, json_text) in &partial {
                blocks[*i as usize]["input"] = serde_json::from_str(json_text).expect("input JSON");
            }
            let got_thinking: Vec<Value> = blocks.iter().filter(|b| b["type"] == "thinking" || b["type"] == "redacted_thinking").cloned().collect();
            prop_assert_eq!(got_thinking, expected_blocks);
            let got_text: String = blocks.iter().filter(|b| b["type"] == "text").filter_map(|b| b["text"].as_str()).collect();
            prop_assert_eq!(got_text, text);
            let got_inputs: Vec<Value> = blocks.iter().filter(|b| b["type"] == "tool_use").map(|b| b["input"].clone()).collect();
            prop_assert_eq!(&got_inputs, &inputs);
            let ids: Vec<Value> = blocks.iter().filter(|b| b["type"] == "tool_use").map(|b| b["id"].clone()).collect();
            let want_ids: Vec<Value> = (0..inputs.len()).map(|k| json!(format!("toolu_{k}"))).collect();
            prop_assert_eq!(ids, want_ids);
            prop_assert_eq!(stop_reason, json!(stop));
            prop_assert_eq!(usage, json!({"input_tokens": 7, "cache_read_input_tokens": 3, "cache_creation_input_tokens": 2, "output_tokens": 99}));
            prop_assert_eq!(&reencoded.last().map(|(n, _)| n.clone()), &Some("message_stop".to_string()));
        }
    }
}
