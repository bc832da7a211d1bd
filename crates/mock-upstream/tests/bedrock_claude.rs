//! Claude on Bedrock: InvokeModel answers what `/v1/messages` answers for the same body (model =
//! the model id), InvokeModelWithResponseStream sends the same events base64 in `chunk` frames
//! with valid CRCs, the stream faults, status faults and the validation errors Bedrock gives.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{
    EventFrame, event_frames, json, post_anthropic, post_with, read_until_abort, send_with,
    sse_events,
};
use hyper::StatusCode;
use mock_upstream::{Behavior, MockUpstream, THINKING_TEXT};
use serde_json::{Value, json};

const MODEL_ID: &str = "us.anthropic.claude-sonnet-4-5-20250929-v1:0";
const INVOKE: &str = "/model/us.anthropic.claude-sonnet-4-5-20250929-v1%3A0/invoke";
const STREAM: &str =
    "/model/us.anthropic.claude-sonnet-4-5-20250929-v1%3A0/invoke-with-response-stream";
const SIGV4: [(&str, &str); 3] = [
    (
        "authorization",
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260101/us-east-1/bedrock/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=0123abcd",
    ),
    ("x-amz-date", "20260101T000000Z"),
    ("x-amz-content-sha256", "UNSIGNED-PAYLOAD"),
];

/// A Bedrock Messages body: one 3-word user message, plus `extra`.
fn invoke(extra: Value) -> Value {
    let mut req = json!({
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 1024,
        "messages": [{"role": "user", "content": "tell me something"}]
    });
    for (name, value) in extra.as_object().unwrap() {
        req[name] = value.clone();
    }
    req
}

/// The same body as Anthropic's API takes it.
fn as_anthropic(req: &Value, stream: bool) -> Value {
    let mut req = req.clone();
    let fields = req.as_object_mut().unwrap();
    fields.remove("anthropic_version");
    fields.insert("model".into(), json!("claude-sonnet-4-5"));
    fields.insert("stream".into(), json!(stream));
    req
}

fn base64_decode(s: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    assert_eq!(s.len() % 4, 0, "padded base64: {s:?}");
    let mut out = Vec::new();
    for group in s.as_bytes().chunks(4) {
        let mut n = 0u32;
        let mut pads = 0;
        for &c in group {
            n <<= 6;
            if c == b'=' {
                pads += 1;
            } else {
                assert_eq!(pads, 0, "padding only at the end: {s:?}");
                n |= ALPHABET.iter().position(|&a| a == c).expect("base64 char") as u32;
            }
        }
        out.extend_from_slice(&n.to_be_bytes()[1..4 - pads]);
    }
    out
}

/// Checks a `chunk` frame's headers and returns the Anthropic event its payload carries.
fn chunk(frame: &EventFrame) -> Value {
    assert_eq!(frame.header(":event-type"), Some("chunk"));
    assert_eq!(frame.header(":content-type"), Some("application/json"));
    assert_eq!(frame.header(":message-type"), Some("event"));
    let payload = frame.json();
    assert_eq!(payload.as_object().unwrap().len(), 1, "{payload}");
    let bytes = base64_decode(payload["bytes"].as_str().unwrap());
    serde_json::from_slice(&bytes).unwrap()
}

fn kinds(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["type"].as_str().unwrap()).collect()
}

