//! A node that loses its PostgreSQL store keeps serving and holds its trace rows until the store
//! returns. A loopback TCP forwarder (tokio, in this file) stands between the node and the
//! server; cutting it drops every connection and refuses new ones. Requests made meanwhile are
//! answered (200 from the mock), their rows appear once the forwarder is back, and nothing is
//! dropped; with a hold smaller than the outage's rows, the drop count is exactly what is
//! missing. After the outage the node's change watch and read pool reconnect: a key created
//! afterwards is taken. Skipped with `STOCKYARD_SKIP_PG=1`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::TestClient;
use common::pg::{Schema, Served, chat_status, ok_with};
use mock_upstream::MockUpstream;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

const CLIENT_KEY: &str = "sk-static-node-key-0001";
const LEDGER_KEY: (&str, &str) = ("STOCKYARD_LEDGER_KEY", "00112233445566778899aabbccddeeff");

/// A TCP forwarder on a fixed loopback port to `upstream`, which can be cut and restored.
struct Forwarder {
    addr: SocketAddr,
    upstream: SocketAddr,
    /// The accept loop and every relayed connection: aborting a task drops its sockets.
    tasks: Arc<Mutex<Vec<AbortHandle>>>,
}

impl Forwarder {
    async fn start(upstream: SocketAddr) -> Forwarder {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let forwarder = Forwarder {
            addr: listener.local_addr().unwrap(),
            upstream,
            tasks: Arc::default(),
        };
        forwarder.serve(listener);
        forwarder
    }

