//! The Anthropic Messages API, not streamed: the message shape, thinking, forced tool use, the
//! token rule (cache reads and writes out of `input_tokens`), `count_tokens`, what the mock
//! records, and the Anthropic-shaped errors.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{json, post_anthropic, read_all, send};
use hyper::{Method, StatusCode};
use mock_upstream::{Behavior, MockUpstream, THINKING_TEXT};
use serde_json::{Value, json};

fn message(extra: Value) -> Value {
    let mut req = json!({
        "model": "claude-sonnet-4-5",
        "max_tokens": 1024,
        "messages": [{"role": "user", "content": "What is the weather?"}]
    });
    for (name, value) in extra.as_object().unwrap() {
        req[name] = value.clone();
    }
    req
}

fn tools() -> Value {
    json!([
        {"name": "get_weather", "description": "Weather in a city", "input_schema": {"type": "object"}},
        {"name": "get_time", "input_schema": {"type": "object"}}
    ])
}

#[tokio::test]
async fn message_has_anthropic_shape_and_documented_usage() {
    let mock = MockUpstream::start().await.unwrap();
    mock.push(Behavior {
        cached_tokens: 3,
        cache_write_tokens: 2,
        reasoning_tokens: 4,
        ..Behavior::default()
    });
    let request = json!({
        "model": "claude-sonnet-4-5",
        "max_tokens": 1024,
        "system": [{"type": "text", "text": "You are terse and kind.", "cache_control": {"type": "ephemeral"}}],
        "messages": [
            {"role": "user", "content": "Say hi to me please"},
            {"role": "assistant", "content": [{"type": "text", "text": "Hi there"}]},
            {"role": "user", "content": [
                {"type": "text", "text": "Again"},
                {"type": "image", "source": {"type": "url", "url": "http://x/y.png"}}
            ]}
        ],
        "metadata": {"user_id": "user-1"}
    });
    let (status, headers, body) = post_anthropic(&mock, "/v1/messages", &request).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(headers["request-id"], "req_mock_1");
    // Prompt: system 5 + (5 + 4) + (2 + 4) + (1 + 4) = 25 words, of which 3 read from and 2
    // written to the cache; output: 5 answer words + 4 reasoning.
    assert_eq!(
        json(&body),
        json!({
            "id": "msg_mock_1",
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4-5",
            "content": [{"type": "text", "text": "Hello from the mock upstream."}],
            "stop_reason": "end_turn",
            "stop_sequence": null,
            "usage": {
                "input_tokens": 20,
                "output_tokens": 9,
                "cache_creation_input_tokens": 2,
                "cache_read_input_tokens": 3
            }
        })
    );

    // The queue is empty now: no cache, no reasoning.
    let (_, headers, body) = post_anthropic(&mock, "/v1/messages", &request).await;
    assert_eq!(headers["request-id"], "req_mock_2");
    let body = json(&body);
    assert_eq!(body["id"], "msg_mock_2");
    assert_eq!(
        body["usage"],
        json!({"input_tokens": 25, "output_tokens": 5, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0})
    );
}

#[tokio::test]
async fn cache_larger_than_the_prompt_leaves_zero_input_tokens() {
    let mock = MockUpstream::start().await.unwrap();
    mock.set_default(Behavior {
        cached_tokens: 100,
        cache_write_tokens: 50,
        ..Behavior::default()
    });
    let (_, _, body) = post_anthropic(&mock, "/v1/messages", &message(json!({}))).await;
    let usage = &json(&body)["usage"];
    assert_eq!(usage["input_tokens"], 0);
    assert_eq!(usage["cache_read_input_tokens"], 100);
    assert_eq!(usage["cache_creation_input_tokens"], 50);
}

#[tokio::test]
async fn requests_are_recorded_with_anthropic_headers() {
    let mock = MockUpstream::start().await.unwrap();
    let request = message(json!({}));
    post_anthropic(&mock, "/v1/messages?beta=true", &request).await;
    let recorded = mock.requests();
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].method, "POST");
    assert_eq!(recorded[0].path, "/v1/messages?beta=true");
    assert_eq!(recorded[0].header("X-Api-Key"), Some("sk-ant-test"));
    assert_eq!(recorded[0].header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(
        recorded[0].header("anthropic-beta"),
        Some("interleaved-thinking-2025-05-14")
    );
    assert_eq!(recorded[0].body, request);
}

