//! The one writer: a thread that takes records from a bounded channel and commits them in batches
//! (up to `batch_size` rows, or `batch_interval` after the first row, whichever comes first).
//!
//! The request path calls [`Writer::submit_trace`], which never touches disk: it puts the record in
//! the queue, or, when the queue is full, applies the configured policy (drop at once, or wait up to
//! a bound, then drop). Every drop is counted in [`WriterStats`] and logged, and shows in `/ready`.
//! Administrative changes go through the same thread ([`Writer::admin`]) so ledger entries are
//! appended in order by one hand, and are never dropped. The ledger's new head is published once
//! per batch, after its commit, never per entry: the file write stays off the per-entry path.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{Notify, mpsc, oneshot};

use super::alerts::AlertRecord;
use super::dashboard::TraceSummary;
use super::maintenance::RetentionKind;
use super::mcp::McpCallWrite;
use super::{
    AuthFailureCount, BreakerRecord, BudgetAlert, CacheEntry, CacheKind, CachePurge, Persist,
    RateCount, StoreError, StoredResponse, TraceRecord, WriteBackend,
};
use crate::config::{QueueFullPolicy, StoreConfig};
use crate::ledger::{LedgerDraft, LedgerEntry};

mod apply;
mod hold;
mod priority;
mod thread;
use priority::WriterPriority;
use thread::run;

enum WriteOp {
    Trace(Box<TraceRecord>),
    Breaker(BreakerRecord),
    Response(Box<StoredResponse>),
    Batch(Box<crate::store::batches::BatchObject>),
    AuthFailures(Vec<AuthFailureCount>),
    BudgetAlert(Box<BudgetAlert>),
    RateCounts(Vec<RateCount>),
    Cache(CacheOp),
    Alert(Box<AlertRecord>),
    /// An MCP tool call and its ledger entry, committed with the next batch.
    McpCall(Box<McpCallWrite>),
    Admin {
        change: Option<Persist>,
        draft: LedgerDraft,
        reply: oneshot::Sender<Result<LedgerEntry, StoreError>>,
    },
    /// Store upkeep (a retention batch, a vacuum, a checkpoint), run between trace batches.
    Maintain {
        job: MaintenanceJob,
        reply: oneshot::Sender<Result<u64, StoreError>>,
    },
    /// Commit what is queued so far, then answer.
    Flush(oneshot::Sender<()>),
    /// Commit everything, checkpoint, answer and stop.
    Shutdown(oneshot::Sender<Result<(), StoreError>>),
}

/// One piece of store upkeep for the writer thread; each answers with a count.
#[derive(Clone, Copy, Debug)]
pub enum MaintenanceJob {
    /// Rows removed (or bodies blanked): at most `limit`, older than `cutoff_ms`.
    Delete {
        kind: RetentionKind,
        cutoff_ms: i64,
        limit: usize,
    },
    /// Pages given back to the file system.
    Vacuum { max_pages: Option<u32> },
    /// WAL frames left after a checkpoint (truncating, which waits out readers, or passive).
    Checkpoint { truncate: bool },
}

/// After this long with nothing queued, the backend writes what it holds back (roll-ups).
const IDLE_FLUSH: Duration = Duration::from_secs(1);

/// At most one passive checkpoint per this interval: each one scans the WAL index, and a
/// checkpoint per batch would cost more than the batch under load.
const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(1);

/// Past this many WAL frames (16 MiB at 4 KiB pages) the writer truncates instead: a passive
/// checkpoint can only reuse the WAL from its start once no reader pins an old snapshot, so a
/// steady stream of readers could otherwise let it grow without end.
pub const WAL_TRUNCATE_FRAMES: u64 = 4096;

/// The least time between two checkpoints of any kind: a truncating one that a long reader keeps
/// busy must not be retried after every batch.
const TRUNCATE_GAP: Duration = Duration::from_millis(250);

/// The same bound as a file size, for the check after each batch.
pub const WAL_TRUNCATE_BYTES: u64 = 16 * 1024 * 1024;

#[derive(Debug, Default)]
pub struct WriterStats {
    pub written: AtomicU64,
    pub dropped: AtomicU64,
    /// Rows lost because their batch failed to commit twice.
    pub failed: AtomicU64,
    pub batches: AtomicU64,
    pub alive: AtomicBool,
    /// Rows per committed trace batch and how long each commit took (for `/metrics`).
    pub histograms: WriterHistograms,
    /// WAL upkeep: checkpoints run and when the last one ended (epoch ms, 0: none yet).
    pub checkpoints: AtomicU64,
    pub last_checkpoint_ms: AtomicI64,
    /// WAL frames left after the last checkpoint (what a reader still pins).
    pub wal_frames: AtomicU64,
    /// Whether the store is out of reach and records are held in memory (`hold.rs`), and how
    /// many are held.
    pub holding: AtomicBool,
    pub held: AtomicU64,
}

