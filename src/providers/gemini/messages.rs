//! Canonical chat messages as Gemini `systemInstruction` parts and alternating `contents` turns
//! (`user` / `model`): text, inline and file images, function calls and function responses, for
//! [`super::request::from_chat`]. The walk itself is the shared one ([`crate::providers::walk`]);
//! this file says what one message becomes.

use serde_json::{Map, Value, json};

use super::{TranslateError, invalid, unsupported};
use crate::providers::translate::tool_call_parts;
use crate::providers::walk::{MessageVisitor, walk};

pub(super) fn translate_messages(
    messages: &[Value],
) -> Result<(Vec<Value>, Vec<Value>), TranslateError> {
    let walked = walk(messages, &mut Messages)?;
    Ok(walked.turns_json("model", "parts"))
}

/// Canonical messages as Gemini parts.
struct Messages;

impl MessageVisitor for Messages {
    const ROLE_MISSING: &'static str = "missing";

    fn system(&mut self, message: &Value, path: &str) -> Result<Vec<Value>, TranslateError> {
        text_only_parts(message.get("content"), path)
    }

    fn user(&mut self, message: &Value, path: &str) -> Result<Vec<Value>, TranslateError> {
        user_parts(message.get("content"), path)
    }

    fn assistant(&mut self, message: &Value, path: &str) -> Result<Vec<Value>, TranslateError> {
        assistant_parts(message, path)
    }

    fn tool(&mut self, messages: &[Value], i: usize, path: &str) -> Result<Value, TranslateError> {
        tool_response_part(messages, i, path)
    }

    fn other_role(&mut self, role: &str, path: &str) -> Result<(), TranslateError> {
        Err(unsupported(
            format!("{path}.role"),
            format!("role {role:?} is not supported by Gemini"),
        ))
    }
}

fn text_only_parts(content: Option<&Value>, param: &str) -> Result<Vec<Value>, TranslateError> {
    match content {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(text_part(s).into_iter().collect()),
        Some(Value::Array(parts)) => {
            let mut out = Vec::new();
            for (j, part) in parts.iter().enumerate() {
                if part.get("type").and_then(Value::as_str) != Some("text") {
                    return Err(unsupported(
                        format!("{param}.content[{j}]"),
                        "only text parts are allowed here",
                    ));
                }
                let text = part.get("text").and_then(Value::as_str).unwrap_or_default();
                out.extend(text_part(text));
            }
            Ok(out)
        }
        Some(_) => Err(invalid(
            format!("{param}.content"),
            "expected a string or an array",
        )),
    }
}

fn text_part(text: &str) -> Option<Value> {
    // Gemini rejects empty text parts.
    (!text.is_empty()).then(|| json!({ "text": text }))
}

fn user_parts(content: Option<&Value>, param: &str) -> Result<Vec<Value>, TranslateError> {
    let parts = match content {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::String(s)) => return Ok(text_part(s).into_iter().collect()),
        Some(Value::Array(parts)) => parts,
        Some(_) => {
            return Err(invalid(
                format!("{param}.content"),
                "expected a string or an array",
            ));
        }
    };
    let mut out = Vec::new();
    for (j, part) in parts.iter().enumerate() {
        let p = format!("{param}.content[{j}]");
        match part.get("type").and_then(Value::as_str) {
            Some("text") => {
                out.extend(text_part(
                    part.get("text").and_then(Value::as_str).unwrap_or_default(),
                ));
            }
            Some("image_url") => {
                let url = part
                    .get("image_url")
                    .and_then(|u| u.get("url"))
                    .and_then(Value::as_str)
                    .ok_or_else(|| invalid(format!("{p}.image_url.url"), "missing"))?;
                out.push(image_part(url, &p)?);
            }
            Some("input_audio") => {
                let audio = part.get("input_audio");
                let data = audio
                    .and_then(|a| a.get("data"))
                    .and_then(Value::as_str)
                    .ok_or_else(|| invalid(format!("{p}.input_audio.data"), "missing"))?;
                let mime = match audio.and_then(|a| a.get("format")).and_then(Value::as_str) {
                    Some("wav") => "audio/wav",
                    Some("mp3") => "audio/mp3",
                    other => {
                        return Err(unsupported(
                            format!("{p}.input_audio.format"),
                            format!("audio format {other:?} is not supported"),
                        ));
                    }
                };
                out.push(json!({ "inlineData": { "mimeType": mime, "data": data } }));
            }
            Some("file") => {
                let data_url = part
                    .get("file")
                    .and_then(|f| f.get("file_data"))
                    .and_then(Value::as_str)
                    .ok_or_else(|| {
                        unsupported(
                            format!("{p}.file"),
                            "only inline file_data (a data: URL) can be sent to Gemini",
                        )
                    })?;
                let (mime, data) = parse_data_url(data_url).ok_or_else(|| {
                    invalid(format!("{p}.file.file_data"), "expected a base64 data: URL")
                })?;
                out.push(json!({ "inlineData": { "mimeType": mime, "data": data } }));
            }
            other => {
                return Err(unsupported(
                    p,
                    format!("content part type {other:?} is not supported by Gemini"),
                ));
            }
        }
    }
    Ok(out)
}

