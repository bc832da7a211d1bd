//! A Gemini `GenerateContentRequest` as a canonical chat request. Text, inline images, function
//! calls and responses, the system instruction, generation settings and function tools
//! translate; what only Gemini itself can honour (Google Search, code execution, cached
//! content, other part kinds) is refused by name, unless the request goes to Gemini natively.

use serde_json::{Map, Value, json};

use crate::wire::translate::TranslateError;

fn unsupported(param: &str, message: &str) -> TranslateError {
    TranslateError::Unsupported {
        param: param.to_string(),
        message: message.to_string(),
    }
}

fn invalid(param: &str, message: &str) -> TranslateError {
    TranslateError::Invalid {
        param: param.to_string(),
        message: message.to_string(),
    }
}

/// Options: `lenient` drops what cannot be translated instead of refusing it.
pub fn to_chat(body: &Value, lenient: bool) -> Result<Value, TranslateError> {
    let Some(req) = body.as_object() else {
        return Err(invalid("body", "must be a JSON object"));
    };
    let mut out = Map::new();
    out.insert(
        "model".into(),
        req.get("model").cloned().unwrap_or(Value::Null),
    );
    let mut messages = Vec::new();
    if let Some(system) = req
        .get("systemInstruction")
        .or_else(|| req.get("system_instruction"))
    {
        let text = parts_text(system, "systemInstruction")?;
        messages.push(json!({"role": "system", "content": text}));
    }
    let Some(contents) = req.get("contents").and_then(Value::as_array) else {
        return Err(invalid("contents", "is required (an array of contents)"));
    };
    // Function calls get ids by position; a response answers the oldest open call of its name.
    let mut open_calls: Vec<(String, String)> = Vec::new();
    let mut call_count = 0;
    for (i, content) in contents.iter().enumerate() {
        let param = format!("contents[{i}]");
        let role = content["role"].as_str().unwrap_or("user");
        let parts = content["parts"]
            .as_array()
            .ok_or_else(|| invalid(&format!("{param}.parts"), "must be an array"))?;
        let mut texts: Vec<Value> = Vec::new();
        let mut calls = Vec::new();
        for (j, part) in parts.iter().enumerate() {
            let pp = format!("{param}.parts[{j}]");
            if let Some(text) = part.get("text").and_then(Value::as_str) {
                if part.get("thought").and_then(Value::as_bool) == Some(true) {
                    continue;
                }
                texts.push(json!({"type": "text", "text": text}));
            } else if let Some(data) = part.get("inlineData").or_else(|| part.get("inline_data")) {
                let mime = data["mimeType"]
                    .as_str()
                    .or(data["mime_type"].as_str())
                    .unwrap_or("application/octet-stream");
                let bytes = data["data"].as_str().unwrap_or_default();
                if !mime.starts_with("image/") {
                    if lenient {
                        continue;
                    }
                    return Err(unsupported(
                        &pp,
                        "only image inline data translates to other providers",
                    ));
                }
                texts.push(json!({"type": "image_url", "image_url": {"url": format!("data:{mime};base64,{bytes}")}}));
            } else if let Some(call) = part
                .get("functionCall")
                .or_else(|| part.get("function_call"))
            {
                let name = call["name"].as_str().unwrap_or_default().to_string();
                let id = call["id"]
                    .as_str()
                    .map(String::from)
                    .unwrap_or_else(|| format!("call_{call_count}"));
                call_count += 1;
                open_calls.push((name.clone(), id.clone()));
                let args = call.get("args").cloned().unwrap_or_else(|| json!({}));
                calls.push(json!({"id": id, "type": "function",
                    "function": {"name": name, "arguments": args.to_string()}}));
            } else if let Some(response) = part
                .get("functionResponse")
                .or_else(|| part.get("function_response"))
            {
                let name = response["name"].as_str().unwrap_or_default();
                let id = match response["id"].as_str() {
                    Some(id) => id.to_string(),
                    None => match open_calls.iter().position(|(n, _)| n == name) {
                        Some(at) => open_calls.remove(at).1,
                        None => {
                            return Err(invalid(
                                &pp,
                                "a functionResponse answers no earlier functionCall of its name",
                            ));
                        }
                    },
                };
                messages.push(json!({"role": "tool", "tool_call_id": id,
                    "content": response.get("response").cloned().unwrap_or(Value::Null).to_string()}));
            } else if lenient {
                continue;
            } else {
                return Err(unsupported(
                    &pp,
                    "this kind of part does not translate to other providers",
                ));
            }
        }
        match role {
            "model" => {
                let text: String = texts.iter().filter_map(|t| t["text"].as_str()).collect();
                let mut message = json!({"role": "assistant",
                    "content": if text.is_empty() { Value::Null } else { Value::String(text) }});
                if !calls.is_empty() {
                    message["tool_calls"] = Value::Array(calls);
                }
                if !message["content"].is_null() || message.get("tool_calls").is_some() {
                    messages.push(message);
                }
            }
            "user" | "function" | "tool" => {
                if !texts.is_empty() {
                    let all_text = texts.iter().all(|t| t["type"] == "text");
                    let content = if all_text {
                        Value::String(texts.iter().filter_map(|t| t["text"].as_str()).collect())
                    } else {
                        Value::Array(texts)
                    };
                    messages.push(json!({"role": "user", "content": content}));
                }
            }
            other => {
                return Err(invalid(
                    &format!("{param}.role"),
                    &format!("must be user or model (got {other:?})"),
                ));
            }
        }
    }
    out.insert("messages".into(), Value::Array(messages));
    if let Some(config) = req
        .get("generationConfig")
        .or_else(|| req.get("generation_config"))
    {
        generation_config(config, &mut out, lenient)?;
    }
    if let Some(tools) = req.get("tools").and_then(Value::as_array) {
        let mut functions = Vec::new();
        for (i, tool) in tools.iter().enumerate() {
            let declarations = tool
                .get("functionDeclarations")
                .or_else(|| tool.get("function_declarations"));
            match declarations.and_then(Value::as_array) {
                Some(list) => {
                    for f in list {
                        let parameters = f
                            .get("parametersJsonSchema")
                            .or_else(|| f.get("parameters"))
                            .cloned()
                            .unwrap_or_else(|| json!({"type": "object", "properties": {}}));
                        functions.push(json!({"type": "function", "function": {
                            "name": f["name"], "description": f.get("description").cloned().unwrap_or(Value::Null),
                            "parameters": lower_types(&parameters)}}));
                    }
                }
                None if lenient => {}
                None => {
                    return Err(unsupported(
                        &format!("tools[{i}]"),
                        "only functionDeclarations translate to other providers (Google Search and code execution are Gemini's own)",
                    ));
                }
            }
        }
        if !functions.is_empty() {
            out.insert("tools".into(), Value::Array(functions));
        }
    }
    if let Some(mode) = body["toolConfig"]["functionCallingConfig"]["mode"].as_str() {
        let allowed =
            body["toolConfig"]["functionCallingConfig"]["allowedFunctionNames"].as_array();
        let choice = match (mode, allowed.map(Vec::as_slice)) {
            ("ANY", Some([one])) => json!({"type": "function", "function": {"name": one}}),
            ("ANY", _) => json!("required"),
            ("NONE", _) => json!("none"),
            _ => json!("auto"),
        };
        out.insert("tool_choice".into(), choice);
    }
    if req.get("cachedContent").is_some() && !lenient {
        return Err(unsupported(
            "cachedContent",
            "a Gemini cache is known to Gemini only",
        ));
    }
    if body["stream"] == true {
        out.insert("stream".into(), Value::Bool(true));
    }
    Ok(Value::Object(out))
}

