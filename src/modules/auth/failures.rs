//! Refused authentications, counted per minute, source and reason instead of one trace row each:
//! a flood of keyless requests must cost a counter increment, not a row, a log line and a writer
//! slot apiece, however many sources it comes from.
//!
//! The counts of the current minute sit in memory; when a refusal arrives in a new minute, the
//! previous minute's counts go to the writer as one batch (and whatever is left at shutdown). A
//! minute holds at most [`MAX_SOURCES`] sources; the rest are counted together under `other`.
//! IPv6 sources count by /64, the block one client usually holds. Log lines are capped per minute
//! too: the first refusal of each of the first [`MAX_LOGGED`] sources.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use crate::store::writer::Writer;
use crate::store::{AuthFailureCount, now_ms};

const MINUTE_MS: i64 = 60_000;
/// Distinct sources kept apart within one minute.
pub const MAX_SOURCES: usize = 1024;
/// Sources whose first refusal of a minute is logged.
pub const MAX_LOGGED: usize = 16;
const OTHER: &str = "other";

pub struct AuthFailures {
    minute: AtomicI64,
    counts: Mutex<Minute>,
    total: AtomicU64,
    writer: Arc<Writer>,
}

#[derive(Default)]
struct Minute {
    start_ms: i64,
    by_source: HashMap<(String, &'static str), u64>,
    logged: usize,
}

impl AuthFailures {
    pub fn new(writer: Arc<Writer>) -> AuthFailures {
        AuthFailures {
            minute: AtomicI64::new(0),
            counts: Mutex::new(Minute::default()),
            total: AtomicU64::new(0),
            writer,
        }
    }

    /// Counts one refusal; `reason` is the error code (`missing_api_key`, `invalid_api_key`).
    pub fn record(&self, source: Option<IpAddr>, reason: &'static str) {
        self.record_at(source, reason, now_ms());
    }

    fn record_at(&self, source: Option<IpAddr>, reason: &'static str, now: i64) {
        self.total.fetch_add(1, Ordering::Relaxed);
        let minute = now / MINUTE_MS * MINUTE_MS;
        let finished = {
            let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
            // Only the first refusal of a new minute pays for handing the last one over.
            let finished = if self.minute.swap(minute, Ordering::Relaxed) != minute {
                let previous = std::mem::take(&mut *counts);
                counts.start_ms = minute;
                previous
            } else {
                Minute::default()
            };
            let mut key = source_label(source);
            if counts.by_source.len() >= MAX_SOURCES
                && !counts.by_source.contains_key(&(key.clone(), reason))
            {
                key = OTHER.to_string();
            }
            let count = counts.by_source.entry((key.clone(), reason)).or_insert(0);
            *count += 1;
            if *count == 1 && counts.logged < MAX_LOGGED {
                counts.logged += 1;
                tracing::warn!(
                    source = %key,
                    reason,
                    "unauthenticated request refused (more from this source this minute are counted, not logged)"
                );
            }
            finished
        };
        self.hand_over(finished);
    }

    /// Hands every count held in memory to the writer.
    pub fn flush(&self) {
        let all = std::mem::take(&mut *self.counts.lock().unwrap_or_else(PoisonError::into_inner));
        self.minute.store(0, Ordering::Relaxed);
        self.hand_over(all);
    }

    fn hand_over(&self, minute: Minute) {
        if minute.by_source.is_empty() {
            return;
        }
        let counts = minute
            .by_source
            .into_iter()
            .map(|((source, reason), count)| AuthFailureCount {
                minute_ms: minute.start_ms,
                source,
                reason: reason.to_string(),
                count: count as i64,
            })
            .collect();
        self.writer.submit_auth_failures(counts);
    }

    /// Refusals since start-up.
    pub fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }
}

/// An IPv4 address as it is; an IPv6 one by its /64.
fn source_label(source: Option<IpAddr>) -> String {
    match source {
        None => "unknown".to_string(),
        Some(IpAddr::V4(ip)) => ip.to_string(),
        Some(IpAddr::V6(ip)) => match ip.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = ip.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn held(failures: &AuthFailures) -> HashMap<(String, &'static str), u64> {
        failures
            .counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .by_source
            .clone()
    }

    fn writer() -> Arc<Writer> {
        let (dir, _, opened) = crate::store::open_temp_sqlite();
        // The writer thread outlives the test; so must its file.
        std::mem::forget(dir);
        Arc::new(
            Writer::start(opened.writes, crate::config::StoreConfig::default())
                .unwrap_or_else(|e| panic!("{e}")),
        )
    }

    #[tokio::test]
    async fn sources_are_capped_and_ipv6_counts_by_block() {
        let failures = AuthFailures::new(writer());
        let t = 1_800_000_000_000;
        for i in 0..(MAX_SOURCES as u32 + 50) {
            failures.record_at(Some(IpAddr::V4(Ipv4Addr::from(i))), "missing_api_key", t);
        }
        let counts = held(&failures);
        assert_eq!(counts.len(), MAX_SOURCES + 1);
        assert_eq!(counts[&(OTHER.to_string(), "missing_api_key")], 50);

        let failures = AuthFailures::new(writer());
        for last in 0..100u16 {
            let ip = Ipv6Addr::new(0x2001, 0xdb8, 1, 2, 0, 0, 0, last);
            failures.record_at(Some(IpAddr::V6(ip)), "invalid_api_key", t);
        }
        let counts = held(&failures);
        assert_eq!(counts.len(), 1, "{counts:?}");
        assert_eq!(
            counts[&("2001:db8:1:2::/64".to_string(), "invalid_api_key")],
            100
        );
        assert_eq!(failures.total(), 100);
    }

    #[tokio::test]
    async fn a_new_minute_hands_the_last_one_over() {
        let failures = AuthFailures::new(writer());
        let t = 1_800_000_000_000;
        failures.record_at(None, "missing_api_key", t);
        failures.record_at(None, "missing_api_key", t + 1);
        failures.record_at(None, "missing_api_key", t + MINUTE_MS);
        let counts = held(&failures);
        assert_eq!(counts[&("unknown".to_string(), "missing_api_key")], 1);
        assert_eq!(failures.total(), 3);
    }
}
