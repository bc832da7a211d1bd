//! The writer thread's place in the scheduler. Its work can wait a little and a request's cannot,
//! but with the proxy on one core a batch commit that holds the CPU when a request arrives makes
//! that request wait: a worker that has run most of the time is not "owed" the CPU, so the kernel
//! lets the commit run on to its next tick. Measured at concurrency 1 (`wrk -c1`, proxy on one
//! core, the writer under `SCHED_BATCH`): p99 1.4 to 1.7 ms, against 0.42 to 0.54 ms with the
//! writer under `SCHED_IDLE` and 0.34 to 0.87 ms for nginx in the same runs. So the writer runs in
//! one of two classes:
//!
//! - caught up (its queue empty as it goes to sleep): `SCHED_IDLE`, which the kernel preempts the
//!   moment a thread of normal class wakes, so a commit never delays a request;
//! - behind (a batch's worth queued, or somebody waiting on it: an admin change, a flush, upkeep,
//!   shutdown): `SCHED_BATCH` at nice [`WRITER_NICE`], which keeps its share of a busy CPU.
//!   Under `SCHED_IDLE` alone a saturated proxy starves it: at concurrency 64 its queue grew to
//!   56,000 records in eight seconds.
//!
//! Whoever queues a record checks the depth (one atomic load while the writer is idle-class, none
//! otherwise) and moves the writer back itself, so a starved writer never has to run to be rescued.
//! Leaving `SCHED_IDLE` needs the right to raise a priority (`CAP_SYS_NICE`, or an `RLIMIT_NICE`
//! that allows nice 5); a process without it keeps the writer under `SCHED_BATCH` throughout.

use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

/// How much lower than the request path the writer runs while it is behind (a nice value; 0 is
/// the default). Nice 5 still leaves it a share of a CPU the request path saturates (weight 335
/// against 1024 per busy worker), which keeps it ahead of its queue at the load the proxy can
/// serve.
pub(super) const WRITER_NICE: i32 = 5;

#[derive(Debug)]
pub(super) struct WriterPriority {
    /// The writer thread's kernel id; 0 until it has settled (0 would mean "the caller" to the
    /// kernel, so nothing is changed then).
    tid: AtomicI32,
    /// Whether the writer may go idle-class: only once it has found it may come back.
    may_idle: AtomicBool,
    /// Whether it is idle-class now (or about to be).
    idle: AtomicBool,
    /// Queue depth at which the writer counts as behind: a full batch waiting.
    behind_at: usize,
}

impl WriterPriority {
    pub(super) fn new(behind_at: usize) -> WriterPriority {
        WriterPriority {
            tid: AtomicI32::new(0),
            may_idle: AtomicBool::new(false),
            idle: AtomicBool::new(false),
            behind_at: behind_at.max(1),
        }
    }

    /// On the writer thread as it starts: nice [`WRITER_NICE`] under `SCHED_BATCH`, which never
    /// preempts a worker on waking, and a probe of whether it may leave `SCHED_IDLE` later.
    pub(super) fn settle(&self) {
        let Some(tid) = current_tid() else { return };
        if !set_nice(tid, WRITER_NICE) {
            let error = std::io::Error::last_os_error();
            tracing::debug!(%error, "could not lower the writer's nice value; it keeps the process's");
        }
        if !set_policy(tid, Policy::Batch) {
            let error = std::io::Error::last_os_error();
            tracing::debug!(%error, "could not put the writer under SCHED_BATCH; its wake-ups may preempt requests");
            return;
        }
        // Leaving SCHED_IDLE takes the same right as lowering the nice value below the current
        // one: try one step down and back.
        if set_nice(tid, WRITER_NICE - 1) && set_nice(tid, WRITER_NICE) {
            self.may_idle.store(true, Ordering::SeqCst);
        } else {
            tracing::debug!(
                "the writer stays under SCHED_BATCH: this process may not raise a thread's priority"
            );
        }
        // Last: a thread id here means the thread has settled.
        self.tid.store(tid, Ordering::SeqCst);
    }

