//! Spend: the rollups the writer keeps beside the trace rows, and the budget alerts it records.
//!
//! Every trace row the writer appends is also added, in the same transaction, to one summary row
//! per UTC day, key, team, user, model and provider (requests, prompt and completion tokens,
//! nano-dollars). Reports and the budget module's start-up read those rows, never the trace
//! table, so their cost follows the number of distinct keys and models, not of requests. A row
//! skipped as already stored (a retried batch) adds nothing.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{StoreError, TraceRecord};

/// A daily spend row's group: UTC day, key, team, user, model, provider (`""` when none).
pub(super) type SpendGroup<'a> = (i64, &'a str, &'a str, &'a str, &'a str, &'a str);

/// What a batch adds to one daily spend row.
#[derive(Default)]
pub(super) struct SpendSum {
    pub requests: i64,
    pub prompt: i64,
    pub completion: i64,
    pub cost_nanos: i64,
    pub saved_nanos: i64,
}

impl SpendSum {
    fn add(&mut self, t: &TraceRecord) {
        self.requests += 1;
        self.prompt += t.tokens.prompt as i64;
        self.completion += t.tokens.completion as i64;
        self.cost_nanos += t.cost_nanos;
        self.saved_nanos += t.saved_nanos;
    }
}

/// What the rows a batch stored add to the daily spend rows, summed in memory so a backend
/// writes one upsert per group of the batch, not per row (a busy second is mostly one key, model
/// and provider). Both maps are in key order: nodes that commit batches at once then lock shared
/// rows in the same order.
#[derive(Default)]
pub(super) struct BatchSpend<'a> {
    pub groups: BTreeMap<SpendGroup<'a>, SpendSum>,
    /// By day and tag: a request with several tags counts once under each.
    pub tags: BTreeMap<(i64, String), SpendSum>,
}

impl<'a> BatchSpend<'a> {
    pub fn add(&mut self, t: &'a TraceRecord) {
        let day = super::day_start(t.ts_ms);
        self.groups
            .entry((
                day,
                t.key_id.as_deref().unwrap_or_default(),
                t.team_id.as_deref().unwrap_or_default(),
                t.user.as_deref().unwrap_or_default(),
                t.requested_model.as_str(),
                t.provider.as_deref().unwrap_or_default(),
            ))
            .or_default()
            .add(t);
        let tags: Vec<String> = t
            .tags
            .as_deref()
            .and_then(|json| serde_json::from_str(json).ok())
            .unwrap_or_default();
        for tag in tags {
            self.tags.entry((day, tag)).or_default().add(t);
        }
    }
}

/// How a spend report groups its rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpendBy {
    /// The key's public id (`(none)` in local mode).
    Key,
    /// The key's team (`(none)` for keys without one).
    Team,
    /// The `user` field of the request body (`(none)` when absent).
    User,
    /// The model the client asked for.
    Model,
    Provider,
    /// UTC calendar day, `YYYY-MM-DD`.
    Day,
    /// A request tag (the `tags` module); a request with several tags counts under each, so
    /// the rows may sum to more than the total, and untagged requests are not listed.
    Tag,
}

impl SpendBy {
    pub fn parse(text: &str) -> Option<SpendBy> {
        Some(match text {
            "key" => SpendBy::Key,
            "team" => SpendBy::Team,
            "user" => SpendBy::User,
            "model" => SpendBy::Model,
            "provider" => SpendBy::Provider,
            "day" => SpendBy::Day,
            "tag" => SpendBy::Tag,
            _ => return None,
        })
    }
}

/// What a report prints for a missing key, team, user or provider.
pub const NONE: &str = "(none)";

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct SpendRow {
    pub key: String,
    pub requests: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub cost_nanos: i64,
    /// What cache hits saved: the price their upstream calls would have had.
    pub saved_nanos: i64,
}

/// A budget's soft threshold crossed: raised once per subject, period and percent.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct BudgetAlert {
    pub ts_ms: i64,
    /// `key` or `team`.
    pub scope: String,
    /// The key's public id or the team's id.
    pub subject: String,
    /// `day`, `week`, `month` or `total`.
    pub period: String,
    pub period_start_ms: i64,
    pub percent: u8,
    pub spend_nanos: i64,
    pub limit_nanos: i64,
}

/// Spend reads. Methods block; async callers use `spawn_blocking`.
pub trait SpendStore: Send + Sync {
    /// Sums of the UTC days from the one holding `since_ms` on (rollups are per day, so a cut-off
    /// inside a day counts that whole day), most expensive first, then by key.
    fn spend(&self, by: SpendBy, since_ms: i64) -> Result<Vec<SpendRow>, StoreError>;
    /// Alerts of periods starting at or after `since_ms`, oldest first.
    fn budget_alerts(&self, since_ms: i64) -> Result<Vec<BudgetAlert>, StoreError>;
}

/// Called only by the writer thread. (The rollups themselves are kept by
/// [`super::TraceWrites::append_traces`], in the trace batch's transaction.)
pub trait SpendWrites {
    /// Records an alert; one already recorded for the same subject, period and percent is kept.
    fn record_budget_alert(&mut self, alert: &BudgetAlert) -> Result<(), StoreError>;
}

/// Midnight UTC of the day holding `ms`.
pub fn day_start(ms: i64) -> i64 {
    ms - ms.rem_euclid(86_400_000)
}
