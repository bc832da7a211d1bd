//! The writer thread itself: [`run`] settles its scheduling class (`priority.rs`) and drives
//! [`writer_loop`], which takes records from the queue, gathers trace rows into batches and hands
//! each kind of record to `apply.rs`. While the store is out of reach the loop keeps draining the
//! queue into the hold (`hold.rs`) and wakes for its retries; at shutdown it makes one last try
//! before giving up what is held.

use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;

use super::apply::{
    apply_record, commit, commit_mcp, maintain, note_head, publish_head, store_one, wal_upkeep,
};
use super::hold::Backlog;
use super::priority::WriterPriority;
use super::{IDLE_FLUSH, WriteOp, WriterStats};
use crate::config::StoreConfig;
use crate::ledger::Head;
use crate::store::mcp::McpCallWrite;
use crate::store::{StoreError, TraceRecord, WriteBackend, now_ms};

/// How late past its batch deadline the writer may wake before it counts as starved: a tick or
/// two is scheduling noise; more means threads of normal class are holding the CPU.
const STARVED: Duration = Duration::from_millis(20);

pub(super) fn run(
    mut backend: Box<dyn WriteBackend>,
    rx: mpsc::Receiver<WriteOp>,
    config: StoreConfig,
    stats: &WriterStats,
    urgent: &Notify,
    priority: &WriterPriority,
) {
    priority.settle();
    // However the thread ends (a panic included), later changes must not reach a dead thread's
    // id, which the kernel may give to another.
    let _stopped = Stopped(priority);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build();
    match runtime {
        Ok(runtime) => runtime.block_on(writer_loop(
            backend.as_mut(),
            rx,
            config,
            stats,
            urgent,
            priority,
        )),
        Err(e) => tracing::error!(error = %e, "writer thread could not start its timer"),
    }
    stats.alive.store(false, Ordering::SeqCst);
}

/// Tells the priority the writer thread stopped, when dropped.
struct Stopped<'p>(&'p WriterPriority);

impl Drop for Stopped<'_> {
    fn drop(&mut self) {
        self.0.stopped();
    }
}

