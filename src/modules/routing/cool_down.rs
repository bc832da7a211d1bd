//! Cool-downs for plain models (a model used with no routing group): after a 429, traffic stays
//! off the model until its `retry-after`. Kept in memory, never restored: a plain model has no
//! breaker the operator asked for, so a restart (often made to fix its config) starts it fresh.
//! Nodes sharing a store tell each other (`RoutingShared::rate_limited`): the cool-down goes out
//! as a breaker row named by [`record_key`], which no restore ever matches, and the other nodes
//! adopt it, so a key one node found rate limited rests on every node.

use std::collections::HashMap;
use std::sync::Mutex;

/// Most cool-downs remembered at once; past it, expired ones are dropped first, then none are
/// added (a model over the limit is simply tried again, which is safe).
const LIMIT: usize = 4_096;

/// Marks a breaker row that carries a plain model's cool-down (no deployment key starts so: a
/// deployment id starts with its group's name, which holds no space).
const RECORD_PREFIX: &str = "cool-down ";

/// The breaker row name of plain model `key`'s cool-down.
pub fn record_key(key: &str) -> String {
    format!("{RECORD_PREFIX}{key}")
}

/// The plain model of a cool-down row; `None` for a breaker's row.
pub fn from_record_key(deployment: &str) -> Option<&str> {
    deployment.strip_prefix(RECORD_PREFIX)
}

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

    /// Keeps traffic off `key` until `until_ms`, unless it is already off for longer; returns
    /// whether that moved its end.
    pub fn set(&self, key: &str, until_ms: i64, now: i64) -> bool {
        let mut until = self.until_ms.lock().unwrap_or_else(|p| p.into_inner());
        if until.len() >= LIMIT {
            until.retain(|_, t| *t > now);
        }
        if until.len() >= LIMIT && !until.contains_key(key) {
            return false;
        }
        match until.get_mut(key) {
            Some(slot) if *slot >= until_ms => false,
            Some(slot) => {
                *slot = until_ms;
                true
            }
            None => {
                until.insert(key.to_string(), until_ms);
                true
            }
        }
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
