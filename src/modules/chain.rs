//! The chain in force: an immutable, ordered list of built modules behind an `ArcSwap`.
//!
//! A request loads the chain once and runs to its end on it. A change builds a whole new chain
//! first ([`Chain::build`], which can fail and then changes nothing) and swaps it in; only the swap
//! is visible to requests, and it cannot fail. No lock sits on the request path.

use std::sync::Arc;

use arc_swap::ArcSwap;
use serde::Serialize;
use serde_json::Value;

use super::registry::{Catalogue, ModuleSpec};
use super::{
    Answer, FailPolicy, Hooks, Module, ModuleDeps, ModuleError, Outcome, StreamWindow, Verdict,
};
use crate::request::RequestCtx;
use crate::store::ModuleState;

pub type ChainHandle = Arc<ArcSwap<Chain>>;

pub struct Chain {
    /// Enabled modules in request order.
    modules: Vec<Arc<dyn Module>>,
    /// Those of them that implement `on_request`, and `on_response`, in request order: a module
    /// is called only for the hooks it declares (`Module::hooks`).
    requesting: Vec<Hooked>,
    responding: Vec<Hooked>,
    /// Those that implement `on_finish`, in finish order.
    finishing: Vec<Hooked>,
    /// The modules that watch streams, in request order, with their windows; empty means a
    /// stream pays nothing for the stream hook.
    stream_watchers: Vec<(Arc<dyn Module>, StreamWindow)>,
    /// The stream watchers that implement `on_stream_end`, in request order.
    stream_enders: Vec<Arc<dyn Module>>,
    /// The state of every known module, enabled or not, in chain order.
    states: Vec<ModuleState>,
    max_body_bytes: usize,
}

/// A module on one hook's list, and which of the hook's two forms it implements.
pub struct Hooked {
    pub module: Arc<dyn Module>,
    /// The async form (a boxed future); otherwise the plain `_now` twin, called directly.
    waits: bool,
}

impl Hooked {
    /// The modules of `modules` that implement `hook` in either form, in the order given.
    fn list<'a>(
        modules: impl IntoIterator<Item = &'a Arc<dyn Module>>,
        hook: Hooks,
        plain: Hooks,
    ) -> Vec<Hooked> {
        modules
            .into_iter()
            .filter_map(|module| {
                let hooks = module.hooks();
                (hooks.has(hook) || hooks.has(plain)).then(|| Hooked {
                    module: module.clone(),
                    waits: hooks.has(hook),
                })
            })
            .collect()
    }

    pub async fn on_request(&self, ctx: &mut RequestCtx) -> Result<Verdict, ModuleError> {
        if !self.waits {
            self.module.on_request_now(ctx)
        } else if self.module.has_work(Hooks::REQUEST, ctx) {
            self.module.on_request(ctx).await
        } else {
            Ok(Verdict::Continue)
        }
    }

    pub async fn on_response(
        &self,
        ctx: &mut RequestCtx,
        answer: &mut Answer,
    ) -> Result<(), ModuleError> {
        if !self.waits {
            self.module.on_response_now(ctx, answer)
        } else if self.module.has_work(Hooks::RESPONSE, ctx) {
            self.module.on_response(ctx, answer).await
        } else {
            Ok(())
        }
    }

    pub async fn on_finish(&self, ctx: &mut RequestCtx, outcome: Outcome) {
        if !self.waits {
            self.module.on_finish_now(ctx, outcome)
        } else if self.module.has_work(Hooks::FINISH, ctx) {
            self.module.on_finish(ctx, outcome).await
        }
    }
}

/// A module as listed by the admin API and `stockyard modules list`.
#[derive(Clone, Debug, Serialize)]
pub struct ModuleListing {
    pub name: &'static str,
    pub description: &'static str,
    pub order: u16,
    pub finish_order: u16,
    pub enabled: bool,
    pub config: Value,
    pub scope: String,
}

/// The body limit when no module sets one: a backstop against unbounded reads.
pub const HARD_BODY_LIMIT: usize = 64 * 1024 * 1024;