async fn writer_loop(
    backend: &mut dyn WriteBackend,
    mut rx: mpsc::Receiver<WriteOp>,
    config: StoreConfig,
    stats: &WriterStats,
    urgent: &Notify,
    priority: &WriterPriority,
) {
    let mut batch: Vec<TraceRecord> = Vec::with_capacity(config.batch_size);
    // MCP calls wait with the trace batch and commit with their ledger entries after it.
    let mut mcp: Vec<McpCallWrite> = Vec::new();
    // The newest ledger entry committed since the head was last published.
    let mut head: Option<Head> = None;
    let mut last_checkpoint = std::time::Instant::now();
    // Records held while the store is out of reach, bounded like the queue.
    let mut backlog = Backlog::new(config.queue_capacity);
    loop {
        // Nothing left to write: requests may have the CPU whenever they want it. Records held
        // for an unreachable store are not nothing: their retries keep the writer's share.
        if backlog.is_down() {
            priority.hurry();
        } else if rx.is_empty() {
            priority.caught_up(|| rx.is_empty());
        }
        // Idle for a while: write what the backend holds back (the console's roll-ups), so a
        // quiet proxy's overview is never more than this behind.
        // While the store is out of reach, wake for the next retry even with nothing queued.
        let wait = backlog
            .until_retry()
            .map_or(IDLE_FLUSH, |d| d.min(IDLE_FLUSH));
        let first = match tokio::time::timeout(wait, rx.recv()).await {
            Ok(Some(op)) => op,
            Ok(None) => break,
            Err(_) => {
                if backlog.is_down() {
                    if backlog.due() {
                        recover(backend, &mut backlog, config.batch_size, stats);
                    }
                } else if let Err(e) = backend.flush_rollups() {
                    tracing::warn!(error = %e, "roll-up flush failed");
                }
                continue;
            }
        };
        let deadline = Instant::now() + config.batch_interval;
        let mut next = Some(first);
        loop {
            let Some(op) = next.take() else { break };
            let control = apply_record(backend, &mut batch, &mut backlog, stats, op);
            if control
                .as_ref()
                .is_some_and(|op| !matches!(op, WriteOp::McpCall(_)))
            {
                // Somebody waits on this one (and an admin change takes the ledger's lock).
                priority.hurry();
            }
            match control {
                None => {}
                Some(WriteOp::Admin {
                    change,
                    draft,
                    reply,
                }) => {
                    commit(backend, &mut batch, &mut backlog, stats);
                    commit_mcp(backend, &mut mcp, &mut head, &mut backlog, stats);
                    let result = backend.apply_admin(change.as_ref(), &draft, now_ms());
                    note_head(&mut head, &result);
                    let _ = reply.send(result);
                }
                Some(WriteOp::McpCall(call)) => mcp.push(*call),
                Some(WriteOp::Maintain { job, reply }) => {
                    commit(backend, &mut batch, &mut backlog, stats);
                    commit_mcp(backend, &mut mcp, &mut head, &mut backlog, stats);
                    let _ = reply.send(maintain(backend, job, stats));
                }
                Some(WriteOp::Flush(reply)) => {
                    commit(backend, &mut batch, &mut backlog, stats);
                    commit_mcp(backend, &mut mcp, &mut head, &mut backlog, stats);
                    publish_head(backend, &mut head);
                    // With the store out of reach, "committed" can only mean "held".
                    if !backlog.is_down()
                        && let Err(e) = backend.flush_rollups()
                    {
                        tracing::warn!(error = %e, "roll-up flush failed");
                    }
                    let _ = reply.send(());
                }
                Some(WriteOp::Shutdown(reply)) => {
                    rx.close();
                    while let Ok(op) = rx.try_recv() {
                        match apply_record(backend, &mut batch, &mut backlog, stats, op) {
                            None => {}
                            Some(WriteOp::Admin {
                                change,
                                draft,
                                reply,
                            }) => {
                                let result = backend.apply_admin(change.as_ref(), &draft, now_ms());
                                note_head(&mut head, &result);
                                let _ = reply.send(result);
                            }
                            Some(WriteOp::McpCall(call)) => mcp.push(*call),
                            Some(WriteOp::Maintain { reply, .. }) => {
                                let _ = reply.send(Err(StoreError::WriterGone));
                            }
                            Some(WriteOp::Flush(reply)) => {
                                let _ = reply.send(());
                            }
                            Some(WriteOp::Shutdown(other)) => {
                                let _ = other.send(Ok(()));
                            }
                            // `apply_record` hands back only the control operations above.
                            Some(_) => {}
                        }
                        if batch.len() + mcp.len() >= config.batch_size {
                            commit(backend, &mut batch, &mut backlog, stats);
                            commit_mcp(backend, &mut mcp, &mut head, &mut backlog, stats);
                        }
                    }
                    commit(backend, &mut batch, &mut backlog, stats);
                    commit_mcp(backend, &mut mcp, &mut head, &mut backlog, stats);
                    last_chance(backend, &mut backlog, &mut mcp, &mut head, &config, stats);
                    publish_head(backend, &mut head);
                    let _ = reply.send(backend.checkpoint());
                    return;
                }
                // `apply_record` hands back only the control operations above.
                Some(_) => {}
            }
            if batch.len() + mcp.len() >= config.batch_size {
                break;
            }
            // Take what is already queued; when the queue runs dry, sleep out the batch interval
            // instead of waking for every record (one wake-up per batch, not per request).
            next = match rx.try_recv() {
                Ok(op) => Some(op),
                Err(_) if batch.is_empty() && mcp.is_empty() => None,
                Err(_) if Instant::now() < deadline => {
                    tokio::select! {
                        () = tokio::time::sleep_until(deadline) => {}
                        () = urgent.notified() => {}
                    }
                    // Woken well past the deadline: other threads hold the CPU, and in the
                    // idle class this batch would wait on them for as long as they run.
                    if Instant::now() > deadline + STARVED {
                        priority.hurry();
                    }
                    rx.try_recv().ok()
                }
                Err(_) => None,
            };
        }
        commit(backend, &mut batch, &mut backlog, stats);
        if !mcp.is_empty() {
            // MCP entries go in the ledger, under a lock other nodes wait on (PostgreSQL's
            // advisory lock): not to be held by a thread any request preempts.
            priority.hurry();
        }
        commit_mcp(backend, &mut mcp, &mut head, &mut backlog, stats);
        publish_head(backend, &mut head);
        if backlog.due() {
            recover(backend, &mut backlog, config.batch_size, stats);
        }
        wal_upkeep(backend, &mut last_checkpoint, stats);
    }
    commit(backend, &mut batch, &mut backlog, stats);
    commit_mcp(backend, &mut mcp, &mut head, &mut backlog, stats);
    last_chance(backend, &mut backlog, &mut mcp, &mut head, &config, stats);
    publish_head(backend, &mut head);
    if let Err(e) = backend.checkpoint() {
        tracing::warn!(error = %e, "final checkpoint failed");
    }
}

