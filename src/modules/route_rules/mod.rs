//! `route_rules`: chooses the model by rules evaluated in order: the prompt's token count (small
//! prompts to a cheap model), a regular expression on the last user message, a header or a key's
//! metadata value, the UTC time of day, or a tag (from `tags`). The first rule whose conditions
//! all hold sets the model the request asks for; the trace records its name (`route_rule`).
//!
//! Runs before `routing`, so the chosen name is then resolved like a client's (alias, group,
//! fallbacks), and after `tags` and `prompt_templates`, so rules see the tags and the rendered
//! prompt. The prompt is counted only when a rule asks for it, once per request. Model calls a
//! module makes itself are not rerouted.

pub mod config;

use std::sync::Arc;

use async_trait::async_trait;

use self::config::{RouteRule, RouteRulesConfig, compile_regex, parse_time_range};
use super::registry::{ModuleConfig, ModuleSpec};
use super::{Hooks, Module, ModuleDeps, ModuleError, Verdict};
use crate::modules::auth::models::glob_match;
use crate::providers::ProviderRegistry;
use crate::request::RequestCtx;
use crate::wire::openai::{Inbound, Role};

pub const SPEC: ModuleSpec = ModuleSpec {
    name: "route_rules",
    description: "chooses the model by ordered rules: prompt tokens, a regex on the last user message, header, key metadata, UTC time, tag",
    order: 36,
    finish_order: 36,
    enabled_by_default: false,
    required: super::registry::never_required,
    default_config: RouteRulesConfig::default_json,
    check: RouteRulesConfig::check,
    build,
};

fn build(value: &serde_json::Value, deps: &ModuleDeps) -> Result<Arc<dyn Module>, ModuleError> {
    let config = RouteRulesConfig::parse(value).map_err(ModuleError::Config)?;
    let mut rules = Vec::with_capacity(config.rules.len());
    for rule in config.rules {
        // Checked by `validate` above; compiled once here, never on the request path.
        let regex = rule
            .last_user_matches
            .as_deref()
            .map(compile_regex)
            .transpose()
            .map_err(ModuleError::Config)?;
        let window = rule
            .utc_time
            .as_deref()
            .map(parse_time_range)
            .transpose()
            .map_err(ModuleError::Config)?;
        rules.push(Compiled {
            rule,
            regex,
            window,
        });
    }
    if rules
        .iter()
        .any(|r| r.rule.max_prompt_tokens.is_some() || r.rule.min_prompt_tokens.is_some())
    {
        super::estimate::preload_tokenizers(deps, true);
    }
    Ok(Arc::new(RouteRules {
        rules,
        providers: deps.providers.clone(),
    }))
}

struct Compiled {
    rule: RouteRule,
    regex: Option<regex::Regex>,
    /// Minutes of the UTC day: start (included), end (excluded).
    window: Option<(u32, u32)>,
}

pub struct RouteRules {
    rules: Vec<Compiled>,
    providers: Arc<ProviderRegistry>,
}

/// The text of the last user message (or a completion's prompt), parts joined by newlines.
fn last_user_text(parsed: Option<&Inbound>) -> String {
    match parsed {
        Some(Inbound::Chat(chat)) => chat
            .messages
            .iter()
            .rev()
            .find(|m| m.role == Role::User)
            .map(|m| m.texts().join("\n"))
            .unwrap_or_default(),
        Some(other) => other.prompt_texts().join("\n"),
        None => String::new(),
    }
}

fn in_window((start, end): (u32, u32), ts_ms: i64) -> bool {
    let minute = (ts_ms.rem_euclid(86_400_000) / 60_000) as u32;
    if start < end {
        (start..end).contains(&minute)
    } else {
        minute >= start || minute < end
    }
}

