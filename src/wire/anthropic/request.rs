//! Anthropic Messages request (as an Anthropic-SDK client sends it to `POST /v1/messages`) ->
//! canonical OpenAI chat request. Pure.
//!
//! | Anthropic | canonical |
//! |---|---|
//! | `system` (string or text blocks) | first message, role `system` |
//! | user `text` / `image` (`base64` or `url`) / `document` (`base64` PDF) blocks | `text` / `image_url` (data URL or URL) / `file` (`file_data`) parts |
//! | user `tool_result` blocks | one `tool` message each (`is_error` -> `x_is_error`), before the user's other blocks |
//! | assistant `thinking` / `redacted_thinking` | `x_thinking_blocks` (signatures kept) + `reasoning_content` |
//! | assistant `text` / `tool_use` | `content` / `tool_calls` (`input` serialized to `arguments`) |
//! | `tools[]` (`name`, `description`, `input_schema`, `strict`) | `tools[].function` (`parameters`) |
//! | `tool_choice` auto / any / tool / none, `disable_parallel_tool_use` | `tool_choice` auto / required / function / none, `parallel_tool_calls: false` |
//! | `thinking` `enabled` + `budget_tokens` | `reasoning_effort` (below 4096 low, below 16384 medium, else high) + `x_thinking_budget` (exact) |
//! | `thinking` `adaptive` (+ `output_config.effort`) | `reasoning_effort` = effort (`max`/`xhigh` -> `high`; default `high`, Anthropic's default) |
//! | `output_config.format` / beta `output_format` `json_schema` | `response_format` `json_schema` (name `output`, strict) |
//! | `max_tokens` | `max_completion_tokens` |
//! | `stop_sequences`, `metadata.user_id` | `stop`, `user` |
//! | `stream: true` | `stream: true` + `stream_options.include_usage` (the encoder needs the usage) |
//! | `temperature`, `top_p`, `top_k` | same names (`top_k` is an extension some providers take) |
//!
//! `cache_control` marks stay on the canonical part, tool call, tool message or tool definition
//! that carries the block, which is where the provider side reads them back. A text content made of
//! one unmarked text block becomes a plain string.
//!
//! Rejected unless `drop_unsupported` (then dropped): server and built-in tools (any tool with a
//! `type` other than `custom`), `server_tool_use` / `*_tool_result` / `search_result` and other
//! non-translatable blocks, `document` sources other than base64, `image` file sources,
//! `output_config.effort` without thinking, `service_tier` other than `auto`, `container`,
//! `mcp_servers`, `context_management`, and any unknown parameter.

use serde_json::{Map, Value, json};

use super::effort_for_budget;
use super::{TranslateError, TranslateOptions};
use crate::wire::translate::invalid;

const KNOWN: &[&str] = &[
    "model",
    "messages",
    "system",
    "max_tokens",
    "stop_sequences",
    "stream",
    "temperature",
    "top_p",
    "top_k",
    "tools",
    "tool_choice",
    "thinking",
    "metadata",
    "output_config",
    "output_format",
];

