//! Bedrock Runtime, not streamed: Converse (text, thinking, tool use, usage with cache reads and
//! writes), recording of the SigV4 headers, InvokeModel embeddings (Titan, Cohere), and errors
//! named in `x-amzn-ErrorType`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{json, post, post_with};
use hyper::StatusCode;
use mock_upstream::{Behavior, MockUpstream, THINKING_TEXT};
use serde_json::{Value, json};

const CONVERSE: &str = "/model/anthropic.claude-sonnet-4-5-20250929-v1%3A0/converse";

/// Headers as a SigV4-signing client sends them (the mock records, never checks them).
const SIGV4: [(&str, &str); 4] = [
    (
        "authorization",
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260101/us-east-1/bedrock/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-security-token, Signature=0123abcd",
    ),
    ("x-amz-date", "20260101T000000Z"),
    ("x-amz-security-token", "session-token"),
    (
        "x-amz-content-sha256",
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    ),
];

/// A 3-word system prompt and a 6-word user message: P = 3 + (6 + 4) = 13.
fn converse(extra: Value) -> Value {
    let mut req = json!({
        "system": [{"text": "You are terse."}],
        "messages": [{"role": "user", "content": [{"text": "What is the weather in Paris?"}]}],
        "inferenceConfig": {"maxTokens": 512}
    });
    for (name, value) in extra.as_object().unwrap() {
        req[name] = value.clone();
    }
    req
}

fn tool_config(choice: Value) -> Value {
    json!({"toolConfig": {
        "tools": [
            {"toolSpec": {"name": "get_weather", "inputSchema": {"json": {"type": "object"}}}},
            {"toolSpec": {"name": "get_time", "inputSchema": {"json": {"type": "object"}}}}
        ],
        "toolChoice": choice
    }})
}

#[tokio::test]
async fn converse_answers_text_with_cache_usage_and_records_the_signed_request() {
    let mock = MockUpstream::start().await.unwrap();
    assert_eq!(mock.bedrock_base_url(), format!("http://{}", mock.addr()));
    mock.push(Behavior {
        cached_tokens: 2,
        cache_write_tokens: 1,
        reasoning_tokens: 3,
        ..Behavior::default()
    });
    let req = converse(json!({}));
    let (status, headers, body) = post_with(&mock, CONVERSE, &SIGV4, &req).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(
        headers["x-amzn-requestid"],
        "00000000-0000-4000-8000-000000000001"
    );
    // P = 13, less 2 read and 1 written; 5 answer words + 3 reasoning; the total counts the
    // cache tokens too.
    assert_eq!(
        json(&body),
        json!({
            "output": {"message": {"role": "assistant", "content": [{"text": "Hello from the mock upstream."}]}},
            "stopReason": "end_turn",
            "usage": {
                "inputTokens": 10,
                "outputTokens": 8,
                "totalTokens": 21,
                "cacheReadInputTokens": 2,
                "cacheWriteInputTokens": 1
            },
            "metrics": {"latencyMs": 1}
        })
    );

    let recorded = mock.requests();
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].method, "POST");
    assert_eq!(recorded[0].path, CONVERSE, "the model id stays encoded");
    for (name, value) in SIGV4 {
        assert_eq!(recorded[0].header(name), Some(value), "{name}");
    }
    assert_eq!(recorded[0].body, req);

    // Without cache faults the cache fields are 0, and omit_usage drops `usage`.
    let (_, _, body) = post_with(&mock, CONVERSE, &SIGV4, &converse(json!({}))).await;
    assert_eq!(
        json(&body)["usage"],
        json!({"inputTokens": 13, "outputTokens": 5, "totalTokens": 18, "cacheReadInputTokens": 0, "cacheWriteInputTokens": 0})
    );
    let req = converse(json!({"mock": {"omit_usage": true}}));
    let (_, _, body) = post_with(&mock, CONVERSE, &SIGV4, &req).await;
    let body = json(&body);
    assert!(body.get("usage").is_none(), "{body}");
    assert_eq!(body["metrics"], json!({"latencyMs": 1}));
}

