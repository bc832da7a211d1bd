//! `LeasedCounters`: the [`HotCounters`] of a node sharing its store with others. Limits hold
//! across the nodes through shared counter rows (`shares.rs`), without a round trip per request:
//! a node takes a lease of capacity from a counter's shared row and admits requests from it in
//! memory, as `MemoryCounters` would; it goes back to the store only when its lease runs short.
//!
//! - **Leases never pass the limit.** A lease is granted atomically against the total of every
//!   node's usage and live leases, so what all nodes admit stays within the limit, as on one node:
//!   the only overshoot left is what a request costs beyond its own estimate (the README's bound).
//! - **A lease is a slice of what is left** (`1/LEASE_SLICE_OF` of the room beyond the request's
//!   need), so it shrinks as the counter fills, down to the request alone: a plain atomic
//!   check-and-add in the store.
//! - **Usage reaches the store within `FLUSH_EVERY_MS`**: settles and adds are counted in memory
//!   and reported by a flusher thread in one batch (and before any read). A lease idle for
//!   `IDLE_RETURN_MS` is given back; one a node stops renewing (it died) stops counting for the
//!   others after `LEASE_TTL_MS`. A node serves from a lease only until half that time has
//!   passed since the store last renewed it, so clocks up to `LEASE_TTL_MS / 2` apart are safe.
//!
//! One step with the store runs at a time (`sync_lock`), so a lease's accounting is read, sent and
//! applied whole; the admitting path takes only the in-memory lock.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;

use super::shares::{CounterStore, ShareSync, Synced};
use super::{Clock, Exceeded, HotCounters, Reservation, ReserveError, SystemClock, Window};
use crate::store::{Store, StoreError};

/// How long the store counts a lease its node no longer renews.
pub const LEASE_TTL_MS: i64 = 10_000;
/// A lease unused this long goes back to the store.
pub const IDLE_RETURN_MS: i64 = 1_000;
/// How often usage counted in memory is reported.
pub const FLUSH_EVERY_MS: u64 = 200;
/// A lease takes this fraction of the room left beyond the request's own need.
pub const LEASE_SLICE_OF: i64 = 8;
/// How often rows of buckets over for good are dropped.
pub(super) const PRUNE_EVERY_MS: i64 = 60_000;

pub struct LeasedCounters {
    inner: Arc<Inner>,
}

pub(super) struct Inner {
    pub(super) store: Arc<dyn CounterStore>,
    pub(super) clock: Arc<dyn Clock>,
    node: String,
    pub(super) local: Mutex<Local>,
    /// One step with the store at a time.
    pub(super) sync_lock: tokio::sync::Mutex<()>,
}

#[derive(Default)]
pub(super) struct Local {
    pub(super) shares: HashMap<(Window, String), Share>,
    /// Usage of buckets this node rolled past, still to report.
    pub(super) retired: Vec<Retired>,
    pub(super) last_prune_ms: i64,
}

/// This node's part of one counter in its current bucket.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Share {
    pub(super) bucket_start_ms: i64,
    /// Leased capacity not handed out yet.
    pub(super) left: i64,
    /// Handed out of the lease, not reported yet (the store counts it as leased meanwhile).
    pub(super) unsynced: i64,
    /// Counted beyond the lease (a settle over its estimate, an add), not reported yet.
    pub(super) extra: i64,
    /// The counter's value as this node last learnt it, its own unused lease left out, plus its
    /// own changes since.
    pub(super) value: i64,
    /// Until when the store counts this node's lease.
    pub(super) db_until_ms: i64,
    pub(super) last_use_ms: i64,
}

impl Share {
    pub(super) fn serves(&self, now: i64) -> bool {
        now < self.db_until_ms - LEASE_TTL_MS / 2
    }

    pub(super) fn pending(&self) -> bool {
        self.unsynced != 0 || self.extra != 0
    }
}

#[derive(Clone, Debug)]
pub(super) struct Retired {
    pub(super) key: String,
    pub(super) window: Window,
    pub(super) bucket_start_ms: i64,
    pub(super) used_delta: i64,
}

