//! Canonical chat messages as Converse `system` blocks and alternating `messages` turns: text,
//! images, documents, tool uses and tool results, for [`super::request::from_chat`]. The walk
//! itself is the shared one ([`crate::providers::walk`]); this file says what one message becomes.

use serde_json::{Map, Value, json};

use super::{TranslateError, invalid, unsupported};
use crate::providers::translate::tool_call_parts;
use crate::providers::walk::{MessageVisitor, walk};

/// Returns (system blocks, messages).
pub(super) fn translate_messages(
    messages: &[Value],
) -> Result<(Vec<Value>, Vec<Value>), TranslateError> {
    let walked = walk(messages, &mut Messages)?;
    Ok(walked.turns_json("assistant", "content"))
}

/// Canonical messages as Converse content blocks.
struct Messages;

impl MessageVisitor for Messages {
    const ROLE_MISSING: &'static str = "missing";

    fn system(&mut self, message: &Value, path: &str) -> Result<Vec<Value>, TranslateError> {
        text_blocks(message.get("content"), path)
    }

    fn user(&mut self, message: &Value, path: &str) -> Result<Vec<Value>, TranslateError> {
        user_blocks(message.get("content"), path)
    }

    fn assistant(&mut self, message: &Value, path: &str) -> Result<Vec<Value>, TranslateError> {
        assistant_blocks(message, path)
    }

    fn tool(&mut self, messages: &[Value], i: usize, path: &str) -> Result<Value, TranslateError> {
        tool_result(&messages[i], path)
    }

    fn other_role(&mut self, role: &str, path: &str) -> Result<(), TranslateError> {
        Err(unsupported(
            format!("{path}.role"),
            format!("role {role:?} is not supported by Bedrock"),
        ))
    }
}

fn text_block(text: &str) -> Option<Value> {
    // Converse rejects blank text blocks.
    (!text.trim().is_empty()).then(|| json!({ "text": text }))
}

fn text_blocks(content: Option<&Value>, param: &str) -> Result<Vec<Value>, TranslateError> {
    match content {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(text_block(s).into_iter().collect()),
        Some(Value::Array(parts)) => {
            let mut out = Vec::new();
            for (j, part) in parts.iter().enumerate() {
                if part.get("type").and_then(Value::as_str) != Some("text") {
                    return Err(unsupported(
                        format!("{param}.content[{j}]"),
                        "only text parts are allowed here",
                    ));
                }
                out.extend(text_block(
                    part.get("text").and_then(Value::as_str).unwrap_or_default(),
                ));
            }
            Ok(out)
        }
        Some(_) => Err(invalid(
            format!("{param}.content"),
            "expected a string or an array",
        )),
    }
}

fn user_blocks(content: Option<&Value>, param: &str) -> Result<Vec<Value>, TranslateError> {
    let parts = match content {
        Some(Value::Array(parts)) => parts,
        other => return text_blocks(other, param),
    };
    let mut out = Vec::new();
    for (j, part) in parts.iter().enumerate() {
        let p = format!("{param}.content[{j}]");
        match part.get("type").and_then(Value::as_str) {
            Some("text") => out.extend(text_block(
                part.get("text").and_then(Value::as_str).unwrap_or_default(),
            )),
            Some("image_url") => {
                let url = part
                    .get("image_url")
                    .and_then(|u| u.get("url"))
                    .and_then(Value::as_str)
                    .ok_or_else(|| invalid(format!("{p}.image_url.url"), "missing"))?;
                let Some((mime, data)) = parse_data_url(url) else {
                    return Err(unsupported(
                        format!("{p}.image_url.url"),
                        "Bedrock takes images as bytes only: send a base64 data: URL",
                    ));
                };
                let format = match mime {
                    "image/png" => "png",
                    "image/jpeg" | "image/jpg" => "jpeg",
                    "image/gif" => "gif",
                    "image/webp" => "webp",
                    other => {
                        return Err(unsupported(
                            format!("{p}.image_url.url"),
                            format!("image type {other:?} is not supported by Bedrock"),
                        ));
                    }
                };
                out.push(json!({ "image": { "format": format, "source": { "bytes": data } } }));
            }
            Some("file") => {
                let file = part.get("file");
                let data_url = file
                    .and_then(|f| f.get("file_data"))
                    .and_then(Value::as_str)
                    .ok_or_else(|| {
                        unsupported(
                            format!("{p}.file"),
                            "only inline file_data can be sent to Bedrock",
                        )
                    })?;
                let (mime, data) = parse_data_url(data_url).ok_or_else(|| {
                    invalid(format!("{p}.file.file_data"), "expected a base64 data: URL")
                })?;
                let format = document_format(mime).ok_or_else(|| {
                    unsupported(
                        format!("{p}.file"),
                        format!("document type {mime:?} is not supported by Bedrock"),
                    )
                })?;
                let name = document_name(
                    file.and_then(|f| f.get("filename"))
                        .and_then(Value::as_str)
                        .unwrap_or(""),
                    j,
                );
                out.push(json!({
                    "document": { "format": format, "name": name, "source": { "bytes": data } }
                }));
            }
            other => {
                return Err(unsupported(
                    p,
                    format!("content part type {other:?} is not supported by Bedrock"),
                ));
            }
        }
    }
    Ok(out)
}

