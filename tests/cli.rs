//! The real binary: help, config check, serve over real sockets with SIGTERM, traces, spend,
//! audit verify/export (and tampering), offline module changes, prices, version, local mode.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{PROVIDER_KEY, chat};

use common::binary::{listening, stockyard};

fn run(mut cmd: Command) -> (i32, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.output().unwrap();
    (
        status.code().unwrap_or(-1),
        String::from_utf8_lossy(&stdout).into(),
        String::from_utf8_lossy(&stderr).into(),
    )
}

/// A `stockyard serve` child process, killed if the test fails before it stops.
struct Served {
    child: Option<Child>,
    url: String,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Served {
    fn start(db: &Path, mock_url: &str, extra_env: &[(&str, &str)]) -> Served {
        let mut cmd = stockyard(db);
        cmd.args(["serve", "--listen", "127.0.0.1:0"])
            .env("OPENAI_API_KEY", PROVIDER_KEY)
            .env("OPENAI_BASE_URL", mock_url)
            .env("STOCKYARD_LOG", "debug")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        Served::spawn(cmd)
    }

    /// Spawns `cmd` (a `serve` with stdout and stderr piped) and waits for its address.
    fn spawn(mut cmd: Command) -> Served {
        let mut child = cmd.spawn().unwrap();
        let (url, log) = listening(&mut child);
        Served {
            child: Some(child),
            url,
            stderr: log,
        }
    }

    fn signal(&self, sig: &str) {
        let pid = self.child.as_ref().unwrap().id().to_string();
        assert!(
            Command::new("kill")
                .args([sig, &pid])
                .status()
                .unwrap()
                .success()
        );
    }

    /// Waits (bounded) for exit; returns the exit code.
    fn wait(&mut self, limit: Duration) -> i32 {
        let mut child = self.child.take().unwrap();
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status.code().unwrap_or(-1);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("server did not exit within {limit:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn log(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[test]
fn help_documents_every_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, _) = run({
        let mut c = stockyard(&dir.path().join("x.db"));
        c.arg("--help");
        c
    });
    assert_eq!(code, 0);
    for sub in [
        "serve", "config", "traces", "spend", "audit", "modules", "prices", "version",
    ] {
        assert!(out.contains(sub), "--help lacks {sub}: {out}");
    }
    let (code, out, _) = run({
        let mut c = stockyard(&dir.path().join("x.db"));
        c.args(["serve", "--help"]);
        c
    });
    assert_eq!(code, 0);
    assert!(out.contains("--listen") && out.contains("--allow-open") && out.contains("--db"));
}

#[test]
fn config_check_names_the_bad_field() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.toml");
    std::fs::write(
        &good,
        "listen = \"127.0.0.1:4100\"\n[store]\nbatch_size = 64\n",
    )
    .unwrap();
    let (code, out, _) = run({
        let mut c = stockyard(&dir.path().join("x.db"));
        c.args(["config", "check"]).arg(&good);
        c
    });
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("ok"));

    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[store]\nbatch_size = 0\n[modules.request_limits]\nmax_body_bytes = 0\n",
    )
    .unwrap();
    let (code, _, err) = run({
        let mut c = stockyard(&dir.path().join("x.db"));
        c.args(["config", "check"]).arg(&bad);
        c
    });
    assert_eq!(code, 1);
    assert!(
        err.contains("store.batch_size") && err.contains("modules.request_limits"),
        "{err}"
    );

    // STOCKYARD_<SECTION>__<FIELD> overrides the file, and is named when wrong.
    let (code, _, err) = run({
        let mut c = stockyard(&dir.path().join("x.db"));
        c.args(["config", "check"])
            .arg(&good)
            .env("STOCKYARD_STORE__BATCH_SIZE", "0");
        c
    });
    assert_eq!(code, 1);
    assert!(err.contains("store.batch_size"), "{err}");

    // Client keys from the environment that are all empty are refused, not read as none (which
    // would start without authentication).
    let (code, _, err) = run({
        let mut c = stockyard(&dir.path().join("x.db"));
        c.args(["config", "check"])
            .arg(&good)
            .env("STOCKYARD_API_KEYS", ",,");
        c
    });
    assert_eq!(code, 1);
    assert!(err.contains("auth.keys[0]"), "{err}");
    // A trailing comma, or a blank value (`${VAR:-}` in a compose file), is not a mistake.
    for keys in ["sk-client-0123456789,", "  "] {
        let (code, out, err) = run({
            let mut c = stockyard(&dir.path().join("x.db"));
            c.args(["config", "check"])
                .arg(&good)
                .env("STOCKYARD_API_KEYS", keys);
            c
        });
        assert_eq!(code, 0, "{keys:?}: {out}{err}");
    }

    let typo = dir.path().join("typo.toml");
    std::fs::write(&typo, "[store]\nbatch_sise = 3\n").unwrap();
    let (code, _, err) = run({
        let mut c = stockyard(&dir.path().join("x.db"));
        c.args(["config", "check"]).arg(&typo);
        c
    });
    assert_eq!(code, 1);
    assert!(err.contains("batch_sise"), "{err}");
}

