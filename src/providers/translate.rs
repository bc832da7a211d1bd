//! What the provider translators share beyond the translation error and options (which live in
//! `crate::wire::translate`, shared with the client side): the conversion of that error into an
//! [`Untranslatable`] request, the `created` clock, the tool helpers, and the OpenAI embeddings
//! answer every provider's vectors end up in.

use base64::Engine;
use serde_json::{Value, json};

use super::Untranslatable;

impl From<TranslateError> for Untranslatable {
    fn from(err: TranslateError) -> Untranslatable {
        match err {
            TranslateError::Unsupported { param, message }
            | TranslateError::Invalid { param, message } => Untranslatable { param, message },
            other => Untranslatable {
                param: "messages".into(),
                message: other.to_string(),
            },
        }
    }
}

pub use crate::wire::translate::{TranslateError, TranslateOptions};
pub(crate) use crate::wire::translate::{invalid, unsupported};

/// Seconds since the Unix epoch, for the `created` field (the one clock read translators may do).
pub(crate) fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A request's `tools[i]` as (name, function object), `None` when it is not a function tool and
/// options say to drop what the provider cannot take (else that is refused, naming `param`).
pub(crate) fn function_tool<'a>(
    tool: &'a Value,
    param: &str,
    provider: &str,
    opts: &TranslateOptions,
) -> Result<Option<(&'a str, &'a Value)>, TranslateError> {
    if tool.get("type").and_then(Value::as_str) != Some("function") {
        if opts.drop_unsupported {
            return Ok(None);
        }
        return Err(unsupported(
            param,
            format!("only function tools are supported by {provider}"),
        ));
    }
    let function = tool
        .get("function")
        .ok_or_else(|| invalid(format!("{param}.function"), "missing"))?;
    let name = function
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid(format!("{param}.function.name"), "missing"))?;
    Ok(Some((name, function)))
}

/// An assistant tool call's name and its arguments parsed from their JSON string (empty
/// arguments are `{}`), each missing or malformed part named under `param`.
pub(crate) fn tool_call_parts<'a>(
    call: &'a Value,
    param: &str,
) -> Result<(&'a str, Value), TranslateError> {
    let function = call
        .get("function")
        .ok_or_else(|| invalid(format!("{param}.function"), "missing"))?;
    let name = function
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid(format!("{param}.function.name"), "missing"))?;
    let arguments = function
        .get("arguments")
        .and_then(Value::as_str)
        .unwrap_or("{}");
    let parsed = if arguments.trim().is_empty() {
        json!({})
    } else {
        serde_json::from_str(arguments).map_err(|e| {
            invalid(
                format!("{param}.function.arguments"),
                format!("not valid JSON: {e}"),
            )
        })?
    };
    Ok((name, parsed))
}

/// How the client wants vectors encoded (`encoding_format`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EncodingFormat {
    Float,
    Base64,
}

/// Reads `encoding_format` from the client's request (default `float`).
pub fn encoding_format(req: &Value) -> Result<EncodingFormat, TranslateError> {
    match req.get("encoding_format") {
        None | Some(Value::Null) => Ok(EncodingFormat::Float),
        Some(Value::String(s)) if s == "float" => Ok(EncodingFormat::Float),
        Some(Value::String(s)) if s == "base64" => Ok(EncodingFormat::Base64),
        Some(other) => Err(invalid(
            "encoding_format",
            format!("expected \"float\" or \"base64\", got {other}"),
        )),
    }
}

/// Provider vectors (`None` where the answer had none) as an OpenAI embeddings answer.
pub(crate) fn embedding_list(
    vectors: &[Option<&Value>],
    model: &str,
    format: EncodingFormat,
    tokens: u64,
) -> Result<Value, TranslateError> {
    let mut data = Vec::with_capacity(vectors.len());
    for (i, values) in vectors.iter().enumerate() {
        let values = values
            .and_then(Value::as_array)
            .ok_or_else(|| TranslateError::Malformed(format!("embedding {i} has no values")))?;
        let floats = values
            .iter()
            .map(|v| {
                v.as_f64().ok_or_else(|| {
                    TranslateError::Malformed(format!("embedding {i} has a non-number"))
                })
            })
            .collect::<Result<Vec<f64>, _>>()?;
        let embedding = match format {
            EncodingFormat::Float => json!(floats),
            EncodingFormat::Base64 => json!(base64_f32(&floats)),
        };
        data.push(json!({"object": "embedding", "index": i, "embedding": embedding}));
    }
    Ok(json!({
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }))
}

/// Base64 of the vector as little-endian f32 bytes (OpenAI's `encoding_format: base64`).
pub fn base64_f32(values: &[f64]) -> String {
    let mut bytes = Vec::with_capacity(values.len() * 4);
    for v in values {
        bytes.extend_from_slice(&(*v as f32).to_le_bytes());
    }
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
