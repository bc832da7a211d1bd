//! The store suite's case for finding a trace by its id, whatever order the rows reach the writer
//! in and whatever shape their ids have: SQLite stores a row under the number its UUIDv7 id names
//! (`sqlite/trace_rows.rs`) and lists the others, PostgreSQL keys `id` itself. A retried batch
//! stores nothing twice, and the console's roll-ups rebuilt after a crash count every row once,
//! a late one included. Part of `suite.rs`'s `store_suite!`, so every backend runs them.

use super::dashboard::{Dimension, OverviewQuery};
use super::suite::key;
use super::*;

fn record(id: &str, ts_ms: i64, model: &str) -> TraceRecord {
    TraceRecord {
        id: id.into(),
        ts_ms,
        endpoint: "/v1/chat/completions".into(),
        requested_model: model.into(),
        provider: Some("p".into()),
        status: 200,
        cost_nanos: 7,
        request_id: format!("req-{id}"),
        attempts: 1,
        ..TraceRecord::default()
    }
}

pub fn traces_are_found_by_id_in_any_order_and_shape(url: &StoreUrl) {
    let now = now_ms();
    // Made in this order; the first reaches the writer after the second.
    let (early, late) = (crate::ids::uuid_v7(), crate::ids::uuid_v7());
    let later = crate::ids::uuid_v7();
    let version_4 = "5f0c0e4e-8f2b-4c1a-9d3e-2b7a1c9e4f10";
    let rows = [
        record(&late, now - 3, "late"),
        record(&early, now - 4, "early"),
        record(version_4, now - 2, "v4"),
        record("plain-id", now - 1, "plain"),
        record(&later, now, "later"),
    ];

    let mut opened = open(url, key()).unwrap_or_else(|e| panic!("open: {e}"));
    opened
        .writes
        .append_traces(&rows[..1])
        .unwrap_or_else(|e| panic!("{e}"));
    // A crash before the roll-ups were written: the next open rebuilds them from the rows past
    // its cursor, the late row among them.
    drop(opened);
    let mut opened = open(url, key()).unwrap_or_else(|e| panic!("open: {e}"));
    opened
        .writes
        .append_traces(&rows[1..2])
        .unwrap_or_else(|e| panic!("{e}"));
    drop(opened);
    let mut opened = open(url, key()).unwrap_or_else(|e| panic!("open: {e}"));
    opened
        .writes
        .append_traces(&rows[2..])
        .unwrap_or_else(|e| panic!("{e}"));
    // Retried, whole: nothing is stored twice.
    opened
        .writes
        .append_traces(&rows)
        .unwrap_or_else(|e| panic!("{e}"));
    opened
        .writes
        .flush_rollups()
        .unwrap_or_else(|e| panic!("{e}"));

    let store = &opened.store;
    assert_eq!(store.traces.trace_count().ok(), Some(rows.len() as i64));
    for row in &rows {
        let found = store
            .dashboard
            .trace(&row.id)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            found.map(|t| (t.id, t.requested_model)),
            Some((row.id.clone(), row.requested_model.clone())),
            "{}",
            row.id
        );
    }
    // Ids never stored, of each shape: a UUIDv7 from now, one that differs from a stored one only
    // after its first 64 bits, a version 4, a plain string.
    let mut twin = later.clone().into_bytes();
    twin[35] = if twin[35] == b'0' { b'1' } else { b'0' };
    let twin = String::from_utf8_lossy(&twin).into_owned();
    for missing in [
        crate::ids::uuid_v7(),
        twin,
        "0b7d8a4e-2f5c-4e8a-b1d3-6c9e0f2a4b58".to_string(),
        "never-stored".to_string(),
    ] {
        let found = store
            .dashboard
            .trace(&missing)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(found.is_none(), "{missing}");
    }

    let overview = store
        .dashboard
        .overview(&OverviewQuery {
            since_ms: now - 86_400_000,
            until_ms: now + 1,
            by: Dimension::Model,
            only: Vec::new(),
        })
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(overview.total.requests, rows.len() as i64);
    for row in &rows {
        let counted = overview
            .by
            .iter()
            .find(|(model, _)| *model == row.requested_model)
            .map(|(_, s)| s.requests);
        assert_eq!(counted, Some(1), "{}", row.requested_model);
    }
}