#[tokio::test]
async fn any_prefix_and_unencoded_ids_are_served() {
    let mock = MockUpstream::start().await.unwrap();
    for path in [
        "/model/anthropic.claude-sonnet-4-5-20250929-v1:0/converse",
        "/bedrock/model/us.amazon.nova-2-lite-v1%3A0/converse",
    ] {
        let (status, headers, body) = post_with(&mock, path, &SIGV4, &converse(json!({}))).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert!(headers.contains_key("x-amzn-requestid"));
        assert_eq!(json(&body)["stopReason"], "end_turn");
    }
}

#[tokio::test]
async fn thinking_comes_first_as_signed_reasoning_content() {
    let mock = MockUpstream::start().await.unwrap();
    mock.set_default(Behavior {
        reasoning_tokens: 10,
        ..Behavior::default()
    });
    let cases = [
        (
            json!({"thinking": {"type": "enabled", "budget_tokens": 2048}}),
            true,
        ),
        (json!({"thinking": {"type": "adaptive"}}), true),
        (
            json!({"reasoningConfig": {"type": "enabled", "maxReasoningEffort": "low"}}),
            true,
        ),
        (json!({"thinking": {"type": "disabled"}}), false),
    ];
    for (n, (fields, on)) in cases.into_iter().enumerate() {
        let req = converse(json!({"additionalModelRequestFields": fields}));
        let (_, _, body) = post_with(&mock, CONVERSE, &SIGV4, &req).await;
        let body = json(&body);
        let text = json!({"text": "Hello from the mock upstream."});
        let expected = if on {
            let signature = format!("sig_mock_{}", n + 1);
            json!([
                {"reasoningContent": {"reasoningText": {"text": THINKING_TEXT, "signature": signature}}},
                text
            ])
        } else {
            json!([text])
        };
        assert_eq!(body["output"]["message"]["content"], expected, "{fields}");
        // Reasoning is output: the reasoning tokens count, the reasoning text itself doesn't.
        assert_eq!(body["usage"]["outputTokens"], 15);
    }
}

#[tokio::test]
async fn forced_tool_choice_answers_with_tool_use() {
    let mock = MockUpstream::start().await.unwrap();
    for (choice, name) in [
        (json!({"any": {}}), "get_weather"),
        (json!({"tool": {"name": "get_time"}}), "get_time"),
    ] {
        let (_, _, body) = post_with(&mock, CONVERSE, &SIGV4, &converse(tool_config(choice))).await;
        let body = json(&body);
        assert_eq!(body["stopReason"], "tool_use");
        assert_eq!(
            body["output"]["message"]["content"],
            json!([{"toolUse": {"toolUseId": "tooluse_mock_1", "name": name, "input": {"city": "Paris"}}}])
        );
        // A tool call is one output token.
        assert_eq!(body["usage"]["outputTokens"], 1);
        assert_eq!(body["usage"]["totalTokens"], 14);
    }

    // `auto` leaves the choice to the model; the mock answers with text.
    let req = converse(tool_config(json!({"auto": {}})));
    let (_, _, body) = post_with(&mock, CONVERSE, &SIGV4, &req).await;
    let body = json(&body);
    assert_eq!(body["stopReason"], "end_turn");
    assert_eq!(
        body["output"]["message"]["content"][0]["text"],
        "Hello from the mock upstream."
    );
}

#[tokio::test]
async fn invoke_embeds_with_titan_and_cohere_and_reports_token_counts() {
    let mock = MockUpstream::start().await.unwrap();
    let texts = ["What is the meaning of life?", "world wide"];
    let (_, _, openai) = post(&mock, "/v1/embeddings", &json!({"input": texts})).await;
    let openai = json(&openai);

    let titan = "/model/amazon.titan-embed-text-v2%3A0/invoke";
    let req = json!({"inputText": texts[0], "dimensions": 256, "normalize": true});
    let (status, headers, body) = post_with(&mock, titan, &SIGV4, &req).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["x-amzn-bedrock-input-token-count"], "6");
    let body = json(&body);
    assert_eq!(body["embedding"], openai["data"][0]["embedding"]);
    assert_eq!(body["embedding"].as_array().unwrap().len(), 8);
    assert_eq!(body["inputTextTokenCount"], 6);
    assert_eq!(
        body["embeddingsByType"],
        json!({"float": body["embedding"]})
    );

    let cohere = "/model/cohere.embed-english-v3/invoke";
    let req = json!({"texts": texts, "input_type": "search_document"});
    let (status, headers, body) = post_with(&mock, cohere, &SIGV4, &req).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["x-amzn-bedrock-input-token-count"], "8");
    let body = json(&body);
    assert_eq!(
        body,
        json!({
            "embeddings": [openai["data"][0]["embedding"], openai["data"][1]["embedding"]],
            "id": "00000000-0000-4000-8000-000000000003",
            "response_type": "embeddings_floats",
            "texts": texts
        })
    );

    // Other models, and bodies without their texts, are refused.
    for (path, req) in [
        ("/model/anthropic.claude-v2/invoke", json!({"prompt": "x"})),
        (titan, json!({"texts": ["x"]})),
        (cohere, json!({"inputText": "x"})),
    ] {
        let (status, headers, body) = post_with(&mock, path, &SIGV4, &req).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}");
        assert_eq!(headers["x-amzn-errortype"], "ValidationException");
        assert!(json(&body)["message"].is_string());
    }
}