#[test]
fn local_mode_refuses_a_public_address_without_allow_open() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = run({
        let mut c = stockyard(&dir.path().join("x.db"));
        c.args(["serve", "--listen", "0.0.0.0:0"]);
        c
    });
    assert_eq!(code, 1);
    assert!(err.contains("--allow-open"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_proxies_then_sigterm_flushes_and_the_cli_reads_the_database() {
    let mock = mock_upstream::MockUpstream::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cli.db");
    let mut served = Served::start(&db, &mock.base_url(), &[]);
    let client = common::TestClient::new(served.url.clone());
    for i in 0..5 {
        let answer = client
            .post(
                "/v1/chat/completions",
                &chat("gpt-4o-mini", "Say hello", i % 2 == 0),
            )
            .await;
        assert_eq!(answer.status, 200, "{}", answer.text());
    }
    let answer = client
        .post("/v1/chat/completions", &chat("no-such-model", "x", false))
        .await;
    assert_eq!(answer.status, 404);
    served.signal("-TERM");
    assert_eq!(served.wait(Duration::from_secs(20)), 0);
    let log = served.log();
    assert!(!log.contains(PROVIDER_KEY), "provider key in the log");

    let (code, out, err) = run({
        let mut c = stockyard(&db);
        c.args(["traces", "--last", "10"]);
        c
    });
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out.lines().filter(|l| l.contains("gpt-4o-mini")).count(),
        5,
        "{out}"
    );
    assert!(out.contains("model_not_found"));
    let (_, out, _) = run({
        let mut c = stockyard(&db);
        c.args(["traces", "--status", "404", "--json"]);
        c
    });
    assert_eq!(out.lines().count(), 1);
    assert!(!out.contains(PROVIDER_KEY));

    let (code, out, _) = run({
        let mut c = stockyard(&db);
        c.args(["spend", "--by", "model", "--since", "1h"]);
        c
    });
    assert_eq!(code, 0);
    // 5 requests of 3900 nano-dollars each.
    assert!(out.contains("$0.000019500"), "{out}");
}

#[test]
fn offline_module_changes_are_audited_and_tampering_fails_verify() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.db");
    for args in [
        vec!["modules", "disable", "trace"],
        vec!["modules", "set", "trace", "capture_bodies=true"],
        vec!["modules", "enable", "trace"],
    ] {
        let (code, out, err) = run({
            let mut c = stockyard(&db);
            c.args(&args);
            c
        });
        assert_eq!(code, 0, "{args:?}: {out}{err}");
    }
    let (code, out, _) = run({
        let mut c = stockyard(&db);
        c.args(["modules", "list"]);
        c
    });
    assert_eq!(code, 0);
    assert!(
        out.lines().any(|l| l.starts_with("trace")
            && l.contains("true")
            && l.contains("capture_bodies\":true")),
        "{out}"
    );

    let (code, out, _) = run({
        let mut c = stockyard(&db);
        c.args(["audit", "verify"]);
        c
    });
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("3 entries"), "{out}");

    let export = dir.path().join("ledger.jsonl");
    let (code, _, _) = run({
        let mut c = stockyard(&db);
        c.args(["audit", "export", "--out"]).arg(&export);
        c
    });
    assert_eq!(code, 0);
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&export)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["actor"], "cli:tester");

    rusqlite::Connection::open(&db)
        .unwrap()
        .execute("UPDATE ledger SET actor = 'someone-else' WHERE seq = 2", [])
        .unwrap();
    let (code, out, _) = run({
        let mut c = stockyard(&db);
        c.args(["audit", "verify"]);
        c
    });
    assert_eq!(code, 1);
    assert!(out.contains("entry 2"), "{out}");
}

#[test]
fn prices_update_and_version() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("p.db");
    let file = dir.path().join("prices.json");
    std::fs::write(&file, r#"{"my-model": {"litellm_provider": "openai", "input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6}}"#).unwrap();
    let (code, out, err) = run({
        let mut c = stockyard(&db);
        c.args(["prices", "update"]).arg(&file);
        c
    });
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("loaded 1 priced models"), "{out}");
    std::fs::write(&file, "{ not json").unwrap();
    let (code, _, err) = run({
        let mut c = stockyard(&db);
        c.args(["prices", "update"]).arg(&file);
        c
    });
    assert_eq!(code, 1);
    assert!(err.contains("not valid JSON"), "{err}");

    let (code, out, _) = run({
        let mut c = stockyard(&db);
        c.arg("version");
        c
    });
    assert_eq!(code, 0);
    let v = stockyard::store::SCHEMA_VERSION;
    assert!(
        out.contains(&format!("schema version {v} (supported)"))
            && out.contains(&format!("at schema version {v}")),
        "{out}"
    );
}

