//! Bedrock ConverseStream: binary event-stream frames with valid CRCs, the event order, text,
//! reasoning and tool input reassembled, timing, the public frame encoders, and the stream
//! faults (exception frame, reset, a payload of broken JSON).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{EventFrame, event_frames, post_with, read_until_abort, send_with, timed_frames};
use mock_upstream::{
    Behavior, MockUpstream, THINKING_TEXT, encode_event_frame, encode_exception_frame,
};
use serde_json::{Value, json};

const STREAM: &str = "/model/anthropic.claude-sonnet-4-5-20250929-v1%3A0/converse-stream";
const SIGV4: [(&str, &str); 2] = [
    (
        "authorization",
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260101/us-east-1/bedrock/aws4_request, SignedHeaders=host;x-amz-date, Signature=0123abcd",
    ),
    ("x-amz-date", "20260101T000000Z"),
];

/// One 3-word user message: P = 3 + 4 = 7.
fn converse(extra: Value) -> Value {
    let mut req =
        json!({"messages": [{"role": "user", "content": [{"text": "tell me something"}]}]});
    for (name, value) in extra.as_object().unwrap() {
        req[name] = value.clone();
    }
    req
}

fn names(frames: &[EventFrame]) -> Vec<&str> {
    frames.iter().map(|f| f.event().0).collect()
}

/// Checks the headers of an event frame and returns its type and payload.
fn event(frame: &EventFrame) -> (&str, Value) {
    assert_eq!(frame.header(":message-type"), Some("event"));
    assert_eq!(frame.header(":content-type"), Some("application/json"));
    assert_eq!(frame.headers.len(), 3, "{:?}", frame.headers);
    frame.event()
}

#[tokio::test]
async fn text_stream_is_framed_in_bedrock_order_with_usage_and_timing() {
    let mock = MockUpstream::start().await.unwrap();
    mock.push(Behavior {
        chunks: Some(3),
        chunk_delay_ms: 10,
        cached_tokens: 2,
        cache_write_tokens: 1,
        reasoning_tokens: 4,
        ..Behavior::default()
    });
    let resp = send_with(&mock, STREAM, &SIGV4, &converse(json!({}))).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["content-type"],
        "application/vnd.amazon.eventstream"
    );
    assert!(resp.headers().contains_key("x-amzn-requestid"));
    let timed = timed_frames(resp).await;
    // Seven events, each its own HTTP frame, six 10 ms gaps between them.
    assert_eq!(timed.len(), 7, "each event arrives as its own frame");
    let spread = timed[6].0 - timed[0].0;
    assert!(
        spread >= Duration::from_millis(50),
        "events were spread over {spread:?}"
    );
    for (_, data) in &timed {
        assert_eq!(event_frames(data).len(), 1, "one event per HTTP frame");
    }

    let all: Vec<u8> = timed.iter().flat_map(|(_, d)| d.to_vec()).collect();
    let frames = event_frames(&all);
    let events: Vec<(&str, Value)> = frames.iter().map(event).collect();
    // P = 7, less 2 read and 1 written; 5 answer words + 4 reasoning.
    let expected = [
        ("messageStart", json!({"role": "assistant"})),
        (
            "contentBlockDelta",
            json!({"contentBlockIndex": 0, "delta": {"text": "Hello from "}}),
        ),
        (
            "contentBlockDelta",
            json!({"contentBlockIndex": 0, "delta": {"text": "the mock "}}),
        ),
        (
            "contentBlockDelta",
            json!({"contentBlockIndex": 0, "delta": {"text": "upstream."}}),
        ),
        ("contentBlockStop", json!({"contentBlockIndex": 0})),
        ("messageStop", json!({"stopReason": "end_turn"})),
        (
            "metadata",
            json!({
                "usage": {
                    "inputTokens": 4,
                    "outputTokens": 9,
                    "totalTokens": 16,
                    "cacheReadInputTokens": 2,
                    "cacheWriteInputTokens": 1
                },
                "metrics": {"latencyMs": 1}
            }),
        ),
    ];
    assert_eq!(events.len(), expected.len());
    for (got, (name, payload)) in events.iter().zip(expected) {
        assert_eq!(got.0, name);
        assert_eq!(got.1, payload, "{name}");
    }

    // The public encoder builds the same bytes the mock sends.
    assert_eq!(
        &timed[0].1[..],
        &encode_event_frame("messageStart", br#"{"role":"assistant"}"#)[..]
    );

    let recorded = &mock.requests()[0];
    assert_eq!(recorded.path, STREAM);
    assert_eq!(recorded.header("x-amz-date"), Some("20260101T000000Z"));
    assert!(
        recorded
            .header("authorization")
            .unwrap()
            .starts_with("AWS4-HMAC-SHA256 ")
    );
}

