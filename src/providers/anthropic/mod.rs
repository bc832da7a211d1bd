//! Anthropic Messages API translators, provider side: the canonical OpenAI chat request becomes a
//! `POST /v1/messages` body ([`request::from_chat`]), a Messages answer becomes a `chat.completion`
//! ([`response::to_chat`]), Anthropic SSE events become `chat.completion.chunk`s
//! ([`stream::Decoder`]) and Anthropic error bodies become OpenAI ones ([`error::error_to_openai`]).
//! All of it is pure: no I/O, no HTTP, the clock only for `created`. The inbound direction (an
//! Anthropic-SDK client calling any provider) lives in `crate::wire::anthropic`; both share
//! [`TranslateError`] and [`TranslateOptions`] from `crate::wire::translate`.
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
mod messages;
pub mod native;
pub mod request;
pub mod response;
#[cfg(test)]
mod round_trip;
pub mod stream;

/// `max_tokens` sent when the client gave neither `max_tokens` nor `max_completion_tokens`.
pub const DEFAULT_MAX_TOKENS: u64 = 4096;

/// Anthropic's smallest accepted `thinking.budget_tokens`.
pub const MIN_THINKING_BUDGET: u64 = 1024;

pub(crate) use crate::wire::translate::invalid;
pub use crate::wire::translate::{TranslateError, TranslateOptions};

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

#[cfg(test)]
pub(crate) use crate::wire::translate::assert_json_eq;

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