#[test]
fn a_database_from_a_newer_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("new.db");
    rusqlite::Connection::open(&db)
        .unwrap()
        .pragma_update(None, "user_version", 999)
        .unwrap();
    let (code, _, err) = run({
        let mut c = stockyard(&db);
        c.args(["traces"]);
        c
    });
    assert_eq!(code, 1);
    assert!(err.contains("newer"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_a_running_stream_finish_and_records_it() {
    let mock = mock_upstream::MockUpstream::start().await.unwrap();
    mock.push(mock_upstream::Behavior {
        chunk_delay_ms: 200,
        chunks: Some(5),
        ..Default::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("stream.db");
    let mut served = Served::start(&db, &mock.base_url(), &[]);
    let client = common::TestClient::new(served.url.clone());
    let response = client
        .send(
            hyper::Method::POST,
            "/v1/chat/completions",
            &chat("gpt-4o-mini", "hi", true),
            &[],
        )
        .await;
    assert_eq!(response.status(), 200);
    served.signal("-TERM");
    let (frames, error) = common::read_frames(response, Duration::from_secs(10)).await;
    assert_eq!(error, None);
    let body: String = frames
        .iter()
        .map(|(_, b)| String::from_utf8_lossy(b).into_owned())
        .collect();
    assert!(body.ends_with("data: [DONE]\n\n"), "{body}");
    assert_eq!(served.wait(Duration::from_secs(20)), 0);
    let rows: i64 = rusqlite::Connection::open(&db)
        .unwrap()
        .query_row(
            "SELECT COUNT(*) FROM traces WHERE stream = 1 AND error_class IS NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(rows, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn env_keys_admin_changes_through_the_server_and_online_backup() {
    let mock = mock_upstream::MockUpstream::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("keys.db");
    let admin_key = "admin-0123456789abcdef";
    let mut served = Served::start(
        &db,
        &mock.base_url(),
        &[
            ("STOCKYARD_API_KEYS", "sk-c1, sk-c2"),
            ("STOCKYARD_ADMIN_KEY", admin_key),
            ("STOCKYARD_STORE__BATCH_INTERVAL_MS", "5"),
        ],
    );
    let client = common::TestClient::new(served.url.clone());
    let body = chat("gpt-4o-mini", "hi", false);
    assert_eq!(client.post("/v1/chat/completions", &body).await.status, 401);
    let ok = client
        .call(
            hyper::Method::POST,
            "/v1/chat/completions",
            &body,
            &[("authorization", "Bearer sk-c2")],
        )
        .await;
    assert_eq!(ok.status, 200);

    // The CLI changes a module through the running server's admin API.
    let (code, out, err) = run({
        let mut c = stockyard(&db);
        c.args(["modules", "--server", &served.url, "disable", "cost"])
            .env("STOCKYARD_ADMIN_KEY", admin_key);
        c
    });
    assert_eq!(code, 0, "{out}{err}");
    let (code, _, err) = run({
        let mut c = stockyard(&db);
        c.args(["modules", "--server", &served.url, "disable", "cost"])
            .env("STOCKYARD_ADMIN_KEY", "wrong-key-0123456789");
        c
    });
    assert_eq!(code, 1);
    assert!(err.contains("401"), "{err}");
    let ok = client
        .call(
            hyper::Method::POST,
            "/v1/chat/completions",
            &body,
            &[("authorization", "Bearer sk-c1")],
        )
        .await;
    assert_eq!(ok.status, 200);

    // A consistent copy while the server runs.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let copy = dir.path().join("copy.db");
    let (code, _, err) = run({
        let mut c = stockyard(&db);
        c.arg("backup").arg(&copy);
        c
    });
    assert_eq!(code, 0, "{err}");
    let conn = rusqlite::Connection::open(&copy).unwrap();
    let costs: Vec<i64> = conn
        .prepare("SELECT cost_nanos FROM traces WHERE status = 200 ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    // "hi": 5 tokens in at 150, 5 out at 600; then the cost module is off.
    assert_eq!(
        costs,
        [750 + 3_000, 0],
        "cost module disabled for the second request"
    );
    let entries: i64 = conn
        .query_row("SELECT COUNT(*) FROM ledger", [], |r| r.get(0))
        .unwrap();
    assert_eq!(entries, 1);

    served.signal("-INT");
    assert_eq!(served.wait(Duration::from_secs(20)), 0);
    assert!(!served.log().contains("sk-c1") && !served.log().contains(admin_key));
}

/// Runs `stockyard ARGS` on `db`; panics with the output unless it exits 0.
fn ok(db: &Path, args: &[&str]) -> String {
    let (code, out, err) = run({
        let mut c = stockyard(db);
        c.args(args);
        c
    });
    assert_eq!(code, 0, "{args:?}: {out}{err}");
    out
}

/// `n` offline module changes, so the ledger holds entries 1..=n.
fn ledger_of(db: &Path, n: usize) {
    for i in 0..n {
        let verb = if i % 2 == 0 { "disable" } else { "enable" };
        ok(db, &["modules", verb, "cost"]);
    }
}

/// The published head as `audit verify` prints it (`SEQ:HASH`).
fn printed_head(out: &str) -> String {
    out.lines()
        .find_map(|l| {
            l.strip_prefix("ok: ")?
                .split_once("; head ")
                .map(|(_, h)| h)
        })
        .unwrap_or_else(|| panic!("no head in {out}"))
        .to_string()
}

#[test]
fn issue_9_a_cut_ledger_tail_is_named_by_verify() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cut.db");
    ledger_of(&db, 6);
    let out = ok(&db, &["audit", "verify"]);
    assert!(out.contains("ok: 6 entries; head 6:"), "{out}");
    let head = printed_head(&out);
    let head_file = std::fs::read_to_string(dir.path().join("cut.db.ledger-head")).unwrap();
    // SEQ:HASH, then the head's MAC.
    assert!(head_file.starts_with(&format!("{head}:")), "{head_file}");
    // The head published from a log: the correct one passes, a wrong hash or a later seq fails.
    ok(&db, &["audit", "verify", "--expect-head", &head]);
    let wrong = format!("6:{}", "0".repeat(64));
    let (code, out, _) = run({
        let mut c = stockyard(&db);
        c.args(["audit", "verify", "--expect-head", &wrong]);
        c
    });
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("entry 6") && out.contains("published head"),
        "{out}"
    );

    rusqlite::Connection::open(&db)
        .unwrap()
        .execute("DELETE FROM ledger WHERE seq > 4", [])
        .unwrap();
    let (code, out, _) = run({
        let mut c = stockyard(&db);
        c.args(["audit", "verify"]);
        c
    });
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("2 entries missing after 4"), "{out}");

    // Without the head file, a head kept elsewhere still catches the cut.
    std::fs::remove_file(dir.path().join("cut.db.ledger-head")).unwrap();
    let (code, out, _) = run({
        let mut c = stockyard(&db);
        c.args(["audit", "verify", "--expect-head", &head]);
        c
    });
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("2 entries missing after 4"), "{out}");

    // And no new entry is appended over the cut (that would publish a head hiding it).
    std::fs::write(dir.path().join("cut.db.ledger-head"), &head_file).unwrap();
    let (code, _, err) = run({
        let mut c = stockyard(&db);
        c.args(["modules", "enable", "cost"]);
        c
    });
    assert_eq!(code, 1);
    assert!(err.contains("were cut"), "{err}");
}

/// Re-seals ledger rows from `from` on as a forger with the database but not the key would:
/// same canonical JSON and SHA-256 chain as `src/ledger`, MACs left as they were.
fn recompute_chain(conn: &rusqlite::Connection, from: i64) {
    use sha2::Digest;
    let rows: Vec<(i64, i64, String, String, String, String)> = conn
        .prepare("SELECT seq, ts_ms, actor, action, target, details FROM ledger ORDER BY seq")
        .unwrap()
        .query_map([], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
            ))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let mut prev = "0".repeat(64);
    for (seq, ts_ms, actor, action, target, details) in rows {
        if seq >= from {
            let details: serde_json::Value = serde_json::from_str(&details).unwrap();
            let canonical = serde_json::json!({
                "action": action, "actor": actor, "details": details,
                "seq": seq, "target": target, "ts_ms": ts_ms,
            })
            .to_string();
            let mut hasher = sha2::Sha256::new();
            hasher.update(prev.as_bytes());
            hasher.update(canonical.as_bytes());
            let hash = hex::encode(hasher.finalize());
            conn.execute(
                "UPDATE ledger SET prev_hash = ?1, hash = ?2 WHERE seq = ?3",
                rusqlite::params![prev, hash, seq],
            )
            .unwrap();
            prev = hash;
        } else {
            prev = conn
                .query_row("SELECT hash FROM ledger WHERE seq = ?1", [seq], |r| {
                    r.get(0)
                })
                .unwrap();
        }
    }
}

#[test]
fn issue_9_a_chain_recomputed_without_the_key_fails_verify_at_the_rewritten_entry() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("forged.db");
    ledger_of(&db, 4);
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute(
        "UPDATE ledger SET actor = 'cli:someone-else' WHERE seq = 2",
        [],
    )
    .unwrap();
    recompute_chain(&conn, 2);
    drop(conn);
    let (code, out, _) = run({
        let mut c = stockyard(&db);
        c.args(["audit", "verify"]);
        c
    });
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("entry 2") && out.contains("MAC"), "{out}");

    // The same check under STOCKYARD_LEDGER_KEY: a different key fails every anchored entry.
    let (code, out, _) = run({
        let mut c = stockyard(&db);
        c.args(["audit", "verify"])
            .env("STOCKYARD_LEDGER_KEY", "ff".repeat(32));
        c
    });
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("entry 1") && out.contains("MAC"), "{out}");
}

