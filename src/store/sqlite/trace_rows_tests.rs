//! Tests of the trace rows' numbering (`trace_rows.rs`): which number a row takes, that the
//! lookup by id needs no index on `id`, the rows of a database from before 0022, and retention.

use std::path::Path;

use super::*;
use crate::ledger::LedgerKey;
use crate::store::maintenance::{MaintenanceWrites, RetentionKind};
use crate::store::sqlite::{MIGRATIONS, SqliteStore, SqliteWriter};
use crate::store::{DashboardStore, TraceRecord, TraceStore, TraceWrites};

#[test]
fn a_uuid_v7_names_its_first_64_bits_and_nothing_else_names_a_number() {
    let id = crate::ids::uuid_v7();
    let expected = uuid::Uuid::parse_str(&id)
        .map(|u| u.as_u64_pair().0 as i64)
        .unwrap_or(0);
    assert_eq!(number_of(&id), Some(expected));
    assert!(expected > 0);
    // Its millisecond is the top 48 bits.
    assert!(((expected >> 16) - crate::store::now_ms()).abs() < 5_000);
    // Version 4, the simple form, the braced form, other strings.
    assert_eq!(number_of("5f0c0e4e-8f2b-4c1a-9d3e-2b7a1c9e4f10"), None);
    assert_eq!(number_of(&id.replace('-', "")), None);
    assert_eq!(number_of("t0"), None);
    assert_eq!(number_of(""), None);
    // The RFC's variant bits are required.
    let mut wrong_variant = id.clone().into_bytes();
    wrong_variant[19] = b'c';
    assert_eq!(number_of(&String::from_utf8_lossy(&wrong_variant)), None);
}

#[test]
fn numbers_only_grow_and_late_or_foreign_ids_are_listed() {
    let now = crate::store::now_ms();
    let (a, b, c) = three_ids();
    let number = |id: &str| number_of(id).unwrap_or(0);
    let mut rows = TraceRows { last: 41 };
    // b reaches the writer before a.
    assert_eq!(rows.place(&b, now), Placement::Named(number(&b)));
    assert_eq!(rows.place(&a, now), Placement::Listed(number(&b) + 1));
    assert_eq!(rows.place("t0", now), Placement::Listed(number(&b) + 2));
    // c was made after the listed numbers were taken only if the counter moved past them.
    let expected = if number(&c) > number(&b) + 2 {
        Placement::Named(number(&c))
    } else {
        Placement::Listed(number(&b) + 3)
    };
    assert_eq!(rows.place(&c, now), expected);
    // An id from two days ahead of the clock is listed.
    let ahead = uuid::Uuid::new_v7(uuid::Timestamp::from_unix(
        uuid::NoContext,
        ((now + 2 * 86_400_000) / 1000) as u64,
        0,
    ))
    .hyphenated()
    .to_string();
    let before = rows.last();
    assert_eq!(rows.place(&ahead, now), Placement::Listed(before + 1));
}

fn open(
    path: &Path,
) -> (
    SqliteWriter,
    std::sync::Arc<crate::store::sqlite::SqliteReader>,
) {
    let key = LedgerKey::from_env_value("00112233445566778899aabbccddeeff")
        .unwrap_or_else(|e| panic!("{e}"));
    SqliteStore::open(path, key).unwrap_or_else(|e| panic!("open: {e}"))
}

fn record(id: &str, ts_ms: i64) -> TraceRecord {
    TraceRecord {
        id: id.into(),
        ts_ms,
        endpoint: "/v1/chat/completions".into(),
        requested_model: "m".into(),
        status: 200,
        request_id: format!("req-{id}"),
        attempts: 1,
        ..TraceRecord::default()
    }
}

/// `(row_id, id)` of every row of `table`, in row order.
fn rows_of(conn: &Connection, table: &str) -> Vec<(i64, String)> {
    let mut statement = conn
        .prepare(&format!("SELECT row_id, id FROM {table} ORDER BY row_id"))
        .unwrap_or_else(|e| panic!("{e}"));
    let rows = statement
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap_or_else(|e| panic!("{e}"));
    rows.map(|r| r.unwrap_or_else(|e| panic!("{e}"))).collect()
}

