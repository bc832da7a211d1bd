//! What the writer thread does with each kind of record it takes from the queue: the batch
//! commit of traces, the one-off saves, and the WAL upkeep between batches. Errors are logged and
//! counted here, never returned: the thread goes on with the next record. A store that is out of
//! reach is the exception: the record is held (`hold.rs`) until it returns.

use std::sync::atomic::Ordering;
use std::time::Duration;

use super::hold::Backlog;
use super::{
    CHECKPOINT_INTERVAL, CacheOp, MaintenanceJob, TRUNCATE_GAP, WAL_TRUNCATE_BYTES,
    WAL_TRUNCATE_FRAMES, WriteOp, WriterStats,
};
use crate::ledger::{Head, LedgerEntry};
use crate::store::alerts::AlertRecord;
use crate::store::mcp::McpCallWrite;
use crate::store::{
    AuthFailureCount, BreakerRecord, BudgetAlert, RateCount, StoreError, StoredResponse,
    TraceRecord, WriteBackend, now_ms,
};

/// Applies a record that needs only the backend (a trace joins the batch); hands back the
/// control operations (admin changes, maintenance, flush, shutdown), which the loop handles.
/// While the store is out of reach a one-off record is held, not tried (`hold.rs`).
pub(super) fn apply_record(
    backend: &mut dyn WriteBackend,
    batch: &mut Vec<TraceRecord>,
    backlog: &mut Backlog,
    stats: &WriterStats,
    op: WriteOp,
) -> Option<WriteOp> {
    let op = match op {
        WriteOp::Trace(record) => {
            batch.push(*record);
            return None;
        }
        control @ (WriteOp::Admin { .. }
        | WriteOp::McpCall(_)
        | WriteOp::Maintain { .. }
        | WriteOp::Flush(_)
        | WriteOp::Shutdown(_)) => return Some(control),
        record => record,
    };
    if backlog.is_down() {
        backlog.hold_op(op, stats);
        return None;
    }
    if let Err(e) = store_one(backend, &op)
        && e.is_unreachable()
    {
        backlog.went_down(&e, stats);
        backlog.hold_op(op, stats);
    }
    None
}

/// Writes one one-off record. A failure is logged here; it is returned so the caller can tell
/// an unreachable store (hold the record) from a refused write (drop it).
pub(super) fn store_one(backend: &mut dyn WriteBackend, op: &WriteOp) -> Result<(), StoreError> {
    match op {
        WriteOp::Breaker(record) => save_breaker(backend, record),
        WriteOp::Response(record) => save_response(backend, record),
        WriteOp::Batch(record) => backend.save_batch_object(record).inspect_err(|e| {
            tracing::warn!(error = %e, id = %record.id, "batch record not stored");
        }),
        WriteOp::AuthFailures(counts) => add_auth_failures(backend, counts),
        WriteOp::BudgetAlert(alert) => record_alert(backend, alert),
        WriteOp::RateCounts(deltas) => add_rate_counts(backend, deltas),
        WriteOp::Cache(op) => apply_cache(backend, op),
        WriteOp::Alert(alert) => save_alert(backend, alert),
        // Traces and control operations never reach here (`apply_record`).
        _ => Ok(()),
    }
}

/// A passive checkpoint at most once per [`CHECKPOINT_INTERVAL`], and a truncating one as soon
/// as the WAL file passes [`WAL_TRUNCATE_BYTES`] (checked after every batch: a `stat`, so a burst
/// can't outrun the interval). SQLite's own auto-checkpoint is off on the writer's connection,
/// so this is the one place the WAL is managed.
pub(super) fn wal_upkeep(
    backend: &mut dyn WriteBackend,
    last: &mut std::time::Instant,
    stats: &WriterStats,
) {
    let since = last.elapsed();
    if since < TRUNCATE_GAP {
        return;
    }
    let too_big = backend.wal_bytes() > WAL_TRUNCATE_BYTES;
    if !too_big && since < CHECKPOINT_INTERVAL {
        return;
    }
    *last = std::time::Instant::now();
    let mut result = backend.checkpoint_wal(too_big);
    if !too_big
        && let Ok(done) = &result
        && done.wal_frames > WAL_TRUNCATE_FRAMES
    {
        result = backend.checkpoint_wal(true);
    }
    match result {
        Ok(done) => note_checkpoint(
            stats,
            done.wal_frames.saturating_sub(done.checkpointed_frames),
        ),
        Err(e) => tracing::warn!(error = %e, "WAL checkpoint failed"),
    }
}

pub(super) fn note_checkpoint(stats: &WriterStats, frames_left: u64) {
    stats.checkpoints.fetch_add(1, Ordering::Relaxed);
    stats.last_checkpoint_ms.store(now_ms(), Ordering::Relaxed);
    stats.wal_frames.store(frames_left, Ordering::Relaxed);
}

pub(super) fn maintain(
    backend: &mut dyn WriteBackend,
    job: MaintenanceJob,
    stats: &WriterStats,
) -> Result<u64, StoreError> {
    match job {
        MaintenanceJob::Delete {
            kind,
            cutoff_ms,
            limit,
        } => backend
            .delete_older(kind, cutoff_ms, limit)
            .map(|n| n as u64),
        MaintenanceJob::Vacuum { max_pages } => backend.incremental_vacuum(max_pages),
        MaintenanceJob::Checkpoint { truncate } => {
            let done = backend.checkpoint_wal(truncate)?;
            let left = done.wal_frames.saturating_sub(done.checkpointed_frames);
            note_checkpoint(stats, left);
            Ok(left)
        }
    }
}