#[tokio::test]
async fn enabled_or_adaptive_thinking_comes_first_with_a_signature() {
    let mock = MockUpstream::start().await.unwrap();
    mock.set_default(Behavior {
        reasoning_tokens: 10,
        ..Behavior::default()
    });
    let cases = [
        (json!({"type": "enabled", "budget_tokens": 2048}), true),
        (json!({"type": "adaptive"}), true),
        (json!({"type": "disabled"}), false),
    ];
    for (n, (thinking, on)) in cases.into_iter().enumerate() {
        let request = message(json!({"thinking": thinking}));
        let (_, _, body) = post_anthropic(&mock, "/v1/messages", &request).await;
        let body = json(&body);
        let text = json!({"type": "text", "text": "Hello from the mock upstream."});
        let expected = if on {
            let signature = format!("sig_mock_{}", n + 1);
            json!([
                {"type": "thinking", "thinking": THINKING_TEXT, "signature": signature},
                text
            ])
        } else {
            json!([text])
        };
        assert_eq!(body["content"], expected, "{thinking}");
        // Thinking is output: the reasoning tokens count, the thinking text itself doesn't.
        assert_eq!(body["usage"]["output_tokens"], 15);
        assert_eq!(body["stop_reason"], "end_turn");
    }
    assert_eq!(THINKING_TEXT, "Let me think.");
}

#[tokio::test]
async fn forced_tool_choice_answers_with_tool_use() {
    let mock = MockUpstream::start().await.unwrap();
    for (choice, name) in [
        (json!({"type": "any"}), "get_weather"),
        (json!({"type": "tool", "name": "get_time"}), "get_time"),
    ] {
        let request = message(json!({"tools": tools(), "tool_choice": choice}));
        let (_, _, body) = post_anthropic(&mock, "/v1/messages", &request).await;
        let body = json(&body);
        assert_eq!(body["stop_reason"], "tool_use");
        assert_eq!(
            body["content"],
            json!([{"type": "tool_use", "id": "toolu_mock_1", "name": name, "input": {"city": "Paris"}}])
        );
        // A tool call is one output token.
        assert_eq!(body["usage"]["output_tokens"], 1);
    }

    // With thinking on, the thinking block still comes first.
    let request = message(json!({
        "tools": tools(),
        "tool_choice": {"type": "any"},
        "thinking": {"type": "adaptive"}
    }));
    let (_, _, body) = post_anthropic(&mock, "/v1/messages", &request).await;
    let content = &json(&body)["content"];
    assert_eq!(content[0]["type"], "thinking");
    assert_eq!(content[0]["signature"], "sig_mock_3");
    assert_eq!(content[1]["type"], "tool_use");

    // `auto` (or no tool_choice) leaves the choice to the model; the mock answers with text.
    for extra in [
        json!({"tools": tools(), "tool_choice": {"type": "auto"}}),
        json!({"tools": tools()}),
        json!({"tool_choice": {"type": "any"}}),
    ] {
        let (_, _, body) = post_anthropic(&mock, "/v1/messages", &message(extra)).await;
        let body = json(&body);
        assert_eq!(body["stop_reason"], "end_turn");
        assert_eq!(body["content"][0]["type"], "text");
    }
}

#[tokio::test]
async fn tool_use_and_tool_result_blocks_count_no_words() {
    let mock = MockUpstream::start().await.unwrap();
    let request = message(json!({
        "system": "Be brief.",
        "messages": [
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "I should call the tool.", "signature": "s"},
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "15 degrees and cloudy"}
            ]}
        ]
    }));
    let (_, _, body) = post_anthropic(&mock, "/v1/messages", &request).await;
    // System 2 + (3 + 4) + (0 + 4) + (0 + 4).
    assert_eq!(json(&body)["usage"]["input_tokens"], 17);
}

#[tokio::test]
async fn count_tokens_follows_the_same_rule() {
    let mock = MockUpstream::start().await.unwrap();
    let request = json!({
        "model": "claude-sonnet-4-5",
        "system": "You are a weather bot.",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Weather in Paris?"}]}],
        "tools": tools()
    });
    let (status, headers, body) =
        post_anthropic(&mock, "/v1/messages/count_tokens", &request).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["request-id"], "req_mock_1");
    // System 5 + (3 + 4).
    assert_eq!(json(&body), json!({"input_tokens": 12}));

    let mut with_max_tokens = request.clone();
    with_max_tokens["max_tokens"] = json!(100);
    let (_, _, body) = post_anthropic(&mock, "/v1/messages", &with_max_tokens).await;
    assert_eq!(json(&body)["usage"]["input_tokens"], 12);

    mock.push(Behavior {
        cached_tokens: 5,
        cache_write_tokens: 3,
        ..Behavior::default()
    });
    let (_, _, body) = post_anthropic(&mock, "/v1/messages/count_tokens", &request).await;
    assert_eq!(json(&body), json!({"input_tokens": 4}));
}

