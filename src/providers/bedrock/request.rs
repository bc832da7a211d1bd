//! Canonical chat request (OpenAI Chat Completions body) -> Bedrock Converse body, and the URL.
//! The model id goes in the URL, not the body; the adapter signs the request with [`super::sigv4`].
//!
//! | canonical | Converse |
//! |---|---|
//! | `system` / `developer` messages | `system: [{text}]`, in order, wherever they stand |
//! | `user` text / `image_url` (base64 `data:` URL of png, jpeg, gif, webp) / `file.file_data` (base64 `data:` URL of a pdf, csv, doc(x), xls(x), html, txt, md) | `text` / `image{format, source{bytes}}` / `document{format, name, source{bytes}}`; http(s) image URLs are `Unsupported` (Converse takes bytes or S3 only) |
//! | `assistant` message | `x_thinking_blocks` first as `reasoningContent{reasoningText{text, signature}}` / `reasoningContent{redactedContent}`, then `text`, then `toolUse{toolUseId, name, input}` per tool call. A bare `reasoning_content` string without blocks cannot be replayed (no signature) and is dropped |
//! | `tool` message | `user` message with `toolResult{toolUseId, content: [{json}] when the content is a JSON object, else [{text}], status: success}` |
//! | adjacent messages with the same role | merged (Converse requires user/assistant alternation) |
//! | `tools[].function` | `toolConfig.tools[].toolSpec{name, description, inputSchema{json}}` (`strict` is not forwarded) |
//! | `tool_choice` auto / required / named | `toolConfig.toolChoice` `{auto:{}}` / `{any:{}}` / `{tool:{name}}`; `none` leaves `toolConfig` out (`Unsupported` when the history holds tool blocks, which need it) |
//! | `max_tokens`/`max_completion_tokens`, `temperature`, `top_p`, `stop` | `inferenceConfig.maxTokens`, `temperature`, `topP`, `stopSequences` |
//! | `response_format` json_schema | `outputConfig.textFormat{type: json_schema, structure{jsonSchema{schema (as a string), name, description}}}`; `json_object` is `Unsupported` (Converse needs a schema) |
//! | `reasoning_effort` | see [`reasoning_fields`]: Anthropic `thinking`, Nova 2 `reasoningConfig`, others `Unsupported` |
//! | `n: 1`, `model`, `stream`, `stream_options`, `user` | ignored |
//! | `n > 1`, `seed`, `presence_penalty`, `frequency_penalty`, `logprobs`, `top_logprobs`, `logit_bias`, `parallel_tool_calls: false`, anything else | `Unsupported`, or dropped with `drop_unsupported` |

use super::messages::translate_messages;
use crate::providers::translate::function_tool;
use serde_json::{Map, Value, json};

use super::{TranslateError, TranslateOptions, invalid, unsupported};

/// The default Bedrock Runtime endpoint of `region`; `base` in [`url`] unless overridden (mock).
pub fn endpoint(region: &str) -> String {
    format!("https://bedrock-runtime.{region}.amazonaws.com")
}

/// `{base}/model/{model id, percent-encoded}/converse` or `/converse-stream`. The id is encoded
/// as one path segment (`:` -> `%3A`, an ARN's `/` -> `%2F`).
pub fn url(base: &str, model_id: &str, stream: bool) -> String {
    let action = if stream {
        "converse-stream"
    } else {
        "converse"
    };
    format!(
        "{}/model/{}/{action}",
        base.trim_end_matches('/'),
        encode_segment(model_id)
    )
}

