//! The flusher of [`super::LeasedCounters`]: one thread per node that reports usage counted in
//! memory to the shared rows every `FLUSH_EVERY_MS` in one batch, renews the leases in use, gives
//! back the idle ones, and now and then drops rows no window reads any more. It takes the same
//! `sync_lock` as a lease step, so the two never send the same share's usage at once.

use std::sync::Weak;
use std::time::Duration;

use super::leased::{
    FLUSH_EVERY_MS, IDLE_RETURN_MS, Inner, LEASE_TTL_MS, Local, PRUNE_EVERY_MS, Sent, apply,
};
use super::shares::ended_for_good;
use crate::store::StoreError;

pub(super) fn flush_loop(inner: &Weak<Inner>) {
    loop {
        std::thread::sleep(Duration::from_millis(FLUSH_EVERY_MS));
        let Some(inner) = inner.upgrade() else {
            return;
        };
        let _guard = inner.sync_lock.blocking_lock();
        if let Err(e) = inner.flush(false) {
            tracing::warn!(error = %e, "cannot report counter usage; retrying");
        }
    }
}

impl Inner {
    /// Reports every pending change, renews the leases in use and gives back idle ones (all,
    /// with `all`). The caller holds `sync_lock`; this blocks on the store.
    pub(super) fn flush(&self, all: bool) -> Result<(), StoreError> {
        let now = self.clock.now_ms();
        let (mut steps, retired, sent) = {
            let mut local = self.lock();
            let retired = std::mem::take(&mut local.retired);
            let steps = self.retired_steps(&retired, now);
            let mut sent = Vec::new();
            let mut out = steps;
            // A share left with nothing, in a bucket no window reads any more, is forgotten.
            local.shares.retain(|(window, _), s| {
                let end = window.bucket_end(s.bucket_start_ms);
                s.pending() || s.left > 0 || !ended_for_good(s.bucket_start_ms, end, now)
            });
            for ((window, key), share) in local.shares.iter_mut() {
                let idle = all || now - share.last_use_ms >= IDLE_RETURN_MS;
                let renew = share.left > 0 && share.db_until_ms - now < LEASE_TTL_MS / 2;
                if !(share.pending() || (share.left > 0 && idle) || renew) {
                    continue;
                }
                let mut step = self.step(key, *window, now, share);
                if idle || now >= share.db_until_ms {
                    step.keep_leased = 0;
                }
                sent.push((
                    Sent {
                        key: (*window, key.clone()),
                        bucket_start_ms: share.bucket_start_ms,
                        unsynced: share.unsynced,
                        extra: share.extra,
                        take: 0,
                    },
                    step.keep_leased,
                    share.left,
                ));
                out.push(step);
            }
            (out, retired, sent)
        };
        let prune = {
            let mut local = self.lock();
            let due = now - local.last_prune_ms >= PRUNE_EVERY_MS;
            if due {
                local.last_prune_ms = now;
            }
            due
        };
        if steps.is_empty() {
            if prune {
                self.store.prune(now)?;
            }
            return Ok(());
        }
        let first_share = retired.len();
        let answers = match self.store.sync(std::mem::take(&mut steps)) {
            Ok(answers) => answers,
            Err(e) => {
                self.lock().retired.extend(retired);
                return Err(e);
            }
        };
        let mut local = self.lock();
        for ((sent, kept, left_sent), answer) in sent.into_iter().zip(&answers[first_share..]) {
            let Some(share) = local.shares.get_mut(&sent.key) else {
                continue;
            };
            if share.bucket_start_ms != sent.bucket_start_ms {
                already_reported(&mut local, &sent);
                continue;
            }
            apply(share, &sent, *answer, now);
            if kept == 0 && left_sent > 0 {
                // Given back: what was handed out of it meanwhile is now counted beyond it.
                share.extra += share.unsynced;
                share.unsynced = 0;
                share.left = 0;
                share.value = answer.total + share.extra;
            }
        }
        drop(local);
        if prune {
            self.store.prune(now)?;
        }
        Ok(())
    }
}

/// A share rolled into a new bucket while its step was out: the usage retired with it includes
/// what the step reported, which must not count twice.
pub(super) fn already_reported(local: &mut Local, sent: &Sent) {
    let (window, key) = &sent.key;
    if let Some(r) = local
        .retired
        .iter_mut()
        .find(|r| r.window == *window && r.key == *key && r.bucket_start_ms == sent.bucket_start_ms)
    {
        r.used_delta -= sent.unsynced + sent.extra;
    }
}
