//! The caches and stored responses across the nodes of one PostgreSQL store, over real sockets
//! with the mock upstream: an answer cached through node 1 (plain and streamed) is served by
//! node 2 without an upstream call, and an operator's purge on node 1 empties node 2's memory;
//! a response stored through node 1 is read (`GET /v1/responses/{id}`) and continued
//! (`previous_response_id`) through node 2 at once, before node 1's writer batch is sure to have
//! committed; a semantic entry stored through node 1 answers a rephrasing on node 2; a store read
//! that hangs (the table locked) is a miss after a bounded wait, never an error; a response whose
//! row commits late (its insert held back by a lock) is still found by the bounded re-reads. Skipped with
//! `STOCKYARD_SKIP_PG=1`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::pg::{Schema, Served};
use common::{Answer, TestClient, sse_data};
use hyper::Method;
use mock_upstream::MockUpstream;
use serde_json::{Value, json};

const ADMIN_KEY: &str = "node-admin-key-0123456789";
const CLIENT_KEY: &str = "sk-static-node-key-0001";

/// Every node of one store shares the ledger key (it also names the client key's namespace).
const ENV: [(&str, &str); 3] = [
    ("STOCKYARD_LEDGER_KEY", "00112233445566778899aabbccddeeff"),
    ("STOCKYARD_API_KEYS", CLIENT_KEY),
    ("STOCKYARD_ADMIN_KEY", ADMIN_KEY),
];

/// `count` nodes on one schema, reading `config`.
fn nodes(
    schema: &Schema,
    mock: &MockUpstream,
    config: &str,
    count: usize,
) -> (Vec<tempfile::TempDir>, Vec<Served>, Vec<TestClient>) {
    let dirs: Vec<_> = (0..count).map(|_| tempfile::tempdir().unwrap()).collect();
    let served: Vec<Served> = dirs
        .iter()
        .map(|d| start(d.path(), config, &mock.base_url(), &schema.url))
        .collect();
    let clients = served
        .iter()
        .map(|n| TestClient::new(n.url.clone()))
        .collect();
    (dirs, served, clients)
}

fn start(dir: &Path, config: &str, mock_url: &str, store: &str) -> Served {
    let file = dir.join("stockyard.toml");
    std::fs::write(&file, config).unwrap();
    Served::start_configured(&dir.join("node.db"), &file, mock_url, store, &ENV)
}

async fn post(client: &TestClient, path: &str, body: &str) -> Answer {
    let auth = format!("Bearer {CLIENT_KEY}");
    client
        .call(Method::POST, path, body, &[("authorization", &auth)])
        .await
}

async fn get(client: &TestClient, path: &str) -> Answer {
    let auth = format!("Bearer {CLIENT_KEY}");
    client
        .call(Method::GET, path, "", &[("authorization", &auth)])
        .await
}

fn chat_body(text: &str, stream: bool) -> String {
    json!({
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": text}],
        "max_tokens": 50,
        "stream": stream,
    })
    .to_string()
}

fn outcome(a: &Answer) -> &str {
    a.header("x-stockyard-cache").unwrap_or("none")
}

/// Chat requests the mock received (embedding calls excluded).
fn chats(mock: &MockUpstream) -> usize {
    mock.requests()
        .iter()
        .filter(|r| r.path.ends_with("/chat/completions"))
        .count()
}

/// The text and finish reason a chat stream carried, and whether it ended properly.
fn streamed(a: &Answer) -> (String, Option<String>, bool) {
    let mut text = String::new();
    let mut finish = None;
    let data = sse_data(&a.text());
    for chunk in data.iter().filter(|d| *d != "[DONE]") {
        let chunk: Value = serde_json::from_str(chunk).unwrap();
        for choice in chunk["choices"].as_array().into_iter().flatten() {
            text.push_str(choice["delta"]["content"].as_str().unwrap_or(""));
            if let Some(f) = choice["finish_reason"].as_str() {
                finish = Some(f.to_string());
            }
        }
    }
    (text, finish, data.last().is_some_and(|d| d == "[DONE]"))
}