#[tokio::test]
async fn reasoning_then_tool_use_blocks_stream_in_order() {
    let mock = MockUpstream::start().await.unwrap();
    let req = converse(json!({
        "toolConfig": {
            "tools": [{"toolSpec": {"name": "get_weather", "inputSchema": {"json": {"type": "object"}}}}],
            "toolChoice": {"any": {}}
        },
        "additionalModelRequestFields": {"thinking": {"type": "enabled", "budget_tokens": 1024}}
    }));
    let (status, _, body) = post_with(&mock, STREAM, &SIGV4, &req).await;
    assert_eq!(status, 200);
    let frames = event_frames(&body);
    assert_eq!(
        names(&frames),
        [
            "messageStart",
            "contentBlockDelta",
            "contentBlockDelta",
            "contentBlockDelta",
            "contentBlockDelta",
            "contentBlockStop",
            "contentBlockStart",
            "contentBlockDelta",
            "contentBlockDelta",
            "contentBlockStop",
            "messageStop",
            "metadata"
        ]
    );
    let events: Vec<(&str, Value)> = frames.iter().map(event).collect();
    let reasoning: String = events[1..4]
        .iter()
        .map(|(_, p)| {
            assert_eq!(p["contentBlockIndex"], 0);
            p["delta"]["reasoningContent"]["text"].as_str().unwrap()
        })
        .collect();
    assert_eq!(reasoning, THINKING_TEXT);
    assert_eq!(
        events[4].1,
        json!({"contentBlockIndex": 0, "delta": {"reasoningContent": {"signature": "sig_mock_1"}}})
    );
    assert_eq!(events[5].1, json!({"contentBlockIndex": 0}));
    assert_eq!(
        events[6].1,
        json!({"contentBlockIndex": 1, "start": {"toolUse": {"toolUseId": "tooluse_mock_1", "name": "get_weather"}}})
    );
    let input: String = events[7..9]
        .iter()
        .map(|(_, p)| {
            assert_eq!(p["contentBlockIndex"], 1);
            p["delta"]["toolUse"]["input"].as_str().unwrap()
        })
        .collect();
    assert_eq!(
        serde_json::from_str::<Value>(&input).unwrap(),
        json!({"city": "Paris"})
    );
    assert_eq!(events[9].1, json!({"contentBlockIndex": 1}));
    assert_eq!(events[10].1, json!({"stopReason": "tool_use"}));
    // P = 7; one token for the call.
    assert_eq!(
        events[11].1["usage"],
        json!({"inputTokens": 7, "outputTokens": 1, "totalTokens": 8, "cacheReadInputTokens": 0, "cacheWriteInputTokens": 0})
    );

    // omit_usage keeps the metadata event, with metrics only.
    let req = converse(json!({"mock": {"omit_usage": true}}));
    let (_, _, body) = post_with(&mock, STREAM, &SIGV4, &req).await;
    let frames = event_frames(&body);
    let last = frames.last().unwrap().event();
    assert_eq!(last, ("metadata", json!({"metrics": {"latencyMs": 1}})));
}