/// `{base}/model/{model id}/invoke`, for InvokeModel (embeddings).
pub fn invoke_url(base: &str, model_id: &str) -> String {
    format!(
        "{}/model/{}/invoke",
        base.trim_end_matches('/'),
        encode_segment(model_id)
    )
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn encode_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

const IGNORED: &[&str] = &["model", "stream", "stream_options", "user"];

/// Translates a canonical chat request for the Bedrock model (or inference profile) `upstream_model`.
pub fn from_chat(
    chat: &Value,
    upstream_model: &str,
    opts: &TranslateOptions,
) -> Result<Value, TranslateError> {
    let req = chat
        .as_object()
        .ok_or_else(|| invalid("body", "expected a JSON object"))?;
    for (key, value) in req {
        let handled = matches!(
            key.as_str(),
            "messages"
                | "tools"
                | "tool_choice"
                | "temperature"
                | "top_p"
                | "max_tokens"
                | "max_completion_tokens"
                | "stop"
                | "response_format"
                | "reasoning_effort"
        ) || IGNORED.contains(&key.as_str());
        let harmless = match key.as_str() {
            "logprobs" => value == &Value::Bool(false),
            "parallel_tool_calls" => value != &Value::Bool(false),
            "n" => value.is_null() || value.as_u64() == Some(1),
            _ => value.is_null(),
        };
        if !handled && !harmless && !opts.drop_unsupported {
            return Err(unsupported(
                key.as_str(),
                "not supported by Bedrock Converse",
            ));
        }
    }

    let messages = req
        .get("messages")
        .and_then(Value::as_array)
        .ok_or_else(|| invalid("messages", "expected an array of messages"))?;
    let (system, converse_messages) = translate_messages(messages)?;
    let mut out = Map::new();
    out.insert("messages".into(), Value::Array(converse_messages));
    if !system.is_empty() {
        out.insert("system".into(), Value::Array(system));
    }

    let has_tool_blocks = out["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m.get("content").and_then(Value::as_array))
        .flatten()
        .any(|b| b.get("toolUse").is_some() || b.get("toolResult").is_some());
    if let Some(tool_config) = tool_config(req, has_tool_blocks, opts)? {
        out.insert("toolConfig".into(), tool_config);
    }

    let mut inference = Map::new();
    let max_tokens = match req.get("max_completion_tokens").filter(|v| !v.is_null()) {
        Some(v) => Some(v),
        None => req.get("max_tokens").filter(|v| !v.is_null()),
    };
    let mut max_tokens = match max_tokens {
        None => None,
        Some(v) => Some(
            v.as_u64()
                .ok_or_else(|| invalid("max_tokens", "expected a positive integer"))?,
        ),
    };
    let mut temperature = number(req, "temperature")?;
    let mut top_p = number(req, "top_p")?;

    if let Some(effort) = req.get("reasoning_effort").filter(|e| !e.is_null()) {
        let effort = effort
            .as_str()
            .ok_or_else(|| invalid("reasoning_effort", "expected a string"))?;
        match reasoning_fields(effort, upstream_model, &mut max_tokens)? {
            Some(Reasoning::AnthropicThinking(thinking)) => {
                // Claude's extended thinking requires the default sampling
                // (<https://docs.aws.amazon.com/bedrock/latest/userguide/claude-messages-extended-thinking.html>).
                if temperature.is_some_and(|t| t != 1.0) {
                    if !opts.drop_unsupported {
                        return Err(unsupported(
                            "temperature",
                            "Claude does not accept a temperature with reasoning_effort",
                        ));
                    }
                    temperature = None;
                }
                if top_p.is_some_and(|p| p < 0.95) {
                    if !opts.drop_unsupported {
                        return Err(unsupported(
                            "top_p",
                            "Claude accepts only top_p >= 0.95 with reasoning_effort",
                        ));
                    }
                    top_p = None;
                }
                out.insert(
                    "additionalModelRequestFields".into(),
                    json!({ "thinking": thinking }),
                );
            }
            Some(Reasoning::NovaReasoningConfig(config)) => {
                out.insert(
                    "additionalModelRequestFields".into(),
                    json!({ "reasoningConfig": config }),
                );
            }
            None => {}
        }
    }
    if let Some(max) = max_tokens {
        inference.insert("maxTokens".into(), json!(max));
    }
    if let Some(t) = temperature {
        inference.insert("temperature".into(), json!(t));
    }
    if let Some(p) = top_p {
        inference.insert("topP".into(), json!(p));
    }
    match req.get("stop") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => {
            inference.insert("stopSequences".into(), json!([s]));
        }
        Some(Value::Array(list)) if list.iter().all(Value::is_string) => {
            inference.insert("stopSequences".into(), Value::Array(list.clone()));
        }
        Some(_) => return Err(invalid("stop", "expected a string or an array of strings")),
    }
    if !inference.is_empty() {
        out.insert("inferenceConfig".into(), Value::Object(inference));
    }
    if let Some(format) = req.get("response_format").filter(|f| !f.is_null())
        && let Some(config) = output_config(format, opts)?
    {
        out.insert("outputConfig".into(), config);
    }
    Ok(Value::Object(out))
}

fn number(req: &Map<String, Value>, key: &str) -> Result<Option<f64>, TranslateError> {
    match req.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_f64()
            .map(Some)
            .ok_or_else(|| invalid(key, "expected a number")),
    }
}

