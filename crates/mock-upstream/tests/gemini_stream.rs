//! The Gemini API, streamed: `streamGenerateContent?alt=sse` with CRLF-separated events, the
//! chunk order, cumulative usage, timing, the JSON-array form, and the stream faults.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{gemini_events, json, post_with, read_until_abort, send_with, timed_frames};
use mock_upstream::{Behavior, MockUpstream, THINKING_TEXT};
use serde_json::{Value, json};

const STREAM: &str = "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse";
const KEY: [(&str, &str); 1] = [("x-goog-api-key", "AIza-test")];

/// One 4-word user turn: P = 4 + 4 = 8.
fn request(extra: Value) -> Value {
    let mut req =
        json!({"contents": [{"role": "user", "parts": [{"text": "tell me something nice"}]}]});
    for (name, value) in extra.as_object().unwrap() {
        req[name] = value.clone();
    }
    req
}

/// The concatenated text of the non-thought parts of `events`.
fn text(events: &[Value]) -> String {
    events
        .iter()
        .flat_map(|e| e["candidates"][0]["content"]["parts"].as_array().unwrap())
        .filter(|p| p.get("thought").is_none())
        .filter_map(|p| p["text"].as_str())
        .collect()
}

#[tokio::test]
async fn text_stream_has_crlf_events_cumulative_usage_and_timing() {
    let mock = MockUpstream::start().await.unwrap();
    mock.push(Behavior {
        chunks: Some(3),
        chunk_delay_ms: 15,
        ..Behavior::default()
    });
    let resp = send_with(&mock, STREAM, &KEY, &request(json!({}))).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let frames = timed_frames(resp).await;
    assert_eq!(frames.len(), 3, "each chunk arrives as its own frame");
    let spread = frames[2].0 - frames[0].0;
    assert!(
        spread >= Duration::from_millis(25),
        "chunks were spread over {spread:?}"
    );

    let all: Vec<u8> = frames.iter().flat_map(|(_, d)| d.to_vec()).collect();
    assert!(all.starts_with(b"data: {"));
    let events = gemini_events(&all);
    assert_eq!(events.len(), 3);
    // "Hello from the mock upstream." in 3 pieces of 2, 2 and 1 words; P = 8.
    let usage = |sent: u64| {
        json!({
            "promptTokenCount": 8,
            "candidatesTokenCount": sent,
            "totalTokenCount": 8 + sent,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 8}]
        })
    };
    let chunk = |text: &str, finish: bool, sent: u64| {
        let mut candidate =
            json!({"content": {"parts": [{"text": text}], "role": "model"}, "index": 0});
        if finish {
            candidate["finishReason"] = json!("STOP");
        }
        json!({
            "candidates": [candidate],
            "usageMetadata": usage(sent),
            "modelVersion": "gemini-2.5-flash",
            "responseId": "resp_mock_1"
        })
    };
    assert_eq!(events[0], chunk("Hello from ", false, 2));
    assert_eq!(events[1], chunk("the mock ", false, 4));
    assert_eq!(events[2], chunk("upstream.", true, 5));
    assert_eq!(text(&events), "Hello from the mock upstream.");

    let recorded = &mock.requests()[0];
    assert_eq!(recorded.path, STREAM, "the query is recorded");
    assert_eq!(recorded.header("x-goog-api-key"), Some("AIza-test"));
}

#[tokio::test]
async fn thoughts_then_a_signed_function_call_in_one_chunk() {
    let mock = MockUpstream::start().await.unwrap();
    mock.push(Behavior {
        reasoning_tokens: 6,
        cached_tokens: 2,
        ..Behavior::default()
    });
    let req = request(json!({
        "tools": [{"functionDeclarations": [{"name": "get_weather"}]}],
        "toolConfig": {"functionCallingConfig": {"mode": "ANY"}},
        "generationConfig": {"thinkingConfig": {"includeThoughts": true}}
    }));
    let (status, _, body) = post_with(&mock, STREAM, &KEY, &req).await;
    assert_eq!(status, 200);
    let events = gemini_events(&body);
    assert_eq!(events.len(), 2);
    // The thought chunk: no candidates yet, thoughts already counted.
    assert_eq!(
        events[0]["candidates"],
        json!([{"content": {"parts": [{"text": THINKING_TEXT, "thought": true}], "role": "model"}, "index": 0}])
    );
    assert_eq!(
        events[0]["usageMetadata"],
        json!({
            "promptTokenCount": 8,
            "totalTokenCount": 14,
            "cachedContentTokenCount": 2,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 8}],
            "cacheTokensDetails": [{"modality": "TEXT", "tokenCount": 2}],
            "thoughtsTokenCount": 6
        })
    );
    // Gemini never splits a call: one chunk carries it, its signature and the finish.
    assert_eq!(
        events[1]["candidates"],
        json!([{
            "content": {
                "parts": [{"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": "sig_mock_1"}],
                "role": "model"
            },
            "finishReason": "STOP",
            "index": 0
        }])
    );
    assert_eq!(events[1]["usageMetadata"]["candidatesTokenCount"], 1);
    assert_eq!(events[1]["usageMetadata"]["totalTokenCount"], 8 + 1 + 6);
}

