//! `RateBook`: request and token counts per fixed window in hot counters, shared by every chain
//! the proxy builds, and their way to and from the store.
//!
//! Every change to a count (a reservation, a settle, a release) is also noted as a delta of its
//! window; at most every `persist_interval_ms` (checked as requests pass, and at shutdown) the
//! deltas go to the writer as one batch, which adds them to the stored counts. At start-up the
//! counts of windows still open are read once (when the module is first built) and added to the
//! counters by the first request, so a restart inside a window carries on from the count.
//!
//! On a store shared between nodes the counters are the node's leased ones (`store::counters`):
//! their shared rows are the count every node sees and what outlives a restart, so none of the
//! above applies (nothing is seeded, nothing handed to the writer).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use futures_util::FutureExt;

use crate::store::counters::LeasedCounters;
use crate::store::writer::Writer;
use crate::store::{
    Clock, HotCounters, MemoryCounters, RateCount, Reservation, ReserveError, Store, StoreError,
    Window,
};

/// A change to one counter in one window: (window start, window length, delta).
type PendingDelta = (i64, i64, i64);

pub struct RateBook {
    counters: Arc<dyn HotCounters>,
    /// Whether the counters are shared between nodes (and so keep and persist themselves).
    shared: bool,
    leased: Option<Arc<LeasedCounters>>,
    clock: Arc<dyn Clock>,
    writer: Arc<Writer>,
    /// Changes not yet handed to the writer: counter -> (window start, window length, delta)
    /// per window it changed in (rarely more than one).
    pending: Mutex<HashMap<String, Vec<PendingDelta>, foldhash::fast::RandomState>>,
    last_persist_ms: AtomicI64,
    /// Counts of open windows read at start-up, added by the first request.
    seed: Mutex<Option<Vec<RateCount>>>,
    seed_pending: AtomicBool,
}

impl RateBook {
    pub fn new(writer: Arc<Writer>, clock: Arc<dyn Clock>) -> RateBook {
        RateBook::with_counters(writer, clock, None)
    }

    /// A book counting in `leased` when given (a store shared between nodes), else in memory.
    pub fn with_counters(
        writer: Arc<Writer>,
        clock: Arc<dyn Clock>,
        leased: Option<Arc<LeasedCounters>>,
    ) -> RateBook {
        let shared = leased.is_some();
        let counters: Arc<dyn HotCounters> = match &leased {
            Some(leased) => leased.clone(),
            None => Arc::new(MemoryCounters::with_clock(clock.clone())),
        };
        RateBook {
            counters,
            shared,
            leased,
            last_persist_ms: AtomicI64::new(clock.now_ms()),
            clock,
            writer,
            pending: Mutex::default(),
            seed: Mutex::new(None),
            seed_pending: AtomicBool::new(false),
        }
    }

    /// Reads the counts of windows still open. Called when the module is built, never on the
    /// request path.
    pub fn load(&self, store: &Store) -> Result<(), StoreError> {
        if self.shared {
            return Ok(());
        }
        let counts = store.rate_limits.rate_counts(self.clock.now_ms())?;
        *self.seed.lock().unwrap_or_else(PoisonError::into_inner) = Some(counts);
        self.seed_pending.store(true, Ordering::Release);
        // The in-memory counters answer at once: seed them now, before any request can race it.
        let _ = self.seeded().now_or_never();
        Ok(())
    }

    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    async fn seeded(&self) {
        // Checked without the lock: after the first request there is never anything to add.
        if !self.seed_pending.load(Ordering::Acquire) {
            return;
        }
        let seed = self
            .seed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        self.seed_pending.store(false, Ordering::Release);
        let now = self.clock.now_ms();
        for count in seed.into_iter().flatten() {
            let window = Window::fixed_ms(count.window_ms);
            // Only the window that is still current counts; an older one ended meanwhile.
            if window.bucket_start(now) == count.window_start_ms {
                let _ = self.counters.add(&count.counter, count.value, window).await;
            }
        }
    }

    fn note(&self, counter: &str, window: Window, start_ms: i64, delta: i64) {
        if delta == 0 || self.shared {
            return;
        }
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        // Looked up by reference first: a counter already pending costs no allocation.
        if !pending.contains_key(counter) {
            pending.insert(counter.to_string(), Vec::new());
        }
        let Some(windows) = pending.get_mut(counter) else {
            return;
        };
        match windows.iter_mut().find(|(start, _, _)| *start == start_ms) {
            Some(entry) => entry.2 += delta,
            None => windows.push((start_ms, window.length_ms_at(start_ms), delta)),
        }
    }

    /// Adds `amount` to `counter` if it stays within `limit`; the refusal says how full it is.
    pub async fn reserve(
        &self,
        counter: &str,
        amount: i64,
        limit: i64,
        window: Window,
    ) -> Result<Reservation, ReserveError> {
        self.seeded().await;
        let reservation = self
            .counters
            .quick_reserve(counter, amount, limit, window)
            .await?;
        self.note(counter, window, reservation.bucket_start_ms, amount);
        Ok(reservation)
    }