/// The model-specific reasoning switch, for `additionalModelRequestFields`.
pub enum Reasoning {
    AnthropicThinking(Value),
    NovaReasoningConfig(Value),
}

/// `reasoning_effort` -> model-specific fields.
///
/// Anthropic Claude (`anthropic.claude-*`, also behind `us.`/`eu.`/`global.` inference profiles):
/// `thinking: {type: enabled, budget_tokens}` with
///
/// | effort | `budget_tokens` |
/// |---|---|
/// | `none` | thinking not enabled |
/// | `minimal` | 1024 (Claude's minimum) |
/// | `low` | 2048 |
/// | `medium` | 8192 |
/// | `high` | 24576 |
///
/// Claude needs `maxTokens > budget_tokens`: without `max_tokens` the request gets
/// `maxTokens = budget + 4096`; with a `max_tokens` too small for the budget, the budget shrinks
/// to half of it (still >= 1024), and a `max_tokens` of 2048 or less is `Invalid`.
///
/// Amazon Nova 2 (`amazon.nova-2-*`): `reasoningConfig: {type: enabled, maxReasoningEffort}` with
/// `minimal`/`low` -> `low`, `medium` -> `medium`, `high` -> `high`; `none` leaves it off.
///
/// Other models have no documented switch: `Unsupported` (except `none`, a no-op).
pub fn reasoning_fields(
    effort: &str,
    model_id: &str,
    max_tokens: &mut Option<u64>,
) -> Result<Option<Reasoning>, TranslateError> {
    if !["none", "minimal", "low", "medium", "high"].contains(&effort) {
        return Err(invalid(
            "reasoning_effort",
            format!("unknown value {effort:?}; expected none, minimal, low, medium or high"),
        ));
    }
    if effort == "none" {
        return Ok(None);
    }
    if model_id.contains("anthropic.claude") {
        let mut budget: u64 = match effort {
            "minimal" => 1024,
            "low" => 2048,
            "medium" => 8192,
            _ => 24576,
        };
        match *max_tokens {
            None => *max_tokens = Some(budget + 4096),
            Some(max) if max > budget => {}
            Some(max) if max > 2048 => budget = (max / 2).max(1024),
            Some(_) => {
                return Err(invalid(
                    "max_tokens",
                    "must exceed 2048 to leave room for Claude's thinking with reasoning_effort",
                ));
            }
        }
        return Ok(Some(Reasoning::AnthropicThinking(
            json!({ "type": "enabled", "budget_tokens": budget }),
        )));
    }
    if model_id.contains("amazon.nova-2") {
        let level = match effort {
            "minimal" | "low" => "low",
            other => other,
        };
        return Ok(Some(Reasoning::NovaReasoningConfig(
            json!({ "type": "enabled", "maxReasoningEffort": level }),
        )));
    }
    Err(unsupported(
        "reasoning_effort",
        format!("no reasoning switch is known for Bedrock model {model_id:?}"),
    ))
}

