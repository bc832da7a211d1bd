//! Canonical `chat.completion` -> Anthropic Messages answer, for an Anthropic-SDK client whose
//! request went to any provider. Pure.
//!
//! - Content blocks in Anthropic's order: thinking (from `x_thinking_blocks`, or one `thinking`
//!   block with an empty signature built from `reasoning_content` when the provider gave no
//!   blocks), then `text`, then `tool_use` (`arguments` parsed into `input`).
//! - `finish_reason` -> `stop_reason`: stop -> `end_turn` (`tool_use` when the message has tool
//!   calls: some providers say stop there), length -> `max_tokens`, tool_calls / function_call ->
//!   `tool_use`, content_filter -> `refusal`.
//! - Usage per [`usage_to_anthropic`]: `input_tokens` = prompt - cached - cache creation.
//! - `id`: the canonical id, prefixed with `msg_` unless it already is.

use serde_json::{Map, Value, json};

use super::TranslateError;

pub fn from_chat(chat: &Value) -> Result<Value, TranslateError> {
    let choice = chat
        .get("choices")
        .and_then(|c| c.get(0))
        .ok_or_else(|| TranslateError::Malformed("chat.completion has no choices".into()))?;
    let message = choice
        .get("message")
        .ok_or_else(|| TranslateError::Malformed("choice has no message".into()))?;

    let mut content = thinking_blocks(message);
    match message.get("content") {
        Some(Value::String(s)) if !s.is_empty() => content.push(json!({"type": "text", "text": s})),
        Some(Value::Array(parts)) => {
            for part in parts {
                if let Some(t) = part
                    .get("text")
                    .or_else(|| part.get("refusal"))
                    .and_then(Value::as_str)
                    .filter(|t| !t.is_empty())
                {
                    content.push(json!({"type": "text", "text": t}));
                }
            }
        }
        _ => {}
    }
    let has_text = content
        .iter()
        .any(|b| b.get("type").and_then(Value::as_str) == Some("text"));
    if !has_text
        && let Some(refusal) = message
            .get("refusal")
            .and_then(Value::as_str)
            .filter(|r| !r.is_empty())
    {
        content.push(json!({"type": "text", "text": refusal}));
    }

    let calls = message
        .get("tool_calls")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for (i, call) in calls.iter().enumerate() {
        let id = call.get("id").and_then(Value::as_str).unwrap_or_default();
        let function = call.get("function");
        let name = function
            .and_then(|f| f.get("name"))
            .and_then(Value::as_str)
            .unwrap_or_default();
        let args = function
            .and_then(|f| f.get("arguments"))
            .and_then(Value::as_str)
            .unwrap_or("");
        let input = parse_arguments(args).ok_or_else(|| {
            TranslateError::Malformed(format!(
                "tool_calls[{i}].function.arguments is not a JSON object"
            ))
        })?;
        content.push(json!({"type": "tool_use", "id": id, "name": name, "input": input}));
    }

    let finish = choice.get("finish_reason").and_then(Value::as_str);
    let id = chat.get("id").and_then(Value::as_str).unwrap_or_default();
    let usage = chat
        .get("usage")
        .filter(|u| !u.is_null())
        .map(usage_to_anthropic)
        .unwrap_or_else(|| json!({"input_tokens": 0, "output_tokens": 0}));
    Ok(json!({
        "id": message_id(id),
        "type": "message",
        "role": "assistant",
        "model": chat.get("model").cloned().unwrap_or(Value::Null),
        "content": content,
        "stop_reason": stop_reason(finish, !calls.is_empty()),
        "stop_sequence": null,
        "usage": usage,
    }))
}

/// `x_thinking_blocks` as Anthropic blocks, or one unsigned block from `reasoning_content`.
pub(crate) fn thinking_blocks(message: &Value) -> Vec<Value> {
    if let Some(blocks) = message.get("x_thinking_blocks").and_then(Value::as_array) {
        return blocks.iter().filter_map(clean_thinking_block).collect();
    }
    match message
        .get("reasoning_content")
        .and_then(Value::as_str)
        .filter(|r| !r.is_empty())
    {
        Some(text) => vec![json!({"type": "thinking", "thinking": text, "signature": ""})],
        None => vec![],
    }
}

/// A thinking block with only the fields Anthropic defines; `None` for anything else.
pub(crate) fn clean_thinking_block(block: &Value) -> Option<Value> {
    let s = |k: &str| block.get(k).and_then(Value::as_str).unwrap_or("");
    match block.get("type").and_then(Value::as_str)? {
        "thinking" => Some(
            json!({"type": "thinking", "thinking": s("thinking"), "signature": s("signature")}),
        ),
        "redacted_thinking" => Some(json!({"type": "redacted_thinking", "data": s("data")})),
        _ => None,
    }
}