/// Histograms the writer fills as it commits; the `metrics` module registers them for scraping.
/// They are plain handles (clones share one set of buckets), so the writer knows no registry.
#[derive(Clone, Debug)]
pub struct WriterHistograms {
    pub batch_rows: prometheus::Histogram,
    pub commit_seconds: prometheus::Histogram,
}

impl Default for WriterHistograms {
    fn default() -> Self {
        let histogram = |name: &str, help: &str, buckets: Vec<f64>| {
            let opts = prometheus::HistogramOpts::new(name, help).buckets(buckets);
            // The names and buckets are constants that the line below checks in a unit test.
            prometheus::Histogram::with_opts(opts).unwrap_or_else(|_| unreachable_histogram())
        };
        WriterHistograms {
            batch_rows: histogram(
                "stockyard_writer_batch_rows",
                "rows per committed trace batch",
                vec![1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0],
            ),
            commit_seconds: histogram(
                "stockyard_writer_commit_seconds",
                "time to commit one trace batch",
                prometheus::exponential_buckets(0.0001, 4.0, 9).unwrap_or_default(),
            ),
        }
    }
}

/// A histogram with the default options, which cannot fail: only reached if a constant above were
/// invalid, which `writer_histograms_build` rules out.
fn unreachable_histogram() -> prometheus::Histogram {
    #[allow(clippy::unwrap_used)]
    prometheus::Histogram::with_opts(prometheus::HistogramOpts::new("h", "h")).unwrap()
}

#[derive(Clone, Copy, Debug, Serialize)]
pub struct WriterSnapshot {
    pub alive: bool,
    pub queue_depth: usize,
    pub queue_capacity: usize,
    pub written: u64,
    pub dropped: u64,
    pub failed: u64,
    pub batches: u64,
    pub checkpoints: u64,
    pub last_checkpoint_ms: i64,
    pub wal_frames: u64,
    /// The store is out of reach: records wait in memory (`held` of them) for it to return.
    pub holding: bool,
    pub held: u64,
}

pub struct Writer {
    tx: mpsc::Sender<WriteOp>,
    stats: Arc<WriterStats>,
    policy: QueueFullPolicy,
    capacity: usize,
    thread: std::sync::Mutex<Option<JoinHandle<()>>>,
    /// Wakes the writer out of its batch wait for what someone is waiting on (an admin change, a
    /// flush, shutdown), so those never wait out a batch interval.
    urgent: Arc<Notify>,
    /// The writer thread's scheduling class (`priority.rs`): given up to requests while it is
    /// caught up, taken back when it falls behind or somebody waits on it.
    priority: Arc<WriterPriority>,
    /// Finished traces as they are queued, for whoever watches live (the console's Live page).
    /// With no subscriber a trace costs one uncontended lock here (the channel's count).
    live: tokio::sync::broadcast::Sender<Arc<TraceSummary>>,
}

/// Traces a slow live watcher may fall behind by before it skips ahead (and is told how many it
/// missed).
const LIVE_BACKLOG: usize = 1024;

impl Writer {
    pub fn start(
        backend: Box<dyn WriteBackend>,
        config: StoreConfig,
    ) -> Result<Writer, std::io::Error> {
        let (tx, rx) = mpsc::channel(config.queue_capacity);
        let stats = Arc::new(WriterStats::default());
        stats.alive.store(true, Ordering::SeqCst);
        let thread_stats = stats.clone();
        let urgent = Arc::new(Notify::new());
        let thread_urgent = urgent.clone();
        let priority = Arc::new(WriterPriority::new(
            config.batch_size,
            config.queue_capacity,
            config.batch_interval,
        ));
        let thread_priority = priority.clone();
        let thread = std::thread::Builder::new()
            .name("stockyard-writer".into())
            .spawn(move || {
                run(
                    backend,
                    rx,
                    config,
                    &thread_stats,
                    &thread_urgent,
                    &thread_priority,
                )
            })?;
        Ok(Writer {
            tx,
            stats,
            policy: config.queue_full,
            capacity: config.queue_capacity,
            thread: std::sync::Mutex::new(Some(thread)),
            urgent,
            priority,
            live: tokio::sync::broadcast::channel(LIVE_BACKLOG).0,
        })
    }