fn output_config(format: &Value, opts: &TranslateOptions) -> Result<Option<Value>, TranslateError> {
    match format.get("type").and_then(Value::as_str) {
        Some("text") => Ok(None),
        Some("json_object") if opts.drop_unsupported => Ok(None),
        Some("json_object") => Err(unsupported(
            "response_format",
            "Bedrock structured output needs a json_schema",
        )),
        Some("json_schema") => {
            let spec = format
                .get("json_schema")
                .ok_or_else(|| invalid("response_format.json_schema", "missing"))?;
            let schema = spec
                .get("schema")
                .ok_or_else(|| invalid("response_format.json_schema.schema", "missing"))?;
            let schema = serde_json::to_string(schema)
                .map_err(|e| invalid("response_format.json_schema.schema", e.to_string()))?;
            let mut json_schema = Map::new();
            json_schema.insert("schema".into(), json!(schema));
            json_schema.insert(
                "name".into(),
                spec.get("name")
                    .cloned()
                    .unwrap_or_else(|| json!("response")),
            );
            if let Some(d) = spec.get("description").filter(|d| d.is_string()) {
                json_schema.insert("description".into(), d.clone());
            }
            Ok(Some(json!({
                "textFormat": {"type": "json_schema", "structure": {"jsonSchema": json_schema}}
            })))
        }
        other => Err(invalid(
            "response_format.type",
            format!("unknown response format {other:?}"),
        )),
    }
}

