//! Gemini `GenerateContentResponse` -> canonical `chat.completion`.
//!
//! - Each candidate becomes a choice (`index` from the candidate). Its text parts are joined into
//!   `content`; parts with `thought: true` are joined into `reasoning_content`; each `functionCall`
//!   part becomes a tool call with id `functionCall.id` when Gemini sends one, else `call_<n>`
//!   (n counts calls in this answer from 0), and `arguments` the `args` object serialized. A
//!   `thoughtSignature` on a function-call part is kept on that tool call as `x_thought_signature`;
//!   one on another part is kept on the message as `x_thought_signature`, so the next request can
//!   hand them back (Gemini 3 rejects function calling turns without them). Other parts
//!   (`inlineData` output, `executableCode`, ...) are not translated.
//! - `finishReason` (see [`finish_reason`]): `STOP` -> `stop` (`tool_calls` when the candidate has
//!   function calls), `MAX_TOKENS` -> `length`, `SAFETY`, `RECITATION`, `LANGUAGE`, `BLOCKLIST`,
//!   `PROHIBITED_CONTENT`, `SPII`, `IMAGE_SAFETY`, `IMAGE_PROHIBITED_CONTENT`, `IMAGE_RECITATION`
//!   -> `content_filter`; anything else (`OTHER`, `MALFORMED_FUNCTION_CALL`, ...) -> `stop`.
//! - A prompt blocked before generation (`promptFeedback.blockReason`, no candidates) becomes one
//!   choice with `content: null` and `finish_reason: content_filter`.
//! - `usageMetadata` (see [`usage`]). Gemini documents `totalTokenCount` as the sum of
//!   `promptTokenCount`, `candidatesTokenCount`, `toolUsePromptTokenCount` and
//!   `thoughtsTokenCount`, so thoughts are NOT part of `candidatesTokenCount`:
//!   `completion_tokens = candidatesTokenCount + thoughtsTokenCount` (thoughts are billed as
//!   output), `reasoning_tokens = thoughtsTokenCount`. `promptTokenCount` already includes
//!   `cachedContentTokenCount`, so `prompt_tokens = promptTokenCount + toolUsePromptTokenCount`
//!   (tool-use prompt tokens are billed as input) and `cached_tokens = cachedContentTokenCount`.
//!   Hence `total_tokens == totalTokenCount`.

use serde_json::{Map, Value, json};

use super::{TranslateError, canonical_usage, now_secs};

/// Translates a Gemini answer. `model` is the name the client asked for.
pub fn to_chat(body: &Value, model: &str) -> Result<Value, TranslateError> {
    let obj = body
        .as_object()
        .ok_or_else(|| TranslateError::Malformed("expected a JSON object".into()))?;
    if let Some(error) = obj.get("error") {
        return Err(super::error::provider_error(error));
    }
    let mut choices = Vec::new();
    let mut call_counter = 0usize;
    if let Some(candidates) = obj.get("candidates") {
        let candidates = candidates
            .as_array()
            .ok_or_else(|| TranslateError::Malformed("candidates is not an array".into()))?;
        for (position, candidate) in candidates.iter().enumerate() {
            choices.push(choice(candidate, position, &mut call_counter)?);
        }
    }
    if choices.is_empty() {
        let blocked = obj
            .get("promptFeedback")
            .and_then(|f| f.get("blockReason"))
            .and_then(Value::as_str);
        match blocked {
            Some(_) => choices.push(json!({
                "index": 0,
                "message": {"role": "assistant", "content": null},
                "finish_reason": "content_filter",
                "logprobs": null,
            })),
            None => {
                return Err(TranslateError::Malformed(
                    "no candidates and no promptFeedback.blockReason".into(),
                ));
            }
        }
    }
    let mut out = json!({
        "id": completion_id(obj.get("responseId")),
        "object": "chat.completion",
        "created": now_secs(),
        "model": model,
        "choices": choices,
    });
    if let Some(meta) = obj.get("usageMetadata") {
        out["usage"] = usage(meta);
    }
    Ok(out)
}

pub(crate) fn completion_id(response_id: Option<&Value>) -> String {
    match response_id.and_then(Value::as_str) {
        Some(id) => format!("chatcmpl-{id}"),
        None => "chatcmpl-gemini".to_string(),
    }
}

