//! `cost_guard`: refuses a request whose estimated cost passes a per-request ceiling (400
//! `cost_limit_exceeded`, in the client's format, naming the ceiling), and cuts a stream whose
//! running cost passes a per-stream ceiling with an error event in the client's format.
//!
//! The estimate is the one budgets reserve ([`super::estimate`]): the prompt with the model's
//! tokenizer plus the output the request allows, at the price of the model the request resolves
//! to by default. A stream's running cost counts its output at about four characters a token
//! (running the tokenizer on every event would cost more than the rest of the stream path); the
//! recorded cost is still the provider's own count. A model without a price is let through.

pub mod config;

use std::sync::Arc;

use arc_swap::ArcSwap;
use async_trait::async_trait;

use self::config::{Ceilings, CostGuardConfig};
use super::registry::{ModuleConfig, ModuleSpec};
use super::{
    Hooks, Module, ModuleDeps, ModuleError, StreamDecision, StreamEvent, StreamWindow, Verdict,
};
use crate::cost::{Price, PriceTable, Tokens};
use crate::providers::ProviderRegistry;
use crate::request::{ApiError, RequestCtx};

pub const SPEC: ModuleSpec = ModuleSpec {
    name: "cost_guard",
    description: "refuses a request whose estimated cost passes a ceiling; cuts a stream whose running cost passes one",
    // After `defaults_and_overrides` (22) so a forced max_tokens is counted; before `budgets`
    // (30), so a refused request reserves nothing.
    order: 28,
    finish_order: 28,
    enabled_by_default: false,
    required: super::registry::never_required,
    default_config: CostGuardConfig::default_json,
    check: CostGuardConfig::check,
    build,
};

fn build(config: &serde_json::Value, deps: &ModuleDeps) -> Result<Arc<dyn Module>, ModuleError> {
    let config = CostGuardConfig::parse(config).map_err(ModuleError::Config)?;
    super::estimate::preload_tokenizers(deps, true);
    Ok(Arc::new(CostGuard {
        config,
        providers: deps.providers.clone(),
        prices: deps.prices.clone(),
    }))
}

pub struct CostGuard {
    config: CostGuardConfig,
    providers: Arc<ProviderRegistry>,
    prices: Arc<ArcSwap<PriceTable>>,
}

/// A stream under a ceiling (this module's slot): its price, its prompt and its output so far.
#[derive(Clone)]
struct Running {
    price: Price,
    prompt_tokens: u64,
    output_chars: usize,
    ceiling: i64,
    /// Where the ceiling is set, for the error message.
    field: String,
}

/// `$0.001234`: nano-dollars as dollars, to the micro-dollar (rounded up, so the figure shown is
/// never under the ceiling it passed).
pub fn usd(nanos: i64) -> String {
    let micros = (nanos.max(0) + 999) / 1000;
    format!("${}.{:06}", micros / 1_000_000, micros % 1_000_000)
}

/// A ceiling in nano-dollars and the config field that sets it.
type Ceiling = (i64, String);

impl CostGuard {
    /// The ceilings for the request's model, and the config field each comes from.
    fn ceilings(&self, model: &str) -> (Option<Ceiling>, Option<Ceiling>) {
        let named = |field: String, v: Option<i64>| v.map(|v| (v, field));
        match self.config.models.get(model) {
            Some(Ceilings {
                max_request_nanos,
                max_stream_nanos,
            }) => (
                named(
                    format!("models.{model}.max_request_nanos"),
                    *max_request_nanos,
                ),
                named(
                    format!("models.{model}.max_stream_nanos"),
                    *max_stream_nanos,
                ),
            ),
            None => (
                named("max_request_nanos".into(), self.config.max_request_nanos),
                named("max_stream_nanos".into(), self.config.max_stream_nanos),
            ),
        }
    }
}

