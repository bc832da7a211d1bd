//! Limits, budgets and breakers held together by three nodes (`serve` processes on loopback) on
//! one PostgreSQL store, with the in-repo mock upstream: an RPM limit of 30 admits 30 across the
//! nodes, not 90; 60 concurrent requests against a small budget overshoot it by no more than the
//! README's bound; a breaker opened on one node keeps the others off the broken upstream; and the
//! ledger still verifies.
//!
//! Each test has a schema of its own on `STOCKYARD_TEST_PG` (default
//! `postgres://postgres@127.0.0.1:5432/test`), dropped at the end; `STOCKYARD_SKIP_PG=1` skips
//! them, saying so. The node harness is `store_postgres.rs`'s, trimmed to what these tests use.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::TestClient;
use common::binary::stockyard;
use common::pg::{Schema, Served};
use hyper::Method;
use mock_upstream::{Behavior, MockUpstream};
use serde_json::{Value, json};

const ADMIN_KEY: &str = "nodes-admin-key-0123456789";
const STATIC_KEY: &str = "sk-static-node-key-0001";
/// One token costs $0.0005 (5e5 nano-dollars), as in `tests/budgets.rs`.
const PRICES: &str =
    "[prices.\"gpt-4o-mini\"]\ninput_per_million = 500.0\noutput_per_million = 500.0\n";
const TOKEN: i64 = 500_000;

/// Every node of one store shares the ledger key (it also hashes the client keys).
const ENV: [(&str, &str); 3] = [
    ("STOCKYARD_LEDGER_KEY", "00112233445566778899aabbccddeeff"),
    ("STOCKYARD_API_KEYS", STATIC_KEY),
    ("STOCKYARD_ADMIN_KEY", ADMIN_KEY),
];

/// Three nodes on one schema, each with its own local state directory, all with `config`.
struct Nodes {
    nodes: Vec<Served>,
    store: String,
    clients: Vec<TestClient>,
    dbs: Vec<PathBuf>,
    _dirs: Vec<tempfile::TempDir>,
}

fn three_nodes(schema: &Schema, config: &str, mock_url: &str) -> Nodes {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let dbs: Vec<_> = dirs.iter().map(|d| d.path().join("node.db")).collect();
    let file = dirs[0].path().join("stockyard.toml");
    std::fs::write(&file, config).unwrap();
    let nodes: Vec<Served> = dbs
        .iter()
        .map(|db| Served::start_configured(db, &file, mock_url, &schema.url, &ENV))
        .collect();
    let clients = nodes
        .iter()
        .map(|n| TestClient::new(n.url.clone()))
        .collect();
    Nodes {
        nodes,
        store: schema.url.clone(),
        clients,
        dbs,
        _dirs: dirs,
    }
}

impl Nodes {
    /// A small chat for `model` on node `node`, with the static client key.
    async fn chat_with_static_key(&self, node: usize, model: &str) -> common::Answer {
        let auth = format!("Bearer {STATIC_KEY}");
        TestClient::new(self.clients[node].base.clone())
            .call(
                Method::POST,
                "/v1/chat/completions",
                &chat_body(model, 5),
                &[("authorization", &auth)],
            )
            .await
    }

    /// Stops every node, then checks the one ledger chain they wrote.
    fn stop_and_verify(mut self) {
        for node in &mut self.nodes {
            node.stop();
        }
        let out = stockyard(&self.dbs[0])
            .envs(ENV)
            .args(["audit", "verify", "--store", &self.store])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{text}");
        assert!(text.contains("ok:"), "{text}");
    }
}

