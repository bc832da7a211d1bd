//! Anthropic Messages API translators, provider side: the canonical OpenAI chat request becomes a
//! `POST /v1/messages` body ([`request::from_chat`]), a Messages answer becomes a `chat.completion`
//! ([`response::to_chat`]), Anthropic SSE events become `chat.completion.chunk`s
//! ([`stream::Decoder`]) and Anthropic error bodies become OpenAI ones ([`error::error_to_openai`]).
//! All of it is pure: no I/O, no HTTP, the clock only for `created`. The inbound direction (an
//! Anthropic-SDK client calling any provider) lives in `crate::wire::anthropic` and reuses
//! [`TranslateError`] and [`TranslateOptions`] from here.
//!
//! Golden files: `tests/fixtures/anthropic/` (sources listed in its README).
//! Reference: <https://platform.claude.com/docs/en/api/messages>,
//! <https://platform.claude.com/docs/en/build-with-claude/streaming>.
//!
//! Facts a reader must keep in mind:
//! - Usage: Anthropic's `input_tokens` EXCLUDES `cache_read_input_tokens` and
//!   `cache_creation_input_tokens`; canonical `prompt_tokens` is their sum. Anthropic does not
//!   report thinking tokens apart from `output_tokens`, so `completion_tokens_details` is absent.
//! - Thinking: `reasoning_effort` becomes `thinking` in one of two styles, chosen from the upstream
//!   model name by [`thinking_style`] (budgets were removed from Claude Opus 4.7 and later and are
//!   deprecated on the 4.6 models, which take `thinking: {"type":"adaptive"}` plus
//!   `output_config.effort` instead):
//!
//!   | `reasoning_effort` | budget style (`budget_tokens`) | adaptive style (`output_config.effort`) |
//!   |---|---|---|
//!   | `none` | no `thinking` | no `thinking` |
//!   | `minimal`, `low` | 1024 | `low` |
//!   | `medium` | 4096 | `medium` |
//!   | `high`, `xhigh` | 16384 | `high` |
//!
//!   An exact `x_thinking_budget` (set by the Anthropic inbound side) wins over the table in the
//!   budget style. The budget must stay below `max_tokens`; when it does not, `max_tokens` becomes
//!   budget + the requested (or default) `max_tokens`, so the visible answer keeps its room.
//! - `max_tokens` is required by Anthropic: [`DEFAULT_MAX_TOKENS`] when the client sent none.

pub mod adapter;
pub mod error;
pub mod native;
pub mod request;
pub mod response;
pub mod stream;

use thiserror::Error;

/// `max_tokens` sent when the client gave neither `max_tokens` nor `max_completion_tokens`.
pub const DEFAULT_MAX_TOKENS: u64 = 4096;

/// Anthropic's smallest accepted `thinking.budget_tokens`.
pub const MIN_THINKING_BUDGET: u64 = 1024;

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
    /// The provider reported an error inside an otherwise successful stream (an Anthropic `error`
    /// event). `error_type` is Anthropic's (`overloaded_error`, ...); `status` is the HTTP status
    /// that type has outside a stream (see [`error::status_for_type`]).
    #[error("provider error {error_type}: {message}")]
    ProviderError {
        status: u16,
        error_type: String,
        message: String,
    },
}

/// How a request is translated when it carries something the target cannot honour.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TranslateOptions {
    /// Drop unsupported parameters instead of rejecting the request.
    pub drop_unsupported: bool,
}

impl TranslateOptions {
    /// `Err(Unsupported)` unless unsupported parameters are to be dropped; the caller skips the
    /// parameter on `Ok`.
    pub(crate) fn reject(&self, param: &str, message: &str) -> Result<(), TranslateError> {
        if self.drop_unsupported {
            Ok(())
        } else {
            Err(TranslateError::Unsupported {
                param: param.to_string(),
                message: message.to_string(),
            })
        }
    }
}

pub(crate) fn invalid(param: &str, message: &str) -> TranslateError {
    TranslateError::Invalid {
        param: param.to_string(),
        message: message.to_string(),
    }
}

/// How a model is asked to think.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ThinkingStyle {
    /// `thinking: {"type":"enabled","budget_tokens":N}` (Claude 3.7 to 4.5).
    Budget,
    /// `thinking: {"type":"adaptive"}` + `output_config: {"effort": ...}` (Claude 4.6 and later).
    Adaptive,
}

/// Model families that take only thinking budgets. Matched as substrings so that Bedrock
/// (`anthropic.claude-sonnet-4-5-...`) and Vertex (`claude-sonnet-4-5@...`) ids match too. Every
/// other model, including unknown future ones, gets the adaptive style, which is the only one
/// Claude Opus 4.7 and later accept.
const BUDGET_ONLY_MODELS: &[&str] = &[
    "claude-3-",
    "claude-sonnet-4-0",
    "claude-sonnet-4-2025",
    "claude-sonnet-4@",
    "claude-sonnet-4-5",
    "claude-opus-4-0",
    "claude-opus-4-2025",
    "claude-opus-4@",
    "claude-opus-4-1",
    "claude-opus-4-5",
    "claude-haiku-4-5",
];

