//! Store suite cases for counter shares (`counters/shares.rs`), listed in `suite.rs`'s
//! `store_suite!` so every backend runs them: the PostgreSQL function and the in-memory rows of a
//! SQLite store must do the same arithmetic.

use super::counters::shares::{ShareSync, Synced};
use super::suite::opened;
use super::*;

fn step(counter: &str, node: &str, now: i64) -> ShareSync {
    ShareSync {
        counter: counter.into(),
        node: node.into(),
        bucket_start_ms: 0,
        bucket_end_ms: 60_000,
        sliding_ms: None,
        used_delta: 0,
        keep_leased: 0,
        need: 0,
        slice_of: 0,
        limit: i64::MAX,
        now_ms: now,
        lease_until_ms: now + 10_000,
    }
}

fn one(store: &Store, s: ShareSync) -> Synced {
    let answers = store
        .counters
        .sync(vec![s])
        .unwrap_or_else(|e| panic!("sync: {e}"));
    answers[0]
}

pub fn counter_shares_lease_within_the_limit_across_nodes(url: &StoreUrl) {
    let store = opened(url).store;
    assert_eq!(store.counters.is_shared(), url.backend() == "postgres");
    let ask = |node: &str, need: i64, keep: i64, used: i64, now: i64| ShareSync {
        need,
        keep_leased: keep,
        used_delta: used,
        limit: 10,
        ..step("rpm:key:a", node, now)
    };
    assert_eq!(
        one(&store, ask("a", 5, 0, 0, 0)),
        Synced {
            granted: 5,
            total: 5
        }
    );
    // Node b's need does not fit beside a's lease: nothing is granted, nothing changes.
    assert_eq!(
        one(&store, ask("b", 6, 0, 0, 1)),
        Synced {
            granted: 0,
            total: 5
        }
    );
    assert_eq!(one(&store, ask("b", 5, 0, 0, 2)).granted, 5);
    // a reports its lease used and gives nothing back: the total stays at the limit.
    assert_eq!(one(&store, ask("a", 0, 0, 5, 3)).total, 10);
    assert_eq!(one(&store, ask("c", 1, 0, 0, 4)).granted, 0);
    // b stops renewing (it died): its lease stops counting once it expires.
    assert_eq!(
        one(&store, ask("c", 5, 0, 0, 10_003)),
        Synced {
            granted: 5,
            total: 10
        }
    );

    // A slice of the room beyond the need, shrinking with the room down to the need alone.
    let sliced = |need: i64, now: i64| ShareSync {
        need,
        slice_of: 8,
        limit: 81,
        keep_leased: 0,
        ..step("tpm:key:s", "d", now)
    };
    assert_eq!(one(&store, sliced(1, 0)).granted, 1 + 10);
    let mut keep = ShareSync {
        used_delta: 11,
        ..sliced(60, 1)
    };
    // 81 - 11 used = 70 room: 60 and a slice of the 10 left (1).
    assert_eq!(one(&store, keep.clone()).granted, 61);
    keep.used_delta = 0;
    keep.keep_leased = 61;
    keep.need = 9;
    assert_eq!(
        one(&store, keep).granted,
        9,
        "no slice left: the need alone"
    );

    // A sliding window counts the previous bucket in part, rounded up.
    let prev = ShareSync {
        used_delta: 10,
        ..step("rpm:key:w", "a", 500)
    };
    one(&store, prev);
    let now = ShareSync {
        bucket_start_ms: 60_000,
        bucket_end_ms: 120_000,
        sliding_ms: Some(60_000),
        ..step("rpm:key:w", "b", 90_000)
    };
    assert_eq!(one(&store, now).total, 5);

    // A seed counts once per bucket, and only where no node counted yet.
    assert_eq!(
        store.counters.seed("spend:x", 0, 60_000, 7).ok(),
        Some(true)
    );
    assert_eq!(
        store.counters.seed("spend:x", 0, 60_000, 7).ok(),
        Some(false)
    );
    assert_eq!(
        store.counters.seed("rpm:key:a", 0, 60_000, 7).ok(),
        Some(false)
    );
    assert_eq!(one(&store, step("spend:x", "a", 10)).total, 7);

    // Buckets no window reads any more are dropped; a total's never.
    assert_eq!(
        store.counters.seed("spend:total", 0, i64::MAX, 3).ok(),
        Some(true)
    );
    let dropped = store.counters.prune(1_000_000).unwrap_or(0);
    assert!(dropped >= 1, "{dropped}");
    assert_eq!(one(&store, step("spend:x", "a", 1_000_000)).total, 0);
    let total = ShareSync {
        bucket_end_ms: i64::MAX,
        ..step("spend:total", "a", 1_000_000)
    };
    assert_eq!(one(&store, total).total, 3);
}