    /// On the writer thread, with its queue empty: give the CPU to requests entirely.
    pub(super) fn caught_up(&self) {
        if !self.may_idle.load(Ordering::Relaxed) || self.idle.load(Ordering::Relaxed) {
            return;
        }
        // The flag follows the change: a record queued meanwhile sees the writer as batch-class
        // and leaves it; the next one sees it idle-class and brings it back when needed.
        if set_policy(self.tid.load(Ordering::Relaxed), Policy::Idle) {
            self.idle.store(true, Ordering::SeqCst);
        }
    }

    /// After queueing a record: brings the writer back to its share of the CPU once `depth()`
    /// (the records now queued) reaches a batch. Costs one atomic load while it is batch-class.
    #[inline]
    pub(super) fn note_depth(&self, depth: impl FnOnce() -> usize) {
        if self.idle.load(Ordering::Relaxed) && depth() >= self.behind_at {
            self.hurry();
        }
    }

    /// Somebody waits on the writer, or it is behind: back to `SCHED_BATCH` now.
    pub(super) fn hurry(&self) {
        if self.idle.swap(false, Ordering::SeqCst)
            && !set_policy(self.tid.load(Ordering::Relaxed), Policy::Batch)
        {
            // Unreachable once the probe passed, short of a limit lowered at run time: stop
            // going idle-class, since nobody could bring the writer back.
            self.may_idle.store(false, Ordering::SeqCst);
            let error = std::io::Error::last_os_error();
            tracing::warn!(%error, "could not take the writer out of SCHED_IDLE; it stays idle-class until it catches up");
        }
    }

    #[cfg(test)]
    pub(super) fn may_idle(&self) -> bool {
        self.may_idle.load(Ordering::SeqCst)
    }

    #[cfg(test)]
    pub(super) fn tid(&self) -> i32 {
        self.tid.load(Ordering::SeqCst)
    }
}

#[derive(Clone, Copy)]
enum Policy {
    Batch,
    Idle,
}

#[cfg(target_os = "linux")]
fn current_tid() -> Option<i32> {
    // SAFETY: gettid takes no arguments and touches no memory.
    let tid = unsafe { libc::syscall(libc::SYS_gettid) };
    i32::try_from(tid).ok().filter(|&t| t > 0)
}

#[cfg(target_os = "linux")]
fn set_nice(tid: i32, nice: i32) -> bool {
    let Ok(id) = libc::id_t::try_from(tid) else {
        return false;
    };
    // SAFETY: setpriority takes plain integers; Linux applies PRIO_PROCESS to the one thread.
    unsafe { libc::setpriority(libc::PRIO_PROCESS, id, nice) == 0 }
}

/// Sets thread `tid`'s policy, keeping its nice value; false when the kernel refused. A `tid` of
/// 0 (not settled) changes nothing.
#[cfg(target_os = "linux")]
fn set_policy(tid: i32, policy: Policy) -> bool {
    if tid <= 0 {
        return false;
    }
    let policy = match policy {
        Policy::Batch => libc::SCHED_BATCH,
        Policy::Idle => libc::SCHED_IDLE,
    };
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: plain integers and a parameter struct that lives for the call; no memory is shared.
    unsafe { libc::sched_setscheduler(tid, policy, &param) == 0 }
}

#[cfg(not(target_os = "linux"))]
fn current_tid() -> Option<i32> {
    None
}

#[cfg(not(target_os = "linux"))]
fn set_nice(_tid: i32, _nice: i32) -> bool {
    false
}

#[cfg(not(target_os = "linux"))]
fn set_policy(_tid: i32, _policy: Policy) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::WriterPriority;

    #[test]
    fn an_unsettled_priority_changes_nothing() {
        // Not settled: no thread id, so neither call may reach the kernel (a 0 there would
        // change the calling thread, here the test's own).
        let priority = WriterPriority::new(0);
        priority.caught_up();
        priority.note_depth(|| usize::MAX);
        priority.hurry();
        assert!(!priority.may_idle());
        assert!(!priority.idle.load(std::sync::atomic::Ordering::SeqCst));
    }
}
