//! `[modules.alerts]`: the rules, how often they are evaluated, the cool-down, and where alerts go.
//!
//! ```toml
//! [modules.alerts]
//! interval = "30s"
//! cool_down = "15m"
//! webhook_url = "https://ops.example.com/hooks/stockyard"        # generic JSON
//! slack_webhook_url = "https://hooks.slack.com/services/..."     # Slack incoming webhook
//! rules = [
//!   { name = "errors", kind = "error_rate", threshold = 0.2, window = "5m" },
//!   { name = "slow", kind = "latency_p95_ms", threshold = 8000, window = "5m" },
//!   { name = "spend", kind = "spend_usd", threshold = 50, window = "1h" },
//! ]
//! ```

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::modules::registry::ModuleConfig;
use crate::modules::retention::config::parse_age;

/// What a rule measures; it fires when the measure reaches its threshold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleKind {
    /// Share of requests in the window that ended in a 5xx (0.0 to 1.0).
    ErrorRate,
    /// 95th percentile of total latency in the window, in milliseconds.
    LatencyP95Ms,
    /// Spend in the window, in US dollars.
    SpendUsd,
    /// Budget threshold alerts recorded in the window (by the `budgets` module).
    Budget,
    /// Circuit breakers open now.
    BreakerOpen,
    /// Records the writer dropped since the previous evaluation.
    WriterDrops,
}

impl RuleKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RuleKind::ErrorRate => "error_rate",
            RuleKind::LatencyP95Ms => "latency_p95_ms",
            RuleKind::SpendUsd => "spend_usd",
            RuleKind::Budget => "budget",
            RuleKind::BreakerOpen => "breaker_open",
            RuleKind::WriterDrops => "writer_drops",
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Unique among the rules; names the rule in alerts and its cool-down.
    pub name: String,
    pub kind: RuleKind,
    pub threshold: f64,
    /// The span measured (`5m`). Default `5m`.
    #[serde(default = "default_window")]
    pub window: String,
    /// Fewest requests in the window before a rate or percentile counts. Default 10.
    #[serde(default = "default_min_requests")]
    pub min_requests: usize,
}

fn default_window() -> String {
    "5m".into()
}

fn default_min_requests() -> usize {
    10
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertsConfig {
    pub rules: Vec<Rule>,
    /// Time between evaluations. Default `30s`.
    pub interval: String,
    /// After a rule fires, it stays quiet this long (kept across restarts). Default `15m`.
    pub cool_down: String,
    /// Receives each alert as generic JSON.
    pub webhook_url: Option<String>,
    /// Receives each alert as a Slack incoming-webhook message (`{"text": ...}`).
    pub slack_webhook_url: Option<String>,
    /// How long one post may take, in milliseconds. Default 5000.
    pub webhook_timeout_ms: u64,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        AlertsConfig {
            rules: Vec::new(),
            interval: "30s".into(),
            cool_down: "15m".into(),
            webhook_url: None,
            slack_webhook_url: None,
            webhook_timeout_ms: 5000,
        }
    }
}

impl AlertsConfig {
    pub fn interval(&self) -> Duration {
        parse_age(&self.interval).unwrap_or(Duration::from_secs(30))
    }

    pub fn cool_down(&self) -> Duration {
        parse_age(&self.cool_down).unwrap_or(Duration::from_secs(900))
    }

    /// The longest window of any rule: how far back request samples are kept.
    pub fn longest_window(&self) -> Duration {
        self.rules
            .iter()
            .filter_map(|r| parse_age(&r.window))
            .max()
            .unwrap_or(Duration::ZERO)
    }
}

impl ModuleConfig for AlertsConfig {
    fn validate(&self) -> Result<(), String> {
        let mut problems = Vec::new();
        if parse_age(&self.interval).is_none_or(|d| d.is_zero()) {
            problems.push(format!(
                "interval: {:?} is not a duration like 30s",
                self.interval
            ));
        }
        if parse_age(&self.cool_down).is_none() {
            problems.push(format!(
                "cool_down: {:?} is not a duration like 15m",
                self.cool_down
            ));
        }
        for (field, url) in [
            ("webhook_url", &self.webhook_url),
            ("slack_webhook_url", &self.slack_webhook_url),
        ] {
            if let Some(url) = url
                && !(url.starts_with("http://") || url.starts_with("https://"))
            {
                problems.push(format!("{field}: must be an http(s) URL"));
            }
        }
        if self.webhook_timeout_ms == 0 || self.webhook_timeout_ms > 60_000 {
            problems.push(format!(
                "webhook_timeout_ms: must be 1..=60000 (got {})",
                self.webhook_timeout_ms
            ));
        }
        let mut names = std::collections::HashSet::new();
        for (i, rule) in self.rules.iter().enumerate() {
            if rule.name.is_empty() || !names.insert(rule.name.as_str()) {
                problems.push(format!("rules[{i}].name: must be unique and not empty"));
            }
            if parse_age(&rule.window).is_none_or(|d| d.is_zero()) {
                problems.push(format!(
                    "rules[{i}].window: {:?} is not a duration like 5m",
                    rule.window
                ));
            }
            if !rule.threshold.is_finite() || rule.threshold < 0.0 {
                problems.push(format!("rules[{i}].threshold: must be a number ≥ 0"));
            }
            if rule.kind == RuleKind::ErrorRate && rule.threshold > 1.0 {
                problems.push(format!(
                    "rules[{i}].threshold: an error rate is 0.0..=1.0 (got {})",
                    rule.threshold
                ));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("\n"))
        }
    }
}
