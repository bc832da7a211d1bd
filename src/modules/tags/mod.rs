//! `tags`: attaches tags to a request from a header (`x-stockyard-tags: a,b`), the virtual
//! key's metadata and rules, into `ctx.request.tags`, where `route_rules` chooses by them; the
//! trace records them (column `tags`) and `stockyard spend --by tag` sums by them.
//!
//! Runs after `auth` (the key's metadata) and before `route_rules` and `routing`. A header tag
//! that is not a valid tag refuses the request (400 naming the header), so a client learns of a
//! typo instead of losing its spend report; tags past `max_tags` are dropped. Model calls a
//! module makes itself inherit nothing and are not tagged.

pub mod config;

use std::sync::Arc;

use async_trait::async_trait;

use self::config::{TagRule, TagsConfig, tag_problem};
use super::registry::{ModuleConfig, ModuleSpec};
use super::{Hooks, Module, ModuleDeps, ModuleError, Verdict};
use crate::modules::auth::models::glob_match;
use crate::request::{ApiError, RequestCtx};

pub const SPEC: ModuleSpec = ModuleSpec {
    name: "tags",
    description: "tags requests from a header, key metadata and rules, for traces, spend reports and route_rules",
    order: 33,
    finish_order: 33,
    enabled_by_default: false,
    required: super::registry::never_required,
    default_config: TagsConfig::default_json,
    check: TagsConfig::check,
    build,
};

fn build(config: &serde_json::Value, _deps: &ModuleDeps) -> Result<Arc<dyn Module>, ModuleError> {
    let config = TagsConfig::parse(config).map_err(ModuleError::Config)?;
    Ok(Arc::new(Tags { config }))
}

pub struct Tags {
    config: TagsConfig,
}

impl Tags {
    fn rule_holds(rule: &TagRule, ctx: &RequestCtx) -> bool {
        rule.model
            .as_deref()
            .is_none_or(|glob| glob_match(glob, &ctx.request.requested_model))
            && rule
                .endpoint
                .as_deref()
                .is_none_or(|e| e == ctx.request.endpoint.as_str())
            && rule.header.as_deref().is_none_or(|name| {
                let value = ctx.request.headers.get(name).and_then(|v| v.to_str().ok());
                match (&rule.header_value, value) {
                    (_, None) => false,
                    (None, Some(_)) => true,
                    (Some(want), Some(got)) => want == got,
                }
            })
    }

    /// Every tag of the request, in order (header, key, rules), without repeats.
    fn collect(&self, ctx: &RequestCtx) -> Result<Vec<String>, ApiError> {
        let mut tags: Vec<String> = Vec::new();
        let add = |tag: &str, tags: &mut Vec<String>| {
            if !tags.iter().any(|t| t == tag) {
                tags.push(tag.to_string());
            }
        };
        if !self.config.header.is_empty() {
            for value in ctx.request.headers.get_all(self.config.header.as_str()) {
                let text = value.to_str().map_err(|_| ApiError::InvalidField {
                    param: Some(self.config.header.clone()),
                    message: format!("header {}: tags must be ASCII", self.config.header),
                })?;
                for tag in text.split(',').map(str::trim).filter(|t| !t.is_empty()) {
                    if let Some(problem) = tag_problem(tag) {
                        return Err(ApiError::InvalidField {
                            param: Some(self.config.header.clone()),
                            message: format!("header {}: {problem}", self.config.header),
                        });
                    }
                    add(tag, &mut tags);
                }
            }
        }
        if let Some(grant) = ctx.identity.grant.as_deref() {
            if !self.config.key_tags_field.is_empty()
                && let Some(value) = grant.metadata.get(&self.config.key_tags_field)
            {
                // The operator wrote these; one that is not a valid tag is skipped, not refused.
                for tag in value.split(',').map(str::trim) {
                    if tag_problem(tag).is_none() {
                        add(tag, &mut tags);
                    }
                }
            }
            for field in &self.config.key_metadata {
                if let Some(value) = grant.metadata.get(field) {
                    let tag = format!("{field}:{value}");
                    if tag_problem(&tag).is_none() {
                        add(&tag, &mut tags);
                    }
                }
            }
        }
        for rule in &self.config.rules {
            if Self::rule_holds(rule, ctx) {
                add(&rule.tag, &mut tags);
            }
        }
        tags.truncate(self.config.max_tags);
        Ok(tags)
    }
}

#[async_trait]
impl Module for Tags {
    fn name(&self) -> &'static str {
        "tags"
    }

    fn hooks(&self) -> Hooks {
        Hooks::REQUEST_NOW
    }

    fn on_request_now(&self, ctx: &mut RequestCtx) -> Result<Verdict, ModuleError> {
        if ctx.identity.internal.is_some() {
            return Ok(Verdict::Continue);
        }
        match self.collect(ctx) {
            Ok(tags) => {
                ctx.request.tags = tags;
                Ok(Verdict::Continue)
            }
            Err(err) => Ok(Verdict::Reject(err)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn err(value: serde_json::Value) -> String {
        TagsConfig::parse(&value).err().unwrap_or_default()
    }

    #[test]
    fn config_errors_name_the_field() {
        assert!(err(json!({"max_tags": 0})).starts_with("max_tags"));
        assert!(err(json!({"header": "bad header"})).starts_with("header"));
        assert!(err(json!({"rules": [{"tag": "a b"}]})).starts_with("rules[0].tag"));
        assert!(
            err(json!({"rules": [{"tag": "a", "endpoint": "chat"}]}))
                .starts_with("rules[0].endpoint")
        );
        assert!(
            err(json!({"rules": [{"tag": "a", "header_value": "x"}]}))
                .starts_with("rules[0].header_value")
        );
        assert!(err(json!({"heder": "x"})).contains("heder"));
    }

    #[test]
    fn tags_are_checked() {
        assert!(tag_problem("team:search/v2").is_none());
        assert!(tag_problem("").is_some());
        assert!(tag_problem("a,b").is_some());
        assert!(tag_problem(&"x".repeat(65)).is_some());
    }
}