#[tokio::test]
async fn status_faults_answer_in_anthropic_error_shape() {
    let mock = MockUpstream::start().await.unwrap();
    let cases = [
        (400, "invalid_request_error", None),
        (401, "authentication_error", None),
        (403, "permission_error", None),
        (404, "not_found_error", None),
        (429, "rate_limit_error", Some(7)),
        (500, "api_error", None),
        (529, "overloaded_error", Some(1)),
    ];
    for (n, (status, kind, retry_after_s)) in cases.into_iter().enumerate() {
        mock.push(Behavior {
            status: Some(status),
            retry_after_s,
            ..Behavior::default()
        });
        let (got, headers, body) = post_anthropic(&mock, "/v1/messages", &message(json!({}))).await;
        let request_id = format!("req_mock_{}", n + 1);
        assert_eq!(got.as_u16(), status);
        assert_eq!(headers["content-type"], "application/json");
        assert_eq!(headers["request-id"], request_id.as_str());
        assert_eq!(
            headers
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_owned()),
            retry_after_s.map(|s| s.to_string()),
            "{status}"
        );
        assert_eq!(
            json(&body),
            json!({
                "type": "error",
                "error": {"type": kind, "message": "mock error"},
                "request_id": request_id
            })
        );
    }

    // `error_code` names the type; count_tokens takes faults too.
    mock.push(Behavior {
        status: Some(400),
        error_code: Some("billing_error".into()),
        ..Behavior::default()
    });
    let (status, _, body) =
        post_anthropic(&mock, "/v1/messages/count_tokens", &message(json!({}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(json(&body)["error"]["type"], "billing_error");

    // The same fault on an OpenAI path keeps OpenAI's shape.
    mock.push(Behavior {
        status: Some(529),
        ..Behavior::default()
    });
    let chat = json!({"model": "m", "messages": []});
    let (status, headers, body) = common::post(&mock, "/v1/chat/completions", &chat).await;
    assert_eq!(status.as_u16(), 529);
    assert!(!headers.contains_key("request-id"));
    assert_eq!(json(&body)["error"]["code"], "mock_529");
}

#[tokio::test]
async fn bad_requests_on_anthropic_paths_get_anthropic_errors() {
    let mock = MockUpstream::start().await.unwrap();
    let mut without_max_tokens = message(json!({}));
    without_max_tokens
        .as_object_mut()
        .unwrap()
        .remove("max_tokens");
    let bad_mock = message(json!({"mock": {"cache_wirte_tokens": 1}}));
    let cases = [
        (without_max_tokens, "max_tokens: Field required"),
        (
            json!({"model": "m", "max_tokens": 5}),
            "messages: Field required",
        ),
        (json!([1, 2]), "the request body must be a JSON object"),
        (bad_mock, "cache_wirte_tokens"),
    ];
    for (request, message) in cases {
        let (status, headers, body) = post_anthropic(&mock, "/v1/messages", &request).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{request}");
        assert!(headers.contains_key("request-id"));
        let body = json(&body);
        assert_eq!(body["type"], "error");
        assert_eq!(body["error"]["type"], "invalid_request_error");
        let text = body["error"]["message"].as_str().unwrap();
        assert!(
            text.contains(message),
            "{text:?} should mention {message:?}"
        );
    }

    let (status, _, body) =
        read_all(send(&mock, Method::POST, "/v1/messages", "{\"model\":").await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(json(&body)["error"]["type"], "invalid_request_error");

    let (status, _, body) = read_all(send(&mock, Method::GET, "/v1/messages", "").await).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let body = json(&body);
    assert_eq!(body["error"]["type"], "not_found_error");
    assert_eq!(body["request_id"], "req_mock_6");
}

#[tokio::test]
async fn mock_field_sets_the_anthropic_behavior_fields() {
    let mock = MockUpstream::start().await.unwrap();
    let request = message(json!({
        "mock": {"cached_tokens": 1, "cache_write_tokens": 2, "content": "Overridden answer"}
    }));
    let (_, _, body) = post_anthropic(&mock, "/v1/messages", &request).await;
    let body = json(&body);
    assert_eq!(body["content"][0]["text"], "Overridden answer");
    // "What is the weather?": 4 words + 4 - 1 - 2.
    assert_eq!(
        body["usage"],
        json!({"input_tokens": 5, "output_tokens": 2, "cache_creation_input_tokens": 2, "cache_read_input_tokens": 1})
    );

    let request = message(json!({"mock": {"status": 529, "retry_after_s": 2}}));
    let (status, headers, body) = post_anthropic(&mock, "/v1/messages", &request).await;
    assert_eq!(status.as_u16(), 529);
    assert_eq!(headers["retry-after"], "2");
    assert_eq!(json(&body)["error"]["type"], "overloaded_error");
}

#[tokio::test]
async fn malformed_message_is_a_200_that_is_not_json() {
    let mock = MockUpstream::start().await.unwrap();
    mock.push(Behavior {
        malformed_body: true,
        ..Behavior::default()
    });
    let (status, _, body) = post_anthropic(&mock, "/v1/messages", &message(json!({}))).await;
    assert_eq!(status, StatusCode::OK);
    assert!(serde_json::from_slice::<Value>(&body).is_err(), "{body:?}");

    mock.push(Behavior {
        omit_usage: true,
        ..Behavior::default()
    });
    let (_, _, body) = post_anthropic(&mock, "/v1/messages", &message(json!({}))).await;
    assert!(json(&body).get("usage").is_none());
}