#[test]
fn issue_9_read_only_commands_never_create_or_migrate_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("missing.db");
    for args in [
        vec!["audit", "verify"],
        vec!["audit", "export"],
        vec!["traces"],
        vec!["spend"],
        vec!["modules", "list"],
        vec!["routing", "show"],
    ] {
        let (code, out, err) = run({
            let mut c = stockyard(&db);
            c.args(&args);
            c
        });
        assert_eq!(code, 1, "{args:?}: {out}{err}");
        assert!(
            err.contains(&db.display().to_string()) && err.contains("does not exist"),
            "{args:?}: {err}"
        );
        assert!(!db.exists(), "{args:?} created the database");
    }
    ok(&db, &["version"]);
    assert!(!db.exists(), "version created the database");
    let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(names.is_empty(), "files appeared: {names:?}");

    // A file at an older schema is left as it is, with a hint to migrate it.
    let old = dir.path().join("old.db");
    rusqlite::Connection::open(&old)
        .unwrap()
        .pragma_update(None, "user_version", 1)
        .unwrap();
    let (code, _, err) = run({
        let mut c = stockyard(&old);
        c.args(["audit", "verify"]);
        c
    });
    assert_eq!(code, 1);
    assert!(
        err.contains("schema version 1") && err.contains("stockyard serve"),
        "{err}"
    );
    let version: i64 = rusqlite::Connection::open(&old)
        .unwrap()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_9_a_cli_change_beside_a_running_server_takes_effect_in_it() {
    let mock = mock_upstream::MockUpstream::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("live.db");
    let mut served = Served::start(
        &db,
        &mock.base_url(),
        &[("STOCKYARD_STORE__BATCH_INTERVAL_MS", "5")],
    );
    let runtime = dir.path().join("live.db.server");
    assert!(runtime.exists(), "no runtime file beside the database");

    // No --server and no admin key: the CLI finds the server and goes through it.
    let out = ok(&db, &["modules", "set", "trace", "capture_bodies=true"]);
    assert!(out.contains("ledger entry 1"), "{out}");
    let client = common::TestClient::new(served.url.clone());
    let marker = "issue-9-marker-7f3a";
    let answer = client
        .post("/v1/chat/completions", &chat("gpt-4o-mini", marker, false))
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = ok(&db, &["traces", "--json", "--last", "5"]);
        if out.lines().any(|l| {
            let row: serde_json::Value = serde_json::from_str(l).unwrap();
            row["request_body"]
                .as_str()
                .is_some_and(|b| b.contains(marker))
        }) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the running server never captured the body: {out}\n{}",
            served.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let out = ok(&db, &["audit", "verify"]);
    assert!(out.contains("ok: 1 entries; head 1:"), "{out}");

    served.signal("-TERM");
    assert_eq!(served.wait(Duration::from_secs(20)), 0);
    assert!(
        !runtime.exists(),
        "runtime file left after a clean shutdown"
    );
}

