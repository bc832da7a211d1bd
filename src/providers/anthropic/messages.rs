//! Canonical chat messages as Anthropic's `system` blocks and alternating `messages` turns, for
//! [`super::request::from_chat`]: text, images and documents, thinking blocks with their
//! signatures, tool calls and tool results, with every `cache_control` mark carried over. The
//! walk itself is the shared one ([`crate::providers::walk`]); this file says what one message
//! becomes.

use serde_json::{Map, Value, json};

use super::{TranslateError, TranslateOptions, invalid};
use crate::providers::walk::{MessageVisitor, Side, walk};

pub(super) fn convert_messages(
    messages: Option<&Value>,
    opts: &TranslateOptions,
) -> Result<(Vec<Value>, Vec<Value>), TranslateError> {
    let messages = messages
        .and_then(Value::as_array)
        .ok_or_else(|| invalid("messages", "must be an array"))?;
    let walked = walk(messages, &mut Messages { opts })?;
    if walked.turns.is_empty() {
        return Err(invalid(
            "messages",
            "at least one user or assistant message is required",
        ));
    }
    let messages = walked
        .turns
        .into_iter()
        .map(|turn| {
            let role = match turn.side {
                Side::User => "user",
                Side::Assistant => "assistant",
            };
            json!({"role": role, "content": turn.blocks})
        })
        .collect();
    Ok((walked.system, messages))
}

/// Canonical messages as Anthropic content blocks.
struct Messages<'a> {
    opts: &'a TranslateOptions,
}

impl MessageVisitor for Messages<'_> {
    const ROLE_MISSING: &'static str = "must be a string";

    fn system(&mut self, message: &Value, path: &str) -> Result<Vec<Value>, TranslateError> {
        system_blocks(message, path, self.opts)
    }

    fn user(&mut self, message: &Value, path: &str) -> Result<Vec<Value>, TranslateError> {
        user_blocks(
            message.get("content"),
            &format!("{path}.content"),
            self.opts,
        )
    }

    fn assistant(&mut self, message: &Value, path: &str) -> Result<Vec<Value>, TranslateError> {
        assistant_blocks(message, path, self.opts)
    }

    fn tool(&mut self, messages: &[Value], i: usize, path: &str) -> Result<Value, TranslateError> {
        tool_result_block(&messages[i], path, self.opts)
    }

    fn other_role(&mut self, role: &str, path: &str) -> Result<(), TranslateError> {
        if role == "function" {
            return self.opts.reject(
                &format!("{path}.role"),
                "legacy function messages are not translated; use tool",
            );
        }
        Err(invalid(
            format!("{path}.role"),
            "must be system, developer, user, assistant or tool",
        ))
    }
}

pub(super) fn copy_cache_control(from: &Value, to: &mut Map<String, Value>) {
    if let Some(cc) = from.get("cache_control").filter(|c| !c.is_null()) {
        to.insert("cache_control".into(), cc.clone());
    }
}

fn text_block(text: &str, part: Option<&Value>) -> Value {
    let mut block = Map::new();
    block.insert("type".into(), json!("text"));
    block.insert("text".into(), json!(text));
    if let Some(part) = part {
        copy_cache_control(part, &mut block);
    }
    Value::Object(block)
}

fn system_blocks(
    msg: &Value,
    path: &str,
    opts: &TranslateOptions,
) -> Result<Vec<Value>, TranslateError> {
    let path = format!("{path}.content");
    match msg.get("content") {
        Some(Value::String(s)) if s.is_empty() => Ok(vec![]),
        Some(Value::String(s)) => Ok(vec![text_block(s, None)]),
        Some(Value::Array(parts)) => {
            let mut blocks = Vec::new();
            for (j, part) in parts.iter().enumerate() {
                match (part.get("type").and_then(Value::as_str), part.get("text")) {
                    (Some("text"), Some(Value::String(t))) if t.is_empty() => {}
                    (Some("text"), Some(Value::String(t))) => {
                        blocks.push(text_block(t, Some(part)))
                    }
                    _ => opts.reject(
                        &format!("{path}[{j}]"),
                        "Anthropic system prompts take text only",
                    )?,
                }
            }
            Ok(blocks)
        }
        _ => Err(invalid(&path, "must be a string or an array of parts")),
    }
}