/// Writes what the hold has once the store answers again, then replays the held one-off
/// records in order (holding again any the store drops out for meanwhile).
fn recover(
    backend: &mut dyn WriteBackend,
    backlog: &mut Backlog,
    batch_size: usize,
    stats: &WriterStats,
) {
    let Some(ops) = backlog.retry(batch_size, |rows| backend.append_traces(rows), stats) else {
        return;
    };
    for op in ops {
        if backlog.is_down() {
            backlog.hold_op(op, stats);
            continue;
        }
        if let Err(e) = store_one(backend, &op)
            && e.is_unreachable()
        {
            backlog.went_down(&e, stats);
            backlog.hold_op(op, stats);
        }
    }
}

/// At shutdown: one more try to write what is held (and the MCP calls waiting with it); what
/// still can't be written is counted as failed and named in the log.
fn last_chance(
    backend: &mut dyn WriteBackend,
    backlog: &mut Backlog,
    mcp: &mut Vec<McpCallWrite>,
    head: &mut Option<Head>,
    config: &StoreConfig,
    stats: &WriterStats,
) {
    if !backlog.is_down() {
        return;
    }
    recover(backend, backlog, config.batch_size, stats);
    commit_mcp(backend, mcp, head, backlog, stats);
    if backlog.is_down() {
        backlog.give_up(stats);
        if !mcp.is_empty() {
            tracing::error!(
                calls = mcp.len(),
                "mcp call records lost: the store is unreachable"
            );
            mcp.clear();
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use std::time::{Duration, Instant};

    use super::super::Writer;
    use super::super::priority::WRITER_NICE;
    use crate::config::StoreConfig;

    /// `(nice, policy)` of thread `tid` of this process, from `/proc/self/task/TID/stat` (fields
    /// 19 and 41, counted after the parenthesised name).
    fn nice_and_policy(tid: i32) -> (i64, i64) {
        let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat"))
            .unwrap_or_else(|e| panic!("thread {tid}: {e}"));
        let after_name = stat.rsplit_once(") ").map(|(_, rest)| rest).unwrap_or("");
        // After the name, field 3 (state) is index 0: nice (19) is 16, policy (41) is 38.
        let fields: Vec<&str> = after_name.split_whitespace().collect();
        let field = |i: usize| fields.get(i).and_then(|f| f.parse().ok()).unwrap_or(-1);
        (field(16), field(38))
    }

    /// Waits (at most five seconds) until the writer thread runs under `policy`, at nice 5
    /// where it may be idle-class (a thread that may not lower its nice value keeps a higher
    /// one it inherited), and returns what it found last.
    fn wait_for(writer: &Writer, policy: i32) -> (i64, i64) {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let tid = writer.priority.tid();
            let found = if tid > 0 {
                nice_and_policy(tid)
            } else {
                (-1, -1)
            };
            let settled = found.1 == i64::from(policy)
                && (found.0 == i64::from(WRITER_NICE) || !writer.priority.may_idle());
            if settled || Instant::now() > deadline {
                return found;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Whether this process may lower a thread's nice value from 6 to 5, found on a scratch
    /// thread of its own: what the writer needs to leave `SCHED_IDLE`, asked of the kernel
    /// independently of the writer's own probe.
    fn may_lower_nice() -> bool {
        std::thread::spawn(|| {
            // SAFETY: plain integers; `who` 0 is this scratch thread.
            unsafe {
                libc::setpriority(libc::PRIO_PROCESS, 0, WRITER_NICE + 1) == 0
                    && libc::setpriority(libc::PRIO_PROCESS, 0, WRITER_NICE) == 0
            }
        })
        .join()
        .unwrap_or(false)
    }

    #[tokio::test]
    async fn the_writer_gives_the_cpu_up_while_caught_up_and_takes_its_share_back_when_behind() {
        let (dir, path, opened) = crate::store::open_temp_sqlite();
        let config = StoreConfig {
            batch_size: 4,
            ..StoreConfig::default()
        };
        let writer = Writer::start(opened.writes, config).unwrap_or_else(|e| panic!("{e}"));
        let nice = i64::from(WRITER_NICE);
        let (idle, batch) = (i64::from(libc::SCHED_IDLE), i64::from(libc::SCHED_BATCH));
        // The thread settles its class as it starts; its id shows once it has.
        let deadline = Instant::now() + Duration::from_secs(5);
        while writer.priority.tid() == 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(writer.priority.tid() > 0, "the writer thread never settled");
        assert_eq!(
            writer.priority.may_idle(),
            may_lower_nice(),
            "the writer's own probe"
        );
        if !writer.priority.may_idle() {
            // This process may not raise a thread's priority: batch-class throughout.
            // (At nice 5, unless this process runs at a higher one it may not lower.)
            assert_eq!(wait_for(&writer, libc::SCHED_BATCH).1, batch);
            std::mem::forget(dir);
            return;
        }
        // Nothing queued: idle-class, so a worker that wakes takes the CPU from it at once.
        assert_eq!(wait_for(&writer, libc::SCHED_IDLE), (nice, idle));

        // Hold the store's write lock, so the writer's first batch (four rows) waits for it as
        // its transaction begins (busy timeout five seconds) while four more queue behind it: a
        // batch's worth, which the record that makes it brings the writer back for.
        let blocker = rusqlite::Connection::open(&path).unwrap_or_else(|e| panic!("{e}"));
        blocker
            .execute_batch("BEGIN IMMEDIATE")
            .unwrap_or_else(|e| panic!("{e}"));
        for n in 0..8 {
            let record = crate::store::TraceRecord {
                id: format!("trace-{n}"),
                ts_ms: crate::store::now_ms(),
                endpoint: "/v1/chat/completions".into(),
                requested_model: "m".into(),
                request_id: format!("req-{n}"),
                attempts: 1,
                ..Default::default()
            };
            writer.submit_trace(record).await;
        }
        let tid = writer.priority.tid();
        assert_eq!(
            nice_and_policy(tid),
            (nice, batch),
            "behind, yet idle-class"
        );
        blocker
            .execute_batch("ROLLBACK")
            .unwrap_or_else(|e| panic!("{e}"));
        writer.flush().await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(writer.snapshot().written, 8);
        // Caught up again: idle-class.
        assert_eq!(wait_for(&writer, libc::SCHED_IDLE), (nice, idle));
        writer.shutdown().await.unwrap_or_else(|e| panic!("{e}"));
        std::mem::forget(dir);
    }
}
