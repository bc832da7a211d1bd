//! Retention removes exactly what is older than its limit, the file shrinks, the ledger still
//! verifies; the writer keeps the WAL bounded under constant writes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{ADMIN_KEY, Harness, chat};
use hyper::{Method, StatusCode};
use stockyard::ledger::LedgerDraft;
use stockyard::store::mcp::{McpCallRecord, McpCallWrite};
use stockyard::store::writer::MaintenanceJob;
use stockyard::store::{TraceRecord, now_ms};

const DAY_MS: i64 = 86_400_000;

fn config(retention: &str) -> String {
    format!("[admin]\nkey = \"{ADMIN_KEY}\"\n\n[modules.retention]\n{retention}\n")
}

fn record(i: usize, ts_ms: i64, body: &str) -> TraceRecord {
    TraceRecord {
        id: format!("seed-{ts_ms}-{i:06}"),
        ts_ms,
        endpoint: "chat_completions".into(),
        requested_model: "gpt-4o-mini".into(),
        status: 200,
        request_id: format!("req-{i}"),
        request_body: Some(body.to_string()),
        response_body: Some(body.to_string()),
        ..TraceRecord::default()
    }
}

fn mcp_call(i: usize, ts_ms: i64) -> McpCallWrite {
    McpCallWrite {
        record: McpCallRecord {
            id: format!("mcp-{i}"),
            ts_ms,
            server: "files".into(),
            tool: "read".into(),
            decision: "allow".into(),
            rule: "default".into(),
            outcome: "ok".into(),
            args_sha256: "0".repeat(64),
            ..McpCallRecord::default()
        },
        draft: LedgerDraft {
            actor: "key:test".into(),
            action: "mcp.call".into(),
            target: "files__read".into(),
            details: serde_json::json!({"decision": "allow"}),
        },
    }
}

fn db_bytes(h: &Harness) -> u64 {
    std::fs::metadata(h.dir.path().join("stockyard.db"))
        .map(|m| m.len())
        .unwrap_or(0)
}

