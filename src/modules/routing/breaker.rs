//! Circuit breakers per deployment: closed, open, half-open.
//!
//! Closed counts outcomes; it opens after `consecutive_failures` failures in a row, or when at least
//! `failure_rate_percent` of the last `window` outcomes failed (once `min_requests` are in). Open
//! refuses traffic for `cooldown_ms`, then lets `half_open_probes` requests through at once:
//! a probe's success closes it, a failure opens it again. A 429 cools the deployment down for its
//! `retry-after` the same way. Every change of phase goes to the writer, so a restart inside a
//! cool-down keeps the deployment closed off. States live behind [`BreakerBook`] (hot state) and
//! change by compare-and-set: each transition reads the state and its version, decides, and
//! writes only if nobody wrote since, else decides again on what the other writer left. That is
//! what lets two concurrent requests never both take the last half-open probe, with no lock that
//! a shared book (several nodes) could not offer.
//!
//! Only deployments of configured groups have breakers (a plain model's 429 goes to
//! [`super::cool_down`], in memory). A breaker is keyed by [`key`]: the deployment id plus the
//! upstream base URL, so a deployment pointed somewhere else (often the fix for what opened it)
//! starts closed, even across a restart, while an unchanged one keeps its stored phase.
//!
//! Nodes sharing a store share phases: every change of phase goes to the shared row (newest
//! wins), the other nodes hear of it (`server/follow.rs`) and [`Breakers::adopt`] it. The
//! outcome history and the half-open probe count stay per node: each node may send its own probe
//! after a cool-down, and the first probe's verdict, stored, settles it for all.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::config::BreakerConfig;
use crate::store::writer::Writer;
use crate::store::{ABSENT, BreakerBook, BreakerPhase, BreakerRecord, BreakerState, now_ms};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Availability {
    Available,
    /// Only as a half-open probe.
    Probe,
    Unavailable {
        until_ms: i64,
    },
}

pub struct Breakers {
    book: Arc<dyn BreakerBook>,
    writer: Option<Arc<Writer>>,
    /// The newest stored change known per breaker (made here or adopted), so an older record
    /// read back from the store never undoes a newer phase.
    seen_ms: Mutex<HashMap<String, i64>>,
}

/// Separates the deployment id from the base URL in a breaker key. A URL holds no spaces, so the
/// last occurrence is the separator even if a model name contains it.
const KEY_SEPARATOR: &str = " at ";

/// The breaker key of deployment `id` (`group/provider/model`) sending to `base_url`.
pub fn key(id: &str, base_url: &str) -> String {
    format!("{id}{KEY_SEPARATOR}{base_url}")
}

/// The deployment id and base URL of a breaker key; no URL for a key stored by an older build.
pub fn split_key(key: &str) -> (&str, Option<&str>) {
    match key.rsplit_once(KEY_SEPARATOR) {
        Some((id, url)) => (id, Some(url)),
        None => (key, None),
    }
}

/// How long a full half-open breaker asks others to wait before looking again.
const PROBE_BUSY_MS: i64 = 1_000;

impl Breakers {
    pub fn new(book: Arc<dyn BreakerBook>, writer: Option<Arc<Writer>>) -> Breakers {
        Breakers {
            book,
            writer,
            seen_ms: Mutex::default(),
        }
    }

    /// Takes the phases other nodes stored, each only if newer than what this node knows of its
    /// breaker. Nothing is written back: the record came from the store.
    pub fn adopt(&self, records: &[BreakerRecord]) {
        for record in records {
            {
                let mut seen = self.seen_ms.lock().unwrap_or_else(|p| p.into_inner());
                let known = seen.get(&record.deployment).copied().unwrap_or(i64::MIN);
                if record.updated_ms <= known {
                    continue;
                }
                seen.insert(record.deployment.clone(), record.updated_ms);
            }
            self.transition(&record.deployment, &mut |state| match record.phase {
                BreakerPhase::Open { until_ms } => {
                    let longer = match state.phase {
                        BreakerPhase::Open { until_ms: current } => until_ms > current,
                        _ => true,
                    };
                    if longer {
                        open(state, until_ms, &record.reason);
                    }
                }
                BreakerPhase::Closed => {
                    if state.phase != BreakerPhase::Closed {
                        *state = BreakerState::default();
                    }
                }
                // Another node probes: this one may probe too, once its own cool-down is over.
                BreakerPhase::HalfOpen { .. } => {
                    if state.phase == BreakerPhase::Closed {
                        open(state, 0, &record.reason);
                    }
                }
            });
        }
    }

