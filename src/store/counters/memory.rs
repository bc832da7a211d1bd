//! `MemoryCounters`: the single-node [`HotCounters`], a map of two-bucket counters under one
//! lock. The lock is held only for arithmetic (never across an `.await`), which is what makes
//! `reserve` atomic: the check and the add happen under it together.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::{Clock, Exceeded, HotCounters, Reservation, ReserveError, SystemClock, Window};
use crate::store::StoreError;

/// Operations between sweeps of expired counters: often enough to bound memory by the keys
/// active in two windows, rarely enough that a sweep costs nothing per request.
const SWEEP_EVERY: u64 = 4096;

pub struct MemoryCounters {
    clock: Arc<dyn Clock>,
    inner: Mutex<Inner>,
}

/// foldhash rather than SipHash: keys are hashed on every request, and foldhash's per-process
/// random seed still keeps a client from choosing colliding session ids.
type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

#[derive(Default)]
struct Inner {
    /// By window first: a lookup borrows the key, so a counter that exists costs no allocation.
    counters: FastMap<Window, FastMap<String, Buckets>>,
    ops: u64,
}

/// The current fixed bucket and the one before it.
#[derive(Clone, Copy, Debug, Default)]
struct Buckets {
    start_ms: i64,
    current: i64,
    previous: i64,
}

impl Buckets {
    /// Moves the buckets forward to the one holding `now`.
    fn roll(&mut self, window: Window, now: i64) {
        let start = window.bucket_start(now);
        if start == self.start_ms {
            return;
        }
        self.previous = if start == window.bucket_end(self.start_ms) {
            self.current
        } else {
            0
        };
        self.current = 0;
        self.start_ms = start;
    }

    fn value(&self, window: Window, now: i64) -> i64 {
        match window {
            Window::Fixed { .. } | Window::Calendar(_) => self.current,
            Window::Sliding { length_ms } => {
                let length = i128::from(length_ms.max(1));
                let remaining = length - i128::from(now - self.start_ms);
                let weighted = i128::from(self.previous) * remaining;
                // Rounded up: an estimate that errs toward "used" never lets a limit overshoot.
                let part = if weighted > 0 {
                    (weighted + length - 1) / length
                } else {
                    weighted / length
                };
                self.current.saturating_add(part as i64)
            }
        }
    }

    fn expired(&self, window: Window, now: i64) -> bool {
        now >= window.bucket_end(window.bucket_end(self.start_ms))
    }
}

impl Default for MemoryCounters {
    fn default() -> Self {
        MemoryCounters::with_clock(Arc::new(SystemClock))
    }
}

impl MemoryCounters {
    pub fn with_clock(clock: Arc<dyn Clock>) -> MemoryCounters {
        MemoryCounters {
            clock,
            inner: Mutex::default(),
        }
    }

    /// Runs `f` on the rolled buckets of `(key, window)` under the lock.
    fn with<T>(&self, key: &str, window: Window, f: impl FnOnce(&mut Buckets, i64) -> T) -> T {
        let now = self.clock.now_ms();
        // Every change below is plain integer arithmetic that can't panic halfway, so a
        // poisoned lock still guards whole values.
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.ops += 1;
        if inner.ops.is_multiple_of(SWEEP_EVERY) {
            for (w, counters) in inner.counters.iter_mut() {
                counters.retain(|_, b| !b.expired(*w, now));
            }
            inner.counters.retain(|_, counters| !counters.is_empty());
        }
        let counters = inner.counters.entry(window).or_default();
        // One lookup for a counter that exists (every request after a key's first).
        if let Some(buckets) = counters.get_mut(key) {
            buckets.roll(window, now);
            return f(buckets, now);
        }
        let buckets = counters.entry(key.to_string()).or_insert(Buckets {
            start_ms: window.bucket_start(now),
            ..Buckets::default()
        });
        f(buckets, now)
    }

    /// Number of counters held (expired ones go at the next sweep).
    pub fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .counters
            .values()
            .map(FastMap::len)
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The counts answered at once, without a future: the request path calls these through
/// [`HotCounters::in_memory`], so a single node pays no boxed future per count.
impl MemoryCounters {
    pub fn add_now(&self, key: &str, delta: i64, window: Window) -> i64 {
        self.with(key, window, |b, now| {
            b.current = b.current.saturating_add(delta);
            b.value(window, now)
        })
    }

    pub fn read_now(&self, key: &str, window: Window) -> i64 {
        self.with(key, window, |b, now| b.value(window, now))
    }

    pub fn reserve_now(
        &self,
        key: &str,
        amount: i64,
        limit: i64,
        window: Window,
    ) -> Result<Reservation, ReserveError> {
        let outcome = self.with(key, window, |b, now| {
            let current = b.value(window, now);
            if current.saturating_add(amount) > limit {
                return Err(current);
            }
            b.current = b.current.saturating_add(amount);
            Ok((b.start_ms, current.saturating_add(amount)))
        });
        match outcome {
            Ok((bucket_start_ms, value)) => Ok(Reservation {
                key: key.to_string(),
                window,
                amount,
                bucket_start_ms,
                value,
            }),
            Err(current) => Err(ReserveError::Exceeded(Exceeded {
                key: key.to_string(),
                current,
                amount,
                limit,
            })),
        }
    }

    pub fn settle_now(&self, reservation: &Reservation, actual: i64) -> i64 {
        let window = reservation.window;
        let diff = actual.saturating_sub(reservation.amount);
        self.with(&reservation.key, window, |b, now| {
            if reservation.bucket_start_ms == b.start_ms {
                b.current = b.current.saturating_add(diff);
            } else if reservation.bucket_start_ms == window.previous_start(b.start_ms) {
                b.previous = b.previous.saturating_add(diff);
            }
            b.value(window, now)
        })
    }
}

#[async_trait]
impl HotCounters for MemoryCounters {
    async fn add(&self, key: &str, delta: i64, window: Window) -> Result<i64, StoreError> {
        Ok(self.add_now(key, delta, window))
    }

    async fn read(&self, key: &str, window: Window) -> Result<i64, StoreError> {
        Ok(self.read_now(key, window))
    }

    async fn reserve(
        &self,
        key: &str,
        amount: i64,
        limit: i64,
        window: Window,
    ) -> Result<Reservation, ReserveError> {
        self.reserve_now(key, amount, limit, window)
    }

    async fn settle(&self, reservation: Reservation, actual: i64) -> Result<i64, StoreError> {
        Ok(self.settle_now(&reservation, actual))
    }

    fn in_memory(&self) -> Option<&MemoryCounters> {
        Some(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::counters::ManualClock;

    crate::hot_counters_suite!(
        memory,
        |clock: Arc<ManualClock>| MemoryCounters::with_clock(clock)
    );

    #[tokio::test]
    async fn expired_counters_are_swept() {
        let clock = Arc::new(ManualClock::at(0));
        let counters = MemoryCounters::with_clock(clock.clone());
        let window = Window::fixed_ms(10);
        for i in 0..SWEEP_EVERY - 1 {
            let _ = counters.add(&format!("k{i}"), 1, window).await;
        }
        assert_eq!(counters.len() as u64, SWEEP_EVERY - 1);
        clock.advance(20);
        let _ = counters.read("fresh", window).await;
        assert_eq!(counters.len(), 1);
    }
}
