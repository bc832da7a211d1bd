//! Test harness: the proxy (in process, on 127.0.0.1:0, its own temp database) in front of the
//! mock upstream (also on 127.0.0.1:0), and a small HTTP client. Every wait is bounded.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod binary;
pub mod catalogue;
pub mod console;
pub mod files;
pub mod grants;
pub mod pg;
pub mod prom;
pub mod python;
pub mod receiver;
pub mod test_modules;
pub mod webdriver;

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{HeaderMap, Method, Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use mock_upstream::MockUpstream;
use serde_json::Value;
use stockyard::config::{ValidConfig, load_from_str, validate};
use stockyard::server::{App, RunningServer};
use stockyard::store::{Store, TraceQuery, TraceRecord};
use tempfile::TempDir;

/// The provider key the mock is configured with; tests check it never leaks.
pub const PROVIDER_KEY: &str = "sk-provider-secret-0123456789";
pub const ADMIN_KEY: &str = "admin-key-0123456789abcdef";

pub struct Harness {
    pub server: RunningServer,
    pub mock: MockUpstream,
    pub dir: TempDir,
    pub client: TestClient,
}

/// Builds a validated config from TOML, pointing the `openai` preset at `mock_url`.
pub fn config_for(toml: &str, mock_url: &str, dir: &TempDir) -> ValidConfig {
    let raw = load_from_str(toml).unwrap_or_else(|e| panic!("test config: {e}"));
    let mock_url = mock_url.to_string();
    let env = move |name: &str| match name {
        "OPENAI_API_KEY" => Some(PROVIDER_KEY.to_string()),
        "OPENAI_BASE_URL" => Some(mock_url.clone()),
        // Made-up AWS credentials for the Bedrock tests (config names these variables).
        "STOCKYARD_TEST_AWS_KEY" => Some("AKIDEXAMPLE".to_string()),
        "STOCKYARD_TEST_AWS_SECRET" => Some("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".to_string()),
        _ => None,
    };
    let mut config = validate(&raw, &env).unwrap_or_else(|e| panic!("test config: {e}"));
    config.db_path = dir.path().join("stockyard.db");
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.shutdown_grace = Duration::from_secs(5);
    config
}

impl Harness {
    pub async fn start() -> Harness {
        Harness::start_with("").await
    }

    /// The proxy with test-only modules added to its chain.
    pub async fn start_with_modules(
        toml: &str,
        modules: &[&'static stockyard::modules::registry::ModuleSpec],
    ) -> Harness {
        let mock = MockUpstream::start().await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let config = config_for(toml, &mock.base_url(), &dir);
        Harness::start_on_with(config, mock, dir, modules).await
    }

    pub async fn start_with(toml: &str) -> Harness {
        let mock = MockUpstream::start().await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let config = config_for(toml, &mock.base_url(), &dir);
        Harness::start_on(config, mock, dir).await
    }

    pub async fn start_on(config: ValidConfig, mock: MockUpstream, dir: TempDir) -> Harness {
        Harness::start_on_with(config, mock, dir, &[]).await
    }

    /// Like [`Harness::start_on`], with test-only modules in the chain.
    pub async fn start_on_with(
        config: ValidConfig,
        mock: MockUpstream,
        dir: TempDir,
        modules: &[&'static stockyard::modules::registry::ModuleSpec],
    ) -> Harness {
        let listen = config.listen;
        let app = App::open_with(config, modules).unwrap_or_else(|e| panic!("app: {e}"));
        let server = RunningServer::start(app, listen).await.unwrap();
        let client = TestClient::new(server.url());
        Harness {
            server,
            mock,
            dir,
            client,
        }
    }

    /// Stops the server (flushing the writer) and starts a new one on the same database and mock.
    pub async fn restart(self, toml: &str) -> Harness {
        let Harness {
            server, mock, dir, ..
        } = self;
        server.stop().await.unwrap();
        let config = config_for(toml, &mock.base_url(), &dir);
        Harness::start_on(config, mock, dir).await
    }

    pub fn store(&self) -> &Store {
        &self.server.app.store
    }

    /// Waits (at most 10 s) until at least `n` trace rows exist, then returns the newest `n`,
    /// oldest first.
    pub async fn traces(&self, n: usize) -> Vec<TraceRecord> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let count = self.store().traces.trace_count().unwrap() as usize;
            if count >= n {
                let mut rows = self
                    .store()
                    .traces
                    .traces(&TraceQuery {
                        limit: n,
                        ..TraceQuery::default()
                    })
                    .unwrap();
                rows.reverse();
                return rows;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "only {count} of {n} trace rows after 10 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn trace_count_settled(&self) -> i64 {
        // Long enough for a finish task and a writer batch (50 ms) to land.
        tokio::time::sleep(Duration::from_millis(300)).await;
        self.server.app.writer.flush().await.unwrap();
        self.store().traces.trace_count().unwrap()
    }
}

pub struct TestClient {
    pub base: String,
    inner: Client<HttpConnector, Full<Bytes>>,
}

pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

impl TestClient {
    pub fn new(base: String) -> TestClient {
        TestClient {
            base,
            inner: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: &str,
        headers: &[(&str, &str)],
    ) -> Response<Incoming> {
        let mut builder = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        if !body.is_empty() {
            builder = builder.header("content-type", "application/json");
        }
        for (k, v) in headers {
            builder = builder.header(*k, *v);
        }
        let request = builder
            .body(Full::new(Bytes::from(body.to_string())))
            .unwrap();
        tokio::time::timeout(Duration::from_secs(20), self.inner.request(request))
            .await
            .expect("request timed out")
            .expect("request failed")
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: &str,
        headers: &[(&str, &str)],
    ) -> Answer {
        let response = self.send(method, path, body, headers).await;
        let status = response.status();
        let headers = response.headers().clone();
        let body = tokio::time::timeout(Duration::from_secs(20), response.into_body().collect())
            .await
            .expect("body timed out")
            .map(|c| c.to_bytes())
            .unwrap_or_default();
        Answer {
            status,
            headers,
            body,
        }
    }

    pub async fn post(&self, path: &str, body: &str) -> Answer {
        self.call(Method::POST, path, body, &[]).await
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.call(Method::GET, path, "", &[]).await
    }

    pub async fn admin(&self, method: Method, path: &str, body: &str) -> Answer {
        let auth = format!("Bearer {ADMIN_KEY}");
        self.call(method, path, body, &[("authorization", &auth)])
            .await
    }
}

/// A chat request body for `model` with one user message.
pub fn chat(model: &str, text: &str, stream: bool) -> String {
    serde_json::json!({
        "model": model,
        "messages": [{"role": "user", "content": text}],
        "stream": stream,
    })
    .to_string()
}

/// Reads a streamed body frame by frame, with the time each frame arrived.
pub async fn read_frames(
    response: Response<Incoming>,
    limit: Duration,
) -> (Vec<(Duration, Bytes)>, Option<String>) {
    let started = std::time::Instant::now();
    let mut body = response.into_body();
    let mut frames = Vec::new();
    loop {
        match tokio::time::timeout(limit, body.frame()).await {
            Err(_) => return (frames, Some("timed out".into())),
            Ok(None) => return (frames, None),
            Ok(Some(Err(e))) => return (frames, Some(e.to_string())),
            Ok(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data() {
                    frames.push((started.elapsed(), data));
                }
            }
        }
    }
}

/// The `data:` payloads of an SSE body.
pub fn sse_data(body: &str) -> Vec<String> {
    body.split("\n\n")
        .filter_map(|event| {
            event
                .lines()
                .find_map(|l| l.strip_prefix("data: "))
                .map(String::from)
        })
        .collect()
}