/// What a step sent for one share, to apply its answer.
pub(super) struct Sent {
    pub(super) key: (Window, String),
    pub(super) bucket_start_ms: i64,
    pub(super) unsynced: i64,
    pub(super) extra: i64,
    /// What the node asked for itself (taken from the lease once granted).
    pub(super) take: i64,
}

impl LeasedCounters {
    /// Counters on `store`'s shared rows as node `node`, with a flusher thread that stops when
    /// the counters are dropped.
    pub fn start(
        store: Arc<dyn CounterStore>,
        clock: Arc<dyn Clock>,
        node: String,
    ) -> LeasedCounters {
        let inner = Arc::new(Inner {
            store,
            clock,
            node,
            local: Mutex::default(),
            sync_lock: tokio::sync::Mutex::new(()),
        });
        let weak = Arc::downgrade(&inner);
        let started = std::thread::Builder::new()
            .name("counter-flush".into())
            .spawn(move || super::flush::flush_loop(&weak));
        if let Err(e) = started {
            // Usage then reaches the store at each lease step and read instead.
            tracing::warn!(error = %e, "cannot start the counter flusher");
        }
        LeasedCounters { inner }
    }

    /// Reports what is pending and gives every lease back (at shutdown).
    pub async fn give_back(&self) {
        let _guard = self.inner.sync_lock.lock().await;
        let inner = self.inner.clone();
        let _ = tokio::task::spawn_blocking(move || inner.flush(true)).await;
    }
}

impl Inner {
    pub(super) fn lock(&self) -> MutexGuard<'_, Local> {
        // Every change under it is plain arithmetic: a poisoned lock still guards whole values.
        self.local.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn step(&self, key: &str, window: Window, now: i64, share: &Share) -> ShareSync {
        let start = share.bucket_start_ms;
        ShareSync {
            counter: shared_name(key, window),
            node: self.node.clone(),
            bucket_start_ms: start,
            bucket_end_ms: window.bucket_end(start),
            sliding_ms: match window {
                Window::Sliding { length_ms } => Some(length_ms),
                _ => None,
            },
            used_delta: share.unsynced + share.extra,
            keep_leased: share.left,
            need: 0,
            slice_of: 0,
            limit: i64::MAX,
            now_ms: now,
            lease_until_ms: now.saturating_add(LEASE_TTL_MS),
        }
    }

    pub(super) fn retired_steps(&self, retired: &[Retired], now: i64) -> Vec<ShareSync> {
        retired
            .iter()
            .map(|r| {
                let share = Share {
                    bucket_start_ms: r.bucket_start_ms,
                    unsynced: r.used_delta,
                    ..Share::default()
                };
                self.step(&r.key, r.window, now, &share)
            })
            .collect()
    }
}

/// Applies the store's answer to a step sent for `share` (which may have changed meanwhile: the
/// admitting path takes from the lease without waiting for a step).
pub(super) fn apply(share: &mut Share, sent: &Sent, answer: Synced, now: i64) {
    share.unsynced -= sent.unsynced;
    share.extra -= sent.extra;
    share.left += answer.granted;
    share.db_until_ms = now.saturating_add(LEASE_TTL_MS);
    // The store counts this node's lease as `left + unsynced`: the value leaves `left` out
    // and adds what is counted beyond the lease and not reported yet.
    share.value = answer.total - share.left + share.extra;
    if sent.take > 0 && answer.granted > 0 {
        share.left -= sent.take;
        share.unsynced += sent.take;
        share.value += sent.take;
    }
}

/// A counter's row name: its key and its window, since one key counts separately per window
/// (`rpm:key:k_1@f60000`, `spend:team:t_1:day@day`).
pub fn shared_name(key: &str, window: Window) -> String {
    let tag = match window {
        Window::Fixed { length_ms } => format!("f{length_ms}"),
        Window::Sliding { length_ms } => format!("s{length_ms}"),
        Window::Calendar(unit) => match unit {
            super::CalendarUnit::Day => "day".to_string(),
            super::CalendarUnit::Week => "week".to_string(),
            super::CalendarUnit::Month => "month".to_string(),
            super::CalendarUnit::Total => "total".to_string(),
        },
    };
    let mut name = String::with_capacity(key.len() + tag.len() + 1);
    name.push_str(key);
    name.push('@');
    name.push_str(&tag);
    name
}

