//! Counts requests that have not finished their last hook, so shutdown can wait for them (and for
//! their trace records) before it stops the writer.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

#[derive(Clone, Default)]
pub struct Inflight {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    count: AtomicUsize,
    idle: Notify,
}

/// Held by a request until its `on_finish` hooks have run.
pub struct InflightGuard {
    inner: Arc<Inner>,
}

impl Inflight {
    pub fn enter(&self) -> InflightGuard {
        self.inner.count.fetch_add(1, Ordering::SeqCst);
        InflightGuard {
            inner: self.inner.clone(),
        }
    }

    /// Like [`Inflight::enter`], unless `max` requests are in flight already.
    pub fn try_enter(&self, max: usize) -> Option<InflightGuard> {
        self.inner
            .count
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()?;
        Some(InflightGuard {
            inner: self.inner.clone(),
        })
    }

    pub fn count(&self) -> usize {
        self.inner.count.load(Ordering::SeqCst)
    }

    /// Waits until no request is in flight, at most `bound`; returns how many were left.
    pub async fn wait_idle(&self, bound: Duration) -> usize {
        let deadline = tokio::time::Instant::now() + bound;
        loop {
            let notified = self.inner.idle.notified();
            if self.count() == 0 {
                return 0;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.count();
            }
        }
    }
}

impl Drop for InflightGuard {
    fn drop(&mut self) {
        if self.inner.count.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.inner.idle.notify_waiters();
        }
    }
}
