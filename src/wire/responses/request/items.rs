//! Responses items -> canonical chat messages, for `input`, `instructions` and a response's
//! `output`. Keeps the invariant of the folder: the reasoning, text and function calls of one
//! assistant turn become ONE assistant message ([`Turn`]), in that order.

use serde_json::{Map, Value, json};

use super::{Cx, invalid, required_str};
use crate::wire::responses::{TranslateError, TranslateOptions, decode_thinking_blocks};

/// The assistant turn being assembled from consecutive reasoning, message and function_call items.
#[derive(Default)]
struct Turn {
    text: Option<String>,
    refusal: Option<String>,
    tool_calls: Vec<Value>,
    reasoning: Vec<String>,
    blocks: Vec<Value>,
}

impl Turn {
    fn has_output(&self) -> bool {
        self.text.is_some() || self.refusal.is_some() || !self.tool_calls.is_empty()
    }

    /// The assistant message, or `None` for a turn that is only reasoning (no provider accepts an
    /// assistant message with nothing in it, and the reasoning of a turn without output is moot).
    fn into_message(self) -> Option<Value> {
        if !self.has_output() {
            return None;
        }
        let mut message = Map::new();
        message.insert("role".into(), "assistant".into());
        message.insert(
            "content".into(),
            self.text.map_or(Value::Null, Value::String),
        );
        if let Some(refusal) = self.refusal {
            message.insert("refusal".into(), Value::String(refusal));
        }
        if !self.reasoning.is_empty() {
            message.insert(
                "reasoning_content".into(),
                Value::String(self.reasoning.join("\n\n")),
            );
        }
        if !self.blocks.is_empty() {
            message.insert("x_thinking_blocks".into(), Value::Array(self.blocks));
        }
        if !self.tool_calls.is_empty() {
            message.insert("tool_calls".into(), Value::Array(self.tool_calls));
        }
        Some(Value::Object(message))
    }
}

fn flush(turn: &mut Option<Turn>, messages: &mut Vec<Value>) {
    if let Some(message) = turn.take().and_then(Turn::into_message) {
        messages.push(message);
    }
}

/// Output items of a response -> canonical messages, dropping what has no chat equivalent.
pub(crate) fn output_items_to_messages(items: &[Value]) -> Vec<Value> {
    let cx = Cx {
        opts: TranslateOptions {
            drop_unsupported: true,
        },
    };
    items_to_messages(items, "output", &cx).unwrap_or_default()
}

/// Responses input items -> canonical messages. `prefix` names the field for errors (`input`,
/// `instructions`).
pub(super) fn items_to_messages(
    items: &[Value],
    prefix: &str,
    cx: &Cx,
) -> Result<Vec<Value>, TranslateError> {
    let mut messages = Vec::new();
    let mut turn: Option<Turn> = None;
    for (i, item) in items.iter().enumerate() {
        let param = format!("{prefix}[{i}]");
        let kind = match item.get("type").and_then(Value::as_str) {
            Some(kind) => kind,
            // EasyInputMessage: `{role, content}` without a type.
            None if item.get("role").is_some() => "message",
            None => return Err(invalid(&param, "needs a type or a role")),
        };
        match kind {
            "message" => {
                let role = item.get("role").and_then(Value::as_str).unwrap_or("");
                match role {
                    "user" | "system" | "developer" => {
                        flush(&mut turn, &mut messages);
                        let content = item.get("content").unwrap_or(&Value::Null);
                        if let Some(content) = input_content(content, &param, cx)? {
                            messages.push(json!({"role": role, "content": content}));
                        }
                    }
                    "assistant" => {
                        if turn.as_ref().is_some_and(Turn::has_output) {
                            flush(&mut turn, &mut messages);
                        }
                        let current = turn.get_or_insert_with(Turn::default);
                        let content = item.get("content").unwrap_or(&Value::Null);
                        assistant_content(content, &param, current, cx)?;
                    }
                    other => {
                        return Err(invalid(
                            &format!("{param}.role"),
                            &format!(
                                "expected user, assistant, system or developer, got {other:?}"
                            ),
                        ));
                    }
                }
            }
            "function_call" => {
                let call_id = required_str(item, "call_id", &param)?;
                let name = required_str(item, "name", &param)?;
                let arguments = item.get("arguments").and_then(Value::as_str).unwrap_or("");
                turn.get_or_insert_with(Turn::default)
                    .tool_calls
                    .push(json!({
                        "id": call_id,
                        "type": "function",
                        "function": {"name": name, "arguments": arguments},
                    }));
            }
            "function_call_output" => {
                flush(&mut turn, &mut messages);
                let call_id = required_str(item, "call_id", &param)?;
                let output = tool_output(item.get("output"), &param, cx)?;
                messages.push(json!({"role": "tool", "tool_call_id": call_id, "content": output}));
            }
            "reasoning" => {
                if turn.as_ref().is_some_and(Turn::has_output) {
                    flush(&mut turn, &mut messages);
                }
                reasoning_item(item, &mut turn);
            }
            "item_reference" => cx.unsupported(
                &param,
                "item references point into OpenAI's store; send the item itself",
            )?,
            other => cx.unsupported(
                &param,
                &format!("{other:?} items belong to OpenAI's built-in tools"),
            )?,
        }
    }
    flush(&mut turn, &mut messages);
    Ok(messages)
}