pub fn to_chat(body: &Value, opts: &TranslateOptions) -> Result<Value, TranslateError> {
    let req = body
        .as_object()
        .ok_or_else(|| invalid("body", "must be a JSON object"))?;
    for (key, value) in req {
        if value.is_null() || KNOWN.contains(&key.as_str()) {
            continue;
        }
        if key == "service_tier" && value.as_str() == Some("auto") {
            continue;
        }
        opts.reject(key, "cannot be translated for a non-Anthropic provider")?;
    }

    let mut out = Map::new();
    if let Some(model) = present(req, "model") {
        out.insert("model".into(), model.clone());
    }

    let mut messages = Vec::new();
    match present(req, "system") {
        None => {}
        Some(Value::String(s)) if s.is_empty() => {}
        Some(Value::String(s)) => messages.push(json!({"role": "system", "content": s})),
        Some(Value::Array(blocks)) => {
            let mut parts = Vec::new();
            for (i, block) in blocks.iter().enumerate() {
                match (block.get("type").and_then(Value::as_str), block.get("text")) {
                    (Some("text"), Some(Value::String(t))) => parts.push(text_part(t, block)),
                    _ => opts.reject(&format!("system[{i}]"), "system takes text blocks only")?,
                }
            }
            if !parts.is_empty() {
                messages.push(json!({"role": "system", "content": collapse(parts)}));
            }
        }
        Some(_) => return Err(invalid("system", "must be a string or an array of blocks")),
    }

    let list = present(req, "messages")
        .and_then(Value::as_array)
        .ok_or_else(|| invalid("messages", "must be an array"))?;
    for (i, msg) in list.iter().enumerate() {
        let path = format!("messages[{i}]");
        match msg.get("role").and_then(Value::as_str) {
            Some("user") => user_messages(msg.get("content"), &path, opts, &mut messages)?,
            Some("assistant") => messages.push(assistant_message(msg.get("content"), &path, opts)?),
            _ => {
                return Err(invalid(format!("{path}.role"), "must be user or assistant"));
            }
        }
    }
    out.insert("messages".into(), Value::Array(messages));

    if let Some(max) = present(req, "max_tokens") {
        out.insert("max_completion_tokens".into(), max.clone());
    }
    for key in ["temperature", "top_p", "top_k"] {
        if let Some(v) = present(req, key) {
            out.insert(key.into(), v.clone());
        }
    }
    if let Some(stop) = present(req, "stop_sequences") {
        let valid = stop
            .as_array()
            .is_some_and(|a| a.iter().all(Value::is_string));
        if !valid {
            return Err(invalid("stop_sequences", "must be an array of strings"));
        }
        if stop.as_array().is_some_and(|a| !a.is_empty()) {
            out.insert("stop".into(), stop.clone());
        }
    }
    if let Some(user) = present(req, "metadata")
        .and_then(|m| m.get("user_id"))
        .filter(|u| !u.is_null())
    {
        out.insert("user".into(), user.clone());
    }

    tools(req, opts, &mut out)?;
    thinking(req, opts, &mut out)?;

    let format = present(req, "output_config")
        .and_then(|c| c.get("format"))
        .filter(|f| !f.is_null())
        .or_else(|| present(req, "output_format"));
    if let Some(format) = format {
        if format.get("type").and_then(Value::as_str) != Some("json_schema") {
            return Err(invalid("output_config.format.type", "must be json_schema"));
        }
        let schema = format
            .get("schema")
            .filter(|s| s.is_object())
            .ok_or_else(|| invalid("output_config.format.schema", "must be an object"))?;
        out.insert(
            "response_format".into(),
            json!({"type": "json_schema", "json_schema": {"name": "output", "schema": schema, "strict": true}}),
        );
    }

    let stream = match present(req, "stream") {
        None => false,
        Some(Value::Bool(stream)) => *stream,
        // Read as false, a `"yes"` would get a whole answer the client cannot read as events.
        Some(_) => return Err(invalid("stream", "expected a boolean")),
    };
    if stream {
        out.insert("stream".into(), json!(true));
        out.insert("stream_options".into(), json!({"include_usage": true}));
    }
    Ok(Value::Object(out))
}

fn present<'a>(req: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    req.get(key).filter(|v| !v.is_null())
}

fn copy_cache_control(from: &Value, to: &mut Map<String, Value>) {
    if let Some(cc) = from.get("cache_control").filter(|c| !c.is_null()) {
        to.insert("cache_control".into(), cc.clone());
    }
}

fn text_part(text: &str, block: &Value) -> Value {
    let mut part = Map::new();
    part.insert("type".into(), json!("text"));
    part.insert("text".into(), json!(text));
    copy_cache_control(block, &mut part);
    Value::Object(part)
}

/// One unmarked text part reads better, and travels further, as a plain string.
fn collapse(parts: Vec<Value>) -> Value {
    if let [only] = parts.as_slice()
        && only.get("type").and_then(Value::as_str) == Some("text")
        && only.get("cache_control").is_none()
        && let Some(text) = only.get("text")
    {
        return text.clone();
    }
    Value::Array(parts)
}

