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
