//! Traces and spend: one row per proxied request, and the sums reports make of them.
//! The writer thread appends ([`TraceWrites`]) in batches; the CLI, the admin API and tests
//! query ([`TraceStore`]) on read connections of their own.

use serde::Serialize;

use super::StoreError;
use crate::cost::Tokens;

/// One row per proxied request.
#[derive(Clone, Debug, Default, Serialize)]
pub struct TraceRecord {
    /// UUIDv7: sorts by time.
    pub id: String,
    pub ts_ms: i64,
    pub endpoint: String,
    pub requested_model: String,
    pub provider: Option<String>,
    pub upstream_model: Option<String>,
    pub status: u16,
    /// `None` on success; otherwise what failed (`upstream_timeout`, `cancelled`, ...).
    pub error_class: Option<String>,
    pub stream: bool,
    pub tokens: Tokens,
    /// Tokens were counted by Stockyard's tokenizer because the upstream reported none.
    pub usage_estimated: bool,
    pub cost_nanos: i64,
    /// False when the model has no price (its cost is recorded as 0).
    pub price_known: bool,
    pub latency_us: i64,
    pub ttft_us: Option<i64>,
    pub upstream_us: Option<i64>,
    pub overhead_us: i64,
    pub bytes_in: i64,
    pub bytes_out: i64,
    pub user: Option<String>,
    /// The deployment that answered (or was tried last), `group/provider/model`.
    pub deployment: Option<String>,
    /// Upstream calls made (retries and fallbacks included).
    pub attempts: u32,
    /// A/B variant under a tag-split group.
    pub variant: Option<String>,
    pub request_id: String,
    /// Short, non-reversible id of the client key (a hash prefix), never the key.
    pub key_id: Option<String>,
    pub request_body: Option<String>,
    pub response_body: Option<String>,
    /// The module that answered in place of the upstream, if one did.
    pub answered_by: Option<String>,
    /// For a model call a module made itself: that module.
    pub internal_caller: Option<String>,
}

#[derive(Clone, Debug, Default)]
pub struct TraceQuery {
    pub limit: usize,
    pub model: Option<String>,
    pub status: Option<u16>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpendBy {
    Model,
    Provider,
    /// UTC calendar day, `YYYY-MM-DD`.
    Day,
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct SpendRow {
    pub key: String,
    pub requests: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub cost_nanos: i64,
}

/// Trace queries. Methods block; async callers use `spawn_blocking`.
pub trait TraceStore: Send + Sync {
    /// Newest first, at most `query.limit` (clamped to 1..=10000).
    fn traces(&self, query: &TraceQuery) -> Result<Vec<TraceRecord>, StoreError>;
    fn trace_count(&self) -> Result<i64, StoreError>;
    /// Sums of traces at or after `since_ms`, most expensive first, then by key.
    fn spend(&self, by: SpendBy, since_ms: i64) -> Result<Vec<SpendRow>, StoreError>;
}

/// Called only by the writer thread.
pub trait TraceWrites {
    /// Appends a batch in one transaction; a record whose id is already stored is skipped, so a
    /// retried batch never doubles a row.
    fn append_traces(&mut self, traces: &[TraceRecord]) -> Result<(), StoreError>;
}
