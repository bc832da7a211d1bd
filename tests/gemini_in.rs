//! Gemini's own API in (`/v1beta/models/{model}:generateContent` and `:streamGenerateContent`,
//! as Google's SDK sends it) over real sockets: translated through the canonical form to an
//! OpenAI model (complete, SSE and JSON-array streams), passed through natively to Gemini, keys
//! taken from `x-goog-api-key` or `?key=`, errors in Google's shape, each request traced and
//! priced.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::Harness;
use hyper::Method;
use mock_upstream::{DEFAULT_CONTENT, MockUpstream};
use serde_json::{Value, json};

fn body() -> String {
    json!({"systemInstruction": {"parts": [{"text": "Be brief."}]},
        "contents": [{"role": "user", "parts": [{"text": "Say hello"}]}],
        "generationConfig": {"temperature": 0.1, "maxOutputTokens": 64},
        "safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}]})
    .to_string()
}

fn text_of(response: &Value) -> String {
    response["candidates"][0]["content"]["parts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["text"].as_str())
        .collect()
}

#[tokio::test]
async fn generate_content_reaches_an_openai_model_and_answers_in_geminis_shape() {
    let h = Harness::start().await;
    let answer = h
        .client
        .post("/v1beta/models/gpt-4o-mini:generateContent", &body())
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let json = answer.json();
    assert_eq!(text_of(&json), DEFAULT_CONTENT);
    assert_eq!(json["candidates"][0]["finishReason"], "STOP");
    let usage = &json["usageMetadata"];
    assert!(usage["promptTokenCount"].as_u64().unwrap() > 0);
    let sent = &h.mock.requests()[0];
    assert_eq!(sent.path, "/v1/chat/completions");
    assert_eq!(sent.body["model"], "gpt-4o-mini");
    assert_eq!(sent.body["messages"][0]["role"], "system");
    assert_eq!(sent.body["max_completion_tokens"], 64);
    let trace = &h.traces(1).await[0];
    assert_eq!(trace.endpoint, "generate_content");
    assert_eq!(trace.requested_model, "gpt-4o-mini");
    assert_eq!(
        trace.tokens.prompt,
        usage["promptTokenCount"].as_u64().unwrap()
    );
    assert!(trace.cost_nanos > 0 && trace.price_known);
}

#[tokio::test]
async fn stream_generate_content_speaks_sse_with_alt_sse_and_a_json_array_without() {
    let h = Harness::start().await;
    let answer = h
        .client
        .post(
            "/v1beta/models/gpt-4o-mini:streamGenerateContent?alt=sse",
            &body(),
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.header("content-type"), Some("text/event-stream"));
    let events: Vec<Value> = common::sse_data(&answer.text().replace("\r\n", "\n"))
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    let text: String = events.iter().map(text_of).collect();
    assert_eq!(text, DEFAULT_CONTENT);
    let last = events.last().unwrap();
    assert_eq!(last["candidates"][0]["finishReason"], "STOP");
    assert!(last["usageMetadata"]["totalTokenCount"].as_u64().unwrap() > 0);

    let answer = h
        .client
        .post("/v1beta/models/gpt-4o-mini:streamGenerateContent", &body())
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.header("content-type"), Some("application/json"));
    let array = answer.json();
    let text: String = array.as_array().unwrap().iter().map(text_of).collect();
    assert_eq!(text, DEFAULT_CONTENT);
    let traces = h.traces(2).await;
    assert!(
        traces
            .iter()
            .all(|t| t.stream && t.cost_nanos > 0 && !t.usage_estimated)
    );
}

async fn with_gemini() -> Harness {
    let mock = MockUpstream::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "[providers.gemini]\nbase_url = \"{}\"\napi_key = \"gm-key\"\n",
        mock.gemini_base_url()
    );
    let config = common::config_for(&toml, &mock.base_url(), &dir);
    Harness::start_on(config, mock, dir).await
}

#[tokio::test]
async fn a_gemini_model_gets_the_clients_body_as_it_is() {
    let h = with_gemini().await;
    let answer = h
        .client
        .post("/v1beta/models/gemini-2.5-flash:generateContent", &body())
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(text_of(&answer.json()), DEFAULT_CONTENT);
    let sent = &h.mock.requests()[0];
    assert_eq!(sent.path, "/v1beta/models/gemini-2.5-flash:generateContent");
    // Untranslated: Gemini's own fields arrive, and the facts of the URL stay out of the body.
    assert_eq!(sent.body["safetySettings"][0]["threshold"], "BLOCK_NONE");
    assert!(sent.body.get("model").is_none() && sent.body.get("stream").is_none());
    assert_eq!(sent.header("x-goog-api-key"), Some("gm-key"));
    let trace = &h.traces(1).await[0];
    assert_eq!(trace.provider.as_deref(), Some("gemini"));
    assert!(trace.tokens.prompt > 0 && trace.cost_nanos > 0);

    let answer = h
        .client
        .post(
            "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
            &body(),
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let events: Vec<Value> = common::sse_data(&answer.text().replace("\r\n", "\n"))
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert_eq!(
        events.iter().map(text_of).collect::<String>(),
        DEFAULT_CONTENT
    );
    assert!(
        h.mock.requests()[1]
            .path
            .ends_with(":streamGenerateContent?alt=sse")
    );
    let trace = &h.traces(2).await[1];
    assert!(trace.stream && trace.tokens.completion > 0 && !trace.usage_estimated);
}

#[tokio::test]
async fn the_key_comes_from_x_goog_api_key_or_the_key_parameter_and_never_reaches_the_upstream() {
    let h = Harness::start_with("[auth]\nkeys = [\"sk-gemini-client-0123\"]\n").await;
    let path = "/v1beta/models/gpt-4o-mini:generateContent";
    let answer = h
        .client
        .call(
            Method::POST,
            path,
            &body(),
            &[("x-goog-api-key", "sk-gemini-client-0123")],
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let answer = h
        .client
        .post(&format!("{path}?key=sk-gemini-client-0123"), &body())
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let answer = h.client.post(&format!("{path}?key=wrong"), &body()).await;
    assert_eq!(answer.status, 401);
    let error = &answer.json()["error"];
    assert_eq!(error["status"], "UNAUTHENTICATED");
    assert_eq!(error["code"], 401);
    for sent in h.mock.requests() {
        assert!(!format!("{:?}", sent.headers).contains("sk-gemini-client"));
    }
}

#[tokio::test]
async fn bad_gemini_requests_get_googles_error_shape() {
    let h = Harness::start().await;
    let answer = h
        .client
        .post(
            "/v1beta/models/gpt-4o-mini:generateContent",
            r#"{"contents": "nope"}"#,
        )
        .await;
    assert_eq!(answer.status, 400, "{}", answer.text());
    let error = &answer.json()["error"];
    assert_eq!(error["status"], "INVALID_ARGUMENT");
    assert!(error["message"].as_str().unwrap().contains("contents"));
    // Google Search is Gemini's own: refused for another provider, by name.
    let search = json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}], "tools": [{"googleSearch": {}}]});
    let answer = h
        .client
        .post(
            "/v1beta/models/gpt-4o-mini:generateContent",
            &search.to_string(),
        )
        .await;
    assert_eq!(answer.status, 400, "{}", answer.text());
    assert!(
        answer.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("tools[0]")
    );
    let answer = h
        .client
        .post("/v1beta/models/gpt-4o-mini:countTokens", &body())
        .await;
    assert_eq!(answer.status, 404);
    assert_eq!(answer.json()["error"]["status"], "NOT_FOUND");
    assert_eq!(h.mock.request_count(), 0);
}
