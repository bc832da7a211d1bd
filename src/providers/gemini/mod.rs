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
mod images;
mod messages;
mod native;
pub mod request;
pub mod response;
pub mod schema;
pub mod stream;

use serde_json::Value;

pub use request::{VertexTarget, from_chat, url};
pub use response::to_chat;
pub use stream::Decoder;

pub use super::translate::{TranslateError, TranslateOptions};
pub(crate) use super::translate::{invalid, now_secs, unsupported};

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

    pub(crate) use crate::wire::translate::assert_json_eq;

    pub fn parse(text: &str) -> Value {
        serde_json::from_str(text).expect("fixture is valid JSON")
    }
}
