//! Responses request -> canonical chat request, and the conversation helpers for
//! `previous_response_id`. Pure functions; the mapping table is in the module doc of
//! [`super`]. Who calls: the `/v1/responses` route, for every provider but OpenAI itself.
//!
//! Invariant: an assistant turn (reasoning, text, function calls) becomes ONE assistant message,
//! in that order, because the canonical form (and Anthropic behind it) needs the thinking and the
//! tool calls of a turn together; [`chat_messages_to_items`] is the exact inverse for the messages
//! this module produces, so a stored conversation round-trips.

use serde_json::{Map, Value, json};

use super::response::output_to_chat_messages;
use super::{TranslateError, TranslateOptions, decode_thinking_blocks, encode_thinking_blocks};

/// Translates a Responses `POST /v1/responses` body into a canonical chat completions body.
/// The model name is kept as the client sent it (the pipeline rewrites it for the upstream).
pub fn to_chat(req: &Value, opts: &TranslateOptions) -> Result<Value, TranslateError> {
    let Some(body) = req.as_object() else {
        return Err(invalid("body", "must be a JSON object"));
    };
    let cx = Cx { opts: *opts };
    let model = body
        .get("model")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("model", "is required and must be a string"))?;

    let mut messages = Vec::new();
    if let Some(instructions) = body.get("instructions") {
        messages.extend(instructions_to_messages(instructions, &cx)?);
    }
    match body.get("input") {
        None | Some(Value::Null) => {}
        Some(Value::String(text)) => messages.push(json!({"role": "user", "content": text})),
        Some(Value::Array(items)) => messages.extend(items_to_messages(items, "input", &cx)?),
        Some(_) => return Err(invalid("input", "must be a string or an array of items")),
    }
    if messages.is_empty() {
        return Err(invalid("input", "must contain at least one message"));
    }

    let mut out = Map::new();
    out.insert("model".into(), Value::String(model.to_string()));
    out.insert("messages".into(), Value::Array(messages));

    for (key, value) in body {
        match key.as_str() {
            // Handled above, or below because they depend on each other.
            "model"
            | "input"
            | "instructions"
            | "tools"
            | "tool_choice"
            | "parallel_tool_calls"
            | "user"
            | "safety_identifier" => {}
            "stream" => {
                if !value.is_null() {
                    out.insert("stream".into(), value.clone());
                }
                // The Responses stream always ends with usage, so always ask for it.
                if value.as_bool() == Some(true) {
                    out.insert("stream_options".into(), json!({"include_usage": true}));
                }
            }
            "temperature" | "top_p" => {
                if !value.is_null() {
                    out.insert(key.clone(), value.clone());
                }
            }
            "max_output_tokens" => {
                if !value.is_null() {
                    out.insert("max_completion_tokens".into(), value.clone());
                }
            }
            "reasoning" => reasoning(value, &mut out)?,
            "text" => text_config(value, &mut out)?,
            // Proxy concerns (storage, echo), never sent upstream.
            "metadata" | "store" | "previous_response_id" | "include" => {}
            // Hints with no effect on the answer: cache routing, price tier, a cap on built-in
            // tool calls (built-in tools are rejected anyway), stream obfuscation.
            "prompt_cache_key" | "service_tier" | "max_tool_calls" | "stream_options" => {}
            "background" => {
                if value.as_bool() == Some(true) {
                    cx.unsupported("background", "background responses need OpenAI's store")?;
                }
            }
            "conversation" | "prompt" => {
                if !value.is_null() {
                    cx.unsupported(key, "refers to objects stored at OpenAI")?;
                }
            }
            "truncation" => match value.as_str() {
                None | Some("disabled") => {}
                Some("auto") => cx.unsupported(
                    "truncation",
                    "automatic truncation is only available from OpenAI",
                )?,
                Some(other) => {
                    return Err(invalid(
                        "truncation",
                        &format!("expected \"auto\" or \"disabled\", got {other:?}"),
                    ));
                }
            },
            "top_logprobs" => {
                if value.as_u64().is_some_and(|n| n > 0) {
                    cx.unsupported("top_logprobs", "log probabilities are not translated")?;
                }
            }
            // Unknown parameters pass through, as on the chat route.
            _ => {
                out.insert(key.clone(), value.clone());
            }
        }
    }

    let user = [body.get("user"), body.get("safety_identifier")]
        .into_iter()
        .flatten()
        .find(|v| v.is_string());
    if let Some(user) = user {
        out.insert("user".into(), user.clone());
    }
    tools(body, &mut out, &cx)?;
    Ok(Value::Object(out))
}

