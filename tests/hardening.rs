//! The gate before the body: authentication that cannot be switched off while keys exist and runs
//! from the headers alone, refusals counted in aggregate rather than traced, bounded body reads,
//! and caps on what clients hold of the server. Each test drives the proxy over real sockets; the
//! raw-socket ones write exactly the bytes a hostile or slow client would.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::{ADMIN_KEY, Harness, chat};
use hyper::Method;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const CLIENT_KEY: &str = "sk-client-hardening-0123";

fn keyed(extra: &str) -> String {
    format!("[auth]\nkeys = [\"{CLIENT_KEY}\"]\n[admin]\nkey = \"{ADMIN_KEY}\"\n{extra}")
}

fn bearer() -> String {
    format!("Bearer {CLIENT_KEY}")
}

/// A chat request `body` sent with the client key.
async fn keyed_chat(h: &Harness, body: &str) -> common::Answer {
    h.client
        .call(
            Method::POST,
            "/v1/chat/completions",
            body,
            &[("authorization", &bearer())],
        )
        .await
}

/// Opens a connection and writes a request head (and `body_start`, which may be only part of
/// the body the head declares).
async fn raw_request(addr: std::net::SocketAddr, head: &str, body_start: &[u8]) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body_start).await.unwrap();
    stream.flush().await.unwrap();
    stream
}

/// Reads until the response head is complete (at most `limit`); returns the status and the whole
/// text read so far.
async fn read_status(stream: &mut TcpStream, limit: Duration) -> (u16, String) {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let text = String::from_utf8_lossy(&seen).into_owned();
        if text.contains("\r\n\r\n") {
            let status = text[9..12].parse().unwrap();
            // Give the body a moment to follow the head.
            let _ = tokio::time::timeout(Duration::from_millis(200), stream.read(&mut buf))
                .await
                .map(|n| seen.extend_from_slice(&buf[..n.unwrap_or(0)]));
            return (status, String::from_utf8_lossy(&seen).into_owned());
        }
        let n = tokio::time::timeout_at(deadline, stream.read(&mut buf))
            .await
            .expect("no response head in time")
            .unwrap();
        assert!(n > 0, "connection closed before a response: {text:?}");
        seen.extend_from_slice(&buf[..n]);
    }
}

fn chat_head(len: usize, auth: Option<&str>) -> String {
    let auth = auth
        .map(|a| format!("authorization: {a}\r\n"))
        .unwrap_or_default();
    format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n{auth}content-length: {len}\r\n\r\n"
    )
}