fn text_of(events: &[Value]) -> String {
    events
        .iter()
        .filter(|e| e["delta"]["type"] == "text_delta")
        .map(|e| e["delta"]["text"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn base64_decoder_matches_rfc_4648() {
    for (plain, coded) in [
        ("", ""),
        ("f", "Zg=="),
        ("fo", "Zm8="),
        ("foobar", "Zm9vYmFy"),
    ] {
        assert_eq!(base64_decode(coded), plain.as_bytes());
    }
}

#[tokio::test]
async fn invoke_answers_what_the_messages_api_answers_and_records_the_signed_request() {
    let bedrock = MockUpstream::start().await.unwrap();
    let anthropic = MockUpstream::start().await.unwrap();
    let behavior = Behavior {
        cached_tokens: 2,
        cache_write_tokens: 1,
        reasoning_tokens: 3,
        ..Behavior::default()
    };
    bedrock.set_default(behavior.clone());
    anthropic.set_default(behavior);
    let tools = json!([{"name": "get_weather", "input_schema": {"type": "object"}}]);
    let cases = [
        json!({}),
        json!({"thinking": {"type": "enabled", "budget_tokens": 1024}}),
        json!({"tools": tools, "tool_choice": {"type": "any"}}),
        json!({"system": "Be terse.", "mock": {"omit_usage": true}}),
    ];
    for extra in cases {
        let req = invoke(extra);
        let (status, headers, body) = post_with(&bedrock, INVOKE, &SIGV4, &req).await;
        assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
        assert_eq!(headers["content-type"], "application/json");
        assert!(headers.contains_key("x-amzn-requestid"));
        let (_, _, expected) =
            post_anthropic(&anthropic, "/v1/messages", &as_anthropic(&req, false)).await;
        let mut expected = json(&expected);
        expected["model"] = json!(MODEL_ID);
        assert_eq!(json(&body), expected, "{req}");
    }

    // The first answer in full: the usage rule is Anthropic's (P = 3 + 4 = 7, minus R and W).
    let (_, headers, body) = post_with(&bedrock, INVOKE, &SIGV4, &invoke(json!({}))).await;
    assert_eq!(
        headers["x-amzn-requestid"],
        "00000000-0000-4000-8000-000000000005"
    );
    let body = json(&body);
    assert_eq!(body["id"], "msg_mock_5");
    assert_eq!(body["model"], MODEL_ID);
    assert_eq!(
        body["content"],
        json!([{"type": "text", "text": "Hello from the mock upstream."}])
    );
    assert_eq!(
        body["usage"],
        json!({"input_tokens": 4, "output_tokens": 5 + 3, "cache_creation_input_tokens": 1, "cache_read_input_tokens": 2})
    );

    let recorded = bedrock.requests();
    let last = recorded.last().unwrap();
    assert_eq!(last.method, "POST");
    assert_eq!(last.path, INVOKE);
    assert_eq!(last.body, invoke(json!({})));
    for (name, value) in SIGV4 {
        let got = last.headers.iter().find(|(n, _)| n == name);
        assert_eq!(got.map(|(_, v)| v.as_str()), Some(value), "{name}");
    }
}

#[tokio::test]
async fn stream_sends_each_anthropic_event_base64_in_a_chunk_frame() {
    let bedrock = MockUpstream::start().await.unwrap();
    let anthropic = MockUpstream::start().await.unwrap();
    let req = invoke(json!({
        "thinking": {"type": "adaptive"},
        "mock": {"chunks": 3, "chunk_delay_ms": 5}
    }));
    let resp = send_with(&bedrock, STREAM, &SIGV4, &req).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["content-type"],
        "application/vnd.amazon.eventstream"
    );
    assert!(resp.headers().contains_key("x-amzn-requestid"));
    let (_, _, body) = common::read_all(resp).await;
    let events: Vec<Value> = event_frames(&body).iter().map(chunk).collect();
    assert_eq!(
        kinds(&events),
        [
            "message_start",
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
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    assert_eq!(events[0]["message"]["model"], MODEL_ID);
    assert_eq!(text_of(&events), "Hello from the mock upstream.");
    let thinking: String = events
        .iter()
        .filter(|e| e["delta"]["type"] == "thinking_delta")
        .map(|e| e["delta"]["thinking"].as_str().unwrap())
        .collect();
    assert_eq!(thinking, THINKING_TEXT);

    // Exactly Anthropic's stream, `ping` aside.
    let (_, _, sse) = post_anthropic(&anthropic, "/v1/messages", &as_anthropic(&req, true)).await;
    let mut expected: Vec<Value> = sse_events(&sse)
        .into_iter()
        .filter(|(name, _)| name != "ping")
        .map(|(_, data)| data)
        .collect();
    expected[0]["message"]["model"] = json!(MODEL_ID);
    assert_eq!(events, expected);
}

#[tokio::test]
async fn stream_faults_count_content_deltas() {
    let mock = MockUpstream::start().await.unwrap();

    // `post_with` reads to a clean end; an abort would fail it.
    let req = invoke(json!({"mock": {"exception_after_chunks": 2}}));
    let (status, _, body) = post_with(&mock, STREAM, &SIGV4, &req).await;
    assert_eq!(status, 200);
    let frames = event_frames(&body);
    let (last, chunks) = frames.split_last().unwrap();
    let events: Vec<Value> = chunks.iter().map(chunk).collect();
    assert_eq!(
        kinds(&events),
        [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_delta"
        ]
    );
    assert_eq!(last.header(":message-type"), Some("exception"));
    assert_eq!(last.header(":exception-type"), Some("throttlingException"));
    assert_eq!(last.json(), json!({"message": "Too many requests"}));

    let req = invoke(json!({"mock": {"reset_after_chunks": 1}}));
    let resp = send_with(&mock, STREAM, &SIGV4, &req).await;
    let (received, error) = read_until_abort(resp).await;
    assert!(error.contains("EOF"), "{error}");
    let events: Vec<Value> = event_frames(&received).iter().map(chunk).collect();
    assert_eq!(
        kinds(&events),
        [
            "message_start",
            "content_block_start",
            "content_block_delta"
        ]
    );
    assert_eq!(text_of(&events), "Hello ");

    // A status fault answers in Bedrock's shape.
    let req = invoke(json!({"mock": {"status": 429}}));
    for path in [INVOKE, STREAM] {
        let (status, headers, body) = post_with(&mock, path, &SIGV4, &req).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(headers["x-amzn-errortype"], "ThrottlingException");
        assert_eq!(json(&body), json!({"message": "mock error"}));
    }
}

#[tokio::test]
async fn bodies_bedrock_refuses_get_validation_exceptions() {
    let mock = MockUpstream::start().await.unwrap();
    let mut no_version = invoke(json!({}));
    no_version
        .as_object_mut()
        .unwrap()
        .remove("anthropic_version");
    let cases = [
        (no_version, "required key [anthropic_version] not found"),
        (
            invoke(json!({"model": "claude-sonnet-4-5"})),
            "extraneous key [model] is not permitted",
        ),
        (
            invoke(json!({"stream": true})),
            "extraneous key [stream] is not permitted",
        ),
        (invoke(json!({"max_tokens": null})), "max_tokens"),
    ];
    for (req, needle) in cases {
        for path in [INVOKE, STREAM] {
            let (status, headers, body) = post_with(&mock, path, &SIGV4, &req).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{path} {req}");
            assert_eq!(headers["x-amzn-errortype"], "ValidationException");
            assert_eq!(headers["content-type"], "application/json");
            let message = json(&body)["message"].as_str().unwrap().to_owned();
            assert!(message.contains(needle), "{message}");
            assert!(message.starts_with("Malformed input request"), "{message}");
        }
    }

    // The stream serves Claude only; the embedding models keep their InvokeModel answers.
    let titan = "/model/amazon.titan-embed-text-v2:0/invoke-with-response-stream";
    let (status, headers, _) = post_with(&mock, titan, &SIGV4, &invoke(json!({}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(headers["x-amzn-errortype"], "ValidationException");
    let titan = "/model/amazon.titan-embed-text-v2:0/invoke";
    let (status, _, body) =
        post_with(&mock, titan, &SIGV4, &json!({"inputText": "hello there"})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json(&body)["inputTextTokenCount"], 2);
}
