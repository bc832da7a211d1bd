//! Hot counters: windowed integers on the request path (requests per key per minute, spend per
//! team per day), behind an async trait so several nodes can share them: [`MemoryCounters`] is
//! the single-node implementation, [`LeasedCounters`] the one for nodes sharing a store (leases
//! of capacity from shared rows, `shares.rs`), chosen by the store ([`NodeCounters::of`]).
//!
//! A counter is named by its key *and* its [`Window`], so `("key-1", 1 min)` and
//! `("key-1", 1 day)` are separate counters. Limits use reserve-then-settle: [`HotCounters::reserve`]
//! adds an estimate only if the total stays within the limit, atomically, so a burst of concurrent
//! requests can't all pass before any is charged; [`HotCounters::settle`] swaps the estimate for
//! the real amount (up or down) once it is known, and [`HotCounters::release`] drops it.
//!
//! Time comes from a [`Clock`], so tests move it by hand instead of sleeping.

mod flush;
mod leased;
mod memory;
pub mod shares;
#[cfg(test)]
pub(crate) mod suite;

use std::sync::atomic::{AtomicI64, Ordering};

use async_trait::async_trait;
use thiserror::Error;

pub use leased::{
    FLUSH_EVERY_MS, IDLE_RETURN_MS, LEASE_SLICE_OF, LEASE_TTL_MS, LeasedCounters, NodeCounters,
};
pub use memory::MemoryCounters;
pub use shares::{CounterStore, LocalShares};

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
    /// A UTC calendar period, resetting at its start like a fixed window: months have their own
    /// lengths and weeks start on Monday, which no multiple of a length since the epoch (a
    /// Thursday) gives.
    Calendar(CalendarUnit),
}

/// The calendar periods a [`Window::Calendar`] counts over, in UTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CalendarUnit {
    Day,
    /// Monday 00:00 UTC to the next Monday.
    Week,
    Month,
    /// Never resets.
    Total,
}

const DAY_MS: i64 = 86_400_000;

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

    /// The length of the bucket holding `now_ms` (a calendar month's own length; `i64::MAX`
    /// for a total).
    pub fn length_ms_at(self, now_ms: i64) -> i64 {
        let start = self.bucket_start(now_ms);
        self.bucket_end(start).saturating_sub(start).max(1)
    }

    /// Start of the bucket holding `now_ms`.
    pub fn bucket_start(self, now_ms: i64) -> i64 {
        match self {
            Window::Fixed { length_ms } | Window::Sliding { length_ms } => {
                now_ms - now_ms.rem_euclid(length_ms.max(1))
            }
            Window::Calendar(unit) => calendar::start(unit, now_ms),
        }
    }

    /// End (exclusive) of the bucket starting at `start_ms`: the next bucket's start.
    pub fn bucket_end(self, start_ms: i64) -> i64 {
        match self {
            Window::Fixed { length_ms } | Window::Sliding { length_ms } => {
                start_ms.saturating_add(length_ms.max(1))
            }
            Window::Calendar(unit) => calendar::end(unit, start_ms),
        }
    }

    /// Start of the bucket before the one starting at `start_ms`.
    pub fn previous_start(self, start_ms: i64) -> i64 {
        match self {
            Window::Fixed { length_ms } | Window::Sliding { length_ms } => {
                start_ms.saturating_sub(length_ms.max(1))
            }
            Window::Calendar(CalendarUnit::Total) => i64::MIN,
            Window::Calendar(unit) => calendar::start(unit, start_ms - 1),
        }
    }

    /// When the bucket holding `now_ms` ends: when a fixed or calendar count starts again.
    pub fn resets_at(self, now_ms: i64) -> i64 {
        self.bucket_end(self.bucket_start(now_ms))
    }
}

/// UTC calendar arithmetic on milliseconds since the epoch, in integers (civil-from-days after
/// Howard Hinnant's algorithms, exact over the proleptic Gregorian calendar).
pub mod calendar {
    use super::{CalendarUnit, DAY_MS};

    pub fn start(unit: CalendarUnit, now_ms: i64) -> i64 {
        let day = now_ms.div_euclid(DAY_MS);
        match unit {
            CalendarUnit::Day => day * DAY_MS,
            // 1970-01-01 was a Thursday: Monday is 3 days before it.
            CalendarUnit::Week => (day - (day + 3).rem_euclid(7)) * DAY_MS,
            CalendarUnit::Month => {
                let (y, m, _) = civil_from_days(day);
                days_from_civil(y, m, 1) * DAY_MS
            }
            CalendarUnit::Total => 0,
        }
    }

    pub fn end(unit: CalendarUnit, start_ms: i64) -> i64 {
        match unit {
            CalendarUnit::Day => start_ms + DAY_MS,
            CalendarUnit::Week => start_ms + 7 * DAY_MS,
            CalendarUnit::Month => {
                let (y, m, _) = civil_from_days(start_ms.div_euclid(DAY_MS));
                let (y, m) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
                days_from_civil(y, m, 1) * DAY_MS
            }
            CalendarUnit::Total => i64::MAX,
        }
    }

