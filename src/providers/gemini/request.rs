//! Canonical chat request (OpenAI Chat Completions body) -> Gemini `GenerateContentRequest`, and
//! the URL to send it to. Pure functions; the provider adapter adds the auth header
//! (`x-goog-api-key` for the Gemini API, `Authorization: Bearer` for Vertex AI).
//!
//! | canonical | Gemini |
//! |---|---|
//! | `system` / `developer` messages | `systemInstruction.parts[].text` (all of them, in order, wherever they stand) |
//! | `user` message | `contents[]` role `user`: `text`, `inlineData{mimeType,data}` for `data:` URLs (image, `input_audio`, `file.file_data`), `fileData{fileUri,mimeType}` for http(s) and `gs://` image URLs (MIME type guessed from the extension, else `image/jpeg`); `image_url.detail` is ignored |
//! | `assistant` message | role `model`: `text`, `functionCall{name,args}` per tool call, with `thoughtSignature` from the call's `x_thought_signature`; a message-level `x_thought_signature` goes on its last text part. `reasoning_content` and `x_thinking_blocks` are not replayed (Gemini does not take thought summaries back, and other providers' signatures mean nothing to it) |
//! | `tool` message | role `user`: `functionResponse{name,response}`; `name` comes from the earlier tool call with that id; `response` is the content when it is a JSON object, else `{"output": content}` |
//! | adjacent contents with the same role | merged into one content (parallel function responses must share a turn) |
//! | `tools[].function` | `tools[0].functionDeclarations[]`, parameters converted by [`super::schema`] |
//! | `tool_choice` auto / none / required / named | `toolConfig.functionCallingConfig.mode` AUTO / NONE / ANY / ANY + `allowedFunctionNames` |
//! | `temperature`, `top_p`, `max_tokens`/`max_completion_tokens`, `stop`, `seed`, `n`, `presence_penalty`, `frequency_penalty` | `generationConfig.temperature`, `topP`, `maxOutputTokens`, `stopSequences`, `seed`, `candidateCount`, `presencePenalty`, `frequencyPenalty` |
//! | `response_format` json_object / json_schema | `responseMimeType: application/json` (+ `responseJsonSchema`: Gemini now takes JSON Schema as is there) |
//! | `reasoning_effort` | `generationConfig.thinkingConfig`: `thinkingLevel` on Gemini 3 models, `thinkingBudget` on earlier ones (table at [`thinking_config`]); `includeThoughts: true` unless thinking is off |
//! | `model`, `stream`, `stream_options`, `user` | ignored (the URL picks the model and streaming; Gemini has no end-user field) |
//! | `logprobs`, `top_logprobs`, `logit_bias`, `parallel_tool_calls: false`, `audio`, `modalities`, `prediction`, `web_search_options`, anything else | `Unsupported`, or dropped with `drop_unsupported` |

use super::messages::translate_messages;
use crate::providers::translate::function_tool;
use serde_json::{Map, Value, json};

use super::{TranslateError, TranslateOptions, invalid, schema, unsupported};

/// Where a Vertex AI request goes. `location` is a region such as `us-central1`, or `global`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VertexTarget {
    pub project: String,
    pub location: String,
}

/// The default API root of the Gemini API; `base` in [`url`] when no override is configured.
pub const GEMINI_API_BASE: &str = "https://generativelanguage.googleapis.com/v1beta";

/// The default API root for Vertex AI in `location` (`global` has no region prefix).
pub fn vertex_base(location: &str) -> String {
    if location == "global" {
        "https://aiplatform.googleapis.com/v1".to_string()
    } else {
        format!("https://{location}-aiplatform.googleapis.com/v1")
    }
}

/// The URL of a chat call. `base` is the API root: [`GEMINI_API_BASE`] (or a mock) for the Gemini
/// API, [`vertex_base`] (or a mock) for Vertex AI. A `models/` prefix on `model` is tolerated.
///
/// - Gemini API: `{base}/models/{model}:generateContent` or `:streamGenerateContent?alt=sse`
/// - Vertex AI: `{base}/projects/{p}/locations/{l}/publishers/google/models/{model}:...`
pub fn url(base: &str, model: &str, stream: bool, vertex: Option<&VertexTarget>) -> String {
    let method = if stream {
        "streamGenerateContent?alt=sse"
    } else {
        "generateContent"
    };
    model_url(base, model, method, vertex)
}

