//! Routing breakers: the hot state on the request path ([`BreakerBook`]) and the phases kept in
//! the store so a restart inside a cool-down keeps a deployment closed off ([`BreakerStore`]).
//!
//! The book changes state by compare-and-set on a per-id version rather than under a caller's
//! closure: a shared backend (another node, a database row) can honour "write this if nobody
//! wrote since version N", but not "run my code while you hold your lock". Callers read, decide,
//! and retry on [`Conflict`] (see `modules/routing/breaker.rs`).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use serde::Serialize;
use thiserror::Error;

use super::StoreError;

/// Where a circuit breaker stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "phase", rename_all = "snake_case")]
pub enum BreakerPhase {
    Closed,
    /// Refusing traffic until `until_ms` (epoch milliseconds).
    Open {
        until_ms: i64,
    },
    /// Letting `probes` requests through to test recovery.
    HalfOpen {
        probes: u32,
    },
}

/// One deployment's breaker: its phase and the recent outcomes that decide it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BreakerState {
    pub phase: BreakerPhase,
    pub consecutive_failures: u32,
    /// Most recent last; `true` = failure.
    pub recent: VecDeque<bool>,
    /// Why it last opened.
    pub reason: String,
}

impl Default for BreakerState {
    fn default() -> Self {
        BreakerState {
            phase: BreakerPhase::Closed,
            consecutive_failures: 0,
            recent: VecDeque::new(),
            reason: String::new(),
        }
    }
}

/// A breaker's phase as stored, so a restart inside a cool-down keeps the deployment closed off.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BreakerRecord {
    pub deployment: String,
    pub phase: BreakerPhase,
    pub reason: String,
    pub updated_ms: i64,
}

/// Stored breaker reads. Methods block; async callers use `spawn_blocking`.
pub trait BreakerStore: Send + Sync {
    /// Every stored breaker, by deployment key.
    fn breakers(&self) -> Result<Vec<BreakerRecord>, StoreError>;
}

/// Called only by the writer thread.
pub trait BreakerWrites {
    /// Stores a breaker's phase (newest wins).
    fn save_breaker(&mut self, record: &BreakerRecord) -> Result<(), StoreError>;
}

/// Version of an id the book has never stored: pass it to create the first state.
pub const ABSENT: u64 = 0;

/// Someone else changed the breaker since it was read; read again and retry.
#[derive(Clone, Copy, Debug, Error, PartialEq, Eq)]
#[error("breaker {current} changed since version {expected} was read")]
pub struct Conflict {
    pub expected: u64,
    pub current: u64,
}

/// Breaker states by deployment key, each with a version that every successful write bumps.
pub trait BreakerBook: Send + Sync {
    /// The state and its version; `None` for an id never written (its version is [`ABSENT`]).
    fn get(&self, id: &str) -> Option<(BreakerState, u64)>;
    /// The phase alone: what the request path reads, without copying the outcome history.
    fn phase(&self, id: &str) -> Option<BreakerPhase>;
    /// Stores `new` if `id` is still at `expected_version`.
    fn compare_and_set(
        &self,
        id: &str,
        expected_version: u64,
        new: BreakerState,
    ) -> Result<(), Conflict>;
    /// Every state, by id.
    fn all(&self) -> Vec<(String, BreakerState)>;
}

/// The single-node book: a map under one lock, held only for a lookup or a swap.
#[derive(Default)]
pub struct MemoryBreakers {
    states: Mutex<HashMap<String, (BreakerState, u64)>>,
}

impl MemoryBreakers {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (BreakerState, u64)>> {
        // A panic elsewhere can't leave a half-written entry: every write is one insert.
        self.states.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl BreakerBook for MemoryBreakers {
    fn get(&self, id: &str) -> Option<(BreakerState, u64)> {
        self.lock().get(id).cloned()
    }

    fn phase(&self, id: &str) -> Option<BreakerPhase> {
        self.lock().get(id).map(|(s, _)| s.phase)
    }

    fn compare_and_set(
        &self,
        id: &str,
        expected_version: u64,
        new: BreakerState,
    ) -> Result<(), Conflict> {
        let mut states = self.lock();
        let current = states.get(id).map_or(ABSENT, |(_, v)| *v);
        if current != expected_version {
            return Err(Conflict {
                expected: expected_version,
                current,
            });
        }
        states.insert(id.to_string(), (new, current + 1));
        Ok(())
    }

    fn all(&self) -> Vec<(String, BreakerState)> {
        let mut all: Vec<_> = self
            .lock()
            .iter()
            .map(|(k, (s, _))| (k.clone(), s.clone()))
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open_until(until_ms: i64) -> BreakerState {
        BreakerState {
            phase: BreakerPhase::Open { until_ms },
            ..BreakerState::default()
        }
    }

    #[test]
    fn compare_and_set_bumps_the_version_and_refuses_stale_writes() {
        let book = MemoryBreakers::default();
        assert_eq!(book.get("d"), None);
        assert_eq!(book.compare_and_set("d", ABSENT, open_until(5)), Ok(()));
        assert_eq!(book.get("d"), Some((open_until(5), 1)));
        let stale = book.compare_and_set("d", ABSENT, open_until(9));
        assert_eq!(
            stale,
            Err(Conflict {
                expected: 0,
                current: 1
            })
        );
        assert_eq!(
            book.compare_and_set("d", 1, BreakerState::default()),
            Ok(())
        );
        assert_eq!(book.phase("d"), Some(BreakerPhase::Closed));
        assert_eq!(book.get("d").map(|(_, v)| v), Some(2));
    }

    #[test]
    fn only_one_of_many_racing_writers_wins_each_version() {
        let book = std::sync::Arc::new(MemoryBreakers::default());
        let wins: usize = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|i| {
                    let book = book.clone();
                    s.spawn(move || book.compare_and_set("d", ABSENT, open_until(i)).is_ok())
                })
                .collect();
            handles
                .into_iter()
                .map(|h| usize::from(h.join().unwrap_or(false)))
                .sum()
        });
        assert_eq!(wins, 1);
    }
}