fn user_blocks(
    content: Option<&Value>,
    path: &str,
    opts: &TranslateOptions,
) -> Result<Vec<Value>, TranslateError> {
    match content {
        None | Some(Value::Null) => Ok(vec![]),
        Some(Value::String(s)) if s.is_empty() => Ok(vec![]),
        Some(Value::String(s)) => Ok(vec![text_block(s, None)]),
        Some(Value::Array(parts)) => {
            let mut blocks = Vec::new();
            for (j, part) in parts.iter().enumerate() {
                if let Some(block) = content_part(part, &format!("{path}[{j}]"), opts)? {
                    blocks.push(block);
                }
            }
            Ok(blocks)
        }
        Some(_) => Err(invalid(path, "must be a string or an array of parts")),
    }
}

/// One user (or tool result) content part as an Anthropic block; `None` when it is empty or
/// dropped as unsupported.
fn content_part(
    part: &Value,
    path: &str,
    opts: &TranslateOptions,
) -> Result<Option<Value>, TranslateError> {
    let mut block = Map::new();
    match part.get("type").and_then(Value::as_str) {
        Some("text") => {
            let text = part
                .get("text")
                .and_then(Value::as_str)
                .ok_or_else(|| invalid(format!("{path}.text"), "must be a string"))?;
            if text.is_empty() {
                // Anthropic rejects empty text blocks.
                return Ok(None);
            }
            block.insert("type".into(), json!("text"));
            block.insert("text".into(), json!(text));
        }
        Some("image_url") => {
            let image = part.get("image_url");
            let url = image
                .and_then(|i| i.get("url").or(Some(i)))
                .and_then(Value::as_str)
                .ok_or_else(|| invalid(format!("{path}.image_url.url"), "must be a string"))?;
            block.insert("type".into(), json!("image"));
            block.insert(
                "source".into(),
                media_source(url, &format!("{path}.image_url.url"))?,
            );
        }
        Some("file") => {
            let file = part.get("file");
            let Some(data) = file
                .and_then(|f| f.get("file_data"))
                .and_then(Value::as_str)
            else {
                opts.reject(
                    &format!("{path}.file"),
                    "only inline file_data can be translated, not file_id",
                )?;
                return Ok(None);
            };
            let source = media_source(data, &format!("{path}.file.file_data"))?;
            if source.get("type").and_then(Value::as_str) != Some("base64") {
                return Err(invalid(
                    format!("{path}.file.file_data"),
                    "must be a base64 data URL",
                ));
            }
            block.insert("type".into(), json!("document"));
            block.insert("source".into(), source);
        }
        _ => {
            opts.reject(path, "Anthropic takes text, image and PDF parts only")?;
            return Ok(None);
        }
    }
    copy_cache_control(part, &mut block);
    Ok(Some(Value::Object(block)))
}

/// `data:<media type>;base64,<data>` -> a base64 source; any other URL -> a URL source.
fn media_source(url: &str, path: &str) -> Result<Value, TranslateError> {
    let Some(rest) = url.strip_prefix("data:") else {
        return Ok(json!({"type": "url", "url": url}));
    };
    let (meta, data) = rest
        .split_once(',')
        .ok_or_else(|| invalid(path, "data URL has no comma"))?;
    let media_type = meta
        .strip_suffix(";base64")
        .filter(|m| !m.is_empty())
        .ok_or_else(|| invalid(path, "data URL must be data:<media type>;base64,<data>"))?;
    Ok(json!({"type": "base64", "media_type": media_type, "data": data}))
}