#[tokio::test]
async fn auth_cannot_be_disabled_while_keys_exist() {
    let h = Harness::start_with(&keyed("")).await;
    let answer = h
        .client
        .admin(Method::PUT, "/admin/modules/auth", r#"{"enabled":false}"#)
        .await;
    assert_eq!(answer.status, 400, "{}", answer.text());
    let message = answer.json()["error"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(message.contains("cannot be disabled"), "{message}");
    let listing = h.client.admin(Method::GET, "/admin/modules", "").await;
    let auth = listing.json()["modules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "auth")
        .cloned()
        .unwrap();
    assert_eq!(auth["enabled"], true);
    let body = chat("gpt-4o-mini", "hi", false);
    assert_eq!(
        h.client.post("/v1/chat/completions", &body).await.status,
        401
    );
    assert_eq!(h.client.get("/v1/models").await.status, 401);
    assert_eq!(h.client.get("/v1/responses/resp_x").await.status, 401);
    assert_eq!(
        h.client
            .post("/v1/messages/count_tokens", "{}")
            .await
            .status,
        401
    );
    // Nothing was recorded for the refused change.
    assert_eq!(h.store().ledger.ledger().unwrap().len(), 0);
}

#[tokio::test]
async fn a_stored_disabled_auth_does_not_survive_adding_keys() {
    // In local mode auth may be turned off (it lets everyone in anyway)...
    let h = Harness::start_with(&format!("[admin]\nkey = \"{ADMIN_KEY}\"\n")).await;
    let answer = h
        .client
        .admin(Method::PUT, "/admin/modules/auth", r#"{"enabled":false}"#)
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    // ...but once keys are configured, the stored state is overridden at start-up.
    let h = h.restart(&keyed("")).await;
    let body = chat("gpt-4o-mini", "hi", false);
    let answer = h.client.post("/v1/chat/completions", &body).await;
    assert_eq!(answer.status, 401, "{}", answer.text());
    let answer = keyed_chat(&h, &body).await;
    assert_eq!(answer.status, 200);
}

#[tokio::test]
async fn keyless_requests_are_refused_before_the_body_is_read_and_counted_not_traced() {
    let h = Harness::start_with(&keyed("")).await;
    // A 9 MB body is declared and barely begun: the answer comes without waiting for it.
    let started = Instant::now();
    let mut stream = raw_request(h.server.addr, &chat_head(9_000_000, None), b"{\"mod").await;
    let (status, text) = read_status(&mut stream, Duration::from_secs(5)).await;
    assert_eq!(status, 401, "{text}");
    assert!(text.contains("missing_api_key"), "{text}");
    assert!(started.elapsed() < Duration::from_secs(2));
    // A malformed body with no key: 401, not 400.
    let answer = h.client.post("/v1/chat/completions", "{not json").await;
    assert_eq!(answer.status, 401);
    // A flood of keyless and wrong-key requests.
    for i in 0..100 {
        let headers: &[(&str, &str)] = if i % 2 == 0 {
            &[]
        } else {
            &[("authorization", "Bearer sk-wrong")]
        };
        let answer = h
            .client
            .call(Method::POST, "/v1/chat/completions", "{}", headers)
            .await;
        assert_eq!(answer.status, 401);
    }
    assert_eq!(
        h.trace_count_settled().await,
        0,
        "refusals leave no trace row"
    );
    let ready = h.client.get("/ready").await.json();
    assert_eq!(ready["unauthenticated"], 102);

    let app = h.server.app.clone();
    h.server.stop().await.unwrap();
    let counts = app.store.auth_failures.auth_failures(0).unwrap();
    let total: i64 = counts.iter().map(|c| c.count).sum();
    assert_eq!(total, 102, "{counts:?}");
    assert!(counts.iter().all(|c| c.source == "127.0.0.1"), "{counts:?}");
    let missing: i64 = counts
        .iter()
        .filter(|c| c.reason == "missing_api_key")
        .map(|c| c.count)
        .sum();
    assert_eq!(missing, 52);
    // One row per minute, source and reason, however many requests it counts.
    assert!(counts.len() <= 4, "{counts:?}");
}

#[tokio::test]
async fn every_sdk_header_carries_the_client_key() {
    let h = Harness::start_with(&keyed("")).await;
    let messages = json!({"model": "gpt-4o-mini", "max_tokens": 16,
        "messages": [{"role": "user", "content": "hi"}]})
    .to_string();
    let answer = h
        .client
        .call(
            Method::POST,
            "/v1/messages",
            &messages,
            &[("x-api-key", CLIENT_KEY)],
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.json()["type"], "message");
    let answer = h
        .client
        .call(
            Method::POST,
            "/v1/messages",
            &messages,
            &[("x-api-key", "nope")],
        )
        .await;
    assert_eq!(answer.status, 401);
    // In Anthropic's error shape, as its SDK expects.
    assert_eq!(answer.json()["type"], "error");
    assert_eq!(answer.json()["error"]["type"], "authentication_error");
    let answer = h
        .client
        .call(
            Method::POST,
            "/v1/chat/completions",
            &chat("gpt-4o-mini", "hi", false),
            &[("x-goog-api-key", CLIENT_KEY)],
        )
        .await;
    assert_eq!(answer.status, 200);
    // The client's key never reaches the provider.
    for sent in h.mock.requests() {
        assert_ne!(sent.header("x-api-key"), Some(CLIENT_KEY));
        assert_ne!(sent.header("x-goog-api-key"), Some(CLIENT_KEY));
    }
}

#[tokio::test]
async fn a_stalled_body_gets_408_within_the_timeout_and_is_traced() {
    let h = Harness::start_with(&keyed("[server]\nbody_read_timeout_ms = 300\n")).await;
    let started = Instant::now();
    let mut stream = raw_request(h.server.addr, &chat_head(100, Some(&bearer())), b"{").await;
    let (status, text) = read_status(&mut stream, Duration::from_secs(5)).await;
    assert_eq!(status, 408, "{text}");
    assert!(text.contains("request_timeout"), "{text}");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(250) && waited < Duration::from_secs(3),
        "{waited:?}"
    );
    let trace = &h.traces(1).await[0];
    assert_eq!(trace.status, 408);
    assert_eq!(trace.error_class.as_deref(), Some("request_timeout"));
    assert_eq!(h.mock.request_count(), 0);
}

#[tokio::test]
async fn a_client_that_gives_up_mid_body_is_traced_as_cancelled() {
    let h = Harness::start_with(&keyed("")).await;
    let stream = raw_request(
        h.server.addr,
        &chat_head(100, Some(&bearer())),
        b"{\"model\"",
    )
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    drop(stream);
    let trace = &h.traces(1).await[0];
    assert_eq!(trace.status, 499);
    assert_eq!(trace.error_class.as_deref(), Some("cancelled"));
}

#[tokio::test]
async fn shutdown_cuts_short_a_body_still_arriving() {
    let h = Harness::start_with(&keyed("")).await;
    let mut stream = raw_request(h.server.addr, &chat_head(100, Some(&bearer())), b"{").await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let app = h.server.app.clone();
    let started = Instant::now();
    let stopping = tokio::spawn(h.server.stop());
    let (status, text) = read_status(&mut stream, Duration::from_secs(5)).await;
    assert_eq!(status, 503, "{text}");
    stopping.await.unwrap().unwrap();
    // Well inside the 5 s grace the harness gives, and the request was traced before the exit.
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(app.store.traces.trace_count().unwrap(), 1);
}

#[tokio::test]
async fn concurrent_requests_over_the_cap_get_503_with_retry_after() {
    let h = Harness::start_with(&keyed("[server]\nmax_concurrent_requests = 2\n")).await;
    let slow = || async {
        let body = json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}],
            "mock": {"headers_delay_ms": 1_000}})
        .to_string();
        keyed_chat(&h, &body).await.status.as_u16()
    };
    let third = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        keyed_chat(&h, &chat("gpt-4o-mini", "hi", false)).await
    };
    let (a, b, refused) = tokio::join!(slow(), slow(), third);
    assert_eq!((a, b), (200, 200));
    assert_eq!(refused.status, 503, "{}", refused.text());
    assert_eq!(refused.header("retry-after"), Some("1"));
    assert_eq!(refused.json()["error"]["code"], "overloaded");
    // Once the others finished, there is room again.
    let answer = keyed_chat(&h, &chat("gpt-4o-mini", "hi", false)).await;
    assert_eq!(answer.status, 200);
    let ready = h.client.get("/ready").await.json();
    assert_eq!(ready["admission"]["refused_busy"], 1);
}

