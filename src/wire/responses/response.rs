//! Canonical `chat.completion` -> Responses `response` object, and back to canonical messages for
//! storing a conversation. The item and envelope builders here are shared with [`super::stream`],
//! which is what keeps a streamed `response.completed` equal to the non-streamed answer.

use serde_json::{Map, Value, json};

use super::request::output_items_to_messages;
use super::{Ids, TranslateError, call_item_id, encode_thinking_blocks};

/// Builds the Responses object for `completion`, echoing the client's `request` (instructions,
/// tools, text, ...) as OpenAI does. `response_id` overrides the derived `resp_...` id, e.g. when
/// the caller stores the conversation under an id of its own.
pub fn from_chat(
    completion: &Value,
    request: &Value,
    response_id: Option<&str>,
) -> Result<Value, TranslateError> {
    let completion_id = completion.get("id").and_then(Value::as_str).unwrap_or("");
    let ids = Ids::new(response_id, completion_id);
    let choice = completion
        .get("choices")
        .and_then(Value::as_array)
        .and_then(|c| c.first())
        .ok_or_else(|| TranslateError::Malformed("chat.completion has no choices".into()))?;
    let message = choice
        .get("message")
        .filter(|m| m.is_object())
        .ok_or_else(|| TranslateError::Malformed("choices[0] has no message".into()))?;
    let (status, incomplete_details) =
        status_for(choice.get("finish_reason").and_then(Value::as_str));

    let mut output = Vec::new();
    let reasoning = message
        .get("reasoning_content")
        .and_then(Value::as_str)
        .unwrap_or("");
    let blocks = message
        .get("x_thinking_blocks")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    if !reasoning.is_empty() || !blocks.is_empty() {
        output.push(reasoning_item(&ids.reasoning(0), reasoning, blocks));
    }

    let mut parts = Vec::new();
    let text = content_text(message.get("content"));
    if !text.is_empty() {
        parts.push(output_text_part(&text));
    }
    if let Some(refusal) = message
        .get("refusal")
        .and_then(Value::as_str)
        .filter(|r| !r.is_empty())
    {
        parts.push(refusal_part(refusal));
    }
    if !parts.is_empty() {
        output.push(message_item(&ids.message(0), parts, item_status(status)));
    }

    let calls = message
        .get("tool_calls")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    for (i, call) in calls.iter().enumerate() {
        let call_id = match call.get("id").and_then(Value::as_str) {
            Some(id) => id.to_string(),
            None => ids.call(i as u64),
        };
        let name = call
            .pointer("/function/name")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                TranslateError::Malformed(format!("tool_calls[{i}] has no function name"))
            })?;
        let arguments = call
            .pointer("/function/arguments")
            .and_then(Value::as_str)
            .unwrap_or("");
        output.push(function_call_item(&call_id, name, arguments, "completed"));
    }

    Ok(envelope(
        Envelope {
            ids: &ids,
            created_at: completion.get("created").cloned().unwrap_or(json!(0)),
            model: completion.get("model").cloned(),
            status,
            incomplete_details,
            output,
            usage: completion.get("usage").map_or(Value::Null, usage_from_chat),
            error: Value::Null,
        },
        request,
    ))
}

/// The canonical assistant message(s) of a Responses object's `output`, for storing the
/// conversation (reasoning, text and function calls of the turn become one message).
pub fn output_to_chat_messages(response: &Value) -> Vec<Value> {
    response
        .get("output")
        .and_then(Value::as_array)
        .map(|items| output_items_to_messages(items))
        .unwrap_or_default()
}

/// Everything but the output items: the fields OpenAI returns, with the request's settings echoed.
pub(crate) struct Envelope<'a> {
    pub ids: &'a Ids,
    pub created_at: Value,
    /// The upstream's model name; the request's when the upstream gave none.
    pub model: Option<Value>,
    pub status: &'static str,
    pub incomplete_details: Value,
    pub output: Vec<Value>,
    pub usage: Value,
    pub error: Value,
}

