//! The Gemini API, not streamed: `generateContent` on Gemini and Vertex paths (text, thoughts,
//! function calls, usage), embeddings, recording, and Google-shaped errors.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{json, post, post_with};
use hyper::StatusCode;
use mock_upstream::{Behavior, MockUpstream, THINKING_TEXT};
use serde_json::{Value, json};

const GENERATE: &str = "/v1beta/models/gemini-2.5-flash:generateContent";
const KEY: [(&str, &str); 1] = [("x-goog-api-key", "AIza-test")];

/// A request with a 3-word system instruction and a 6-word user turn: P = 3 + (6 + 4) = 13.
fn request(extra: Value) -> Value {
    let mut req = json!({
        "systemInstruction": {"parts": [{"text": "You are terse."}]},
        "contents": [{"role": "user", "parts": [{"text": "What is the weather in Paris?"}]}]
    });
    for (name, value) in extra.as_object().unwrap() {
        req[name] = value.clone();
    }
    req
}

fn tools() -> Value {
    json!([{"functionDeclarations": [
        {"name": "get_weather", "description": "Current weather", "parameters": {"type": "OBJECT", "properties": {"city": {"type": "STRING"}}}},
        {"name": "get_time", "description": "Current UTC time"}
    ]}])
}

#[tokio::test]
async fn generate_content_answers_text_with_usage_and_records_the_request() {
    let mock = MockUpstream::start().await.unwrap();
    assert_eq!(
        mock.gemini_base_url(),
        format!("http://{}/v1beta", mock.addr())
    );
    let req = request(json!({"generationConfig": {"temperature": 0.2}}));
    let (status, headers, body) = post_with(&mock, GENERATE, &KEY, &req).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "application/json");
    // P = 13; the default content is 5 words.
    assert_eq!(
        json(&body),
        json!({
            "candidates": [{
                "content": {"parts": [{"text": "Hello from the mock upstream."}], "role": "model"},
                "finishReason": "STOP",
                "index": 0
            }],
            "usageMetadata": {
                "promptTokenCount": 13,
                "candidatesTokenCount": 5,
                "totalTokenCount": 18,
                "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 13}]
            },
            "modelVersion": "gemini-2.5-flash",
            "responseId": "resp_mock_1"
        })
    );

    let recorded = mock.requests();
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].method, "POST");
    assert_eq!(recorded[0].path, GENERATE);
    assert_eq!(recorded[0].header("x-goog-api-key"), Some("AIza-test"));
    assert_eq!(recorded[0].header("authorization"), None);
    assert_eq!(recorded[0].body, req);
}

#[tokio::test]
async fn vertex_paths_are_served_and_record_the_bearer_token() {
    let mock = MockUpstream::start().await.unwrap();
    let path = "/v1/projects/my-project/locations/us-central1/publishers/google/models/gemini-2.5-pro:generateContent";
    let auth = [("authorization", "Bearer ya29.test")];
    let (status, _, body) = post_with(&mock, path, &auth, &request(json!({}))).await;
    assert_eq!(status, StatusCode::OK);
    let body = json(&body);
    assert_eq!(body["modelVersion"], "gemini-2.5-pro");
    assert_eq!(
        body["candidates"][0]["content"]["parts"][0]["text"],
        "Hello from the mock upstream."
    );
    let recorded = &mock.requests()[0];
    assert_eq!(recorded.path, path);
    assert_eq!(recorded.header("authorization"), Some("Bearer ya29.test"));
    assert!(
        mock.base_url().ends_with("/v1"),
        "Vertex's root is the OpenAI one"
    );
}