fn parts_text(content: &Value, param: &str) -> Result<String, TranslateError> {
    if let Some(text) = content.as_str() {
        return Ok(text.to_string());
    }
    let parts = content["parts"]
        .as_array()
        .ok_or_else(|| invalid(&format!("{param}.parts"), "must be an array"))?;
    Ok(parts
        .iter()
        .filter_map(|p| p["text"].as_str())
        .collect::<Vec<_>>()
        .join("\n"))
}

/// Gemini's OpenAPI schemas name types in capitals (`OBJECT`); JSON Schema in lowercase.
fn lower_types(schema: &Value) -> Value {
    match schema {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let v = match (k.as_str(), v) {
                        ("type", Value::String(t)) => Value::String(t.to_ascii_lowercase()),
                        _ => lower_types(v),
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(lower_types).collect()),
        other => other.clone(),
    }
}

fn generation_config(
    config: &Value,
    out: &mut Map<String, Value>,
    lenient: bool,
) -> Result<(), TranslateError> {
    let Some(config) = config.as_object() else {
        return Err(invalid("generationConfig", "must be an object"));
    };
    for (key, value) in config {
        let target = match key.as_str() {
            "temperature" => "temperature",
            "topP" | "top_p" => "top_p",
            "maxOutputTokens" | "max_output_tokens" => "max_completion_tokens",
            "candidateCount" | "candidate_count" => "n",
            "stopSequences" | "stop_sequences" => "stop",
            "seed" => "seed",
            "presencePenalty" | "presence_penalty" => "presence_penalty",
            "frequencyPenalty" | "frequency_penalty" => "frequency_penalty",
            "responseMimeType" | "response_mime_type" => {
                if value == "application/json"
                    && !config.contains_key("responseSchema")
                    && !config.contains_key("responseJsonSchema")
                {
                    out.insert("response_format".into(), json!({"type": "json_object"}));
                }
                continue;
            }
            "responseSchema"
            | "responseJsonSchema"
            | "response_schema"
            | "response_json_schema" => {
                out.insert(
                    "response_format".into(),
                    json!({"type": "json_schema",
                    "json_schema": {"name": "response", "schema": lower_types(value)}}),
                );
                continue;
            }
            // Sampling details other providers have no use for, and Gemini's thinking budget.
            "topK" | "top_k" | "thinkingConfig" | "thinking_config" | "responseModalities" => {
                continue;
            }
            other if lenient => {
                let _ = other;
                continue;
            }
            other => {
                return Err(unsupported(
                    &format!("generationConfig.{other}"),
                    "does not translate to other providers",
                ));
            }
        };
        out.insert(target.into(), value.clone());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_conversation_with_a_function_call_translates() {
        let body = json!({"model": "m", "systemInstruction": {"parts": [{"text": "Be brief."}]},
            "contents": [
                {"role": "user", "parts": [{"text": "Weather in Paris?"}]},
                {"role": "model", "parts": [{"functionCall": {"name": "weather", "args": {"city": "Paris"}}}]},
                {"role": "user", "parts": [{"functionResponse": {"name": "weather", "response": {"temp": 20}}}]}],
            "tools": [{"functionDeclarations": [{"name": "weather", "parameters": {"type": "OBJECT", "properties": {"city": {"type": "STRING"}}}}]}],
            "generationConfig": {"temperature": 0.2, "maxOutputTokens": 50, "stopSequences": ["x"]}});
        let chat = to_chat(&body, false).unwrap_or_default();
        assert_eq!(chat["messages"][0]["role"], "system");
        assert_eq!(chat["messages"][2]["tool_calls"][0]["id"], "call_0");
        assert_eq!(chat["messages"][3]["tool_call_id"], "call_0");
        assert_eq!(chat["tools"][0]["function"]["parameters"]["type"], "object");
        assert_eq!(chat["max_completion_tokens"], 50);
        assert_eq!(chat["stop"][0], "x");
    }

    #[test]
    fn google_search_is_refused_unless_lenient() {
        let body = json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}], "tools": [{"googleSearch": {}}]});
        let err = to_chat(&body, false)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("tools[0]"), "{err}");
        assert!(to_chat(&body, true).is_ok());
    }
}