    /// Restores stored phases at start-up.
    pub fn restore(&self, records: &[BreakerRecord]) {
        for record in records {
            self.transition(&record.deployment, &mut |state| {
                state.phase = match record.phase {
                    // A probe in flight at shutdown is gone: let the next request probe again.
                    BreakerPhase::HalfOpen { .. } => BreakerPhase::Open { until_ms: 0 },
                    phase => phase,
                };
                state.reason.clone_from(&record.reason);
            });
        }
    }

    pub fn peek(&self, id: &str, config: &BreakerConfig, now: i64) -> Availability {
        let Some(phase) = self.book.phase(id) else {
            return Availability::Available;
        };
        match phase {
            BreakerPhase::Closed => Availability::Available,
            BreakerPhase::Open { until_ms } if now >= until_ms => Availability::Probe,
            BreakerPhase::Open { until_ms } => Availability::Unavailable { until_ms },
            BreakerPhase::HalfOpen { probes } if probes < config.half_open_probes => {
                Availability::Probe
            }
            BreakerPhase::HalfOpen { .. } => Availability::Unavailable {
                until_ms: now + PROBE_BUSY_MS,
            },
        }
    }

    /// Takes the right to send to `id` now: always when closed; a probe slot when half-open.
    pub fn acquire(&self, id: &str, config: &BreakerConfig, now: i64) -> bool {
        self.change(id, &mut |state| match state.phase {
            BreakerPhase::Closed => true,
            BreakerPhase::Open { until_ms } if now >= until_ms => {
                state.phase = BreakerPhase::HalfOpen { probes: 1 };
                true
            }
            BreakerPhase::Open { .. } => false,
            BreakerPhase::HalfOpen { probes } if probes < config.half_open_probes => {
                state.phase = BreakerPhase::HalfOpen { probes: probes + 1 };
                true
            }
            BreakerPhase::HalfOpen { .. } => false,
        })
    }

    /// Records the outcome of a request sent to `id`.
    pub fn record(&self, id: &str, config: &BreakerConfig, failed: bool, now: i64) {
        if !config.enabled {
            return;
        }
        self.change(id, &mut |state| match state.phase {
            BreakerPhase::HalfOpen { .. } if failed => {
                open(state, now + config.cooldown_ms as i64, "probe failed");
            }
            BreakerPhase::HalfOpen { .. } => *state = BreakerState::default(),
            // An attempt sent after waiting out a cool-down acts as the probe.
            BreakerPhase::Open { until_ms } if now >= until_ms && failed => {
                open(state, now + config.cooldown_ms as i64, "probe failed");
            }
            BreakerPhase::Open { until_ms } if now >= until_ms => *state = BreakerState::default(),
            BreakerPhase::Open { .. } => {}
            BreakerPhase::Closed => {
                state.recent.push_back(failed);
                while state.recent.len() > config.window as usize {
                    state.recent.pop_front();
                }
                state.consecutive_failures = if failed {
                    state.consecutive_failures + 1
                } else {
                    0
                };
                let failures = state.recent.iter().filter(|f| **f).count() as u64;
                let rate_tripped = state.recent.len() as u64 >= u64::from(config.min_requests)
                    && failures * 100
                        >= u64::from(config.failure_rate_percent) * state.recent.len() as u64
                    && failures > 0;
                if state.consecutive_failures >= config.consecutive_failures {
                    let reason = format!("{} consecutive failures", state.consecutive_failures);
                    open(state, now + config.cooldown_ms as i64, &reason);
                } else if rate_tripped {
                    let reason = format!(
                        "{failures} of the last {} requests failed",
                        state.recent.len()
                    );
                    open(state, now + config.cooldown_ms as i64, &reason);
                }
            }
        });
    }

