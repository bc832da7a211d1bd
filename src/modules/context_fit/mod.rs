//! `context_fit`: when a chat conversation exceeds the target model's context window, trims it
//! by the declared strategy (drop the oldest turns after the system prompt, a tool call with its
//! results as one; or cut the longest message) or refuses it with a 400 naming the window.
//!
//! Runs after `routing` (order 55), on the canonical request, so Chat, Messages and Responses
//! clients (a stored conversation expanded by `responses` included) are fitted alike. The
//! window is the config's `context_windows` entry for the model as routing resolved it (a model,
//! an alias's target or a group), else the price table's `max_input_tokens` of the model it
//! resolves to by default; a model with neither passes unchecked. Counted with that model's
//! tokenizer, chat framing included. A trimmed request is re-encoded and no longer goes to a
//! provider natively (the client's own JSON would still hold the whole conversation); the
//! response header `x-stockyard-context-fit` says what was done.

pub mod config;
pub mod trim;

use std::sync::Arc;

use arc_swap::ArcSwap;
use async_trait::async_trait;
use hyper::header::HeaderValue;

use self::config::{ContextFitConfig, Strategy};
use super::registry::{ModuleConfig, ModuleSpec};
use super::{Hooks, Module, ModuleDeps, ModuleError, Verdict};
use crate::cost::PriceTable;
use crate::cost::tokenize::{count_message_text, count_text};
use crate::providers::ProviderRegistry;
use crate::request::{ApiError, RequestCtx};
use crate::wire::openai::{ChatMessage, Inbound};

pub const SPEC: ModuleSpec = ModuleSpec {
    name: "context_fit",
    description: "fits conversations into the model's context window: drop oldest turns, truncate the longest message, or refuse (400)",
    order: 55,
    finish_order: 55,
    enabled_by_default: false,
    required: super::registry::never_required,
    default_config: ContextFitConfig::default_json,
    check: ContextFitConfig::check,
    build,
};

/// The chat framing the tokenizer module counts per message (OpenAI's documented 3), and to
/// prime the reply.
const TOKENS_PER_MESSAGE: u64 = 3;
const REPLY_PRIMING: u64 = 3;

fn build(value: &serde_json::Value, deps: &ModuleDeps) -> Result<Arc<dyn Module>, ModuleError> {
    let config = ContextFitConfig::parse(value).map_err(ModuleError::Config)?;
    // Every chat request is counted once this module is on: load the vocabulary early.
    super::estimate::preload_tokenizers(deps, true);
    Ok(Arc::new(ContextFit {
        config,
        providers: deps.providers.clone(),
        prices: deps.prices.clone(),
    }))
}

pub struct ContextFit {
    config: ContextFitConfig,
    providers: Arc<ProviderRegistry>,
    prices: Arc<ArcSwap<PriceTable>>,
}

impl ContextFit {
    /// The window (after the reserve) and the model whose tokenizer counts, for `model`.
    fn window_for(&self, model: &str) -> Option<(u64, String)> {
        let resolved = self.providers.resolve(model).ok();
        let tokenizer_model = resolved
            .as_ref()
            .map_or_else(|| model.to_string(), |r| r.upstream_model.clone());
        let window = self
            .config
            .context_windows
            .get(model)
            .copied()
            .or_else(|| {
                let route = resolved.as_ref()?;
                self.prices
                    .load()
                    .context_window(route.provider.name(), &route.upstream_model)
            })?;
        Some((
            window.saturating_sub(self.config.reserve_tokens),
            tokenizer_model,
        ))
    }
}

fn message_tokens(model: &str, message: &ChatMessage) -> u64 {
    message
        .texts()
        .iter()
        .map(|t| count_message_text(model, t))
        .sum::<u64>()
        + TOKENS_PER_MESSAGE
}

#[async_trait]
impl Module for ContextFit {
    fn name(&self) -> &'static str {
        "context_fit"
    }

    fn hooks(&self) -> Hooks {
        Hooks::REQUEST_NOW
    }

    fn on_request_now(&self, ctx: &mut RequestCtx) -> Result<Verdict, ModuleError> {
        let model = ctx
            .route
            .target_model
            .clone()
            .unwrap_or_else(|| ctx.request.requested_model.clone());
        let Some((window, tokenizer)) = self.window_for(&model) else {
            return Ok(Verdict::Continue);
        };
        // A module before (a budget, a cost ceiling) may have counted this prompt already in
        // the same vocabulary: for a chat request that count is this module's total, framing
        // included, so a conversation that fits is never counted twice.
        let counted = super::estimate::counted_prompt_tokens(ctx, &tokenizer);
        let Some(Inbound::Chat(chat)) = ctx.request.parsed.as_mut() else {
            return Ok(Verdict::Continue);
        };
        if counted.is_some_and(|total| total <= window) {
            return Ok(Verdict::Continue);
        }
        let count = |m: &ChatMessage| message_tokens(&tokenizer, m);
        let total = chat.messages.iter().map(count).sum::<u64>() + REPLY_PRIMING;
        if total <= window {
            return Ok(Verdict::Continue);
        }
        let budget = window.saturating_sub(REPLY_PRIMING);
        let refuse = || {
            Verdict::Reject(ApiError::InvalidField {
                param: Some("messages".into()),
                message: format!(
                    "the conversation has {total} tokens; model {model}'s context window is \
                     {window} tokens{}",
                    match self.config.strategy {
                        Strategy::Refuse => String::new(),
                        _ => " and trimming it cannot fit it".to_string(),
                    }
                ),
            })
        };
        let done = match self.config.strategy {
            Strategy::Refuse => None,
            Strategy::DropOldest => trim::drop_oldest(&mut chat.messages, budget, &count)
                .map(|n| format!("dropped {n} messages")),
            Strategy::TruncateLongest => {
                trim::truncate_longest(&mut chat.messages, budget, &count, &|text: &str| {
                    count_text(&tokenizer, text)
                })
                .map(|n| format!("truncated {n} messages"))
            }
        };
        let Some(done) = done else {
            return Ok(refuse());
        };
        ctx.request_edited().map_err(|e| ModuleError::Failed {
            module: "context_fit",
            message: format!("cannot encode the trimmed request: {e}"),
        })?;
        super::estimate::forget(ctx);
        if let Ok(value) = HeaderValue::from_str(&format!("{done}; window {window}")) {
            ctx.result
                .response_headers
                .insert("x-stockyard-context-fit", value);
        }
        Ok(Verdict::Continue)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn config_errors_name_the_field() {
        let err = |v| ContextFitConfig::parse(&v).err().unwrap_or_default();
        assert!(err(json!({"strategy": "shrink"})).starts_with("strategy"));
        assert!(err(json!({"context_windows": {"m": 0}})).starts_with("context_windows.m"));
        assert!(
            err(json!({"context_windows": {"m": 10}, "reserve_tokens": 10}))
                .starts_with("reserve_tokens")
        );
        assert!(err(json!({"reserve": 1})).contains("reserve"));
    }
}
