//! Google Gemini: the Gemini API (`generativelanguage.googleapis.com`, key in `x-goog-api-key`) and
//! Vertex AI (`{location}-aiplatform.googleapis.com`, OAuth bearer token). Both take the same
//! `GenerateContentRequest` body, so one translator serves both; only [`request::url`] and the auth
//! header differ.
//!
//! Everything here is a pure function of JSON values (no I/O, no HTTP): [`request`] turns a
//! canonical (OpenAI Chat Completions) body into a Gemini body, [`response`] turns a Gemini answer
//! into a `chat.completion`, [`stream`] decodes `streamGenerateContent?alt=sse` events one at a time,
//! [`embeddings`] covers `batchEmbedContents` (and Vertex `:predict`), [`error`] maps Gemini errors
//! to the OpenAI error shape. Golden files: `tests/fixtures/gemini/` (sources in its README).
//!
//! References:
//! - <https://ai.google.dev/api/generate-content>
//! - <https://ai.google.dev/gemini-api/docs/thinking>, <https://ai.google.dev/gemini-api/docs/thought-signatures>
//! - <https://cloud.google.com/vertex-ai/generative-ai/docs/model-reference/inference>

pub mod adapter;
pub mod embeddings;
pub mod error;
pub mod request;
pub mod response;
pub mod schema;
pub mod stream;

use serde_json::Value;
use thiserror::Error;

pub use request::{VertexTarget, from_chat, url};
pub use response::to_chat;
pub use stream::Decoder;

/// Why a translation failed. (Each translator folder has its copy until the lead unifies them.)
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

/// The canonical usage object (see `SPEC.md`): `prompt_tokens` includes cached tokens and
/// `completion_tokens` includes reasoning tokens.
pub(crate) fn canonical_usage(prompt: u64, completion: u64, cached: u64, reasoning: u64) -> Value {
    serde_json::json!({
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached},
        "completion_tokens_details": {"reasoning_tokens": reasoning},
    })
}

#[cfg(test)]
pub(crate) mod test_support {
    use serde_json::Value;

    /// Removes the clock-dependent `created` field so fixtures can be compared exactly.
    pub fn strip_created(mut v: Value) -> Value {
        if let Some(obj) = v.as_object_mut() {
            obj.remove("created");
        }
        v
    }

    /// `assert_eq!` on JSON values with both sides pretty-printed, so a failure reads as a diff.
    #[track_caller]
    pub fn assert_json_eq(actual: &Value, expected: &Value) {
        if actual != expected {
            let a = serde_json::to_string_pretty(actual).unwrap_or_default();
            let e = serde_json::to_string_pretty(expected).unwrap_or_default();
            let mut diff = String::new();
            for (i, (la, le)) in a.lines().zip(e.lines()).enumerate() {
                if la != le {
                    diff.push_str(&format!("line {i}:\n  actual:   {la}\n  expected: {le}\n"));
                }
            }
            panic!("JSON differs\n{diff}\n--- actual ---\n{a}\n--- expected ---\n{e}");
        }
    }

    pub fn parse(text: &str) -> Value {
        serde_json::from_str(text).expect("fixture is valid JSON")
    }
}