#[tokio::test]
async fn bodies_in_flight_are_capped_in_bytes() {
    let h = Harness::start_with(&keyed("[server]\nmax_body_bytes_in_flight = 100000\n")).await;
    // One client declares 80 kB and is slow to send it; it holds that much of the budget.
    let mut slow = raw_request(h.server.addr, &chat_head(80_000, Some(&bearer())), b"{").await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut second = raw_request(h.server.addr, &chat_head(50_000, Some(&bearer())), b"{").await;
    let (status, text) = read_status(&mut second, Duration::from_secs(5)).await;
    assert_eq!(status, 503, "{text}");
    assert!(
        text.to_ascii_lowercase().contains("retry-after: 1"),
        "{text}"
    );
    // A small body still fits beside the slow one.
    let answer = keyed_chat(&h, &chat("gpt-4o-mini", "hi", false)).await;
    assert_eq!(answer.status, 200);
    slow.shutdown().await.unwrap();
    let ready = h.client.get("/ready").await.json();
    assert_eq!(ready["admission"]["refused_body_budget"], 1);
    // A body larger than the whole budget can never fit: 413, not a 503 to retry forever.
    let mut big = raw_request(h.server.addr, &chat_head(150_000, Some(&bearer())), b"{").await;
    let (status, text) = read_status(&mut big, Duration::from_secs(5)).await;
    assert_eq!(status, 413, "{text}");
}

