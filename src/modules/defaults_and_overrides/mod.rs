//! `defaults_and_overrides`: per key, team or model, parameters set when the client sent none
//! (`defaults`), parameters always set (`force`), parameters removed (`strip`) and a system prompt
//! put first. Runs on the canonical request and on the client's own body ([`edit`]), before the
//! limits estimate the request, so a forced `max_tokens` is what budgets and rate limits count.

pub mod config;
mod edit;

use std::sync::Arc;

use async_trait::async_trait;

use self::config::{DefaultsConfig, Rule};
use super::guard::Scope;
use super::registry::{ModuleConfig, ModuleSpec};
use super::{Hooks, Module, ModuleDeps, ModuleError, Verdict};
use crate::request::RequestCtx;

pub const SPEC: ModuleSpec = ModuleSpec {
    name: "defaults_and_overrides",
    description: "per key, team or model: default and forced parameters, parameters stripped, a system prompt prepended",
    // After `request_limits` (20), before `rate_limits` (25) and `budgets` (30), which estimate
    // the request as it will be sent.
    order: 22,
    finish_order: 22,
    enabled_by_default: false,
    required: super::registry::never_required,
    default_config: DefaultsConfig::default_json,
    check: DefaultsConfig::check,
    build,
};

fn build(config: &serde_json::Value, _deps: &ModuleDeps) -> Result<Arc<dyn Module>, ModuleError> {
    let config = DefaultsConfig::parse(config).map_err(ModuleError::Config)?;
    let rules = config
        .rules
        .into_iter()
        .map(|rule| (rule.scope(), rule))
        .collect();
    Ok(Arc::new(DefaultsAndOverrides { rules }))
}

pub struct DefaultsAndOverrides {
    rules: Vec<(Scope, Rule)>,
}

#[async_trait]
impl Module for DefaultsAndOverrides {
    fn name(&self) -> &'static str {
        "defaults_and_overrides"
    }

    fn hooks(&self) -> Hooks {
        Hooks::REQUEST_NOW
    }

    fn on_request_now(&self, ctx: &mut RequestCtx) -> Result<Verdict, ModuleError> {
        let mut changed = false;
        for (scope, rule) in &self.rules {
            if !scope.covers(ctx) {
                continue;
            }
            if let Some(parsed) = ctx.request.parsed.as_mut() {
                changed |= edit::canonical(parsed, rule);
            }
            let endpoint = ctx.request.endpoint;
            if let Some(client) = ctx.request.client_request.as_mut() {
                edit::client(endpoint, Arc::make_mut(client), rule);
            }
        }
        if let Some(parsed) = ctx.request.parsed.as_ref().filter(|_| changed) {
            // The body an OpenAI-format provider gets as sent is the client's bytes: re-encoded.
            ctx.request.body = parsed.to_bytes().map_err(|e| ModuleError::Failed {
                module: "defaults_and_overrides",
                message: format!("cannot encode the changed request: {e}"),
            })?;
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
        let err = DefaultsConfig::check(&json!({"rules": [{"force": {"model": "x"}}]}))
            .err()
            .unwrap_or_default();
        assert!(err.starts_with("rules[0].force.model"), "{err}");
        let err = DefaultsConfig::check(&json!({"rules": [{"strip": ["temperature"]}, {}]}))
            .err()
            .unwrap_or_default();
        assert!(err.starts_with("rules[1]"), "{err}");
        let err = DefaultsConfig::check(&json!({"rules": [{"sytem_prompt": "x"}]}))
            .err()
            .unwrap_or_default();
        assert!(err.contains("sytem_prompt"), "{err}");
        let err = DefaultsConfig::check(&json!({"rules": [{"system_prompt": " "}]}))
            .err()
            .unwrap_or_default();
        assert!(err.starts_with("rules[0].system_prompt"), "{err}");
    }
}
