//! Canonical OpenAI chat request -> Anthropic `POST /v1/messages` body. Called by the Anthropic
//! provider before it builds the HTTP request; pure.
//!
//! | canonical | Anthropic |
//! |---|---|
//! | `system` / `developer` messages (anywhere) | top-level `system`: text blocks, in order |
//! | user text / `image_url` (http or `data:` base64) / `file` (`file_data` PDF) parts | `text` / `image` (`url` or `base64` source) / `document` blocks |
//! | assistant `x_thinking_blocks`, content, `tool_calls` | `thinking`/`redacted_thinking`, `text`, `tool_use` blocks, in that order |
//! | `tool` messages | `tool_result` blocks in a user turn (`x_is_error` -> `is_error`) |
//! | `tools[].function` | `tools[]`: `name`, `description`, `input_schema`, `strict` |
//! | `tool_choice` auto / none / required / function | `{"type":"auto"|"none"|"any"|"tool"}` |
//! | `parallel_tool_calls: false` | `tool_choice.disable_parallel_tool_use: true` |
//! | `max_completion_tokens` or `max_tokens` | `max_tokens` (default [`DEFAULT_MAX_TOKENS`]) |
//! | `stop` | `stop_sequences` |
//! | `user` | `metadata.user_id` |
//! | `reasoning_effort`, `x_thinking_budget` | `thinking` (+ `output_config.effort`), see the module doc of `providers::anthropic` |
//! | `response_format` `json_schema` | `output_config.format: {"type":"json_schema","schema"}` (structured outputs, GA) |
//! | `temperature` (0..=1), `top_p`, `top_k`, `stream` | same names |
//!
//! Consecutive messages of one role are merged into one turn (Anthropic requires alternating
//! roles), so several tool results become one user turn. `cache_control` on content parts, tool
//! calls, tool messages and tool definitions is copied onto the produced blocks.
//!
//! Rejected unless `drop_unsupported` (then dropped): `logit_bias`, `logprobs`, `top_logprobs`,
//! `n` > 1, non-zero `presence_penalty`/`frequency_penalty`, `seed`, `audio`, non-text
//! `modalities`, `prediction`, `web_search_options`, `store: true`, `metadata`, `service_tier`,
//! `verbosity`, legacy `functions`/`function_call`, `response_format: json_object` (Anthropic has
//! no schema-less JSON mode), `temperature` > 1, audio and `file_id` parts, and any unknown
//! parameter. With thinking on, Anthropic also refuses forced tool use, `temperature` other than 1,
//! `top_k`, and `top_p` below 0.95; those are treated the same way.
//! Dropped silently: `stream_options` (Anthropic streams always carry usage), `prompt_cache_key`
//! (a routing hint), `image_url.detail`, `name` on messages, `reasoning_content` without
//! `x_thinking_blocks` (it cannot be replayed without its signature).

use serde_json::{Map, Value, json};

use super::messages::{convert_messages, copy_cache_control};
use crate::wire::anthropic::effort_for_budget;

use super::{
    DEFAULT_MAX_TOKENS, MIN_THINKING_BUDGET, ThinkingStyle, TranslateError, TranslateOptions,
    invalid, thinking_style,
};

/// Parameters translated below.
const KNOWN: &[&str] = &[
    "model",
    "messages",
    "stream",
    "stream_options",
    "user",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "response_format",
    "temperature",
    "top_p",
    "top_k",
    "stop",
    "max_tokens",
    "max_completion_tokens",
    "reasoning_effort",
    "x_thinking_budget",
    "prompt_cache_key",
];

