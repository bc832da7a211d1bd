//! `cost`: prices each finished request from its token classes and the price table, in integer
//! nano-dollars. Runs in `on_finish` before `trace`, so the trace row carries the cost. A model with
//! no price costs 0 and is flagged (`price_known = false`).

use std::sync::Arc;

use arc_swap::ArcSwap;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::registry::{ModuleConfig, ModuleSpec};
use super::{Hooks, Module, ModuleDeps, ModuleError, Outcome};
use crate::cost::PriceTable;
use crate::request::RequestCtx;

pub const SPEC: ModuleSpec = ModuleSpec {
    name: "cost",
    description: "prices every request in integer nano-dollars from the model price table",
    order: 80,
    finish_order: 10,
    enabled_by_default: true,
    required: super::registry::never_required,
    default_config: CostConfig::default_json,
    check: CostConfig::check,
    build,
};

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CostConfig {}

impl ModuleConfig for CostConfig {}

fn build(config: &serde_json::Value, deps: &ModuleDeps) -> Result<Arc<dyn Module>, ModuleError> {
    CostConfig::parse(config).map_err(ModuleError::Config)?;
    Ok(Arc::new(Cost {
        prices: deps.prices.clone(),
    }))
}

pub struct Cost {
    prices: Arc<ArcSwap<PriceTable>>,
}

#[async_trait]
impl Module for Cost {
    fn name(&self) -> &'static str {
        "cost"
    }

    fn hooks(&self) -> Hooks {
        Hooks::FINISH_NOW
    }

    fn on_finish_now(&self, ctx: &mut RequestCtx, _outcome: Outcome) {
        // A file or batch call bills nothing itself; what a batch ran is priced per request
        // (`ctx.usage.parts`), each with a context of its own.
        if let Some(crate::wire::openai::Inbound::Resource(_)) = &ctx.request.parsed {
            ctx.usage.cost_nanos = 0;
            ctx.usage.price_known = true;
            return;
        }
        let (Some(provider), Some(model)) = (ctx.provider_name(), ctx.upstream_model()) else {
            return;
        };
        let prices = self.prices.load();
        // The most specific name first (an image's size and quality), then the model actually
        // called; a configured alias may be priced by its own name.
        let price = ctx
            .usage
            .price_name
            .as_deref()
            .and_then(|name| prices.lookup(provider, name))
            .or_else(|| prices.lookup(provider, model))
            .or_else(|| prices.lookup(provider, &ctx.request.requested_model));
        match price {
            Some(price) => {
                ctx.usage.cost_nanos =
                    price.cost_of(&ctx.usage.tokens, &ctx.usage.units, ctx.usage.batch);
                // Units the price does not cover (and no token count to price instead) would
                // cost 0 silently: the price is then unknown.
                ctx.usage.price_known =
                    ctx.usage.units.is_zero() || price.prices_units() || ctx.usage.reported;
            }
            None => {
                ctx.usage.cost_nanos = 0;
                ctx.usage.price_known = false;
            }
        }
    }
}