/// `data:<mime>;base64,<data>` -> (mime, data).
pub(crate) fn parse_data_url(url: &str) -> Option<(&str, &str)> {
    let rest = url.strip_prefix("data:")?;
    let (meta, data) = rest.split_once(',')?;
    let mime = meta.strip_suffix(";base64")?;
    (!mime.is_empty()).then_some((mime, data))
}

fn document_format(mime: &str) -> Option<&'static str> {
    Some(match mime {
        "application/pdf" => "pdf",
        "text/csv" => "csv",
        "application/msword" => "doc",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document" => "docx",
        "application/vnd.ms-excel" => "xls",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" => "xlsx",
        "text/html" => "html",
        "text/plain" => "txt",
        "text/markdown" => "md",
        _ => return None,
    })
}

/// Converse allows only alphanumerics, single spaces, hyphens, parentheses and square brackets in
/// document names.
fn document_name(filename: &str, index: usize) -> String {
    let stem = filename.rsplit_once('.').map_or(filename, |(s, _)| s);
    let mut name = String::new();
    for c in stem.chars() {
        let c = if c.is_ascii_alphanumeric() || "-()[]".contains(c) {
            c
        } else {
            ' '
        };
        if !(c == ' ' && (name.is_empty() || name.ends_with(' '))) {
            name.push(c);
        }
    }
    let name = name.trim_end().to_string();
    if name.is_empty() {
        format!("document-{index}")
    } else {
        name
    }
}

fn assistant_blocks(message: &Value, param: &str) -> Result<Vec<Value>, TranslateError> {
    let mut blocks = Vec::new();
    if let Some(thinking) = message.get("x_thinking_blocks").and_then(Value::as_array) {
        for (k, block) in thinking.iter().enumerate() {
            match block.get("type").and_then(Value::as_str) {
                Some("thinking") => {
                    let mut text = Map::new();
                    text.insert(
                        "text".into(),
                        block.get("thinking").cloned().unwrap_or_else(|| json!("")),
                    );
                    if let Some(sig) = block.get("signature").filter(|s| s.is_string()) {
                        text.insert("signature".into(), sig.clone());
                    }
                    blocks.push(json!({ "reasoningContent": { "reasoningText": text } }));
                }
                Some("redacted_thinking") => {
                    let data = block.get("data").and_then(Value::as_str).ok_or_else(|| {
                        invalid(format!("{param}.x_thinking_blocks[{k}].data"), "missing")
                    })?;
                    blocks.push(json!({ "reasoningContent": { "redactedContent": data } }));
                }
                other => {
                    return Err(invalid(
                        format!("{param}.x_thinking_blocks[{k}].type"),
                        format!("unknown thinking block type {other:?}"),
                    ));
                }
            }
        }
    }
    blocks.extend(text_blocks(message.get("content"), param)?);
    if let Some(calls) = message.get("tool_calls").and_then(Value::as_array) {
        for (k, call) in calls.iter().enumerate() {
            let p = format!("{param}.tool_calls[{k}]");
            let id = call
                .get("id")
                .and_then(Value::as_str)
                .ok_or_else(|| invalid(format!("{p}.id"), "missing"))?;
            let (name, input) = tool_call_parts(call, &p)?;
            blocks.push(json!({ "toolUse": { "toolUseId": id, "name": name, "input": input } }));
        }
    }
    Ok(blocks)
}

fn tool_result(message: &Value, param: &str) -> Result<Value, TranslateError> {
    let id = message
        .get("tool_call_id")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid(format!("{param}.tool_call_id"), "missing"))?;
    let text = match message.get("content") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(""),
        _ => String::new(),
    };
    let content = match serde_json::from_str::<Value>(&text) {
        Ok(obj @ Value::Object(_)) => json!([{ "json": obj }]),
        // A blank result would be rejected as a blank text block.
        _ if text.trim().is_empty() => json!([{ "text": "(empty)" }]),
        _ => json!([{ "text": text }]),
    };
    Ok(json!({
        "toolResult": { "toolUseId": id, "content": content, "status": "success" }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn document_names_are_sanitized() {
        assert_eq!(
            document_name("Q3 report (final).v2.pdf", 0),
            "Q3 report (final) v2"
        );
        assert_eq!(document_name("", 2), "document-2");
        assert_eq!(document_name("a__b.pdf", 0), "a b");
    }
}