#[async_trait]
impl Module for CostGuard {
    fn name(&self) -> &'static str {
        "cost_guard"
    }

    fn hooks(&self) -> Hooks {
        Hooks::REQUEST_NOW
    }

    fn on_request_now(&self, ctx: &mut RequestCtx) -> Result<Verdict, ModuleError> {
        let (request_ceiling, stream_ceiling) = self.ceilings(&ctx.request.requested_model);
        if request_ceiling.is_none() && (stream_ceiling.is_none() || !ctx.request.stream) {
            return Ok(Verdict::Continue);
        }
        let prices = self.prices.load();
        let Some((prompt_tokens, price)) =
            super::estimate::prompt_and_price(ctx, &self.providers, &prices)
        else {
            return Ok(Verdict::Continue);
        };
        if let Some((ceiling, field)) = request_ceiling {
            let tokens =
                super::estimate::tokens(ctx, &self.providers, self.config.default_max_tokens);
            let estimate = price.cost_nanos(&tokens);
            if estimate > ceiling {
                let message = format!(
                    "the estimated cost of this request, {} ({} prompt tokens and up to {} output tokens at {}'s prices), exceeds the per-request ceiling of {} (modules.cost_guard.{field} = {ceiling}); lower max_tokens or shorten the prompt",
                    usd(estimate),
                    tokens.prompt,
                    tokens.completion,
                    ctx.request.requested_model,
                    usd(ceiling),
                );
                return Ok(Verdict::Reject(ApiError::CostLimit { message }));
            }
        }
        if let Some((ceiling, field)) = stream_ceiling.filter(|_| ctx.request.stream) {
            ctx.slots.insert(Running {
                price,
                prompt_tokens,
                output_chars: 0,
                ceiling,
                field,
            });
        }
        Ok(Verdict::Continue)
    }

    fn stream_window(&self) -> Option<StreamWindow> {
        let any_stream_ceiling = self.config.max_stream_nanos.is_some()
            || self
                .config
                .models
                .values()
                .any(|c| c.max_stream_nanos.is_some());
        any_stream_ceiling.then_some(StreamWindow::WATCH)
    }

    fn on_event(&self, ctx: &mut RequestCtx, event: &mut StreamEvent) -> StreamDecision {
        let Some(running) = ctx.slots.get_mut::<Running>() else {
            return StreamDecision::Pass;
        };
        if event.text().is_empty() {
            return StreamDecision::Pass;
        }
        running.output_chars += event.text().len();
        let output_tokens = running.output_chars.div_ceil(4) as u64;
        let cost = running.price.cost_nanos(&Tokens {
            prompt: running.prompt_tokens,
            completion: output_tokens,
            ..Tokens::default()
        });
        if cost <= running.ceiling {
            return StreamDecision::Pass;
        }
        let message = format!(
            "this stream's running cost, about {} after about {output_tokens} output tokens, passed the per-stream ceiling of {} (modules.cost_guard.{} = {}); the stream was cut",
            usd(cost),
            usd(running.ceiling),
            running.field,
            running.ceiling,
        );
        // Once: whatever follows the error is dropped by the relay.
        ctx.slots.remove::<Running>();
        StreamDecision::End(ApiError::CostLimit { message })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn dollars_are_shown_to_the_micro_dollar_rounded_up() {
        assert_eq!(usd(1_000_000), "$0.001000");
        assert_eq!(usd(1_000_001), "$0.001001");
        assert_eq!(usd(2_500_000_000), "$2.500000");
    }

    #[test]
    fn config_errors_name_the_field() {
        let err = CostGuardConfig::check(&json!({"max_request_nanos": 0}))
            .err()
            .unwrap_or_default();
        assert!(err.starts_with("max_request_nanos"), "{err}");
        let err = CostGuardConfig::check(&json!({"models": {"gpt-4o": {"max_stream_nanos": -1}}}))
            .err()
            .unwrap_or_default();
        assert!(err.starts_with("models.gpt-4o.max_stream_nanos"), "{err}");
        let err = CostGuardConfig::check(&json!({"max_request_usd": 1}))
            .err()
            .unwrap_or_default();
        assert!(err.contains("max_request_usd"), "{err}");
    }
}
