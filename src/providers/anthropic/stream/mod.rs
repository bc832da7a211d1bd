//! Anthropic SSE events -> canonical `chat.completion.chunk`s, one event at a time. The Anthropic
//! provider feeds each event's name and parsed `data` to [`Decoder::push`] and calls
//! [`Decoder::finish`] when the byte stream ends. Pure apart from nothing: `created` is given.
//!
//! | event | chunks |
//! |---|---|
//! | `message_start` | role chunk (`delta: {"role":"assistant","content":""}`); usage remembered |
//! | `content_block_start` `tool_use` | tool call delta with `index` (position among tool calls), `id`, `type`, `name`, `arguments: ""` |
//! | `content_block_delta` `text_delta` | `delta.content` |
//! | `content_block_delta` `input_json_delta` | `delta.tool_calls[{index, function.arguments}]` |
//! | `content_block_delta` `thinking_delta` | `delta.reasoning_content` |
//! | `content_block_delta` `signature_delta` | nothing yet (kept for the block's stop) |
//! | `content_block_stop` of a thinking / redacted block | `delta.x_thinking_blocks: [complete block]` |
//! | `message_delta` | nothing; `stop_reason`, `stop_details` and usage remembered |
//! | `message_stop` | final chunk with `finish_reason` (and `refusal`), then usage chunk with `choices: []` |
//! | `ping`, unknown events and delta types | nothing |
//! | `error` | `Err(TranslateError::ProviderError)` |
//!
//! Thinking in a stream: `reasoning_content` deltas carry the text as it comes, for display; each
//! `x_thinking_blocks` entry is a COMPLETE block (text repeated, signature included), so whoever
//! rebuilds the message concatenates the `x_thinking_blocks` arrays and never needs to stitch
//! signatures onto text.
//!
//! Usage: `message_start.message.usage` gives the input classes, `message_delta.usage` the final
//! cumulative counts (it may repeat the input classes; a later value replaces an earlier one).
//!
//! The tests (golden streams, byte splits, a proptest against the non-streamed answer) are in
//! `tests.rs`.

#[cfg(test)]
mod tests;

use std::collections::HashMap;

use serde_json::{Value, json};

use super::response::{AnthropicUsage, usage_to_chat};
use super::{TranslateError, error, finish_reason, refusal_text};

enum Block {
    Text,
    Thinking {
        text: String,
        signature: String,
    },
    Redacted {
        data: String,
    },
    Tool {
        index: usize,
        saw_delta: bool,
        input: Value,
    },
    /// Server-tool and future block types: no canonical form.
    Other,
}

pub struct Decoder {
    model: String,
    created: u64,
    id: String,
    started: bool,
    done: bool,
    blocks: HashMap<u64, Block>,
    tool_count: usize,
    usage: AnthropicUsage,
    stop_reason: Option<String>,
    stop_details: Option<Value>,
}

impl Decoder {
    /// `model` is the name the chunks carry (the one the client asked for).
    pub fn new(model: &str, created: u64) -> Decoder {
        Decoder {
            model: model.to_string(),
            created,
            id: String::new(),
            started: false,
            done: false,
            blocks: HashMap::new(),
            tool_count: 0,
            usage: AnthropicUsage::default(),
            stop_reason: None,
            stop_details: None,
        }
    }

