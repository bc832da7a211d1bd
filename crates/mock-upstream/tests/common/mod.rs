//! Shared helpers for the mock's own tests: a plain hyper client, bounded waits, SSE splitters
//! (Gemini's CRLF form too), and an event-stream frame decoder that checks both CRCs. Every
//! network wait goes through `bounded`, so a hang fails fast instead of stalling the suite.

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

/// POSTs `body` to `path` with extra `headers` (Gemini's `x-goog-api-key`, Bedrock's SigV4
/// headers, ...) and no `authorization` unless given.
pub async fn send_with(
    mock: &MockUpstream,
    path: &str,
    headers: &[(&str, &str)],
    body: &Value,
) -> Response<Incoming> {
    let mut req = Request::builder()
        .method(Method::POST)
        .uri(format!("http://{}{path}", mock.addr()))
        .header("content-type", "application/json");
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let req = req.body(Full::new(Bytes::from(body.to_string()))).unwrap();
    bounded(client().request(req)).await.unwrap()
}

/// [`send_with`], then the status, headers and whole body.
pub async fn post_with(
    mock: &MockUpstream,
    path: &str,
    headers: &[(&str, &str)],
    body: &Value,
) -> (StatusCode, hyper::HeaderMap, Bytes) {
    read_all(send_with(mock, path, headers, body).await).await
}

/// Reads a body until it fails, returning what arrived before the error and the error's text.
/// Panics if the body ends cleanly.
pub async fn read_until_abort(resp: Response<Incoming>) -> (Vec<u8>, String) {
    let mut body = resp.into_body();
    let mut received = Vec::new();
    loop {
        match bounded(body.frame()).await {
            Some(Ok(frame)) => received.extend_from_slice(&frame.into_data().unwrap()),
            Some(Err(e)) => return (received, format!("{e:?}")),
            None => panic!("the body ended cleanly; expected an abort"),
        }
    }
}

/// Every data frame of a body with the time it arrived, to a clean end.
pub async fn timed_frames(resp: Response<Incoming>) -> Vec<(Duration, Bytes)> {
    let mut body = resp.into_body();
    let start = std::time::Instant::now();
    let mut frames = Vec::new();
    while let Some(frame) = bounded(body.frame()).await {
        if let Ok(data) = frame.unwrap().into_data() {
            frames.push((start.elapsed(), data));
        }
    }
    frames
}

/// The events of a Gemini SSE body (`data: JSON\r\n\r\n` each), parsed. Checks the CRLF framing:
/// the body ends with a separator and holds no bare LF outside one.
pub fn gemini_events(body: &[u8]) -> Vec<Value> {
    let text = std::str::from_utf8(body).unwrap();
    assert!(
        text.is_empty() || text.ends_with("\r\n\r\n"),
        "not CRLF-terminated: {text:?}"
    );
    text.split("\r\n\r\n")
        .filter(|event| !event.is_empty())
        .map(|event| {
            assert!(!event.contains('\n'), "one line per event: {event:?}");
            let data = event
                .strip_prefix("data: ")
                .unwrap_or_else(|| panic!("not a data line: {event:?}"));
            serde_json::from_str(data)
                .unwrap_or_else(|e| panic!("data is not JSON ({e}): {data:?}"))
        })
        .collect()
}

/// One decoded event-stream frame; only string headers (the only kind the mock sends).
#[derive(Debug)]
pub struct EventFrame {
    pub headers: Vec<(String, String)>,
    pub payload: Vec<u8>,
}

impl EventFrame {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.payload)
            .unwrap_or_else(|e| panic!("payload is not JSON ({e}): {:?}", self.payload))
    }

    /// `:event-type` (or `:exception-type`) and the JSON payload.
    pub fn event(&self) -> (&str, Value) {
        let name = self
            .header(":event-type")
            .or_else(|| self.header(":exception-type"))
            .expect("an event or exception type");
        (name, self.json())
    }
}

fn be_u32(b: &[u8]) -> u32 {
    u32::from_be_bytes(b[..4].try_into().unwrap())
}

/// Decodes a whole `application/vnd.amazon.eventstream` body, checking the prelude and message
/// CRC32s of every frame and that the body ends on a frame boundary.
pub fn event_frames(mut body: &[u8]) -> Vec<EventFrame> {
    let mut frames = Vec::new();
    while !body.is_empty() {
        assert!(body.len() >= 16, "truncated prelude: {} bytes", body.len());
        let total = be_u32(&body[0..4]) as usize;
        let headers_len = be_u32(&body[4..8]) as usize;
        assert_eq!(
            be_u32(&body[8..12]),
            crc32fast::hash(&body[..8]),
            "prelude CRC"
        );
        assert!(total <= body.len(), "truncated frame");
        let frame = &body[..total];
        assert_eq!(
            be_u32(&frame[total - 4..]),
            crc32fast::hash(&frame[..total - 4]),
            "message CRC"
        );
        let mut h = &frame[12..12 + headers_len];
        let mut headers = Vec::new();
        while !h.is_empty() {
            let name_len = h[0] as usize;
            let name = std::str::from_utf8(&h[1..1 + name_len]).unwrap().to_owned();
            assert_eq!(h[1 + name_len], 7, "{name} is a string header");
            let at = 2 + name_len;
            let value_len = u16::from_be_bytes([h[at], h[at + 1]]) as usize;
            let value = std::str::from_utf8(&h[at + 2..at + 2 + value_len])
                .unwrap()
                .to_owned();
            headers.push((name, value));
            h = &h[at + 2 + value_len..];
        }
        frames.push(EventFrame {
            headers,
            payload: frame[12 + headers_len..total - 4].to_vec(),
        });
        body = &body[total..];
    }
    frames
}
