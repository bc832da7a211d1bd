//! The store suite's case for finding a trace by its id, whatever order the rows reach the writer
//! in and whatever shape their ids have: SQLite stores a row under the number its UUIDv7 id names
//! (`sqlite/trace_rows.rs`) and lists the others, PostgreSQL keys `id` itself. A retried batch
//! stores nothing twice, and the console's roll-ups rebuilt after a crash count every row once,
//! a late one included. And every column of every row reads back as written, whichever values
//! the row before it in the batch had (SQLite binds only the values that changed). Part of
//! `suite.rs`'s `store_suite!`, so every backend runs them.

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

    // Each part by a store opened anew, and dropped before the roll-ups were written, as in a
    // crash: the next open rebuilds them from the rows past its cursor, the late row among them.
    let append_after_reopen = |part: &[TraceRecord]| {
        let mut opened = open(url, key()).unwrap_or_else(|e| panic!("open: {e}"));
        opened
            .writes
            .append_traces(part)
            .unwrap_or_else(|e| panic!("{e}"));
        opened
    };
    drop(append_after_reopen(&rows[..1]));
    drop(append_after_reopen(&rows[1..2]));
    let mut opened = append_after_reopen(&rows[2..]);
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

/// A row with every column set, its values told apart by `n`.
fn full(n: i64, now: i64) -> TraceRecord {
    let text = |name: &str| Some(format!("{name}-{n}"));
    TraceRecord {
        id: crate::ids::uuid_v7(),
        ts_ms: now - 100 + n,
        endpoint: format!("/v1/endpoint-{n}"),
        requested_model: format!("model-{n}"),
        provider: text("provider"),
        upstream_model: text("upstream"),
        status: 400 + n as u16,
        error_class: text("error"),
        stream: n % 2 == 0,
        tokens: crate::cost::Tokens {
            prompt: 10 + n as u64,
            completion: 20 + n as u64,
            cached_input: 3 + n as u64,
            cache_write: 4 + n as u64,
            reasoning: 5 + n as u64,
        },
        usage_estimated: true,
        cost_nanos: 1_000 + n,
        price_known: true,
        latency_us: 2_000 + n,
        ttft_us: Some(300 + n),
        upstream_us: Some(1_500 + n),
        overhead_us: 40 + n,
        bytes_in: 500 + n,
        bytes_out: 700 + n,
        user: text("user"),
        deployment: text("deployment"),
        attempts: 2 + n as u32,
        variant: text("variant"),
        request_id: format!("req-{n}"),
        key_id: text("key"),
        team_id: text("team"),
        key_metadata: Some(format!("{{\"n\":{n}}}")),
        request_body: text("request"),
        response_body: text("response"),
        answered_by: text("answered"),
        internal_caller: text("caller"),
        cache: text("hit"),
        saved_nanos: 9 + n,
        verdicts: Some(format!("[{n}]")),
        tags: Some(format!("[\"tag-{n}\"]")),
        route_rule: text("rule"),
        prompt: text("prompt"),
    }
}

/// A row with only what every row has.
fn bare(n: i64, now: i64) -> TraceRecord {
    TraceRecord {
        ts_ms: now - 100 + n,
        request_id: format!("req-{n}"),
        attempts: 1,
        ..record(&crate::ids::uuid_v7(), now - 100 + n, "bare")
    }
}

pub fn trace_rows_keep_every_column_as_written(url: &StoreUrl) {
    let now = now_ms();
    // Every change between neighbours: full to bare, bare to full, full to a full row with other
    // values, a full row to one that differs only in its id, bare to bare.
    let mut rows = vec![full(0, now), bare(1, now), full(2, now), full(3, now)];
    let mut same_but_id = full(3, now);
    same_but_id.ts_ms += 1;
    rows.push(same_but_id);
    rows.extend([bare(5, now), bare(6, now), full(7, now)]);

    let mut opened = open(url, key()).unwrap_or_else(|e| panic!("open: {e}"));
    opened
        .writes
        .append_traces(&rows)
        .unwrap_or_else(|e| panic!("{e}"));
    for written in &rows {
        let read = opened
            .store
            .dashboard
            .trace(&written.id)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            read.map(|r| serde_json::to_value(r).unwrap_or_default()),
            Some(serde_json::to_value(written).unwrap_or_default()),
            "{}",
            written.id
        );
    }
}