#[test]
fn issue_9_a_stale_runtime_file_is_ignored_and_an_unreachable_server_refuses_the_change() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("stale.db");
    let runtime = dir.path().join("stale.db.server");
    // A pid that is surely gone: a child that already exited and was reaped.
    let mut child = Command::new("true").spawn().unwrap();
    let dead_pid = child.id();
    child.wait().unwrap();
    let info = |pid: u32, addr: &str| {
        serde_json::json!({"pid": pid, "addr": addr, "token": "t".repeat(64)}).to_string()
    };
    std::fs::write(&runtime, info(dead_pid, "127.0.0.1:9")).unwrap();
    let out = ok(&db, &["modules", "disable", "cost"]);
    assert!(out.contains("ledger entry 1"), "{out}");

    // A live pid (this test) holding the database's lock as a server does, whose address accepts
    // connections but never answers (a listener nobody accepts on): nothing may be changed.
    let lock = hold_lock(&db);
    let wedged = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = wedged.local_addr().unwrap().to_string();
    std::fs::write(&runtime, info(std::process::id(), &addr)).unwrap();
    let (code, out, err) = run({
        let mut c = stockyard(&db);
        c.args(["modules", "enable", "cost"]);
        c
    });
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("--server URL --admin-key"), "{err}");
    drop(lock);
    let out = ok(&db, &["audit", "verify"]);
    assert!(out.contains("ok: 1 entries"), "{out}");
}