    /// Replaces a reserved amount by `actual`.
    pub async fn settle(&self, reservation: Reservation, actual: i64) {
        // Noted first, so the counter's name is borrowed, not copied, before the settle takes it.
        let delta = actual - reservation.amount;
        self.note(
            &reservation.key,
            reservation.window,
            reservation.bucket_start_ms,
            delta,
        );
        let _ = self.counters.quick_settle(reservation, actual).await;
    }

    /// Gives this node's leases back to the shared rows (at shutdown), so the other nodes need
    /// not wait for them to expire.
    pub async fn give_back(&self) {
        if let Some(leased) = &self.leased {
            leased.give_back().await;
        }
    }

    /// Whether [`RateBook::persist`] would hand anything over now (without forcing).
    pub fn persist_due(&self, interval_ms: i64) -> bool {
        !self.shared
            && self.clock.now_ms() - self.last_persist_ms.load(Ordering::Relaxed) >= interval_ms
    }

    /// Hands the pending deltas to the writer when `interval_ms` passed since the last time (or
    /// always, with `force`). Never waits: the writer takes them or counts a drop.
    pub fn persist(&self, interval_ms: i64, force: bool) {
        if self.shared {
            return;
        }
        let now = self.clock.now_ms();
        let last = self.last_persist_ms.load(Ordering::Relaxed);
        if !force && now - last < interval_ms {
            return;
        }
        // One caller per interval does the hand-over.
        if !force
            && self
                .last_persist_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        let pending =
            std::mem::take(&mut *self.pending.lock().unwrap_or_else(PoisonError::into_inner));
        let deltas: Vec<RateCount> = pending
            .into_iter()
            .flat_map(|(counter, windows)| {
                windows.into_iter().filter(|(_, _, delta)| *delta != 0).map(
                    move |(window_start_ms, window_ms, value)| RateCount {
                        counter: counter.clone(),
                        window_start_ms,
                        window_ms,
                        value,
                    },
                )
            })
            .collect();
        self.writer.submit_rate_counts(deltas);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::StoreConfig;
    use crate::ledger::LedgerKey;
    use crate::store::{ManualClock, StoreUrl};

    const DAY: i64 = 86_400_000;

    fn opened(dir: &std::path::Path) -> (Store, Arc<Writer>) {
        let key = LedgerKey::from_env_value("00112233445566778899aabbccddeeff")
            .unwrap_or_else(|e| panic!("{e}"));
        let url = StoreUrl::Sqlite(dir.join("rl.db"));
        let opened = crate::store::open(&url, key).unwrap_or_else(|e| panic!("{e}"));
        let writer =
            Writer::start(opened.writes, StoreConfig::default()).unwrap_or_else(|e| panic!("{e}"));
        (opened.store, Arc::new(writer))
    }

    #[tokio::test]
    async fn counts_reach_the_store_and_seed_the_next_book_within_their_window() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let (store, writer) = opened(dir.path());
        // The writer prunes by the wall clock: a window of a day around now keeps this test's rows.
        let clock = Arc::new(ManualClock::at(
            crate::store::day_start(crate::store::now_ms()) + 1_000,
        ));
        let window = Window::fixed_ms(DAY);
        let book = RateBook::new(writer.clone(), clock.clone());
        let Ok(held) = book.reserve("tpm:key:a", 40, 100, window).await else {
            panic!("refused")
        };
        book.settle(held, 25).await;
        assert!(book.reserve("rpm:key:a", 1, 5, window).await.is_ok());
        // Not yet: the interval has not passed since the book was made.
        book.persist(1_000, false);
        clock.advance(1_000);
        book.persist(1_000, false);
        writer.flush().await.unwrap_or_else(|e| panic!("{e}"));
        let stored = store
            .rate_limits
            .rate_counts(clock.now_ms())
            .unwrap_or_default();
        let seen: Vec<(&str, i64)> = stored
            .iter()
            .map(|c| (c.counter.as_str(), c.value))
            .collect();
        assert_eq!(seen, [("rpm:key:a", 1), ("tpm:key:a", 25)]);

        // A new book (a restart) inside the window carries on from the counts.
        let again = RateBook::new(writer.clone(), clock.clone());
        again.load(&store).unwrap_or_else(|e| panic!("{e}"));
        assert!(again.reserve("tpm:key:a", 76, 100, window).await.is_err());
        assert!(again.reserve("tpm:key:a", 75, 100, window).await.is_ok());

        // One started after the window ended starts from zero.
        clock.advance(DAY);
        let later = RateBook::new(writer.clone(), clock.clone());
        later.load(&store).unwrap_or_else(|e| panic!("{e}"));
        assert!(later.reserve("tpm:key:a", 100, 100, window).await.is_ok());
        writer.shutdown().await.unwrap_or_else(|e| panic!("{e}"));
    }
}
