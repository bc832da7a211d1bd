//! Traces: one row per proxied request. The writer thread appends ([`TraceWrites`]) in batches,
//! adding each new row to the spend rollups in the same transaction (`spend.rs`) and to the
//! console's roll-ups shortly after (`dashboard.rs`); the CLI, the
//! admin API and tests query ([`TraceStore`]) on read connections of their own.

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
    /// The client key's public id (a virtual key's id, or a static key's hash prefix), never
    /// the key.
    pub key_id: Option<String>,
    /// The virtual key's team, if it has one.
    pub team_id: Option<String>,
    /// The virtual key's metadata, as a JSON object.
    pub key_metadata: Option<String>,
    pub request_body: Option<String>,
    pub response_body: Option<String>,
    /// The module that answered in place of the upstream, if one did.
    pub answered_by: Option<String>,
    /// For a model call a module made itself: that module.
    pub internal_caller: Option<String>,
    /// What a response cache did: `hit`, `semantic-hit`, `miss` or `skip`.
    pub cache: Option<String>,
    /// What a cache hit saved: the price the upstream call would have had.
    pub saved_nanos: i64,
    /// Guardrail verdicts, a JSON array of `{detector, rule, action, position}`; never the text
    /// that matched.
    pub verdicts: Option<String>,
    /// The request's tags (the `tags` module), a JSON array of strings.
    pub tags: Option<String>,
    /// The `route_rules` rule that chose the model.
    pub route_rule: Option<String>,
    /// The prompt template rendered into the request: `name@version`, plus `#variant` under a
    /// split.
    pub prompt: Option<String>,
}

#[derive(Clone, Debug, Default)]
pub struct TraceQuery {
    pub limit: usize,
    pub model: Option<String>,
    pub status: Option<u16>,
}

/// Trace queries. Methods block; async callers use `spawn_blocking`.
pub trait TraceStore: Send + Sync {
    /// Newest first, at most `query.limit` (clamped to 1..=10000).
    fn traces(&self, query: &TraceQuery) -> Result<Vec<TraceRecord>, StoreError>;
    fn trace_count(&self) -> Result<i64, StoreError>;
}

/// Called only by the writer thread.
pub trait TraceWrites {
    /// Appends a batch in one transaction, adding each new row to the spend rollups in it; a
    /// record whose id is already stored is skipped (rollups included), so a retried batch never
    /// doubles a row or a sum.
    fn append_traces(&mut self, traces: &[TraceRecord]) -> Result<(), StoreError>;

    /// Writes what the backend holds back from the trace batches (the console's roll-ups, which
    /// are summed in memory and written at most about once a second); the writer calls it when
    /// idle, on a flush and before its last checkpoint. A crash before it loses nothing: the
    /// backend rebuilds what was held back from the traces when it next opens.
    fn flush_rollups(&mut self) -> Result<(), StoreError> {
        Ok(())
    }
}