pub(crate) fn envelope(e: Envelope<'_>, request: &Value) -> Value {
    let echo = |field: &str, default: Value| -> Value {
        request
            .get(field)
            .filter(|v| !v.is_null())
            .cloned()
            .unwrap_or(default)
    };
    let model = e
        .model
        .filter(|m| m.is_string())
        .unwrap_or_else(|| echo("model", Value::Null));
    let reasoning = json!({
        "effort": request.pointer("/reasoning/effort").cloned().unwrap_or(Value::Null),
        "summary": request.pointer("/reasoning/summary").cloned().unwrap_or(Value::Null),
    });
    let mut out = Map::new();
    out.insert("id".into(), Value::String(e.ids.response()));
    out.insert("object".into(), "response".into());
    out.insert("created_at".into(), e.created_at);
    out.insert("status".into(), e.status.into());
    out.insert("error".into(), e.error);
    out.insert("incomplete_details".into(), e.incomplete_details);
    out.insert("instructions".into(), echo("instructions", Value::Null));
    out.insert(
        "max_output_tokens".into(),
        echo("max_output_tokens", Value::Null),
    );
    out.insert("model".into(), model);
    out.insert("output".into(), Value::Array(e.output));
    out.insert(
        "parallel_tool_calls".into(),
        echo("parallel_tool_calls", json!(true)),
    );
    out.insert(
        "previous_response_id".into(),
        echo("previous_response_id", Value::Null),
    );
    out.insert("reasoning".into(), reasoning);
    out.insert("store".into(), echo("store", json!(true)));
    out.insert("temperature".into(), echo("temperature", json!(1.0)));
    out.insert(
        "text".into(),
        echo("text", json!({"format": {"type": "text"}})),
    );
    out.insert("tool_choice".into(), echo("tool_choice", json!("auto")));
    out.insert("tools".into(), echo("tools", json!([])));
    out.insert("top_p".into(), echo("top_p", json!(1.0)));
    out.insert("truncation".into(), echo("truncation", json!("disabled")));
    out.insert("usage".into(), e.usage);
    out.insert("user".into(), echo("user", Value::Null));
    out.insert("metadata".into(), echo("metadata", json!({})));
    Value::Object(out)
}

/// Response status and `incomplete_details` for a chat finish reason.
pub(crate) fn status_for(finish_reason: Option<&str>) -> (&'static str, Value) {
    match finish_reason {
        Some("length") => ("incomplete", json!({"reason": "max_output_tokens"})),
        Some("content_filter") => ("incomplete", json!({"reason": "content_filter"})),
        _ => ("completed", Value::Null),
    }
}

/// A message item is `incomplete` when the response is.
pub(crate) fn item_status(response_status: &str) -> &'static str {
    match response_status {
        "incomplete" => "incomplete",
        "failed" | "in_progress" => "in_progress",
        _ => "completed",
    }
}

/// A reasoning item; the text goes in `summary` because that is what Responses clients display,
/// and thinking blocks ride along in `encrypted_content` (see [`super::encode_thinking_blocks`]).
pub(crate) fn reasoning_item(id: &str, text: &str, blocks: &[Value]) -> Value {
    let summary: Vec<Value> = if text.is_empty() {
        Vec::new()
    } else {
        vec![summary_part(text)]
    };
    let mut item = Map::new();
    item.insert("id".into(), id.into());
    item.insert("type".into(), "reasoning".into());
    item.insert("summary".into(), Value::Array(summary));
    if let Some(encrypted) = encode_thinking_blocks(blocks) {
        item.insert("encrypted_content".into(), Value::String(encrypted));
    }
    Value::Object(item)
}

pub(crate) fn summary_part(text: &str) -> Value {
    json!({"type": "summary_text", "text": text})
}

pub(crate) fn message_item(id: &str, parts: Vec<Value>, status: &str) -> Value {
    json!({
        "id": id,
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": parts,
    })
}

pub(crate) fn output_text_part(text: &str) -> Value {
    json!({"type": "output_text", "annotations": [], "logprobs": [], "text": text})
}

pub(crate) fn refusal_part(text: &str) -> Value {
    json!({"type": "refusal", "refusal": text})
}

pub(crate) fn function_call_item(
    call_id: &str,
    name: &str,
    arguments: &str,
    status: &str,
) -> Value {
    json!({
        "id": call_item_id(call_id),
        "type": "function_call",
        "status": status,
        "arguments": arguments,
        "call_id": call_id,
        "name": name,
    })
}

/// Canonical usage -> Responses usage. See the module doc of [`super`] for the convention.
pub(crate) fn usage_from_chat(usage: &Value) -> Value {
    if !usage.is_object() {
        return Value::Null;
    }
    let count = |pointer: &str| usage.pointer(pointer).and_then(Value::as_u64).unwrap_or(0);
    let input = count("/prompt_tokens");
    let output = count("/completion_tokens");
    let total = usage
        .get("total_tokens")
        .and_then(Value::as_u64)
        .unwrap_or(input + output);
    json!({
        "input_tokens": input,
        "input_tokens_details": {"cached_tokens": count("/prompt_tokens_details/cached_tokens")},
        "output_tokens": output,
        "output_tokens_details": {"reasoning_tokens": count("/completion_tokens_details/reasoning_tokens")},
        "total_tokens": total,
    })
}