    /// Queues a trace. Never waits on disk; waits on a full queue only as long as the policy allows.
    pub async fn submit_trace(&self, record: TraceRecord) {
        if self.live.receiver_count() > 0 {
            // A send fails only when the last watcher left meanwhile: nothing to do then.
            let _ = self.live.send(Arc::new(TraceSummary::of(&record)));
        }
        let op = WriteOp::Trace(Box::new(record));
        let result = match self.tx.try_send(op) {
            Ok(()) => {
                self.priority.note_depth(|| self.queued());
                return;
            }
            Err(mpsc::error::TrySendError::Full(op)) => match self.policy {
                QueueFullPolicy::Drop => {
                    self.priority.hurry();
                    Err("queue full")
                }
                // The writer holds records for an unreachable store and drains the queue as
                // fast as it fills; a full queue then means the hold is full too: waiting helps
                // nobody and would slow every request.
                QueueFullPolicy::Wait(_) if self.stats.holding.load(Ordering::Relaxed) => {
                    Err("queue full while the store is unreachable")
                }
                QueueFullPolicy::Wait(bound) => {
                    self.priority.hurry();
                    self.tx
                        .send_timeout(op, bound)
                        .await
                        .map_err(|_| "queue full after waiting")
                }
            },
            Err(mpsc::error::TrySendError::Closed(_)) => Err("writer stopped"),
        };
        if let Err(why) = result {
            let dropped = self.stats.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            // Log the first drop and then every 1000th, so a flood of drops can't flood the log.
            if dropped == 1 || dropped.is_multiple_of(1000) {
                tracing::warn!(dropped, why, "trace record dropped");
            }
        }
    }

    /// Finished traces from now on, as they are queued (before they are stored).
    pub fn subscribe_live(&self) -> tokio::sync::broadcast::Receiver<Arc<TraceSummary>> {
        self.live.subscribe()
    }

    /// Queues a breaker's new phase. Never waits: a breaker change is worth less than the request
    /// that caused it, and the next change supersedes it anyway; a drop is counted like a trace's.
    pub fn submit_breaker(&self, record: BreakerRecord) {
        self.submit_now(WriteOp::Breaker(record), "breaker state change");
    }

    /// Queues refused-authentication counts. Never waits: these are what a flood produces, and
    /// the flood must not hold the request path; a drop is counted like a trace's.
    pub fn submit_auth_failures(&self, counts: Vec<AuthFailureCount>) {
        self.submit_now(WriteOp::AuthFailures(counts), "auth failure counts");
    }

    /// Queues a budget alert. Never waits: the request that crossed the threshold must not wait
    /// on its record; a drop is counted like a trace's.
    pub fn submit_budget_alert(&self, alert: BudgetAlert) {
        self.submit_now(WriteOp::BudgetAlert(Box::new(alert)), "budget alert");
    }

    /// Queues a fired alert (and its rule's cool-down). Never waits; a drop is counted.
    pub fn submit_alert(&self, alert: AlertRecord) {
        self.submit_now(WriteOp::Alert(Box::new(alert)), "alert");
    }

    /// Queues changes to rate-limit counts. Never waits, like the auth-failure counts.
    pub fn submit_rate_counts(&self, deltas: Vec<RateCount>) {
        if !deltas.is_empty() {
            self.submit_now(WriteOp::RateCounts(deltas), "rate limit counts");
        }
    }

    /// Queues `op` if there is room, else drops and counts it: for records that must never hold
    /// up their caller.
    fn submit_now(&self, op: WriteOp, what: &'static str) {
        if self.tx.try_send(op).is_ok() {
            self.priority.note_depth(|| self.queued());
        } else {
            self.priority.hurry();
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(what, "record dropped: writer queue full");
        }
    }

    /// Queues a file or batch record (`modules/batches`). Never waits; a drop is counted and
    /// logged (the module's memory still holds the record until restart).
    pub fn submit_batch_object(&self, record: crate::store::batches::BatchObject) {
        self.submit_now(WriteOp::Batch(Box::new(record)), "batch record");
    }

    /// Queues a Responses answer for storage, under the same full-queue policy as traces.
    pub async fn submit_response(&self, record: StoredResponse) {
        let op = WriteOp::Response(Box::new(record));
        let sent = match self.tx.try_send(op) {
            Ok(()) => {
                self.priority.note_depth(|| self.queued());
                true
            }
            Err(mpsc::error::TrySendError::Full(op)) => match self.policy {
                QueueFullPolicy::Drop => {
                    self.priority.hurry();
                    false
                }
                QueueFullPolicy::Wait(bound) => {
                    self.priority.hurry();
                    self.tx.send_timeout(op, bound).await.is_ok()
                }
            },
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        };
        if !sent {
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            tracing::warn!("stored response dropped: writer queue full");
        }
    }

    /// Queues a cache change. Never waits: a cache entry lost to a full queue is only a later
    /// miss (a lost delete is dropped at the next start-up, once expired); counted like a trace.
    pub fn submit_cache(&self, op: CacheOp) {
        self.submit_now(WriteOp::Cache(op), "cache entry");
    }

