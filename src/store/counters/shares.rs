//! Counter shares at rest: what several nodes of one store use to hold one limit together.
//!
//! Each node owns one row per counter and bucket: `used` (what it counted and reported) and
//! `leased` (capacity it took to hand out from memory, counted as used by everyone else until
//! `lease_until_ms`). A counter's total is the sum over its nodes of `used` plus every live lease,
//! and one [`CounterStore::sync`] step, atomic per counter and bucket, reports a node's new usage,
//! keeps or gives back its lease, and grants more only while the total stays within the limit.
//! So capacity handed out never passes the limit, however many nodes ask at once; a node that
//! dies holding a lease strands it until `lease_until_ms` only. `counters/leased.rs` is the
//! caller; PostgreSQL implements this in `postgres/counters.rs` (a function of migration 0020),
//! and [`LocalShares`] here is the single-process one (SQLite stores, tests): the same arithmetic
//! under one lock.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::store::StoreError;

/// One node's step on one counter bucket. Amounts are in the counter's unit (requests, tokens,
/// nano-dollars).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShareSync {
    pub counter: String,
    pub node: String,
    pub bucket_start_ms: i64,
    /// When the bucket ends (for pruning; `i64::MAX` never ends).
    pub bucket_end_ms: i64,
    /// For a sliding window, its length: the previous bucket then counts in part (rounded up).
    pub sliding_ms: Option<i64>,
    /// Usage to add to this node's `used` (consumed from the lease, or beyond it).
    pub used_delta: i64,
    /// The part of this node's lease it still holds unused and keeps (0 gives it back).
    pub keep_leased: i64,
    /// Grant at least this much more, or nothing (0: only report).
    pub need: i64,
    /// Beyond `need`, also grant `1/slice_of` of the room the limit leaves after it (0: none).
    /// A slice of what is left, not a fixed batch: as the room shrinks so do the leases, down to
    /// `need` alone, a plain atomic check-and-add.
    pub slice_of: i64,
    pub limit: i64,
    pub now_ms: i64,
    /// Until when this node's lease counts for the others.
    pub lease_until_ms: i64,
}

/// What a [`ShareSync`] left behind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Synced {
    /// Capacity added to the node's lease: 0, or `need` plus its slice.
    pub granted: i64,
    /// The counter's total after the step, every node's live lease included (this one's too).
    pub total: i64,
}

/// Shared counter rows. Methods block; async callers move them off the runtime.
pub trait CounterStore: Send + Sync {
    /// Whether other nodes share these rows (PostgreSQL). A store only one node uses (SQLite)
    /// says no, and the limits keep their in-memory counters, which cost no round trip at all.
    fn is_shared(&self) -> bool;
    /// Applies each step in order, each atomic on its own.
    fn sync(&self, steps: Vec<ShareSync>) -> Result<Vec<Synced>, StoreError>;
    /// Adds `value` as the bucket's starting count, only if no node counted it yet (spend read
    /// from the rollups at start-up: once per bucket, however many nodes start).
    fn seed(
        &self,
        counter: &str,
        bucket_start_ms: i64,
        bucket_end_ms: i64,
        value: i64,
    ) -> Result<bool, StoreError>;
    /// Drops the rows of buckets that no window can count any more; returns how many.
    fn prune(&self, now_ms: i64) -> Result<u64, StoreError>;
}

#[derive(Clone, Copy, Debug, Default)]
struct Row {
    used: i64,
    leased: i64,
    lease_until_ms: i64,
    bucket_end_ms: i64,
}

/// The node id of a seeded starting count.
pub const SEED_NODE: &str = "";

/// Rows in memory: the [`CounterStore`] of a store one process uses.
#[derive(Default)]
pub struct LocalShares {
    /// (counter, bucket start) -> node -> row.
    rows: Mutex<HashMap<(String, i64), HashMap<String, Row>>>,
}

impl LocalShares {
    fn total(
        rows: &HashMap<(String, i64), HashMap<String, Row>>,
        counter: &str,
        start: i64,
        now: i64,
        skip: Option<&str>,
    ) -> i64 {
        rows.get(&(counter.to_string(), start))
            .map(|nodes| {
                nodes
                    .iter()
                    .filter(|(n, _)| Some(n.as_str()) != skip)
                    .map(|(_, r)| r.used + if r.lease_until_ms > now { r.leased } else { 0 })
                    .sum()
            })
            .unwrap_or(0)
    }
}

