//! Anthropic Messages answer -> canonical `chat.completion`. Called by the Anthropic provider on a
//! successful non-streamed answer; pure apart from the clock read for `created`.
//!
//! - `text` blocks are concatenated (no separator, as a stream would deliver them) into `content`;
//!   `content` is `null` when the turn holds only tool calls, as OpenAI does.
//! - `tool_use` blocks become `tool_calls` (`input` serialized into `arguments`), in order.
//! - `thinking` / `redacted_thinking` blocks become `x_thinking_blocks` (signatures kept) and the
//!   concatenated thinking text becomes `reasoning_content`.
//! - `stop_reason` -> `finish_reason` per `providers::anthropic::finish_reason`; `refusal` also
//!   sets the message's `refusal` field.
//! - Usage per [`usage_to_chat`]. Server-tool blocks (`server_tool_use`, `*_tool_result`) have no
//!   canonical form and are skipped: `from_chat` never asks for server tools.

use serde_json::{Map, Value, json};

use super::{TranslateError, finish_reason, refusal_text};

pub fn to_chat(body: &Value, model: &str) -> Result<Value, TranslateError> {
    to_chat_at(body, model, unix_now())
}

/// [`to_chat`] with a fixed `created` timestamp (tests, replays).
pub fn to_chat_at(body: &Value, model: &str, created: u64) -> Result<Value, TranslateError> {
    let obj = body
        .as_object()
        .ok_or_else(|| TranslateError::Malformed("answer is not a JSON object".into()))?;
    if let Some(t) = obj.get("type").and_then(Value::as_str)
        && t != "message"
    {
        return Err(TranslateError::Malformed(format!(
            "answer type is {t:?}, expected \"message\""
        )));
    }
    let id = obj
        .get("id")
        .and_then(Value::as_str)
        .ok_or_else(|| TranslateError::Malformed("answer has no id".into()))?;
    let content = obj
        .get("content")
        .and_then(Value::as_array)
        .ok_or_else(|| TranslateError::Malformed("answer has no content array".into()))?;

    let mut text = String::new();
    let mut reasoning = String::new();
    let mut thinking_blocks = Vec::new();
    let mut tool_calls = Vec::new();
    for (i, block) in content.iter().enumerate() {
        let field = |name: &str| {
            block.get(name).and_then(Value::as_str).ok_or_else(|| {
                TranslateError::Malformed(format!("content[{i}].{name} is not a string"))
            })
        };
        match block.get("type").and_then(Value::as_str) {
            Some("text") => text.push_str(field("text")?),
            Some("thinking") => {
                let thinking = field("thinking")?;
                reasoning.push_str(thinking);
                thinking_blocks.push(json!({
                    "type": "thinking",
                    "thinking": thinking,
                    "signature": block.get("signature").and_then(Value::as_str).unwrap_or(""),
                }));
            }
            Some("redacted_thinking") => {
                thinking_blocks.push(json!({"type": "redacted_thinking", "data": field("data")?}));
            }
            Some("tool_use") => {
                let input = block.get("input").cloned().unwrap_or_else(|| json!({}));
                tool_calls.push(json!({
                    "id": field("id")?,
                    "type": "function",
                    "function": {"name": field("name")?, "arguments": input.to_string()},
                }));
            }
            _ => {}
        }
    }

    let stop_reason = obj.get("stop_reason").and_then(Value::as_str);
    let mut message = Map::new();
    message.insert("role".into(), json!("assistant"));
    message.insert(
        "content".into(),
        if text.is_empty() && !tool_calls.is_empty() {
            Value::Null
        } else {
            json!(text)
        },
    );
    message.insert(
        "refusal".into(),
        if stop_reason == Some("refusal") {
            json!(refusal_text(obj.get("stop_details")))
        } else {
            Value::Null
        },
    );
    if !tool_calls.is_empty() {
        message.insert("tool_calls".into(), Value::Array(tool_calls));
    }
    if !thinking_blocks.is_empty() {
        message.insert("reasoning_content".into(), json!(reasoning));
        message.insert("x_thinking_blocks".into(), Value::Array(thinking_blocks));
    }

    let mut out = json!({
        "id": id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [{
            "index": 0,
            "message": Value::Object(message),
            "logprobs": null,
            "finish_reason": finish_reason(stop_reason),
        }],
    });
    if let Some(usage) = obj.get("usage") {
        out["usage"] = usage_to_chat(&AnthropicUsage::from_value(usage));
    }
    Ok(out)
}

/// The token classes of an Anthropic `usage` object.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AnthropicUsage {
    /// Input tokens after the last cache breakpoint: neither read from nor written to the cache.
    pub input_tokens: u64,
    pub cache_read_input_tokens: u64,
    pub cache_creation_input_tokens: u64,
    /// Part of `cache_creation_input_tokens` written with the 1-hour TTL (billed higher than the
    /// 5-minute default), from `usage.cache_creation.ephemeral_1h_input_tokens`.
    pub cache_creation_1h_input_tokens: u64,
    /// Includes thinking tokens.
    pub output_tokens: u64,
}

