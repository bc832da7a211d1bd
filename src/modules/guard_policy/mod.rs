//! `guard_policy`: a team's own rules. Deny lists of words, phrases and regular expressions (an
//! allow list exempts what it covers), topic blocks by keyword set, model allow and deny lists,
//! and limits on prompt tokens, output tokens (counted as an answer streams) and messages.
//! Scoped like every guardrail, so each key or team may carry its own.

mod detect;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::guard::{Action, Family, GuardConfig};
use super::registry::{ModuleConfig, ModuleSpec};

pub use detect::PolicyScanner;

pub const SPEC: ModuleSpec = ModuleSpec {
    name: "guard_policy",
    description: "enforces deny/allow lists, topic blocks, model lists and prompt/output/message limits on prompts and answers, streamed too",
    order: 41,
    finish_order: 41,
    enabled_by_default: false,
    required: super::registry::never_required,
    default_config: GuardConfig::<Policy>::default_json,
    check: GuardConfig::<Policy>::check,
    build: super::guard::build::<Policy>,
};

pub struct Policy;

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyConfig {
    /// Words and phrases refused, matched case-insensitively on word boundaries.
    pub deny: Vec<String>,
    /// Regular expressions refused.
    pub deny_regex: Vec<String>,
    /// Words and phrases exempted: a deny match inside one of these is not a match.
    pub allow: Vec<String>,
    /// Topics refused, each a set of keywords; a text on a topic names at least
    /// `topic_min_hits` different keywords of its set.
    pub topics: BTreeMap<String, Vec<String>>,
    /// Distinct keywords of one topic a text must name to be on it. Default 2.
    pub topic_min_hits: Option<usize>,
    /// Models a request may name; empty means any.
    pub model_allow: Vec<String>,
    /// Models a request may not name.
    pub model_deny: Vec<String>,
    pub max_prompt_tokens: Option<u64>,
    pub max_output_tokens: Option<u64>,
    pub max_messages: Option<usize>,
}

impl Family for Policy {
    type Config = PolicyConfig;
    type Scanner = PolicyScanner;
    const NAME: &'static str = "guard_policy";
    const DEFAULT_ACTION: Action = Action::Block;
    const DEFAULT_OUTPUT: bool = true;

    fn validate(config: &PolicyConfig) -> Result<(), String> {
        if config.topic_min_hits == Some(0) {
            return Err("topic_min_hits: must be at least 1".into());
        }
        for (topic, words) in &config.topics {
            if words.is_empty() {
                return Err(format!("topics.{topic}: needs at least one keyword"));
            }
        }
        Ok(())
    }

    fn scanner(config: &PolicyConfig) -> Result<PolicyScanner, String> {
        PolicyScanner::new(config)
    }
}