pub fn from_chat(
    chat: &Value,
    upstream_model: &str,
    opts: &TranslateOptions,
) -> Result<Value, TranslateError> {
    let req = chat
        .as_object()
        .ok_or_else(|| invalid("body", "must be a JSON object"))?;
    check_unsupported(req, opts)?;

    let mut out = Map::new();
    out.insert("model".into(), json!(upstream_model));

    let (system, messages) = convert_messages(req.get("messages"), opts)?;
    if !system.is_empty() {
        out.insert("system".into(), Value::Array(system));
    }
    out.insert("messages".into(), Value::Array(messages));

    let mut max_tokens = match present(req, "max_completion_tokens").or(present(req, "max_tokens"))
    {
        Some(v) => v
            .as_u64()
            .filter(|n| *n > 0)
            .ok_or_else(|| invalid("max_tokens", "must be a positive integer"))?,
        None => DEFAULT_MAX_TOKENS,
    };

    let thinking = thinking_request(req, upstream_model)?;
    let mut output_config = Map::new();
    match thinking {
        Some(Thinking::Budget(budget)) => {
            if max_tokens <= budget {
                max_tokens += budget;
            }
            out.insert(
                "thinking".into(),
                json!({"type": "enabled", "budget_tokens": budget}),
            );
        }
        Some(Thinking::Adaptive(effort)) => {
            out.insert("thinking".into(), json!({"type": "adaptive"}));
            output_config.insert("effort".into(), json!(effort));
        }
        None => {}
    }
    let thinking_on = thinking.is_some();
    out.insert("max_tokens".into(), json!(max_tokens));

    sampling(req, thinking_on, opts, &mut out)?;

    if let Some(stop) = present(req, "stop") {
        let sequences = match stop {
            Value::String(s) => vec![json!(s)],
            Value::Array(items) if items.iter().all(Value::is_string) => items.clone(),
            _ => return Err(invalid("stop", "must be a string or an array of strings")),
        };
        if !sequences.is_empty() {
            out.insert("stop_sequences".into(), Value::Array(sequences));
        }
    }

    if let Some(user) = present(req, "user") {
        let user = user
            .as_str()
            .ok_or_else(|| invalid("user", "must be a string"))?;
        out.insert("metadata".into(), json!({"user_id": user}));
    }

    tools(req, thinking_on, opts, &mut out)?;

    if let Some(format) = present(req, "response_format") {
        match format.get("type").and_then(Value::as_str) {
            Some("text") => {}
            Some("json_schema") => {
                let schema = format
                    .get("json_schema")
                    .and_then(|s| s.get("schema"))
                    .filter(|s| s.is_object())
                    .ok_or_else(|| {
                        invalid("response_format.json_schema.schema", "must be an object")
                    })?;
                output_config.insert(
                    "format".into(),
                    json!({"type": "json_schema", "schema": schema}),
                );
            }
            Some("json_object") => opts.reject(
                "response_format",
                "Anthropic has no schema-less JSON mode; send a json_schema response_format",
            )?,
            _ => {
                return Err(invalid(
                    "response_format.type",
                    "must be text, json_object or json_schema",
                ));
            }
        }
    }
    if !output_config.is_empty() {
        out.insert("output_config".into(), Value::Object(output_config));
    }

    if let Some(stream) = present(req, "stream") {
        let stream = stream
            .as_bool()
            .ok_or_else(|| invalid("stream", "must be a boolean"))?;
        if stream {
            out.insert("stream".into(), json!(true));
        }
    }
    Ok(Value::Object(out))
}

/// A parameter that is present and not `null` (SDKs send explicit nulls for unset options).
fn present<'a>(req: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    req.get(key).filter(|v| !v.is_null())
}

fn check_unsupported(
    req: &Map<String, Value>,
    opts: &TranslateOptions,
) -> Result<(), TranslateError> {
    for (key, value) in req {
        if value.is_null() || KNOWN.contains(&key.as_str()) {
            continue;
        }
        // Values equal to OpenAI's defaults ask for nothing Anthropic lacks.
        let harmless = match key.as_str() {
            "n" => value.as_u64() == Some(1),
            "logprobs" | "store" => value.as_bool() == Some(false),
            "presence_penalty" | "frequency_penalty" => value.as_f64() == Some(0.0),
            "modalities" => value == &json!(["text"]),
            "service_tier" => value.as_str() == Some("auto"),
            _ => false,
        };
        if harmless {
            continue;
        }
        let message = match key.as_str() {
            "n" => "Anthropic returns one choice per request",
            "logit_bias" | "logprobs" | "top_logprobs" => "Anthropic does not expose token logits",
            "presence_penalty" | "frequency_penalty" => "Anthropic has no repetition penalties",
            "seed" => "Anthropic has no sampling seed",
            "functions" | "function_call" => "legacy functions are not translated; use tools",
            _ => "not supported by the Anthropic Messages API",
        };
        opts.reject(key, message)?;
    }
    Ok(())
}