/// Refuses a model name that is not a Gemini model id (`gemini-2.5-pro`,
/// `imagen-4.0-generate-001`, Vertex's `multimodalembedding@001`), with or without the `models/`
/// prefix Google's own SDKs write: letters, digits, `.`, `_`, `-` and `@`. Anything else in the
/// URL's path (`/`, `..`, `:`, `?`, `#`, a space) would call another method or resource.
pub fn check_model(model: &str) -> Result<(), String> {
    let id = model.strip_prefix("models/").unwrap_or(model);
    let vertex_version = |id: &str| match id.split_once('@') {
        Some((name, version)) => {
            crate::providers::is_url_safe_model(name)
                && !version.is_empty()
                && version.bytes().all(|b| b.is_ascii_alphanumeric())
        }
        None => crate::providers::is_url_safe_model(id),
    };
    if vertex_version(id) {
        return Ok(());
    }
    Err(format!(
        "{model:?} is not a Gemini model id: expected letters, digits, '.', '_', '-' (and one \
         '@' before a version) only"
    ))
}

/// The URL of `method` (`generateContent`, `batchEmbedContents`, `predict`, ...) on `model`.
pub fn model_url(base: &str, model: &str, method: &str, vertex: Option<&VertexTarget>) -> String {
    let base = base.trim_end_matches('/');
    let model = model.strip_prefix("models/").unwrap_or(model);
    match vertex {
        None => format!("{base}/models/{model}:{method}"),
        Some(v) => format!(
            "{base}/projects/{}/locations/{}/publishers/google/models/{model}:{method}",
            v.project, v.location
        ),
    }
}

/// Parameters that do not change the upstream request.
const IGNORED: &[&str] = &["model", "stream", "stream_options", "user"];

/// Translates a canonical chat request for `upstream_model`.
pub fn from_chat(
    chat: &Value,
    upstream_model: &str,
    opts: &TranslateOptions,
) -> Result<Value, TranslateError> {
    let req = chat
        .as_object()
        .ok_or_else(|| invalid("body", "expected a JSON object"))?;
    let mut out = Map::new();
    let mut generation = Map::new();

    // Reject or drop what Gemini cannot honour before doing any work.
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
                | "seed"
                | "n"
                | "presence_penalty"
                | "frequency_penalty"
                | "response_format"
                | "reasoning_effort"
        ) || IGNORED.contains(&key.as_str());
        let harmless = match key.as_str() {
            "logprobs" => value == &Value::Bool(false),
            "parallel_tool_calls" => value != &Value::Bool(false),
            _ => value.is_null(),
        };
        if !handled && !harmless && !opts.drop_unsupported {
            return Err(unsupported(key.as_str(), "not supported by Gemini"));
        }
    }

    let messages = req
        .get("messages")
        .and_then(Value::as_array)
        .ok_or_else(|| invalid("messages", "expected an array of messages"))?;
    let (system, contents) = translate_messages(messages)?;
    if !system.is_empty() {
        out.insert("systemInstruction".into(), json!({ "parts": system }));
    }
    out.insert("contents".into(), Value::Array(contents));

    if let Some(tools) = req.get("tools").filter(|t| !t.is_null()) {
        let declarations = translate_tools(tools, opts)?;
        if !declarations.is_empty() {
            out.insert(
                "tools".into(),
                json!([{ "functionDeclarations": declarations }]),
            );
        }
    }
    if let Some(choice) = req.get("tool_choice").filter(|c| !c.is_null()) {
        out.insert(
            "toolConfig".into(),
            json!({ "functionCallingConfig": translate_tool_choice(choice)? }),
        );
    }

    copy_number(req, "temperature", &mut generation, "temperature")?;
    copy_number(req, "top_p", &mut generation, "topP")?;
    copy_number(req, "presence_penalty", &mut generation, "presencePenalty")?;
    copy_number(
        req,
        "frequency_penalty",
        &mut generation,
        "frequencyPenalty",
    )?;
    copy_number(req, "seed", &mut generation, "seed")?;
    copy_number(req, "n", &mut generation, "candidateCount")?;
    // `max_completion_tokens` is the current name; it wins when both are sent.
    if !copy_number(
        req,
        "max_completion_tokens",
        &mut generation,
        "maxOutputTokens",
    )? {
        copy_number(req, "max_tokens", &mut generation, "maxOutputTokens")?;
    }
    match req.get("stop") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => {
            generation.insert("stopSequences".into(), json!([s]));
        }
        Some(Value::Array(list)) if list.iter().all(Value::is_string) => {
            generation.insert("stopSequences".into(), Value::Array(list.clone()));
        }
        Some(_) => return Err(invalid("stop", "expected a string or an array of strings")),
    }
    if let Some(format) = req.get("response_format").filter(|f| !f.is_null()) {
        translate_response_format(format, &mut generation)?;
    }
    if let Some(effort) = req.get("reasoning_effort").filter(|e| !e.is_null()) {
        let effort = effort
            .as_str()
            .ok_or_else(|| invalid("reasoning_effort", "expected a string"))?;
        generation.insert(
            "thinkingConfig".into(),
            thinking_config(effort, upstream_model)?,
        );
    }
    if !generation.is_empty() {
        out.insert("generationConfig".into(), Value::Object(generation));
    }
    Ok(Value::Object(out))
}

