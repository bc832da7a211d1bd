//! Backups taken during a burst of requests are complete and sound; a restore round-trips,
//! migrates and keeps the ledger verifiable; a restore refuses a database a server holds.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::binary::stockyard;
use common::{ADMIN_KEY, Harness, chat};
use hyper::{Method, StatusCode};
use stockyard::store::{StoreUrl, TraceQuery};

fn admin_config() -> String {
    format!("[admin]\nkey = \"{ADMIN_KEY}\"\n")
}

fn trace_ids(url: &StoreUrl) -> HashSet<String> {
    let store = stockyard::store::open_read_only(url).unwrap();
    store
        .traces
        .traces(&TraceQuery {
            limit: 10_000,
            ..TraceQuery::default()
        })
        .unwrap()
        .into_iter()
        .map(|t| t.id)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_backup_during_a_burst_is_sound_and_holds_every_earlier_trace() {
    let h = Arc::new(Harness::start_with(&admin_config()).await);
    let stop = Arc::new(AtomicBool::new(false));
    let mut burst = Vec::new();
    for worker in 0..8 {
        let (h, stop) = (h.clone(), stop.clone());
        burst.push(tokio::spawn(async move {
            let mut sent = 0;
            while !stop.load(Ordering::Relaxed) && sent < 400 {
                let stream = sent % 3 == 0;
                let answer = h
                    .client
                    .post(
                        "/v1/chat/completions",
                        &chat("gpt-4o-mini", &format!("w{worker} n{sent}"), stream),
                    )
                    .await;
                assert_eq!(answer.status, StatusCode::OK);
                sent += 1;
            }
            sent
        }));
    }
    // Let the burst run, then fix what is committed before the backup begins.
    h.traces(100).await;
    h.server.app.writer.flush().await.unwrap();
    let db = StoreUrl::Sqlite(h.dir.path().join("stockyard.db"));
    let committed = trace_ids(&db);
    assert!(committed.len() >= 100);

    let out = h.dir.path().join("during-burst.db");
    let body = serde_json::json!({ "path": out }).to_string();
    let answer = h.client.admin(Method::POST, "/admin/backup", &body).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(
        answer.json()["backup"]["schema_version"],
        stockyard::store::SCHEMA_VERSION
    );
    // And the CLI's copy, taken while the burst still runs.
    let cli_out = h.dir.path().join("cli-copy.db");
    let printed = stockyard(&h.dir.path().join("stockyard.db"))
        .args(["backup", cli_out.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(printed.status.success(), "{printed:?}");
    assert!(String::from_utf8_lossy(&printed.stdout).contains("integrity ok"));

    stop.store(true, Ordering::Relaxed);
    let mut total = 0;
    for task in burst {
        total += task.await.unwrap();
    }
    assert!(total > committed.len() / 2);

    for copy in [out, cli_out] {
        let url = StoreUrl::Sqlite(copy.clone());
        assert_eq!(
            stockyard::store::verify_copy(&url).unwrap(),
            stockyard::store::SCHEMA_VERSION
        );
        let held = trace_ids(&url);
        let missing: Vec<_> = committed.difference(&held).collect();
        assert!(
            missing.is_empty(),
            "{}: missing {missing:?}",
            copy.display()
        );
    }
}

#[tokio::test]
async fn restore_round_trips_and_the_ledger_verifies() {
    let h = Harness::start_with(&admin_config()).await;
    for i in 0..5 {
        h.client
            .post(
                "/v1/chat/completions",
                &chat("gpt-4o-mini", &format!("a{i}"), false),
            )
            .await;
    }
    let changed = h
        .client
        .admin(Method::PUT, "/admin/modules/trace", r#"{"enabled": true}"#)
        .await;
    assert_eq!(changed.status, StatusCode::OK);
    h.traces(5).await;
    let backup = h.dir.path().join("five.db");
    let body = serde_json::json!({ "path": backup }).to_string();
    let answer = h.client.admin(Method::POST, "/admin/backup", &body).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    // After the backup: more traffic and another change, which the restore must undo.
    for i in 0..3 {
        h.client
            .post(
                "/v1/chat/completions",
                &chat("gpt-4o-mini", &format!("b{i}"), false),
            )
            .await;
    }
    h.client
        .admin(Method::PUT, "/admin/modules/trace", r#"{"enabled": true}"#)
        .await;
    h.traces(8).await;
    let db = h.dir.path().join("stockyard.db");
    let Harness { server, dir, .. } = h;
    server.stop().await.unwrap();

    let restored = stockyard(&db)
        .args(["restore", backup.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(restored.status.success(), "{restored:?}");
    let said = String::from_utf8_lossy(&restored.stdout);
    assert!(said.contains("restored"), "{said}");
    assert_eq!(trace_ids(&StoreUrl::Sqlite(db.clone())).len(), 5);
    assert!(dir.path().join("stockyard.db.pre-restore").exists());

    let verify = stockyard(&db).args(["audit", "verify"]).output().unwrap();
    assert!(verify.status.success(), "{verify:?}");
    let export = stockyard(&db).args(["audit", "export"]).output().unwrap();
    let ledger = String::from_utf8_lossy(&export.stdout);
    assert!(ledger.contains("\"restore\""), "{ledger}");
}

/// A backup whose ledger was rewritten without the key, its MACs cleared so nothing fails to
/// check, is refused: the restore would otherwise anchor (sign) the cleared entries, since it sets
/// the old head file aside. Nothing is replaced.
#[tokio::test]
async fn restore_refuses_a_backup_whose_ledger_lost_its_macs() {
    let h = Harness::start_with(&admin_config()).await;
    for _ in 0..3 {
        let changed = h
            .client
            .admin(Method::PUT, "/admin/modules/trace", r#"{"enabled": true}"#)
            .await;
        assert_eq!(changed.status, StatusCode::OK);
    }
    let backup = h.dir.path().join("forged.db");
    let body = serde_json::json!({ "path": backup }).to_string();
    let answer = h.client.admin(Method::POST, "/admin/backup", &body).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let db = h.dir.path().join("stockyard.db");
    let Harness { server, dir, .. } = h;
    server.stop().await.unwrap();
    let restore = |file: &std::path::Path| {
        stockyard(&db)
            .args(["restore", file.to_str().unwrap()])
            .output()
            .unwrap()
    };
    let edited = |name: &str, sql: &str| {
        let copy = dir.path().join(name);
        std::fs::copy(&backup, &copy).unwrap();
        let conn = rusqlite::Connection::open(&copy).unwrap();
        assert!(conn.execute(sql, []).unwrap() > 0);
        copy
    };
    let refused = |file: &std::path::Path, why: &str| {
        let restored = restore(file);
        assert!(!restored.status.success(), "{restored:?}");
        let said = String::from_utf8_lossy(&restored.stderr);
        assert!(said.contains("audit ledger does not verify"), "{said}");
        assert!(said.contains(why), "{said}");
        assert!(!dir.path().join("stockyard.db.pre-restore").exists());
    };
    // Every MAC cleared: refused unless the operator says the backup predates MACs.
    refused(
        &edited("cleared.db", "UPDATE ledger SET mac = NULL"),
        "--accept-unanchored-ledger",
    );
    // The newest MAC removed: refused, whatever the flags.
    refused(
        &edited(
            "tail.db",
            "UPDATE ledger SET mac = NULL WHERE seq = (SELECT max(seq) FROM ledger)",
        ),
        "has no MAC",
    );
    let verify = stockyard(&db).args(["audit", "verify"]).output().unwrap();
    assert!(verify.status.success(), "{verify:?}");
    // A MAC-less first entry that a later MAC covers is a ledger anchored after it was begun:
    // restored, and it verifies afterwards.
    let restored = restore(&edited(
        "prefix.db",
        "UPDATE ledger SET mac = NULL WHERE seq = 1",
    ));
    assert!(restored.status.success(), "{restored:?}");
    let verify = stockyard(&db).args(["audit", "verify"]).output().unwrap();
    assert!(verify.status.success(), "{verify:?}");
}

#[tokio::test]
async fn restore_migrates_an_older_backup_forward() {
    let h = Harness::start().await;
    let db = h.dir.path().join("stockyard.db");
    let Harness { server, dir, .. } = h;
    server.stop().await.unwrap();
    // An older schema: the version number moved back, as a backup from an older build has it.
    let old = dir.path().join("old.db");
    std::fs::copy(&db, &old).unwrap();
    set_user_version(&old, 16);
    let restored = stockyard(&db)
        .args(["restore", old.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(restored.status.success(), "{restored:?}");
    assert!(String::from_utf8_lossy(&restored.stdout).contains("migrated to"));
    assert_eq!(
        stockyard::store::schema_version_of(&StoreUrl::Sqlite(db)).unwrap(),
        stockyard::store::SCHEMA_VERSION
    );
}

/// Undoes the newest migrations (0022's list of trace rows off their ids' numbers, 0019, the batch
/// records, and 0018, the MCP calls table) on a copy: drops what they add and moves the schema
/// version back to the one before them, so the copy is an honest file of the previous version.
/// (0022's rebuild of `traces` reads either shape of the table.)
fn set_user_version(path: &std::path::Path, version: i64) {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch(&format!(
        "DROP TABLE trace_ids; DROP TABLE batch_objects; DROP TABLE mcp_calls; \
         PRAGMA user_version = {version};"
    ))
    .unwrap();
}

#[tokio::test]
async fn restore_refuses_a_database_a_server_holds() {
    let h = Harness::start().await;
    let db = h.dir.path().join("stockyard.db");
    let backup = h.dir.path().join("copy.db");
    let printed = stockyard(&db)
        .args(["backup", backup.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(printed.status.success(), "{printed:?}");
    // What `stockyard serve` holds for as long as it runs.
    let _held = stockyard::server::db_lock::DbLock::try_acquire(&db)
        .unwrap()
        .unwrap();
    let before = std::fs::read(&db).unwrap();
    let refused = stockyard(&db)
        .args(["restore", backup.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains("stop the server"), "{said}");
    assert_eq!(std::fs::read(&db).unwrap(), before);
    assert!(!h.dir.path().join("stockyard.db.pre-restore").exists());
}

/// A backup into a directory the server does not have is the caller's mistake: a 400 naming
/// the path, not an internal error.
#[tokio::test]
async fn a_backup_into_a_missing_directory_is_refused_naming_it() {
    let h = Harness::start_with(&admin_config()).await;
    let path = h.dir.path().join("no-such-dir").join("copy.db");
    let body = serde_json::json!({ "path": path }).to_string();
    let answer = h.client.admin(Method::POST, "/admin/backup", &body).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.text());
    assert!(answer.text().contains("no-such-dir"), "{}", answer.text());
}