fn user_messages(
    content: Option<&Value>,
    path: &str,
    opts: &TranslateOptions,
    out: &mut Vec<Value>,
) -> Result<(), TranslateError> {
    let blocks = match content {
        Some(Value::String(s)) => {
            out.push(json!({"role": "user", "content": s}));
            return Ok(());
        }
        Some(Value::Array(blocks)) => blocks,
        _ => {
            return Err(invalid(
                format!("{path}.content"),
                "must be a string or an array of blocks",
            ));
        }
    };
    let mut parts = Vec::new();
    for (j, block) in blocks.iter().enumerate() {
        let bpath = format!("{path}.content[{j}]");
        if block.get("type").and_then(Value::as_str) == Some("tool_result") {
            // Keep the order of the turn: user parts before a tool result stay before it.
            if !parts.is_empty() {
                out.push(json!({"role": "user", "content": collapse(std::mem::take(&mut parts))}));
            }
            out.push(tool_message(block, &bpath, opts)?);
        } else if let Some(part) = content_part(block, &bpath, opts)? {
            parts.push(part);
        }
    }
    if !parts.is_empty() {
        out.push(json!({"role": "user", "content": collapse(parts)}));
    }
    Ok(())
}

/// A user or tool-result content block as a canonical part; `None` when dropped as unsupported.
fn content_part(
    block: &Value,
    path: &str,
    opts: &TranslateOptions,
) -> Result<Option<Value>, TranslateError> {
    let str_at = |v: Option<&Value>, name: &str| {
        v.and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| invalid(format!("{path}.{name}"), "must be a string"))
    };
    let mut part = Map::new();
    match block.get("type").and_then(Value::as_str) {
        Some("text") => {
            part.insert("type".into(), json!("text"));
            part.insert("text".into(), json!(str_at(block.get("text"), "text")?));
        }
        Some("image") => {
            let source = block.get("source");
            let url = match source.and_then(|s| s.get("type")).and_then(Value::as_str) {
                Some("base64") => format!(
                    "data:{};base64,{}",
                    str_at(
                        source.and_then(|s| s.get("media_type")),
                        "source.media_type"
                    )?,
                    str_at(source.and_then(|s| s.get("data")), "source.data")?
                ),
                Some("url") => str_at(source.and_then(|s| s.get("url")), "source.url")?,
                _ => {
                    opts.reject(
                        &format!("{path}.source"),
                        "only base64 and url image sources can be translated",
                    )?;
                    return Ok(None);
                }
            };
            part.insert("type".into(), json!("image_url"));
            part.insert("image_url".into(), json!({"url": url}));
        }
        Some("document") => {
            let source = block.get("source");
            if source.and_then(|s| s.get("type")).and_then(Value::as_str) != Some("base64") {
                opts.reject(
                    &format!("{path}.source"),
                    "only base64 PDF documents can be translated",
                )?;
                return Ok(None);
            }
            let data = format!(
                "data:{};base64,{}",
                str_at(
                    source.and_then(|s| s.get("media_type")),
                    "source.media_type"
                )?,
                str_at(source.and_then(|s| s.get("data")), "source.data")?
            );
            let mut file = Map::new();
            file.insert("file_data".into(), json!(data));
            if let Some(title) = block.get("title").and_then(Value::as_str) {
                file.insert("filename".into(), json!(title));
            }
            part.insert("type".into(), json!("file"));
            part.insert("file".into(), Value::Object(file));
        }
        Some("thinking") | Some("redacted_thinking") => {
            return Err(invalid(path, "thinking blocks belong to assistant turns"));
        }
        _ => {
            opts.reject(path, "this block type cannot be translated")?;
            return Ok(None);
        }
    }
    copy_cache_control(block, &mut part);
    Ok(Some(Value::Object(part)))
}