#[tokio::test]
async fn without_alt_sse_the_stream_is_one_json_array() {
    let mock = MockUpstream::start().await.unwrap();
    let path = "/v1beta/models/gemini-2.5-flash:streamGenerateContent";
    let (status, headers, body) = post_with(&mock, path, &KEY, &request(json!({}))).await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "application/json");
    let chunks = json(&body);
    let chunks = chunks.as_array().unwrap();
    assert_eq!(chunks.len(), 5);
    assert_eq!(text(chunks), "Hello from the mock upstream.");
    assert_eq!(chunks[4]["candidates"][0]["finishReason"], "STOP");
    assert_eq!(chunks[4]["usageMetadata"]["totalTokenCount"], 13);
}

#[tokio::test]
async fn reset_after_chunks_aborts_before_the_finish() {
    let mock = MockUpstream::start().await.unwrap();
    mock.push(Behavior {
        reset_after_chunks: Some(2),
        ..Behavior::default()
    });
    let req = request(json!({"generationConfig": {"thinkingConfig": {"includeThoughts": true}}}));
    let resp = send_with(&mock, STREAM, &KEY, &req).await;
    assert_eq!(resp.status(), 200);
    let (received, error) = read_until_abort(resp).await;
    assert!(error.contains("EOF"), "{error}");
    let events = gemini_events(&received);
    // The thought chunk doesn't count: it, then two answer chunks.
    assert_eq!(events.len(), 3);
    assert_eq!(text(&events), "Hello from ");
    assert!(
        events
            .iter()
            .all(|e| e["candidates"][0].get("finishReason").is_none())
    );

    // The server survives the abort.
    let (status, _, _) = post_with(&mock, STREAM, &KEY, &request(json!({}))).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn error_event_ends_the_stream_cleanly_without_a_finish() {
    let mock = MockUpstream::start().await.unwrap();
    mock.push(Behavior {
        error_event_after_chunks: Some(1),
        ..Behavior::default()
    });
    // `post_with` reads to a clean end; an abort would fail it.
    let (status, _, body) = post_with(&mock, STREAM, &KEY, &request(json!({}))).await;
    assert_eq!(status, 200);
    let events = gemini_events(&body);
    assert_eq!(events.len(), 2);
    assert_eq!(text(&events[..1]), "Hello ");
    assert_eq!(
        events[1],
        json!({"error": {"code": 503, "message": "The model is overloaded. Please try again later.", "status": "UNAVAILABLE"}})
    );

    // With 0, the error comes before the first answer chunk (after the thought chunk).
    let req = request(json!({
        "generationConfig": {"thinkingConfig": {"includeThoughts": true}},
        "mock": {"error_event_after_chunks": 0}
    }));
    let (_, _, body) = post_with(&mock, STREAM, &KEY, &req).await;
    let events = gemini_events(&body);
    assert_eq!(events.len(), 2);
    assert_eq!(
        events[0]["candidates"][0]["content"]["parts"][0]["thought"],
        true
    );
    assert_eq!(events[1]["error"]["status"], "UNAVAILABLE");

    // On a tie with a reset: the error event, then the reset.
    let req = request(json!({"mock": {"error_event_after_chunks": 1, "reset_after_chunks": 1}}));
    let (received, _) = read_until_abort(send_with(&mock, STREAM, &KEY, &req).await).await;
    let events = gemini_events(&received);
    assert_eq!(events.len(), 2);
    assert_eq!(events[1]["error"]["code"], 503);
}

#[tokio::test]
async fn malformed_body_inserts_half_a_chunk_before_the_first_answer_chunk() {
    let mock = MockUpstream::start().await.unwrap();
    mock.push(Behavior {
        malformed_body: true,
        chunks: Some(2),
        ..Behavior::default()
    });
    let (status, _, body) = post_with(&mock, STREAM, &KEY, &request(json!({}))).await;
    assert_eq!(status, 200);
    let text = std::str::from_utf8(&body).unwrap();
    let events: Vec<&str> = text
        .split("\r\n\r\n")
        .filter(|e| !e.is_empty())
        .map(|e| e.strip_prefix("data: ").unwrap())
        .collect();
    assert_eq!(events.len(), 3);
    assert!(serde_json::from_str::<Value>(events[0]).is_err());
    assert!(events[1].starts_with(events[0]), "half of the first chunk");
    let whole: Vec<Value> = events[1..]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    assert_eq!(whole[1]["candidates"][0]["finishReason"], "STOP");
}