#[derive(Clone, Copy, Debug)]
enum Thinking {
    Budget(u64),
    Adaptive(&'static str),
}

fn thinking_request(
    req: &Map<String, Value>,
    upstream_model: &str,
) -> Result<Option<Thinking>, TranslateError> {
    let exact = match present(req, "x_thinking_budget") {
        Some(v) => Some(
            v.as_u64()
                .filter(|b| *b >= MIN_THINKING_BUDGET)
                .ok_or_else(|| {
                    invalid("x_thinking_budget", "must be an integer of at least 1024")
                })?,
        ),
        None => None,
    };
    let effort = match present(req, "reasoning_effort") {
        None => None,
        Some(v) => match v.as_str() {
            Some("none") => return Ok(None),
            Some("minimal") | Some("low") => Some(("low", 1024)),
            Some("medium") => Some(("medium", 4096)),
            Some("high") | Some("xhigh") => Some(("high", 16384)),
            _ => {
                return Err(invalid(
                    "reasoning_effort",
                    "must be none, minimal, low, medium, high or xhigh",
                ));
            }
        },
    };
    let (effort, budget) = match (effort, exact) {
        (Some((effort, budget)), exact) => (effort, exact.unwrap_or(budget)),
        (None, Some(budget)) => (effort_for_budget(budget), budget),
        (None, None) => return Ok(None),
    };
    Ok(Some(match thinking_style(upstream_model) {
        ThinkingStyle::Budget => Thinking::Budget(budget),
        ThinkingStyle::Adaptive => Thinking::Adaptive(effort),
    }))
}

fn sampling(
    req: &Map<String, Value>,
    thinking_on: bool,
    opts: &TranslateOptions,
    out: &mut Map<String, Value>,
) -> Result<(), TranslateError> {
    if let Some(t) = present(req, "temperature") {
        let t = t
            .as_f64()
            .ok_or_else(|| invalid("temperature", "must be a number"))?;
        if thinking_on && t != 1.0 {
            opts.reject(
                "temperature",
                "Anthropic allows only temperature 1 with thinking",
            )?;
        } else if t > 1.0 {
            opts.reject("temperature", "Anthropic accepts temperature from 0 to 1")?;
        } else {
            out.insert("temperature".into(), json!(t));
        }
    }
    if let Some(p) = present(req, "top_p") {
        let p = p
            .as_f64()
            .ok_or_else(|| invalid("top_p", "must be a number"))?;
        if thinking_on && p < 0.95 {
            opts.reject(
                "top_p",
                "Anthropic allows top_p only from 0.95 with thinking",
            )?;
        } else {
            out.insert("top_p".into(), json!(p));
        }
    }
    if let Some(k) = present(req, "top_k") {
        let k = k
            .as_u64()
            .ok_or_else(|| invalid("top_k", "must be a non-negative integer"))?;
        if thinking_on {
            opts.reject("top_k", "Anthropic does not allow top_k with thinking")?;
        } else {
            out.insert("top_k".into(), json!(k));
        }
    }
    Ok(())
}

fn tools(
    req: &Map<String, Value>,
    thinking_on: bool,
    opts: &TranslateOptions,
    out: &mut Map<String, Value>,
) -> Result<(), TranslateError> {
    let Some(list) = present(req, "tools") else {
        // Anthropic rejects tool_choice without tools; without tools there is nothing to choose.
        return Ok(());
    };
    let list = list
        .as_array()
        .ok_or_else(|| invalid("tools", "must be an array"))?;
    let mut tools = Vec::with_capacity(list.len());
    for (i, tool) in list.iter().enumerate() {
        let path = format!("tools[{i}]");
        if tool.get("type").and_then(Value::as_str) != Some("function") {
            opts.reject(
                &format!("{path}.type"),
                "only function tools can be translated",
            )?;
            continue;
        }
        let function = tool
            .get("function")
            .and_then(Value::as_object)
            .ok_or_else(|| invalid(format!("{path}.function"), "must be an object"))?;
        let name = function
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid(format!("{path}.function.name"), "must be a string"))?;
        let mut out_tool = Map::new();
        out_tool.insert("name".into(), json!(name));
        if let Some(d) = function.get("description").filter(|d| !d.is_null()) {
            out_tool.insert("description".into(), d.clone());
        }
        let schema = function
            .get("parameters")
            .filter(|p| !p.is_null())
            .cloned()
            .unwrap_or_else(|| json!({"type": "object", "properties": {}}));
        out_tool.insert("input_schema".into(), schema);
        if function.get("strict").and_then(Value::as_bool) == Some(true) {
            out_tool.insert("strict".into(), json!(true));
        }
        copy_cache_control(tool, &mut out_tool);
        tools.push(Value::Object(out_tool));
    }
    if tools.is_empty() {
        return Ok(());
    }
    out.insert("tools".into(), Value::Array(tools));

    let mut choice = match present(req, "tool_choice") {
        None => None,
        Some(Value::String(s)) => match s.as_str() {
            "auto" => Some(json!({"type": "auto"})),
            "none" => Some(json!({"type": "none"})),
            "required" => Some(json!({"type": "any"})),
            _ => {
                return Err(invalid(
                    "tool_choice",
                    "must be auto, none, required or a function",
                ));
            }
        },
        Some(obj) => {
            let name = obj
                .get("function")
                .and_then(|f| f.get("name"))
                .and_then(Value::as_str)
                .ok_or_else(|| invalid("tool_choice.function.name", "must be a string"))?;
            Some(json!({"type": "tool", "name": name}))
        }
    };
    let forced = matches!(
        choice
            .as_ref()
            .and_then(|c| c.get("type"))
            .and_then(Value::as_str),
        Some("any") | Some("tool")
    );
    if thinking_on && forced {
        opts.reject(
            "tool_choice",
            "Anthropic does not allow forced tool use with thinking",
        )?;
        choice = None;
    }
    if present(req, "parallel_tool_calls").and_then(Value::as_bool) == Some(false) {
        let c = choice.get_or_insert_with(|| json!({"type": "auto"}));
        if c.get("type").and_then(Value::as_str) != Some("none")
            && let Some(obj) = c.as_object_mut()
        {
            obj.insert("disable_parallel_tool_use".into(), json!(true));
        }
    }
    if let Some(choice) = choice {
        out.insert("tool_choice".into(), choice);
    }
    Ok(())
}

#[cfg(test)]
#[path = "request_tests.rs"]
mod tests;