fn tool_message(
    block: &Value,
    path: &str,
    opts: &TranslateOptions,
) -> Result<Value, TranslateError> {
    let id = block
        .get("tool_use_id")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid(format!("{path}.tool_use_id"), "must be a string"))?;
    let content = match block.get("content") {
        None | Some(Value::Null) => json!(""),
        Some(Value::String(s)) => json!(s),
        Some(Value::Array(blocks)) => {
            let mut parts = Vec::new();
            for (k, b) in blocks.iter().enumerate() {
                if let Some(part) = content_part(b, &format!("{path}.content[{k}]"), opts)? {
                    parts.push(part);
                }
            }
            collapse(parts)
        }
        Some(_) => {
            return Err(invalid(
                format!("{path}.content"),
                "must be a string or an array of blocks",
            ));
        }
    };
    let mut msg = Map::new();
    msg.insert("role".into(), json!("tool"));
    msg.insert("tool_call_id".into(), json!(id));
    msg.insert("content".into(), content);
    if block.get("is_error").and_then(Value::as_bool) == Some(true) {
        msg.insert("x_is_error".into(), json!(true));
    }
    copy_cache_control(block, &mut msg);
    Ok(Value::Object(msg))
}

fn assistant_message(
    content: Option<&Value>,
    path: &str,
    opts: &TranslateOptions,
) -> Result<Value, TranslateError> {
    let blocks = match content {
        Some(Value::String(s)) => return Ok(json!({"role": "assistant", "content": s})),
        Some(Value::Array(blocks)) => blocks,
        _ => {
            return Err(invalid(
                format!("{path}.content"),
                "must be a string or an array of blocks",
            ));
        }
    };
    let mut parts = Vec::new();
    let mut thinking = Vec::new();
    let mut reasoning = String::new();
    let mut calls = Vec::new();
    for (j, block) in blocks.iter().enumerate() {
        let bpath = format!("{path}.content[{j}]");
        let str_field = |name: &str| {
            block
                .get(name)
                .and_then(Value::as_str)
                .ok_or_else(|| invalid(format!("{bpath}.{name}"), "must be a string"))
        };
        match block.get("type").and_then(Value::as_str) {
            Some("text") => parts.push(text_part(str_field("text")?, block)),
            Some("thinking") => {
                let text = str_field("thinking")?;
                reasoning.push_str(text);
                thinking.push(json!({
                    "type": "thinking",
                    "thinking": text,
                    "signature": str_field("signature")?,
                }));
            }
            Some("redacted_thinking") => {
                thinking.push(json!({"type": "redacted_thinking", "data": str_field("data")?}));
            }
            Some("tool_use") => {
                let input = block.get("input").cloned().unwrap_or_else(|| json!({}));
                let mut call = Map::new();
                call.insert("id".into(), json!(str_field("id")?));
                call.insert("type".into(), json!("function"));
                call.insert(
                    "function".into(),
                    json!({"name": str_field("name")?, "arguments": input.to_string()}),
                );
                copy_cache_control(block, &mut call);
                calls.push(Value::Object(call));
            }
            _ => opts.reject(&bpath, "this block type cannot be translated")?,
        }
    }
    let mut msg = Map::new();
    msg.insert("role".into(), json!("assistant"));
    msg.insert(
        "content".into(),
        if parts.is_empty() {
            Value::Null
        } else {
            collapse(parts)
        },
    );
    if !calls.is_empty() {
        msg.insert("tool_calls".into(), Value::Array(calls));
    }
    if !thinking.is_empty() {
        msg.insert("reasoning_content".into(), json!(reasoning));
        msg.insert("x_thinking_blocks".into(), Value::Array(thinking));
    }
    Ok(Value::Object(msg))
}