/// The share of `(key, window)` in the bucket holding `now`; a share of an older bucket is
/// retired first (its usage still to report).
pub(super) fn share_mut<'a>(
    local: &'a mut Local,
    key: &str,
    window: Window,
    now: i64,
) -> &'a mut Share {
    let start = window.bucket_start(now);
    let lookup = (window, key.to_string());
    let share = local.shares.entry(lookup).or_insert(Share {
        bucket_start_ms: start,
        last_use_ms: now,
        ..Share::default()
    });
    if share.bucket_start_ms != start {
        let old = std::mem::replace(
            share,
            Share {
                bucket_start_ms: start,
                last_use_ms: now,
                ..Share::default()
            },
        );
        if old.pending() || old.left > 0 {
            local.retired.push(Retired {
                key: key.to_string(),
                window,
                bucket_start_ms: old.bucket_start_ms,
                used_delta: old.unsynced + old.extra,
            });
        }
    }
    share
}

impl LeasedCounters {
    async fn blocking_sync(&self, steps: Vec<ShareSync>) -> Result<Vec<Synced>, StoreError> {
        let store = self.inner.store.clone();
        tokio::task::spawn_blocking(move || store.sync(steps))
            .await
            .map_err(|e| StoreError::Backend(format!("counter step stopped: {e}")))?
    }

    /// One step for `(key, window)` asking for `take` (0: only report and learn the value),
    /// with the retired buckets' reports ahead of it. The caller holds `sync_lock`.
    async fn step_once(
        &self,
        key: &str,
        window: Window,
        take: i64,
        limit: i64,
    ) -> Result<(Synced, Share, bool), StoreError> {
        let inner = &self.inner;
        let now = inner.clock.now_ms();
        let (steps, retired, sent) = {
            let mut local = inner.lock();
            let share = share_mut(&mut local, key, window, now);
            if now >= share.db_until_ms && share.left > 0 {
                // The store no longer counts this lease: what is left of it is gone.
                share.left = 0;
            }
            let mut step = inner.step(key, window, now, share);
            if take > 0 {
                step.need = (take - share.left).max(0);
                step.slice_of = LEASE_SLICE_OF;
                step.limit = limit;
            }
            let sent = Sent {
                key: (window, key.to_string()),
                bucket_start_ms: share.bucket_start_ms,
                unsynced: share.unsynced,
                extra: share.extra,
                take,
            };
            let retired = std::mem::take(&mut local.retired);
            let mut steps = inner.retired_steps(&retired, now);
            steps.push(step);
            (steps, retired, sent)
        };
        let answers = match self.blocking_sync(steps).await {
            Ok(answers) => answers,
            Err(e) => {
                inner.lock().retired.extend(retired);
                return Err(e);
            }
        };
        let Some(answer) = answers.last().copied() else {
            return Err(StoreError::Backend("a counter step had no answer".into()));
        };
        let mut local = inner.lock();
        let rolled = local
            .shares
            .get(&sent.key)
            .is_some_and(|s| s.bucket_start_ms != sent.bucket_start_ms);
        if rolled {
            super::flush::already_reported(&mut local, &sent);
        }
        // The time now, not the step's: a share is never rolled back into an older bucket.
        let share = share_mut(&mut local, key, window, inner.clock.now_ms());
        let mut taken = false;
        if share.bucket_start_ms == sent.bucket_start_ms {
            apply(share, &sent, answer, now);
            taken = take > 0 && answer.granted > 0;
            // A renewal of a lease that already covered the request grants nothing it needs.
            if take > 0 && answer.granted == 0 && share.left >= take {
                share.left -= take;
                share.unsynced += take;
                share.value += take;
                taken = true;
            }
            share.last_use_ms = now;
        }
        Ok((answer, *share, taken))
    }
}

