//! Live figures per deployment, kept in memory: requests in flight, moving averages of latency and
//! time to first token, and this minute's requests and tokens (for rpm/tpm capacity). They outlive
//! chain rebuilds: a deployment keeps its figures when the routing config changes.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Weight of the newest sample in the moving averages.
const EWMA_ALPHA: f64 = 0.3;

#[derive(Default)]
pub struct DeploymentStats {
    inflight: AtomicI64,
    /// f64 bits; 0 = no sample yet.
    latency_us: AtomicU64,
    ttft_us: AtomicU64,
    minute: AtomicI64,
    requests_this_minute: AtomicU64,
    tokens_this_minute: AtomicU64,
}

/// Holds one in-flight slot; released on drop (also when a request is cancelled).
pub struct Ticket(Arc<DeploymentStats>);

impl Drop for Ticket {
    fn drop(&mut self) {
        self.0.inflight.fetch_sub(1, Ordering::Relaxed);
    }
}

fn ewma(slot: &AtomicU64, sample: f64) {
    // A lost update under a race only drops one sample from an average; no lock is worth that.
    let old = f64::from_bits(slot.load(Ordering::Relaxed));
    let new = if old == 0.0 {
        sample
    } else {
        old + EWMA_ALPHA * (sample - old)
    };
    slot.store(new.to_bits(), Ordering::Relaxed);
}

impl DeploymentStats {
    pub fn enter(self: &Arc<Self>, now_ms: i64) -> Ticket {
        self.roll(now_ms);
        self.inflight.fetch_add(1, Ordering::Relaxed);
        self.requests_this_minute.fetch_add(1, Ordering::Relaxed);
        Ticket(self.clone())
    }

    pub fn inflight(&self) -> i64 {
        self.inflight.load(Ordering::Relaxed)
    }

    /// The lowest-latency score: time to first token for streams when known, else latency.
    pub fn score_us(&self, stream: bool) -> f64 {
        let latency = f64::from_bits(self.latency_us.load(Ordering::Relaxed));
        let ttft = f64::from_bits(self.ttft_us.load(Ordering::Relaxed));
        if stream && ttft > 0.0 {
            ttft
        } else if latency > 0.0 {
            latency
        } else {
            ttft
        }
    }

    pub fn has_samples(&self) -> bool {
        self.latency_us.load(Ordering::Relaxed) != 0 || self.ttft_us.load(Ordering::Relaxed) != 0
    }

    pub fn record(&self, latency_us: Option<u64>, ttft_us: Option<u64>, tokens: u64, now_ms: i64) {
        if let Some(l) = latency_us {
            ewma(&self.latency_us, l.max(1) as f64);
        }
        if let Some(t) = ttft_us {
            ewma(&self.ttft_us, t.max(1) as f64);
        }
        self.roll(now_ms);
        self.tokens_this_minute.fetch_add(tokens, Ordering::Relaxed);
    }

    /// Whether the deployment still has room this minute.
    pub fn has_capacity(&self, rpm: Option<u32>, tpm: Option<u64>, now_ms: i64) -> bool {
        self.roll(now_ms);
        let requests_ok =
            rpm.is_none_or(|r| self.requests_this_minute.load(Ordering::Relaxed) < u64::from(r));
        let tokens_ok = tpm.is_none_or(|t| self.tokens_this_minute.load(Ordering::Relaxed) < t);
        requests_ok && tokens_ok
    }

    /// Starts a new minute's counts when the clock passed into one.
    fn roll(&self, now_ms: i64) {
        let minute = now_ms / 60_000;
        let seen = self.minute.load(Ordering::Relaxed);
        if minute != seen
            && self
                .minute
                .compare_exchange(seen, minute, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.requests_this_minute.store(0, Ordering::Relaxed);
            self.tokens_this_minute.store(0, Ordering::Relaxed);
        }
    }
}

#[derive(Default)]
pub struct StatsRegistry {
    by_id: Mutex<HashMap<String, Arc<DeploymentStats>>>,
}

impl StatsRegistry {
    pub fn get(&self, id: &str) -> Arc<DeploymentStats> {
        let mut map = self.by_id.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(id.to_string()).or_default().clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tickets_count_inflight_and_capacity_rolls_by_minute() {
        let stats = Arc::new(DeploymentStats::default());
        let a = stats.enter(0);
        let b = stats.enter(0);
        assert_eq!(stats.inflight(), 2);
        drop(a);
        drop(b);
        assert_eq!(stats.inflight(), 0);
        assert!(!stats.has_capacity(Some(2), None, 1_000));
        assert!(stats.has_capacity(Some(2), None, 60_000));
    }

    #[test]
    fn averages_move_toward_new_samples() {
        let stats = DeploymentStats::default();
        stats.record(Some(1_000), None, 0, 0);
        stats.record(Some(2_000), None, 0, 0);
        assert!((stats.score_us(false) - 1_300.0).abs() < 1e-6);
    }
}
