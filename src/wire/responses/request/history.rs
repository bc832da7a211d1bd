//! The conversation helpers for `previous_response_id`: [`prepend_history`] puts stored canonical
//! messages back in front of a new request as Responses items, [`history_to_store`] picks what to
//! store after the answer, and [`chat_messages_to_items`] is the exact inverse of the item
//! conversion in `items.rs` for the messages it produces, so a stored conversation round-trips.

use serde_json::{Map, Value, json};

use super::{Cx, instructions_to_messages};
use crate::wire::responses::response::output_to_chat_messages;
use crate::wire::responses::{TranslateOptions, encode_thinking_blocks};

/// Puts a stored conversation (canonical messages, as [`history_to_store`] gave them) in front of
/// the new request's input, for `previous_response_id`. `req` is the Responses request; the
/// result is a Responses request for [`to_chat`](super::to_chat). The new `instructions` stay
/// first and the old ones are not carried over, as OpenAI documents.
pub fn prepend_history(previous: &[Value], req: Value) -> Value {
    let Value::Object(mut body) = req else {
        return req;
    };
    let mut items = chat_messages_to_items(previous);
    match body.remove("input") {
        None | Some(Value::Null) => {}
        Some(Value::String(text)) => {
            items.push(json!({"type": "message", "role": "user", "content": text}));
        }
        Some(Value::Array(input)) => items.extend(input),
        // Kept as an item so `to_chat` names it in its error.
        Some(other) => items.push(other),
    }
    body.insert("input".into(), Value::Array(items));
    Value::Object(body)
}

/// The canonical messages to store under the new response id: the request's messages without its
/// instructions (they are not carried over), then the answer's. `responses_req` is the Responses
/// request (after [`prepend_history`]), `chat_req` what [`to_chat`](super::to_chat) made of it.
pub fn history_to_store(responses_req: &Value, chat_req: &Value, response: &Value) -> Vec<Value> {
    let skip = match responses_req.get("instructions") {
        Some(instructions) => {
            let cx = Cx {
                opts: TranslateOptions {
                    drop_unsupported: true,
                },
            };
            instructions_to_messages(instructions, &cx).map_or(0, |m| m.len())
        }
        None => 0,
    };
    let mut messages: Vec<Value> = chat_req
        .get("messages")
        .and_then(Value::as_array)
        .map(|m| m.iter().skip(skip).cloned().collect())
        .unwrap_or_default();
    messages.extend(output_to_chat_messages(response));
    messages
}

/// Canonical chat messages -> Responses input items: the inverse of the item conversion in
/// [`to_chat`](super::to_chat). Content parts with no Responses equivalent are passed as they
/// are, so that `to_chat` rejects them by name rather than losing them.
pub fn chat_messages_to_items(messages: &[Value]) -> Vec<Value> {
    let mut items = Vec::new();
    for message in messages {
        let role = message.get("role").and_then(Value::as_str).unwrap_or("");
        match role {
            "assistant" => assistant_to_items(message, &mut items),
            "tool" => {
                let output = match message.get("content") {
                    Some(Value::Array(parts)) => Value::Array(
                        parts
                            .iter()
                            .map(|p| chat_part_to_input(p, "input_text"))
                            .collect(),
                    ),
                    Some(Value::String(text)) => Value::String(text.clone()),
                    _ => Value::String(String::new()),
                };
                items.push(json!({
                    "type": "function_call_output",
                    "call_id": message.get("tool_call_id").cloned().unwrap_or(Value::Null),
                    "output": output,
                }));
            }
            _ => {
                let content = match message.get("content") {
                    Some(Value::Array(parts)) => Value::Array(
                        parts
                            .iter()
                            .map(|p| chat_part_to_input(p, "input_text"))
                            .collect(),
                    ),
                    Some(other) => other.clone(),
                    None => Value::String(String::new()),
                };
                items.push(json!({"type": "message", "role": role, "content": content}));
            }
        }
    }
    items
}

fn assistant_to_items(message: &Value, items: &mut Vec<Value>) {
    let reasoning = message
        .get("reasoning_content")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty());
    let blocks = message
        .get("x_thinking_blocks")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    if reasoning.is_some() || !blocks.is_empty() {
        let mut item = Map::new();
        item.insert("type".into(), "reasoning".into());
        let summary: Vec<Value> = reasoning
            .map(|text| json!({"type": "summary_text", "text": text}))
            .into_iter()
            .collect();
        item.insert("summary".into(), Value::Array(summary));
        if let Some(encrypted) = encode_thinking_blocks(blocks) {
            item.insert("encrypted_content".into(), Value::String(encrypted));
        }
        items.push(Value::Object(item));
    }
    let mut parts = match message.get("content") {
        Some(Value::String(text)) => vec![json!({"type": "output_text", "text": text})],
        Some(Value::Array(parts)) => parts
            .iter()
            .map(|p| chat_part_to_input(p, "output_text"))
            .collect(),
        _ => Vec::new(),
    };
    if let Some(refusal) = message.get("refusal").and_then(Value::as_str) {
        parts.push(json!({"type": "refusal", "refusal": refusal}));
    }
    if !parts.is_empty() {
        items.push(json!({"type": "message", "role": "assistant", "content": parts}));
    }
    for call in message
        .get("tool_calls")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        items.push(json!({
            "type": "function_call",
            "call_id": call.get("id").cloned().unwrap_or(Value::Null),
            "name": call.pointer("/function/name").cloned().unwrap_or(Value::Null),
            "arguments": call.pointer("/function/arguments").cloned().unwrap_or(json!("")),
        }));
    }
}

/// A chat content part as a Responses content part; `text_type` is `input_text` for inputs and
/// `output_text` for assistant messages.
fn chat_part_to_input(part: &Value, text_type: &str) -> Value {
    match part.get("type").and_then(Value::as_str) {
        Some("text") => {
            json!({"type": text_type, "text": part.get("text").cloned().unwrap_or(json!(""))})
        }
        Some("image_url") => {
            let mut image = Map::new();
            image.insert("type".into(), "input_image".into());
            let url = match part.get("image_url") {
                Some(Value::Object(o)) => o.get("url").cloned(),
                Some(Value::String(s)) => Some(Value::String(s.clone())),
                _ => None,
            };
            image.insert("image_url".into(), url.unwrap_or(Value::Null));
            if let Some(detail) = part.pointer("/image_url/detail") {
                image.insert("detail".into(), detail.clone());
            }
            Value::Object(image)
        }
        _ => part.clone(),
    }
}