fn assistant_blocks(
    msg: &Value,
    path: &str,
    opts: &TranslateOptions,
) -> Result<Vec<Value>, TranslateError> {
    let mut blocks = Vec::new();
    // Thinking first: Anthropic requires the turn's thinking blocks, unmodified, before its
    // text and tool_use blocks.
    if let Some(thinking) = msg.get("x_thinking_blocks").filter(|t| !t.is_null()) {
        let list = thinking
            .as_array()
            .ok_or_else(|| invalid(format!("{path}.x_thinking_blocks"), "must be an array"))?;
        for (k, block) in list.iter().enumerate() {
            blocks.push(thinking_block(
                block,
                &format!("{path}.x_thinking_blocks[{k}]"),
            )?);
        }
    }
    let content_path = format!("{path}.content");
    match msg.get("content") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) if s.is_empty() => {}
        Some(Value::String(s)) => blocks.push(text_block(s, None)),
        Some(Value::Array(parts)) => {
            for (j, part) in parts.iter().enumerate() {
                let key = match part.get("type").and_then(Value::as_str) {
                    Some("text") => "text",
                    Some("refusal") => "refusal",
                    _ => {
                        opts.reject(
                            &format!("{content_path}[{j}]"),
                            "assistant content takes text parts only",
                        )?;
                        continue;
                    }
                };
                let text = part.get(key).and_then(Value::as_str).ok_or_else(|| {
                    invalid(format!("{content_path}[{j}].{key}"), "must be a string")
                })?;
                if !text.is_empty() {
                    blocks.push(text_block(text, Some(part)));
                }
            }
        }
        Some(_) => {
            return Err(invalid(
                &content_path,
                "must be a string or an array of parts",
            ));
        }
    }
    if let Some(calls) = msg.get("tool_calls").filter(|c| !c.is_null()) {
        let calls = calls
            .as_array()
            .ok_or_else(|| invalid(format!("{path}.tool_calls"), "must be an array"))?;
        for (k, call) in calls.iter().enumerate() {
            blocks.push(tool_use_block(call, &format!("{path}.tool_calls[{k}]"))?);
        }
    }
    Ok(blocks)
}

fn thinking_block(block: &Value, path: &str) -> Result<Value, TranslateError> {
    let field = |name: &str| {
        block
            .get(name)
            .and_then(Value::as_str)
            .ok_or_else(|| invalid(format!("{path}.{name}"), "must be a string"))
    };
    match block.get("type").and_then(Value::as_str) {
        Some("thinking") => Ok(json!({
            "type": "thinking",
            "thinking": field("thinking")?,
            "signature": field("signature")?,
        })),
        Some("redacted_thinking") => Ok(json!({
            "type": "redacted_thinking",
            "data": field("data")?,
        })),
        _ => Err(invalid(
            format!("{path}.type"),
            "must be thinking or redacted_thinking",
        )),
    }
}

fn tool_use_block(call: &Value, path: &str) -> Result<Value, TranslateError> {
    let id = call
        .get("id")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid(format!("{path}.id"), "must be a string"))?;
    let function = call
        .get("function")
        .ok_or_else(|| invalid(format!("{path}.function"), "is required"))?;
    let name = function
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid(format!("{path}.function.name"), "must be a string"))?;
    let args_path = format!("{path}.function.arguments");
    let args = function
        .get("arguments")
        .and_then(Value::as_str)
        .unwrap_or("");
    let input = if args.trim().is_empty() {
        json!({})
    } else {
        let parsed: Value = serde_json::from_str(args)
            .map_err(|e| invalid(&args_path, format!("is not valid JSON ({e})")))?;
        if !parsed.is_object() {
            return Err(invalid(&args_path, "must encode a JSON object"));
        }
        parsed
    };
    let mut block = Map::new();
    block.insert("type".into(), json!("tool_use"));
    block.insert("id".into(), json!(id));
    block.insert("name".into(), json!(name));
    block.insert("input".into(), input);
    copy_cache_control(call, &mut block);
    Ok(Value::Object(block))
}

fn tool_result_block(
    msg: &Value,
    path: &str,
    opts: &TranslateOptions,
) -> Result<Value, TranslateError> {
    let id = msg
        .get("tool_call_id")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid(format!("{path}.tool_call_id"), "must be a string"))?;
    let mut block = Map::new();
    block.insert("type".into(), json!("tool_result"));
    block.insert("tool_use_id".into(), json!(id));
    match msg.get("content") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => {
            if !s.is_empty() {
                block.insert("content".into(), json!(s));
            }
        }
        Some(Value::Array(_)) => {
            let parts = user_blocks(msg.get("content"), &format!("{path}.content"), opts)?;
            if !parts.is_empty() {
                block.insert("content".into(), Value::Array(parts));
            }
        }
        Some(_) => {
            return Err(invalid(
                format!("{path}.content"),
                "must be a string or an array of parts",
            ));
        }
    }
    if msg.get("x_is_error").and_then(Value::as_bool) == Some(true) {
        block.insert("is_error".into(), json!(true));
    }
    copy_cache_control(msg, &mut block);
    Ok(Value::Object(block))
}