/// Puts a stored conversation (canonical messages, as [`history_to_store`] gave them) in front of
/// the new request's input, for `previous_response_id`. `req` is the Responses request; the
/// result is a Responses request for [`to_chat`]. The new `instructions` stay first and the old
/// ones are not carried over, as OpenAI documents.
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
/// request (after [`prepend_history`]), `chat_req` what [`to_chat`] made of it.
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
/// [`to_chat`]. Content parts with no Responses equivalent are passed as they are, so that
/// `to_chat` rejects them by name rather than losing them.
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

/// Options and the drop-or-reject decision.
struct Cx {
    opts: TranslateOptions,
}

impl Cx {
    /// `Ok(())` means "drop it and go on"; otherwise the request is rejected naming `param`.
    fn unsupported(&self, param: &str, message: &str) -> Result<(), TranslateError> {
        if self.opts.drop_unsupported {
            Ok(())
        } else {
            Err(TranslateError::Unsupported {
                param: param.to_string(),
                message: message.to_string(),
            })
        }
    }
}

fn invalid(param: &str, message: &str) -> TranslateError {
    TranslateError::Invalid {
        param: param.to_string(),
        message: message.to_string(),
    }
}

fn instructions_to_messages(instructions: &Value, cx: &Cx) -> Result<Vec<Value>, TranslateError> {
    match instructions {
        Value::Null => Ok(Vec::new()),
        Value::String(text) if text.is_empty() => Ok(Vec::new()),
        Value::String(text) => Ok(vec![json!({"role": "system", "content": text})]),
        Value::Array(items) => items_to_messages(items, "instructions", cx),
        _ => Err(invalid(
            "instructions",
            "must be a string or an array of items",
        )),
    }
}

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
fn items_to_messages(items: &[Value], prefix: &str, cx: &Cx) -> Result<Vec<Value>, TranslateError> {
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

fn required_str<'a>(item: &'a Value, field: &str, param: &str) -> Result<&'a str, TranslateError> {
    item.get(field).and_then(Value::as_str).ok_or_else(|| {
        invalid(
            &format!("{param}.{field}"),
            "is required and must be a string",
        )
    })
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

fn reasoning(value: &Value, out: &mut Map<String, Value>) -> Result<(), TranslateError> {
    match value {
        Value::Null => Ok(()),
        Value::Object(reasoning) => {
            if let Some(effort) = reasoning.get("effort").filter(|e| !e.is_null()) {
                if !effort.is_string() {
                    return Err(invalid("reasoning.effort", "must be a string"));
                }
                out.insert("reasoning_effort".into(), effort.clone());
            }
            Ok(())
        }
        _ => Err(invalid("reasoning", "must be an object")),
    }
}

fn text_config(value: &Value, out: &mut Map<String, Value>) -> Result<(), TranslateError> {
    let config = match value {
        Value::Null => return Ok(()),
        Value::Object(config) => config,
        _ => return Err(invalid("text", "must be an object")),
    };
    if let Some(format) = config.get("format").filter(|f| !f.is_null()) {
        match format.get("type").and_then(Value::as_str) {
            Some("text") => {}
            Some("json_object") => {
                out.insert("response_format".into(), json!({"type": "json_object"}));
            }
            Some("json_schema") => {
                let name = format
                    .get("name")
                    .and_then(Value::as_str)
                    .ok_or_else(|| invalid("text.format.name", "is required for json_schema"))?;
                let mut schema = Map::new();
                schema.insert("name".into(), Value::String(name.to_string()));
                for field in ["description", "schema", "strict"] {
                    if let Some(v) = format.get(field).filter(|v| !v.is_null()) {
                        schema.insert(field.into(), v.clone());
                    }
                }
                out.insert(
                    "response_format".into(),
                    json!({"type": "json_schema", "json_schema": schema}),
                );
            }
            other => {
                return Err(invalid(
                    "text.format.type",
                    &format!("expected text, json_object or json_schema, got {other:?}"),
                ));
            }
        }
    }
    if let Some(verbosity) = config.get("verbosity").filter(|v| !v.is_null()) {
        out.insert("verbosity".into(), verbosity.clone());
    }
    Ok(())
}

