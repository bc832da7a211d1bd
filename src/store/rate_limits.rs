//! Rate-limit counters at rest: what the `rate_limits` module counted in each fixed window, so a
//! restart inside a window carries on from the count instead of from zero.
//!
//! The module counts in memory and hands the changes since its last hand-over to the writer in
//! batches (deltas, so the writer adds them up whoever sent them); at start-up it reads the counts
//! of windows not yet over. Rows of windows that ended are pruned as new counts arrive.

use serde::Serialize;

use super::StoreError;

/// The count of one counter in one fixed window (or a change to it, on the way in).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RateCount {
    /// The counter's name (`rpm:key:...`, `tpm:team:...`).
    pub counter: String,
    pub window_start_ms: i64,
    pub window_ms: i64,
    pub value: i64,
}

/// Rate-limit reads. Methods block; async callers use `spawn_blocking`.
pub trait RateLimitStore: Send + Sync {
    /// Every count whose window is still open at `now_ms`.
    fn rate_counts(&self, now_ms: i64) -> Result<Vec<RateCount>, StoreError>;
}

/// Called only by the writer thread.
pub trait RateLimitWrites {
    /// Adds each delta to its window's count (a new window starts at the delta), and drops the
    /// rows of windows that ended before `now_ms`.
    fn add_rate_counts(&mut self, deltas: &[RateCount], now_ms: i64) -> Result<(), StoreError>;
}
