//! `[modules.routing]`: aliases, groups of deployments, and how each group retries, falls back,
//! times out and trips its breakers. Stored as the module's JSON config, so the admin API,
//! the ledger and restarts treat it like any module config.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::modules::registry::ModuleConfig;

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RoutingConfig {
    /// Public name -> a group name or a model name (`fast = "groq/llama-3.3-70b-versatile"`).
    pub aliases: BTreeMap<String, String>,
    pub groups: BTreeMap<String, GroupConfig>,
    /// Retries for models that are in no group. Default: one attempt, no retries.
    pub default_retry: RetryConfig,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    #[default]
    WeightedRandom,
    LeastInflight,
    LowestLatency,
    Priority,
    /// Weighted split by a request tag (header `tag_header`, else the `user` field), sticky per tag.
    TagSplit,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct GroupConfig {
    pub strategy: Strategy,
    pub deployments: Vec<DeploymentConfig>,
    /// Tried in order once this group's retries are exhausted: group names or model names.
    pub fallbacks: Vec<String>,
    /// Fall back at once when the prompt exceeds the context window. Default true.
    pub fallback_on_context_window: bool,
    /// Fall back at once on a content-policy refusal. Default false.
    pub fallback_on_content_policy: bool,
    pub retry: RetryConfig,
    pub timeouts: TimeoutOverrides,
    /// Streams: hold the first frames up to this long for the first content, so a failure before
    /// it can still be retried or fallen back from. 0 turns late commit off. Default 10000.
    pub late_commit_ms: u64,
    pub breaker: BreakerConfig,
    /// Header carrying the request tag for `tag_split`. Default `x-stockyard-tag`.
    pub tag_header: String,
}

impl Default for GroupConfig {
    fn default() -> Self {
        GroupConfig {
            strategy: Strategy::default(),
            deployments: Vec::new(),
            fallbacks: Vec::new(),
            fallback_on_context_window: true,
            fallback_on_content_policy: false,
            retry: RetryConfig {
                max_attempts: 3,
                ..RetryConfig::default()
            },
            timeouts: TimeoutOverrides::default(),
            late_commit_ms: 10_000,
            breaker: BreakerConfig::default(),
            tag_header: "x-stockyard-tag".into(),
        }
    }
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DeploymentConfig {
    /// A configured provider (its credentials are used).
    pub provider: String,
    /// The provider's model name.
    pub model: String,
    /// Share of traffic for weighted strategies. Default 1.
    pub weight: Option<u32>,
    /// Lower goes first under `priority`. Default 0.
    pub priority: u32,
    /// Requests per minute this deployment takes; over it, it is skipped until the next minute.
    pub rpm: Option<u32>,
    /// Tokens per minute this deployment takes.
    pub tpm: Option<u64>,
    /// Free-form labels, such as `region = "eu"`.
    pub tags: BTreeMap<String, String>,
    /// The A/B variant name recorded in traces under `tag_split`. Default `provider/model`.
    pub variant: Option<String>,
    pub timeouts: TimeoutOverrides,
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct RetryConfig {
    /// Attempts in this group, the first included. 1 = no retries.
    pub max_attempts: u32,
    /// First backoff; doubles each retry, with jitter. Default 100.
    pub base_backoff_ms: u64,
    /// Longest backoff. Default 2000.
    pub max_backoff_ms: u64,
    /// Retries stop when the next wait would pass this much time since the request began. Default 30000.
    pub max_total_ms: u64,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            max_attempts: 1,
            base_backoff_ms: 100,
            max_backoff_ms: 2_000,
            max_total_ms: 30_000,
        }
    }
}

#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct TimeoutOverrides {
    pub connect_ms: Option<u64>,
    pub first_byte_ms: Option<u64>,
    pub total_ms: Option<u64>,
    pub stream_idle_ms: Option<u64>,
}

impl TimeoutOverrides {
    pub fn is_empty(&self) -> bool {
        *self == TimeoutOverrides::default()
    }

    /// `self` over `base` (a deployment's over its group's).
    pub fn over(&self, base: &TimeoutOverrides) -> TimeoutOverrides {
        TimeoutOverrides {
            connect_ms: self.connect_ms.or(base.connect_ms),
            first_byte_ms: self.first_byte_ms.or(base.first_byte_ms),
            total_ms: self.total_ms.or(base.total_ms),
            stream_idle_ms: self.stream_idle_ms.or(base.stream_idle_ms),
        }
    }
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct BreakerConfig {
    pub enabled: bool,
    /// Opens after this many failures in a row. Default 5.
    pub consecutive_failures: u32,
    /// Opens when this share of the last `window` outcomes failed... Default 50.
    pub failure_rate_percent: u32,
    /// ...counting the last this many outcomes. Default 20.
    pub window: u32,
    /// ...once the window holds at least this many. Default 10.
    pub min_requests: u32,
    /// How long it stays open before probing. Default 30000.
    pub cooldown_ms: u64,
    /// Probes allowed at once while half-open. Default 1.
    pub half_open_probes: u32,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            enabled: true,
            consecutive_failures: 5,
            failure_rate_percent: 50,
            window: 20,
            min_requests: 10,
            cooldown_ms: 30_000,
            half_open_probes: 1,
        }
    }
}

impl ModuleConfig for RoutingConfig {
    fn validate(&self) -> Result<(), String> {
        let mut problems = Vec::new();
        for (name, target) in &self.aliases {
            if target.is_empty() {
                problems.push(format!("aliases.{name}: target must not be empty"));
            }
            if self.aliases.contains_key(target) {
                problems.push(format!(
                    "aliases.{name}: points at another alias ({target}); aliases do not chain"
                ));
            }
        }
        for (name, group) in &self.groups {
            let field = format!("groups.{name}");
            if group.deployments.is_empty() {
                problems.push(format!(
                    "{field}.deployments: a group needs at least one deployment"
                ));
            }
            for (i, d) in group.deployments.iter().enumerate() {
                if d.provider.is_empty() || d.model.is_empty() {
                    problems.push(format!(
                        "{field}.deployments[{i}]: provider and model are required"
                    ));
                }
                if d.weight == Some(0) {
                    problems.push(format!(
                        "{field}.deployments[{i}].weight: must be at least 1"
                    ));
                }
            }
            if group.retry.max_attempts == 0 {
                problems.push(format!("{field}.retry.max_attempts: must be at least 1"));
            }
            for fallback in &group.fallbacks {
                if fallback == name {
                    problems.push(format!(
                        "{field}.fallbacks: a group cannot fall back to itself"
                    ));
                }
            }
            let b = &group.breaker;
            if b.failure_rate_percent > 100 {
                problems.push(format!(
                    "{field}.breaker.failure_rate_percent: must be 0..=100 (got {})",
                    b.failure_rate_percent
                ));
            }
            if b.consecutive_failures == 0 || b.window == 0 || b.half_open_probes == 0 {
                problems.push(format!("{field}.breaker: consecutive_failures, window and half_open_probes must be at least 1"));
            }
        }
        if self.default_retry.max_attempts == 0 {
            problems.push("default_retry.max_attempts: must be at least 1".into());
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }
}