/// `tools`, `tool_choice` and `parallel_tool_calls`; the last two are sent only with tools, since
/// chat rejects them alone (and they would be moot once built-in tools are dropped).
fn tools(
    body: &Map<String, Value>,
    out: &mut Map<String, Value>,
    cx: &Cx,
) -> Result<(), TranslateError> {
    let mut tools = Vec::new();
    match body.get("tools") {
        None | Some(Value::Null) => {}
        Some(Value::Array(list)) => {
            for (i, tool) in list.iter().enumerate() {
                let param = format!("tools[{i}]");
                match tool.get("type").and_then(Value::as_str).unwrap_or("") {
                    "function" => {
                        let name = required_str(tool, "name", &param)?;
                        let mut function = Map::new();
                        function.insert("name".into(), Value::String(name.to_string()));
                        // `strict` is passed only when set: Responses defaults it to true, chat to
                        // false, and most providers ignore it or reject loose schemas under it.
                        for field in ["description", "parameters", "strict"] {
                            if let Some(v) = tool.get(field).filter(|v| !v.is_null()) {
                                function.insert(field.into(), v.clone());
                            }
                        }
                        tools.push(json!({"type": "function", "function": function}));
                    }
                    other => cx.unsupported(
                        &param,
                        &format!("built-in tool {other:?} is only available from OpenAI"),
                    )?,
                }
            }
        }
        Some(_) => return Err(invalid("tools", "must be an array")),
    }
    let choice = match body.get("tool_choice") {
        None | Some(Value::Null) => None,
        Some(choice) => tool_choice(choice, cx)?,
    };
    if tools.is_empty() {
        return Ok(());
    }
    out.insert("tools".into(), Value::Array(tools));
    if let Some(choice) = choice {
        out.insert("tool_choice".into(), choice);
    }
    if let Some(parallel) = body.get("parallel_tool_calls").filter(|p| !p.is_null()) {
        out.insert("parallel_tool_calls".into(), parallel.clone());
    }
    Ok(())
}

