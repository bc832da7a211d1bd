//! The real binary on PostgreSQL: `serve --store postgres://…` proxies and records its traces in
//! the database, `audit verify` passes there, and `migrate-store` moves a single node's file
//! (keys, ledger, traces, spend) into an empty PostgreSQL store that then serves the same keys.
//!
//! Each test has a schema of its own on the server `STOCKYARD_TEST_PG` (default
//! `postgres://postgres@127.0.0.1:5432/test`), dropped at the end. An unreachable server fails
//! the test; `STOCKYARD_SKIP_PG=1` skips it, saying so.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::pg::{PASSWORD, Schema, Served, chat_status, eventually, ok, ok_with, run, sql};
use common::{PROVIDER_KEY, TestClient, chat};
use hyper::Method;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_on_postgres_records_traces_and_the_ledger_verifies() {
    let Some(schema) = Schema::new() else { return };
    let mock = mock_upstream::MockUpstream::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("node.db");
    let mut served = Served::start(&db, &mock.base_url(), &schema.url);
    let client = TestClient::new(served.url.clone());
    let answer = client
        .post(
            "/v1/chat/completions",
            &chat("gpt-4o-mini", "Say hello", false),
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    eventually("the trace row in postgres", &served, || {
        schema.count("SELECT COUNT(*) FROM traces WHERE requested_model = 'gpt-4o-mini'") == 1
    });
    assert_eq!(
        schema.count("SELECT SUM(requests) FROM spend_daily WHERE model = 'gpt-4o-mini'"),
        1
    );
    let ready = client.get("/ready").await;
    assert_eq!(ready.status, 200, "{}", ready.text());
    served.stop();
    let log = served.log();
    assert!(!log.contains(PASSWORD), "password in the log");
    assert!(!log.contains(PROVIDER_KEY), "provider key in the log");
    assert!(
        !db.exists(),
        "no sqlite file is made beside a postgres store"
    );

    // Offline changes go to PostgreSQL too, each with its ledger entry, and the chain verifies.
    ok(
        &db,
        &["modules", "disable", "trace", "--store", &schema.url],
    );
    ok(&db, &["modules", "enable", "trace", "--store", &schema.url]);
    assert_eq!(schema.count("SELECT COUNT(*) FROM ledger"), 2);
    let out = ok(&db, &["audit", "verify", "--store", &schema.url]);
    assert!(out.contains("ok: 2 entries"), "{out}");
    let out = ok(&db, &["traces", "--store", &schema.url]);
    assert!(out.contains("gpt-4o-mini"), "{out}");

    // A ledger entry cut from the database is caught by the head this node published.
    sql(
        &schema.base,
        &format!("DELETE FROM {}.ledger WHERE seq = 2", schema.name),
    );
    let (code, out, _) = run(&db, &["audit", "verify", "--store", &schema.url]);
    assert_eq!(code, 1, "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_store_copies_a_file_with_its_ledger_keys_and_traces() {
    let Some(schema) = Schema::new() else { return };
    let mock = mock_upstream::MockUpstream::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("single.db");
    let sqlite = format!("sqlite:{}", db.display());

    // A single node's history: a key, a module change, three answered requests.
    let created = ok(&db, &["keys", "create", "ci", "--json"]);
    let key: serde_json::Value = serde_json::from_str(created.trim()).unwrap();
    let key = key["key"].as_str().unwrap().to_string();
    ok(&db, &["modules", "disable", "cost_guard"]);
    let mut served = Served::start(&db, &mock.base_url(), &sqlite);
    let client = TestClient::new(served.url.clone());
    let auth = format!("Bearer {key}");
    for _ in 0..3 {
        let answer = client
            .call(
                Method::POST,
                "/v1/chat/completions",
                &chat("gpt-4o-mini", "hi", false),
                &[("authorization", &auth)],
            )
            .await;
        assert_eq!(answer.status, 200, "{}", answer.text());
    }
    served.stop();
    let before_verify = ok(&db, &["audit", "verify"]);
    let before_spend = ok(&db, &["spend", "--by", "key", "--since", "1d"]);
    let before_keys = ok(&db, &["keys", "list"]);

    let out = ok(
        &db,
        &["migrate-store", "--from", &sqlite, "--to", &schema.url],
    );
    assert!(out.contains("copied"), "{out}");
    assert_eq!(schema.count("SELECT COUNT(*) FROM traces"), 3);
    // Copying again into a store that holds data is refused.
    let (code, _, err) = run(
        &db,
        &["migrate-store", "--from", &sqlite, "--to", &schema.url],
    );
    assert_eq!(code, 1);
    assert!(
        err.contains("not empty") && !err.contains(PASSWORD),
        "{err}"
    );

    let pg = ["--store", schema.url.as_str()];
    let with_pg = |args: &[&'static str]| -> Vec<String> {
        args.iter()
            .chain(pg.iter())
            .map(|s| s.to_string())
            .collect()
    };
    let after_verify = ok(&db, &as_strs(&with_pg(&["audit", "verify"])));
    assert_eq!(after_verify, before_verify, "the same chain, the same head");
    let after_spend = ok(
        &db,
        &as_strs(&with_pg(&["spend", "--by", "key", "--since", "1d"])),
    );
    assert_eq!(after_spend, before_spend);
    let after_keys = ok(&db, &as_strs(&with_pg(&["keys", "list"])));
    assert_eq!(after_keys, before_keys);

    // The node, now on PostgreSQL, takes the same key.
    let mut served = Served::start(&db, &mock.base_url(), &schema.url);
    let client = TestClient::new(served.url.clone());
    let answer = client
        .call(
            Method::POST,
            "/v1/chat/completions",
            &chat("gpt-4o-mini", "hi", false),
            &[("authorization", &auth)],
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    eventually("the fourth trace", &served, || {
        schema.count("SELECT COUNT(*) FROM traces") == 4
    });
    served.stop();
    ok(&db, &as_strs(&with_pg(&["audit", "verify"])));
}

fn as_strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

/// Waits (bounded by `within`) until a request with `key` on `client` answers `want`; returns
/// how long that took.
async fn until_status(client: &TestClient, key: &str, want: u16, within: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let got = chat_status(client, key).await;
        if got == want {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < within,
            "still {got} after {within:?}, wanted {want}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_revocations_and_module_settings_reach_every_node_within_a_second() {
    let Some(schema) = Schema::new() else { return };
    let mock = mock_upstream::MockUpstream::start().await.unwrap();
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let dbs: Vec<_> = dirs.iter().map(|d| d.path().join("node.db")).collect();
    // Every node of one store shares the ledger key (it also hashes the client keys).
    let env = [
        ("STOCKYARD_LEDGER_KEY", "00112233445566778899aabbccddeeff"),
        ("STOCKYARD_API_KEYS", "sk-static-node-key-0001"),
        ("STOCKYARD_ADMIN_KEY", ADMIN_KEY),
    ];
    let mut nodes: Vec<Served> = dbs
        .iter()
        .map(|db| Served::start_with(db, &mock.base_url(), &schema.url, &env))
        .collect();
    let clients: Vec<TestClient> = nodes
        .iter()
        .map(|n| TestClient::new(n.url.clone()))
        .collect();

    let created = ok(
        &dbs[0],
        &["keys", "create", "shared", "--json", "--store", &schema.url],
    );
    let created: serde_json::Value = serde_json::from_str(created.trim()).unwrap();
    let key = created["key"].as_str().unwrap().to_string();
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(chat_status(&clients[0], &key).await, 200);
    let took = until_status(&clients[2], &key, 200, Duration::from_secs(1)).await;
    eprintln!("node 3 took the new key after {took:?}");
    // Node 2 checks a revocation against the keys it holds: it must have the key first.
    until_status(&clients[1], &key, 200, Duration::from_secs(1)).await;

    ok(&dbs[1], &["keys", "revoke", &id, "--store", &schema.url]);
    assert_eq!(chat_status(&clients[1], &key).await, 401);
    let took = until_status(&clients[0], &key, 401, Duration::from_secs(1)).await;
    eprintln!("node 1 refused the revoked key after {took:?}");
    until_status(&clients[2], &key, 401, Duration::from_secs(1)).await;

    // A module setting changed through node 1 is in force on node 3 within a second.
    let before = cost_guard_enabled(&clients[2]).await;
    let verb = if before { "disable" } else { "enable" };
    ok(
        &dbs[0],
        &["modules", verb, "cost_guard", "--store", &schema.url],
    );
    let start = Instant::now();
    while cost_guard_enabled(&clients[2]).await == before {
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "node 3 kept the old setting"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    eprintln!(
        "node 3 applied the module change after {:?}",
        start.elapsed()
    );

    for node in &mut nodes {
        node.stop();
    }
    // Checked against node 2's head file (it wrote the newest entry); a node that never wrote an
    // entry since it started keeps no head file.
    let out = ok_with(&dbs[1], &["audit", "verify", "--store", &schema.url], &env);
    assert!(out.contains("ok: 3 entries"), "{out}");
}

const ADMIN_KEY: &str = "node-admin-key-0123456789";

/// Whether `cost_guard` is enabled in the chain the node behind `client` runs.
async fn cost_guard_enabled(client: &TestClient) -> bool {
    let auth = format!("Bearer {ADMIN_KEY}");
    let answer = client
        .call(
            Method::GET,
            "/admin/modules",
            "",
            &[("authorization", &auth)],
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    answer.json()["modules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "cost_guard")
        .map(|m| m["enabled"] == true)
        .unwrap()
}