/// The text of a chat message's content: a string, or the `text` of its parts.
fn content_text(content: Option<&Value>) -> String {
    match content {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect(),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::responses::testing::assert_json_eq;

    fn fixture(text: &str) -> Value {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn golden_text_answer() {
        let completion = fixture(include_str!(
            "../../../tests/fixtures/responses/completion_text.json"
        ));
        let request = fixture(include_str!(
            "../../../tests/fixtures/responses/request_text.json"
        ));
        let want = fixture(include_str!(
            "../../../tests/fixtures/responses/response_text.json"
        ));
        assert_json_eq(&from_chat(&completion, &request, None).unwrap(), &want);
    }

    #[test]
    fn golden_reasoning_and_parallel_tool_calls() {
        let completion = fixture(include_str!(
            "../../../tests/fixtures/responses/completion_tools.json"
        ));
        let request = fixture(include_str!(
            "../../../tests/fixtures/responses/request_items.json"
        ));
        let want = fixture(include_str!(
            "../../../tests/fixtures/responses/response_tools.json"
        ));
        assert_json_eq(&from_chat(&completion, &request, None).unwrap(), &want);
    }

    #[test]
    fn length_finish_is_incomplete_with_max_output_tokens() {
        let completion = json!({
            "id": "chatcmpl-len", "object": "chat.completion", "created": 1, "model": "m",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "cut sh"}, "finish_reason": "length"}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 16, "total_tokens": 21}
        });
        let response = from_chat(
            &completion,
            &json!({"model": "m", "max_output_tokens": 16}),
            None,
        )
        .unwrap();
        assert_eq!(response["status"], "incomplete");
        assert_eq!(
            response["incomplete_details"],
            json!({"reason": "max_output_tokens"})
        );
        assert_eq!(response["output"][0]["status"], "incomplete");
        assert_eq!(response["max_output_tokens"], 16);

        let filtered = json!({"id": "x", "choices": [{"message": {"role": "assistant", "content": null}, "finish_reason": "content_filter"}]});
        let response = from_chat(&filtered, &json!({}), None).unwrap();
        assert_eq!(
            response["incomplete_details"],
            json!({"reason": "content_filter"})
        );
        assert_eq!(response["output"], json!([]));
        assert_eq!(response["usage"], Value::Null);
    }

    #[test]
    fn refusals_become_refusal_parts() {
        let completion = json!({"id": "chatcmpl-r", "created": 2, "model": "m", "choices": [{"message":
            {"role": "assistant", "content": null, "refusal": "I can't help with that."}, "finish_reason": "stop"}]});
        let response = from_chat(&completion, &json!({}), None).unwrap();
        assert_eq!(
            response["output"][0]["content"],
            json!([{"type": "refusal", "refusal": "I can't help with that."}])
        );
    }

    #[test]
    fn malformed_completions_are_errors() {
        for bad in [
            json!({}),
            json!({"choices": []}),
            json!({"choices": [{"finish_reason": "stop"}]}),
            json!({"choices": [{"message": {"tool_calls": [{"id": "c", "function": {}}]}}]}),
        ] {
            assert!(
                matches!(
                    from_chat(&bad, &json!({}), None),
                    Err(TranslateError::Malformed(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn caller_id_overrides_the_derived_ids() {
        let completion = fixture(include_str!(
            "../../../tests/fixtures/responses/completion_text.json"
        ));
        let response = from_chat(&completion, &json!({}), Some("resp_stored42")).unwrap();
        assert_eq!(response["id"], "resp_stored42");
        assert_eq!(response["output"][0]["id"], "msg_stored42");
    }

    #[test]
    fn usage_keeps_cached_and_reasoning_counts() {
        let usage = json!({"prompt_tokens": 2006, "completion_tokens": 300, "total_tokens": 2306,
            "prompt_tokens_details": {"cached_tokens": 1920, "cache_creation_tokens": 50},
            "completion_tokens_details": {"reasoning_tokens": 256}});
        assert_json_eq(
            &usage_from_chat(&usage),
            &json!({
                "input_tokens": 2006, "input_tokens_details": {"cached_tokens": 1920},
                "output_tokens": 300, "output_tokens_details": {"reasoning_tokens": 256},
                "total_tokens": 2306
            }),
        );
        let bare = json!({"prompt_tokens": 3, "completion_tokens": 4});
        assert_eq!(usage_from_chat(&bare)["total_tokens"], 7);
    }

    #[test]
    fn output_round_trips_to_one_assistant_message() {
        let completion = fixture(include_str!(
            "../../../tests/fixtures/responses/completion_tools.json"
        ));
        let response = from_chat(&completion, &json!({}), None).unwrap();
        let messages = output_to_chat_messages(&response);
        assert_eq!(messages.len(), 1);
        let want = &completion["choices"][0]["message"];
        for field in [
            "role",
            "content",
            "reasoning_content",
            "x_thinking_blocks",
            "tool_calls",
        ] {
            assert_json_eq(&messages[0][field], &want[field]);
        }
    }

    #[test]
    fn output_of_an_openai_reference_response_becomes_canonical_messages() {
        let response = fixture(include_str!(
            "../../../tests/fixtures/responses/openai_response_function_call.json"
        ));
        let want = fixture(include_str!(
            "../../../tests/fixtures/responses/openai_response_function_call.chat.json"
        ));
        assert_json_eq(&Value::Array(output_to_chat_messages(&response)), &want);
    }
}
