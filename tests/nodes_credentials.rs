//! Provider credentials across the nodes of one PostgreSQL store, over real sockets: a key added
//! through node 1's admin API is used by node 3 within a second (the mock sees that key), a
//! rotation (a second key added, the first removed with the CLI) moves node 3 to the new key,
//! and removing the provider makes node 3 refuse its model. Skipped with `STOCKYARD_SKIP_PG=1`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::pg::{Schema, Served, ok_with};
use common::{TestClient, chat};
use hyper::Method;
use mock_upstream::MockUpstream;

const ADMIN_KEY: &str = "node-admin-key-0123456789";
const CLIENT_KEY: &str = "sk-static-node-key-0001";
const KEY_A: &str = "sk-stored-first-7c1d";
const KEY_B: &str = "sk-stored-second-2e9f";
const MODEL: &str = "clip/gpt-4o-mini";

/// Every node of one store shares the ledger key and the master key.
const ENV: [(&str, &str); 4] = [
    ("STOCKYARD_LEDGER_KEY", "00112233445566778899aabbccddeeff"),
    (
        "STOCKYARD_MASTER_KEY",
        "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0",
    ),
    ("STOCKYARD_API_KEYS", CLIENT_KEY),
    ("STOCKYARD_ADMIN_KEY", ADMIN_KEY),
];

async fn ask(client: &TestClient) -> u16 {
    let auth = format!("Bearer {CLIENT_KEY}");
    client
        .call(
            Method::POST,
            "/v1/chat/completions",
            &chat(MODEL, "hi", false),
            &[("authorization", &auth)],
        )
        .await
        .status
        .as_u16()
}

async fn admin(client: &TestClient, method: Method, path: &str, body: &str) -> serde_json::Value {
    let auth = format!("Bearer {ADMIN_KEY}");
    let answer = client
        .call(method, path, body, &[("authorization", &auth)])
        .await;
    assert_eq!(answer.status, 200, "{path}: {}", answer.text());
    answer.json()
}

fn last_key_sent(mock: &MockUpstream) -> String {
    let requests = mock.requests();
    let last = requests.last().expect("nothing went upstream");
    last.header("authorization").unwrap_or_default().to_string()
}

/// Waits (bounded by `within`) until `check` holds after a request to `client`; how long it took.
async fn until(
    client: &TestClient,
    within: Duration,
    what: &str,
    mut check: impl FnMut(u16) -> bool,
) -> Duration {
    let start = Instant::now();
    loop {
        if check(ask(client).await) {
            return start.elapsed();
        }
        assert!(start.elapsed() < within, "{what}: not after {within:?}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_added_rotated_and_removed_on_one_node_reach_another_within_a_second() {
    let Some(schema) = Schema::new() else { return };
    let mock = MockUpstream::start().await.unwrap();
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let dbs: Vec<_> = dirs.iter().map(|d| d.path().join("node.db")).collect();
    let mut nodes: Vec<Served> = dbs
        .iter()
        .map(|db| Served::start_with(db, &mock.base_url(), &schema.url, &ENV))
        .collect();
    let clients: Vec<TestClient> = nodes
        .iter()
        .map(|n| TestClient::new(n.url.clone()))
        .collect();
    // No provider `clip` yet: an unknown model everywhere.
    assert_eq!(ask(&clients[2]).await, 404);

    // Added through node 1's admin API: node 3 sends that key upstream within a second.
    let body = serde_json::json!({
        "name": "clip", "kind": "openai_compatible", "base_url": mock.base_url(), "key": KEY_A,
    });
    let added = admin(
        &clients[0],
        Method::POST,
        "/admin/providers",
        &body.to_string(),
    )
    .await;
    let id_a = added["details"]["id"].as_str().unwrap().to_string();
    let took = until(
        &clients[2],
        Duration::from_secs(1),
        "node 3 uses the key",
        |s| s == 200,
    )
    .await;
    eprintln!("node 3 used the added key after {took:?}");
    assert_eq!(last_key_sent(&mock), format!("Bearer {KEY_A}"));

    // Rotated: a second key through node 1, the first removed with the CLI beside node 2.
    let body = serde_json::json!({
        "name": "clip", "kind": "openai_compatible", "base_url": mock.base_url(), "key": KEY_B,
    });
    admin(
        &clients[0],
        Method::POST,
        "/admin/providers",
        &body.to_string(),
    )
    .await;
    ok_with(
        &dbs[1],
        &["providers", "remove", &id_a, "--store", &schema.url],
        &ENV,
    );
    // The pool takes its keys in turn, so three in a row with the new key means the old one
    // is gone from node 3.
    let start = Instant::now();
    let mut in_a_row = 0;
    while in_a_row < 3 {
        assert_eq!(ask(&clients[2]).await, 200);
        if last_key_sent(&mock) == format!("Bearer {KEY_B}") {
            in_a_row += 1;
        } else {
            in_a_row = 0;
            assert!(
                start.elapsed() < Duration::from_secs(1),
                "node 3 kept the removed key; log:\n{}",
                nodes[2].log()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
    eprintln!("node 3 left the removed key after {:?}", start.elapsed());
    for _ in 0..6 {
        assert_eq!(ask(&clients[2]).await, 200);
        assert_eq!(last_key_sent(&mock), format!("Bearer {KEY_B}"));
    }

    // The provider removed through node 1: node 3 refuses its model.
    admin(&clients[0], Method::DELETE, "/admin/providers/clip", "").await;
    let took = until(&clients[2], Duration::from_secs(1), "node 3 refuses", |s| {
        s != 200
    })
    .await;
    eprintln!("node 3 stopped using the removed provider after {took:?}");
    let before = mock.request_count();
    assert_ne!(ask(&clients[2]).await, 200);
    assert_eq!(mock.request_count(), before, "a request went upstream");

    for node in &mut nodes {
        node.stop();
    }
    let log: String = nodes.iter().map(Served::log).collect();
    for key in [KEY_A, KEY_B] {
        assert!(!log.contains(key), "a stored key in the log");
    }
}