#[tokio::test]
async fn health_answers_head() {
    let h = Harness::start().await;
    let answer = h.client.call(Method::HEAD, "/health", "", &[]).await;
    assert_eq!(answer.status, 200);
    assert!(answer.body.is_empty());
}

#[tokio::test]
async fn limits_are_validated_naming_the_field() {
    let raw = stockyard::config::load_from_str(
        "[server]\nbody_read_timeout_ms = 0\nmax_concurrent_requests = 0\nmax_body_bytes_in_flight = 10\n",
    )
    .unwrap();
    let err = stockyard::config::validate(&raw, &|_| None)
        .err()
        .unwrap()
        .to_string();
    for field in [
        "server.body_read_timeout_ms",
        "server.max_concurrent_requests",
        "server.max_body_bytes_in_flight",
    ] {
        assert!(err.contains(field), "{err}");
    }
}

#[tokio::test]
async fn at_the_end_of_the_grace_period_open_streams_are_closed_and_still_traced() {
    let mock = mock_upstream::MockUpstream::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::config_for("", &mock.base_url(), &dir);
    config.shutdown_grace = Duration::from_millis(300);
    let h = Harness::start_on(config, mock, dir).await;
    // A stream whose chunks come a minute apart: it would outlive any grace period.
    h.mock.push(mock_upstream::Behavior {
        chunk_delay_ms: 60_000,
        ..mock_upstream::Behavior::default()
    });
    let response = h
        .client
        .send(
            Method::POST,
            "/v1/chat/completions",
            &chat("gpt-4o-mini", "hi", true),
            &[],
        )
        .await;
    assert_eq!(response.status(), 200);
    let app = h.server.app.clone();
    let started = Instant::now();
    h.server.stop().await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    drop(response);
    let rows = app
        .store
        .traces
        .traces(&stockyard::store::TraceQuery {
            limit: 5,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(
        rows.len(),
        1,
        "the closed stream was traced before the writer stopped"
    );
    assert_eq!(rows[0].error_class.as_deref(), Some("cancelled"));
}

#[tokio::test]
async fn requests_hyper_cannot_parse_get_an_openai_shaped_error() {
    let h = Harness::start().await;
    let cases: [(&str, u16); 2] = [
        (
            "GET /v1/models HTTP/1.1\r\nhost: x\r\nthis is not a header\r\n\r\n",
            400,
        ),
        (
            &*Box::leak(
                format!(
                    "GET /v1/models HTTP/1.1\r\nhost: x\r\nx-big: {}\r\n\r\n",
                    "a".repeat(1 << 20)
                )
                .into_boxed_str(),
            ),
            431,
        ),
    ];
    for (request, want) in cases {
        let mut stream = raw_request(h.server.addr, request, b"").await;
        let (status, text) = read_status(&mut stream, Duration::from_secs(5)).await;
        assert_eq!(status, want, "{text}");
        let body = text.split("\r\n\r\n").nth(1).unwrap_or_default();
        let value: serde_json::Value =
            serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {text:?}"));
        assert_eq!(value["error"]["code"], "malformed_request", "{text}");
        assert_eq!(value["error"]["type"], "invalid_request_error");
    }
    // The server is still there for well-formed requests.
    assert_eq!(h.client.get("/health").await.status, 200);
}