#[tokio::test]
async fn retention_removes_exactly_what_is_older_and_the_file_shrinks() {
    let h = Harness::start_with(&config(
        "traces = \"30d\"\nbodies = \"7d\"\nresponses = \"30d\"\nmcp_calls = \"30d\"\nbatch_rows = 500",
    ))
    .await;
    // An admin change, so the ledger has something to verify afterwards.
    let changed = h
        .client
        .admin(
            Method::PUT,
            "/admin/modules/trace",
            r#"{"enabled": true, "config": {"capture_bodies": true}}"#,
        )
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.text());

    let body = "x".repeat(2_000);
    let now = now_ms();
    let writer = &h.server.app.writer;
    // 2,600 rows past 30 days (deleted), 300 between 7 and 30 days (bodies blanked, rows kept),
    // 100 recent (untouched).
    for i in 0..2_600 {
        writer
            .submit_trace(record(i, now - 40 * DAY_MS, &body))
            .await;
    }
    for i in 0..300 {
        writer
            .submit_trace(record(i, now - 10 * DAY_MS, &body))
            .await;
    }
    for i in 0..100 {
        writer.submit_trace(record(i, now - DAY_MS, &body)).await;
    }
    // MCP tool calls: 3 past 30 days (deleted, their ledger entries stay), 2 recent (kept).
    for (i, age) in [40, 40, 40, 1, 1].into_iter().enumerate() {
        writer.submit_mcp_call(mcp_call(i, now - age * DAY_MS));
    }
    let answer = h
        .client
        .post("/v1/chat/completions", &chat("gpt-4o-mini", "hi", false))
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    h.traces(3_001).await;
    writer.flush().await.unwrap();
    // Everything into the main file, so its size is the data's.
    writer
        .maintain(MaintenanceJob::Checkpoint { truncate: true })
        .await
        .unwrap();
    let stats = h.client.admin(Method::GET, "/admin/db/stats", "").await;
    assert_eq!(stats.status, StatusCode::OK, "{}", stats.text());
    assert_eq!(stats.json()["db"]["auto_vacuum"], "incremental");
    let before = db_bytes(&h);

    let run = h
        .client
        .admin(Method::POST, "/admin/retention/run", "")
        .await;
    assert_eq!(run.status, StatusCode::OK, "{}", run.text());
    let report = &run.json()["retention"];
    assert_eq!(report["traces_deleted"], 2_600, "{report}");
    // Bodies are cleared first, so the rows past 30 days were blanked too before going.
    assert_eq!(report["bodies_cleared"], 2_900, "{report}");
    assert_eq!(report["mcp_calls_deleted"], 3, "{report}");
    let calls = h.store().mcp.mcp_calls(100).unwrap();
    assert_eq!(calls.len(), 2);
    assert!(calls.iter().all(|c| c.ts_ms >= now - 30 * DAY_MS));
    assert!(report["pages_freed"].as_u64().unwrap() > 100, "{report}");

    let rows = h.store().traces.trace_count().unwrap();
    assert_eq!(rows, 401);
    let kept = h
        .store()
        .traces
        .traces(&stockyard::store::TraceQuery {
            limit: 1_000,
            ..Default::default()
        })
        .unwrap();
    assert!(kept.iter().all(|t| t.ts_ms >= now - 30 * DAY_MS));
    for t in &kept {
        let old = t.ts_ms < now - 7 * DAY_MS;
        assert_eq!(t.request_body.is_none(), old, "{}", t.id);
    }
    let after = db_bytes(&h);
    assert!(
        after * 2 < before,
        "the file should shrink by more than half: {before} -> {after} bytes"
    );
    // The audit ledger is never touched and still verifies.
    let audit = h.client.admin(Method::GET, "/admin/audit", "").await.json();
    assert_eq!(audit["verify"]["ok"], true, "{audit}");
    assert!(!audit["entries"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn a_disabled_retention_module_refuses_a_run() {
    let h = Harness::start_with(&format!(
        "[admin]\nkey = \"{ADMIN_KEY}\"\n\n[modules.retention]\nenabled = false\n"
    ))
    .await;
    let run = h
        .client
        .admin(Method::POST, "/admin/retention/run", "")
        .await;
    assert_eq!(run.status, StatusCode::BAD_REQUEST, "{}", run.text());
    assert!(run.text().contains("retention module is disabled"));
}

#[tokio::test]
async fn the_wal_stays_bounded_under_constant_writes() {
    let h = Harness::start_with(&config("")).await;
    let wal = h.dir.path().join("stockyard.db-wal");
    let body = "y".repeat(4_000);
    let writer = h.server.app.writer.clone();
    let store = h.store().clone();
    // Readers all along, as a busy admin API or CLI would be: they pin snapshots, which is what
    // keeps a passive checkpoint from resetting the WAL.
    let reader = tokio::spawn(async move {
        for _ in 0..400 {
            let store = store.clone();
            let _ = tokio::task::spawn_blocking(move || store.traces.trace_count()).await;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    let mut largest = 0;
    let started = std::time::Instant::now();
    let mut i = 0;
    // About 5 s of writes, ~8 MB a second into the WAL.
    while started.elapsed() < Duration::from_secs(5) {
        for _ in 0..50 {
            writer.submit_trace(record(i, now_ms(), &body)).await;
            i += 1;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        largest = largest.max(std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0));
    }
    reader.abort();
    writer.flush().await.unwrap();
    let snapshot = writer.snapshot();
    assert!(snapshot.checkpoints >= 2, "{snapshot:?}");
    assert_eq!(snapshot.dropped, 0, "{snapshot:?}");
    // Written in total: i rows of ~8 KB, far past the bound; the WAL stayed under it (the
    // truncate threshold's 16 MiB, plus what arrives while one batch commits).
    let written = i as u64 * 8_000;
    let bound = 16 * 1024 * 1024 + 4 * 1024 * 1024;
    assert!(written > bound, "wrote only {written} bytes");
    assert!(largest < bound, "the WAL reached {largest} bytes");
}

#[test]
fn db_compact_converts_an_existing_file_to_incremental_vacuum() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("old.db");
    {
        // A file made the old way: auto_vacuum off, some data, then most of it deleted.
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute_batch(
            "CREATE TABLE t (x TEXT); \
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000) \
             INSERT INTO t SELECT hex(randomblob(500)) FROM n; DELETE FROM t WHERE rowid > 100;",
        )
        .unwrap();
        let mode: i64 = conn
            .query_row("PRAGMA auto_vacuum", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, 0);
    }
    let before = std::fs::metadata(&db).unwrap().len();
    let out = common::binary::stockyard(&db)
        .args(["db", "compact"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("incremental"));
    let conn = rusqlite::Connection::open(&db).unwrap();
    let mode: i64 = conn
        .query_row("PRAGMA auto_vacuum", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, 2);
    assert!(std::fs::metadata(&db).unwrap().len() < before / 4);
}