/// Holds `<db>.lock` as a running server does, until dropped.
fn hold_lock(db: &Path) -> std::fs::File {
    let mut name = db.as_os_str().to_owned();
    name.push(".lock");
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(std::path::PathBuf::from(name))
        .unwrap();
    file.try_lock().unwrap();
    file
}

/// Runs `cmd` to its end, killing it (and failing) if it is still running after `limit`.
fn run_bounded(mut cmd: Command, limit: Duration) -> (i32, String, String) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let output = child.wait_with_output().unwrap();
            panic!(
                "still running after {limit:?}: {}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = child.wait_with_output().unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into(),
        String::from_utf8_lossy(&output.stderr).into(),
    )
}

fn head_path(db: &Path) -> std::path::PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(".ledger-head");
    name.into()
}

fn key_path(db: &Path) -> std::path::PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(".ledger-key");
    name.into()
}

/// `audit verify` on `db`: (exit code, standard output).
fn verify(db: &Path) -> (i32, String) {
    let (code, out, _) = run({
        let mut c = stockyard(db);
        c.args(["audit", "verify"]);
        c
    });
    (code, out)
}

#[test]
fn a_ledger_with_every_mac_cleared_and_its_chain_recomputed_fails_verify() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("stripped.db");
    ledger_of(&db, 3);
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute("UPDATE ledger SET mac = NULL", []).unwrap();
    conn.execute("UPDATE ledger SET actor = 'cli:forger' WHERE seq = 2", [])
        .unwrap();
    recompute_chain(&conn, 1);
    let forged_head: (i64, String) = conn
        .query_row(
            "SELECT seq, hash FROM ledger ORDER BY seq DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    drop(conn);

    // The head file deleted...
    std::fs::remove_file(head_path(&db)).unwrap();
    let (code, out) = verify(&db);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("entry 1") && out.contains("no MAC"), "{out}");
    // ...or rewritten to the forged chain's head, in the old SEQ:HASH form.
    std::fs::write(
        head_path(&db),
        format!("{}:{}\n", forged_head.0, forged_head.1),
    )
    .unwrap();
    let (code, out) = verify(&db);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("entry 1") && out.contains("no MAC"), "{out}");
}

#[test]
fn an_anchored_ledger_fails_verify_without_an_authenticated_head_file() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("head.db");
    ledger_of(&db, 3);
    let out = ok(&db, &["audit", "verify"]);
    let head = printed_head(&out);
    let path = head_path(&db);

    // Without its MAC (rewritten by someone without the key)...
    std::fs::write(&path, format!("{head}\n")).unwrap();
    let (code, out) = verify(&db);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&path.display().to_string()) && out.contains("no valid MAC"),
        "{out}"
    );
    // ...with a MAC that is not the key's...
    std::fs::write(&path, format!("{head}:{}\n", "ab".repeat(32))).unwrap();
    let (code, out) = verify(&db);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("no valid MAC"), "{out}");
    // ...or missing: named, even with a good --expect-head (which still works on its own).
    std::fs::remove_file(&path).unwrap();
    let (code, out, _) = run({
        let mut c = stockyard(&db);
        c.args(["audit", "verify", "--expect-head", &head]);
        c
    });
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&path.display().to_string()) && out.contains("is missing"),
        "{out}"
    );
}

#[test]
fn entries_from_before_the_ledger_key_are_anchored_by_the_next_writing_open() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("old.db");
    ledger_of(&db, 2);
    // As a build before MACs left it: no MACs, no key file, no head file.
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute("UPDATE ledger SET mac = NULL", [])
        .unwrap();
    std::fs::remove_file(key_path(&db)).unwrap();
    std::fs::remove_file(head_path(&db)).unwrap();

    ok(&db, &["modules", "enable", "cost"]);
    let out = ok(&db, &["audit", "verify"]);
    assert!(out.contains("ok: 3 entries; head 3:"), "{out}");
    assert!(!out.contains("warning"), "{out}");
    let unmaced: i64 = rusqlite::Connection::open(&db)
        .unwrap()
        .query_row("SELECT COUNT(*) FROM ledger WHERE mac IS NULL", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(unmaced, 0);
}