    /// Keeps traffic off `id` until `until_ms` (a 429's `retry-after`), unless it is already
    /// open for longer.
    pub fn cool_down(&self, id: &str, until_ms: i64, reason: &str) {
        self.change(id, &mut |state| {
            let longer = match state.phase {
                BreakerPhase::Open { until_ms: current } => until_ms > current,
                _ => true,
            };
            if longer {
                state.phase = BreakerPhase::Open { until_ms };
                reason.clone_into(&mut state.reason);
            }
        });
    }

    /// An operator's force-open, until `until_ms`.
    pub fn force_open(&self, id: &str, until_ms: i64) -> BreakerRecord {
        self.transition(id, &mut |state| {
            open(state, until_ms, "forced open by an operator");
        });
        self.record_of(id)
    }

    /// An operator's reset: closed, history forgotten.
    pub fn reset(&self, id: &str) -> BreakerRecord {
        self.transition(id, &mut |state| *state = BreakerState::default());
        self.record_of(id)
    }

    pub fn record_of(&self, id: &str) -> BreakerRecord {
        let state = self
            .book
            .get(id)
            .map(|(state, _)| state)
            .unwrap_or_default();
        BreakerRecord {
            deployment: id.to_string(),
            phase: state.phase,
            reason: state.reason,
            updated_ms: now_ms(),
        }
    }

    pub fn all(&self) -> Vec<(String, BreakerState)> {
        self.book.all()
    }

    /// Runs `decide` on the current state and stores the result by compare-and-set, deciding
    /// again on a conflict; returns what `decide` returned on the pass that was stored, and the
    /// states before and after it. `decide` may run more than once, so it only changes `state`.
    fn transition<T>(
        &self,
        id: &str,
        decide: &mut dyn FnMut(&mut BreakerState) -> T,
    ) -> (T, BreakerState, BreakerState) {
        loop {
            let (before, version) = self
                .book
                .get(id)
                .unwrap_or_else(|| (BreakerState::default(), ABSENT));
            let mut after = before.clone();
            let answer = decide(&mut after);
            // Nothing to write: the read itself is the (consistent) outcome.
            if after == before {
                return (answer, before, after);
            }
            // A conflict means another caller's write landed, so some caller always makes
            // progress and this loop ends once the contention does.
            if self
                .book
                .compare_and_set(id, version, after.clone())
                .is_ok()
            {
                return (answer, before, after);
            }
        }
    }

    /// A transition that also persists the new phase if it changed.
    fn change<T>(&self, id: &str, decide: &mut dyn FnMut(&mut BreakerState) -> T) -> T {
        let (answer, before, after) = self.transition(id, decide);
        let changed = match (before.phase, after.phase) {
            (BreakerPhase::HalfOpen { .. }, BreakerPhase::HalfOpen { .. }) => false,
            (b, a) => b != a,
        };
        if !changed {
            return answer;
        }
        let (phase, reason) = (after.phase, after.reason);
        tracing::info!(deployment = id, ?phase, %reason, "breaker changed");
        let updated_ms = now_ms();
        self.seen_ms
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.to_string(), updated_ms);
        if let Some(writer) = &self.writer {
            writer.submit_breaker(BreakerRecord {
                deployment: id.to_string(),
                phase,
                reason,
                updated_ms,
            });
        }
        answer
    }
}

