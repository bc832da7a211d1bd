//! `RateBook`: request and token counts per fixed window in hot counters, shared by every chain
//! the proxy builds, and their way to and from the store.
//!
//! Every change to a count (a reservation, a settle, a release) is also noted as a delta of its
//! window; at most every `persist_interval_ms` (checked as requests pass, and at shutdown) the
//! deltas go to the writer as one batch, which adds them to the stored counts. At start-up the
//! counts of windows still open are read once (when the module is first built) and added to the
//! counters by the first request, so a restart inside a window carries on from the count.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use crate::store::writer::Writer;
use crate::store::{
    Clock, HotCounters, MemoryCounters, RateCount, Reservation, ReserveError, Store, StoreError,
    Window,
};

pub struct RateBook {
    counters: MemoryCounters,
    clock: Arc<dyn Clock>,
    writer: Arc<Writer>,
    /// Changes not yet handed to the writer: (counter, window start) -> (window length, delta).
    pending: Mutex<HashMap<(String, i64), (i64, i64)>>,
    last_persist_ms: AtomicI64,
    /// Counts of open windows read at start-up, added by the first request.
    seed: Mutex<Option<Vec<RateCount>>>,
}

impl RateBook {
    pub fn new(writer: Arc<Writer>, clock: Arc<dyn Clock>) -> RateBook {
        RateBook {
            counters: MemoryCounters::with_clock(clock.clone()),
            last_persist_ms: AtomicI64::new(clock.now_ms()),
            clock,
            writer,
            pending: Mutex::default(),
            seed: Mutex::new(None),
        }
    }

    /// Reads the counts of windows still open. Called when the module is built, never on the
    /// request path.
    pub fn load(&self, store: &Store) -> Result<(), StoreError> {
        let counts = store.rate_limits.rate_counts(self.clock.now_ms())?;
        *self.seed.lock().unwrap_or_else(PoisonError::into_inner) = Some(counts);
        Ok(())
    }

    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    async fn seeded(&self) {
        let seed = self
            .seed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
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
        if delta == 0 {
            return;
        }
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = pending
            .entry((counter.to_string(), start_ms))
            .or_insert((window.length_ms_at(start_ms), 0));
        entry.1 += delta;
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
            .reserve(counter, amount, limit, window)
            .await?;
        self.note(counter, window, reservation.bucket_start_ms, amount);
        Ok(reservation)
    }

    /// Replaces a reserved amount by `actual`.
    pub async fn settle(&self, reservation: Reservation, actual: i64) {
        let (counter, window, start) = (
            reservation.key.clone(),
            reservation.window,
            reservation.bucket_start_ms,
        );
        let delta = actual - reservation.amount;
        let _ = self.counters.settle(reservation, actual).await;
        self.note(&counter, window, start, delta);
    }

    /// Hands the pending deltas to the writer when `interval_ms` passed since the last time (or
    /// always, with `force`). Never waits: the writer takes them or counts a drop.
    pub fn persist(&self, interval_ms: i64, force: bool) {
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
            .filter(|(_, (_, delta))| *delta != 0)
            .map(
                |((counter, window_start_ms), (window_ms, value))| RateCount {
                    counter,
                    window_start_ms,
                    window_ms,
                    value,
                },
            )
            .collect();
        self.writer.submit_rate_counts(deltas);
    }
}
