//! The conformance suite every [`HotCounters`] implementation runs, written once:
//! `hot_counters_suite!(name, |clock: Arc<ManualClock>| make(clock))` expands to one test per
//! case below. A shared implementation adds one such line; its constructor must take its time
//! from the given clock so expiry is tested without sleeping.

use std::sync::Arc;

use super::{HotCounters, ManualClock, ReserveError, Window};

/// Starts at a minute boundary so bucket arithmetic below reads plainly.
pub const T0: i64 = 1_700_000_040_000;

pub async fn add_and_read<C: HotCounters>(c: Arc<C>, _clock: Arc<ManualClock>) {
    let w = Window::fixed_ms(60_000);
    assert_eq!(c.add("a", 2, w).await.ok(), Some(2));
    assert_eq!(c.add("a", -1, w).await.ok(), Some(1));
    assert_eq!(c.read("a", w).await.ok(), Some(1));
    assert_eq!(c.read("missing", w).await.ok(), Some(0));
    // The same key under another window is another counter.
    assert_eq!(c.read("a", Window::fixed_ms(1_000)).await.ok(), Some(0));
}

pub async fn fixed_window_resets_at_its_boundary<C: HotCounters>(
    c: Arc<C>,
    clock: Arc<ManualClock>,
) {
    let w = Window::fixed_ms(60_000);
    let _ = c.add("k", 5, w).await;
    clock.advance(59_999);
    assert_eq!(c.read("k", w).await.ok(), Some(5));
    clock.advance(1);
    assert_eq!(c.read("k", w).await.ok(), Some(0));
    assert_eq!(c.add("k", 1, w).await.ok(), Some(1));
}

pub async fn sliding_window_fades_the_previous_bucket<C: HotCounters>(
    c: Arc<C>,
    clock: Arc<ManualClock>,
) {
    let w = Window::sliding_ms(1_000);
    let _ = c.add("k", 10, w).await;
    clock.advance(1_000);
    assert_eq!(
        c.read("k", w).await.ok(),
        Some(10),
        "all of it still inside"
    );
    clock.advance(500);
    assert_eq!(
        c.read("k", w).await.ok(),
        Some(5),
        "half of it left the window"
    );
    let _ = c.add("k", 3, w).await;
    assert_eq!(c.read("k", w).await.ok(), Some(8));
    clock.advance(500);
    assert_eq!(
        c.read("k", w).await.ok(),
        Some(3),
        "the first bucket is gone"
    );
    clock.advance(2_000);
    assert_eq!(c.read("k", w).await.ok(), Some(0));
}

pub async fn reserve_refuses_past_the_limit<C: HotCounters>(c: Arc<C>, _clock: Arc<ManualClock>) {
    let w = Window::fixed_ms(60_000);
    let held = c.reserve("k", 7, 10, w).await;
    assert_eq!(held.map(|r| r.value).ok(), Some(7));
    match c.reserve("k", 4, 10, w).await {
        Err(ReserveError::Exceeded(over)) => {
            assert_eq!((over.current, over.amount, over.limit), (7, 4, 10));
        }
        other => panic!("expected Exceeded, got {other:?}"),
    }
    assert_eq!(c.read("k", w).await.ok(), Some(7), "a refusal adds nothing");
    assert!(
        c.reserve("k", 3, 10, w).await.is_ok(),
        "exactly the limit is allowed"
    );
}

pub async fn settle_adjusts_usage_up_and_down<C: HotCounters>(c: Arc<C>, _clock: Arc<ManualClock>) {
    let w = Window::fixed_ms(60_000);
    let Ok(low) = c.reserve("k", 10, 100, w).await else {
        panic!("first reserve refused");
    };
    let Ok(high) = c.reserve("k", 10, 100, w).await else {
        panic!("second reserve refused");
    };
    assert_eq!(c.settle(low, 4).await.ok(), Some(14));
    // Settling over the limit is allowed: the work was done.
    assert_eq!(c.settle(high, 150).await.ok(), Some(154));
    let Ok(dropped) = c.reserve("j", 30, 100, w).await else {
        panic!("reserve refused");
    };
    assert_eq!(c.release(dropped).await.ok(), Some(0));
}