#[async_trait]
impl HotCounters for LeasedCounters {
    async fn add(&self, key: &str, delta: i64, window: Window) -> Result<i64, StoreError> {
        let now = self.inner.clock.now_ms();
        let mut local = self.inner.lock();
        let share = share_mut(&mut local, key, window, now);
        share.extra += delta;
        share.value += delta;
        Ok(share.value)
    }

    async fn read(&self, key: &str, window: Window) -> Result<i64, StoreError> {
        let _guard = self.inner.sync_lock.lock().await;
        let (_, share, _) = self.step_once(key, window, 0, i64::MAX).await?;
        Ok(share.value)
    }

    async fn reserve(
        &self,
        key: &str,
        amount: i64,
        limit: i64,
        window: Window,
    ) -> Result<Reservation, ReserveError> {
        let amount = amount.max(0);
        if let Some(r) = self.take_from_lease(key, amount, window) {
            return Ok(r);
        }
        let _guard = self.inner.sync_lock.lock().await;
        // Another request's step may have refilled the lease while this one waited.
        if let Some(r) = self.take_from_lease(key, amount, window) {
            return Ok(r);
        }
        if amount == 0 {
            let (_, share, _) = self.step_once(key, window, 0, limit).await?;
            return Ok(Reservation {
                key: key.to_string(),
                window,
                amount,
                bucket_start_ms: share.bucket_start_ms,
                value: share.value,
            });
        }
        let mut tries = 0;
        loop {
            let start = window.bucket_start(self.inner.clock.now_ms());
            let (_, share, taken) = self.step_once(key, window, amount, limit).await?;
            if taken {
                return Ok(Reservation {
                    key: key.to_string(),
                    window,
                    amount,
                    bucket_start_ms: share.bucket_start_ms,
                    value: share.value,
                });
            }
            // A window that turned over during the step: ask again in the new one.
            tries += 1;
            if share.bucket_start_ms != start && tries < 2 {
                continue;
            }
            return Err(ReserveError::Exceeded(Exceeded {
                key: key.to_string(),
                current: share.value,
                amount,
                limit,
            }));
        }
    }

    async fn settle(&self, reservation: Reservation, actual: i64) -> Result<i64, StoreError> {
        let now = self.inner.clock.now_ms();
        let window = reservation.window;
        let diff = actual.saturating_sub(reservation.amount);
        let mut local = self.inner.lock();
        let share = share_mut(&mut local, &reservation.key, window, now);
        if share.bucket_start_ms == reservation.bucket_start_ms {
            if diff < 0 {
                // Freed capacity goes back to the lease: the store counts it either way.
                share.left -= diff;
                share.unsynced += diff;
            } else {
                let from_lease = diff.min(share.left.max(0));
                share.left -= from_lease;
                share.unsynced += from_lease;
                share.extra += diff - from_lease;
            }
            share.value += diff;
            share.last_use_ms = now;
            return Ok(share.value);
        }
        let value = share.value;
        if diff != 0 {
            local.retired.push(Retired {
                key: reservation.key,
                window,
                bucket_start_ms: reservation.bucket_start_ms,
                used_delta: diff,
            });
        }
        Ok(value)
    }

    async fn seed(&self, key: &str, value: i64, window: Window) -> Result<(), StoreError> {
        let start = window.bucket_start(self.inner.clock.now_ms());
        // At start-up, off the request path: the store is asked directly.
        self.inner
            .store
            .seed(
                &shared_name(key, window),
                start,
                window.bucket_end(start),
                value,
            )
            .map(|_| ())
    }

    fn shared(&self) -> bool {
        true
    }
}

impl LeasedCounters {
    /// Takes `amount` from this node's lease of `(key, window)`, if it holds that much and the
    /// store still counts it.
    fn take_from_lease(&self, key: &str, amount: i64, window: Window) -> Option<Reservation> {
        let now = self.inner.clock.now_ms();
        let mut local = self.inner.lock();
        let share = share_mut(&mut local, key, window, now);
        if !share.serves(now) || share.left < amount {
            return None;
        }
        share.left -= amount;
        share.unsynced += amount;
        share.value += amount;
        share.last_use_ms = now;
        Some(Reservation {
            key: key.to_string(),
            window,
            amount,
            bucket_start_ms: share.bucket_start_ms,
            value: share.value,
        })
    }
}