/// Copies a number-valued parameter; returns whether it was present.
fn copy_number(
    req: &Map<String, Value>,
    from: &str,
    out: &mut Map<String, Value>,
    to: &str,
) -> Result<bool, TranslateError> {
    match req.get(from) {
        None | Some(Value::Null) => Ok(false),
        Some(v @ Value::Number(_)) => {
            out.insert(to.into(), v.clone());
            Ok(true)
        }
        Some(_) => Err(invalid(from, "expected a number")),
    }
}

/// `reasoning_effort` -> `thinkingConfig`.
///
/// Gemini 3 models take `thinkingLevel`; Gemini 3 Pro knows only `low` and `high`, so `minimal`
/// and `low` become `low` there and `medium` and `high` become `high`. Earlier models take a token
/// `thinkingBudget`:
///
/// | effort | Gemini 3 Pro | other Gemini 3 | 2.5 Pro | other 2.5 (Flash, Flash-Lite) |
/// |---|---|---|---|---|
/// | `none` | `low` | `minimal` | 128 (cannot be off) | 0 (off) |
/// | `minimal` | `low` | `minimal` | 128 | 0 (off) |
/// | `low` | `low` | `low` | 1024 | 1024 |
/// | `medium` | `high` | `medium` | 8192 | 8192 |
/// | `high` | `high` | `high` | 32768 | 24576 |
///
/// (<https://ai.google.dev/gemini-api/docs/thinking>: 2.5 Pro 128..32768 and cannot disable
/// thinking, 2.5 Flash 0..24576.) `includeThoughts` is set whenever thinking is on, so thought
/// summaries come back as `reasoning_content`.
pub fn thinking_config(effort: &str, model: &str) -> Result<Value, TranslateError> {
    let model = model.strip_prefix("models/").unwrap_or(model);
    if !["none", "minimal", "low", "medium", "high"].contains(&effort) {
        return Err(invalid(
            "reasoning_effort",
            format!("unknown value {effort:?}; expected none, minimal, low, medium or high"),
        ));
    }
    let is_pro = model.contains("-pro");
    if model.starts_with("gemini-3") {
        let level = match (is_pro, effort) {
            (true, "none" | "minimal" | "low") => "low",
            (true, _) => "high",
            (false, "none") => "minimal",
            (false, other) => other,
        };
        return Ok(json!({ "thinkingLevel": level, "includeThoughts": true }));
    }
    let budget = match (is_pro, effort) {
        (true, "none" | "minimal") => 128,
        (false, "none" | "minimal") => 0,
        (_, "low") => 1024,
        (_, "medium") => 8192,
        (true, _) => 32768,
        (false, _) => 24576,
    };
    if budget == 0 {
        Ok(json!({ "thinkingBudget": 0 }))
    } else {
        Ok(json!({ "thinkingBudget": budget, "includeThoughts": true }))
    }
}

