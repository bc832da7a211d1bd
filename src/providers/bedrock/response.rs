//! Bedrock Converse answer -> canonical `chat.completion`.
//!
//! - `output.message.content` blocks: `text` blocks are joined into `content`; `reasoningContent`
//!   blocks become `reasoning_content` (their texts joined) and `x_thinking_blocks`
//!   (`reasoningText{text, signature}` -> `{type: thinking, thinking, signature}`,
//!   `redactedContent` -> `{type: redacted_thinking, data}`), so a later request can replay them
//!   with their signatures; `toolUse{toolUseId, name, input}` becomes a tool call with that id
//!   and `input` serialized as `arguments`. Other blocks (images, citations, ...) are not
//!   translated.
//! - `stopReason` -> `finish_reason` by [`super::finish_reason`].
//! - `usage` -> canonical usage by [`super::canonical_usage`] (`prompt_tokens` = `inputTokens` +
//!   `cacheReadInputTokens` + `cacheWriteInputTokens`).
//!
//! Converse answers carry no id; the completion id is `chatcmpl-bedrock`, and the adapter may
//! replace it with the `x-amzn-requestid` header.

use serde_json::{Map, Value, json};

use super::{TranslateError, canonical_usage, finish_reason, now_secs};

/// Translates a Converse answer. `model` is the name the client asked for.
pub fn to_chat(body: &Value, model: &str) -> Result<Value, TranslateError> {
    let content = body
        .get("output")
        .and_then(|o| o.get("message"))
        .and_then(|m| m.get("content"))
        .and_then(Value::as_array)
        .ok_or_else(|| TranslateError::Malformed("no output.message.content array".into()))?;
    let mut text = String::new();
    let mut reasoning = String::new();
    let mut thinking_blocks = Vec::new();
    let mut tool_calls = Vec::new();
    for block in content {
        if let Some(t) = block.get("text").and_then(Value::as_str) {
            text.push_str(t);
        } else if let Some(r) = block.get("reasoningContent") {
            if let Some(rt) = r.get("reasoningText") {
                let t = rt.get("text").and_then(Value::as_str).unwrap_or_default();
                reasoning.push_str(t);
                let mut b = Map::new();
                b.insert("type".into(), json!("thinking"));
                b.insert("thinking".into(), json!(t));
                if let Some(sig) = rt.get("signature").filter(|s| s.is_string()) {
                    b.insert("signature".into(), sig.clone());
                }
                thinking_blocks.push(Value::Object(b));
            } else if let Some(data) = r.get("redactedContent").and_then(Value::as_str) {
                thinking_blocks.push(json!({"type": "redacted_thinking", "data": data}));
            }
        } else if let Some(tool) = block.get("toolUse") {
            let id = tool
                .get("toolUseId")
                .and_then(Value::as_str)
                .ok_or_else(|| TranslateError::Malformed("toolUse without toolUseId".into()))?;
            let name = tool
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| TranslateError::Malformed("toolUse without name".into()))?;
            let input = tool.get("input").cloned().unwrap_or_else(|| json!({}));
            let arguments = serde_json::to_string(&input)
                .map_err(|e| TranslateError::Malformed(format!("toolUse input: {e}")))?;
            tool_calls.push(json!({
                "id": id,
                "type": "function",
                "function": {"name": name, "arguments": arguments},
            }));
        }
    }
    let mut message = Map::new();
    message.insert("role".into(), json!("assistant"));
    message.insert(
        "content".into(),
        if text.is_empty() {
            Value::Null
        } else {
            json!(text)
        },
    );
    if !reasoning.is_empty() {
        message.insert("reasoning_content".into(), json!(reasoning));
    }
    if !thinking_blocks.is_empty() {
        message.insert("x_thinking_blocks".into(), Value::Array(thinking_blocks));
    }
    if !tool_calls.is_empty() {
        message.insert("tool_calls".into(), Value::Array(tool_calls));
    }
    let finish = body
        .get("stopReason")
        .and_then(Value::as_str)
        .map(finish_reason);
    let mut out = json!({
        "id": "chatcmpl-bedrock",
        "object": "chat.completion",
        "created": now_secs(),
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": null}],
    });
    if let Some(usage) = body.get("usage") {
        out["usage"] = canonical_usage(usage);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::bedrock::test_support::{assert_json_eq, parse, strip_created};

    fn check(response: &str, expected: &str) {
        let got = to_chat(&parse(response), "claude-sonnet-4-5").expect("translates");
        assert_json_eq(&strip_created(got), &parse(expected));
    }

    #[test]
    fn tool_use_with_thinking_and_cache_usage() {
        check(
            include_str!("../../../tests/fixtures/bedrock/converse_response_tools.json"),
            include_str!("../../../tests/fixtures/bedrock/chat_response_tools.json"),
        );
    }

    #[test]
    fn text_answer() {
        check(
            include_str!("../../../tests/fixtures/bedrock/converse_response_text.json"),
            include_str!("../../../tests/fixtures/bedrock/chat_response_text.json"),
        );
    }

    #[test]
    fn stop_reasons() {
        use crate::providers::bedrock::finish_reason;
        assert_eq!(finish_reason("end_turn"), "stop");
        assert_eq!(finish_reason("stop_sequence"), "stop");
        assert_eq!(finish_reason("max_tokens"), "length");
        assert_eq!(finish_reason("tool_use"), "tool_calls");
        assert_eq!(finish_reason("content_filtered"), "content_filter");
        assert_eq!(finish_reason("guardrail_intervened"), "content_filter");
    }

    #[test]
    fn missing_output_is_malformed() {
        assert!(matches!(
            to_chat(&json!({"stopReason": "end_turn"}), "m"),
            Err(TranslateError::Malformed(_))
        ));
    }
}
