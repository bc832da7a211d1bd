//! The client against the mock upstream, over loopback: keep-alive reuse, a body dropped halfway,
//! and a pooled connection the upstream closed while it was idle.

use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Body;
use mock_upstream::{Behavior, MockUpstream};

use super::*;

fn chat(base: &str, stream: bool) -> Request<Full<Bytes>> {
    let body = serde_json::json!({
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "hi"}],
        "stream": stream,
    });
    Request::post(format!("{base}/chat/completions"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap_or_else(|e| panic!("{e}"))
}

async fn send(client: &HttpClient, base: &str, stream: bool) -> Response<UpstreamIncoming> {
    let response = client
        .send("mock", chat(base, stream), Duration::from_secs(5))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(response.status(), 200);
    response
}

async fn read_all(response: Response<UpstreamIncoming>) -> String {
    let bytes = tokio::time::timeout(Duration::from_secs(5), response.into_body().collect())
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|e| panic!("{e}"))
        .to_bytes();
    String::from_utf8_lossy(&bytes).into_owned()
}

#[tokio::test]
async fn answers_and_streams_reuse_one_connection() {
    let mock = MockUpstream::start()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let client = HttpClient::new(Duration::from_secs(2)).unwrap_or_else(|e| panic!("{e}"));
    for round in 0..4 {
        let stream = round % 2 == 1;
        let text = read_all(send(&client, &mock.base_url(), stream).await).await;
        if stream {
            assert!(text.contains(r#""content":"Hello "}"#), "{text}");
            assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
        } else {
            assert!(text.contains("Hello from the mock"), "{text}");
        }
    }
    assert_eq!(mock.request_count(), 4);
    assert_eq!(client.connections_opened(), 1);
}

#[tokio::test]
async fn a_body_dropped_halfway_closes_its_connection_and_the_next_request_works() {
    let mock = MockUpstream::start()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    mock.push(Behavior {
        chunk_delay_ms: 50,
        ..Behavior::default()
    });
    let client = HttpClient::new(Duration::from_secs(2)).unwrap_or_else(|e| panic!("{e}"));
    let mut body = send(&client, &mock.base_url(), true).await.into_body();
    let first = tokio::time::timeout(Duration::from_secs(5), body.frame())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(first.is_some_and(|f| f.is_ok()));
    assert!(!body.is_end_stream());
    drop(body);
    let text = read_all(send(&client, &mock.base_url(), false).await).await;
    assert!(text.contains("Hello from the mock"), "{text}");
    assert_eq!(client.connections_opened(), 2);
}

#[tokio::test]
async fn a_pooled_connection_closed_by_the_upstream_is_replaced() {
    let mock = MockUpstream::start()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let addr = mock.addr();
    let client = HttpClient::new(Duration::from_secs(2)).unwrap_or_else(|e| panic!("{e}"));
    read_all(send(&client, &mock.base_url(), false).await).await;
    mock.shutdown().await;
    let mock = MockUpstream::start_on(addr)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let text = read_all(send(&client, &mock.base_url(), false).await).await;
    assert!(text.contains("Hello from the mock"), "{text}");
    assert_eq!(client.connections_opened(), 2);
}