pub fn thinking_style(upstream_model: &str) -> ThinkingStyle {
    let model = upstream_model.to_ascii_lowercase();
    if BUDGET_ONLY_MODELS.iter().any(|m| model.contains(m)) {
        ThinkingStyle::Budget
    } else {
        ThinkingStyle::Adaptive
    }
}

/// Anthropic `stop_reason` -> OpenAI `finish_reason`. `pause_turn` (a server-tool loop paused) and
/// unknown future reasons read as `stop`; `model_context_window_exceeded` is a truncation.
pub(crate) fn finish_reason(stop_reason: Option<&str>) -> &'static str {
    match stop_reason {
        Some("max_tokens") | Some("model_context_window_exceeded") => "length",
        Some("tool_use") => "tool_calls",
        Some("refusal") => "content_filter",
        _ => "stop",
    }
}

/// The `refusal` text for a `stop_reason: refusal` answer: Anthropic's `stop_details.explanation`
/// when it gave one (streaming classifiers give none).
pub(crate) fn refusal_text(stop_details: Option<&serde_json::Value>) -> String {
    stop_details
        .and_then(|d| d.get("explanation"))
        .and_then(|e| e.as_str())
        .filter(|e| !e.is_empty())
        .map(str::to_string)
        .unwrap_or_else(|| "the model declined to respond (anthropic stop_reason: refusal)".into())
}

/// Test helper: compares two JSON values and panics with both pretty-printed and the first path
/// where they differ.
#[cfg(test)]
pub(crate) fn assert_json_eq(actual: &serde_json::Value, expected: &serde_json::Value) {
    fn first_diff(a: &serde_json::Value, e: &serde_json::Value, path: String) -> Option<String> {
        use serde_json::Value;
        match (a, e) {
            (Value::Object(am), Value::Object(em)) => {
                for key in am.keys().chain(em.keys()) {
                    let (av, ev) = (am.get(key), em.get(key));
                    match (av, ev) {
                        (Some(av), Some(ev)) => {
                            if let Some(d) = first_diff(av, ev, format!("{path}.{key}")) {
                                return Some(d);
                            }
                        }
                        _ => return Some(format!("{path}.{key}: {av:?} vs expected {ev:?}")),
                    }
                }
                None
            }
            (Value::Array(aa), Value::Array(ea)) => {
                if aa.len() != ea.len() {
                    return Some(format!(
                        "{path}: length {} vs expected {}",
                        aa.len(),
                        ea.len()
                    ));
                }
                aa.iter()
                    .zip(ea)
                    .enumerate()
                    .find_map(|(i, (av, ev))| first_diff(av, ev, format!("{path}[{i}]")))
            }
            _ if a == e => None,
            _ => Some(format!("{path}: {a} vs expected {e}")),
        }
    }
    if let Some(diff) = first_diff(actual, expected, "$".into()) {
        panic!(
            "JSON differs at {diff}\n--- actual\n{}\n--- expected\n{}",
            serde_json::to_string_pretty(actual).unwrap_or_default(),
            serde_json::to_string_pretty(expected).unwrap_or_default()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thinking_style_follows_the_model_family() {
        assert_eq!(
            thinking_style("claude-sonnet-4-5-20250929"),
            ThinkingStyle::Budget
        );
        assert_eq!(
            thinking_style("claude-haiku-4-5-20251001"),
            ThinkingStyle::Budget
        );
        assert_eq!(
            thinking_style("claude-3-7-sonnet-20250219"),
            ThinkingStyle::Budget
        );
        assert_eq!(
            thinking_style("anthropic.claude-opus-4-1-20250805-v1:0"),
            ThinkingStyle::Budget
        );
        assert_eq!(thinking_style("claude-opus-4-8"), ThinkingStyle::Adaptive);
        assert_eq!(thinking_style("claude-opus-4-7"), ThinkingStyle::Adaptive);
        assert_eq!(thinking_style("claude-sonnet-4-6"), ThinkingStyle::Adaptive);
    }

    #[test]
    fn stop_reasons_map_to_finish_reasons() {
        assert_eq!(finish_reason(Some("end_turn")), "stop");
        assert_eq!(finish_reason(Some("stop_sequence")), "stop");
        assert_eq!(finish_reason(Some("pause_turn")), "stop");
        assert_eq!(finish_reason(Some("max_tokens")), "length");
        assert_eq!(
            finish_reason(Some("model_context_window_exceeded")),
            "length"
        );
        assert_eq!(finish_reason(Some("tool_use")), "tool_calls");
        assert_eq!(finish_reason(Some("refusal")), "content_filter");
        assert_eq!(finish_reason(None), "stop");
    }
}