fn stored(conn: &Connection) -> Vec<(i64, String)> {
    rows_of(conn, "traces")
}

fn listed(conn: &Connection) -> Vec<(i64, String)> {
    rows_of(conn, "trace_ids")
}

/// The indexes on `traces` that SQLite made itself (for a PRIMARY KEY or UNIQUE column).
fn implicit_indexes(conn: &Connection) -> i64 {
    conn.query_row(
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND tbl_name = 'traces' \
         AND sql IS NULL",
        [],
        |r| r.get(0),
    )
    .unwrap_or(-1)
}

#[test]
fn a_trace_is_stored_under_its_ids_number_and_only_late_or_foreign_ones_are_listed() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("t.db");
    let (mut writer, reader) = open(&path);
    let now = crate::store::now_ms();
    let (a, b, c) = three_ids();
    let number = |id: &str| number_of(id).unwrap_or(0);
    writer
        .append_traces(&[record(&a, now)])
        .unwrap_or_else(|e| panic!("{e}"));
    // b reaches the writer after c.
    writer
        .append_traces(&[record(&c, now), record(&b, now), record("plain", now)])
        .unwrap_or_else(|e| panic!("{e}"));
    let after_c = number(&c);
    assert_eq!(
        stored(&writer.conn),
        [
            (number(&a), a.clone()),
            (after_c, c.clone()),
            (after_c + 1, b.clone()),
            (after_c + 2, "plain".to_string()),
        ]
    );
    assert_eq!(
        listed(&writer.conn),
        [(after_c + 1, b.clone()), (after_c + 2, "plain".to_string())]
    );
    assert_eq!(implicit_indexes(&writer.conn), 0);
    for id in [&a, &b, &c] {
        let found = reader.trace(id).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(found.map(|t| t.id).as_deref(), Some(id.as_str()));
    }
    // Reopened, the numbering goes on from the highest row.
    drop((writer, reader));
    let (mut writer, _reader) = open(&path);
    assert_eq!(writer.trace_rows.last(), after_c + 2);
    let d = crate::ids::uuid_v7();
    writer
        .append_traces(&[record(&d, now)])
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(stored(&writer.conn).last(), Some(&(number(&d), d.clone())));
}

#[test]
fn traces_from_before_0022_keep_their_rows_and_are_found_by_id() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("t.db");
    let now = crate::store::now_ms();
    let old_ids = [
        crate::ids::uuid_v7(),
        "legacy".to_string(),
        crate::ids::uuid_v7(),
    ];
    {
        let conn = Connection::open(&path).unwrap_or_else(|e| panic!("{e}"));
        for (_, sql) in MIGRATIONS.iter().filter(|(v, _)| *v <= 21) {
            conn.execute_batch(sql).unwrap_or_else(|e| panic!("{e}"));
        }
        for (i, id) in old_ids.iter().enumerate() {
            conn.execute(
                "INSERT INTO traces (id, ts_ms, endpoint, requested_model, status, stream, \
                 prompt_tokens, completion_tokens, cached_input_tokens, cache_write_tokens, \
                 reasoning_tokens, usage_estimated, cost_nanos, price_known, latency_us, \
                 overhead_us, bytes_in, bytes_out, request_id, key_id) \
                 VALUES (?1, ?2, '/v1/chat/completions', 'm', 200, 0, 3, 4, 0, 0, 0, 0, 9, 1, \
                 10, 1, 5, 6, ?3, 'k')",
                params![id, now - 10 + i as i64, format!("req-{i}")],
            )
            .unwrap_or_else(|e| panic!("{e}"));
        }
        conn.pragma_update(None, "user_version", 21)
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let (mut writer, reader) = open(&path);
    assert_eq!(implicit_indexes(&writer.conn), 0);
    let expected: Vec<(i64, String)> = old_ids
        .iter()
        .enumerate()
        .map(|(i, id)| (i as i64 + 1, id.clone()))
        .collect();
    assert_eq!(stored(&writer.conn), expected);
    assert_eq!(listed(&writer.conn), expected);
    for id in &old_ids {
        let found = reader.trace(id).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            found.map(|t| (t.id, t.key_id, t.cost_nanos)),
            Some((id.clone(), Some("k".to_string()), 9))
        );
    }
    // A new row goes under its own number, past the old ones.
    let new = crate::ids::uuid_v7();
    writer
        .append_traces(&[record(&new, now)])
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        stored(&writer.conn).last(),
        Some(&(number_of(&new).unwrap_or(0), new.clone()))
    );
    assert_eq!(listed(&writer.conn).len(), old_ids.len());
    assert_eq!(reader.trace_count().ok(), Some(4));
}

