//! Non-streamed chat completions: the response shape, the token-count rule, tool calls, and what
//! the mock records.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{json, post};
use hyper::StatusCode;
use mock_upstream::{Behavior, MockUpstream};
use serde_json::json;

#[tokio::test]
async fn non_stream_chat_has_openai_shape_and_exact_usage() {
    let mock = MockUpstream::start().await.unwrap();
    mock.push(Behavior {
        cached_tokens: 3,
        reasoning_tokens: 7,
        ..Behavior::default()
    });
    let request = json!({
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": [
                {"type": "text", "text": "Say hi to me"},
                {"type": "image_url", "image_url": {"url": "http://x/y.png"}}
            ]}
        ]
    });
    let (status, headers, body) = post(&mock, "/v1/chat/completions", &request).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "application/json");
    assert!(
        headers.contains_key("content-length"),
        "whole bodies carry their length"
    );
    let body = json(&body);
    let created = body["created"].as_u64().unwrap();
    assert!(created > 1_700_000_000);
    // (3 words + 4) + (4 words + 4) = 15; 5 answer words + 7 reasoning = 12.
    assert_eq!(
        body,
        json!({
            "id": "chatcmpl-mock-1",
            "object": "chat.completion",
            "created": created,
            "model": "gpt-4o-mini",
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": "Hello from the mock upstream.", "refusal": null},
                "logprobs": null,
                "finish_reason": "stop"
            }],
            "usage": {
                "prompt_tokens": 15,
                "completion_tokens": 12,
                "total_tokens": 27,
                "prompt_tokens_details": {"cached_tokens": 3, "audio_tokens": 0},
                "completion_tokens_details": {
                    "reasoning_tokens": 7,
                    "audio_tokens": 0,
                    "accepted_prediction_tokens": 0,
                    "rejected_prediction_tokens": 0
                }
            },
            "system_fingerprint": "fp_mock"
        })
    );

    // The queue is empty now, so the next request gets the plain default.
    let (_, _, body) = post(&mock, "/v1/chat/completions", &request).await;
    let body = json(&body);
    assert_eq!(body["id"], "chatcmpl-mock-2");
    assert_eq!(body["usage"]["completion_tokens"], 5);
}

#[tokio::test]
async fn forced_tool_choice_answers_with_a_tool_call() {
    let mock = MockUpstream::start().await.unwrap();
    let tools = json!([
        {"type": "function", "function": {"name": "get_weather", "parameters": {}}},
        {"type": "function", "function": {"name": "get_time", "parameters": {}}}
    ]);
    for (choice, name) in [
        (json!("required"), "get_weather"),
        (
            json!({"type": "function", "function": {"name": "get_time"}}),
            "get_time",
        ),
    ] {
        let request = json!({
            "model": "gpt-4o",
            "messages": [{"role": "user", "content": "weather?"}],
            "tools": tools,
            "tool_choice": choice
        });
        let (_, _, body) = post(&mock, "/v1/chat/completions", &request).await;
        let body = json(&body);
        assert_eq!(body["choices"][0]["finish_reason"], "tool_calls");
        let message = &body["choices"][0]["message"];
        assert_eq!(message["content"], serde_json::Value::Null);
        assert_eq!(
            message["tool_calls"],
            json!([{
                "id": "call_mock_1",
                "type": "function",
                "function": {"name": name, "arguments": "{\"city\":\"Paris\"}"}
            }])
        );
    }

    // `auto` leaves the choice to the model; the mock then answers with text.
    let request = json!({
        "model": "gpt-4o",
        "messages": [{"role": "user", "content": "weather?"}],
        "tools": tools,
        "tool_choice": "auto"
    });
    let (_, _, body) = post(&mock, "/v1/chat/completions", &request).await;
    assert_eq!(json(&body)["choices"][0]["finish_reason"], "stop");
}

#[tokio::test]
async fn requests_are_recorded_in_order() {
    let mock = MockUpstream::start().await.unwrap();
    let first = json!({"model": "a", "messages": []});
    post(&mock, "/v1/chat/completions?trace=1", &first).await;
    common::send(&mock, hyper::Method::POST, "/v1/embeddings", "not json").await;
    assert_eq!(mock.request_count(), 2);
    let recorded = mock.requests();
    assert_eq!(recorded.len(), 2);
    assert_eq!(recorded[0].method, "POST");
    assert_eq!(recorded[0].path, "/v1/chat/completions?trace=1");
    assert_eq!(recorded[0].header("Authorization"), Some("Bearer sk-test"));
    assert_eq!(recorded[0].body, first);
    assert_eq!(recorded[1].path, "/v1/embeddings");
    assert_eq!(recorded[1].body, serde_json::Value::Null);
    assert_eq!(&recorded[1].raw_body[..], b"not json");

    mock.set_recording(false);
    post(&mock, "/v1/chat/completions", &first).await;
    assert_eq!(
        mock.request_count(),
        3,
        "counting goes on without recording"
    );
    assert_eq!(mock.requests().len(), 2);
}

#[tokio::test]
async fn mock_field_in_the_request_overrides_the_behavior() {
    let mock = MockUpstream::start().await.unwrap();
    mock.set_default(Behavior {
        content: Some("default text".into()),
        ..Behavior::default()
    });
    let request = json!({
        "model": "m",
        "messages": [{"role": "user", "content": "hi"}],
        "mock": {"content": "overridden here", "omit_usage": true}
    });
    let (_, _, body) = post(&mock, "/v1/chat/completions", &request).await;
    let body = json(&body);
    assert_eq!(body["choices"][0]["message"]["content"], "overridden here");
    assert!(body.get("usage").is_none());

    let request =
        json!({"model": "m", "messages": [], "mock": {"status": 503, "retry_after_s": 2}});
    let (status, headers, body) = post(&mock, "/v1/chat/completions", &request).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(headers["retry-after"], "2");
    assert_eq!(json(&body)["error"]["code"], "mock_503");

    // A misspelt field is refused rather than silently ignored.
    let request = json!({"model": "m", "messages": [], "mock": {"stauts": 500}});
    let (status, _, body) = post(&mock, "/v1/chat/completions", &request).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        json(&body)["error"]["message"]
            .as_str()
            .unwrap()
            .contains("stauts")
    );

    // Without an override the default still applies.
    let (_, _, body) = post(
        &mock,
        "/v1/chat/completions",
        &json!({"model": "m", "messages": []}),
    )
    .await;
    assert_eq!(
        json(&body)["choices"][0]["message"]["content"],
        "default text"
    );
}