#[test]
fn a_lost_or_different_ledger_key_refuses_to_write_instead_of_forking_the_ledger() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("keyed.db");
    ledger_of(&db, 2);
    let key_file = key_path(&db);
    let kept = dir.path().join("kept-key");
    std::fs::rename(&key_file, &kept).unwrap();

    let (code, out, err) = run({
        let mut c = stockyard(&db);
        c.args(["modules", "enable", "cost"]);
        c
    });
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains("the ledger is anchored with a key that is not here")
            && err.contains(&key_file.display().to_string())
            && err.contains("STOCKYARD_LEDGER_KEY"),
        "{err}"
    );
    assert!(!key_file.exists(), "a new key file was made");

    // Another key in the environment: refused too, by the offline change and by serve.
    let other = "ee".repeat(32);
    let (code, _, err) = run({
        let mut c = stockyard(&db);
        c.args(["modules", "enable", "cost"])
            .env("STOCKYARD_LEDGER_KEY", &other);
        c
    });
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("anchored with a key that is not here")
            && err.contains("STOCKYARD_LEDGER_KEY does not match the MAC of entry 2"),
        "{err}"
    );
    let (code, _, err) = run_bounded(
        {
            let mut c = stockyard(&db);
            c.args(["serve", "--listen", "127.0.0.1:0"])
                .env("STOCKYARD_LEDGER_KEY", &other);
            c
        },
        Duration::from_secs(20),
    );
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("anchored with a key that is not here"),
        "{err}"
    );

    // With the key back, the ledger goes on as one chain.
    std::fs::rename(&kept, &key_file).unwrap();
    ok(&db, &["modules", "enable", "cost"]);
    let out = ok(&db, &["audit", "verify"]);
    assert!(out.contains("ok: 3 entries"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_serve_on_the_database_is_refused_and_the_first_keeps_its_runtime_file() {
    let mock = mock_upstream::MockUpstream::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("twice.db");
    let mut served = Served::start(&db, &mock.base_url(), &[]);
    let runtime = dir.path().join("twice.db.server");
    let first = std::fs::read_to_string(&runtime).unwrap();
    let pid = served.child.as_ref().unwrap().id();
    let addr = served.url.trim_start_matches("http://").to_string();

    let (code, out, err) = run_bounded(
        {
            let mut c = stockyard(&db);
            c.args(["serve", "--listen", "127.0.0.1:0"]);
            c
        },
        Duration::from_secs(20),
    );
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains(&format!("pid {pid}")) && err.contains(&addr),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&runtime).unwrap(), first);
    // The CLI still reaches the first server through it.
    let out = ok(&db, &["modules", "disable", "cost"]);
    assert!(out.contains("ledger entry 1"), "{out}");

    served.signal("-TERM");
    assert_eq!(served.wait(Duration::from_secs(20)), 0);
}

#[test]
fn an_offline_change_never_writes_while_another_process_holds_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("busy.db");
    ledger_of(&db, 1);
    // A server between locking the database and publishing its address.
    let lock = hold_lock(&db);
    let (code, out, err) = run_bounded(
        {
            let mut c = stockyard(&db);
            c.args(["modules", "disable", "trace"]);
            c
        },
        Duration::from_secs(30),
    );
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains("busy.db.lock") && err.contains("--server URL --admin-key"),
        "{err}"
    );
    drop(lock);
    let out = ok(&db, &["audit", "verify"]);
    assert!(out.contains("ok: 1 entries"), "{out}");
}

/// Waits (at most 10 s) until the server's log contains `text`; returns the log.
fn wait_for_log(served: &Served, text: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let log = served.log();
        if log.contains(text) || Instant::now() > deadline {
            return log;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn issue_9_serve_without_providers_warns_naming_the_variables_that_enable_them() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = stockyard(&dir.path().join("x.db"));
    cmd.args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for var in stockyard::config::provider_env_vars() {
        cmd.env_remove(var);
    }
    let served = Served::spawn(cmd);
    let log = wait_for_log(&served, "no providers configured");
    let warning = log
        .lines()
        .find(|l| l.contains("no providers configured"))
        .unwrap_or_else(|| panic!("no warning in:\n{log}"));
    assert!(warning.contains("WARN"), "{warning}");
    for var in [
        "OPENAI_API_KEY",
        "ANTHROPIC_API_KEY",
        "GEMINI_API_KEY",
        "GROQ_API_KEY",
        "OLLAMA_BASE_URL",
        "AZURE_OPENAI_API_KEY",
    ] {
        assert!(warning.contains(var), "{var} missing: {warning}");
    }
}

#[tokio::test]
async fn issue_9_logs_written_to_a_pipe_carry_no_colour_codes() {
    let mock = mock_upstream::MockUpstream::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let served = Served::start(&dir.path().join("x.db"), &mock.base_url(), &[]);
    let client = common::TestClient::new(served.url.clone());
    let answer = client
        .post("/v1/chat/completions", &chat("gpt-4o-mini", "hi", false))
        .await;
    assert_eq!(answer.status, 200);
    // STOCKYARD_LOG=debug: the upstream call is logged too, with its level and target.
    let log = wait_for_log(&served, "DEBUG");
    assert!(log.contains(" INFO ") && log.contains("DEBUG"), "{log}");
    assert!(
        !log.contains("\u{1b}["),
        "ANSI codes in a piped log:\n{log:?}"
    );
}

#[test]
fn issue_9_config_check_reports_every_wrong_type() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("types.toml");
    std::fs::write(
        &file,
        "listen = [4000]\n[store]\nbatch_size = \"many\"\n[admin]\nkey = 12\n",
    )
    .unwrap();
    let (code, _, err) = run({
        let mut c = stockyard(&dir.path().join("x.db"));
        c.args(["config", "check"]).arg(&file);
        c
    });
    assert_eq!(code, 1, "{err}");
    for field in ["listen", "store.batch_size", "admin.key"] {
        assert!(
            err.lines().any(|l| l.trim_start().starts_with(field)),
            "{field} not reported:\n{err}"
        );
    }
}