fn tool_config(
    req: &Map<String, Value>,
    has_tool_blocks: bool,
    opts: &TranslateOptions,
) -> Result<Option<Value>, TranslateError> {
    let mut specs = Vec::new();
    if let Some(tools) = req.get("tools").filter(|t| !t.is_null()) {
        let tools = tools
            .as_array()
            .ok_or_else(|| invalid("tools", "expected an array"))?;
        for (i, tool) in tools.iter().enumerate() {
            let param = format!("tools[{i}]");
            let Some((name, function)) = function_tool(tool, &param, "Bedrock", opts)? else {
                continue;
            };
            let schema = function
                .get("parameters")
                .filter(|p| !p.is_null())
                .cloned()
                .unwrap_or_else(|| json!({"type": "object", "properties": {}}));
            let mut spec = Map::new();
            spec.insert("name".into(), json!(name));
            if let Some(d) = function.get("description").and_then(Value::as_str) {
                spec.insert("description".into(), json!(d));
            }
            spec.insert("inputSchema".into(), json!({ "json": schema }));
            specs.push(json!({ "toolSpec": spec }));
        }
    }
    let choice = match req.get("tool_choice") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => match s.as_str() {
            "auto" => Some(json!({ "auto": {} })),
            "required" => Some(json!({ "any": {} })),
            "none" => {
                if has_tool_blocks && !opts.drop_unsupported {
                    return Err(unsupported(
                        "tool_choice",
                        "Bedrock cannot forbid tool calls in a conversation that already uses tools",
                    ));
                }
                if !has_tool_blocks {
                    return Ok(None);
                }
                None
            }
            other => return Err(invalid("tool_choice", format!("unknown value {other:?}"))),
        },
        Some(choice @ Value::Object(_)) => {
            let name = choice
                .get("function")
                .and_then(|f| f.get("name"))
                .and_then(Value::as_str)
                .ok_or_else(|| invalid("tool_choice.function.name", "missing"))?;
            Some(json!({ "tool": { "name": name } }))
        }
        Some(_) => return Err(invalid("tool_choice", "expected a string or an object")),
    };
    if specs.is_empty() {
        return Ok(None);
    }
    let mut config = json!({ "tools": specs });
    if let Some(choice) = choice {
        config["toolChoice"] = choice;
    }
    Ok(Some(config))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::bedrock::test_support::{assert_json_eq, parse};

    #[test]
    fn tools_and_thinking_match_golden_request() {
        let chat = parse(include_str!(
            "../../../tests/fixtures/bedrock/chat_request_tools.json"
        ));
        let expected = parse(include_str!(
            "../../../tests/fixtures/bedrock/converse_request_tools.json"
        ));
        let got = from_chat(
            &chat,
            "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
            &TranslateOptions::default(),
        )
        .expect("translates");
        assert_json_eq(&got, &expected);
    }

    #[test]
    fn image_urls_must_be_inline() {
        let chat = json!({"messages": [{"role": "user", "content": [
            {"type": "text", "text": "what is this?"},
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}
        ]}]});
        match from_chat(&chat, "amazon.nova-pro-v1:0", &TranslateOptions::default()) {
            Err(TranslateError::Unsupported { param, .. }) => {
                assert_eq!(param, "messages[0].content[1].image_url.url")
            }
            other => panic!("expected Unsupported, got {other:?}"),
        }
    }

    #[test]
    fn structured_output_and_nova_reasoning() {
        let chat = json!({
            "messages": [{"role": "user", "content": "List two colours."}],
            "response_format": {"type": "json_schema", "json_schema": {
                "name": "colours", "schema": {"type": "object", "properties": {"c": {"type": "array"}}}
            }},
            "reasoning_effort": "minimal",
            "n": 1
        });
        let got = from_chat(
            &chat,
            "us.amazon.nova-2-lite-v1:0",
            &TranslateOptions::default(),
        )
        .expect("translates");
        assert_eq!(
            got["outputConfig"],
            json!({"textFormat": {"type": "json_schema", "structure": {"jsonSchema": {
                "schema": "{\"properties\":{\"c\":{\"type\":\"array\"}},\"type\":\"object\"}",
                "name": "colours"
            }}}})
        );
        assert_eq!(
            got["additionalModelRequestFields"],
            json!({"reasoningConfig": {"type": "enabled", "maxReasoningEffort": "low"}})
        );
        assert!(matches!(
            from_chat(
                &chat,
                "meta.llama3-3-70b-instruct-v1:0",
                &TranslateOptions::default()
            ),
            Err(TranslateError::Unsupported { .. })
        ));
    }

    #[test]
    fn thinking_budget_fits_max_tokens() {
        let mut max = Some(6000);
        let r = reasoning_fields("high", "anthropic.claude-opus-4-5-20251101-v1:0", &mut max)
            .expect("ok");
        match r {
            Some(Reasoning::AnthropicThinking(t)) => assert_eq!(t["budget_tokens"], json!(3000)),
            _ => panic!("expected thinking"),
        }
        let mut none = None;
        reasoning_fields(
            "medium",
            "anthropic.claude-sonnet-4-5-20250929-v1:0",
            &mut none,
        )
        .expect("ok");
        assert_eq!(none, Some(8192 + 4096));
        let mut small = Some(1500);
        assert!(matches!(
            reasoning_fields(
                "low",
                "anthropic.claude-haiku-4-5-20251001-v1:0",
                &mut small
            ),
            Err(TranslateError::Invalid { .. })
        ));
    }

    #[test]
    fn unsupported_params_are_named_or_dropped() {
        let chat = json!({"messages": [{"role": "user", "content": "hi"}], "seed": 3});
        match from_chat(&chat, "amazon.nova-pro-v1:0", &TranslateOptions::default()) {
            Err(TranslateError::Unsupported { param, .. }) => assert_eq!(param, "seed"),
            other => panic!("expected Unsupported, got {other:?}"),
        }
        let got = from_chat(
            &chat,
            "amazon.nova-pro-v1:0",
            &TranslateOptions {
                drop_unsupported: true,
            },
        )
        .expect("dropped");
        assert_eq!(
            got,
            json!({"messages": [{"role": "user", "content": [{"text": "hi"}]}]})
        );
    }

    #[test]
    fn urls_encode_the_model_id() {
        assert_eq!(
            url(
                &endpoint("us-east-1"),
                "anthropic.claude-sonnet-4-5-20250929-v1:0",
                false
            ),
            "https://bedrock-runtime.us-east-1.amazonaws.com/model/anthropic.claude-sonnet-4-5-20250929-v1%3A0/converse"
        );
        assert_eq!(
            url("http://127.0.0.1:9000/", "amazon.nova-pro-v1:0", true),
            "http://127.0.0.1:9000/model/amazon.nova-pro-v1%3A0/converse-stream"
        );
        assert_eq!(
            invoke_url(
                &endpoint("eu-west-1"),
                "arn:aws:bedrock:eu-west-1:123456789012:inference-profile/eu.amazon.nova-lite-v1:0"
            ),
            "https://bedrock-runtime.eu-west-1.amazonaws.com/model/arn%3Aaws%3Abedrock%3Aeu-west-1%3A123456789012%3Ainference-profile%2Feu.amazon.nova-lite-v1%3A0/invoke"
        );
    }
}
