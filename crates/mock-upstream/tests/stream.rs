//! Streamed chat completions: timing, the chunk sequence, usage on request, and the stream faults
//! (reset mid-stream, a broken `data:` line).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::{bounded, json, post, sse_data};
use http_body_util::BodyExt;
use hyper::Method;
use mock_upstream::{Behavior, MockUpstream};
use serde_json::{Value, json};

fn chat_stream(include_usage: bool) -> Value {
    json!({
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "tell me something"}],
        "stream": true,
        "stream_options": {"include_usage": include_usage}
    })
}

fn parse_chunks(events: &[String]) -> Vec<Value> {
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect()
}

#[tokio::test]
async fn stream_arrives_in_timed_chunks_and_ends_with_usage_and_done() {
    let mock = MockUpstream::start().await.unwrap();
    mock.push(Behavior {
        chunk_delay_ms: 20,
        reasoning_tokens: 2,
        ..Behavior::default()
    });
    let resp = common::send(
        &mock,
        Method::POST,
        "/v1/chat/completions",
        &chat_stream(true).to_string(),
    )
    .await;
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let mut body = resp.into_body();
    let start = Instant::now();
    let mut frames = Vec::new();
    while let Some(frame) = bounded(body.frame()).await {
        if let Ok(data) = frame.unwrap().into_data() {
            frames.push((start.elapsed(), data));
        }
    }
    // Role, 5 content, finish, usage, [DONE]: nine frames, eight 20 ms gaps between them.
    assert_eq!(frames.len(), 9, "each chunk arrives as its own frame");
    let spread = frames[8].0 - frames[0].0;
    assert!(
        spread >= Duration::from_millis(150),
        "chunks were spread over {spread:?}"
    );

    let all: Vec<u8> = frames.iter().flat_map(|(_, d)| d.to_vec()).collect();
    let chunks = parse_chunks(&sse_data(&all));
    assert_eq!(chunks.len(), 8);
    assert_eq!(
        chunks[0]["choices"][0]["delta"],
        json!({"role": "assistant", "content": ""})
    );
    let text: String = chunks[1..6]
        .iter()
        .map(|c| c["choices"][0]["delta"]["content"].as_str().unwrap())
        .collect();
    assert_eq!(text, "Hello from the mock upstream.");
    for chunk in &chunks[..7] {
        assert_eq!(chunk["object"], "chat.completion.chunk");
        assert_eq!(chunk["id"], "chatcmpl-mock-1");
        assert_eq!(chunk["system_fingerprint"], "fp_mock");
        assert_eq!(chunk["usage"], Value::Null);
        assert!(
            chunk.get("usage").is_some(),
            "usage:null is present while usage was asked for"
        );
    }
    assert_eq!(chunks[6]["choices"][0]["delta"], json!({}));
    assert_eq!(chunks[6]["choices"][0]["finish_reason"], "stop");
    assert_eq!(chunks[7]["choices"], json!([]));
    // "tell me something": 3 words + 4; 5 answer words + 2 reasoning.
    assert_eq!(chunks[7]["usage"]["prompt_tokens"], 7);
    assert_eq!(chunks[7]["usage"]["completion_tokens"], 7);
    assert_eq!(chunks[7]["usage"]["total_tokens"], 14);
    assert_eq!(
        chunks[7]["usage"]["completion_tokens_details"]["reasoning_tokens"],
        2
    );
}

#[tokio::test]
async fn omit_usage_leaves_usage_out_even_when_asked() {
    let mock = MockUpstream::start().await.unwrap();
    mock.push(Behavior {
        omit_usage: true,
        chunks: Some(2),
        ..Behavior::default()
    });
    let (_, _, body) = post(&mock, "/v1/chat/completions", &chat_stream(true)).await;
    let chunks = parse_chunks(&sse_data(&body));
    // Role, 2 content, finish; no usage chunk.
    assert_eq!(chunks.len(), 4);
    assert!(chunks.iter().all(|c| c.get("usage").is_none()));
    assert_eq!(
        chunks[1]["choices"][0]["delta"]["content"],
        "Hello from the "
    );
}

#[tokio::test]
async fn stream_without_include_usage_has_no_usage() {
    let mock = MockUpstream::start().await.unwrap();
    let (_, _, body) = post(&mock, "/v1/chat/completions", &chat_stream(false)).await;
    let chunks = parse_chunks(&sse_data(&body));
    assert_eq!(chunks.len(), 7);
    assert!(chunks.iter().all(|c| c.get("usage").is_none()));
}

#[tokio::test]
async fn reset_after_chunks_aborts_the_connection_mid_body() {
    let mock = MockUpstream::start().await.unwrap();
    mock.push(Behavior {
        reset_after_chunks: Some(2),
        ..Behavior::default()
    });
    let resp = common::send(
        &mock,
        Method::POST,
        "/v1/chat/completions",
        &chat_stream(true).to_string(),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let mut body = resp.into_body();
    let mut received = Vec::new();
    // The client must see an error, never a clean end: hyper reports the chunked body cut off
    // before its terminating chunk ("unexpected EOF during chunk size line").
    let error = loop {
        match bounded(body.frame()).await {
            Some(Ok(frame)) => received.extend_from_slice(&frame.into_data().unwrap()),
            Some(Err(e)) => break e,
            None => panic!("the body ended cleanly; expected an abort"),
        }
    };
    assert!(format!("{error:?}").contains("EOF"), "{error:?}");
    let text = String::from_utf8(received).unwrap();
    // The role chunk and two content chunks made it out before the abort; no [DONE].
    assert_eq!(text.matches("data: ").count(), 3, "{text}");
    assert!(text.contains("\"Hello \"") && text.contains("\"from \""));
    assert!(!text.contains("[DONE]"));

    // The server survives the abort.
    let (status, _, _) = post(&mock, "/v1/chat/completions", &chat_stream(false)).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn malformed_stream_has_one_broken_data_line() {
    let mock = MockUpstream::start().await.unwrap();
    mock.push(Behavior {
        malformed_body: true,
        ..Behavior::default()
    });
    let (_, _, body) = post(&mock, "/v1/chat/completions", &chat_stream(false)).await;
    let events = sse_data(&body);
    assert_eq!(events.last().unwrap(), "[DONE]");
    let broken: Vec<&String> = events
        .iter()
        .filter(|e| *e != "[DONE]" && serde_json::from_str::<Value>(e).is_err())
        .collect();
    assert_eq!(broken.len(), 1, "{events:?}");
    assert_eq!(events[1], *broken[0], "right after the role chunk");
}

#[tokio::test]
async fn streamed_tool_call_sends_arguments_in_pieces() {
    let mock = MockUpstream::start().await.unwrap();
    let request = json!({
        "model": "gpt-4o",
        "messages": [{"role": "user", "content": "weather?"}],
        "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {}}}],
        "tool_choice": "required",
        "stream": true
    });
    let (_, _, body) = post(&mock, "/v1/chat/completions", &request).await;
    let chunks = parse_chunks(&sse_data(&body));
    assert_eq!(chunks.len(), 4);
    let first = &chunks[0]["choices"][0]["delta"];
    assert_eq!(first["role"], "assistant");
    assert_eq!(
        first["tool_calls"],
        json!([{"index": 0, "id": "call_mock_1", "type": "function", "function": {"name": "get_weather", "arguments": ""}}])
    );
    let arguments: String = chunks[1..3]
        .iter()
        .map(|c| {
            c["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert_eq!(json(&arguments.into()), json!({"city": "Paris"}));
    assert_eq!(chunks[3]["choices"][0]["finish_reason"], "tool_calls");
}
