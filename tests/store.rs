//! The store under the running proxy: shutdown flushes every accepted trace, a full queue counts
//! its drops, and ledger tampering in the database file is detected and named.

mod common;

use std::time::Duration;

use common::{ADMIN_KEY, Harness, chat};
use hyper::Method;
use rusqlite::Connection;
use stockyard::ledger;

#[tokio::test]
async fn shutdown_flushes_every_accepted_trace() {
    // A long batch interval: rows would sit in the queue without the shutdown flush.
    let h = Harness::start_with("[store]\nbatch_interval_ms = 60000\nbatch_size = 100000\n").await;
    let n = 200;
    let mut tasks = Vec::new();
    for i in 0..n {
        let client = common::TestClient::new(h.server.url());
        tasks.push(tokio::spawn(async move {
            client
                .post(
                    "/v1/chat/completions",
                    &chat("gpt-4o-mini", &format!("hello {i}"), i % 2 == 0),
                )
                .await
                .status
        }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap(), 200);
    }
    let db = h.dir.path().join("stockyard.db");
    let Harness { server, dir, .. } = h;
    server.stop().await.unwrap();
    let conn = Connection::open(&db).unwrap();
    let rows: i64 = conn
        .query_row("SELECT COUNT(*) FROM traces", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, n);
    // The WAL was checkpointed into the main file.
    let wal = dir.path().join("stockyard.db-wal");
    assert!(std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0) == 0);
}

#[tokio::test]
async fn a_full_queue_with_the_drop_policy_counts_its_drops() {
    let h = Harness::start_with("[store]\nqueue_capacity = 2\nbatch_size = 1\nbatch_interval_ms = 1\nqueue_full = \"drop\"\n").await;
    // Hold the write lock so the writer blocks and the queue fills.
    let db = h.dir.path().join("stockyard.db");
    let blocker = Connection::open(&db).unwrap();
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
    let n = 40;
    for i in 0..n {
        let answer = h
            .client
            .post(
                "/v1/chat/completions",
                &chat("gpt-4o-mini", &format!("m{i}"), false),
            )
            .await;
        assert_eq!(
            answer.status, 200,
            "requests are served even when traces are dropped"
        );
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let ready = h.client.get("/ready").await.json();
    let dropped = ready["writer"]["dropped"].as_u64().unwrap();
    assert!(dropped > 0, "{ready}");
    blocker.execute_batch("COMMIT").unwrap();
    drop(blocker);
    let app = h.server.app.clone();
    // Written + dropped accounts for every request once the writer catches up.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let snapshot = app.writer.snapshot();
        let rows = app.store.traces.trace_count().unwrap() as u64;
        if rows + snapshot.dropped == n as u64 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "rows {rows} + dropped {} != {n}",
            snapshot.dropped
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn ledger_with_entries(h: &Harness, n: usize) {
    for i in 0..n {
        let body = format!("{{\"enabled\": {}}}", i % 2 == 1);
        let answer = h
            .client
            .admin(Method::PUT, "/admin/modules/trace", &body)
            .await;
        assert_eq!(answer.status, 200, "{}", answer.text());
    }
}

/// Verifies the ledger in `path` under the key the server created beside `original`.
fn verify_file(path: &std::path::Path, original: &std::path::Path) -> Result<String, String> {
    let key = ledger::LedgerKey::find(original, None).map_err(|e| e.to_string())?;
    let url = stockyard::store::StoreUrl::Sqlite(path.to_path_buf());
    let store = stockyard::store::open_read_only(&url).map_err(|e| e.to_string())?;
    let entries = store.ledger.ledger().map_err(|e| e.to_string())?;
    ledger::verify(&entries, key.as_ref())
        .map(|v| v.head.hash)
        .map_err(|e| e.to_string())
}

#[tokio::test]
async fn ledger_tampering_in_the_file_is_detected_and_named() {
    let h = Harness::start_with(&format!("[admin]\nkey = \"{ADMIN_KEY}\"\n")).await;
    ledger_with_entries(&h, 5).await;
    let Harness { server, dir, .. } = h;
    server.stop().await.unwrap();
    let original = dir.path().join("stockyard.db");
    assert!(verify_file(&original, &original).is_ok());

    let tamper = |name: &str, sql: &str| {
        let path = dir.path().join(name);
        std::fs::copy(&original, &path).unwrap();
        Connection::open(&path).unwrap().execute_batch(sql).unwrap();
        verify_file(&path, &original).unwrap_err()
    };
    let edited = tamper(
        "edit.db",
        "UPDATE ledger SET details = '{\"after\":{\"enabled\":true}}' WHERE seq = 3",
    );
    assert!(
        edited.contains("entry 3") && edited.contains("altered"),
        "{edited}"
    );
    let deleted = tamper("delete.db", "DELETE FROM ledger WHERE seq = 2");
    assert!(
        deleted.contains("entry 2") && deleted.contains("missing"),
        "{deleted}"
    );
    // Reorder: swap the contents of rows 2 and 4 (sequence numbers follow their rows).
    let reordered = tamper(
        "reorder.db",
        "UPDATE ledger SET seq = -2 WHERE seq = 2; UPDATE ledger SET seq = 2 WHERE seq = 4; UPDATE ledger SET seq = 4 WHERE seq = -2;",
    );
    assert!(
        reordered.contains("entry 2") || reordered.contains("entry 4"),
        "{reordered}"
    );
    let inserted = tamper(
        "insert.db",
        "INSERT INTO ledger (seq, ts_ms, actor, action, target, details, prev_hash, hash) \
         SELECT 6, ts_ms, 'mallory', action, target, details, prev_hash, hash FROM ledger WHERE seq = 5",
    );
    assert!(inserted.contains("entry 6"), "{inserted}");
}
