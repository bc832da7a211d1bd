//! `moderations`: answers `POST /v1/moderations` from the guardrail modules instead of a
//! provider. Each guardrail on the chain (`guard_pii`, `guard_secrets`, `guard_injection`,
//! `guard_policy`) scans every input of a moderation request and leaves what it found in
//! [`ModerationScan`]; this module, after them and before routing, answers in OpenAI's
//! moderation shape: one result per input, a category per guardrail (its name), flagged when any
//! rule matched. OpenAI's own categories are present and false, so SDKs that read them work.
//! Off by default: moderations then go to the provider (OpenAI) like any operation.

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::registry::{ModuleConfig, ModuleSpec};
use super::{Hooks, Module, ModuleDeps, ModuleError, Verdict};
use crate::request::{CanonicalAnswer, RequestCtx};
use crate::wire::openai::{Endpoint, Inbound};

pub const SPEC: ModuleSpec = ModuleSpec {
    name: "moderations",
    description: "answers /v1/moderations from the guardrail modules' detectors, in OpenAI's moderation shape",
    order: 48,
    finish_order: 48,
    enabled_by_default: false,
    required: super::registry::never_required,
    default_config: ModerationsConfig::default_json,
    check: ModerationsConfig::check,
    build,
};

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ModerationsConfig {}

impl ModuleConfig for ModerationsConfig {}

fn build(config: &Value, _deps: &ModuleDeps) -> Result<Arc<dyn Module>, ModuleError> {
    ModerationsConfig::parse(config).map_err(ModuleError::Config)?;
    Ok(Arc::new(Moderations))
}

/// OpenAI's categories, reported (false) beside the guardrails' own.
const OPENAI_CATEGORIES: &[&str] = &[
    "harassment",
    "harassment/threatening",
    "hate",
    "hate/threatening",
    "illicit",
    "illicit/violent",
    "self-harm",
    "self-harm/instructions",
    "self-harm/intent",
    "sexual",
    "sexual/minors",
    "violence",
    "violence/graphic",
];

/// What the guardrails found in a moderation request's inputs: per input, per guardrail, the
/// rules that matched. A guardrail that scanned adds its name even when nothing matched.
#[derive(Clone, Debug, Default)]
pub struct ModerationScan {
    pub detectors: Vec<&'static str>,
    /// `(input index, detector, rule)`.
    pub matches: Vec<(usize, &'static str, String)>,
}

/// The texts of a moderation request's `input` (a string, strings, or typed parts).
pub fn inputs(ctx: &RequestCtx) -> Vec<String> {
    let Some(Inbound::Operation(op)) = &ctx.request.parsed else {
        return Vec::new();
    };
    if op.endpoint != Endpoint::Moderations {
        return Vec::new();
    }
    match op.json().and_then(|m| m.get("input")) {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| {
                i.as_str()
                    .or(i["text"].as_str())
                    .unwrap_or_default()
                    .to_string()
            })
            .collect(),
        _ => Vec::new(),
    }
}

pub struct Moderations;

#[async_trait]
impl Module for Moderations {
    fn name(&self) -> &'static str {
        "moderations"
    }

    fn hooks(&self) -> Hooks {
        Hooks::REQUEST_NOW
    }

    fn on_request_now(&self, ctx: &mut RequestCtx) -> Result<Verdict, ModuleError> {
        if ctx.request.endpoint != Endpoint::Moderations {
            return Ok(Verdict::Continue);
        }
        let scan = ctx.slots.remove::<ModerationScan>().unwrap_or_default();
        let results: Vec<Value> = inputs(ctx)
            .iter()
            .enumerate()
            .map(|(i, _)| {
                let mut categories = Map::new();
                let mut scores = Map::new();
                let mut applied = Map::new();
                for name in OPENAI_CATEGORIES {
                    categories.insert((*name).into(), json!(false));
                    scores.insert((*name).into(), json!(0.0));
                }
                for detector in &scan.detectors {
                    let hit = scan
                        .matches
                        .iter()
                        .any(|(at, d, _)| *at == i && d == detector);
                    categories.insert((*detector).into(), json!(hit));
                    scores.insert((*detector).into(), json!(if hit { 1.0 } else { 0.0 }));
                    applied.insert((*detector).into(), json!(["text"]));
                }
                let rules: Vec<&str> = scan
                    .matches
                    .iter()
                    .filter(|(at, _, _)| *at == i)
                    .map(|(_, _, rule)| rule.as_str())
                    .collect();
                json!({"flagged": !rules.is_empty(), "categories": categories,
                    "category_scores": scores, "category_applied_input_types": applied,
                    "x_stockyard_rules": rules})
            })
            .collect();
        let answer = json!({
            "id": format!("modr-{}", ctx.identity.request_id),
            "model": ctx.request.requested_model,
            "results": results,
        });
        Ok(Verdict::Answer(CanonicalAnswer::Complete(answer)))
    }
}
