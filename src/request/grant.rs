//! `Grant`: what an authenticated virtual key may do, as the request path sees it. The `auth`
//! module resolves the presented key to a grant (from memory, never from disk) and leaves it in
//! [`super::context::Identity::grant`]; the modules that enforce budgets, rate limits and model
//! lists read it from there. A team's limits apply on top of the key's: a request must fit both.

use std::collections::BTreeMap;
use std::sync::Arc;

/// A budget period. Day, week and month are calendar periods in UTC (weeks start on Monday);
/// `Total` never resets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Period {
    Day,
    Week,
    Month,
    Total,
}

/// A spending limit in nano-dollars over a period, with optional soft thresholds (percent of
/// the limit) that raise an alert when crossed.
// Unknown fields are refused: a misspelt `budget_usd` or `rpm_limit` would otherwise leave the
// key unlimited without a word.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Budget {
    pub limit_nanos: i64,
    pub period: Period,
    #[serde(default)]
    pub alert_percents: Vec<u8>,
}

/// Limits that a key or a team carries; `None` means unlimited.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    pub budget: Option<Budget>,
    /// Requests per minute.
    pub rpm: Option<u64>,
    /// Tokens (prompt + completion) per minute.
    pub tpm: Option<u64>,
    /// Model name globs (`gpt-4o*`, `claude-*`); empty means every model.
    #[serde(default)]
    pub models: Vec<String>,
}

/// A team, as a key's grant carries it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TeamGrant {
    /// Stable id (the team's name is its id).
    pub id: String,
    pub limits: Limits,
}

/// An authenticated client key and what it may do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    /// The key's stable public id (what traces, spend and the admin API name it by).
    pub key_id: String,
    /// The id its budget, rate limits and spend counters are kept under: the first key of its
    /// rotation chain, so a rotation does not start them again from zero (the key's own id for
    /// a key never rotated).
    pub limits_id: String,
    pub key_name: String,
    pub team: Option<Arc<TeamGrant>>,
    pub limits: Limits,
    pub metadata: BTreeMap<String, String>,
}

impl Grant {
    pub fn team_id(&self) -> Option<&str> {
        self.team.as_ref().map(|t| t.id.as_str())
    }
}