fn tools(
    req: &Map<String, Value>,
    opts: &TranslateOptions,
    out: &mut Map<String, Value>,
) -> Result<(), TranslateError> {
    if let Some(list) = present(req, "tools") {
        let list = list
            .as_array()
            .ok_or_else(|| invalid("tools", "must be an array"))?;
        let mut tools = Vec::new();
        for (i, tool) in list.iter().enumerate() {
            let path = format!("tools[{i}]");
            if let Some(t) = tool.get("type").and_then(Value::as_str)
                && t != "custom"
            {
                opts.reject(&path, "server and built-in tools cannot be translated")?;
                continue;
            }
            let name = tool
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| invalid(format!("{path}.name"), "must be a string"))?;
            let mut function = Map::new();
            function.insert("name".into(), json!(name));
            if let Some(d) = tool.get("description").filter(|d| !d.is_null()) {
                function.insert("description".into(), d.clone());
            }
            function.insert(
                "parameters".into(),
                tool.get("input_schema")
                    .cloned()
                    .unwrap_or_else(|| json!({"type": "object", "properties": {}})),
            );
            if tool.get("strict").and_then(Value::as_bool) == Some(true) {
                function.insert("strict".into(), json!(true));
            }
            let mut out_tool = Map::new();
            out_tool.insert("type".into(), json!("function"));
            out_tool.insert("function".into(), Value::Object(function));
            copy_cache_control(tool, &mut out_tool);
            tools.push(Value::Object(out_tool));
        }
        if !tools.is_empty() {
            out.insert("tools".into(), Value::Array(tools));
        }
    }
    if let Some(choice) = present(req, "tool_choice") {
        let mapped = match choice.get("type").and_then(Value::as_str) {
            Some("auto") => json!("auto"),
            Some("any") => json!("required"),
            Some("none") => json!("none"),
            Some("tool") => {
                let name = choice
                    .get("name")
                    .and_then(Value::as_str)
                    .ok_or_else(|| invalid("tool_choice.name", "must be a string"))?;
                json!({"type": "function", "function": {"name": name}})
            }
            _ => {
                return Err(invalid(
                    "tool_choice.type",
                    "must be auto, any, tool or none",
                ));
            }
        };
        out.insert("tool_choice".into(), mapped);
        if choice
            .get("disable_parallel_tool_use")
            .and_then(Value::as_bool)
            == Some(true)
        {
            out.insert("parallel_tool_calls".into(), json!(false));
        }
    }
    Ok(())
}

fn thinking(
    req: &Map<String, Value>,
    opts: &TranslateOptions,
    out: &mut Map<String, Value>,
) -> Result<(), TranslateError> {
    let effort = present(req, "output_config")
        .and_then(|c| c.get("effort"))
        .filter(|e| !e.is_null());
    let effort = match effort {
        None => None,
        Some(e) => Some(match e.as_str() {
            Some("low") => "low",
            Some("medium") => "medium",
            Some("high") | Some("xhigh") | Some("max") => "high",
            _ => {
                return Err(invalid(
                    "output_config.effort",
                    "must be low, medium, high, xhigh or max",
                ));
            }
        }),
    };
    let thinking = present(req, "thinking");
    match thinking.and_then(|t| t.get("type")).and_then(Value::as_str) {
        Some("enabled") => {
            let budget = thinking
                .and_then(|t| t.get("budget_tokens"))
                .and_then(Value::as_u64)
                .ok_or_else(|| invalid("thinking.budget_tokens", "must be an integer"))?;
            out.insert(
                "reasoning_effort".into(),
                json!(effort.unwrap_or(effort_for_budget(budget))),
            );
            out.insert("x_thinking_budget".into(), json!(budget));
        }
        Some("adaptive") => {
            out.insert("reasoning_effort".into(), json!(effort.unwrap_or("high")));
        }
        Some("disabled") | None => {
            if thinking.is_some() && thinking.and_then(|t| t.get("type")).is_none() {
                return Err(invalid(
                    "thinking.type",
                    "must be enabled, adaptive or disabled",
                ));
            }
            if effort.is_some() {
                opts.reject(
                    "output_config.effort",
                    "effort without thinking has no canonical form",
                )?;
            }
        }
        Some(_) => {
            return Err(invalid(
                "thinking.type",
                "must be enabled, adaptive or disabled",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "request_tests.rs"]
mod tests;
