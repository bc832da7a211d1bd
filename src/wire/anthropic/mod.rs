//! The Anthropic Messages API as clients send it, translated to and from the canonical OpenAI chat
//! format so that an Anthropic-SDK client can call any provider. All pure functions:
//! [`request::to_chat`] (Messages request -> canonical request), [`response::from_chat`]
//! (`chat.completion` -> Messages answer), [`stream::Encoder`] (`chat.completion.chunk`s ->
//! Anthropic SSE events), [`error::from_openai`] (OpenAI error -> Anthropic error) and
//! [`count_tokens::count_tokens`] (`POST /v1/messages/count_tokens`).
//!
//! The mappings mirror the provider side (`providers/anthropic`) in the other direction, and the
//! two compose: an Anthropic request sent through `to_chat` then the provider side's `from_chat`
//! keeps its thinking blocks (with signatures) and its `cache_control` marks. Errors and options
//! are the ones both sides share, [`TranslateError`] and [`TranslateOptions`].

pub mod count_tokens;
pub mod error;
pub mod request;
pub mod response;
pub mod stream;

pub use crate::wire::translate::{TranslateError, TranslateOptions};

/// The effort a thinking budget stands for: the inverse of the provider side's budget table
/// (the module doc of `providers/anthropic`), for a request that carries only an exact budget.
pub fn effort_for_budget(budget: u64) -> &'static str {
    match budget {
        0..4096 => "low",
        4096..16384 => "medium",
        _ => "high",
    }
}
