//! Holding the writer's records while the store is out of reach (a PostgreSQL server that was
//! cut off, restarted or failed over), instead of retrying once and dropping them.
//!
//! When a write fails with [`StoreError::Unreachable`] the writer goes on taking records from
//! its queue, so the request path never waits on the dead store, and keeps them here: trace rows
//! and the one-off records (breakers, cache entries, counts), each list bounded by the queue's
//! capacity. Past the bound a record is dropped and counted in `WriterStats::dropped` (the
//! `stockyard_writer_dropped_records` metric), never silently. No write is tried while the store
//! is down except the retry: every [`Backlog::due`] (250 ms, doubling to 2 s) the writer tries
//! to commit the oldest held rows, and once that works it writes the rest in batches and replays
//! the one-off records in the order they came. Admin changes are not held: they fail at once,
//! so whoever made one is told. A SQLite store never reports `Unreachable`, so it never holds.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::{WriteOp, WriterStats};
use crate::store::{StoreError, TraceRecord};

/// The first retry after the store went away, and the most a retry waits for the next.
const RETRY_FIRST: Duration = Duration::from_millis(250);
const RETRY_MAX: Duration = Duration::from_secs(2);

pub(super) struct Backlog {
    traces: Vec<TraceRecord>,
    /// One-off records (not traces, not control operations), in arrival order.
    ops: Vec<WriteOp>,
    /// Most trace rows, and most one-off records, held at once.
    cap: usize,
    down: bool,
    delay: Duration,
    next_try: Instant,
}

impl Backlog {
    pub(super) fn new(cap: usize) -> Backlog {
        Backlog {
            traces: Vec::new(),
            ops: Vec::new(),
            cap: cap.max(1),
            down: false,
            delay: RETRY_FIRST,
            next_try: Instant::now(),
        }
    }

    /// Whether the store is known to be out of reach: writes are held, not tried.
    pub(super) fn is_down(&self) -> bool {
        self.down
    }

    /// Notes a write that found the store out of reach; the first retry is [`RETRY_FIRST`] on.
    pub(super) fn went_down(&mut self, error: &StoreError, stats: &WriterStats) {
        if !self.down {
            tracing::error!(
                error = %error,
                "the store is unreachable; holding records in memory until it returns"
            );
            stats.holding.store(true, Ordering::Relaxed);
        }
        self.down = true;
        self.delay = RETRY_FIRST;
        self.next_try = Instant::now() + self.delay;
    }

    /// How long until the next retry is due (zero when due now); `None` while the store is up.
    pub(super) fn until_retry(&self) -> Option<Duration> {
        self.down
            .then(|| self.next_try.saturating_duration_since(Instant::now()))
    }

    pub(super) fn due(&self) -> bool {
        self.down && Instant::now() >= self.next_try
    }

    /// Moves `batch` into the held rows; what passes the bound is dropped and counted.
    pub(super) fn hold_traces(&mut self, batch: &mut Vec<TraceRecord>, stats: &WriterStats) {
        let room = self.cap.saturating_sub(self.traces.len());
        if batch.len() > room {
            let lost = (batch.len() - room) as u64;
            batch.truncate(room);
            count_drops(stats, lost, "trace rows");
        }
        self.traces.append(batch);
        self.note(stats);
    }

    pub(super) fn hold_op(&mut self, op: WriteOp, stats: &WriterStats) {
        if self.ops.len() >= self.cap {
            count_drops(stats, 1, "records");
            return;
        }
        self.ops.push(op);
        self.note(stats);
    }

    fn note(&self, stats: &WriterStats) {
        stats.held.store(
            (self.traces.len() + self.ops.len()) as u64,
            Ordering::Relaxed,
        );
    }