/// Waits, at most `within`, until the schema's `query` counts at least `n`.
async fn until_stored(schema: &Schema, query: &str, n: i64, within: Duration) {
    let start = Instant::now();
    while schema.count(query) < n {
        assert!(start.elapsed() < within, "{query}: fewer than {n}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

const EXACT: &str = "[modules.cache]\nenabled = true\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_cached_on_one_node_is_served_by_another_plain_and_streamed_and_purged_everywhere()
 {
    let Some(schema) = Schema::new() else { return };
    let mock = MockUpstream::start().await.unwrap();
    let (_dirs, mut served, clients) = nodes(&schema, &mock, EXACT, 2);
    let exact_rows = "SELECT count(*) FROM cache_entries WHERE kind = 'exact'";

    // Plain: asked on node 1, stored; node 2 answers it from the shared entry.
    let first = post(
        &clients[0],
        "/v1/chat/completions",
        &chat_body("plain", false),
    )
    .await;
    assert_eq!(first.status, 200, "{}", first.text());
    assert_eq!(outcome(&first), "miss");
    assert_eq!(chats(&mock), 1);
    until_stored(&schema, exact_rows, 1, Duration::from_secs(5)).await;
    let second = post(
        &clients[1],
        "/v1/chat/completions",
        &chat_body("plain", false),
    )
    .await;
    assert_eq!(second.status, 200, "{}", second.text());
    assert_eq!(outcome(&second), "hit", "{}", served[1].log());
    assert_eq!(chats(&mock), 1, "node 2 called the upstream");
    assert_eq!(
        second.json()["choices"][0]["message"],
        first.json()["choices"][0]["message"]
    );
    // Now in node 2's memory: a hit again, still without the upstream.
    let again = post(
        &clients[1],
        "/v1/chat/completions",
        &chat_body("plain", false),
    )
    .await;
    assert_eq!(outcome(&again), "hit");

    // Streamed: the entry node 1 stored from a stream replays on node 2 as a proper stream.
    let first = post(
        &clients[0],
        "/v1/chat/completions",
        &chat_body("streamed", true),
    )
    .await;
    assert_eq!(outcome(&first), "miss");
    let (text, finish, done) = streamed(&first);
    assert!(done && !text.is_empty(), "{}", first.text());
    assert_eq!(chats(&mock), 2);
    until_stored(&schema, exact_rows, 2, Duration::from_secs(5)).await;
    let replay = post(
        &clients[1],
        "/v1/chat/completions",
        &chat_body("streamed", true),
    )
    .await;
    assert_eq!(replay.status, 200);
    assert_eq!(outcome(&replay), "hit", "{}", served[1].log());
    assert!(
        replay
            .header("content-type")
            .is_some_and(|c| c.starts_with("text/event-stream"))
    );
    assert_eq!(streamed(&replay), (text, finish, true));
    assert_eq!(chats(&mock), 2, "node 2 called the upstream");

    // Purged through node 1's admin API: node 2 lets go of what it held, and asks upstream.
    let auth = format!("Bearer {ADMIN_KEY}");
    let purged = clients[0]
        .call(
            Method::POST,
            "/admin/cache/purge",
            r#"{"all":true}"#,
            &[("authorization", &auth)],
        )
        .await;
    assert_eq!(purged.status, 200, "{}", purged.text());
    let start = Instant::now();
    loop {
        let stats = clients[1]
            .call(Method::GET, "/admin/cache", "", &[("authorization", &auth)])
            .await
            .json();
        if stats["exact"]["entries"] == 0 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "node 2 kept purged entries: {stats}\n{}",
            served[1].log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!(
        "node 2 dropped the purged entries after {:?}",
        start.elapsed()
    );
    let after = post(
        &clients[1],
        "/v1/chat/completions",
        &chat_body("plain", false),
    )
    .await;
    assert_eq!(outcome(&after), "miss");
    assert_eq!(chats(&mock), 3);

    for node in &mut served {
        node.stop();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_stored_through_one_node_is_read_and_continued_through_another_at_once() {
    let Some(schema) = Schema::new() else { return };
    let mock = MockUpstream::start().await.unwrap();
    // Through a provider that is not OpenAI itself, so the proxy sends the stored turns upstream
    // (to OpenAI it would pass `previous_response_id` through).
    let config = format!(
        "[providers.compat]\nkind = \"openai_compatible\"\nbase_url = \"{}\"\n",
        mock.base_url()
    );
    let (_dirs, mut served, clients) = nodes(&schema, &mock, &config, 3);
    let first = json!({"model": "compat/gpt-4o-mini", "input": "Remember the word marmalade"});
    let answer = post(&clients[0], "/v1/responses", &first.to_string()).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let id = answer.json()["id"].as_str().unwrap().to_string();

    // Straight away, with no wait for node 1's writer: node 2 reads it back.
    let start = Instant::now();
    let stored = get(&clients[1], &format!("/v1/responses/{id}")).await;
    eprintln!("node 2 read the response after {:?}", start.elapsed());
    assert_eq!(stored.status, 200, "{}\n{}", stored.text(), served[1].log());
    assert_eq!(stored.json()["id"], id);

    // Continued on node 3 straight away: the upstream gets the first turn too.
    let second =
        json!({"model": "compat/gpt-4o-mini", "previous_response_id": id, "input": "Which word?"});
    let answer = post(&clients[2], "/v1/responses", &second.to_string()).await;
    assert_eq!(answer.status, 200, "{}\n{}", answer.text(), served[2].log());
    let sent = mock.requests().last().unwrap().body.to_string();
    assert!(
        sent.contains("marmalade") && sent.contains("Which word?"),
        "{sent}"
    );
    // And the continuation, stored by node 3, is node 1's to read.
    let id2 = answer.json()["id"].as_str().unwrap().to_string();
    let stored = get(&clients[0], &format!("/v1/responses/{id2}")).await;
    assert_eq!(stored.status, 200, "{}", stored.text());

    // An id no node stored is still unknown, after a bounded wait.
    let start = Instant::now();
    let missing = get(&clients[1], "/v1/responses/resp_never_stored").await;
    assert_eq!(missing.status, 404);
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );

    for node in &mut served {
        node.stop();
    }
}

const SEMANTIC: &str = "[modules.semantic_cache]\nenabled = true\n\
    embedding_model = \"text-embedding-bag-of-words\"\nthreshold = 0.95\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_semantic_entry_stored_through_one_node_answers_a_rephrasing_on_another() {
    let Some(schema) = Schema::new() else { return };
    let mock = MockUpstream::start().await.unwrap();
    let (_dirs, mut served, clients) = nodes(&schema, &mock, SEMANTIC, 2);
    let ask = |text: &str| {
        json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": text}]}).to_string()
    };

    // Node 2 first misses in this partition (so it has read it once already).
    let other = post(
        &clients[1],
        "/v1/chat/completions",
        &ask("Name a red fruit"),
    )
    .await;
    assert_eq!(outcome(&other), "miss");
    let first = post(
        &clients[0],
        "/v1/chat/completions",
        &ask("What is the capital of France?"),
    )
    .await;
    assert_eq!(first.status, 200, "{}", first.text());
    assert_eq!(outcome(&first), "miss");
    assert_eq!(chats(&mock), 2);
    let rows = "SELECT count(*) FROM cache_entries WHERE kind = 'semantic'";
    until_stored(&schema, rows, 2, Duration::from_secs(5)).await;

    let hit = post(
        &clients[1],
        "/v1/chat/completions",
        &ask("what is the capital of france"),
    )
    .await;
    assert_eq!(hit.status, 200);
    assert_eq!(outcome(&hit), "semantic-hit", "{}", served[1].log());
    assert_eq!(chats(&mock), 2, "node 2 called the upstream");
    assert_eq!(
        hit.json()["choices"][0]["message"],
        first.json()["choices"][0]["message"]
    );
    let auth = format!("Bearer {ADMIN_KEY}");
    let stats = clients[1]
        .call(Method::GET, "/admin/cache", "", &[("authorization", &auth)])
        .await
        .json();
    assert_eq!(stats["semantic"]["shared_added"], 1, "{stats}");
    assert_eq!(stats["semantic"]["shared_failures"], 0, "{stats}");
    // A question no node asked is still a miss on node 2.
    let near = post(
        &clients[1],
        "/v1/chat/completions",
        &ask("What is the capital of Germany?"),
    )
    .await;
    assert_eq!(outcome(&near), "miss");
    assert_eq!(chats(&mock), 3);

    for node in &mut served {
        node.stop();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_read_that_hangs_is_a_counted_miss_after_a_bounded_wait() {
    let Some(schema) = Schema::new() else { return };
    let mock = MockUpstream::start().await.unwrap();
    let (_dirs, mut served, clients) = nodes(&schema, &mock, EXACT, 1);
    // Another session holds the table: the node's read of it waits until this lets go.
    let release = hold_table(&schema, "cache_entries", "ACCESS EXCLUSIVE");

    let start = Instant::now();
    let answer = post(
        &clients[0],
        "/v1/chat/completions",
        &chat_body("locked", false),
    )
    .await;
    let took = start.elapsed();
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(outcome(&answer), "miss");
    assert_eq!(chats(&mock), 1);
    assert!(took < Duration::from_secs(2), "{took:?}");
    eprintln!("answered after {took:?} with the table locked");
    let auth = format!("Bearer {ADMIN_KEY}");
    let stats = clients[0]
        .call(Method::GET, "/admin/cache", "", &[("authorization", &auth)])
        .await
        .json();
    assert_eq!(stats["exact"]["shared_failures"], 1, "{stats}");
    assert!(served[0].log().contains("shared cache read failed"));

    release.send(()).unwrap();
    // The writer's save waited on the lock too: the entry lands once it goes.
    until_stored(
        &schema,
        "SELECT count(*) FROM cache_entries",
        1,
        Duration::from_secs(5),
    )
    .await;
    // The answer was kept in memory as any miss's is: a hit now.
    let again = post(
        &clients[0],
        "/v1/chat/completions",
        &chat_body("locked", false),
    )
    .await;
    assert_eq!(outcome(&again), "hit");
    assert_eq!(chats(&mock), 1);
    for node in &mut served {
        node.stop();
    }
}

/// Holds `table` of the schema in `mode` from another session until told (or 20 s), so the test
/// decides when the nodes' writes or reads of it go through.
fn hold_table(schema: &Schema, table: &str, mode: &str) -> std::sync::mpsc::Sender<()> {
    let (locked_tx, locked_rx) = std::sync::mpsc::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let (base, name) = (schema.base.clone(), schema.name.clone());
    let statement = format!("SET LOCAL search_path = {name}; LOCK TABLE {table} IN {mode} MODE");
    std::thread::spawn(move || {
        let mut client = postgres::Client::connect(&base, postgres::NoTls).unwrap();
        let mut tx = client.transaction().unwrap();
        tx.batch_execute(&statement).unwrap();
        locked_tx.send(()).unwrap();
        let _ = release_rx.recv_timeout(Duration::from_secs(20));
        tx.rollback().unwrap();
    });
    locked_rx.recv_timeout(Duration::from_secs(10)).unwrap();
    release_tx
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_committed_late_is_found_by_the_bounded_re_reads() {
    let Some(schema) = Schema::new() else { return };
    let mock = MockUpstream::start().await.unwrap();
    let (_dirs, mut served, clients) = nodes(&schema, &mock, "", 2);
    // SHARE mode lets reads through and holds node 1's insert back.
    let release = hold_table(&schema, "responses", "SHARE");
    let first = json!({"model": "gpt-4o-mini", "input": "late"});
    let answer = post(&clients[0], "/v1/responses", &first.to_string()).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let id = answer.json()["id"].as_str().unwrap().to_string();
    // The row commits 150 ms from now, while node 2 is already looking.
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(150));
        let _ = release.send(());
    });
    let start = Instant::now();
    let stored = get(&clients[1], &format!("/v1/responses/{id}")).await;
    let took = start.elapsed();
    assert_eq!(stored.status, 200, "{}\n{}", stored.text(), served[1].log());
    assert!(
        took >= Duration::from_millis(100),
        "found before the commit: {took:?}"
    );
    eprintln!("node 2 found the late response after {took:?}");
    for node in &mut served {
        node.stop();
    }
}