#[tokio::test]
async fn status_faults_answer_bedrock_errors() {
    let mock = MockUpstream::start().await.unwrap();
    mock.push(Behavior {
        status: Some(429),
        retry_after_s: Some(2),
        ..Behavior::default()
    });
    let (status, headers, body) = post_with(&mock, CONVERSE, &SIGV4, &converse(json!({}))).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(headers["x-amzn-errortype"], "ThrottlingException");
    assert_eq!(headers["retry-after"], "2");
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(
        headers["x-amzn-requestid"],
        "00000000-0000-4000-8000-000000000001"
    );
    assert_eq!(json(&body), json!({"message": "mock error"}));

    let cases = [
        (400, "ValidationException"),
        (403, "AccessDeniedException"),
        (429, "ThrottlingException"),
        (500, "InternalServerException"),
        (503, "ServiceUnavailableException"),
    ];
    for (code, name) in cases {
        // Faults apply before streaming too.
        let path = "/model/amazon.nova-pro-v1%3A0/converse-stream";
        let req = converse(json!({"mock": {"status": code}}));
        let (status, headers, body) = post_with(&mock, path, &SIGV4, &req).await;
        assert_eq!(status.as_u16(), code);
        assert_eq!(headers["x-amzn-errortype"], name);
        assert_eq!(headers["content-type"], "application/json");
        assert!(!headers.contains_key("retry-after"));
        assert_eq!(json(&body), json!({"message": "mock error"}));
    }

    // error_code replaces the error name.
    let req = converse(json!({"mock": {"status": 400, "error_code": "ModelErrorException"}}));
    let (_, headers, _) = post_with(&mock, CONVERSE, &SIGV4, &req).await;
    assert_eq!(headers["x-amzn-errortype"], "ModelErrorException");
}

#[tokio::test]
async fn refused_requests_and_unknown_actions_answer_bedrock_errors() {
    let mock = MockUpstream::start().await.unwrap();

    let (status, headers, body) = post_with(&mock, CONVERSE, &SIGV4, &json!({"system": []})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(headers["x-amzn-errortype"], "ValidationException");
    assert_eq!(
        json(&body),
        json!({"message": "1 validation error detected: Value null at 'messages' failed to satisfy constraint: Member must not be null"})
    );

    let req = converse(json!({"mock": {"chunkz": 1}}));
    let (status, headers, body) = post_with(&mock, CONVERSE, &SIGV4, &req).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(headers["x-amzn-errortype"], "ValidationException");
    assert!(json(&body)["message"].as_str().unwrap().contains("chunkz"));

    // Served since Claude-on-Bedrock InvokeModel came in; a Bedrock action the mock still lacks.
    let path = "/model/anthropic.claude-v2/invoke-with-bidirectional-stream";
    let (status, headers, body) = post_with(&mock, path, &SIGV4, &converse(json!({}))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(headers["x-amzn-errortype"], "UnknownOperationException");
    assert!(headers.contains_key("x-amzn-requestid"));
    assert!(
        json(&body)["message"]
            .as_str()
            .unwrap()
            .contains("invoke-with-bidirectional-stream")
    );

    // A 200 whose body isn't JSON.
    let req = converse(json!({"mock": {"malformed_body": true}}));
    let (status, _, body) = post_with(&mock, CONVERSE, &SIGV4, &req).await;
    assert_eq!(status, StatusCode::OK);
    assert!(serde_json::from_slice::<Value>(&body).is_err());
}