    /// Decodes one whole SSE event as received (`event:` and `data:` lines, separator included),
    /// e.g. a `crate::wire::sse::RawEvent`'s bytes. Comment-only events yield nothing.
    pub fn push_sse(&mut self, event: &[u8]) -> Result<Vec<Value>, TranslateError> {
        let text = std::str::from_utf8(event)
            .map_err(|_| TranslateError::Malformed("SSE event is not UTF-8".into()))?;
        let mut name = None;
        let mut data: Option<String> = None;
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("event:") {
                name = Some(rest.trim().to_string());
            } else if let Some(rest) = line.strip_prefix("data:") {
                let rest = rest.strip_prefix(' ').unwrap_or(rest);
                match &mut data {
                    Some(d) => {
                        d.push('\n');
                        d.push_str(rest);
                    }
                    None => data = Some(rest.to_string()),
                }
            }
        }
        let Some(data) = data else {
            return Ok(vec![]);
        };
        let value: Value = serde_json::from_str(&data)
            .map_err(|e| TranslateError::Malformed(format!("SSE data is not JSON: {e}")))?;
        // Anthropic repeats the event name as `type` in the data; either serves.
        let name = name
            .or_else(|| {
                value
                    .get("type")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
            .unwrap_or_default();
        self.push(&name, &value)
    }

    pub fn push(&mut self, event_name: &str, data: &Value) -> Result<Vec<Value>, TranslateError> {
        if self.done {
            return Ok(vec![]);
        }
        match event_name {
            "message_start" => self.message_start(data),
            "content_block_start" => self.block_start(data),
            "content_block_delta" => self.block_delta(data),
            "content_block_stop" => self.block_stop(data),
            "message_delta" => {
                if let Some(delta) = data.get("delta") {
                    if let Some(reason) = delta.get("stop_reason").and_then(Value::as_str) {
                        self.stop_reason = Some(reason.to_string());
                    }
                    if let Some(details) = delta.get("stop_details").filter(|d| !d.is_null()) {
                        self.stop_details = Some(details.clone());
                    }
                }
                if let Some(usage) = data.get("usage") {
                    self.usage.merge(usage);
                }
                Ok(vec![])
            }
            "message_stop" => self.message_stop(),
            "error" => {
                let err = data.get("error");
                let error_type = err
                    .and_then(|e| e.get("type"))
                    .and_then(Value::as_str)
                    .unwrap_or("api_error")
                    .to_string();
                let message = err
                    .and_then(|e| e.get("message"))
                    .and_then(Value::as_str)
                    .unwrap_or("error event in the stream")
                    .to_string();
                Err(TranslateError::ProviderErrorOfType {
                    status: error::status_for_type(&error_type),
                    error_type,
                    message,
                })
            }
            // `ping` keeps the connection alive; Anthropic may add event types at any time.
            _ => Ok(vec![]),
        }
    }

    /// The provider's byte stream has ended: an error unless `message_stop` arrived, so a cut
    /// stream never looks complete.
    pub fn finish(&mut self) -> Result<Vec<Value>, TranslateError> {
        if self.done {
            Ok(vec![])
        } else {
            Err(TranslateError::Malformed(
                "stream ended before message_stop".into(),
            ))
        }
    }

    fn chunk(&self, delta: Value, finish: Option<&str>) -> Value {
        json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
        })
    }

    fn require_started(&self, event: &str) -> Result<(), TranslateError> {
        if self.started {
            Ok(())
        } else {
            Err(TranslateError::Malformed(format!(
                "{event} before message_start"
            )))
        }
    }

    fn message_start(&mut self, data: &Value) -> Result<Vec<Value>, TranslateError> {
        let message = data
            .get("message")
            .ok_or_else(|| TranslateError::Malformed("message_start without message".into()))?;
        self.id = message
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if let Some(usage) = message.get("usage") {
            self.usage.merge(usage);
        }
        self.started = true;
        Ok(vec![
            self.chunk(json!({"role": "assistant", "content": ""}), None),
        ])
    }

    fn block_index(data: &Value) -> Result<u64, TranslateError> {
        data.get("index")
            .and_then(Value::as_u64)
            .ok_or_else(|| TranslateError::Malformed("content block event without index".into()))
    }

    fn block_start(&mut self, data: &Value) -> Result<Vec<Value>, TranslateError> {
        self.require_started("content_block_start")?;
        let index = Self::block_index(data)?;
        let block = data.get("content_block").ok_or_else(|| {
            TranslateError::Malformed("content_block_start without content_block".into())
        })?;
        let str_field = |name: &str| block.get(name).and_then(Value::as_str).unwrap_or("");
        let mut out = vec![];
        let state = match block.get("type").and_then(Value::as_str) {
            Some("text") => {
                let text = str_field("text");
                if !text.is_empty() {
                    out.push(self.chunk(json!({"content": text}), None));
                }
                Block::Text
            }
            Some("thinking") => {
                let text = str_field("thinking");
                if !text.is_empty() {
                    out.push(self.chunk(json!({"reasoning_content": text}), None));
                }
                Block::Thinking {
                    text: text.to_string(),
                    signature: str_field("signature").to_string(),
                }
            }
            Some("redacted_thinking") => Block::Redacted {
                data: str_field("data").to_string(),
            },
            Some("tool_use") => {
                let tool_index = self.tool_count;
                self.tool_count += 1;
                out.push(self.chunk(
                    json!({"tool_calls": [{
                        "index": tool_index,
                        "id": str_field("id"),
                        "type": "function",
                        "function": {"name": str_field("name"), "arguments": ""},
                    }]}),
                    None,
                ));
                Block::Tool {
                    index: tool_index,
                    saw_delta: false,
                    input: block.get("input").cloned().unwrap_or(Value::Null),
                }
            }
            _ => Block::Other,
        };
        self.blocks.insert(index, state);
        Ok(out)
    }

    fn block_delta(&mut self, data: &Value) -> Result<Vec<Value>, TranslateError> {
        self.require_started("content_block_delta")?;
        let index = Self::block_index(data)?;
        let delta = data
            .get("delta")
            .ok_or_else(|| TranslateError::Malformed("content_block_delta without delta".into()))?;
        let text = |name: &str| {
            delta.get(name).and_then(Value::as_str).ok_or_else(|| {
                TranslateError::Malformed(format!("content_block_delta without {name}"))
            })
        };
        let Some(block) = self.blocks.get_mut(&index) else {
            return Err(TranslateError::Malformed(format!(
                "content_block_delta for unstarted block {index}"
            )));
        };
        let out = match (delta.get("type").and_then(Value::as_str), block) {
            (Some("text_delta"), _) => {
                let t = text("text")?;
                (!t.is_empty()).then(|| json!({"content": t}))
            }
            (Some("thinking_delta"), Block::Thinking { text: acc, .. }) => {
                let t = text("thinking")?;
                acc.push_str(t);
                (!t.is_empty()).then(|| json!({"reasoning_content": t}))
            }
            (Some("signature_delta"), Block::Thinking { signature, .. }) => {
                signature.push_str(text("signature")?);
                None
            }
            (
                Some("input_json_delta"),
                Block::Tool {
                    index: tool_index,
                    saw_delta,
                    ..
                },
            ) => {
                let partial = text("partial_json")?;
                if partial.is_empty() {
                    None
                } else {
                    *saw_delta = true;
                    Some(json!({"tool_calls": [{
                        "index": *tool_index,
                        "function": {"arguments": partial},
                    }]}))
                }
            }
            // citations_delta, deltas of server-tool blocks, future delta types.
            _ => None,
        };
        Ok(out.map(|d| vec![self.chunk(d, None)]).unwrap_or_default())
    }

    fn block_stop(&mut self, data: &Value) -> Result<Vec<Value>, TranslateError> {
        self.require_started("content_block_stop")?;
        let index = Self::block_index(data)?;
        let Some(block) = self.blocks.get(&index) else {
            return Err(TranslateError::Malformed(format!(
                "content_block_stop for unstarted block {index}"
            )));
        };
        let delta = match block {
            Block::Thinking { text, signature } => Some(json!({"x_thinking_blocks": [
                {"type": "thinking", "thinking": text, "signature": signature}
            ]})),
            Block::Redacted { data } => Some(json!({"x_thinking_blocks": [
                {"type": "redacted_thinking", "data": data}
            ]})),
            // A tool_use whose input came whole in content_block_start (no deltas).
            Block::Tool {
                index: tool_index,
                saw_delta: false,
                input,
            } if input.as_object().is_some_and(|o| !o.is_empty()) => Some(json!({"tool_calls": [{
                "index": *tool_index,
                "function": {"arguments": input.to_string()},
            }]})),
            _ => None,
        };
        Ok(delta.map(|d| vec![self.chunk(d, None)]).unwrap_or_default())
    }

    fn message_stop(&mut self) -> Result<Vec<Value>, TranslateError> {
        self.require_started("message_stop")?;
        self.done = true;
        let reason = self.stop_reason.as_deref();
        let mut delta = json!({});
        if reason == Some("refusal") {
            delta["refusal"] = json!(refusal_text(self.stop_details.as_ref()));
        }
        let last = self.chunk(delta, Some(finish_reason(reason)));
        let usage = json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [],
            "usage": usage_to_chat(&self.usage),
        });
        Ok(vec![last, usage])
    }
}

