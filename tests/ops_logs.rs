//! `--log-format json`: every line is one JSON object, each line logged while serving a request
//! carries its request id, and no key is ever printed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::binary::{listening, stockyard};
use common::{PROVIDER_KEY, TestClient, chat};
use hyper::Method;

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_log_lines_carry_the_request_id_and_no_secret() {
    let mock = mock_upstream::MockUpstream::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut child = stockyard(&dir.path().join("logs.db"))
        .args(["--log-format", "json", "serve", "--listen", "127.0.0.1:0"])
        .env("OPENAI_API_KEY", PROVIDER_KEY)
        .env("OPENAI_BASE_URL", mock.base_url())
        .env("STOCKYARD_LOG", "debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (url, log) = listening(&mut child);
    let mut child = Killed(child);
    let client = TestClient::new(url);
    let ids = ["req-json-plain-0001", "req-json-stream-0002"];
    for (id, stream) in ids.iter().zip([false, true]) {
        let answer = client
            .call(
                Method::POST,
                "/v1/chat/completions",
                &chat("gpt-4o-mini", "hi", stream),
                &[("x-request-id", id)],
            )
            .await;
        assert_eq!(answer.status, 200);
    }
    // A request that fails upstream-side logs at warn or debug too, under its id.
    client
        .call(
            Method::POST,
            "/v1/chat/completions",
            &chat("no-such-model", "x", false),
            &[("x-request-id", "req-json-missing-0003")],
        )
        .await;
    let pid = child.0.id().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.0.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "server did not stop");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(100));
    let lines: Vec<String> = log.lock().unwrap().lines().map(String::from).collect();
    assert!(lines.len() > 3, "{lines:?}");
    let mut with_id = std::collections::HashMap::<String, usize>::new();
    for line in &lines {
        assert!(!line.contains(PROVIDER_KEY), "a key in the log: {line}");
        let value: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(
            value["timestamp"].is_string() && value["level"].is_string(),
            "{line}"
        );
        if let Some(id) = value["span"]["request_id"].as_str() {
            assert_eq!(value["span"]["name"], "request", "{line}");
            *with_id.entry(id.to_string()).or_default() += 1;
        }
        // A line logged inside a request names it; none names a request it was not part of.
        if line.contains("req-json-") {
            assert!(value["span"]["request_id"].is_string(), "{line}");
        }
    }
    for id in ids {
        assert!(
            with_id.get(id).is_some_and(|n| *n > 0),
            "no line for {id}: {with_id:?}"
        );
    }
}
