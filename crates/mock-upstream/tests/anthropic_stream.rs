//! The Anthropic Messages API, streamed: the event order, reassembly of text, thinking and tool
//! input, timing, and the stream faults (error event, reset, a broken `data:` line).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::{bounded, post_anthropic, send_anthropic, sse_events};
use http_body_util::BodyExt;
use mock_upstream::{Behavior, MockUpstream, THINKING_TEXT};
use serde_json::{Value, json};

fn stream(extra: Value) -> Value {
    let mut req = json!({
        "model": "claude-opus-4-8",
        "max_tokens": 1024,
        "messages": [{"role": "user", "content": "tell me something"}],
        "stream": true
    });
    for (name, value) in extra.as_object().unwrap() {
        req[name] = value.clone();
    }
    req
}

fn names(events: &[(String, Value)]) -> Vec<&str> {
    events.iter().map(|(name, _)| name.as_str()).collect()
}

/// The concatenated `field` of every delta of type `kind`.
fn joined(events: &[(String, Value)], kind: &str, field: &str) -> String {
    events
        .iter()
        .filter(|(_, data)| data["delta"]["type"] == kind)
        .map(|(_, data)| data["delta"][field].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn text_stream_has_anthropic_event_order_usage_and_timing() {
    let mock = MockUpstream::start().await.unwrap();
    mock.push(Behavior {
        chunks: Some(3),
        chunk_delay_ms: 15,
        cached_tokens: 2,
        cache_write_tokens: 1,
        reasoning_tokens: 4,
        ..Behavior::default()
    });
    let resp = send_anthropic(&mock, "/v1/messages", &stream(json!({}))).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    assert_eq!(resp.headers()["request-id"], "req_mock_1");
    let mut body = resp.into_body();
    let start = Instant::now();
    let mut frames = Vec::new();
    while let Some(frame) = bounded(body.frame()).await {
        if let Ok(data) = frame.unwrap().into_data() {
            frames.push((start.elapsed(), data));
        }
    }
    // Nine events, each its own frame, eight 15 ms gaps between them.
    assert_eq!(frames.len(), 9, "each event arrives as its own frame");
    let spread = frames[8].0 - frames[0].0;
    assert!(
        spread >= Duration::from_millis(100),
        "events were spread over {spread:?}"
    );

    let all: Vec<u8> = frames.iter().flat_map(|(_, d)| d.to_vec()).collect();
    let events = sse_events(&all);
    assert_eq!(
        names(&events),
        [
            "message_start",
            "ping",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    // "tell me something": 3 words + 4, less 2 read and 1 written; 5 answer words + 4 reasoning.
    assert_eq!(
        events[0].1,
        json!({
            "type": "message_start",
            "message": {
                "id": "msg_mock_1",
                "type": "message",
                "role": "assistant",
                "model": "claude-opus-4-8",
                "content": [],
                "stop_reason": null,
                "stop_sequence": null,
                "usage": {
                    "input_tokens": 4,
                    "output_tokens": 1,
                    "cache_creation_input_tokens": 1,
                    "cache_read_input_tokens": 2
                }
            }
        })
    );
    assert_eq!(events[1].1, json!({"type": "ping"}));
    assert_eq!(
        events[2].1,
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})
    );
    assert_eq!(
        events[3].1,
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hello from "}})
    );
    assert_eq!(
        joined(&events, "text_delta", "text"),
        "Hello from the mock upstream."
    );
    assert_eq!(
        events[6].1,
        json!({"type": "content_block_stop", "index": 0})
    );
    assert_eq!(
        events[7].1,
        json!({
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": null},
            "usage": {"output_tokens": 9}
        })
    );
    assert_eq!(events[8].1, json!({"type": "message_stop"}));
}

#[tokio::test]
async fn thinking_stream_sends_thinking_then_signature_then_text() {
    let mock = MockUpstream::start().await.unwrap();
    let request = stream(json!({"thinking": {"type": "enabled", "budget_tokens": 2048}}));
    let (_, _, body) = post_anthropic(&mock, "/v1/messages", &request).await;
    let events = sse_events(&body);
    assert_eq!(
        names(&events),
        [
            "message_start",
            "ping",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    assert_eq!(
        events[2].1["content_block"],
        json!({"type": "thinking", "thinking": ""})
    );
    assert_eq!(joined(&events, "thinking_delta", "thinking"), THINKING_TEXT);
    assert_eq!(
        events[6].1,
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "sig_mock_1"}})
    );
    assert_eq!(events[7].1["index"], 0);
    assert_eq!(events[8].1["index"], 1);
    assert_eq!(events[8].1["content_block"]["type"], "text");
    assert!(events[9..14].iter().all(|(_, d)| d["index"] == 1));
    assert_eq!(
        joined(&events, "text_delta", "text"),
        "Hello from the mock upstream."
    );
}

#[tokio::test]
async fn tool_use_stream_sends_input_json_in_pieces() {
    let mock = MockUpstream::start().await.unwrap();
    let request = stream(json!({
        "tools": [{"name": "get_weather", "input_schema": {"type": "object"}}],
        "tool_choice": {"type": "tool", "name": "get_weather"}
    }));
    let (_, _, body) = post_anthropic(&mock, "/v1/messages", &request).await;
    let events = sse_events(&body);
    assert_eq!(
        names(&events),
        [
            "message_start",
            "ping",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    assert_eq!(
        events[2].1,
        json!({
            "type": "content_block_start",
            "index": 0,
            "content_block": {"type": "tool_use", "id": "toolu_mock_1", "name": "get_weather", "input": {}}
        })
    );
    assert_eq!(events[3].1["delta"]["partial_json"], "{\"city\":");
    let input = joined(&events, "input_json_delta", "partial_json");
    assert_eq!(
        serde_json::from_str::<Value>(&input).unwrap(),
        json!({"city": "Paris"})
    );
    assert_eq!(events[6].1["delta"]["stop_reason"], "tool_use");
    assert_eq!(events[6].1["usage"], json!({"output_tokens": 1}));
}

#[tokio::test]
async fn error_event_ends_the_stream_cleanly_without_message_stop() {
    let mock = MockUpstream::start().await.unwrap();
    mock.push(Behavior {
        error_event_after_chunks: Some(2),
        ..Behavior::default()
    });
    // `post_anthropic` reads to a clean end; an abort would fail it.
    let (status, _, body) = post_anthropic(&mock, "/v1/messages", &stream(json!({}))).await;
    assert_eq!(status, 200);
    let events = sse_events(&body);
    assert_eq!(
        names(&events),
        [
            "message_start",
            "ping",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "error"
        ]
    );
    assert_eq!(
        events[5].1,
        json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    );

    // From the request's "mock" object, with 0: the error comes before the first delta.
    let request = stream(json!({"mock": {"error_event_after_chunks": 0}}));
    let (_, _, body) = post_anthropic(&mock, "/v1/messages", &request).await;
    assert_eq!(
        names(&sse_events(&body)),
        ["message_start", "ping", "content_block_start", "error"]
    );

    // Past the last delta: every delta, then the error, never the closing events.
    let request = stream(json!({"mock": {"error_event_after_chunks": 99}}));
    let (_, _, body) = post_anthropic(&mock, "/v1/messages", &request).await;
    let events = sse_events(&body);
    assert_eq!(events.len(), 9, "{:?}", names(&events));
    assert_eq!(events[7].0, "content_block_delta");
    assert_eq!(events[8].0, "error");
}

#[tokio::test]
async fn reset_after_chunks_aborts_without_message_stop() {
    let mock = MockUpstream::start().await.unwrap();
    mock.push(Behavior {
        reset_after_chunks: Some(2),
        ..Behavior::default()
    });
    let resp = send_anthropic(&mock, "/v1/messages", &stream(json!({}))).await;
    assert_eq!(resp.status(), 200);
    let mut body = resp.into_body();
    let mut received = Vec::new();
    let error = loop {
        match bounded(body.frame()).await {
            Some(Ok(frame)) => received.extend_from_slice(&frame.into_data().unwrap()),
            Some(Err(e)) => break e,
            None => panic!("the body ended cleanly; expected an abort"),
        }
    };
    assert!(format!("{error:?}").contains("EOF"), "{error:?}");
    let events = sse_events(&received);
    assert_eq!(
        names(&events),
        [
            "message_start",
            "ping",
            "content_block_start",
            "content_block_delta",
            "content_block_delta"
        ]
    );
    assert_eq!(joined(&events, "text_delta", "text"), "Hello from ");

    // The server survives the abort.
    let (status, _, _) = post_anthropic(&mock, "/v1/messages", &stream(json!({}))).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn error_event_and_reset_at_the_same_delta_send_the_error_then_reset() {
    let mock = MockUpstream::start().await.unwrap();
    mock.push(Behavior {
        reset_after_chunks: Some(1),
        error_event_after_chunks: Some(1),
        ..Behavior::default()
    });
    let resp = send_anthropic(&mock, "/v1/messages", &stream(json!({}))).await;
    let mut body = resp.into_body();
    let mut received = Vec::new();
    loop {
        match bounded(body.frame()).await {
            Some(Ok(frame)) => received.extend_from_slice(&frame.into_data().unwrap()),
            Some(Err(_)) => break,
            None => panic!("the body ended cleanly; expected an abort"),
        }
    }
    let events = sse_events(&received);
    assert_eq!(events.last().unwrap().0, "error");
    assert_eq!(events.len(), 5, "{:?}", names(&events));
}

#[tokio::test]
async fn malformed_stream_has_one_broken_delta_and_omit_usage_drops_usage() {
    let mock = MockUpstream::start().await.unwrap();
    mock.push(Behavior {
        malformed_body: true,
        ..Behavior::default()
    });
    let (_, _, body) = post_anthropic(&mock, "/v1/messages", &stream(json!({}))).await;
    let text = std::str::from_utf8(&body).unwrap();
    let broken: Vec<(usize, &str)> = text
        .split("\n\n")
        .filter(|e| !e.is_empty())
        .enumerate()
        .filter(|(_, e)| {
            let data = e.split_once("\ndata: ").unwrap().1;
            serde_json::from_str::<Value>(data).is_err()
        })
        .collect();
    assert_eq!(broken.len(), 1, "{text}");
    // Right after message_start, ping and content_block_start.
    assert_eq!(broken[0].0, 3);
    assert!(broken[0].1.starts_with("event: content_block_delta\n"));

    mock.push(Behavior {
        omit_usage: true,
        ..Behavior::default()
    });
    let (_, _, body) = post_anthropic(&mock, "/v1/messages", &stream(json!({}))).await;
    let events = sse_events(&body);
    assert!(events[0].1["message"].get("usage").is_none());
    let delta = &events[events.len() - 2].1;
    assert_eq!(delta["type"], "message_delta");
    assert!(delta.get("usage").is_none());
}