    /// Queues an MCP tool call's record and ledger entry. Never waits and never drops: the entry
    /// is part of the audit trail, so when the queue is full a task waits for room instead of
    /// the caller (the request path). Its sequence number is assigned at commit, in queue order.
    pub fn submit_mcp_call(&self, call: McpCallWrite) {
        match self.tx.try_send(WriteOp::McpCall(Box::new(call))) {
            Ok(()) => self.priority.note_depth(|| self.queued()),
            Err(mpsc::error::TrySendError::Full(op)) => {
                self.priority.hurry();
                let tx = self.tx.clone();
                let stats = self.stats.clone();
                tokio::spawn(async move {
                    if tx.send(op).await.is_err() {
                        stats.dropped.fetch_add(1, Ordering::Relaxed);
                        tracing::error!("mcp call record lost: writer stopped");
                    }
                });
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                tracing::error!("mcp call record lost: writer stopped");
            }
        }
    }

    /// Persists `change` and appends its ledger entry, in one transaction; returns the entry.
    pub async fn admin(
        &self,
        change: Option<Persist>,
        draft: LedgerDraft,
    ) -> Result<LedgerEntry, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.priority.hurry_for_waiter();
        self.tx
            .send(WriteOp::Admin {
                change,
                draft,
                reply,
            })
            .await
            .map_err(|_| StoreError::WriterGone)?;
        self.priority.hurry_for_waiter();
        self.urgent.notify_one();
        answer.await.map_err(|_| StoreError::WriterGone)?
    }

    /// Runs one piece of store upkeep on the writer thread, after what is queued before it.
    /// Waits for room in the queue: upkeep is never dropped, only delayed.
    pub async fn maintain(&self, job: MaintenanceJob) -> Result<u64, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.priority.hurry_for_waiter();
        self.tx
            .send(WriteOp::Maintain { job, reply })
            .await
            .map_err(|_| StoreError::WriterGone)?;
        self.priority.hurry_for_waiter();
        self.urgent.notify_one();
        answer.await.map_err(|_| StoreError::WriterGone)?
    }

    /// Waits until everything queued before this call is committed.
    pub async fn flush(&self) -> Result<(), StoreError> {
        let (reply, answer) = oneshot::channel();
        self.priority.hurry_for_waiter();
        self.tx
            .send(WriteOp::Flush(reply))
            .await
            .map_err(|_| StoreError::WriterGone)?;
        self.priority.hurry_for_waiter();
        self.urgent.notify_one();
        answer.await.map_err(|_| StoreError::WriterGone)
    }

    /// Commits everything queued, checkpoints, and stops the thread. Later submits are dropped.
    pub async fn shutdown(&self) -> Result<(), StoreError> {
        let (reply, answer) = oneshot::channel();
        self.priority.hurry_for_waiter();
        if self.tx.send(WriteOp::Shutdown(reply)).await.is_err() {
            return Err(StoreError::WriterGone);
        }
        self.priority.hurry_for_waiter();
        self.urgent.notify_one();
        let result = answer.await.map_err(|_| StoreError::WriterGone)?;
        let thread = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(thread) = thread {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
        result
    }

    /// Records waiting in the queue.
    fn queued(&self) -> usize {
        self.capacity.saturating_sub(self.tx.capacity())
    }

    pub fn snapshot(&self) -> WriterSnapshot {
        WriterSnapshot {
            alive: self.stats.alive.load(Ordering::SeqCst),
            queue_depth: self.queued(),
            queue_capacity: self.capacity,
            written: self.stats.written.load(Ordering::Relaxed),
            dropped: self.stats.dropped.load(Ordering::Relaxed),
            failed: self.stats.failed.load(Ordering::Relaxed),
            batches: self.stats.batches.load(Ordering::Relaxed),
            checkpoints: self.stats.checkpoints.load(Ordering::Relaxed),
            last_checkpoint_ms: self.stats.last_checkpoint_ms.load(Ordering::Relaxed),
            wal_frames: self.stats.wal_frames.load(Ordering::Relaxed),
            holding: self.stats.holding.load(Ordering::Relaxed),
            held: self.stats.held.load(Ordering::Relaxed),
        }
    }

    /// The writer's histograms, for the `metrics` module to register.
    pub fn histograms(&self) -> &WriterHistograms {
        &self.stats.histograms
    }
}

/// A change to the cache entries (see `store/cache.rs`).
pub enum CacheOp {
    Save(Box<CacheEntry>),
    Delete(Vec<(CacheKind, String, String)>),
    Purge(CachePurge),
    /// Entries expired at this time (the caches load only live ones; this drops the rest).
    DropExpired(i64),
}