fn image_part(url: &str, param: &str) -> Result<Value, TranslateError> {
    if url.starts_with("data:") {
        let (mime, data) = parse_data_url(url).ok_or_else(|| {
            invalid(
                format!("{param}.image_url.url"),
                "expected a base64 data: URL",
            )
        })?;
        return Ok(json!({ "inlineData": { "mimeType": mime, "data": data } }));
    }
    if url.starts_with("https://") || url.starts_with("http://") || url.starts_with("gs://") {
        return Ok(json!({ "fileData": { "fileUri": url, "mimeType": guess_image_mime(url) } }));
    }
    Err(unsupported(
        format!("{param}.image_url.url"),
        "only http(s), gs:// and data: URLs are supported",
    ))
}

/// `data:<mime>;base64,<data>` -> (mime, data).
pub(crate) fn parse_data_url(url: &str) -> Option<(&str, &str)> {
    let rest = url.strip_prefix("data:")?;
    let (meta, data) = rest.split_once(',')?;
    let mime = meta.strip_suffix(";base64")?;
    (!mime.is_empty()).then_some((mime, data))
}

fn guess_image_mime(url: &str) -> &'static str {
    let path = url
        .split(['?', '#'])
        .next()
        .unwrap_or(url)
        .to_ascii_lowercase();
    match path.rsplit('.').next() {
        Some("png") => "image/png",
        Some("gif") => "image/gif",
        Some("webp") => "image/webp",
        Some("heic") => "image/heic",
        Some("heif") => "image/heif",
        // jpg, jpeg, and URLs without an extension: JPEG is the common case.
        _ => "image/jpeg",
    }
}

fn assistant_parts(message: &Value, param: &str) -> Result<Vec<Value>, TranslateError> {
    let mut parts = text_only_parts(message.get("content"), param)?;
    if let Some(signature) = message.get("x_thought_signature").and_then(Value::as_str)
        && let Some(Value::Object(last)) = parts.last_mut()
    {
        last.insert("thoughtSignature".into(), json!(signature));
    }
    if let Some(calls) = message.get("tool_calls").and_then(Value::as_array) {
        for (k, call) in calls.iter().enumerate() {
            let p = format!("{param}.tool_calls[{k}]");
            let (name, args) = tool_call_parts(call, &p)?;
            if !args.is_object() {
                return Err(invalid(
                    format!("{p}.function.arguments"),
                    "Gemini needs the arguments as a JSON object",
                ));
            }
            let mut part = Map::new();
            part.insert("functionCall".into(), json!({ "name": name, "args": args }));
            if let Some(signature) = call.get("x_thought_signature").and_then(Value::as_str) {
                part.insert("thoughtSignature".into(), json!(signature));
            }
            parts.push(Value::Object(part));
        }
    }
    Ok(parts)
}

fn tool_response_part(messages: &[Value], i: usize, param: &str) -> Result<Value, TranslateError> {
    let message = &messages[i];
    let id = message
        .get("tool_call_id")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid(format!("{param}.tool_call_id"), "missing"))?;
    // Search backwards: generated ids (`call_0`, ...) repeat across turns, and the nearest earlier
    // call with this id is the one being answered.
    let name = messages[..i]
        .iter()
        .rev()
        .filter(|m| m.get("role").and_then(Value::as_str) == Some("assistant"))
        .filter_map(|m| m.get("tool_calls").and_then(Value::as_array))
        .flatten()
        .find(|call| call.get("id").and_then(Value::as_str) == Some(id))
        .and_then(|call| call.get("function"))
        .and_then(|f| f.get("name"))
        .and_then(Value::as_str)
        .ok_or_else(|| {
            invalid(
                format!("{param}.tool_call_id"),
                format!("no earlier assistant tool call has id {id:?}"),
            )
        })?;
    let text = match message.get("content") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(""),
        _ => String::new(),
    };
    let response = match serde_json::from_str::<Value>(&text) {
        Ok(obj @ Value::Object(_)) => obj,
        _ => json!({ "output": text }),
    };
    Ok(json!({ "functionResponse": { "name": name, "response": response } }))
}
