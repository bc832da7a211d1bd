//! A canonical `chat.completion` as Gemini's `GenerateContentResponse`: one candidate per
//! choice (text and function calls as parts), the finish reason in Gemini's names, and usage as
//! `usageMetadata`.

use serde_json::{Value, json};

/// Gemini's name for a canonical finish reason.
pub fn finish_reason(reason: &str) -> &'static str {
    match reason {
        "length" => "MAX_TOKENS",
        "content_filter" => "SAFETY",
        _ => "STOP",
    }
}

/// Canonical usage as `usageMetadata` (reasoning is apart in Gemini's counts, part of the
/// completion in the canonical ones).
pub fn usage_metadata(usage: &Value) -> Value {
    let prompt = usage["prompt_tokens"].as_u64().unwrap_or(0);
    let completion = usage["completion_tokens"].as_u64().unwrap_or(0);
    let reasoning = usage["completion_tokens_details"]["reasoning_tokens"]
        .as_u64()
        .unwrap_or(0);
    let mut meta = json!({"promptTokenCount": prompt,
        "candidatesTokenCount": completion.saturating_sub(reasoning),
        "totalTokenCount": prompt + completion});
    if reasoning > 0 {
        meta["thoughtsTokenCount"] = json!(reasoning);
    }
    if let Some(cached) = usage["prompt_tokens_details"]["cached_tokens"].as_u64()
        && cached > 0
    {
        meta["cachedContentTokenCount"] = json!(cached);
    }
    meta
}

/// A function call's parts from canonical `tool_calls`.
pub fn call_parts(calls: &Value) -> Vec<Value> {
    calls
        .as_array()
        .into_iter()
        .flatten()
        .map(|call| {
            let arguments = call["function"]["arguments"].as_str().unwrap_or("{}");
            let args: Value = serde_json::from_str(arguments).unwrap_or_else(|_| json!({}));
            json!({"functionCall": {"id": call["id"], "name": call["function"]["name"], "args": args}})
        })
        .collect()
}

pub fn from_chat(chat: &Value) -> Value {
    let candidates: Vec<Value> = chat["choices"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|choice| {
            let message = &choice["message"];
            let mut parts = Vec::new();
            if let Some(text) = message["content"].as_str()
                && !text.is_empty()
            {
                parts.push(json!({"text": text}));
            }
            parts.extend(call_parts(&message["tool_calls"]));
            json!({"content": {"role": "model", "parts": parts},
                "finishReason": finish_reason(choice["finish_reason"].as_str().unwrap_or("stop")),
                "index": choice["index"]})
        })
        .collect();
    let mut response = json!({"candidates": candidates, "modelVersion": chat["model"]});
    if let Some(id) = chat["id"].as_str() {
        response["responseId"] = json!(id);
    }
    if chat["usage"].is_object() {
        response["usageMetadata"] = usage_metadata(&chat["usage"]);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tool_call_answer_becomes_a_function_call_part() {
        let chat = json!({"id": "c1", "model": "gpt-4o", "choices": [{"index": 0, "finish_reason": "tool_calls",
            "message": {"role": "assistant", "content": null, "tool_calls": [{"id": "t1", "type": "function",
            "function": {"name": "weather", "arguments": "{\"city\":\"Paris\"}"}}]}}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}});
        let g = from_chat(&chat);
        assert_eq!(
            g["candidates"][0]["content"]["parts"][0]["functionCall"]["args"]["city"],
            "Paris"
        );
        assert_eq!(g["candidates"][0]["finishReason"], "STOP");
        assert_eq!(g["usageMetadata"]["totalTokenCount"], 8);
    }
}