/// This process's counters for limits: leased ones on a store shared between nodes (one set, and
/// one flusher, for every module), `None` on a store one node uses.
pub struct NodeCounters(pub Option<Arc<LeasedCounters>>);

impl NodeCounters {
    pub fn of(store: &Store) -> NodeCounters {
        if !store.counters.is_shared() {
            return NodeCounters(None);
        }
        let node = format!("{}-{:016x}", std::process::id(), fastrand::u64(..));
        NodeCounters(Some(Arc::new(LeasedCounters::start(
            store.counters.clone(),
            Arc::new(SystemClock),
            node,
        ))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::counters::ManualClock;
    use crate::store::counters::shares::LocalShares;

    crate::hot_counters_suite!(leased_local, |clock: Arc<ManualClock>| {
        LeasedCounters::start(Arc::new(LocalShares::default()), clock, "n1".into())
    });

    const T0: i64 = crate::store::counters::suite::T0;

    fn node(shares: &Arc<LocalShares>, clock: &Arc<ManualClock>, id: &str) -> LeasedCounters {
        LeasedCounters::start(shares.clone(), clock.clone(), id.into())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_nodes_together_never_admit_past_the_limit() {
        let shares = Arc::new(LocalShares::default());
        let clock = Arc::new(ManualClock::at(T0));
        let nodes = [
            Arc::new(node(&shares, &clock, "a")),
            Arc::new(node(&shares, &clock, "b")),
        ];
        let w = Window::fixed_ms(60_000);
        let tasks: Vec<_> = (0..100)
            .map(|i| {
                let c = nodes[i % 2].clone();
                tokio::spawn(async move { c.reserve("burst", 1, 37, w).await.is_ok() })
            })
            .collect();
        let mut granted = 0;
        for task in tasks {
            granted += usize::from(task.await.unwrap_or(false));
        }
        assert_eq!(granted, 37);
        // Each node's reads count the other's usage and lease.
        assert_eq!(nodes[0].read("burst", w).await.ok(), Some(37));
    }

    #[tokio::test]
    async fn a_dead_nodes_lease_stops_counting_after_its_ttl() {
        let shares = Arc::new(LocalShares::default());
        let clock = Arc::new(ManualClock::at(T0));
        let w = Window::fixed_ms(60_000);
        let a = node(&shares, &clock, "a");
        // 1 and an eighth of the 99 left: a holds 13.
        assert!(a.reserve("k", 1, 100, w).await.is_ok());
        let b = node(&shares, &clock, "b");
        assert!(b.reserve("k", 88, 100, w).await.is_err());
        assert!(b.reserve("k", 87, 100, w).await.is_ok());
        drop(a);
        clock.advance(LEASE_TTL_MS);
        // a never reported its 1 (it died within the flush interval): forgotten with its lease.
        assert!(b.reserve("k", 13, 100, w).await.is_ok());
    }

    #[tokio::test]
    async fn an_idle_lease_goes_back_and_usage_is_reported() {
        let shares = Arc::new(LocalShares::default());
        let clock = Arc::new(ManualClock::at(T0));
        let w = Window::fixed_ms(60_000);
        let a = node(&shares, &clock, "a");
        let Ok(held) = a.reserve("k", 10, 100, w).await else {
            panic!("refused")
        };
        assert_eq!(a.settle(held, 4).await.ok(), Some(4));
        clock.advance(IDLE_RETURN_MS);
        {
            let _guard = a.inner.sync_lock.lock().await;
            assert!(a.inner.flush(false).is_ok());
        }
        let b = node(&shares, &clock, "b");
        // All of a's lease went back: only its usage counts.
        assert!(b.reserve("k", 96, 100, w).await.is_ok());
        assert!(b.reserve("k", 1, 100, w).await.is_err());
    }
}
