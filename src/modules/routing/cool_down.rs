//! Cool-downs for plain models (a model used with no routing group): after a 429, traffic stays
//! off the model until its `retry-after`. Kept in memory only, never persisted: a plain model has
//! no breaker the operator asked for, so a restart (often made to fix its config) starts it fresh.

use std::collections::HashMap;
use std::sync::Mutex;

/// Most cool-downs remembered at once; past it, expired ones are dropped first, then none are
/// added (a model over the limit is simply tried again, which is safe).
const LIMIT: usize = 4_096;

#[derive(Default)]
pub struct CoolDowns {
    until_ms: Mutex<HashMap<String, i64>>,
}

impl CoolDowns {
    /// When `key` is free again, if it is cooling down at `now`.
    pub fn until(&self, key: &str, now: i64) -> Option<i64> {
        let until = self.until_ms.lock().unwrap_or_else(|p| p.into_inner());
        until.get(key).copied().filter(|t| *t > now)
    }

    /// Keeps traffic off `key` until `until_ms`, unless it is already off for longer.
    pub fn set(&self, key: &str, until_ms: i64, now: i64) {
        let mut until = self.until_ms.lock().unwrap_or_else(|p| p.into_inner());
        if until.len() >= LIMIT {
            until.retain(|_, t| *t > now);
        }
        if until.len() >= LIMIT && !until.contains_key(key) {
            return;
        }
        let slot = until.entry(key.to_string()).or_insert(until_ms);
        *slot = (*slot).max(until_ms);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cool_down_ends_at_its_time_and_never_shortens() {
        let c = CoolDowns::default();
        assert_eq!(c.until("m", 0), None);
        c.set("m", 1_000, 0);
        c.set("m", 500, 0);
        assert_eq!(c.until("m", 10), Some(1_000));
        assert_eq!(c.until("m", 1_000), None);
    }
}