pub async fn settle_after_the_window_left_changes_nothing<C: HotCounters>(
    c: Arc<C>,
    clock: Arc<ManualClock>,
) {
    let w = Window::fixed_ms(1_000);
    let Ok(held) = c.reserve("k", 10, 100, w).await else {
        panic!("reserve refused");
    };
    clock.advance(1_000);
    let _ = c.add("k", 2, w).await;
    assert_eq!(c.settle(held, 50).await.ok(), Some(2));
}

pub async fn calendar_windows_reset_at_the_period_start<C: HotCounters>(
    c: Arc<C>,
    clock: Arc<ManualClock>,
) {
    use super::CalendarUnit;
    use super::calendar::days_from_civil;
    let day = 86_400_000;
    // Friday 2026-01-30, noon UTC.
    clock.set(days_from_civil(2026, 1, 30) * day + day / 2);
    let month = Window::Calendar(CalendarUnit::Month);
    let week = Window::Calendar(CalendarUnit::Week);
    let total = Window::Calendar(CalendarUnit::Total);
    for w in [month, week, total] {
        let _ = c.add("spend", 5, w).await;
    }
    // Sunday 2026-02-01: a new month, the same week (weeks start on Monday).
    clock.advance(2 * day);
    assert_eq!(c.read("spend", month).await.ok(), Some(0));
    assert_eq!(c.read("spend", week).await.ok(), Some(5));
    // Monday 2026-02-02: a new week.
    clock.advance(day);
    assert_eq!(c.read("spend", week).await.ok(), Some(0));
    clock.advance(400 * day);
    assert_eq!(
        c.read("spend", total).await.ok(),
        Some(5),
        "a total never resets"
    );
}

pub async fn concurrent_reserves_never_overshoot<C: HotCounters + 'static>(
    c: Arc<C>,
    _clock: Arc<ManualClock>,
) {
    let w = Window::sliding_ms(60_000);
    let limit = 37;
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let c = c.clone();
            tokio::spawn(async move { c.reserve("burst", 1, limit, w).await.is_ok() })
        })
        .collect();
    let mut granted = 0;
    for task in tasks {
        if task.await.unwrap_or(false) {
            granted += 1;
        }
    }
    assert_eq!(granted, limit);
    assert_eq!(c.read("burst", w).await.ok(), Some(limit));

    // Uneven amounts: whatever interleaving, the granted total stays within the limit.
    let tasks: Vec<_> = (0..100)
        .map(|i| {
            let c = c.clone();
            let amount = 1 + (i % 7);
            tokio::spawn(async move {
                c.reserve("uneven", amount, 100, w)
                    .await
                    .map_or(0, |r| r.amount)
            })
        })
        .collect();
    let mut total = 0;
    for task in tasks {
        total += task.await.unwrap_or(0);
    }
    assert!(total <= 100, "granted {total} over a limit of 100");
    assert_eq!(c.read("uneven", w).await.ok(), Some(total));
}

/// Expands to one `#[tokio::test]` per case, each with a fresh counter set on a fresh clock.
#[macro_export]
macro_rules! hot_counters_suite {
    ($name:ident, $make:expr) => {
        mod $name {
            use std::sync::Arc;

            use super::*;
            use $crate::store::counters::ManualClock;
            use $crate::store::counters::suite as s;

            fn fresh() -> (Arc<impl $crate::store::counters::HotCounters + 'static>, Arc<ManualClock>) {
                let clock = Arc::new(ManualClock::at(s::T0));
                #[allow(clippy::redundant_closure_call)]
                let counters = Arc::new(($make)(clock.clone()));
                (counters, clock)
            }

            $crate::hot_counters_suite!(@cases
                add_and_read,
                fixed_window_resets_at_its_boundary,
                sliding_window_fades_the_previous_bucket,
                reserve_refuses_past_the_limit,
                settle_adjusts_usage_up_and_down,
                settle_after_the_window_left_changes_nothing,
                calendar_windows_reset_at_the_period_start,
                concurrent_reserves_never_overshoot,
            );
        }
    };
    (@cases $($case:ident,)*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let (counters, clock) = fresh();
                s::$case(counters, clock).await;
            }
        )*
    };
}
