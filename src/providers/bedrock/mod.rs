//! AWS Bedrock Runtime: the Converse / ConverseStream API (one request shape for every chat model
//! on Bedrock: Anthropic Claude, Amazon Nova, Llama, Mistral, ...) and InvokeModel for embedding,
//! image and rerank models. Requests are signed with SigV4 (service `bedrock`).
//!
//! Everything here is pure (no I/O, no HTTP): [`request`] turns a canonical (OpenAI Chat
//! Completions) body into a Converse body and builds the URL, [`response`] turns a Converse answer
//! into a `chat.completion`, [`eventstream`] decodes the binary `application/vnd.amazon.eventstream`
//! framing, [`stream`] turns ConverseStream events into canonical chunks, [`sigv4`] computes the
//! signing headers, [`embeddings`] covers Titan Text Embeddings V2 and Cohere Embed, [`images`]
//! Nova Canvas, Titan Image Generator and Stability AI, [`rerank`] Cohere and Amazon Rerank (all
//! through InvokeModel), [`error`] maps Bedrock errors to the OpenAI error shape. Golden files: `tests/fixtures/bedrock/` (sources in
//! its README).
//!
//! References:
//! - <https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Converse.html>
//! - <https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ConverseStream.html>

pub mod adapter;
pub mod embeddings;
pub mod error;
pub mod eventstream;
pub mod images;
mod messages;
pub mod native;
pub mod request;
pub mod rerank;
pub mod response;
pub mod sigv4;
pub mod stream;

use serde_json::Value;

pub use request::{from_chat, url};
pub use response::to_chat;
pub use stream::Decoder;

pub use super::translate::{TranslateError, TranslateOptions};
pub(crate) use super::translate::{invalid, now_secs, unsupported};

/// Bedrock `usage` (`TokenUsage`) -> canonical usage. Bedrock's `inputTokens` counts only the
/// input neither read from nor written to the prompt cache
/// (<https://docs.aws.amazon.com/bedrock/latest/userguide/prompt-caching.html>: total input =
/// inputTokens + cacheReadInputTokens + cacheWriteInputTokens), so the three are summed into
/// `prompt_tokens`. Bedrock does not split reasoning out of `outputTokens`, so no
/// `reasoning_tokens` is reported.
pub(crate) fn canonical_usage(usage: &Value) -> Value {
    let count = |key: &str| usage.get(key).and_then(Value::as_u64).unwrap_or(0);
    let read = count("cacheReadInputTokens");
    let write = count("cacheWriteInputTokens");
    let prompt = count("inputTokens") + read + write;
    let completion = count("outputTokens");
    serde_json::json!({
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": read, "cache_creation_tokens": write},
    })
}

/// `stopReason` -> OpenAI `finish_reason`:
///
/// | Bedrock | OpenAI |
/// |---|---|
/// | `end_turn`, `stop_sequence` | `stop` |
/// | `max_tokens`, `model_context_window_exceeded` | `length` |
/// | `tool_use` | `tool_calls` |
/// | `content_filtered`, `guardrail_intervened` | `content_filter` |
/// | anything else (`malformed_model_output`, `malformed_tool_use`, ...) | `stop` |
pub fn finish_reason(stop_reason: &str) -> &'static str {
    match stop_reason {
        "max_tokens" | "model_context_window_exceeded" => "length",
        "tool_use" => "tool_calls",
        "content_filtered" | "guardrail_intervened" => "content_filter",
        _ => "stop",
    }
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