/// The previous bucket's part still inside a sliding window, rounded up (as `MemoryCounters`).
pub fn sliding_part(previous: i64, length_ms: i64, start_ms: i64, now_ms: i64) -> i64 {
    let length = i128::from(length_ms.max(1));
    let weighted = i128::from(previous) * (length - i128::from(now_ms - start_ms));
    if weighted > 0 {
        ((weighted + length - 1) / length) as i64
    } else {
        (weighted / length) as i64
    }
}

impl CounterStore for LocalShares {
    fn is_shared(&self) -> bool {
        false
    }

    fn sync(&self, steps: Vec<ShareSync>) -> Result<Vec<Synced>, StoreError> {
        // Plain arithmetic under the lock: a poisoned lock still guards whole rows.
        let mut rows = self.rows.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = Vec::with_capacity(steps.len());
        for s in steps {
            let now = s.now_ms;
            // The previous bucket counts its leases whole, live or not: a node reports what it
            // used of one when it rolls over, and until then the estimate errs on refusing.
            let previous = match s.sliding_ms {
                Some(length) => {
                    let prev: i64 = rows
                        .get(&(s.counter.clone(), s.bucket_start_ms - length))
                        .map(|nodes| nodes.values().map(|r| r.used + r.leased).sum())
                        .unwrap_or(0);
                    sliding_part(prev, length, s.bucket_start_ms, now)
                }
                None => 0,
            };
            let others = LocalShares::total(
                &rows,
                &s.counter,
                s.bucket_start_ms,
                now,
                Some(s.node.as_str()),
            );
            let nodes = rows
                .entry((s.counter.clone(), s.bucket_start_ms))
                .or_default();
            let row = nodes.entry(s.node.clone()).or_default();
            row.used += s.used_delta;
            row.leased = s.keep_leased;
            row.lease_until_ms = s.lease_until_ms;
            row.bucket_end_ms = s.bucket_end_ms;
            let room = s.limit.saturating_sub(
                previous
                    .saturating_add(others)
                    .saturating_add(row.used)
                    .saturating_add(row.leased),
            );
            let granted = grant(s.need, s.slice_of, room);
            row.leased += granted;
            out.push(Synced {
                granted,
                total: previous + others + row.used + row.leased,
            });
        }
        Ok(out)
    }

    fn seed(
        &self,
        counter: &str,
        bucket_start_ms: i64,
        bucket_end_ms: i64,
        value: i64,
    ) -> Result<bool, StoreError> {
        let mut rows = self.rows.lock().unwrap_or_else(|p| p.into_inner());
        let nodes = rows
            .entry((counter.to_string(), bucket_start_ms))
            .or_default();
        if !nodes.is_empty() {
            return Ok(false);
        }
        nodes.insert(
            SEED_NODE.to_string(),
            Row {
                used: value,
                bucket_end_ms,
                ..Row::default()
            },
        );
        Ok(true)
    }

    fn prune(&self, now_ms: i64) -> Result<u64, StoreError> {
        let mut rows = self.rows.lock().unwrap_or_else(|p| p.into_inner());
        let before = rows.len();
        rows.retain(|(_, start), nodes| {
            let end = nodes.values().map(|r| r.bucket_end_ms).max().unwrap_or(0);
            !ended_for_good(*start, end, now_ms)
        });
        Ok((before - rows.len()) as u64)
    }
}

/// What a step grants when the limit leaves `room`: nothing when `need` does not fit, else
/// `need` and a slice of what is left after it.
pub fn grant(need: i64, slice_of: i64, room: i64) -> i64 {
    if need <= 0 && slice_of <= 0 {
        return 0;
    }
    if room < need.max(0) {
        return 0;
    }
    let after = room - need.max(0);
    let slice = if slice_of > 0 { after / slice_of } else { 0 };
    need.max(0) + slice
}

/// Whether a bucket can no longer count: a window after it ended too (a sliding window reads the
/// bucket before its own).
pub fn ended_for_good(start_ms: i64, end_ms: i64, now_ms: i64) -> bool {
    end_ms != i64::MAX && end_ms.saturating_add(end_ms - start_ms) <= now_ms
}