/// Rebuilds a non-streamed `chat.completion` message from chunks, the way a client would.
#[cfg(test)]
pub(crate) fn assemble(chunks: &[Value]) -> Value {
    let mut content = String::new();
    let mut reasoning = String::new();
    let mut thinking = vec![];
    let mut calls: Vec<Value> = vec![];
    let mut finish = Value::Null;
    let mut usage = Value::Null;
    for chunk in chunks {
        if let Some(u) = chunk.get("usage") {
            usage = u.clone();
        }
        let Some(choice) = chunk["choices"].get(0) else {
            continue;
        };
        let delta = &choice["delta"];
        if let Some(t) = delta["content"].as_str() {
            content.push_str(t);
        }
        if let Some(t) = delta["reasoning_content"].as_str() {
            reasoning.push_str(t);
        }
        if let Some(blocks) = delta["x_thinking_blocks"].as_array() {
            thinking.extend(blocks.iter().cloned());
        }
        for call in delta["tool_calls"].as_array().into_iter().flatten() {
            let i = call["index"].as_u64().expect("index") as usize;
            if i == calls.len() {
                calls.push(json!({
                    "id": call["id"], "type": "function",
                    "function": {"name": call["function"]["name"], "arguments": ""}
                }));
            }
            let args = calls[i]["function"]["arguments"]
                .as_str()
                .unwrap_or("")
                .to_string()
                + call["function"]["arguments"].as_str().unwrap_or("");
            calls[i]["function"]["arguments"] = json!(args);
        }
        if !choice["finish_reason"].is_null() {
            finish = choice["finish_reason"].clone();
        }
    }
    json!({
        "content": content, "reasoning_content": reasoning, "x_thinking_blocks": thinking,
        "tool_calls": calls, "finish_reason": finish, "usage": usage
    })
}
