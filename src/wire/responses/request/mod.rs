//! Responses request -> canonical chat request, and the conversation helpers for
//! `previous_response_id`. Pure functions; the mapping table is in the module doc of
//! [`super`]. Who calls: the `/v1/responses` route, for every provider but OpenAI itself.
//!
//! Invariant: an assistant turn (reasoning, text, function calls) becomes ONE assistant message,
//! in that order, because the canonical form (and Anthropic behind it) needs the thinking and the
//! tool calls of a turn together; [`chat_messages_to_items`] is the exact inverse for the messages
//! this module produces, so a stored conversation round-trips.
//!
//! This file holds [`to_chat`]'s top level: the request parameters (tools, tool choice, text
//! format, reasoning) and the drop-or-reject decision. `items.rs` turns input items into
//! canonical messages, `history.rs` holds the conversation helpers and the inverse conversion;
//! the tests are in `tests.rs`.

mod history;
mod items;
#[cfg(test)]
mod tests;

use serde_json::{Map, Value, json};

use super::{TranslateError, TranslateOptions};
use items::items_to_messages;

pub use history::{chat_messages_to_items, history_to_store, prepend_history};
pub(crate) use items::output_items_to_messages;

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

fn required_str<'a>(item: &'a Value, field: &str, param: &str) -> Result<&'a str, TranslateError> {
    item.get(field).and_then(Value::as_str).ok_or_else(|| {
        invalid(
            &format!("{param}.{field}"),
            "is required and must be a string",
        )
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