fn translate_response_format(
    format: &Value,
    generation: &mut Map<String, Value>,
) -> Result<(), TranslateError> {
    match format.get("type").and_then(Value::as_str) {
        Some("text") => Ok(()),
        Some("json_object") => {
            generation.insert("responseMimeType".into(), json!("application/json"));
            Ok(())
        }
        Some("json_schema") => {
            let schema = format
                .get("json_schema")
                .and_then(|s| s.get("schema"))
                .ok_or_else(|| {
                    invalid(
                        "response_format.json_schema.schema",
                        "a JSON schema is required",
                    )
                })?;
            let mut schema = schema.clone();
            if let Some(obj) = schema.as_object_mut() {
                obj.remove("$schema");
            }
            generation.insert("responseMimeType".into(), json!("application/json"));
            generation.insert("responseJsonSchema".into(), schema);
            Ok(())
        }
        other => Err(invalid(
            "response_format.type",
            format!("unknown response format {other:?}"),
        )),
    }
}

fn translate_tools(tools: &Value, opts: &TranslateOptions) -> Result<Vec<Value>, TranslateError> {
    let tools = tools
        .as_array()
        .ok_or_else(|| invalid("tools", "expected an array"))?;
    let mut declarations = Vec::new();
    for (i, tool) in tools.iter().enumerate() {
        let param = format!("tools[{i}]");
        let Some((name, function)) = function_tool(tool, &param, "Gemini", opts)? else {
            continue;
        };
        let mut decl = Map::new();
        decl.insert("name".into(), json!(name));
        if let Some(description) = function.get("description").and_then(Value::as_str) {
            decl.insert("description".into(), json!(description));
        }
        if let Some(parameters) = function.get("parameters").filter(|p| !p.is_null()) {
            let converted = schema::to_gemini(parameters, &format!("{param}.function.parameters"))?;
            // A function without arguments is declared without `parameters`: Gemini rejects an
            // OBJECT schema with no properties.
            let empty = converted
                .get("properties")
                .and_then(Value::as_object)
                .is_none_or(Map::is_empty);
            if !empty {
                decl.insert("parameters".into(), converted);
            }
        }
        declarations.push(Value::Object(decl));
    }
    Ok(declarations)
}

fn translate_tool_choice(choice: &Value) -> Result<Value, TranslateError> {
    match choice {
        Value::String(s) => match s.as_str() {
            "auto" => Ok(json!({ "mode": "AUTO" })),
            "none" => Ok(json!({ "mode": "NONE" })),
            "required" => Ok(json!({ "mode": "ANY" })),
            other => Err(invalid("tool_choice", format!("unknown value {other:?}"))),
        },
        Value::Object(_) => {
            let name = choice
                .get("function")
                .and_then(|f| f.get("name"))
                .and_then(Value::as_str)
                .ok_or_else(|| invalid("tool_choice.function.name", "missing"))?;
            Ok(json!({ "mode": "ANY", "allowedFunctionNames": [name] }))
        }
        _ => Err(invalid("tool_choice", "expected a string or an object")),
    }
}

