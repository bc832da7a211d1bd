//! Upkeep of the store itself: WAL checkpoints, retention deletes, incremental vacuum (writes,
//! through the writer thread, [`MaintenanceWrites`]) and the size report behind `stockyard db
//! stats` ([`MaintenanceStore`], any thread).
//!
//! Retention deletes run in small batches, each its own transaction, so the write lock is never
//! held for long and trace batches interleave with a large clean-up. The audit ledger is never
//! touched here, and spend roll-ups are kept: retention only drops what they already summarise.

use serde::Serialize;

use super::StoreError;

/// What a retention pass may remove, one kind at a time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RetentionKind {
    /// Whole trace rows (spend roll-ups keep their sums).
    Traces,
    /// Captured request and response bodies of traces; the rows stay.
    Bodies,
    /// Stored Responses API answers.
    Responses,
    /// MCP tool-call rows (their audit ledger entries stay).
    McpCalls,
}

impl RetentionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RetentionKind::Traces => "traces",
            RetentionKind::Bodies => "bodies",
            RetentionKind::Responses => "responses",
            RetentionKind::McpCalls => "mcp_calls",
        }
    }
}

/// One WAL checkpoint's result (SQLite's `wal_checkpoint` row).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct WalCheckpoint {
    /// Another connection kept the checkpoint from finishing.
    pub busy: bool,
    /// Frames in the WAL when it ran.
    pub wal_frames: u64,
    /// Frames copied back into the database.
    pub checkpointed_frames: u64,
}

/// Called only by the writer thread.
pub trait MaintenanceWrites {
    /// A WAL checkpoint: `PASSIVE` (never waits on readers) or, with `truncate`, one that waits
    /// out readers for the busy timeout and cuts the WAL file back to nothing.
    fn checkpoint_wal(&mut self, truncate: bool) -> Result<WalCheckpoint, StoreError>;
    /// The WAL file's size now (0 without one); cheap enough to ask after every batch.
    fn wal_bytes(&self) -> u64;
    /// Removes (or, for bodies, blanks) at most `limit` rows of `kind` older than `cutoff_ms`, in
    /// one transaction; returns how many. The caller repeats until fewer than `limit` come back.
    fn delete_older(
        &mut self,
        kind: RetentionKind,
        cutoff_ms: i64,
        limit: usize,
    ) -> Result<usize, StoreError>;
    /// Gives up to `max_pages` free pages (all when `None`) back to the file system; returns how
    /// many were freed. A no-op on a file without `auto_vacuum=INCREMENTAL`.
    fn incremental_vacuum(&mut self, max_pages: Option<u32>) -> Result<u64, StoreError>;
}

/// One table's share of the file.
#[derive(Clone, Debug, Serialize)]
pub struct TableStats {
    pub name: String,
    pub rows: i64,
    /// Bytes of the pages the table and its indexes use.
    pub bytes: i64,
}

/// What `stockyard db stats` and `GET /admin/db/stats` report.
#[derive(Clone, Debug, Serialize)]
pub struct DbStats {
    pub file_bytes: i64,
    pub page_size: i64,
    pub page_count: i64,
    pub free_pages: i64,
    pub wal_bytes: i64,
    /// `none`, `full` or `incremental`.
    pub auto_vacuum: String,
    pub tables: Vec<TableStats>,
}

/// Size reports. Methods block; async callers use `spawn_blocking`.
pub trait MaintenanceStore: Send + Sync {
    fn db_stats(&self) -> Result<DbStats, StoreError>;
    /// A consistent copy of the whole store into the new file `out`, read from one snapshot on a
    /// read connection, so the writer never waits for it.
    fn backup_into(&self, out: &std::path::Path) -> Result<(), StoreError>;
}
