//! Shared helpers for the mock's own tests: a plain hyper client, bounded waits, and an SSE
//! splitter. Every network wait goes through `bounded`, so a hang fails fast instead of stalling
//! the suite.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use mock_upstream::MockUpstream;
use serde_json::Value;

pub type HttpClient = Client<HttpConnector, Full<Bytes>>;

pub fn client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

/// Fails the test if `fut` takes longer than two seconds.
pub async fn bounded<T>(fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(2), fut)
        .await
        .expect("timed out")
}

pub async fn send(
    mock: &MockUpstream,
    method: Method,
    path: &str,
    body: &str,
) -> Response<Incoming> {
    let req = Request::builder()
        .method(method)
        .uri(format!("http://{}{path}", mock.addr()))
        .header("content-type", "application/json")
        .header("authorization", "Bearer sk-test")
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap();
    bounded(client().request(req)).await.unwrap()
}

/// The headers Anthropic's SDKs send.
pub const ANTHROPIC_HEADERS: [(&str, &str); 3] = [
    ("x-api-key", "sk-ant-test"),
    ("anthropic-version", "2023-06-01"),
    ("anthropic-beta", "interleaved-thinking-2025-05-14"),
];

/// POSTs `body` as Anthropic's SDKs would, with [`ANTHROPIC_HEADERS`].
pub async fn send_anthropic(mock: &MockUpstream, path: &str, body: &Value) -> Response<Incoming> {
    let mut req = Request::builder()
        .method(Method::POST)
        .uri(format!("http://{}{path}", mock.addr()))
        .header("content-type", "application/json");
    for (name, value) in ANTHROPIC_HEADERS {
        req = req.header(name, value);
    }
    let req = req.body(Full::new(Bytes::from(body.to_string()))).unwrap();
    bounded(client().request(req)).await.unwrap()
}

/// [`send_anthropic`], then the status, headers and whole body.
pub async fn post_anthropic(
    mock: &MockUpstream,
    path: &str,
    body: &Value,
) -> (StatusCode, hyper::HeaderMap, Bytes) {
    read_all(send_anthropic(mock, path, body).await).await
}

/// POSTs `body` and returns status, headers and the whole body.
pub async fn post(
    mock: &MockUpstream,
    path: &str,
    body: &Value,
) -> (StatusCode, hyper::HeaderMap, Bytes) {
    let resp = send(mock, Method::POST, path, &body.to_string()).await;
    read_all(resp).await
}

pub async fn read_all(resp: Response<Incoming>) -> (StatusCode, hyper::HeaderMap, Bytes) {
    let (parts, body) = resp.into_parts();
    let bytes = bounded(body.collect()).await.unwrap().to_bytes();
    (parts.status, parts.headers, bytes)
}

pub fn json(bytes: &Bytes) -> Value {
    serde_json::from_slice(bytes).unwrap_or_else(|e| panic!("not JSON ({e}): {bytes:?}"))
}

/// The events of an SSE body with named events (`event: NAME\ndata: JSON\n\n`), in order, with
/// the data parsed. Checks that each data's `type` matches its event name.
pub fn sse_events(body: &[u8]) -> Vec<(String, Value)> {
    let text = std::str::from_utf8(body).unwrap();
    text.split("\n\n")
        .filter(|event| !event.is_empty())
        .map(|event| {
            let (name, data) = event
                .strip_prefix("event: ")
                .and_then(|rest| rest.split_once("\ndata: "))
                .unwrap_or_else(|| panic!("not one event line and one data line: {event:?}"));
            let data: Value = serde_json::from_str(data)
                .unwrap_or_else(|e| panic!("data of {name} is not JSON ({e}): {data:?}"));
            assert_eq!(data["type"], name, "event name and data type differ");
            (name.to_owned(), data)
        })
        .collect()
}

/// The payloads of the `data:` lines of an SSE body, in order.
pub fn sse_data(body: &[u8]) -> Vec<String> {
    let text = std::str::from_utf8(body).unwrap();
    text.split("\n\n")
        .filter(|event| !event.is_empty())
        .map(|event| {
            event
                .strip_prefix("data: ")
                .expect("every event is one data line")
                .to_owned()
        })
        .collect()
}