impl AnthropicUsage {
    pub fn from_value(usage: &Value) -> AnthropicUsage {
        let mut u = AnthropicUsage::default();
        u.merge(usage);
        u
    }

    /// Overwrites each field `usage` carries. Stream `message_delta` counts are cumulative, so a
    /// later value replaces an earlier one rather than adding to it.
    pub fn merge(&mut self, usage: &Value) {
        let get = |k: &str| usage.get(k).and_then(Value::as_u64);
        if let Some(v) = get("input_tokens") {
            self.input_tokens = v;
        }
        if let Some(v) = get("cache_read_input_tokens") {
            self.cache_read_input_tokens = v;
        }
        if let Some(v) = get("cache_creation_input_tokens") {
            self.cache_creation_input_tokens = v;
        }
        if let Some(v) = usage
            .get("cache_creation")
            .and_then(|c| c.get("ephemeral_1h_input_tokens"))
            .and_then(Value::as_u64)
        {
            self.cache_creation_1h_input_tokens = v;
        }
        if let Some(v) = get("output_tokens") {
            self.output_tokens = v;
        }
    }
}

/// Anthropic usage -> canonical usage: `prompt_tokens` = input + cache read + cache creation,
/// `cached_tokens` = cache read, `cache_creation_tokens` = cache creation (its 1-hour part, when
/// non-zero, in `x_cache_creation_1h_tokens`), `completion_tokens` = output (thinking included;
/// Anthropic gives no separate reasoning count, so `completion_tokens_details` is absent).
pub fn usage_to_chat(u: &AnthropicUsage) -> Value {
    let prompt = u.input_tokens + u.cache_read_input_tokens + u.cache_creation_input_tokens;
    let mut details = json!({
        "cached_tokens": u.cache_read_input_tokens,
        "cache_creation_tokens": u.cache_creation_input_tokens,
    });
    if u.cache_creation_1h_input_tokens > 0 {
        details["x_cache_creation_1h_tokens"] = json!(u.cache_creation_1h_input_tokens);
    }
    json!({
        "prompt_tokens": prompt,
        "completion_tokens": u.output_tokens,
        "total_tokens": prompt + u.output_tokens,
        "prompt_tokens_details": details,
    })
}

pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::anthropic::assert_json_eq;

    fn fixture(text: &str) -> Value {
        serde_json::from_str(text).expect("fixture is JSON")
    }

    #[test]
    fn text_answer_with_cache_usage_matches_golden() {
        let body = fixture(include_str!(
            "../../../tests/fixtures/anthropic/message_response_text.json"
        ));
        let expected = fixture(include_str!(
            "../../../tests/fixtures/anthropic/chat_response_text.json"
        ));
        let got = to_chat_at(&body, "claude-opus-4-8", 1_767_225_600).expect("translates");
        assert_json_eq(&got, &expected);
    }

    #[test]
    fn thinking_and_tool_use_answer_matches_golden() {
        let body = fixture(include_str!(
            "../../../tests/fixtures/anthropic/message_response_tool_use.json"
        ));
        let expected = fixture(include_str!(
            "../../../tests/fixtures/anthropic/chat_response_tool_use.json"
        ));
        let got = to_chat_at(&body, "claude-sonnet-4-5", 1_767_225_600).expect("translates");
        assert_json_eq(&got, &expected);
    }

    #[test]
    fn refusal_sets_content_filter_and_refusal_text() {
        let body = fixture(include_str!(
            "../../../tests/fixtures/anthropic/message_response_refusal.json"
        ));
        let got = to_chat_at(&body, "claude-opus-4-8", 0).expect("translates");
        assert_eq!(got["choices"][0]["finish_reason"], "content_filter");
        assert_eq!(got["choices"][0]["message"]["content"], "Hello..");
        assert_eq!(
            got["choices"][0]["message"]["refusal"],
            "the model declined to respond (anthropic stop_reason: refusal)"
        );
    }

    #[test]
    fn max_tokens_is_length() {
        let body = json!({
            "id": "msg_1", "type": "message", "role": "assistant",
            "content": [{"type": "text", "text": "cut"}],
            "stop_reason": "max_tokens", "usage": {"input_tokens": 3, "output_tokens": 5}
        });
        let got = to_chat_at(&body, "m", 0).expect("ok");
        assert_eq!(got["choices"][0]["finish_reason"], "length");
        assert_eq!(got["usage"]["prompt_tokens"], 3);
        assert_eq!(got["usage"]["total_tokens"], 8);
        assert_eq!(got["usage"]["prompt_tokens_details"]["cached_tokens"], 0);
    }

    #[test]
    fn wrong_shape_is_malformed() {
        assert!(matches!(
            to_chat_at(&json!({"type": "error"}), "m", 0),
            Err(TranslateError::Malformed(_))
        ));
        assert!(matches!(
            to_chat_at(&json!({"id": "x", "type": "message"}), "m", 0),
            Err(TranslateError::Malformed(_))
        ));
    }
}