#[tokio::test]
async fn included_thoughts_come_first_and_usage_reports_cache_and_thoughts() {
    let mock = MockUpstream::start().await.unwrap();
    mock.set_default(Behavior {
        cached_tokens: 4,
        reasoning_tokens: 7,
        content: Some("Sunny and mild.".to_owned()),
        ..Behavior::default()
    });
    let thinking = json!({"generationConfig": {"thinkingConfig": {"thinkingBudget": 1024, "includeThoughts": true}}});
    let (_, _, body) = post_with(&mock, GENERATE, &KEY, &request(thinking)).await;
    let body = json(&body);
    assert_eq!(
        body["candidates"][0]["content"]["parts"],
        json!([
            {"text": THINKING_TEXT, "thought": true},
            {"text": "Sunny and mild.", "thoughtSignature": "sig_mock_1"}
        ])
    );
    // Cached tokens are part of the prompt; thoughts are counted apart from the candidates and
    // added to the total.
    assert_eq!(
        body["usageMetadata"],
        json!({
            "promptTokenCount": 13,
            "candidatesTokenCount": 3,
            "totalTokenCount": 13 + 3 + 7,
            "cachedContentTokenCount": 4,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 13}],
            "cacheTokensDetails": [{"modality": "TEXT", "tokenCount": 4}],
            "thoughtsTokenCount": 7
        })
    );

    // Thinking configured but not included: no thought part, no signature.
    let hidden = json!({"generationConfig": {"thinkingConfig": {"thinkingBudget": 1024}}});
    let (_, _, body) = post_with(&mock, GENERATE, &KEY, &request(hidden)).await;
    let body = json(&body);
    assert_eq!(
        body["candidates"][0]["content"]["parts"],
        json!([{"text": "Sunny and mild."}])
    );
    assert_eq!(body["usageMetadata"]["thoughtsTokenCount"], 7);

    // omit_usage drops usageMetadata.
    let (_, _, body) = post_with(
        &mock,
        GENERATE,
        &KEY,
        &request(json!({"mock": {"omit_usage": true}})),
    )
    .await;
    let body = json(&body);
    assert!(body.get("usageMetadata").is_none(), "{body}");
    assert_eq!(body["responseId"], "resp_mock_3");
}