fn tool_choice(choice: &Value, cx: &Cx) -> Result<Option<Value>, TranslateError> {
    if let Some(mode) = choice.as_str() {
        return match mode {
            "none" | "auto" | "required" => Ok(Some(choice.clone())),
            other => Err(invalid(
                "tool_choice",
                &format!("expected none, auto or required, got {other:?}"),
            )),
        };
    }
    match choice.get("type").and_then(Value::as_str) {
        Some("function") => {
            let name = required_str(choice, "name", "tool_choice")?;
            Ok(Some(
                json!({"type": "function", "function": {"name": name}}),
            ))
        }
        Some("allowed_tools") => {
            cx.unsupported("tool_choice", "allowed_tools is not translated")?;
            Ok(None)
        }
        other => {
            cx.unsupported(
                "tool_choice",
                &format!("forcing built-in tool {other:?} is only possible at OpenAI"),
            )?;
            Ok(None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::responses::testing::assert_json_eq;

    const STRICT: TranslateOptions = TranslateOptions {
        drop_unsupported: false,
    };
    const LENIENT: TranslateOptions = TranslateOptions {
        drop_unsupported: true,
    };

    fn fixture(text: &str) -> Value {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn golden_string_input_with_parameters() {
        let req = fixture(include_str!(
            "../../../tests/fixtures/responses/request_text.json"
        ));
        let want = fixture(include_str!(
            "../../../tests/fixtures/responses/chat_text.json"
        ));
        assert_json_eq(&to_chat(&req, &STRICT).unwrap(), &want);
    }

    #[test]
    fn golden_items_with_tools_reasoning_and_images() {
        let req = fixture(include_str!(
            "../../../tests/fixtures/responses/request_items.json"
        ));
        let want = fixture(include_str!(
            "../../../tests/fixtures/responses/chat_items.json"
        ));
        assert_json_eq(&to_chat(&req, &STRICT).unwrap(), &want);
    }

    #[test]
    fn golden_function_calling_example_from_the_reference() {
        let req = fixture(include_str!(
            "../../../tests/fixtures/responses/request_function_call_output.json"
        ));
        let want = fixture(include_str!(
            "../../../tests/fixtures/responses/chat_function_call_output.json"
        ));
        assert_json_eq(&to_chat(&req, &STRICT).unwrap(), &want);
    }

    #[test]
    fn built_in_tools_are_rejected_by_name_unless_dropped() {
        let req = json!({
            "model": "claude-sonnet-4-5",
            "input": "hi",
            "tools": [
                {"type": "web_search_preview"},
                {"type": "function", "name": "f", "parameters": {"type": "object"}}
            ],
            "tool_choice": {"type": "web_search_preview"}
        });
        match to_chat(&req, &STRICT) {
            Err(TranslateError::Unsupported { param, .. }) => assert_eq!(param, "tools[0]"),
            other => panic!("expected Unsupported, got {other:?}"),
        }
        let chat = to_chat(&req, &LENIENT).unwrap();
        assert_eq!(chat["tools"].as_array().unwrap().len(), 1);
        assert_eq!(chat["tools"][0]["function"]["name"], "f");
        assert!(chat.get("tool_choice").is_none());
    }

    #[test]
    fn tool_choice_and_parallel_calls_go_only_with_tools() {
        let req = json!({
            "model": "m", "input": "hi",
            "tools": [{"type": "file_search", "vector_store_ids": ["vs_1"]}],
            "tool_choice": "required", "parallel_tool_calls": false
        });
        let chat = to_chat(&req, &LENIENT).unwrap();
        assert!(chat.get("tools").is_none());
        assert!(chat.get("tool_choice").is_none());
        assert!(chat.get("parallel_tool_calls").is_none());

        let req = json!({
            "model": "m", "input": "hi",
            "tools": [{"type": "function", "name": "f"}],
            "tool_choice": {"type": "function", "name": "f"}, "parallel_tool_calls": false
        });
        let chat = to_chat(&req, &STRICT).unwrap();
        assert_eq!(
            chat["tool_choice"],
            json!({"type": "function", "function": {"name": "f"}})
        );
        assert_eq!(chat["parallel_tool_calls"], false);
    }

    #[test]
    fn file_ids_and_files_are_rejected_by_path() {
        let req = json!({"model": "m", "input": [{"role": "user", "content": [
            {"type": "input_text", "text": "what is this"},
            {"type": "input_image", "file_id": "file-123", "detail": "auto"}
        ]}]});
        match to_chat(&req, &STRICT) {
            Err(TranslateError::Unsupported { param, .. }) => {
                assert_eq!(param, "input[0].content[1].file_id");
            }
            other => panic!("expected Unsupported, got {other:?}"),
        }
        let chat = to_chat(&req, &LENIENT).unwrap();
        assert_eq!(chat["messages"][0]["content"], "what is this");

        let req = json!({"model": "m", "input": [{"role": "user", "content": [
            {"type": "input_file", "file_id": "file-1"}
        ]}, {"role": "user", "content": "and this"}]});
        assert!(matches!(
            to_chat(&req, &STRICT),
            Err(TranslateError::Unsupported { ref param, .. }) if param == "input[0].content[0]"
        ));
        let chat = to_chat(&req, &LENIENT).unwrap();
        assert_eq!(
            chat["messages"],
            json!([{"role": "user", "content": "and this"}])
        );
    }

    #[test]
    fn item_references_and_built_in_call_items_are_unsupported() {
        for item in [
            json!({"type": "item_reference", "id": "msg_1"}),
            json!({"type": "web_search_call", "id": "ws_1", "status": "completed"}),
            json!({"type": "computer_call_output", "call_id": "c", "output": {}}),
        ] {
            let req = json!({"model": "m", "input": [{"role": "user", "content": "hi"}, item]});
            assert!(matches!(
                to_chat(&req, &STRICT),
                Err(TranslateError::Unsupported { ref param, .. }) if param == "input[1]"
            ));
            assert_eq!(
                to_chat(&req, &LENIENT).unwrap()["messages"]
                    .as_array()
                    .unwrap()
                    .len(),
                1
            );
        }
    }

    #[test]
    fn stateful_and_openai_only_parameters_are_rejected() {
        for (field, value) in [
            ("background", json!(true)),
            ("conversation", json!("conv_1")),
            ("prompt", json!({"id": "pmpt_1"})),
            ("truncation", json!("auto")),
            ("top_logprobs", json!(5)),
        ] {
            let mut req = json!({"model": "m", "input": "hi"});
            req[field] = value;
            match to_chat(&req, &STRICT) {
                Err(TranslateError::Unsupported { param, .. }) => assert_eq!(param, field),
                other => panic!("{field}: expected Unsupported, got {other:?}"),
            }
            assert!(to_chat(&req, &LENIENT).unwrap().get(field).is_none());
        }
        let ok = json!({"model": "m", "input": "hi", "background": false, "truncation": "disabled", "top_logprobs": 0});
        assert!(to_chat(&ok, &STRICT).is_ok());
    }

    #[test]
    fn invalid_shapes_name_the_field() {
        let cases = [
            (json!({"input": "hi"}), "model"),
            (json!({"model": "m"}), "input"),
            (json!({"model": "m", "input": 3}), "input"),
            (
                json!({"model": "m", "input": [{"role": "tool", "content": "x"}]}),
                "input[0].role",
            ),
            (
                json!({"model": "m", "input": [{"type": "function_call", "name": "f"}]}),
                "input[0].call_id",
            ),
            (
                json!({"model": "m", "input": [{"content": "x"}]}),
                "input[0]",
            ),
            (
                json!({"model": "m", "input": "hi", "text": {"format": {"type": "json_schema"}}}),
                "text.format.name",
            ),
            (
                json!({"model": "m", "input": "hi", "tool_choice": "sometimes", "tools": [{"type": "function", "name": "f"}]}),
                "tool_choice",
            ),
            (
                json!({"model": "m", "input": "hi", "truncation": "maybe"}),
                "truncation",
            ),
        ];
        for (req, want) in cases {
            match to_chat(&req, &LENIENT) {
                Err(TranslateError::Invalid { param, .. }) => assert_eq!(param, want, "{req}"),
                other => panic!("{req}: expected Invalid({want}), got {other:?}"),
            }
        }
    }

    #[test]
    fn reasoning_items_attach_to_the_next_assistant_turn_or_vanish() {
        let req = json!({"model": "m", "input": [
            {"role": "user", "content": "q1"},
            {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "gAAAA-openai-only"},
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "a1", "annotations": []}]},
            {"role": "user", "content": "q2"},
            {"type": "reasoning", "id": "rs_2", "summary": [{"type": "summary_text", "text": "thinking about q2"}]},
            {"role": "user", "content": "q3"}
        ]});
        let chat = to_chat(&req, &STRICT).unwrap();
        assert_json_eq(
            &chat["messages"],
            &json!([
                {"role": "user", "content": "q1"},
                {"role": "assistant", "content": "a1"},
                {"role": "user", "content": "q2"},
                {"role": "user", "content": "q3"}
            ]),
        );
    }

    #[test]
    fn consecutive_assistant_messages_stay_apart_but_calls_join_the_text() {
        let req = json!({"model": "m", "input": [
            {"role": "user", "content": "go"},
            {"role": "assistant", "content": "first"},
            {"role": "assistant", "content": "second"},
            {"type": "function_call", "call_id": "call_1", "name": "f", "arguments": "{}"},
            {"type": "function_call", "call_id": "call_2", "name": "g", "arguments": "{\"x\":1}"},
            {"type": "function_call_output", "call_id": "call_1", "output": "r1"},
            {"type": "function_call_output", "call_id": "call_2", "output": [{"type": "input_text", "text": "r2"}]}
        ]});
        let chat = to_chat(&req, &STRICT).unwrap();
        assert_json_eq(
            &chat["messages"],
            &json!([
                {"role": "user", "content": "go"},
                {"role": "assistant", "content": "first"},
                {"role": "assistant", "content": "second", "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}},
                    {"id": "call_2", "type": "function", "function": {"name": "g", "arguments": "{\"x\":1}"}}
                ]},
                {"role": "tool", "tool_call_id": "call_1", "content": "r1"},
                {"role": "tool", "tool_call_id": "call_2", "content": "r2"}
            ]),
        );
    }

    #[test]
    fn images_in_tool_output_are_rejected_unless_dropped() {
        let req = json!({"model": "m", "input": [
            {"type": "function_call", "call_id": "c1", "name": "shot", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c1", "output": [
                {"type": "input_text", "text": "see image"},
                {"type": "input_image", "image_url": "https://example.com/a.png"}
            ]}
        ]});
        assert!(matches!(
            to_chat(&req, &STRICT),
            Err(TranslateError::Unsupported { ref param, .. }) if param == "input[1].output[1]"
        ));
        assert_eq!(
            to_chat(&req, &LENIENT).unwrap()["messages"][1]["content"],
            "see image"
        );
    }

    #[test]
    fn safety_identifier_stands_in_for_user_and_unknown_fields_pass_through() {
        let req = json!({"model": "m", "input": "hi", "safety_identifier": "u-1", "top_k": 40,
                         "metadata": {"a": "b"}, "store": false, "prompt_cache_key": "k",
                         "service_tier": "flex", "include": ["reasoning.encrypted_content"]});
        let chat = to_chat(&req, &STRICT).unwrap();
        assert_eq!(chat["user"], "u-1");
        assert_eq!(chat["top_k"], 40);
        for gone in [
            "metadata",
            "store",
            "prompt_cache_key",
            "service_tier",
            "include",
            "safety_identifier",
        ] {
            assert!(
                chat.get(gone).is_none(),
                "{gone} should not reach the upstream"
            );
        }
        let both = json!({"model": "m", "input": "hi", "user": "a", "safety_identifier": "b"});
        assert_eq!(to_chat(&both, &STRICT).unwrap()["user"], "a");
    }

    #[test]
    fn instructions_as_items_become_leading_messages() {
        let req = json!({"model": "m", "input": "hi", "instructions": [
            {"role": "developer", "content": [{"type": "input_text", "text": "be brief"}]}
        ]});
        let chat = to_chat(&req, &STRICT).unwrap();
        assert_eq!(
            chat["messages"][0],
            json!({"role": "developer", "content": "be brief"})
        );
        let empty = json!({"model": "m", "input": "hi", "instructions": ""});
        assert_eq!(
            to_chat(&empty, &STRICT).unwrap()["messages"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn stored_history_round_trips_through_items() {
        let history = vec![
            json!({"role": "user", "content": [
                {"type": "text", "text": "look"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA", "detail": "low"}}
            ]}),
            json!({"role": "assistant", "content": null,
                   "reasoning_content": "plan",
                   "x_thinking_blocks": [{"type": "thinking", "thinking": "plan", "signature": "sig"},
                                         {"type": "redacted_thinking", "data": "zz"}],
                   "tool_calls": [{"id": "call_1", "type": "function",
                                   "function": {"name": "f", "arguments": "{}"}}]}),
            json!({"role": "tool", "tool_call_id": "call_1", "content": "42"}),
            json!({"role": "assistant", "content": "done", "refusal": "no"}),
            json!({"role": "system", "content": "mid-conversation note"}),
        ];
        let req = prepend_history(
            &history,
            json!({"model": "m", "input": "next", "instructions": "new rules"}),
        );
        let chat = to_chat(&req, &STRICT).unwrap();
        let mut want = vec![json!({"role": "system", "content": "new rules"})];
        want.extend(history.iter().cloned());
        want.push(json!({"role": "user", "content": "next"}));
        assert_json_eq(&chat["messages"], &Value::Array(want));
    }

    #[test]
    fn history_to_store_skips_the_instructions_and_appends_the_answer() {
        let req = json!({"model": "m", "instructions": "rules", "input": "q"});
        let chat = to_chat(&req, &STRICT).unwrap();
        let response = json!({"output": [
            {"id": "msg_1", "type": "message", "role": "assistant", "status": "completed",
             "content": [{"type": "output_text", "text": "a", "annotations": []}]}
        ]});
        assert_json_eq(
            &Value::Array(history_to_store(&req, &chat, &response)),
            &json!([{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]),
        );
        // A second turn stores the whole conversation again, still without instructions.
        let stored = history_to_store(&req, &chat, &response);
        let req2 = prepend_history(
            &stored,
            json!({"model": "m", "instructions": "other", "input": "q2"}),
        );
        let chat2 = to_chat(&req2, &STRICT).unwrap();
        assert_eq!(
            chat2["messages"][0],
            json!({"role": "system", "content": "other"})
        );
        let stored2 = history_to_store(&req2, &chat2, &response);
        assert_eq!(stored2.len(), 4);
        assert_eq!(stored2[0], json!({"role": "user", "content": "q"}));
    }
}