fn choice(
    candidate: &Value,
    position: usize,
    call_counter: &mut usize,
) -> Result<Value, TranslateError> {
    let index = candidate
        .get("index")
        .and_then(Value::as_u64)
        .unwrap_or(position as u64);
    let parts = match candidate.get("content").and_then(|c| c.get("parts")) {
        None => &Vec::new(),
        Some(Value::Array(parts)) => parts,
        Some(_) => {
            return Err(TranslateError::Malformed(
                "candidate content.parts is not an array".into(),
            ));
        }
    };
    let mut text = String::new();
    let mut reasoning = String::new();
    let mut tool_calls = Vec::new();
    let mut message_signature = None;
    for part in parts {
        let signature = part.get("thoughtSignature").and_then(Value::as_str);
        if let Some(call) = part.get("functionCall") {
            tool_calls.push(tool_call(call, signature, call_counter)?);
            continue;
        }
        if signature.is_some() {
            message_signature = signature;
        }
        if let Some(t) = part.get("text").and_then(Value::as_str) {
            if part.get("thought").and_then(Value::as_bool) == Some(true) {
                reasoning.push_str(t);
            } else {
                text.push_str(t);
            }
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
    if let Some(signature) = message_signature {
        message.insert("x_thought_signature".into(), json!(signature));
    }
    let has_calls = !tool_calls.is_empty();
    if has_calls {
        message.insert("tool_calls".into(), Value::Array(tool_calls));
    }
    let finish = candidate
        .get("finishReason")
        .and_then(Value::as_str)
        .map(|r| finish_reason(r, has_calls));
    Ok(json!({
        "index": index,
        "message": message,
        "finish_reason": finish,
        "logprobs": null,
    }))
}

/// One `functionCall` part -> an OpenAI tool call.
pub(crate) fn tool_call(
    call: &Value,
    signature: Option<&str>,
    call_counter: &mut usize,
) -> Result<Value, TranslateError> {
    let name = call
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| TranslateError::Malformed("functionCall without a name".into()))?;
    let args = call.get("args").cloned().unwrap_or_else(|| json!({}));
    let id = match call.get("id").and_then(Value::as_str) {
        Some(id) if !id.is_empty() => id.to_string(),
        _ => format!("call_{call_counter}"),
    };
    *call_counter += 1;
    let arguments = serde_json::to_string(&args)
        .map_err(|e| TranslateError::Malformed(format!("functionCall args: {e}")))?;
    let mut out = json!({
        "id": id,
        "type": "function",
        "function": {"name": name, "arguments": arguments},
    });
    if let Some(signature) = signature {
        out["x_thought_signature"] = json!(signature);
    }
    Ok(out)
}

/// Gemini `finishReason` -> OpenAI `finish_reason`.
pub fn finish_reason(reason: &str, has_tool_calls: bool) -> &'static str {
    match reason {
        "MAX_TOKENS" => "length",
        "SAFETY"
        | "RECITATION"
        | "LANGUAGE"
        | "BLOCKLIST"
        | "PROHIBITED_CONTENT"
        | "SPII"
        | "IMAGE_SAFETY"
        | "IMAGE_PROHIBITED_CONTENT"
        | "IMAGE_RECITATION" => "content_filter",
        _ if has_tool_calls => "tool_calls",
        _ => "stop",
    }
}

/// `usageMetadata` -> canonical usage (conventions in the module doc).
pub fn usage(meta: &Value) -> Value {
    let count = |key: &str| meta.get(key).and_then(Value::as_u64).unwrap_or(0);
    let thoughts = count("thoughtsTokenCount");
    canonical_usage(
        count("promptTokenCount") + count("toolUsePromptTokenCount"),
        count("candidatesTokenCount") + thoughts,
        count("cachedContentTokenCount"),
        thoughts,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::gemini::test_support::{assert_json_eq, parse, strip_created};

    fn check(response: &str, expected: &str) {
        let got = to_chat(&parse(response), "gemini-2.5-flash").expect("translates");
        assert_json_eq(&strip_created(got), &parse(expected));
    }

    #[test]
    fn text_answer_with_thoughts_and_cache() {
        check(
            include_str!("../../../tests/fixtures/gemini/response_text.json"),
            include_str!("../../../tests/fixtures/gemini/chat_response_text.json"),
        );
    }

    #[test]
    fn function_calls_become_tool_calls() {
        check(
            include_str!("../../../tests/fixtures/gemini/response_tools.json"),
            include_str!("../../../tests/fixtures/gemini/chat_response_tools.json"),
        );
    }

    #[test]
    fn blocked_prompt_is_a_content_filter_choice() {
        check(
            include_str!("../../../tests/fixtures/gemini/response_blocked.json"),
            include_str!("../../../tests/fixtures/gemini/chat_response_blocked.json"),
        );
    }

    #[test]
    fn usage_total_matches_gemini_total() {
        let meta = json!({
            "promptTokenCount": 100, "cachedContentTokenCount": 60, "candidatesTokenCount": 20,
            "thoughtsTokenCount": 30, "toolUsePromptTokenCount": 5, "totalTokenCount": 155
        });
        let u = usage(&meta);
        assert_eq!(u["total_tokens"], json!(155));
        assert_eq!(u["prompt_tokens"], json!(105));
        assert_eq!(u["completion_tokens"], json!(50));
        assert_eq!(u["prompt_tokens_details"]["cached_tokens"], json!(60));
        assert_eq!(
            u["completion_tokens_details"]["reasoning_tokens"],
            json!(30)
        );
    }

    #[test]
    fn finish_reasons() {
        assert_eq!(finish_reason("STOP", false), "stop");
        assert_eq!(finish_reason("STOP", true), "tool_calls");
        assert_eq!(finish_reason("MAX_TOKENS", true), "length");
        assert_eq!(finish_reason("SAFETY", false), "content_filter");
        assert_eq!(finish_reason("RECITATION", false), "content_filter");
        assert_eq!(finish_reason("MALFORMED_FUNCTION_CALL", false), "stop");
    }

    #[test]
    fn malformed_shapes_are_rejected() {
        assert!(matches!(
            to_chat(&json!({"candidates": 3}), "m"),
            Err(TranslateError::Malformed(_))
        ));
        assert!(matches!(
            to_chat(&json!({}), "m"),
            Err(TranslateError::Malformed(_))
        ));
        assert!(matches!(
            to_chat(
                &json!({"error": {"code": 429, "message": "slow down", "status": "RESOURCE_EXHAUSTED"}}),
                "m"
            ),
            Err(TranslateError::ProviderError { status: 429, .. })
        ));
    }
}