/// Commits the queued MCP calls with their ledger entries (one transaction), and notes the new
/// head. A failed batch is retried once, then logged and counted: like a trace batch, it must
/// not stop the writer.
pub(super) fn commit_mcp(
    backend: &mut dyn WriteBackend,
    calls: &mut Vec<McpCallWrite>,
    head: &mut Option<Head>,
    backlog: &mut Backlog,
    stats: &WriterStats,
) {
    // While the store is out of reach the calls stay queued (they are audit entries, never
    // dropped) and go in with the first commit after it returns.
    if calls.is_empty() || backlog.is_down() {
        return;
    }
    let mut result = backend.append_mcp_calls(calls);
    if let Err(e) = &result {
        if e.is_unreachable() {
            backlog.went_down(e, stats);
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
        result = backend.append_mcp_calls(calls);
    }
    match result {
        Ok(entries) => {
            if let Some(last) = entries.last() {
                *head = Some(Head {
                    seq: last.seq,
                    hash: last.hash.clone(),
                });
            }
        }
        Err(e) => tracing::error!(error = %e, calls = calls.len(), "mcp call batch lost"),
    }
    calls.clear();
}

pub(super) fn note_head(head: &mut Option<Head>, result: &Result<LedgerEntry, StoreError>) {
    if let Ok(entry) = result {
        *head = Some(Head {
            seq: entry.seq,
            hash: entry.hash.clone(),
        });
    }
}

/// Writes the pending head, if any. A failure is logged, not fatal: the entries are committed and
/// MACed, and the next batch publishes again.
pub(super) fn publish_head(backend: &mut dyn WriteBackend, head: &mut Option<Head>) {
    let Some(pending) = head.take() else { return };
    if let Err(e) = backend.publish_head(&pending) {
        tracing::error!(error = %e, seq = pending.seq, "ledger head not published");
        *head = Some(pending);
    }
}

fn save_alert(backend: &mut dyn WriteBackend, alert: &AlertRecord) -> Result<(), StoreError> {
    backend.record_alert(alert).inspect_err(|e| {
        tracing::warn!(error = %e, rule = %alert.rule, "alert not stored");
    })
}

fn save_response(
    backend: &mut dyn WriteBackend,
    record: &StoredResponse,
) -> Result<(), StoreError> {
    backend.save_response(record).inspect_err(|e| {
        tracing::warn!(error = %e, id = %record.id, "response not stored");
    })
}

fn add_auth_failures(
    backend: &mut dyn WriteBackend,
    counts: &[AuthFailureCount],
) -> Result<(), StoreError> {
    backend.add_auth_failures(counts).inspect_err(|e| {
        tracing::warn!(error = %e, buckets = counts.len(), "auth failure counts not stored");
    })
}

fn record_alert(backend: &mut dyn WriteBackend, alert: &BudgetAlert) -> Result<(), StoreError> {
    backend.record_budget_alert(alert).inspect_err(|e| {
        tracing::warn!(error = %e, subject = %alert.subject, "budget alert not stored");
    })
}

fn add_rate_counts(backend: &mut dyn WriteBackend, deltas: &[RateCount]) -> Result<(), StoreError> {
    backend.add_rate_counts(deltas, now_ms()).inspect_err(|e| {
        tracing::warn!(error = %e, counters = deltas.len(), "rate limit counts not stored");
    })
}

fn apply_cache(backend: &mut dyn WriteBackend, op: &CacheOp) -> Result<(), StoreError> {
    let result = match op {
        CacheOp::Save(entry) => backend.save_cache_entry(entry),
        CacheOp::Delete(keys) => backend.delete_cache_entries(keys),
        CacheOp::Purge(purge) => backend.purge_cache(purge).map(|_| ()),
        CacheOp::DropExpired(now_ms) => backend.drop_expired_cache(*now_ms).map(|_| ()),
    };
    result.inspect_err(|e| tracing::warn!(error = %e, "cache change not stored"))
}

fn save_breaker(backend: &mut dyn WriteBackend, record: &BreakerRecord) -> Result<(), StoreError> {
    backend.save_breaker(record).inspect_err(|e| {
        tracing::warn!(error = %e, deployment = %record.deployment, "breaker state not saved");
    })
}

pub(super) fn commit(
    backend: &mut dyn WriteBackend,
    batch: &mut Vec<TraceRecord>,
    backlog: &mut Backlog,
    stats: &WriterStats,
) {
    if batch.is_empty() {
        return;
    }
    if backlog.is_down() {
        backlog.hold_traces(batch, stats);
        return;
    }
    let started = std::time::Instant::now();
    let mut result = backend.append_traces(batch);
    if let Err(e) = &result
        && !e.is_unreachable()
    {
        // One retry covers a transient lock held by an outside reader past busy_timeout.
        tracing::warn!(error = %e, rows = batch.len(), "trace batch failed; retrying once");
        std::thread::sleep(Duration::from_millis(100));
        result = backend.append_traces(batch);
    }
    match result {
        Ok(()) => note_commit(stats, batch.len(), started),
        Err(e) if e.is_unreachable() => {
            backlog.went_down(&e, stats);
            backlog.hold_traces(batch, stats);
        }
        Err(e) => {
            stats
                .failed
                .fetch_add(batch.len() as u64, Ordering::Relaxed);
            tracing::error!(error = %e, rows = batch.len(), "trace batch lost");
        }
    }
    batch.clear();
}

/// Counts a committed trace batch of `rows` rows that took from `started` to now.
pub(super) fn note_commit(stats: &WriterStats, rows: usize, started: std::time::Instant) {
    stats.histograms.batch_rows.observe(rows as f64);
    stats
        .histograms
        .commit_seconds
        .observe(started.elapsed().as_secs_f64());
    stats.written.fetch_add(rows as u64, Ordering::Relaxed);
    stats.batches.fetch_add(1, Ordering::Relaxed);
}
