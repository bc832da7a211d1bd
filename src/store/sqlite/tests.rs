use super::*;
use crate::ledger::{self, Head, LedgerDraft, LedgerEntry};
use crate::store::{
    LedgerStore, LedgerWrites, ModuleState, ModuleStateStore, Persist, StoreHealth,
};
use rusqlite::params;
use serde_json::json;
use std::path::PathBuf;

fn test_key() -> LedgerKey {
    LedgerKey::from_env_value("00112233445566778899aabbccddeeff").unwrap_or_else(|e| panic!("{e}"))
}

fn temp_db() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let path = dir.path().join("t.db");
    (dir, path)
}

#[test]
fn migrates_from_empty_and_reopens() {
    let (_dir, path) = temp_db();
    let (_, reader) = SqliteStore::open(&path, test_key()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(reader.schema_version().ok(), Some(SCHEMA_VERSION));
    drop(reader);
    let (_, reader) = SqliteStore::open(&path, test_key()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(reader.schema_version().ok(), Some(SCHEMA_VERSION));
}

#[test]
fn newer_schema_is_refused_and_untouched() {
    let (_dir, path) = temp_db();
    let conn = Connection::open(&path).unwrap_or_else(|e| panic!("{e}"));
    conn.pragma_update(None, "user_version", 99)
        .unwrap_or_else(|e| panic!("{e}"));
    drop(conn);
    let err = SqliteStore::open(&path, test_key()).err();
    assert!(matches!(
        err,
        Some(StoreError::SchemaTooNew { found: 99, .. })
    ));
    let conn = Connection::open(&path).unwrap_or_else(|e| panic!("{e}"));
    let tables: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table'",
            [],
            |r| r.get(0),
        )
        .unwrap_or(-1);
    assert_eq!(tables, 0);
}

#[test]
fn pragmas_are_set() {
    let (_dir, path) = temp_db();
    let (writer, _) = SqliteStore::open(&path, test_key()).unwrap_or_else(|e| panic!("{e}"));
    let mode: String = writer
        .conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap_or_default();
    let sync: i64 = writer
        .conn
        .query_row("PRAGMA synchronous", [], |r| r.get(0))
        .unwrap_or(-1);
    let fk: i64 = writer
        .conn
        .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
        .unwrap_or(-1);
    let busy: i64 = writer
        .conn
        .query_row("PRAGMA busy_timeout", [], |r| r.get(0))
        .unwrap_or(-1);
    assert_eq!((mode.as_str(), sync, fk, busy), ("wal", 1, 1, 5000));
}

#[test]
fn admin_changes_chain_in_the_ledger() {
    let (_dir, path) = temp_db();
    let (mut writer, reader) =
        SqliteStore::open(&path, test_key()).unwrap_or_else(|e| panic!("{e}"));
    for enabled in [true, false, true] {
        let state = ModuleState {
            name: "cost".into(),
            enabled,
            config: json!({}),
            scope: "global".into(),
        };
        let draft = LedgerDraft {
            actor: "t".into(),
            action: "module.update".into(),
            target: "cost".into(),
            details: json!({"enabled": enabled}),
        };
        writer
            .apply_admin(Some(&Persist::ModuleState(state)), &draft, 1)
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let entries = reader.ledger().unwrap_or_default();
    assert_eq!(entries.len(), 3);
    let verified = ledger::verify(&entries, Some(&test_key())).map(|v| v.head.hash);
    assert_eq!(verified.ok(), Some(entries[2].hash.clone()));
    assert!(reader.module_states().unwrap_or_default()[0].enabled);
}

fn draft() -> LedgerDraft {
    LedgerDraft {
        actor: "t".into(),
        action: "module.update".into(),
        target: "cost".into(),
        details: json!({}),
    }
}

#[test]
fn issue_9_read_only_open_never_creates_or_migrates() {
    let (_dir, path) = temp_db();
    let err = SqliteStore::open_read_only(&path).err();
    assert!(matches!(err, Some(StoreError::Missing { .. })), "{err:?}");
    assert!(!path.exists());

    let conn = Connection::open(&path).unwrap_or_else(|e| panic!("{e}"));
    conn.execute_batch(MIGRATIONS[0].1)
        .and_then(|()| conn.pragma_update(None, "user_version", 1))
        .unwrap_or_else(|e| panic!("{e}"));
    drop(conn);
    let err = SqliteStore::open_read_only(&path).err();
    assert!(
        matches!(err, Some(StoreError::SchemaTooOld { found: 1, .. })),
        "{err:?}"
    );
    assert_eq!(SqliteStore::file_schema_version(&path).ok(), Some(1));

    let (_, _) = SqliteStore::open(&path, test_key()).unwrap_or_else(|e| panic!("{e}"));
    let reader = SqliteStore::open_read_only(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(reader.schema_version().ok(), Some(SCHEMA_VERSION));
}

/// A ledger as a build before MACs left it: entries chained, but no `mac` column at all.
fn ledger_from_before_macs(path: &Path, n: usize) -> Vec<LedgerEntry> {
    let conn = Connection::open(path).unwrap_or_else(|e| panic!("{e}"));
    for (_, sql) in MIGRATIONS.iter().filter(|(v, _)| *v <= 3) {
        conn.execute_batch(sql).unwrap_or_else(|e| panic!("{e}"));
    }
    let mut entries: Vec<LedgerEntry> = Vec::new();
    for i in 0..n {
        let prev = entries.last().map(|e| (e.seq, e.hash.as_str()));
        let mut old = LedgerEntry::seal(&draft(), prev, i as i64 + 1, &test_key());
        old.mac = None;
        conn.execute(
            "INSERT INTO ledger (seq, ts_ms, actor, action, target, details, prev_hash, hash) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                old.seq,
                old.ts_ms,
                old.actor,
                old.action,
                old.target,
                old.details.to_string(),
                old.prev_hash,
                old.hash
            ],
        )
        .unwrap_or_else(|e| panic!("{e}"));
        entries.push(old);
    }
    conn.pragma_update(None, "user_version", 3)
        .unwrap_or_else(|e| panic!("{e}"));
    entries
}

#[test]
fn entries_from_before_the_mac_column_are_anchored_once_by_the_writing_open() {
    let (_dir, path) = temp_db();
    ledger_from_before_macs(&path, 2);
    let (mut writer, reader) =
        SqliteStore::open(&path, test_key()).unwrap_or_else(|e| panic!("{e}"));
    let entries = reader.ledger().unwrap_or_default();
    assert!(entries.iter().all(|e| e.mac.is_some()), "{entries:?}");
    let published = Head::read(&path).ok().flatten();
    assert!(
        published
            .as_ref()
            .is_some_and(|p| p.is_authentic(&test_key()) && p.head.seq == 2)
    );
    writer
        .apply_admin(None, &draft(), 3)
        .unwrap_or_else(|e| panic!("{e}"));
    let entries = reader.ledger().unwrap_or_default();
    let verified = ledger::verify(&entries, Some(&test_key()));
    assert_eq!(verified.map(|v| (v.head.seq, v.unanchored)), Ok((3, 0)));
    drop((writer, reader));

    // Once: a later open finds a published head, so MACs cleared afterwards (with the chain
    // recomputed) stay cleared, and verify names the first entry.
    rusqlite::Connection::open(&path)
        .and_then(|c| c.execute("UPDATE ledger SET mac = NULL", []))
        .unwrap_or_else(|e| panic!("{e}"));
    let (_writer, reader) = SqliteStore::open(&path, test_key()).unwrap_or_else(|e| panic!("{e}"));
    let entries = reader.ledger().unwrap_or_default();
    assert!(entries.iter().all(|e| e.mac.is_none()));
    assert_eq!(
        ledger::verify(&entries, Some(&test_key())),
        Err(ledger::VerifyError::MacMissing { seq: 1 })
    );
}

#[test]
fn an_old_unauthenticated_head_is_republished_with_a_mac_only_when_the_ledger_reaches_it() {
    let (_dir, path) = temp_db();
    let (mut writer, reader) =
        SqliteStore::open(&path, test_key()).unwrap_or_else(|e| panic!("{e}"));
    for ts in 1..=3 {
        writer
            .apply_admin(None, &draft(), ts)
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let entries = reader.ledger().unwrap_or_default();
    drop((writer, reader));
    let head_file = Head::path_for(&path);
    // A head file as a build before head MACs wrote it.
    std::fs::write(&head_file, format!("3:{}\n", entries[2].hash))
        .unwrap_or_else(|e| panic!("{e}"));
    let _ = SqliteStore::open(&path, test_key()).unwrap_or_else(|e| panic!("{e}"));
    let read = Head::read(&path).ok().flatten();
    assert!(read.is_some_and(|p| p.is_authentic(&test_key()) && p.head.seq == 3));

    // One naming entry 5 (the tail was cut since) is left alone: signing the ledger's own
    // head would hide the cut.
    let cut = format!("5:{}\n", "ab".repeat(32));
    std::fs::write(&head_file, &cut).unwrap_or_else(|e| panic!("{e}"));
    let _ = SqliteStore::open(&path, test_key()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(std::fs::read_to_string(&head_file).ok(), Some(cut));
}

#[test]
fn issue_9_no_entry_is_appended_over_a_cut_tail() {
    let (_dir, path) = temp_db();
    Head {
        seq: 5,
        hash: "ab".repeat(32),
    }
    .write(&path, &test_key())
    .unwrap_or_else(|e| panic!("{e}"));
    let (mut writer, reader) =
        SqliteStore::open(&path, test_key()).unwrap_or_else(|e| panic!("{e}"));
    let err = writer.apply_admin(None, &draft(), 1).err();
    assert!(
        matches!(
            err,
            Some(StoreError::LedgerBehindHead {
                newest: 0,
                published: 5
            })
        ),
        "{err:?}"
    );
    assert_eq!(reader.ledger().map(|e| e.len()).ok(), Some(0));
}

#[test]
fn a_slow_read_does_not_hold_up_request_path_lookups() {
    use crate::store::ResponseStore;
    use std::sync::mpsc;
    use std::time::Duration;

    let (_dir, path) = temp_db();
    let (_writer, reader) = SqliteStore::open(&path, test_key()).unwrap_or_else(|e| panic!("{e}"));
    let (started, handle) = mpsc::channel();
    let slow_reader = reader.clone();
    // A report that never ends on its own: counting an unbounded recursive CTE, until it is
    // interrupted below. With one shared connection every other read would wait behind it.
    let slow = std::thread::spawn(move || {
        slow_reader.with(|c| {
            let _ = started.send(c.get_interrupt_handle());
            Ok(c.query_row(
                "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n) \
                 SELECT count(*) FROM n",
                [],
                |r| r.get::<_, i64>(0),
            )?)
        })
    });
    let interrupt = handle
        .recv_timeout(Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("slow read never started: {e}"));

    let (done, lookups) = mpsc::channel();
    let fast_reader = reader.clone();
    std::thread::spawn(move || {
        let states = fast_reader.module_states().map(|s| s.len());
        let response = fast_reader.response("resp_missing").map(|r| r.is_none());
        let _ = done.send((states.ok(), response.ok()));
    });
    let answered = lookups.recv_timeout(Duration::from_secs(5));
    let still_running = !slow.is_finished();
    // An interrupt that lands before the statement runs is lost: repeat it until the read
    // has stopped, so the test always ends.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !slow.is_finished() && std::time::Instant::now() < deadline {
        interrupt.interrupt();
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(slow.is_finished(), "the slow read could not be interrupted");
    let slow_result = slow.join().unwrap_or_else(|_| panic!("slow read panicked"));

    assert_eq!(
        answered.ok(),
        Some((Some(0), Some(true))),
        "lookups waited on the slow read"
    );
    assert!(still_running, "the slow read ended before the lookups ran");
    assert!(
        slow_result.is_err(),
        "the slow read ends only by interruption"
    );
}

#[test]
fn read_only_pool_refuses_writes_and_reads_what_the_server_wrote() {
    use crate::store::{TraceRecord, TraceStore, TraceWrites};
    let (_dir, path) = temp_db();
    let (mut writer, _) = SqliteStore::open(&path, test_key()).unwrap_or_else(|e| panic!("{e}"));
    let trace = TraceRecord {
        id: "t1".into(),
        ..TraceRecord::default()
    };
    writer
        .append_traces(&[trace])
        .unwrap_or_else(|e| panic!("{e}"));
    let reader = SqliteStore::open_read_only(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(reader.trace_count().ok(), Some(1));
    let refused = reader.with(|c| Ok(c.execute("DELETE FROM traces", [])?));
    assert!(refused.is_err());
    assert_eq!(reader.trace_count().ok(), Some(1));
}
