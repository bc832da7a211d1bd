//! Hot state kept in memory on the request path. Behind a trait so that several nodes can later
//! share it through a common backend; the in-memory version is the single-node default.

use std::collections::HashMap;
use std::sync::Mutex;

/// Named integer counters, such as requests per key or failures per deployment.
pub trait HotCounters: Send + Sync {
    /// Adds `delta` to `key` and returns the new value.
    fn add(&self, key: &str, delta: i64) -> i64;
    fn get(&self, key: &str) -> i64;
}

#[derive(Default)]
pub struct MemoryCounters {
    values: Mutex<HashMap<String, i64>>,
}

impl HotCounters for MemoryCounters {
    fn add(&self, key: &str, delta: i64) -> i64 {
        let mut values = self.values.lock().unwrap_or_else(|p| p.into_inner());
        let slot = values.entry(key.to_string()).or_insert(0);
        *slot += delta;
        *slot
    }

    fn get(&self, key: &str) -> i64 {
        let values = self.values.lock().unwrap_or_else(|p| p.into_inner());
        values.get(key).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_add_and_read() {
        let counters = MemoryCounters::default();
        assert_eq!(counters.add("a", 2), 2);
        assert_eq!(counters.add("a", -1), 1);
        assert_eq!(counters.get("a"), 1);
        assert_eq!(counters.get("missing"), 0);
    }
}

/// Where a circuit breaker stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
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
    pub recent: std::collections::VecDeque<bool>,
    /// Why it last opened.
    pub reason: String,
}

impl Default for BreakerState {
    fn default() -> Self {
        BreakerState {
            phase: BreakerPhase::Closed,
            consecutive_failures: 0,
            recent: std::collections::VecDeque::new(),
            reason: String::new(),
        }
    }
}

/// Breaker states by deployment id. `update` is atomic per id, so concurrent requests can't both
/// take the last half-open probe.
pub trait BreakerBook: Send + Sync {
    fn update(&self, id: &str, f: &mut dyn FnMut(&mut BreakerState));
    /// The phase alone: what the request path reads, without copying the outcome history.
    fn phase(&self, id: &str) -> Option<BreakerPhase>;
    fn get(&self, id: &str) -> Option<BreakerState>;
    fn all(&self) -> Vec<(String, BreakerState)>;
}

#[derive(Default)]
pub struct MemoryBreakers {
    states: Mutex<HashMap<String, BreakerState>>,
}

impl BreakerBook for MemoryBreakers {
    fn update(&self, id: &str, f: &mut dyn FnMut(&mut BreakerState)) {
        let mut states = self.states.lock().unwrap_or_else(|p| p.into_inner());
        match states.get_mut(id) {
            Some(state) => f(state),
            None => {
                let mut state = BreakerState::default();
                f(&mut state);
                states.insert(id.to_string(), state);
            }
        }
    }

    fn phase(&self, id: &str) -> Option<BreakerPhase> {
        let states = self.states.lock().unwrap_or_else(|p| p.into_inner());
        states.get(id).map(|s| s.phase)
    }

    fn get(&self, id: &str) -> Option<BreakerState> {
        let states = self.states.lock().unwrap_or_else(|p| p.into_inner());
        states.get(id).cloned()
    }

    fn all(&self) -> Vec<(String, BreakerState)> {
        let states = self.states.lock().unwrap_or_else(|p| p.into_inner());
        let mut all: Vec<_> = states.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }
}