/// Tool arguments as an Anthropic `input` object; empty arguments are `{}`.
pub(crate) fn parse_arguments(args: &str) -> Option<Value> {
    if args.trim().is_empty() {
        return Some(json!({}));
    }
    serde_json::from_str::<Value>(args)
        .ok()
        .filter(Value::is_object)
}

pub(crate) fn message_id(id: &str) -> String {
    if id.starts_with("msg_") {
        id.to_string()
    } else {
        format!("msg_{id}")
    }
}

pub(crate) fn stop_reason(finish: Option<&str>, has_tool_calls: bool) -> &'static str {
    match finish {
        Some("length") => "max_tokens",
        Some("tool_calls") | Some("function_call") => "tool_use",
        Some("content_filter") => "refusal",
        _ if has_tool_calls => "tool_use",
        _ => "end_turn",
    }
}

/// Canonical usage -> Anthropic usage. `prompt_tokens` includes cache reads and writes, which
/// Anthropic counts apart, so they are subtracted (saturating: a provider that reports cached
/// tokens outside `prompt_tokens` must not make `input_tokens` wrap).
pub fn usage_to_anthropic(usage: &Value) -> Value {
    let get = |v: Option<&Value>| v.and_then(Value::as_u64).unwrap_or(0);
    let details = usage.get("prompt_tokens_details");
    let cached = get(details.and_then(|d| d.get("cached_tokens")));
    let creation = get(details.and_then(|d| d.get("cache_creation_tokens")));
    let prompt = get(usage.get("prompt_tokens"));
    let mut out = Map::new();
    out.insert(
        "input_tokens".into(),
        json!(prompt.saturating_sub(cached).saturating_sub(creation)),
    );
    out.insert("cache_creation_input_tokens".into(), json!(creation));
    out.insert("cache_read_input_tokens".into(), json!(cached));
    out.insert(
        "output_tokens".into(),
        json!(get(usage.get("completion_tokens"))),
    );
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::translate::assert_json_eq;

    fn fixture(text: &str) -> Value {
        serde_json::from_str(text).expect("fixture is JSON")
    }

    #[test]
    fn chat_completion_matches_golden_message() {
        let chat = fixture(include_str!(
            "../../../tests/fixtures/anthropic/outbound_chat_response.json"
        ));
        let expected = fixture(include_str!(
            "../../../tests/fixtures/anthropic/outbound_message_response.json"
        ));
        assert_json_eq(&from_chat(&chat).expect("translates"), &expected);
    }

    #[test]
    fn reasoning_without_blocks_becomes_an_unsigned_thinking_block() {
        let chat = json!({
            "id": "chatcmpl-1", "model": "gpt-5",
            "choices": [{"index": 0, "finish_reason": "stop", "message": {
                "role": "assistant", "content": "4", "reasoning_content": "2+2"
            }}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 20, "prompt_tokens_details": {"cached_tokens": 4}}
        });
        let got = from_chat(&chat).expect("ok");
        assert_eq!(got["id"], "msg_chatcmpl-1");
        assert_eq!(
            got["content"],
            json!([
                {"type": "thinking", "thinking": "2+2", "signature": ""},
                {"type": "text", "text": "4"}
            ])
        );
        assert_eq!(
            got["usage"],
            json!({"input_tokens": 6, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 4, "output_tokens": 20})
        );
    }

    #[test]
    fn finish_reasons_map_to_stop_reasons() {
        assert_eq!(stop_reason(Some("stop"), false), "end_turn");
        assert_eq!(stop_reason(Some("stop"), true), "tool_use");
        assert_eq!(stop_reason(Some("length"), false), "max_tokens");
        assert_eq!(stop_reason(Some("tool_calls"), true), "tool_use");
        assert_eq!(stop_reason(Some("content_filter"), false), "refusal");
        assert_eq!(stop_reason(None, false), "end_turn");
    }

    #[test]
    fn invalid_tool_arguments_are_malformed() {
        let chat = json!({"id": "x", "choices": [{"finish_reason": "tool_calls", "message": {
            "role": "assistant", "content": null,
            "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "[1"}}]
        }}]});
        assert!(matches!(
            from_chat(&chat),
            Err(TranslateError::Malformed(_))
        ));
    }
}