    fn serve(&self, listener: TcpListener) {
        let (upstream, tasks) = (self.upstream, self.tasks.clone());
        let accept = tokio::spawn(async move {
            loop {
                let Ok((mut down, _)) = listener.accept().await else {
                    return;
                };
                let relay = tokio::spawn(async move {
                    if let Ok(mut up) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut down, &mut up).await;
                    }
                });
                tasks.lock().unwrap().push(relay.abort_handle());
            }
        });
        self.tasks.lock().unwrap().push(accept.abort_handle());
    }

    /// Drops every connection and the listener: new connections are refused.
    fn cut(&self) {
        for task in self.tasks.lock().unwrap().drain(..) {
            task.abort();
        }
    }

    /// Listens again on the same port.
    async fn restore(&self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        let listener = loop {
            match TcpListener::bind(self.addr).await {
                Ok(listener) => break listener,
                Err(e) => {
                    assert!(Instant::now() < deadline, "cannot listen again: {e}");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        };
        self.serve(listener);
    }
}

/// The writer's counters from `/ready` (which answers 503 while the store is out of reach).
async fn writer(client: &TestClient) -> serde_json::Value {
    client.get("/ready").await.json()["writer"].clone()
}

/// Waits (bounded) for `check` on the node's `/ready` writer counters.
async fn until_writer(
    client: &TestClient,
    node: &Served,
    what: &str,
    within: Duration,
    check: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let start = Instant::now();
    loop {
        let w = writer(client).await;
        if check(&w) {
            return w;
        }
        assert!(
            start.elapsed() < within,
            "{what}: not after {within:?}: {w}\nlog:\n{}",
            node.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Rows in `traces`, read without blocking the runtime.
async fn traces(schema: &Arc<Schema>) -> i64 {
    let schema = schema.clone();
    tokio::task::spawn_blocking(move || schema.count("SELECT COUNT(*) FROM traces"))
        .await
        .unwrap()
}

/// A node on `schema` through a forwarder, with one request already stored (so every connection
/// is made and warm before the cut).
async fn node_through_forwarder(
    schema: &Arc<Schema>,
    mock: &MockUpstream,
    db: &std::path::Path,
    extra: &[(&str, &str)],
) -> (Forwarder, Served, TestClient) {
    let forwarder = Forwarder::start(schema.server_addr()).await;
    let mut env = vec![LEDGER_KEY, ("STOCKYARD_API_KEYS", CLIENT_KEY)];
    env.extend_from_slice(extra);
    let node = Served::start_with(
        db,
        &mock.base_url(),
        &schema.url_through(forwarder.addr),
        &env,
    );
    let client = TestClient::new(node.url.clone());
    assert_eq!(chat_status(&client, CLIENT_KEY).await, 200);
    // Counted by the writer, not only seen in the table: a commit whose answer the cut loses
    // would be held and written again (harmlessly, the row's id is its key), skewing the counts.
    until_writer(
        &client,
        &node,
        "the first row",
        Duration::from_secs(10),
        |w| w["written"] == 1,
    )
    .await;
    assert_eq!(traces(schema).await, 1);
    (forwarder, node, client)
}

/// `n` requests while the store is cut off: every one answered, none waiting on the store.
async fn requests_during_outage(client: &TestClient, n: usize) {
    for i in 0..n {
        let start = Instant::now();
        assert_eq!(chat_status(client, CLIENT_KEY).await, 200, "request {i}");
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "request {i} took {:?}",
            start.elapsed()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_loses_postgres_keeps_serving_and_writes_the_held_rows_when_it_returns() {
    let Some(schema) = Schema::new() else { return };
    let schema = Arc::new(schema);
    let mock = MockUpstream::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (forwarder, mut node, client) =
        node_through_forwarder(&schema, &mock, &dir.path().join("node.db"), &[]).await;

    forwarder.cut();
    const N: usize = 25;
    requests_during_outage(&client, N).await;
    let held = until_writer(&client, &node, "rows held", Duration::from_secs(5), |w| {
        w["holding"] == true && w["held"].as_u64() >= Some(N as u64)
    })
    .await;
    eprintln!("during the outage: {held}");
    assert_eq!(traces(&schema).await, 1, "a row went in through a cut link");

    forwarder.restore().await;
    let start = Instant::now();
    while traces(&schema).await < 1 + N as i64 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "held rows not written after 10 s; log:\n{}",
            node.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!(
        "held rows written {:?} after the store returned",
        start.elapsed()
    );
    let after = until_writer(
        &client,
        &node,
        "hold emptied",
        Duration::from_secs(5),
        |w| w["holding"] == false && w["held"] == 0,
    )
    .await;
    assert_eq!(after["dropped"], 0, "{after}");
    assert_eq!(after["failed"], 0, "{after}");
    assert_eq!(traces(&schema).await, 1 + N as i64);

    // The change watch and the read pool reconnected: a key created elsewhere afterwards (the
    // CLI straight on the store) is taken by this node.
    let other = tempfile::tempdir().unwrap();
    let created = ok_with(
        &other.path().join("cli.db"),
        &["keys", "create", "after", "--json", "--store", &schema.url],
        &[LEDGER_KEY],
    );
    let created: serde_json::Value = serde_json::from_str(created.trim()).unwrap();
    let key = created["key"].as_str().unwrap().to_string();
    let start = Instant::now();
    while chat_status(&client, &key).await != 200 {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "the key made after the outage never reached the node; log:\n{}",
            node.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!(
        "a key made after the outage was taken after {:?}",
        start.elapsed()
    );
    node.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_past_the_hold_are_dropped_and_the_drop_count_is_exactly_what_is_missing() {
    let Some(schema) = Schema::new() else { return };
    let schema = Arc::new(schema);
    let mock = MockUpstream::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    // The hold is bounded by the queue's capacity.
    const CAPACITY: usize = 8;
    let capacity = CAPACITY.to_string();
    let (forwarder, mut node, client) = node_through_forwarder(
        &schema,
        &mock,
        &dir.path().join("node.db"),
        &[("STOCKYARD_STORE__QUEUE_CAPACITY", &capacity)],
    )
    .await;

    forwarder.cut();
    const N: usize = 30;
    requests_during_outage(&client, N).await;
    let during = until_writer(&client, &node, "hold full", Duration::from_secs(5), |w| {
        w["held"].as_u64() >= Some(CAPACITY as u64)
            && w["held"].as_u64().unwrap() + w["dropped"].as_u64().unwrap() >= N as u64
    })
    .await;
    eprintln!("during the outage: {during}");

    forwarder.restore().await;
    let after = until_writer(
        &client,
        &node,
        "hold emptied",
        Duration::from_secs(10),
        |w| w["holding"] == false && w["held"] == 0,
    )
    .await;
    let dropped = after["dropped"].as_u64().unwrap();
    let stored = traces(&schema).await as u64 - 1;
    eprintln!("after the outage: {after}; {stored} of {N} rows stored");
    assert!(dropped > 0, "nothing dropped with a hold of {CAPACITY}");
    assert_eq!(stored + dropped, N as u64, "{after}");
    assert_eq!(after["failed"], 0, "{after}");
    node.stop();
}
