//! Refused authentications, counted per minute, source address and reason instead of one trace row
//! each: a flood of keyless requests must cost a counter increment, not a row, a log line and a
//! writer slot apiece. The first refusal of a (minute, source, reason) is logged; a minute's counts
//! go to the writer once the minute is over (and whatever is left at shutdown).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::store::writer::Writer;
use crate::store::{AuthFailureCount, now_ms};

const MINUTE_MS: i64 = 60_000;

type Bucket = (i64, Option<IpAddr>, &'static str);

pub struct AuthFailures {
    buckets: Mutex<HashMap<Bucket, u64>>,
    total: AtomicU64,
    writer: Arc<Writer>,
}

impl AuthFailures {
    pub fn new(writer: Arc<Writer>) -> AuthFailures {
        AuthFailures {
            buckets: Mutex::new(HashMap::new()),
            total: AtomicU64::new(0),
            writer,
        }
    }

    /// Counts one refusal; `reason` is the error code (`missing_api_key`, `invalid_api_key`).
    pub fn record(&self, source: Option<IpAddr>, reason: &'static str) {
        self.total.fetch_add(1, Ordering::Relaxed);
        let minute = now_ms() / MINUTE_MS * MINUTE_MS;
        let finished = {
            let Ok(mut buckets) = self.buckets.lock() else {
                return;
            };
            let count = buckets.entry((minute, source, reason)).or_insert(0);
            *count += 1;
            if *count == 1 {
                let source = source.map_or_else(|| "unknown".to_string(), |ip| ip.to_string());
                tracing::warn!(
                    %source,
                    reason,
                    "unauthenticated request refused (more from this source this minute are counted, not logged)"
                );
            }
            if buckets.keys().any(|(m, _, _)| *m < minute) {
                drain(&mut buckets, |m| m < minute)
            } else {
                Vec::new()
            }
        };
        if !finished.is_empty() {
            self.writer.submit_auth_failures(finished);
        }
    }

    /// Hands every count held in memory to the writer.
    pub fn flush(&self) {
        let all = match self.buckets.lock() {
            Ok(mut buckets) => drain(&mut buckets, |_| true),
            Err(_) => return,
        };
        if !all.is_empty() {
            self.writer.submit_auth_failures(all);
        }
    }

    /// Refusals since start-up.
    pub fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }
}

fn drain(buckets: &mut HashMap<Bucket, u64>, take: impl Fn(i64) -> bool) -> Vec<AuthFailureCount> {
    let keys: Vec<Bucket> = buckets
        .keys()
        .filter(|(m, _, _)| take(*m))
        .copied()
        .collect();
    keys.into_iter()
        .filter_map(|key| {
            let count = buckets.remove(&key)?;
            let (minute_ms, source, reason) = key;
            Some(AuthFailureCount {
                minute_ms,
                source: source.map_or_else(|| "unknown".to_string(), |ip| ip.to_string()),
                reason: reason.to_string(),
                count: count as i64,
            })
        })
        .collect()
}
