//! What the translator folders share: the translation error and options, the helpers that build
//! an error naming its parameter, the `created` clock, and the OpenAI embeddings answer every
//! provider's vectors end up in. (The Anthropic folder keeps its own error type: its stream error
//! carries Anthropic's error type, which the Messages egress needs.)

use base64::Engine;
use serde_json::{Value, json};
use thiserror::Error;

use super::Untranslatable;

/// Why a translation failed.
#[derive(Debug, Error)]
pub enum TranslateError {
    /// A parameter the target cannot honour; `param` names it (e.g. "logit_bias", "messages[2].content[0]").
    #[error("{param}: {message}")]
    Unsupported { param: String, message: String },
    #[error("{param}: {message}")]
    Invalid { param: String, message: String },
    /// The provider's answer does not have the documented shape.
    #[error("malformed provider response: {0}")]
    Malformed(String),
    /// The provider reported an error inside an otherwise successful (200) stream. `body` is the
    /// error already in the OpenAI shape; `status` is the HTTP status that error stands for.
    #[error("provider error {status}: {message}")]
    ProviderError {
        status: u16,
        message: String,
        body: Value,
    },
}

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

/// How strict a request translation is.
#[derive(Clone, Copy, Debug, Default)]
pub struct TranslateOptions {
    /// Drop parameters the target cannot honour instead of rejecting the request.
    pub drop_unsupported: bool,
}

pub(crate) fn unsupported(param: impl Into<String>, message: impl Into<String>) -> TranslateError {
    TranslateError::Unsupported {
        param: param.into(),
        message: message.into(),
    }
}

pub(crate) fn invalid(param: impl Into<String>, message: impl Into<String>) -> TranslateError {
    TranslateError::Invalid {
        param: param.into(),
        message: message.into(),
    }
}

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