impl Chain {
    /// Builds every enabled module from `states`, in chain order. Modules missing from `states`
    /// take their defaults.
    pub fn build(states: &[ModuleState], deps: &ModuleDeps) -> Result<Chain, ModuleError> {
        let mut specs: Vec<&ModuleSpec> = deps.catalogue.specs().to_vec();
        specs.sort_by_key(|s| s.order);
        let mut modules: Vec<Arc<dyn Module>> = Vec::new();
        let mut finish_orders = Vec::new();
        let mut full_states = Vec::new();
        for spec in specs {
            let mut state = states
                .iter()
                .find(|s| s.name == spec.name)
                .cloned()
                .unwrap_or_else(|| ModuleState {
                    name: spec.name.to_string(),
                    enabled: spec.enabled_by_default,
                    config: (spec.default_config)(),
                    scope: "global".into(),
                });
            if !state.enabled
                && let Some(why) = (spec.required)(deps)
            {
                // A disabled state stored before the module became required (say, keys were
                // added since) must not leave the proxy open.
                tracing::warn!(
                    module = spec.name,
                    why,
                    "module stored as disabled stays enabled"
                );
                state.enabled = true;
            }
            if state.enabled {
                let module = (spec.build)(&state.config, deps)
                    .map_err(|e| ModuleError::Config(format!("modules.{}: {e}", spec.name)))?;
                modules.push(module);
                finish_orders.push(spec.finish_order);
            }
            full_states.push(state);
        }
        let mut in_finish_order: Vec<(u16, &Arc<dyn Module>)> =
            finish_orders.into_iter().zip(modules.iter()).collect();
        in_finish_order.sort_by_key(|(order, _)| *order);
        let finishing = Hooked::list(
            in_finish_order.into_iter().map(|(_, m)| m),
            Hooks::FINISH,
            Hooks::FINISH_NOW,
        );
        let stream_watchers: Vec<(Arc<dyn Module>, StreamWindow)> = modules
            .iter()
            .filter_map(|m| Some((m.clone(), m.stream_window()?)))
            .collect();
        let stream_enders = stream_watchers
            .iter()
            .filter(|(m, _)| m.hooks().has(Hooks::STREAM_END))
            .map(|(m, _)| m.clone())
            .collect();
        let max_body_bytes = modules
            .iter()
            .filter_map(|m| m.max_body_bytes())
            .min()
            .unwrap_or(HARD_BODY_LIMIT)
            .min(HARD_BODY_LIMIT);
        Ok(Chain {
            requesting: Hooked::list(&modules, Hooks::REQUEST, Hooks::REQUEST_NOW),
            responding: Hooked::list(&modules, Hooks::RESPONSE, Hooks::RESPONSE_NOW),
            finishing,
            modules,
            stream_watchers,
            stream_enders,
            states: full_states,
            max_body_bytes,
        })
    }

    pub fn modules(&self) -> &[Arc<dyn Module>] {
        &self.modules
    }

    /// The enabled modules that implement `on_request`, in request order.
    pub fn requesting(&self) -> &[Hooked] {
        &self.requesting
    }

    /// The enabled modules that implement `on_response`, in request order.
    pub fn responding(&self) -> &[Hooked] {
        &self.responding
    }

    /// The enabled modules that implement `on_finish`, in finish order.
    pub fn finishing(&self) -> &[Hooked] {
        &self.finishing
    }

    pub fn stream_watchers(&self) -> &[(Arc<dyn Module>, StreamWindow)] {
        &self.stream_watchers
    }

    /// The stream watchers that implement `on_stream_end`, in request order.
    pub fn stream_enders(&self) -> &[Arc<dyn Module>] {
        &self.stream_enders
    }

    pub fn max_body_bytes(&self) -> usize {
        self.max_body_bytes
    }

    /// Runs every module's `on_shutdown`, in chain order.
    pub async fn shutdown(&self) {
        let shutting = self
            .modules
            .iter()
            .filter(|m| m.hooks().has(Hooks::SHUTDOWN));
        for module in shutting {
            module.on_shutdown().await;
        }
    }

    pub fn states(&self) -> &[ModuleState] {
        &self.states
    }

    pub fn listing(&self, catalogue: &Catalogue) -> Vec<ModuleListing> {
        listing_of(&self.states, catalogue)
    }
}

/// The listing for `states` in chain order, without building any module: what
/// `stockyard modules list` shows from a database it only reads.
pub fn listing_of(states: &[ModuleState], catalogue: &Catalogue) -> Vec<ModuleListing> {
    let mut listing: Vec<ModuleListing> = states
        .iter()
        .filter_map(|state| {
            let spec = catalogue.find(&state.name)?;
            Some(ModuleListing {
                name: spec.name,
                description: spec.description,
                order: spec.order,
                finish_order: spec.finish_order,
                enabled: state.enabled,
                config: state.config.clone(),
                scope: state.scope.clone(),
            })
        })
        .collect();
    listing.sort_by_key(|m| m.order);
    listing
}

/// Whether a hook's failure stops the request, per the module's policy; logs either way.
pub fn hook_failed(module: &dyn Module, err: &ModuleError) -> bool {
    tracing::warn!(module = module.name(), error = %err, "module hook failed");
    module.fail_policy() == FailPolicy::Closed
}