/// Summary text and reasoning text become `reasoning_content`; our own encrypted content becomes
/// `x_thinking_blocks`; another vendor's encrypted content is dropped (no other provider can read it).
fn reasoning_item(item: &Value, turn: &mut Option<Turn>) {
    let texts: Vec<String> = ["summary", "content"]
        .iter()
        .filter_map(|field| item.get(*field).and_then(Value::as_array))
        .flatten()
        .filter_map(|part| part.get("text").and_then(Value::as_str))
        .filter(|text| !text.is_empty())
        .map(str::to_string)
        .collect();
    let blocks = item
        .get("encrypted_content")
        .and_then(Value::as_str)
        .and_then(decode_thinking_blocks)
        .unwrap_or_default();
    if texts.is_empty() && blocks.is_empty() {
        return;
    }
    let current = turn.get_or_insert_with(Turn::default);
    current.reasoning.extend(texts);
    current.blocks.extend(blocks);
}

/// Content of a user/system/developer message. `None` when every part was dropped.
fn input_content(content: &Value, param: &str, cx: &Cx) -> Result<Option<Value>, TranslateError> {
    let parts = match content {
        Value::String(_) => return Ok(Some(content.clone())),
        Value::Array(parts) => parts,
        _ => {
            return Err(invalid(
                &format!("{param}.content"),
                "must be a string or an array of content parts",
            ));
        }
    };
    let mut out = Vec::new();
    for (j, part) in parts.iter().enumerate() {
        let param = format!("{param}.content[{j}]");
        match part.get("type").and_then(Value::as_str).unwrap_or("") {
            "input_text" | "output_text" | "text" => {
                let text = required_str(part, "text", &param)?;
                out.push(json!({"type": "text", "text": text}));
            }
            "input_image" => match (
                part.get("image_url").and_then(Value::as_str),
                part.get("file_id").and_then(Value::as_str),
            ) {
                (Some(url), _) => {
                    let mut image = Map::new();
                    image.insert("url".into(), Value::String(url.to_string()));
                    if let Some(detail) = part.get("detail").filter(|d| !d.is_null()) {
                        image.insert("detail".into(), detail.clone());
                    }
                    out.push(json!({"type": "image_url", "image_url": image}));
                }
                (None, Some(_)) => cx.unsupported(
                    &format!("{param}.file_id"),
                    "file ids refer to OpenAI's file store; send image_url (an https or data: URL)",
                )?,
                (None, None) => return Err(invalid(&param, "input_image needs image_url")),
            },
            "input_file" => cx.unsupported(&param, "file inputs are only available from OpenAI")?,
            other => cx.unsupported(
                &param,
                &format!("content part type {other:?} has no chat equivalent"),
            )?,
        }
    }
    Ok(match out.len() {
        0 => None,
        1 if out[0]["type"] == "text" => Some(out[0]["text"].clone()),
        _ => Some(Value::Array(out)),
    })
}

/// Content of an assistant message item, added to the current turn.
fn assistant_content(
    content: &Value,
    param: &str,
    turn: &mut Turn,
    cx: &Cx,
) -> Result<(), TranslateError> {
    let parts = match content {
        Value::String(text) => {
            turn.text.get_or_insert_with(String::new).push_str(text);
            return Ok(());
        }
        Value::Array(parts) => parts,
        _ => {
            return Err(invalid(
                &format!("{param}.content"),
                "must be a string or an array of content parts",
            ));
        }
    };
    for (j, part) in parts.iter().enumerate() {
        let param = format!("{param}.content[{j}]");
        match part.get("type").and_then(Value::as_str).unwrap_or("") {
            "output_text" | "input_text" | "text" => {
                let text = required_str(part, "text", &param)?;
                turn.text.get_or_insert_with(String::new).push_str(text);
            }
            "refusal" => {
                let refusal = required_str(part, "refusal", &param)?;
                turn.refusal
                    .get_or_insert_with(String::new)
                    .push_str(refusal);
            }
            other => cx.unsupported(
                &param,
                &format!("assistant content part type {other:?} has no chat equivalent"),
            )?,
        }
    }
    Ok(())
}

/// `function_call_output.output`: a string, or text/image/file parts of which chat tool messages
/// can carry only the text.
fn tool_output(output: Option<&Value>, param: &str, cx: &Cx) -> Result<Value, TranslateError> {
    let parts = match output {
        Some(Value::String(text)) => return Ok(Value::String(text.clone())),
        Some(Value::Array(parts)) => parts,
        _ => {
            return Err(invalid(
                &format!("{param}.output"),
                "must be a string or an array of content parts",
            ));
        }
    };
    let mut out = Vec::new();
    for (j, part) in parts.iter().enumerate() {
        let param = format!("{param}.output[{j}]");
        match part.get("type").and_then(Value::as_str).unwrap_or("") {
            "input_text" | "output_text" | "text" => {
                let text = required_str(part, "text", &param)?;
                out.push(json!({"type": "text", "text": text}));
            }
            other => cx.unsupported(
                &param,
                &format!("chat tool results carry only text, not {other:?}"),
            )?,
        }
    }
    Ok(match out.len() {
        0 => Value::String(String::new()),
        1 => out[0]["text"].clone(),
        _ => Value::Array(out),
    })
}
