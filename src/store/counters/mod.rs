//! Hot counters: windowed integers on the request path (requests per key per minute, spend per
//! team per day), behind an async trait so several nodes can later share them through a common
//! backend; [`MemoryCounters`] is the single-node implementation.
//!
//! A counter is named by its key *and* its [`Window`], so `("key-1", 1 min)` and
//! `("key-1", 1 day)` are separate counters. Limits use reserve-then-settle: [`HotCounters::reserve`]
//! adds an estimate only if the total stays within the limit, atomically, so a burst of concurrent
//! requests can't all pass before any is charged; [`HotCounters::settle`] swaps the estimate for
//! the real amount (up or down) once it is known, and [`HotCounters::release`] drops it.
//!
//! Time comes from a [`Clock`], so tests move it by hand instead of sleeping.

mod memory;
#[cfg(test)]
pub(crate) mod suite;

use std::sync::atomic::{AtomicI64, Ordering};

use async_trait::async_trait;
use thiserror::Error;

pub use memory::MemoryCounters;

use super::StoreError;

/// How long a count lasts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Window {
    /// Resets at every multiple of `length_ms` since the epoch (calendar-aligned minutes, days).
    Fixed { length_ms: i64 },
    /// The last `length_ms`, estimated from two fixed buckets: all of the current one plus the
    /// part of the previous one still inside the window, rounded up (so a limit errs on refusing).
    /// Two integers per counter instead of a log of every event; the estimate assumes the
    /// previous bucket's events were spread evenly.
    Sliding { length_ms: i64 },
}

impl Window {
    pub fn fixed_ms(length_ms: i64) -> Window {
        Window::Fixed {
            length_ms: length_ms.max(1),
        }
    }

    pub fn sliding_ms(length_ms: i64) -> Window {
        Window::Sliding {
            length_ms: length_ms.max(1),
        }
    }

    pub fn length_ms(self) -> i64 {
        match self {
            Window::Fixed { length_ms } | Window::Sliding { length_ms } => length_ms.max(1),
        }
    }

    /// Start of the fixed bucket holding `now_ms`.
    pub fn bucket_start(self, now_ms: i64) -> i64 {
        now_ms - now_ms.rem_euclid(self.length_ms())
    }
}

/// An amount held against a limit until [`HotCounters::settle`] or [`HotCounters::release`].
/// Dropping it without either leaves the estimate counted until its window expires.
#[derive(Debug, PartialEq, Eq)]
#[must_use = "settle or release a reservation, or its estimate stays counted for the window"]
pub struct Reservation {
    pub key: String,
    pub window: Window,
    pub amount: i64,
    /// The bucket it was counted in: a settle after that bucket has left the window changes
    /// nothing, since the amount no longer counts anyway.
    pub bucket_start_ms: i64,
}

/// A reservation refused: it would have taken the counter past its limit.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[error("{key}: {current} used + {amount} asked exceeds the limit {limit}")]
pub struct Exceeded {
    pub key: String,
    pub current: i64,
    pub amount: i64,
    pub limit: i64,
}

#[derive(Debug, Error)]
pub enum ReserveError {
    #[error(transparent)]
    Exceeded(#[from] Exceeded),
    /// A shared backend that could not answer; the in-memory one never returns it.
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[async_trait]
pub trait HotCounters: Send + Sync {
    /// Adds `delta` (may be negative) and returns the counter's value in its window.
    async fn add(&self, key: &str, delta: i64, window: Window) -> Result<i64, StoreError>;
    /// The counter's value in its window now (0 for a key never counted or expired).
    async fn read(&self, key: &str, window: Window) -> Result<i64, StoreError>;
    /// Adds `amount` only if the value then stays at or under `limit`, as one atomic step.
    async fn reserve(
        &self,
        key: &str,
        amount: i64,
        limit: i64,
        window: Window,
    ) -> Result<Reservation, ReserveError>;
    /// Replaces the reserved amount by `actual` and returns the counter's value. Never refused:
    /// the work is done, so the usage is real even when it lands over the limit.
    async fn settle(&self, reservation: Reservation, actual: i64) -> Result<i64, StoreError>;
    /// Gives the reserved amount back (the request never ran).
    async fn release(&self, reservation: Reservation) -> Result<i64, StoreError> {
        self.settle(reservation, 0).await
    }
}

/// Milliseconds since the epoch, from wherever the counters get their time.
pub trait Clock: Send + Sync {
    fn now_ms(&self) -> i64;
}

/// The system's wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        super::now_ms()
    }
}

/// A clock moved by hand: tests of window expiry set it instead of sleeping.
#[derive(Debug, Default)]
pub struct ManualClock {
    now_ms: AtomicI64,
}

impl ManualClock {
    pub fn at(now_ms: i64) -> ManualClock {
        ManualClock {
            now_ms: AtomicI64::new(now_ms),
        }
    }

    pub fn set(&self, now_ms: i64) {
        self.now_ms.store(now_ms, Ordering::SeqCst);
    }

    pub fn advance(&self, by_ms: i64) {
        self.now_ms.fetch_add(by_ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.now_ms.load(Ordering::SeqCst)
    }
}