    /// `(year, month 1..=12, day 1..=31)` of the day `z` days after 1970-01-01.
    pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
        let z = z + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let y = yoe + era * 400;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        (if m <= 2 { y + 1 } else { y }, m, d)
    }

    /// Days from 1970-01-01 to the given date.
    pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
        let y = if m <= 2 { y - 1 } else { y };
        let era = y.div_euclid(400);
        let yoe = y.rem_euclid(400);
        let m = i64::from(m);
        let mp = if m > 2 { m - 3 } else { m + 9 };
        let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146_097 + doe - 719_468
    }

    /// `YYYY-MM-DDTHH:MM:SSZ` for messages.
    pub fn rfc3339(ms: i64) -> String {
        let day = ms.div_euclid(DAY_MS);
        let (y, m, d) = civil_from_days(day);
        let secs = ms.rem_euclid(DAY_MS) / 1000;
        format!(
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
            secs / 3600,
            secs / 60 % 60,
            secs % 60
        )
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn periods_start_on_utc_calendar_boundaries() {
            // Saturday 2026-12-05, 13:00 UTC.
            let now = days_from_civil(2026, 12, 5) * DAY_MS + 13 * 3_600_000 + 7;
            assert_eq!(
                rfc3339(start(CalendarUnit::Day, now)),
                "2026-12-05T00:00:00Z"
            );
            assert_eq!(
                rfc3339(start(CalendarUnit::Week, now)),
                "2026-11-30T00:00:00Z"
            );
            assert_eq!(
                rfc3339(start(CalendarUnit::Month, now)),
                "2026-12-01T00:00:00Z"
            );
            let month = start(CalendarUnit::Month, now);
            assert_eq!(
                rfc3339(end(CalendarUnit::Month, month)),
                "2027-01-01T00:00:00Z"
            );
            let feb = days_from_civil(2028, 2, 10) * DAY_MS;
            let feb_start = start(CalendarUnit::Month, feb);
            assert_eq!(end(CalendarUnit::Month, feb_start) - feb_start, 29 * DAY_MS);
            // A Monday is its own week's start.
            let monday = days_from_civil(2026, 11, 30) * DAY_MS;
            assert_eq!(start(CalendarUnit::Week, monday + 5), monday);
            assert_eq!(start(CalendarUnit::Week, monday - 1), monday - 7 * DAY_MS);
            assert_eq!(end(CalendarUnit::Total, 0), i64::MAX);
        }

        #[test]
        fn civil_dates_round_trip() {
            for day in (-800_000..800_000).step_by(997) {
                let (y, m, d) = civil_from_days(day);
                assert_eq!(days_from_civil(y, m, d), day);
            }
        }
    }
}

/// A counter's name from its parts joined by `:` (`spend:key:k_1:day`). Built by hand because
/// `format!` costs several times as much, and the budget and rate-limit modules name a dozen
/// counters on every request.
pub fn counter_key(parts: &[&str]) -> String {
    let len = parts.iter().map(|p| p.len() + 1).sum::<usize>();
    let mut key = String::with_capacity(len);
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            key.push(':');
        }
        key.push_str(part);
    }
    key
}

/// An amount held against a limit until [`HotCounters::settle`] or [`HotCounters::release`].
/// Dropping it without either leaves the estimate counted until its window expires. `Clone` so
/// it can sit in a request's slots; settling a clone as well would count the difference twice.
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use = "settle or release a reservation, or its estimate stays counted for the window"]
pub struct Reservation {
    pub key: String,
    pub window: Window,
    pub amount: i64,
    /// The bucket it was counted in: a settle after that bucket has left the window changes
    /// nothing, since the amount no longer counts anyway.
    pub bucket_start_ms: i64,
    /// The counter's value in its window right after this reservation (what is left under the
    /// limit is `limit - value`).
    pub value: i64,
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
    /// Adds a starting count read from elsewhere at start-up (spend from the rollups). Shared
    /// counters add it only if no node counted the bucket yet, so it is counted once.
    async fn seed(&self, key: &str, value: i64, window: Window) -> Result<(), StoreError> {
        self.add(key, value, window).await.map(|_| ())
    }
    /// Whether other nodes share these counts (they then persist themselves).
    fn shared(&self) -> bool {
        false
    }
    /// The counts themselves when they live in this process's memory: the `quick_*` calls
    /// below then answer without the boxed future every call through this trait costs.
    fn in_memory(&self) -> Option<&MemoryCounters> {
        None
    }
}

/// The trait's calls for the request path: answered at once by in-memory counts, through the
/// trait otherwise. A dozen counts per governed request made a boxed future each before.
impl dyn HotCounters {
    pub async fn quick_add(
        &self,
        key: &str,
        delta: i64,
        window: Window,
    ) -> Result<i64, StoreError> {
        match self.in_memory() {
            Some(memory) => Ok(memory.add_now(key, delta, window)),
            None => self.add(key, delta, window).await,
        }
    }

    pub async fn quick_read(&self, key: &str, window: Window) -> Result<i64, StoreError> {
        match self.in_memory() {
            Some(memory) => Ok(memory.read_now(key, window)),
            None => self.read(key, window).await,
        }
    }

    pub async fn quick_reserve(
        &self,
        key: &str,
        amount: i64,
        limit: i64,
        window: Window,
    ) -> Result<Reservation, ReserveError> {
        match self.in_memory() {
            Some(memory) => memory.reserve_now(key, amount, limit, window),
            None => self.reserve(key, amount, limit, window).await,
        }
    }

    pub async fn quick_settle(
        &self,
        reservation: Reservation,
        actual: i64,
    ) -> Result<i64, StoreError> {
        match self.in_memory() {
            Some(memory) => Ok(memory.settle_now(&reservation, actual)),
            None => self.settle(reservation, actual).await,
        }
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