/// Returns (system parts, contents).
#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::gemini::test_support::{assert_json_eq, parse};

    fn strict() -> TranslateOptions {
        TranslateOptions::default()
    }

    #[test]
    fn tools_conversation_matches_golden_request() {
        let chat = parse(include_str!(
            "../../../tests/fixtures/gemini/chat_request_tools.json"
        ));
        let expected = parse(include_str!(
            "../../../tests/fixtures/gemini/generate_request_tools.json"
        ));
        let got = from_chat(&chat, "gemini-2.5-flash", &strict()).expect("translates");
        assert_json_eq(&got, &expected);
    }

    #[test]
    fn multimodal_and_generation_config_match_golden_request() {
        let chat = parse(include_str!(
            "../../../tests/fixtures/gemini/chat_request_multimodal.json"
        ));
        let expected = parse(include_str!(
            "../../../tests/fixtures/gemini/generate_request_multimodal.json"
        ));
        let got = from_chat(&chat, "gemini-3-flash-preview", &strict()).expect("translates");
        assert_json_eq(&got, &expected);
    }

    #[test]
    fn unsupported_params_are_named_or_dropped() {
        let chat = json!({
            "model": "g",
            "messages": [{"role": "user", "content": "hi"}],
            "logit_bias": {"42": 10}
        });
        match from_chat(&chat, "gemini-2.5-flash", &strict()) {
            Err(TranslateError::Unsupported { param, .. }) => assert_eq!(param, "logit_bias"),
            other => panic!("expected Unsupported, got {other:?}"),
        }
        let dropped = from_chat(
            &chat,
            "gemini-2.5-flash",
            &TranslateOptions {
                drop_unsupported: true,
            },
        )
        .expect("dropped");
        assert_eq!(
            dropped,
            json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]})
        );

        let serial = json!({
            "messages": [{"role": "user", "content": "hi"}],
            "parallel_tool_calls": false
        });
        assert!(matches!(
            from_chat(&serial, "gemini-2.5-flash", &strict()),
            Err(TranslateError::Unsupported { .. })
        ));
        let parallel = json!({
            "messages": [{"role": "user", "content": "hi"}],
            "parallel_tool_calls": true, "logprobs": false, "user": "u-1", "stream": true
        });
        assert!(from_chat(&parallel, "gemini-2.5-flash", &strict()).is_ok());
    }

    #[test]
    fn tool_result_without_matching_call_is_invalid() {
        let chat = json!({
            "messages": [
                {"role": "user", "content": "hi"},
                {"role": "tool", "tool_call_id": "call_9", "content": "x"}
            ]
        });
        match from_chat(&chat, "gemini-2.5-flash", &strict()) {
            Err(TranslateError::Invalid { param, .. }) => {
                assert_eq!(param, "messages[1].tool_call_id")
            }
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn reasoning_effort_maps_per_model_family() {
        let cfg = |effort, model| thinking_config(effort, model).expect("valid");
        assert_eq!(
            cfg("low", "gemini-2.5-flash"),
            json!({"thinkingBudget": 1024, "includeThoughts": true})
        );
        assert_eq!(
            cfg("minimal", "gemini-2.5-flash"),
            json!({"thinkingBudget": 0})
        );
        assert_eq!(
            cfg("minimal", "gemini-2.5-pro"),
            json!({"thinkingBudget": 128, "includeThoughts": true})
        );
        assert_eq!(
            cfg("high", "models/gemini-2.5-pro"),
            json!({"thinkingBudget": 32768, "includeThoughts": true})
        );
        assert_eq!(
            cfg("medium", "gemini-3-pro-preview"),
            json!({"thinkingLevel": "high", "includeThoughts": true})
        );
        assert_eq!(
            cfg("minimal", "gemini-3-flash-preview"),
            json!({"thinkingLevel": "minimal", "includeThoughts": true})
        );
        assert!(matches!(
            thinking_config("extreme", "gemini-2.5-flash"),
            Err(TranslateError::Invalid { .. })
        ));
    }

    #[test]
    fn model_ids_that_would_change_the_url_are_refused() {
        for ok in [
            "gemini-2.5-pro",
            "imagen-4.0-generate-001",
            "text_embedding.v2",
        ] {
            assert_eq!(check_model(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "models/",
            "models/../files",
            "a@",
            "a@b@c",
            "gemini-2.5-pro:generateContent#",
            "../../v1beta/files?x=",
            "x:countTokens?alt=json&",
            "gemini-2.5-flash/../../cachedContents",
            "a b",
            "..",
            "gemini%2F",
        ] {
            assert!(check_model(bad).is_err(), "{bad:?} passed");
        }
    }

    #[test]
    fn urls_for_gemini_api_and_vertex() {
        assert_eq!(
            url(GEMINI_API_BASE, "gemini-2.5-flash", false, None),
            "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent"
        );
        assert_eq!(
            url(GEMINI_API_BASE, "models/gemini-2.5-flash", true, None),
            "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
        );
        let target = VertexTarget {
            project: "my-proj".into(),
            location: "us-central1".into(),
        };
        assert_eq!(
            url(
                &vertex_base("us-central1"),
                "gemini-2.5-pro",
                true,
                Some(&target)
            ),
            "https://us-central1-aiplatform.googleapis.com/v1/projects/my-proj/locations/us-central1/publishers/google/models/gemini-2.5-pro:streamGenerateContent?alt=sse"
        );
        assert_eq!(
            vertex_base("global"),
            "https://aiplatform.googleapis.com/v1"
        );
    }
}