    /// Tries to write what is held, oldest first, in batches of `batch_size`. Stops (and backs
    /// off) at the first batch the store is still out of reach for. A batch that fails for
    /// another reason is retried once, then lost and counted as failed, as a live batch is.
    /// Returns the one-off records to replay once every row is in, in arrival order.
    pub(super) fn retry(
        &mut self,
        batch_size: usize,
        mut write: impl FnMut(&[TraceRecord]) -> Result<(), StoreError>,
        stats: &WriterStats,
    ) -> Option<Vec<WriteOp>> {
        let held = self.traces.len();
        while !self.traces.is_empty() {
            let n = self.traces.len().min(batch_size.max(1));
            let started = Instant::now();
            let mut result = write(&self.traces[..n]);
            if let Err(e) = &result
                && !e.is_unreachable()
            {
                result = write(&self.traces[..n]);
            }
            match result {
                Ok(()) => super::apply::note_commit(stats, n, started),
                Err(e) if e.is_unreachable() => {
                    self.delay = (self.delay * 2).min(RETRY_MAX);
                    self.next_try = Instant::now() + self.delay;
                    tracing::debug!(error = %e, held = self.traces.len(), "store still unreachable");
                    self.note(stats);
                    return None;
                }
                Err(e) => {
                    stats.failed.fetch_add(n as u64, Ordering::Relaxed);
                    tracing::error!(error = %e, rows = n, "held trace batch lost");
                }
            }
            self.traces.drain(..n);
        }
        self.down = false;
        self.delay = RETRY_FIRST;
        stats.holding.store(false, Ordering::Relaxed);
        let ops = std::mem::take(&mut self.ops);
        tracing::info!(
            rows = held,
            records = ops.len(),
            "the store is back; wrote the held rows"
        );
        self.note(stats);
        Some(ops)
    }

    /// At shutdown with the store still out of reach: what is held is lost, counted as failed.
    pub(super) fn give_up(&mut self, stats: &WriterStats) {
        let lost = self.traces.len() + self.ops.len();
        if lost > 0 {
            stats.failed.fetch_add(lost as u64, Ordering::Relaxed);
            tracing::error!(
                records = lost,
                "stopping with the store unreachable: held records lost"
            );
        }
        self.traces.clear();
        self.ops.clear();
        self.note(stats);
    }
}

fn count_drops(stats: &WriterStats, lost: u64, what: &'static str) {
    let before = stats.dropped.fetch_add(lost, Ordering::Relaxed);
    // The first drop and then one line per thousand, so an outage can't flood the log.
    if before == 0 || (before + lost) / 1000 > before / 1000 {
        tracing::warn!(
            dropped = before + lost,
            what,
            "held records dropped: the store is unreachable and the hold is full"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(n: usize) -> Vec<TraceRecord> {
        (0..n)
            .map(|i| TraceRecord {
                id: format!("t{i}"),
                ..TraceRecord::default()
            })
            .collect()
    }

    fn gone() -> StoreError {
        StoreError::Unreachable("cut".into())
    }

    #[test]
    fn rows_past_the_bound_are_dropped_and_counted() {
        let stats = WriterStats::default();
        let mut backlog = Backlog::new(5);
        backlog.went_down(&gone(), &stats);
        backlog.hold_traces(&mut rows(3), &stats);
        backlog.hold_traces(&mut rows(4), &stats);
        assert_eq!(stats.held.load(Ordering::Relaxed), 5);
        assert_eq!(stats.dropped.load(Ordering::Relaxed), 2);
        assert!(stats.holding.load(Ordering::Relaxed));
    }

    #[test]
    fn a_retry_stops_at_the_first_unreachable_batch_and_writes_everything_once_back() {
        let stats = WriterStats::default();
        let mut backlog = Backlog::new(100);
        backlog.went_down(&gone(), &stats);
        backlog.hold_traces(&mut rows(7), &stats);
        let mut written: Vec<String> = Vec::new();
        // Still down: nothing written, the next try backs off.
        let first_delay = backlog.delay;
        assert!(backlog.retry(3, |_| Err(gone()), &stats).is_none());
        assert!(backlog.is_down() && backlog.delay > first_delay);
        // Back: every row, oldest first, in batches of three.
        let mut batches = 0;
        let ops = backlog.retry(
            3,
            |batch| {
                batches += 1;
                written.extend(batch.iter().map(|t| t.id.clone()));
                Ok(())
            },
            &stats,
        );
        assert!(ops.is_some_and(|o| o.is_empty()));
        assert_eq!(batches, 3);
        assert_eq!(written, ["t0", "t1", "t2", "t3", "t4", "t5", "t6"]);
        assert!(!backlog.is_down() && !stats.holding.load(Ordering::Relaxed));
        assert_eq!(stats.written.load(Ordering::Relaxed), 7);
        assert_eq!(stats.held.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn a_batch_the_store_refuses_is_counted_as_failed_not_held_forever() {
        let stats = WriterStats::default();
        let mut backlog = Backlog::new(100);
        backlog.went_down(&gone(), &stats);
        backlog.hold_traces(&mut rows(2), &stats);
        let ops = backlog.retry(
            10,
            |_| Err(StoreError::Constraint("bad row".into())),
            &stats,
        );
        assert!(ops.is_some());
        assert_eq!(stats.failed.load(Ordering::Relaxed), 2);
        assert!(!backlog.is_down());
    }
}