#[tokio::test]
async fn exception_after_chunks_sends_a_throttling_exception_and_ends_cleanly() {
    let mock = MockUpstream::start().await.unwrap();
    mock.push(Behavior {
        exception_after_chunks: Some(2),
        ..Behavior::default()
    });
    // `post_with` reads to a clean end; an abort would fail it.
    let (status, _, body) = post_with(&mock, STREAM, &SIGV4, &converse(json!({}))).await;
    assert_eq!(status, 200);
    let frames = event_frames(&body);
    assert_eq!(
        names(&frames),
        [
            "messageStart",
            "contentBlockDelta",
            "contentBlockDelta",
            "throttlingException"
        ]
    );
    let exception = &frames[3];
    assert_eq!(exception.header(":message-type"), Some("exception"));
    assert_eq!(exception.header(":content-type"), Some("application/json"));
    assert_eq!(exception.header(":event-type"), None);
    assert_eq!(exception.json(), json!({"message": "Too many requests"}));
    let tail = &body[body.len() - exception_len()..];
    assert_eq!(
        tail,
        &encode_exception_frame("throttlingException", br#"{"message":"Too many requests"}"#)[..],
        "the public encoder builds the same exception frame"
    );

    // From the request's "mock" object, with 0: the exception comes before the first delta.
    let req = converse(json!({"mock": {"exception_after_chunks": 0}}));
    let (_, _, body) = post_with(&mock, STREAM, &SIGV4, &req).await;
    assert_eq!(
        names(&event_frames(&body)),
        ["messageStart", "throttlingException"]
    );

    // Past the last delta: every delta, then the exception, never the closing events.
    let req = converse(json!({"mock": {"exception_after_chunks": 99}}));
    let (_, _, body) = post_with(&mock, STREAM, &SIGV4, &req).await;
    let frames = event_frames(&body);
    assert_eq!(frames.len(), 1 + 5 + 1);
    assert_eq!(frames[5].event().0, "contentBlockDelta");
    assert_eq!(frames[6].event().0, "throttlingException");
}

fn exception_len() -> usize {
    encode_exception_frame("throttlingException", br#"{"message":"Too many requests"}"#).len()
}

#[tokio::test]
async fn reset_after_chunks_aborts_between_whole_frames() {
    let mock = MockUpstream::start().await.unwrap();
    mock.push(Behavior {
        reset_after_chunks: Some(1),
        ..Behavior::default()
    });
    let resp = send_with(&mock, STREAM, &SIGV4, &converse(json!({}))).await;
    assert_eq!(resp.status(), 200);
    let (received, error) = read_until_abort(resp).await;
    assert!(error.contains("EOF"), "{error}");
    let frames = event_frames(&received);
    assert_eq!(names(&frames), ["messageStart", "contentBlockDelta"]);
    assert_eq!(frames[1].json()["delta"]["text"], "Hello ");

    // On a tie with an exception: the exception, then the reset.
    let req = converse(json!({"mock": {"reset_after_chunks": 1, "exception_after_chunks": 1}}));
    let (received, _) = read_until_abort(send_with(&mock, STREAM, &SIGV4, &req).await).await;
    assert_eq!(
        names(&event_frames(&received)),
        ["messageStart", "contentBlockDelta", "throttlingException"]
    );

    // The server survives the abort.
    let (status, _, _) = post_with(&mock, STREAM, &SIGV4, &converse(json!({}))).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn malformed_body_sends_a_well_framed_delta_of_broken_json() {
    let mock = MockUpstream::start().await.unwrap();
    mock.push(Behavior {
        malformed_body: true,
        chunks: Some(2),
        ..Behavior::default()
    });
    let (status, _, body) = post_with(&mock, STREAM, &SIGV4, &converse(json!({}))).await;
    assert_eq!(status, 200);
    // The CRCs are valid (event_frames checks them); the payload is not JSON.
    let frames = event_frames(&body);
    assert_eq!(frames.len(), 1 + 1 + 2 + 3);
    assert_eq!(frames[1].header(":event-type"), Some("contentBlockDelta"));
    assert!(serde_json::from_slice::<Value>(&frames[1].payload).is_err());
    assert!(frames[2].payload.starts_with(&frames[1].payload));
    assert_eq!(frames[2].json()["delta"]["text"], "Hello from the ");
}