#[test]
fn config_check_names_a_wrong_typed_secret_field_without_echoing_its_value() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("secrets.toml");
    std::fs::write(
        &file,
        "[auth]\nkeys = \"sk-live-file-client-key-1\"\n[admin]\nkey = 12345678901234567\n\
         [providers.openai]\napi_key = [\"sk-proj-in-a-list\"]\n[providers.groq]\napi_key = 271828182845\n",
    )
    .unwrap();
    let (code, out, err) = run({
        let mut c = stockyard(&dir.path().join("x.db"));
        c.args(["config", "check"]).arg(&file);
        c
    });
    assert_eq!(code, 1, "{out}{err}");
    for field in [
        "auth.keys",
        "admin.key",
        "providers.openai.api_key",
        "providers.groq.api_key",
    ] {
        assert!(err.contains(field), "{field} not named:\n{err}");
    }
    for secret in [
        "sk-live-file-client-key-1",
        "12345678901234567",
        "sk-proj-in-a-list",
        "271828182845",
    ] {
        assert!(
            !err.contains(secret) && !out.contains(secret),
            "{secret} echoed:\n{err}"
        );
    }

    // The same from the environment: STOCKYARD_AUTH__KEYS given a bare string.
    std::fs::write(dir.path().join("none.toml"), "").unwrap();
    let (code, _, err) = run({
        let mut c = stockyard(&dir.path().join("x.db"));
        c.args(["config", "check"])
            .arg(dir.path().join("none.toml"))
            .env("STOCKYARD_AUTH__KEYS", "sk-live-env-client-key-2");
        c
    });
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("auth.keys") && !err.contains("sk-live-env-client-key-2"),
        "{err}"
    );
}

#[test]
fn an_unreachable_postgres_store_is_named_without_its_password_and_no_key_is_made() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("stockyard.db");
    // Nothing listens on port 1.
    for args in [vec!["traces"], vec!["serve", "--listen", "127.0.0.1:0"]] {
        let (code, out, err) = run({
            let mut c = stockyard(&db);
            c.args(&args).env(
                "STOCKYARD_STORE",
                "postgres://postgres:hunter2@127.0.0.1:1/test",
            );
            c
        });
        assert_eq!(code, 1, "{args:?}: {out}{err}");
        assert!(
            err.contains("postgres://postgres:***@127.0.0.1:1/test"),
            "{args:?}: {err}"
        );
        assert!(
            !err.contains("hunter2"),
            "{args:?} showed the password: {err}"
        );
    }
    // At most the serve's lock file: no SQLite file, no ledger or master key made for a store
    // that never opened.
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "stockyard.db.lock")
        .collect();
    assert!(names.is_empty(), "files appeared: {names:?}");

    let (code, _, err) = run({
        let mut c = stockyard(&db);
        c.args(["traces"]).env("STOCKYARD_STORE", "mysql://h/db");
        c
    });
    assert_eq!(code, 1);
    assert!(err.contains("store.url: unknown store \"mysql\""), "{err}");
}

#[tokio::test]
async fn issue_9_the_start_up_log_states_the_effective_auth_mode() {
    let mock = mock_upstream::MockUpstream::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let served = Served::start(
        &dir.path().join("keys.db"),
        &mock.base_url(),
        &[("STOCKYARD_API_KEYS", "sk-client-mode-0123")],
    );
    let log = wait_for_log(&served, "stockyard listening");
    assert!(
        log.contains("every /v1 route requires a client key"),
        "{log}"
    );
    assert!(!log.contains("sk-client-mode-0123"), "{log}");
    drop(served);
    let served = Served::start(&dir.path().join("local.db"), &mock.base_url(), &[]);
    let log = wait_for_log(&served, "stockyard listening");
    assert!(log.contains("local mode"), "{log}");
}