#[test]
fn retention_deletes_a_listed_rows_entry_with_the_row() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (mut writer, reader) = open(&dir.path().join("t.db"));
    let now = crate::store::now_ms();
    let old = now - 10 * 86_400_000;
    let named_old = crate::ids::uuid_v7();
    writer
        .append_traces(&[
            record(&named_old, old),
            record("listed-old", old + 1),
            record("listed-new", now),
        ])
        .unwrap_or_else(|e| panic!("{e}"));
    let deleted = writer
        .delete_older(RetentionKind::Traces, now - 86_400_000, 100)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(deleted, 2);
    let left: Vec<String> = listed(&writer.conn).into_iter().map(|(_, id)| id).collect();
    assert_eq!(left, ["listed-new"]);
    assert!(reader.trace("listed-old").ok().flatten().is_none());
    assert!(reader.trace("listed-new").ok().flatten().is_some());
}

#[test]
fn a_commit_reported_as_failed_that_went_in_neither_loses_nor_misfiles_a_row() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (mut writer, reader) = open(&dir.path().join("t.db"));
    let now = crate::store::now_ms();
    let x = crate::ids::uuid_v7();
    let n = number_of(&x).unwrap_or(0);
    writer
        .append_traces(&[record(&x, now), record("p1", now), record("p2", now)])
        .unwrap_or_else(|e| panic!("{e}"));
    // As if that commit had been reported as failed: the numbering forgot p1 and p2's rows.
    writer.trace_rows.set_last(n);
    // Retried, the batch stores nothing again, and the numbering learns the rows are there.
    writer
        .append_traces(&[record("p1", now), record("p2", now)])
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(writer.trace_rows.last(), n + 2);
    // Forgotten once more, a new row that finds its number taken goes past the highest stored.
    writer.trace_rows.set_last(n);
    writer
        .append_traces(&[record("c", now)])
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        listed(&writer.conn),
        [
            (n + 1, "p1".to_string()),
            (n + 2, "p2".to_string()),
            (n + 3, "c".to_string())
        ]
    );
    assert_eq!(stored(&writer.conn).len(), 4);
    let found = reader.trace("c").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(found.map(|t| t.id).as_deref(), Some("c"));
}

#[test]
fn a_backup_taken_before_the_roll_ups_were_written_counts_every_trace_once_opened() {
    use crate::store::dashboard::{Dimension, OverviewQuery};
    use crate::store::maintenance::MaintenanceStore;

    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (mut writer, reader) = open(&dir.path().join("t.db"));
    let now = crate::store::now_ms();
    let rows: Vec<TraceRecord> = (0..5)
        .map(|i| record(&crate::ids::uuid_v7(), now - i))
        .chain([record("plain", now)])
        .collect();
    // Written, their roll-ups still in the writer's memory (written about once a second).
    writer
        .append_traces(&rows)
        .unwrap_or_else(|e| panic!("{e}"));
    let copy = dir.path().join("copy.db");
    reader.backup_into(&copy).unwrap_or_else(|e| panic!("{e}"));
    drop((writer, reader));
    let (_writer, restored) = open(&copy);
    let overview = restored
        .overview(&OverviewQuery {
            since_ms: now - 86_400_000,
            until_ms: now + 1,
            by: Dimension::Model,
            only: Vec::new(),
        })
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(overview.total.requests, rows.len() as i64);
    assert_eq!(
        restored
            .trace("plain")
            .ok()
            .flatten()
            .map(|t| t.id)
            .as_deref(),
        Some("plain")
    );
}

/// Three ids, made in this order.
fn three_ids() -> (String, String, String) {
    (
        crate::ids::uuid_v7(),
        crate::ids::uuid_v7(),
        crate::ids::uuid_v7(),
    )
}
