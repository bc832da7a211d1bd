//! The writer thread's place in the scheduler. Its work can wait a little and a request's cannot,
//! but with the proxy on one core a batch commit that holds the CPU when a request arrives makes
//! that request wait: a worker that has run most of the time is not "owed" the CPU, so the kernel
//! lets the commit run on to its next tick. Measured at concurrency 1 (`wrk -c1`, proxy on one
//! core, the writer under `SCHED_BATCH`): p99 1.4 to 1.7 ms, against 0.42 to 0.54 ms with the
//! writer under `SCHED_IDLE` and 0.34 to 0.87 ms for nginx in the same runs. So the writer runs in
//! one of two classes:
//!
//! - caught up (its queue empty and nothing held as it goes to sleep): `SCHED_IDLE`, which the
//!   kernel preempts the moment a thread of normal class wakes;
//! - behind: `SCHED_BATCH` at nice [`WRITER_NICE`], which keeps its share of a busy CPU. Under
//!   `SCHED_IDLE` alone a saturated proxy starves it: at concurrency 64 its queue grew to 56,000
//!   records in eight seconds.
//!
//! It counts as behind once a batch's worth is queued (or half the queue, if that is less) or a
//! queued record has waited two batch intervals: whoever queues checks, with one atomic load
//! while the writer is batch-class and a clock read while it is idle-class, so a starved writer
//! is brought back by the next record rather than by itself. It is also brought back when a
//! record finds the queue full, whenever somebody is about to wait on it (an admin change, a
//! flush, upkeep, shutdown: before queueing and again after, whatever the flag says), when it
//! takes one of those from its queue, holds records for an unreachable store or is about to take
//! the ledger's lock for MCP entries, and when it wakes well past its batch deadline. Going
//! idle-class, it looks at its queue once more after the change and comes back if anything
//! arrived meanwhile. Leaving `SCHED_IDLE` needs the right to lower a nice value
//! (`CAP_SYS_NICE`, or an `RLIMIT_NICE` of 15 or more for nice 5): the writer tries exactly that
//! once as it starts, and without it stays under `SCHED_BATCH`.

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How much lower than the request path the writer runs while it is behind (a nice value; 0 is
/// the default). Nice 5 still leaves it a share of a CPU the request path saturates (weight 335
/// against 1024 per busy worker), which keeps it ahead of its queue at the load the proxy can
/// serve.
pub(super) const WRITER_NICE: i32 = 5;

#[derive(Debug)]
pub(super) struct WriterPriority {
    /// The writer thread's kernel id; 0 until it has settled and after it stopped (0 would mean
    /// "the caller" to the kernel, so nothing is changed then).
    tid: AtomicI32,
    /// Whether the writer may go idle-class: only once it has found it may come back, and no
    /// longer once coming back failed.
    may_idle: AtomicBool,
    /// Whether it is idle-class now (or about to be).
    idle: AtomicBool,
    /// Counts the changes back to `SCHED_BATCH`, and the count when the writer last went
    /// idle-class: a change that raced its own leaves the flag set on a batch-class thread, and
    /// a new count tells the writer to go idle-class again rather than trust the flag.
    batch_changes: AtomicU64,
    idle_after: AtomicU64,
    /// Queue depth at which the writer counts as behind: a full batch waiting (or half the
    /// queue, if that is less).
    behind_at: usize,
    /// When the queue last went from empty to not (ms since `epoch`), noted while the writer is
    /// idle-class, and how long a record may wait before the writer counts as behind. A
    /// monotonic clock: a wall-clock step must not fire or hold back the rescue.
    epoch: Instant,
    backlog_since_ms: AtomicI64,
    stale_after_ms: i64,
}

impl WriterPriority {
    pub(super) fn new(
        batch_size: usize,
        queue_capacity: usize,
        batch_interval: Duration,
    ) -> WriterPriority {
        let interval_ms = i64::try_from(batch_interval.as_millis()).unwrap_or(i64::MAX / 4);
        WriterPriority {
            tid: AtomicI32::new(0),
            may_idle: AtomicBool::new(false),
            idle: AtomicBool::new(false),
            batch_changes: AtomicU64::new(0),
            idle_after: AtomicU64::new(0),
            behind_at: batch_size.min(queue_capacity / 2).max(1),
            epoch: Instant::now(),
            backlog_since_ms: AtomicI64::new(0),
            stale_after_ms: interval_ms.saturating_mul(2),
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
        // Leaving SCHED_IDLE at nice 5 takes the right to lower a nice value to 5 (the kernel's
        // `can_nice`): one step up, always allowed, and back down is exactly that.
        if set_nice(tid, WRITER_NICE + 1) && set_nice(tid, WRITER_NICE) {
            self.may_idle.store(true, Ordering::SeqCst);
        } else {
            tracing::debug!(
                "the writer stays under SCHED_BATCH (at nice 6 if it could not come back to 5): \
                 this process may not lower a thread's nice value"
            );
        }
        // Last: a thread id here means the thread has settled.
        self.tid.store(tid, Ordering::SeqCst);
    }

    /// On the writer thread as it stops (a drop guard, so a panic counts): later calls change
    /// nothing.
    pub(super) fn stopped(&self) {
        self.tid.store(0, Ordering::SeqCst);
    }

    /// On the writer thread, with its queue empty and nothing held: give the CPU to requests
    /// entirely. `still_empty` looks at the queue again once the change is made.
    pub(super) fn caught_up(&self, still_empty: impl Fn() -> bool) {
        if !self.may_idle.load(Ordering::Relaxed) {
            return;
        }
        let changes = self.batch_changes.load(Ordering::SeqCst);
        if self.idle.load(Ordering::SeqCst) && self.idle_after.load(Ordering::Relaxed) == changes {
            return;
        }
        // The flag goes first, so a record queued from here on sees an idle-class writer and
        // brings it back when needed.
        self.idle.store(true, Ordering::SeqCst);
        if !set_policy(self.tid.load(Ordering::Relaxed), Policy::Idle) {
            self.idle.store(false, Ordering::SeqCst);
            return;
        }
        self.idle_after.store(changes, Ordering::Relaxed);
        // Undo at once, while this thread still runs (an idle-class thread is preempted at the
        // next wake-up), if a change back raced this one or something was queued meanwhile that
        // `note_depth` may have passed over.
        if !self.idle.load(Ordering::SeqCst) || !still_empty() {
            self.idle.store(false, Ordering::SeqCst);
            self.to_batch();
        }
    }

    /// After queueing a record: brings the writer back to its share of the CPU once it is behind
    /// (`depth()` is the records now queued). One atomic load while it is batch-class.
    #[inline]
    pub(super) fn note_depth(&self, depth: impl FnOnce() -> usize) {
        if !self.idle.load(Ordering::Relaxed) {
            return;
        }
        let depth = depth();
        let now = i64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(i64::MAX);
        if depth <= 1 {
            // This record found the queue empty: its wait starts now.
            self.backlog_since_ms.store(now, Ordering::Relaxed);
        }
        let waited = now.saturating_sub(self.backlog_since_ms.load(Ordering::Relaxed));
        if depth >= self.behind_at || waited > self.stale_after_ms {
            self.hurry();
        }
    }

    /// The writer is behind, or is taking a lock others wait on: back to `SCHED_BATCH` if it is
    /// idle-class. Writes nothing shared while it is not.
    pub(super) fn hurry(&self) {
        if self.may_idle.load(Ordering::Relaxed)
            && self.idle.load(Ordering::Relaxed)
            && self.idle.swap(false, Ordering::SeqCst)
        {
            self.to_batch();
        }
    }

    /// Somebody is about to wait on the writer (called before queueing and again after): back to
    /// `SCHED_BATCH` whatever the flag says, so no interleaving with [`caught_up`](Self::caught_up)
    /// can leave them waiting on an idle-class thread. Rare (admin changes, flushes, upkeep,
    /// shutdown), so the extra system call costs nothing that matters. A record waiting for room
    /// in a full queue uses [`hurry`](Self::hurry) instead: under overload that is every request,
    /// and the writer cannot go idle-class with its queue full.
    pub(super) fn hurry_for_waiter(&self) {
        if self.may_idle.load(Ordering::Relaxed) {
            self.idle.store(false, Ordering::SeqCst);
            self.to_batch();
        }
    }

    fn to_batch(&self) {
        let tid = self.tid.load(Ordering::Relaxed);
        if tid <= 0 {
            return;
        }
        if set_policy(tid, Policy::Batch) {
            self.batch_changes.fetch_add(1, Ordering::SeqCst);
        } else {
            // The probe said this was allowed: a limit lowered since, or a thread that exited
            // meanwhile. Nothing can bring it back, so stop trying and stop going idle-class.
            self.may_idle.store(false, Ordering::SeqCst);
            let error = std::io::Error::last_os_error();
            tracing::warn!(%error, "could not take the writer out of SCHED_IDLE: it now runs only on a CPU nothing else wants");
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
    use std::sync::atomic::Ordering;
    use std::time::Duration;

    use super::WriterPriority;

    #[test]
    fn an_unsettled_priority_changes_nothing() {
        // Not settled: no thread id, and not allowed to go idle-class, so no call may reach the
        // kernel (a 0 there would change the calling thread, here the test's own).
        let priority = WriterPriority::new(512, 65_536, Duration::from_millis(50));
        priority.caught_up(|| true);
        priority.note_depth(|| usize::MAX);
        priority.hurry();
        priority.hurry_for_waiter();
        assert!(!priority.may_idle());
        assert!(!priority.idle.load(Ordering::SeqCst));
    }

    #[test]
    fn behind_means_a_batch_or_half_the_queue_and_two_batch_intervals() {
        let priority = WriterPriority::new(512, 65_536, Duration::from_millis(50));
        assert_eq!((priority.behind_at, priority.stale_after_ms), (512, 100));
        // A queue smaller than a batch could never hold one: half of it counts instead.
        let small = WriterPriority::new(512, 100, Duration::from_millis(5));
        assert_eq!((small.behind_at, small.stale_after_ms), (50, 10));
        assert_eq!(WriterPriority::new(0, 0, Duration::ZERO).behind_at, 1);
    }
}
