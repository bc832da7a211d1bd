//! Scripted faults on non-streamed answers: status with `retry-after`, the queue then the
//! default, header delays, malformed bodies, and stopping the server.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::{json, post};
use hyper::StatusCode;
use mock_upstream::{Behavior, MockUpstream};
use serde_json::json;

fn chat() -> serde_json::Value {
    json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]})
}

#[tokio::test]
async fn status_fault_has_openai_error_and_retry_after_then_queue_drains() {
    let mock = MockUpstream::start().await.unwrap();
    mock.push(Behavior {
        status: Some(429),
        retry_after_s: Some(3),
        ..Behavior::default()
    });
    mock.push(Behavior {
        status: Some(500),
        ..Behavior::default()
    });

    let (status, headers, body) = post(&mock, "/v1/chat/completions", &chat()).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(headers["retry-after"], "3");
    assert_eq!(
        json(&body),
        json!({"error": {"message": "mock error", "type": "mock_error", "param": null, "code": "mock_429"}})
    );

    // Queued behaviours apply to any endpoint.
    let (status, headers, _) = post(&mock, "/v1/embeddings", &json!({"input": "x"})).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(!headers.contains_key("retry-after"));

    let (status, _, _) = post(&mock, "/v1/chat/completions", &chat()).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "an empty queue falls back to the default"
    );

    mock.set_default(Behavior {
        status: Some(502),
        ..Behavior::default()
    });
    let (status, _, _) = post(&mock, "/v1/chat/completions", &chat()).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
}

#[tokio::test]
async fn headers_delay_holds_the_response() {
    let mock = MockUpstream::start().await.unwrap();
    mock.push(Behavior {
        headers_delay_ms: 100,
        ..Behavior::default()
    });
    let start = Instant::now();
    let (status, _, _) = post(&mock, "/v1/chat/completions", &chat()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(start.elapsed() >= Duration::from_millis(100));
}

#[tokio::test]
async fn malformed_body_is_a_200_that_is_not_json() {
    let mock = MockUpstream::start().await.unwrap();
    mock.push(Behavior {
        malformed_body: true,
        ..Behavior::default()
    });
    let (status, headers, body) = post(&mock, "/v1/chat/completions", &chat()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "application/json");
    assert!(!body.is_empty());
    assert!(
        serde_json::from_slice::<serde_json::Value>(&body).is_err(),
        "{body:?}"
    );
}

#[tokio::test]
async fn shutdown_stops_the_server() {
    let mock = MockUpstream::start().await.unwrap();
    let addr = mock.addr();
    assert_eq!(mock.base_url(), format!("http://{addr}/v1"));
    let (status, _, _) = post(&mock, "/v1/chat/completions", &chat()).await;
    assert_eq!(status, StatusCode::OK);
    common::bounded(mock.shutdown()).await;
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "nothing listens any more"
    );
}