/// A virtual key with `limits`, created through node 1's admin API; returns (id, key) once every
/// node accepts it.
async fn key_on_every_node(nodes: &Nodes, limits: Value) -> (String, String) {
    let auth = format!("Bearer {ADMIN_KEY}");
    let answer = nodes.clients[0]
        .call(
            Method::POST,
            "/admin/keys",
            &json!({"name": "shared", "limits": limits}).to_string(),
            &[("authorization", &auth)],
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let created = answer.json();
    let key = created["key"].as_str().unwrap().to_string();
    let id = created["id"].as_str().unwrap().to_string();
    // `/v1/models` checks the key without counting against any limit.
    let bearer = format!("Bearer {key}");
    for client in &nodes.clients {
        let start = Instant::now();
        loop {
            let got = client
                .call(Method::GET, "/v1/models", "", &[("authorization", &bearer)])
                .await;
            if got.status == 200 {
                break;
            }
            assert!(start.elapsed() < Duration::from_secs(5), "key not taken");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
    (id, key)
}

fn chat_body(model: &str, max_tokens: u64) -> String {
    json!({
        "model": model,
        "messages": [{"role": "user", "content": "hello"}],
        "max_tokens": max_tokens,
    })
    .to_string()
}

/// Sends `n` requests at once, spread over the nodes in turn, each on its own connection;
/// returns the statuses by node.
async fn spread(nodes: &Nodes, n: usize, key: &str, body: &str) -> Vec<Vec<u16>> {
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let node = i % nodes.clients.len();
            let client = TestClient::new(nodes.clients[node].base.clone());
            let (auth, body) = (format!("Bearer {key}"), body.to_string());
            tokio::spawn(async move {
                let answer = client
                    .call(
                        Method::POST,
                        "/v1/chat/completions",
                        &body,
                        &[("authorization", &auth)],
                    )
                    .await;
                (node, answer.status.as_u16())
            })
        })
        .collect();
    let mut by_node = vec![Vec::new(); nodes.clients.len()];
    for task in tasks {
        let (node, status) = task.await.unwrap();
        by_node[node].push(status);
    }
    by_node
}

fn count(by_node: &[Vec<u16>], status: u16) -> usize {
    by_node
        .iter()
        .map(|s| s.iter().filter(|x| **x == status).count())
        .sum()
}

/// Waits until the current minute has at least `room` left, so a burst stays in one window.
async fn in_one_minute(room: Duration) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let left = 60_000 - now % 60_000;
    if left < room.as_millis() as u64 {
        tokio::time::sleep(Duration::from_millis(left + 50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_rpm_limit_of_30_admits_30_across_three_nodes_not_90() {
    let Some(schema) = Schema::new() else { return };
    let mock = MockUpstream::start().await.unwrap();
    let nodes = three_nodes(&schema, PRICES, &mock.base_url());
    let (_, key) = key_on_every_node(&nodes, json!({"rpm": 30})).await;
    in_one_minute(Duration::from_secs(20)).await;

    let body = chat_body("gpt-4o-mini", 5);
    let burst = spread(&nodes, 60, &key, &body).await;
    let admitted = count(&burst, 200);
    let refused = count(&burst, 429);
    eprintln!(
        "60 requests over 3 nodes against rpm 30: {admitted} admitted, {refused} refused (by node: {:?})",
        burst
            .iter()
            .map(|s| s.iter().filter(|x| **x == 200).count())
            .collect::<Vec<_>>()
    );
    assert_eq!(admitted + refused, 60, "{burst:?}");
    // The limit holds across the nodes: leases never hand out more than the limit.
    assert!(admitted <= 30, "{admitted} admitted over an rpm of 30");
    // Capacity a node still leased when the burst ended goes back when the lease is idle, and the
    // others then take it: the minute admits exactly 30.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let (mut more, mut refused_in_a_row) = (0, 0);
    // Two whole rounds refused: no node holds any of the limit any more.
    for i in 0..60 {
        let client = &nodes.clients[i % 3];
        let answer = client
            .call(
                Method::POST,
                "/v1/chat/completions",
                &body,
                &[("authorization", &format!("Bearer {key}"))],
            )
            .await;
        if answer.status == 200 {
            more += 1;
            refused_in_a_row = 0;
        } else {
            assert_eq!(answer.status, 429, "{}", answer.text());
            refused_in_a_row += 1;
            if refused_in_a_row == 6 {
                break;
            }
        }
    }
    eprintln!("after the leases went back: {more} more admitted");
    assert_eq!(admitted + more, 30, "the minute admits the limit, no more");
    assert_eq!(mock.request_count(), 30);
    nodes.stop_and_verify();
}

/// The recorded spend of key `id` (its daily rollup), once the nodes' writers committed the
/// traces of all `requests` it sent, refused ones included.
fn recorded_spend(schema: &Schema, id: &str, requests: i64) -> i64 {
    let deadline = Instant::now() + Duration::from_secs(10);
    let traced = format!("SELECT COUNT(*) FROM traces WHERE key_id = '{id}'");
    while schema.count(&traced) < requests {
        assert!(Instant::now() < deadline, "{requests} traces not recorded");
        std::thread::sleep(Duration::from_millis(50));
    }
    schema.count(&format!(
        "SELECT COALESCE(SUM(cost_nanos), 0) FROM spend_daily WHERE key_id = '{id}'"
    ))
}

fn with_mock(max_tokens: u64, mock: Value) -> String {
    json!({
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "hello"}],
        "max_tokens": max_tokens,
        "mock": mock,
    })
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_concurrent_requests_over_three_nodes_keep_a_budget_within_the_bound() {
    let Some(schema) = Schema::new() else { return };
    let mock = MockUpstream::start().await.unwrap();
    let nodes = three_nodes(&schema, PRICES, &mock.base_url());
    let limit = 100 * TOKEN; // $0.05

    // Honest estimates: each request holds 7 + 5 = 12 tokens and costs 5 + 5 = 10. Every
    // request is held upstream long enough for the whole burst to be in flight at once.
    let budget = json!({"budget": {"limit_nanos": limit, "period": "day", "alert_percents": []}});
    let (id, key) = key_on_every_node(&nodes, budget.clone()).await;
    let burst = spread(
        &nodes,
        60,
        &key,
        &with_mock(5, json!({"headers_delay_ms": 300})),
    )
    .await;
    let ok = count(&burst, 200) as i64;
    assert_eq!(ok as usize + count(&burst, 429), 60, "{burst:?}");
    let spent = recorded_spend(&schema, &id, 60);
    eprintln!(
        "honest estimates: {ok} of 60 admitted over 3 nodes, spent {spent} of {limit} nano-dollars (overshoot {})",
        spent - limit
    );
    assert!(ok >= 1);
    assert_eq!(spent, ok * 10 * TOKEN);
    // The README's bound is zero here (no answer costs more than its estimate): no overshoot.
    assert!(spent <= limit, "spent {spent} over the limit {limit}");
    assert_eq!(
        mock.request_count() as i64,
        ok,
        "refused requests never went upstream"
    );

    // Answers past their estimates: the upstream ignores max_tokens, 10 words where 2 were
    // allowed. Each request holds 7 + 2 = 9 tokens and costs 5 + 10 = 15, 6 past its estimate.
    let (id, key) = key_on_every_node(&nodes, budget).await;
    let long = json!({"headers_delay_ms": 300, "content": "one two three four five six seven eight nine ten"});
    let burst = spread(&nodes, 60, &key, &with_mock(2, long)).await;
    let ok = count(&burst, 200) as i64;
    assert_eq!(ok as usize + count(&burst, 429), 60, "{burst:?}");
    let spent = recorded_spend(&schema, &id, 60);
    let overshoot = spent - limit;
    // The README's bound: the sum, over the requests admitted, of cost beyond the estimate.
    let bound = ok * 6 * TOKEN;
    eprintln!(
        "answers past their estimates: {ok} of 60 admitted over 3 nodes, spent {spent} of {limit} (overshoot {overshoot}, bound {bound})"
    );
    assert_eq!(spent, ok * 15 * TOKEN);
    assert!(
        overshoot <= bound,
        "overshoot {overshoot} past the bound {bound} ({ok} admitted)"
    );
    nodes.stop_and_verify();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_breaker_opened_on_one_node_keeps_the_others_off_the_broken_upstream() {
    let Some(schema) = Schema::new() else { return };
    let broken = MockUpstream::start().await.unwrap();
    let healthy = MockUpstream::start().await.unwrap();
    broken.set_default(Behavior {
        status: Some(500),
        ..Behavior::default()
    });
    let config = format!(
        "[providers.p0]\nbase_url = \"{}\"\napi_key = \"key-0\"\n\
         [providers.p1]\nbase_url = \"{}\"\napi_key = \"key-1\"\n\
         [modules.routing.groups.pool]\nstrategy = \"priority\"\n\
         retry = {{ max_attempts = 2, base_backoff_ms = 5, max_backoff_ms = 20 }}\n\
         breaker = {{ consecutive_failures = 2, cooldown_ms = 60000 }}\n\
         [[modules.routing.groups.pool.deployments]]\nprovider = \"p0\"\nmodel = \"m0\"\npriority = 0\n\
         [[modules.routing.groups.pool.deployments]]\nprovider = \"p1\"\nmodel = \"m1\"\npriority = 1\n",
        broken.base_url(),
        healthy.base_url()
    );
    let nodes = three_nodes(&schema, &config, &healthy.base_url());
    let ask = |node: usize| nodes.chat_with_static_key(node, "pool");

    // Node 1 meets the broken upstream twice (each time falling over to the healthy one): its
    // breaker opens.
    for _ in 0..2 {
        let answer = ask(0).await;
        assert_eq!(answer.status, 200, "{}", answer.text());
        assert_eq!(answer.header("x-stockyard-deployment"), Some("pool/p1/m1"));
    }
    assert_eq!(broken.request_count(), 2);
    let opened = Instant::now();
    let admin = format!("Bearer {ADMIN_KEY}");
    for node in 1..3 {
        loop {
            let list = nodes.clients[node]
                .call(
                    Method::GET,
                    "/admin/breakers",
                    "",
                    &[("authorization", &admin)],
                )
                .await;
            assert_eq!(list.status, 200, "{}", list.text());
            let open = list.json()["breakers"]
                .as_array()
                .unwrap()
                .iter()
                .any(|b| b["deployment"] == "pool/p0/m0" && b["state"]["phase"] == "open");
            if open {
                break;
            }
            assert!(
                opened.elapsed() < Duration::from_secs(1),
                "node {} did not see the breaker open within a second",
                node + 1
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    eprintln!(
        "nodes 2 and 3 saw the breaker open after {:?}",
        opened.elapsed()
    );

    // Nodes 2 and 3 never met the broken upstream: they skip it without calling it.
    for node in [1, 2, 1, 2] {
        let answer = ask(node).await;
        assert_eq!(answer.status, 200, "{}", answer.text());
        assert_eq!(answer.header("x-stockyard-deployment"), Some("pool/p1/m1"));
        assert_eq!(answer.header("x-stockyard-attempts"), Some("1"));
    }
    assert_eq!(
        broken.request_count(),
        2,
        "the broken upstream was called again"
    );
    nodes.stop_and_verify();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_models_429_cool_down_on_one_node_rests_the_key_on_the_others() {
    let Some(schema) = Schema::new() else { return };
    let mock = MockUpstream::start().await.unwrap();
    let nodes = three_nodes(&schema, "", &mock.base_url());
    let ask = |node: usize| nodes.chat_with_static_key(node, "gpt-4o-mini");
    mock.push(Behavior {
        status: Some(429),
        retry_after_s: Some(30),
        ..Behavior::default()
    });
    let first = ask(0).await;
    eprintln!("node 1 met the 429: {}", first.status);
    let calls = mock.request_count();
    assert!(calls >= 1);
    // Node 2 learns of the cool-down within a second: from then on it rests the model without
    // calling the upstream (a request sent before that reaches the mock, which answers it).
    let start = Instant::now();
    loop {
        let before = mock.request_count();
        let answer = ask(1).await;
        if mock.request_count() == before {
            assert_ne!(answer.status, 200, "{}", answer.text());
            eprintln!(
                "node 2 rested the model after {:?}: {}",
                start.elapsed(),
                answer.status
            );
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "node 2 still calls the rate-limited upstream"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let before = mock.request_count();
    let answer = ask(2).await;
    assert_ne!(answer.status, 200, "{}", answer.text());
    assert_eq!(mock.request_count(), before, "node 3 called the upstream");
    nodes.stop_and_verify();
}
