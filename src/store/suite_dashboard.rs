//! The store suite's cases for the console's queries (`dashboard.rs`): keyset pages and filters,
//! and the hourly and daily roll-ups read back over ranges that cut days, with a retried batch
//! counted once and a crash's unwritten roll-ups rebuilt at the next open. Part of `suite.rs`'s `store_suite!`, so every backend runs them.

use super::dashboard::{Dimension, HOUR_MS, OverviewQuery, StatusFilter, TraceFilter};
use super::suite::key;
use super::*;

fn at(i: i64, base: i64) -> TraceRecord {
    TraceRecord {
        id: format!("t{i:04}"),
        ts_ms: base + i * 17 * 60_000, // every 17 minutes: hours and days are cut unevenly
        endpoint: "/v1/chat/completions".into(),
        requested_model: if i % 3 == 0 { "big" } else { "small" }.into(),
        provider: Some(if i % 2 == 0 { "p1" } else { "p2" }.into()),
        status: if i % 10 == 0 { 502 } else { 200 },
        latency_us: 1_000 * (i + 1),
        ttft_us: (i % 2 == 0).then_some(500 * (i + 1)),
        cost_nanos: 1_000 + i,
        request_id: format!("req{i}"),
        key_id: Some(format!("k{}", i % 4)),
        attempts: 1,
        ..TraceRecord::default()
    }
}

pub fn dashboard_pages_by_keyset_and_rolls_up_hours_and_days(url: &StoreUrl) {
    let mut opened = open(url, key()).unwrap_or_else(|e| panic!("open: {e}"));
    // Midnight UTC plus some hours, three days back.
    let base = day_start(now_ms()) - 3 * 86_400_000 + 5 * HOUR_MS;
    let all: Vec<TraceRecord> = (0..200).map(|i| at(i, base)).collect();
    let (first, second) = all.split_at(120);
    opened
        .writes
        .append_traces(first)
        .unwrap_or_else(|e| panic!("{e}"));
    // A crash: the first batch's roll-ups were only in memory; opening again adds them.
    drop(opened);
    let mut opened = open(url, key()).unwrap_or_else(|e| panic!("open: {e}"));
    opened
        .writes
        .append_traces(second)
        .unwrap_or_else(|e| panic!("{e}"));
    // A retried batch adds nothing, to the traces or the roll-ups.
    opened
        .writes
        .append_traces(second)
        .unwrap_or_else(|e| panic!("{e}"));
    opened
        .writes
        .flush_rollups()
        .unwrap_or_else(|e| panic!("{e}"));
    let store = opened.store.dashboard.clone();

    // Pages of 7, newest first, every row once.
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .trace_page(&TraceFilter::default(), after, 7)
            .unwrap_or_else(|e| panic!("{e}"));
        seen.extend(page.rows.iter().map(|r| r.id.clone()));
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    let mut expected: Vec<String> = all.iter().map(|t| t.id.clone()).collect();
    expected.reverse();
    assert_eq!(seen, expected);

    let errors = store
        .trace_page(
            &TraceFilter {
                status: Some(StatusFilter::Errors),
                model: Some("big".into()),
                ..TraceFilter::default()
            },
            None,
            100,
        )
        .unwrap_or_else(|e| panic!("{e}"));
    let want = all
        .iter()
        .filter(|t| t.status >= 400 && t.requested_model == "big")
        .count();
    assert_eq!(errors.rows.len(), want);
    assert!(errors.rows.iter().all(|r| r.status == 502));

    // Ranges that start mid-day read whole days and the hours at the ends, and add up to what
    // the traces hold from the range's first hour on.
    for since in [
        base,
        base + 7 * HOUR_MS + 5,
        base + 30 * HOUR_MS,
        base + 50 * HOUR_MS,
    ] {
        let q = OverviewQuery {
            since_ms: since,
            until_ms: now_ms() + 1,
            by: Dimension::Model,
            only: vec![(Dimension::Provider, "p1".into())],
        };
        let o = store.overview(&q).unwrap_or_else(|e| panic!("{e}"));
        let from = since - since.rem_euclid(HOUR_MS);
        let rows: Vec<&TraceRecord> = all
            .iter()
            .filter(|t| t.ts_ms >= from && t.provider.as_deref() == Some("p1"))
            .collect();
        assert_eq!(o.total.requests, rows.len() as i64, "since {since}");
        assert_eq!(
            o.total.cost_nanos,
            rows.iter().map(|t| t.cost_nanos).sum::<i64>()
        );
        assert_eq!(
            o.total.errors,
            rows.iter().filter(|t| t.status >= 400).count() as i64
        );
        assert_eq!(o.total.latency.count(), rows.len() as u64);
        assert_eq!(
            o.total.ttft.count(),
            rows.iter().filter(|t| t.ttft_us.is_some()).count() as u64
        );
        let big =
            o.by.iter()
                .find(|(k, _)| k == "big")
                .map(|(_, s)| s.requests);
        let want = rows.iter().filter(|t| t.requested_model == "big").count() as i64;
        assert_eq!(big.unwrap_or(0), want);
        let series: i64 = o.series.iter().map(|(_, s)| s.requests).sum();
        assert_eq!(series, o.total.requests);
    }
}