#[tokio::test]
async fn mode_any_answers_with_a_function_call() {
    let mock = MockUpstream::start().await.unwrap();
    let cases = [
        (json!({"mode": "ANY"}), "get_weather"),
        (
            json!({"mode": "ANY", "allowedFunctionNames": ["get_time"]}),
            "get_time",
        ),
    ];
    for (config, name) in cases {
        let req =
            request(json!({"tools": tools(), "toolConfig": {"functionCallingConfig": config}}));
        let (_, _, body) = post_with(&mock, GENERATE, &KEY, &req).await;
        let body = json(&body);
        assert_eq!(
            body["candidates"][0]["content"]["parts"],
            json!([{"functionCall": {"name": name, "args": {"city": "Paris"}}}])
        );
        assert_eq!(body["candidates"][0]["finishReason"], "STOP");
        // A function call is one candidate token.
        assert_eq!(body["usageMetadata"]["candidatesTokenCount"], 1);
        assert_eq!(body["usageMetadata"]["totalTokenCount"], 14);
    }

    // With thoughts on, the thought comes first and the call carries the signature.
    let req = request(json!({
        "tools": tools(),
        "toolConfig": {"functionCallingConfig": {"mode": "ANY"}},
        "generationConfig": {"thinkingConfig": {"includeThoughts": true}}
    }));
    let (_, _, body) = post_with(&mock, GENERATE, &KEY, &req).await;
    assert_eq!(
        json(&body)["candidates"][0]["content"]["parts"],
        json!([
            {"text": THINKING_TEXT, "thought": true},
            {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": "sig_mock_3"}
        ])
    );

    // AUTO (or no toolConfig) leaves the choice to the model; the mock answers with text.
    for extra in [
        json!({"tools": tools(), "toolConfig": {"functionCallingConfig": {"mode": "AUTO"}}}),
        json!({"tools": tools()}),
    ] {
        let (_, _, body) = post_with(&mock, GENERATE, &KEY, &request(extra)).await;
        let part = &json(&body)["candidates"][0]["content"]["parts"][0];
        assert_eq!(part["text"], "Hello from the mock upstream.");
    }
}

#[tokio::test]
async fn batch_embed_and_predict_give_the_openai_vectors() {
    let mock = MockUpstream::start().await.unwrap();
    let texts = ["What is the meaning of life?", "How much wood?"];
    let (_, _, openai) = post(&mock, "/v1/embeddings", &json!({"input": texts})).await;
    let openai = json(&openai);
    let expected: Vec<&Value> = (0..2).map(|i| &openai["data"][i]["embedding"]).collect();

    let batch = json!({"requests": [
        {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": texts[0]}]}, "outputDimensionality": 4},
        {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": texts[1]}]}}
    ]});
    let path = "/v1beta/models/gemini-embedding-001:batchEmbedContents";
    let (status, _, body) = post_with(&mock, path, &KEY, &batch).await;
    assert_eq!(status, StatusCode::OK);
    let body = json(&body);
    let embeddings = body["embeddings"].as_array().unwrap();
    assert_eq!(embeddings.len(), 2);
    for (embedding, expected) in embeddings.iter().zip(&expected) {
        assert_eq!(embedding.as_object().unwrap().len(), 1, "{embedding}");
        assert_eq!(embedding["values"].as_array().unwrap().len(), 8);
        assert_eq!(&embedding["values"], *expected);
    }

    let predict = json!({"instances": [{"content": texts[0]}, {"content": texts[1]}]});
    let path = "/v1/projects/p/locations/us-central1/publishers/google/models/gemini-embedding-001:predict";
    let (status, _, body) = post_with(&mock, path, &[], &predict).await;
    assert_eq!(status, StatusCode::OK);
    let body = json(&body);
    assert_eq!(body["predictions"][0]["embeddings"]["values"], *expected[0]);
    assert_eq!(
        body["predictions"][1]["embeddings"]["statistics"],
        json!({"token_count": 3, "truncated": false})
    );

    // A batch without requests is refused in Google's shape.
    let (status, _, body) = post_with(
        &mock,
        "/v1beta/models/gemini-embedding-001:batchEmbedContents",
        &KEY,
        &json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(json(&body)["error"]["status"], "INVALID_ARGUMENT");
}

#[tokio::test]
async fn status_faults_answer_google_errors() {
    let mock = MockUpstream::start().await.unwrap();
    mock.push(Behavior {
        status: Some(429),
        retry_after_s: Some(3),
        ..Behavior::default()
    });
    let (status, headers, body) = post_with(&mock, GENERATE, &KEY, &request(json!({}))).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(headers["retry-after"], "3");
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(
        json(&body),
        json!({"error": {
            "code": 429,
            "message": "mock error",
            "status": "RESOURCE_EXHAUSTED",
            "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "3s"}]
        }})
    );

    let cases = [
        (400, "INVALID_ARGUMENT"),
        (401, "UNAUTHENTICATED"),
        (403, "PERMISSION_DENIED"),
        (404, "NOT_FOUND"),
        (429, "RESOURCE_EXHAUSTED"),
        (500, "INTERNAL"),
        (503, "UNAVAILABLE"),
        (504, "DEADLINE_EXCEEDED"),
    ];
    for (code, name) in cases {
        // Faults apply before streaming too.
        let path = "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse";
        let req = request(json!({"mock": {"status": code}}));
        let (status, headers, body) = post_with(&mock, path, &KEY, &req).await;
        assert_eq!(status.as_u16(), code);
        assert!(!headers.contains_key("retry-after"));
        assert_eq!(
            json(&body),
            json!({"error": {"code": code, "message": "mock error", "status": name}})
        );
    }

    // error_code replaces the status name.
    let req = request(json!({"mock": {"status": 400, "error_code": "FAILED_PRECONDITION"}}));
    let (_, _, body) = post_with(&mock, GENERATE, &KEY, &req).await;
    assert_eq!(json(&body)["error"]["status"], "FAILED_PRECONDITION");
}

#[tokio::test]
async fn refused_requests_and_unknown_methods_answer_google_errors() {
    let mock = MockUpstream::start().await.unwrap();
    let bad = |message: &str| json!({"error": {"code": 400, "message": message, "status": "INVALID_ARGUMENT"}});

    let (status, _, body) = post_with(&mock, GENERATE, &KEY, &json!({"contents": []})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        json(&body),
        bad("* GenerateContentRequest.contents: contents is not specified")
    );

    let (status, _, body) = post_with(&mock, GENERATE, &KEY, &json!([1])).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(json(&body), bad("the request body must be a JSON object"));

    let req = request(json!({"mock": {"no_such_field": 1}}));
    let (status, _, body) = post_with(&mock, GENERATE, &KEY, &req).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let body = json(&body);
    assert_eq!(body["error"]["status"], "INVALID_ARGUMENT");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no_such_field")
    );

    let path = "/v1beta/models/gemini-2.5-flash:countTokens";
    let (status, _, body) = post_with(&mock, path, &KEY, &request(json!({}))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let body = json(&body);
    assert_eq!(body["error"]["code"], 404);
    assert_eq!(body["error"]["status"], "NOT_FOUND");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains(":countTokens")
    );

    let resp = common::send(&mock, hyper::Method::GET, GENERATE, "").await;
    let (status, _, body) = common::read_all(resp).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(json(&body)["error"]["status"], "NOT_FOUND");

    // A 200 whose body isn't JSON.
    let req = request(json!({"mock": {"malformed_body": true}}));
    let (status, _, body) = post_with(&mock, GENERATE, &KEY, &req).await;
    assert_eq!(status, StatusCode::OK);
    assert!(serde_json::from_slice::<Value>(&body).is_err());
}
