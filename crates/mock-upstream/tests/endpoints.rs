//! The other endpoints (legacy completions, embeddings, models) and the error answers for unknown
//! paths and unreadable requests.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{json, post, read_all, send};
use hyper::{Method, StatusCode};
use mock_upstream::MockUpstream;
use serde_json::json;

#[tokio::test]
async fn legacy_completion_counts_prompt_words_plus_one() {
    let mock = MockUpstream::start().await.unwrap();
    let request = json!({"model": "gpt-3.5-turbo-instruct", "prompt": ["one two", "three"]});
    let (status, _, body) = post(&mock, "/v1/completions", &request).await;
    assert_eq!(status, StatusCode::OK);
    let body = json(&body);
    assert_eq!(body["id"], "cmpl-mock-1");
    assert_eq!(body["object"], "text_completion");
    assert_eq!(body["model"], "gpt-3.5-turbo-instruct");
    assert_eq!(
        body["choices"],
        json!([{"text": "Hello from the mock upstream.", "index": 0, "logprobs": null, "finish_reason": "stop"}])
    );
    assert_eq!(
        body["usage"],
        json!({"prompt_tokens": 4, "completion_tokens": 5, "total_tokens": 9})
    );
}

#[tokio::test]
async fn legacy_completion_streams_text_pieces() {
    let mock = MockUpstream::start().await.unwrap();
    let request = json!({
        "model": "m", "prompt": "hi", "stream": true, "stream_options": {"include_usage": true}
    });
    let (_, headers, body) = post(&mock, "/v1/completions", &request).await;
    assert_eq!(headers["content-type"], "text/event-stream");
    let events = common::sse_data(&body);
    assert_eq!(events.last().unwrap(), "[DONE]");
    let chunks: Vec<serde_json::Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    // 5 pieces, the finish chunk, the usage chunk.
    assert_eq!(chunks.len(), 7);
    let text: String = chunks[..6]
        .iter()
        .map(|c| c["choices"][0]["text"].as_str().unwrap())
        .collect();
    assert_eq!(text, "Hello from the mock upstream.");
    assert!(
        chunks[..6]
            .iter()
            .all(|c| c["usage"].is_null() && c["object"] == "text_completion")
    );
    assert_eq!(chunks[5]["choices"][0]["finish_reason"], "stop");
    assert_eq!(chunks[6]["choices"], json!([]));
    assert_eq!(chunks[6]["usage"]["total_tokens"], 7);
}

#[tokio::test]
async fn embeddings_are_deterministic_in_floats_and_base64() {
    let mock = MockUpstream::start().await.unwrap();
    let request = json!({"model": "text-embedding-3-small", "input": ["hello world", "bye"]});
    let (status, _, body) = post(&mock, "/v1/embeddings", &request).await;
    assert_eq!(status, StatusCode::OK);
    let floats = json(&body);
    assert_eq!(floats["object"], "list");
    assert_eq!(floats["model"], "text-embedding-3-small");
    assert_eq!(
        floats["usage"],
        json!({"prompt_tokens": 3, "total_tokens": 3})
    );
    let data = floats["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    assert_eq!(data[1]["index"], 1);
    let first: Vec<f32> = data[0]["embedding"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect();
    assert_eq!(first.len(), 8);
    let norm: f32 = first.iter().map(|x| x * x).sum();
    assert!((norm - 1.0).abs() < 1e-4, "unit length, got {norm}");
    assert_ne!(data[0]["embedding"], data[1]["embedding"]);

    let (_, _, again) = post(&mock, "/v1/embeddings", &request).await;
    assert_eq!(
        json(&again)["data"],
        floats["data"],
        "same text, same vector"
    );

    let request = json!({"model": "m", "input": "hello world", "encoding_format": "base64"});
    let (_, _, body) = post(&mock, "/v1/embeddings", &request).await;
    let encoded = json(&body)["data"][0]["embedding"]
        .as_str()
        .unwrap()
        .to_owned();
    let decoded: Vec<f32> = decode_base64(&encoded)
        .chunks(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect();
    assert_eq!(decoded, first);

    let (status, _, _) = post(&mock, "/v1/embeddings", &json!({"model": "m", "input": 5})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn models_lists_a_few_models() {
    let mock = MockUpstream::start().await.unwrap();
    let (status, _, body) = read_all(send(&mock, Method::GET, "/v1/models", "").await).await;
    assert_eq!(status, StatusCode::OK);
    let body = json(&body);
    let ids: Vec<&str> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&"gpt-4o-mini") && ids.contains(&"text-embedding-3-small"));
    assert_eq!(body["data"][0]["owned_by"], "mock");
}

#[tokio::test]
async fn unknown_paths_and_bad_json_get_openai_errors() {
    let mock = MockUpstream::start().await.unwrap();
    let (status, _, body) = read_all(send(&mock, Method::POST, "/v1/nope", "{}").await).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let body = json(&body);
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert_eq!(body["error"]["param"], serde_json::Value::Null);

    let (status, _, body) =
        read_all(send(&mock, Method::POST, "/v1/chat/completions", "{\"model\":").await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(json(&body)["error"]["code"], "invalid_json");
}

fn decode_base64(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("not base64: {c}"),
    };
    let mut out = Vec::new();
    for group in text.as_bytes().chunks(4) {
        let sextets: Vec<u8> = group
            .iter()
            .filter(|&&c| c != b'=')
            .map(|&c| value(c))
            .collect();
        let n =
            sextets.iter().fold(0u32, |n, &s| (n << 6) | u32::from(s)) << (6 * (4 - sextets.len()));
        out.extend_from_slice(&n.to_be_bytes()[1..sextets.len()]);
    }
    out
}
