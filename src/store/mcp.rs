//! MCP tool calls through the gateway (`modules/mcp`): one record per `tools/call`, decided or
//! refused. The writer appends each with its audit ledger entry, in one transaction per batch
//! ([`McpCallWrites`]), so the request path never waits for either and `audit verify` covers
//! tool use through the same hash chain as administrative changes.

use serde::Serialize;

use super::StoreError;
use crate::ledger::{LedgerDraft, LedgerEntry};

#[derive(Clone, Debug, Default, Serialize)]
pub struct McpCallRecord {
    pub id: String,
    pub ts_ms: i64,
    pub key_id: Option<String>,
    pub team_id: Option<String>,
    pub server: String,
    pub tool: String,
    /// `allow` or `deny`.
    pub decision: String,
    /// The rule that decided (`default` when none matched).
    pub rule: String,
    pub rule_revision: i64,
    /// `ok`, `tool_error`, `denied`, `rate_limited`, `timeout`, `unavailable` or `error`.
    pub outcome: String,
    pub duration_us: i64,
    pub bytes_in: i64,
    pub bytes_out: i64,
    /// SHA-256 of the arguments as sent (canonical JSON), hex.
    pub args_sha256: String,
    /// Captured arguments and result (redacted), when the module is configured to capture.
    pub arguments: Option<String>,
    pub result: Option<String>,
    pub redactions: i64,
    /// The ledger entry written with this row (filled in on reads).
    pub ledger_seq: Option<i64>,
}

/// A call and the ledger entry that records it.
#[derive(Clone, Debug)]
pub struct McpCallWrite {
    pub record: McpCallRecord,
    pub draft: LedgerDraft,
}

/// Reads. Methods block; async callers use `spawn_blocking`.
pub trait McpCallStore: Send + Sync {
    /// Newest first, at most `limit`.
    fn mcp_calls(&self, limit: usize) -> Result<Vec<McpCallRecord>, StoreError>;
}

/// Called only by the writer thread.
pub trait McpCallWrites {
    /// Appends every call and its ledger entry in one transaction; returns the entries.
    fn append_mcp_calls(&mut self, calls: &[McpCallWrite]) -> Result<Vec<LedgerEntry>, StoreError>;
}
