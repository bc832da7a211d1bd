//! The writer thread itself: [`run`] lowers its priority and drives [`writer_loop`], which
//! takes records from the queue, gathers trace rows into batches and hands each kind of record to
//! `apply.rs`. While the store is out of reach the loop keeps draining the queue into the hold
//! (`hold.rs`) and wakes for its retries; at shutdown it makes one last try before giving up
//! what is held.

use std::sync::atomic::Ordering;

use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;

use super::apply::{
    apply_record, commit, commit_mcp, maintain, note_head, publish_head, store_one, wal_upkeep,
};
use super::hold::Backlog;
use super::{IDLE_FLUSH, WriteOp, WriterStats};
use crate::config::StoreConfig;
use crate::ledger::Head;
use crate::store::mcp::McpCallWrite;
use crate::store::{StoreError, TraceRecord, WriteBackend, now_ms};

pub(super) fn run(
    mut backend: Box<dyn WriteBackend>,
    rx: mpsc::Receiver<WriteOp>,
    config: StoreConfig,
    stats: &WriterStats,
    urgent: &Notify,
) {
    yield_to_requests();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build();
    match runtime {
        Ok(runtime) => runtime.block_on(writer_loop(backend.as_mut(), rx, config, stats, urgent)),
        Err(e) => tracing::error!(error = %e, "writer thread could not start its timer"),
    }
    stats.alive.store(false, Ordering::SeqCst);
}

/// How much lower than the request path the writer runs (a nice value; 0 is the default).
/// Batched commits are work that can wait a millisecond; a request that arrives while one runs
/// cannot, so the scheduler should hand the CPU to the request at once. Nice 5 still leaves the
/// writer about a seventh of a CPU the request path saturates (weight 335 against 1024 per busy
/// worker), which keeps it ahead of its queue at the load the proxy can serve.
const WRITER_NICE: i32 = 5;

/// Lowers this thread's scheduling priority to [`WRITER_NICE`] (Linux sets nice per thread) and
/// puts it under `SCHED_BATCH`: the writer mostly sleeps, so when its batch deadline wakes it the
/// scheduler would otherwise let it preempt a worker halfway through a request; a batch thread
/// never preempts on waking and runs when the worker blocks or its slice ends. It keeps its
/// share of a busy CPU (the policy changes wake-ups, not weight), so it cannot starve.
#[cfg(target_os = "linux")]
fn yield_to_requests() {
    // SAFETY: gettid, setpriority and sched_setscheduler take plain integers and a parameter
    // struct that lives for the call; no memory is shared.
    let niced = unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, WRITER_NICE)
    };
    if niced != 0 {
        let error = std::io::Error::last_os_error();
        tracing::debug!(%error, "could not lower the writer's nice value; it keeps the process's");
    }
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: as above; `param` lives for the call.
    if unsafe { libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) } != 0 {
        let error = std::io::Error::last_os_error();
        tracing::debug!(%error, "could not put the writer under SCHED_BATCH; its wake-ups may preempt requests");
    }
}

#[cfg(not(target_os = "linux"))]
fn yield_to_requests() {}

async fn writer_loop(
    backend: &mut dyn WriteBackend,
    mut rx: mpsc::Receiver<WriteOp>,
    config: StoreConfig,
    stats: &WriterStats,
    urgent: &Notify,
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
            match apply_record(backend, &mut batch, &mut backlog, stats, op) {
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
                    rx.try_recv().ok()
                }
                Err(_) => None,
            };
        }
        commit(backend, &mut batch, &mut backlog, stats);
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
    use super::super::Writer;
    use crate::config::StoreConfig;

    /// `(nice, policy)` of every thread of this process named `stockyard-writer`, from
    /// `/proc/self/task/*/stat` (fields 19 and 41, counted after the parenthesised name).
    fn writer_threads() -> Vec<(i64, i64)> {
        let tasks = std::fs::read_dir("/proc/self/task").unwrap_or_else(|e| panic!("{e}"));
        let mut found = Vec::new();
        for task in tasks.flatten() {
            let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
            // The kernel keeps 15 bytes of a thread's name.
            if comm.trim() != "stockyard-write" {
                continue;
            }
            let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
            let after_name = stat.rsplit_once(") ").map(|(_, rest)| rest).unwrap_or("");
            // After the name, field 3 (state) is index 0: nice (19) is 16, policy (41) is 38.
            let fields: Vec<&str> = after_name.split_whitespace().collect();
            let field = |i: usize| fields.get(i).and_then(|f| f.parse().ok()).unwrap_or(-1);
            found.push((field(16), field(38)));
        }
        found
    }

    #[test]
    fn the_writer_thread_runs_niced_under_sched_batch() {
        let (dir, _, opened) = crate::store::open_temp_sqlite();
        let _writer =
            Writer::start(opened.writes, StoreConfig::default()).unwrap_or_else(|e| panic!("{e}"));
        // The thread sets its own priority as it starts; give it a moment.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let threads = loop {
            let threads = writer_threads();
            let settled = !threads.is_empty()
                && threads.iter().all(|&(nice, policy)| {
                    (nice, policy) == (i64::from(super::WRITER_NICE), i64::from(libc::SCHED_BATCH))
                });
            if settled || std::time::Instant::now() > deadline {
                break threads;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        };
        assert!(!threads.is_empty(), "no writer thread found");
        for (nice, policy) in threads {
            assert_eq!(nice, i64::from(super::WRITER_NICE), "writer's nice value");
            assert_eq!(policy, i64::from(libc::SCHED_BATCH), "writer's policy");
        }
        std::mem::forget(dir);
    }
}