impl RouteRules {
    /// Whether every condition of `compiled` holds; the prompt is counted at most once, and
    /// only when a rule reaching that condition asks for it.
    fn holds(
        &self,
        compiled: &Compiled,
        ctx: &mut RequestCtx,
        last_user: &mut Option<String>,
    ) -> bool {
        let rule = &compiled.rule;
        if !rule.models.is_empty()
            && !rule
                .models
                .iter()
                .any(|g| glob_match(g, &ctx.request.requested_model))
        {
            return false;
        }
        if let Some(tag) = &rule.tag
            && !ctx.request.tags.iter().any(|t| t == tag)
        {
            return false;
        }
        if let Some(name) = &rule.header {
            let value = ctx.request.headers.get(name).and_then(|v| v.to_str().ok());
            let fits = match (&rule.header_value, value) {
                (_, None) => false,
                (None, Some(_)) => true,
                (Some(want), Some(got)) => want == got,
            };
            if !fits {
                return false;
            }
        }
        if let Some(field) = &rule.key_metadata {
            let value = ctx
                .identity
                .grant
                .as_deref()
                .and_then(|g| g.metadata.get(field));
            let fits = match (&rule.key_metadata_value, value) {
                (_, None) => false,
                (None, Some(_)) => true,
                (Some(want), Some(got)) => want == got,
            };
            if !fits {
                return false;
            }
        }
        if let Some(window) = compiled.window
            && !in_window(window, ctx.timings.ts_ms)
        {
            return false;
        }
        if let Some(regex) = &compiled.regex {
            let text = last_user.get_or_insert_with(|| last_user_text(ctx.request.parsed.as_ref()));
            if !regex.is_match(text) {
                return false;
            }
        }
        if rule.max_prompt_tokens.is_some() || rule.min_prompt_tokens.is_some() {
            let tokens = super::estimate::prompt_tokens(ctx, &self.providers);
            if rule.max_prompt_tokens.is_some_and(|max| tokens > max)
                || rule.min_prompt_tokens.is_some_and(|min| tokens < min)
            {
                return false;
            }
        }
        true
    }
}

#[async_trait]
impl Module for RouteRules {
    fn name(&self) -> &'static str {
        "route_rules"
    }

    fn hooks(&self) -> Hooks {
        Hooks::REQUEST_NOW
    }

    fn on_request_now(&self, ctx: &mut RequestCtx) -> Result<Verdict, ModuleError> {
        if ctx.identity.internal.is_some() {
            return Ok(Verdict::Continue);
        }
        let mut last_user = None;
        let Some(fired) = self
            .rules
            .iter()
            .find(|compiled| self.holds(compiled, ctx, &mut last_user))
        else {
            return Ok(Verdict::Continue);
        };
        let model = fired.rule.model.clone();
        ctx.route.rule = Some(fired.rule.name.clone());
        if model != ctx.request.requested_model {
            // The parsed body keeps the client's name: each attempt writes the upstream model
            // into the body it sends, and a body whose name differs is never passed as received.
            ctx.request.requested_model = model;
            // What was estimated for the old model no longer holds.
            super::estimate::forget(ctx);
        }
        Ok(Verdict::Continue)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn err(value: serde_json::Value) -> String {
        RouteRulesConfig::parse(&json!({ "rules": [value] }))
            .err()
            .unwrap_or_default()
    }

    #[test]
    fn config_errors_name_the_field() {
        assert!(err(json!({"name": "", "model": "m", "tag": "a"})).starts_with("rules[0].name"));
        assert!(err(json!({"name": "r", "model": "", "tag": "a"})).starts_with("rules[0].model"));
        assert!(err(json!({"name": "r", "model": "m"})).starts_with("rules[0]:"));
        assert!(
            err(json!({"name": "r", "model": "m", "last_user_matches": "(("}))
                .starts_with("rules[0].last_user_matches")
        );
        assert!(
            err(json!({"name": "r", "model": "m", "utc_time": "25:00-01:00"}))
                .starts_with("rules[0].utc_time")
        );
        assert!(
            err(json!({"name": "r", "model": "m", "min_prompt_tokens": 9, "max_prompt_tokens": 3}))
                .starts_with("rules[0].min_prompt_tokens")
        );
        assert!(
            err(json!({"name": "r", "model": "m", "max_prompt_tokens": "few"}))
                .starts_with("rules[0].max_prompt_tokens")
        );
    }

    #[test]
    fn time_windows_wrap_past_midnight() {
        let hour = |h: i64| h * 3_600_000;
        assert!(in_window((9 * 60, 17 * 60), hour(10)));
        assert!(!in_window((9 * 60, 17 * 60), hour(17)));
        assert!(in_window((22 * 60, 6 * 60), hour(23)));
        assert!(in_window((22 * 60, 6 * 60), hour(2)));
        assert!(!in_window((22 * 60, 6 * 60), hour(12)));
    }
}