fn open(state: &mut BreakerState, until_ms: i64, reason: &str) {
    state.phase = BreakerPhase::Open { until_ms };
    state.consecutive_failures = 0;
    state.recent.clear();
    reason.clone_into(&mut state.reason);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryBreakers;

    fn breakers() -> Breakers {
        Breakers::new(Arc::new(MemoryBreakers::default()), None)
    }

    fn config() -> BreakerConfig {
        BreakerConfig {
            consecutive_failures: 3,
            min_requests: 4,
            window: 4,
            failure_rate_percent: 50,
            cooldown_ms: 1_000,
            ..BreakerConfig::default()
        }
    }

    #[test]
    fn opens_after_consecutive_failures_then_probes_and_closes() {
        let b = breakers();
        let c = config();
        for _ in 0..3 {
            assert!(b.acquire("d", &c, 0));
            b.record("d", &c, true, 0);
        }
        assert_eq!(
            b.peek("d", &c, 10),
            Availability::Unavailable { until_ms: 1_000 }
        );
        assert!(!b.acquire("d", &c, 10));
        assert_eq!(b.peek("d", &c, 1_000), Availability::Probe);
        assert!(b.acquire("d", &c, 1_000));
        assert!(!b.acquire("d", &c, 1_001), "one probe at a time");
        b.record("d", &c, false, 1_002);
        assert_eq!(b.peek("d", &c, 1_003), Availability::Available);
    }

    #[test]
    fn racing_requests_never_take_more_probes_than_allowed() {
        let b = Arc::new(breakers());
        let c = BreakerConfig {
            half_open_probes: 2,
            ..config()
        };
        b.force_open("d", 100);
        let granted: usize = std::thread::scope(|s| {
            let handles: Vec<_> = (0..16)
                .map(|_| {
                    let b = b.clone();
                    s.spawn(move || b.acquire("d", &c, 100))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| usize::from(h.join().unwrap_or(false)))
                .sum()
        });
        assert_eq!(granted, 2);
        assert_eq!(
            b.peek("d", &c, 100),
            Availability::Unavailable { until_ms: 1_100 }
        );
    }

    #[test]
    fn failed_probe_reopens() {
        let b = breakers();
        let c = config();
        b.force_open("d", 100);
        assert!(b.acquire("d", &c, 100));
        b.record("d", &c, true, 100);
        assert_eq!(
            b.peek("d", &c, 150),
            Availability::Unavailable { until_ms: 1_100 }
        );
    }

    #[test]
    fn failure_rate_over_the_window_opens() {
        let b = breakers();
        let c = config();
        for failed in [true, false, true, false] {
            b.record("d", &c, failed, 0);
        }
        assert!(matches!(
            b.peek("d", &c, 1),
            Availability::Unavailable { .. }
        ));
    }

    #[test]
    fn cool_down_and_reset() {
        let b = breakers();
        let c = config();
        b.cool_down("d", 500, "rate limited");
        assert_eq!(
            b.peek("d", &c, 0),
            Availability::Unavailable { until_ms: 500 }
        );
        b.reset("d");
        assert_eq!(b.peek("d", &c, 0), Availability::Available);
    }

    #[test]
    fn a_key_splits_back_into_deployment_and_url() {
        let k = key("pool/p0/model at large", "http://127.0.0.1:1/v1");
        assert_eq!(
            split_key(&k),
            ("pool/p0/model at large", Some("http://127.0.0.1:1/v1"))
        );
        assert_eq!(split_key("pool/p0/m0"), ("pool/p0/m0", None));
    }

    #[test]
    fn adopted_phases_apply_newest_first_and_never_undo_a_newer_one() {
        let b = breakers();
        let c = config();
        let record = |phase, updated_ms| BreakerRecord {
            deployment: "d".into(),
            phase,
            reason: "another node".into(),
            updated_ms,
        };
        b.adopt(&[record(BreakerPhase::Open { until_ms: 5_000 }, 10)]);
        assert_eq!(
            b.peek("d", &c, 0),
            Availability::Unavailable { until_ms: 5_000 }
        );
        // Read back again, or older: nothing changes.
        b.adopt(&[record(BreakerPhase::Closed, 9)]);
        assert!(matches!(
            b.peek("d", &c, 0),
            Availability::Unavailable { .. }
        ));
        // An operator's reset on another node, stored later, closes it here too.
        b.adopt(&[record(BreakerPhase::Closed, 11)]);
        assert_eq!(b.peek("d", &c, 0), Availability::Available);
    }

    #[test]
    fn restored_open_state_keeps_traffic_off() {
        let b = breakers();
        let c = config();
        b.restore(&[BreakerRecord {
            deployment: "d".into(),
            phase: BreakerPhase::Open { until_ms: 5_000 },
            reason: "x".into(),
            updated_ms: 0,
        }]);
        assert_eq!(
            b.peek("d", &c, 10),
            Availability::Unavailable { until_ms: 5_000 }
        );
    }
}
