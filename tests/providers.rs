//! Provider presets over real sockets: OpenAI-compatible rows with their quirks (Mistral, Groq),
//! Azure OpenAI's URL and `api-key` header, and Gemini through its translator.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Harness, chat, sse_data};
use mock_upstream::MockUpstream;
use serde_json::{Value, json};

async fn start(toml_for: impl Fn(&str) -> String) -> Harness {
    let mock = MockUpstream::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = common::config_for(&toml_for(&mock.base_url()), "http://127.0.0.1:9/v1", &dir);
    Harness::start_on(config, mock, dir).await
}

#[tokio::test]
async fn mistral_gets_its_own_field_names_and_routes_by_prefix() {
    let h = start(|url| format!("[providers.mistral]\nbase_url = \"{url}\"\napi_key = \"mk-1\"\n"))
        .await;
    let body = json!({"model": "mistral-large-latest", "max_completion_tokens": 50, "seed": 7,
        "messages": [{"role": "developer", "content": "Be brief."}, {"role": "user", "content": "hi"}]});
    let answer = h
        .client
        .post("/v1/chat/completions", &body.to_string())
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let sent = &h.mock.requests()[0].body;
    assert_eq!(sent["max_tokens"], 50);
    assert!(sent.get("max_completion_tokens").is_none());
    assert_eq!(sent["random_seed"], 7);
    assert_eq!(sent["messages"][0]["role"], "system");
    assert_eq!(
        h.mock.requests()[0].header("authorization"),
        Some("Bearer mk-1")
    );
    assert_eq!(h.traces(1).await[0].provider.as_deref(), Some("mistral"));
}

#[tokio::test]
async fn groq_refuses_what_it_cannot_honour_by_name() {
    let h =
        start(|url| format!("[providers.groq]\nbase_url = \"{url}\"\napi_key = \"gk-1\"\n")).await;
    let body = json!({"model": "groq/llama-3.3-70b-versatile", "logprobs": true,
        "messages": [{"role": "user", "content": "hi"}]});
    let answer = h
        .client
        .post("/v1/chat/completions", &body.to_string())
        .await;
    assert_eq!(answer.status, 400, "{}", answer.text());
    assert_eq!(answer.json()["error"]["param"], "logprobs");
    assert_eq!(h.mock.request_count(), 0);
    // Streams still carry usage, and embeddings pass through untouched.
    let answer = h
        .client
        .post(
            "/v1/chat/completions",
            &chat("groq/llama-3.3-70b-versatile", "hi", true),
        )
        .await;
    assert_eq!(
        sse_data(&answer.text()).last().map(String::as_str),
        Some("[DONE]")
    );
    let trace = &h.traces(2).await[1];
    assert!(!trace.usage_estimated && trace.tokens.prompt > 0);
}

#[tokio::test]
async fn azure_uses_the_v1_api_and_the_api_key_header() {
    let h = start(|url| {
        let root = url.trim_end_matches("/v1");
        format!("[providers.azure]\nbase_url = \"{root}\"\napi_key = \"az-key-1\"\n")
    })
    .await;
    let _ = h
        .client
        .post(
            "/v1/chat/completions",
            &chat("azure/my-gpt4o-deployment", "hi", false),
        )
        .await;
    let got = &h.mock.requests()[0];
    assert_eq!(got.path, "/openai/v1/chat/completions");
    assert_eq!(got.header("api-key"), Some("az-key-1"));
    assert!(got.header("authorization").is_none());
    assert_eq!(got.body["model"], "my-gpt4o-deployment");
}

#[tokio::test]
async fn gemini_answers_as_openai_chat_streamed_or_not() {
    let h = start(|url| {
        let root = url.trim_end_matches("/v1");
        format!("[providers.gemini]\nbase_url = \"{root}/v1beta\"\napi_key = \"gm-key\"\n")
    })
    .await;
    let answer = h
        .client
        .post(
            "/v1/chat/completions",
            &chat("gemini-2.5-flash", "Say hello", false),
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let body = answer.json();
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "Hello from the mock upstream."
    );
    let got = &h.mock.requests()[0];
    assert_eq!(got.path, "/v1beta/models/gemini-2.5-flash:generateContent");
    assert_eq!(got.header("x-goog-api-key"), Some("gm-key"));
    assert_eq!(got.body["contents"][0]["role"], "user");

    let answer = h
        .client
        .post(
            "/v1/chat/completions",
            &chat("gemini-2.5-flash", "Say hello", true),
        )
        .await;
    let data = sse_data(&answer.text());
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"), "{data:?}");
    let text: String = data
        .iter()
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter_map(|c| {
            c["choices"][0]["delta"]["content"]
                .as_str()
                .map(String::from)
        })
        .collect();
    assert_eq!(text, "Hello from the mock upstream.");
    assert!(
        h.mock.requests()[1]
            .path
            .ends_with(":streamGenerateContent?alt=sse")
    );
    let traces = h.traces(2).await;
    for trace in &traces {
        assert_eq!(trace.provider.as_deref(), Some("gemini"));
        assert!(
            trace.tokens.prompt > 0 && !trace.usage_estimated,
            "{trace:?}"
        );
    }
    assert_eq!(traces[0].tokens, traces[1].tokens);
}

#[tokio::test]
async fn gemini_errors_keep_their_status_and_mid_stream_errors_never_look_clean() {
    let h = start(|url| {
        let root = url.trim_end_matches("/v1");
        format!("[providers.gemini]\nbase_url = \"{root}/v1beta\"\napi_key = \"gm-key\"\n")
    })
    .await;
    h.mock.push(mock_upstream::Behavior {
        error_event_after_chunks: Some(1),
        ..Default::default()
    });
    let answer = h
        .client
        .post(
            "/v1/chat/completions",
            &chat("gemini-2.5-flash", "hi", true),
        )
        .await;
    let data = sse_data(&answer.text());
    assert!(!data.iter().any(|d| d == "[DONE]"), "{data:?}");
    assert!(data.last().unwrap().contains("\"error\""), "{data:?}");
    h.mock.push(mock_upstream::Behavior {
        status: Some(429),
        ..Default::default()
    });
    let answer = h
        .client
        .post(
            "/v1/chat/completions",
            &chat("gemini-2.5-flash", "hi", false),
        )
        .await;
    assert_eq!(answer.status, 429);
    assert!(answer.json()["error"]["message"].is_string());
}

/// The proxy with a Bedrock provider pointing at the mock, credentials in the config's variables.
async fn bedrock() -> Harness {
    let mock = MockUpstream::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "[providers.bedrock]\nkind = \"bedrock\"\nbase_url = \"{}\"\nregion = \"us-east-1\"\n\
         access_key_id_env = \"STOCKYARD_TEST_AWS_KEY\"\nsecret_access_key_env = \"STOCKYARD_TEST_AWS_SECRET\"\n",
        mock.bedrock_base_url()
    );
    let config = common::config_for(&toml, "http://127.0.0.1:9/v1", &dir);
    Harness::start_on(config, mock, dir).await
}

#[tokio::test]
async fn bedrock_converse_is_signed_and_answers_as_openai_chat() {
    let h = bedrock().await;
    let model = "bedrock/anthropic.claude-sonnet-4-5-20250929-v1:0";
    let answer = h
        .client
        .post("/v1/chat/completions", &chat(model, "Say hello", false))
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(
        answer.json()["choices"][0]["message"]["content"],
        "Hello from the mock upstream."
    );
    let got = &h.mock.requests()[0];
    assert_eq!(
        got.path,
        "/model/anthropic.claude-sonnet-4-5-20250929-v1%3A0/converse"
    );
    let auth = got.header("authorization").unwrap();
    assert!(auth.starts_with("AWS4-HMAC-SHA256 Credential="), "{auth}");
    assert!(auth.contains("/us-east-1/bedrock/aws4_request"), "{auth}");
    assert!(got.header("x-amz-date").is_some());
    assert_eq!(got.body["messages"][0]["content"][0]["text"], "Say hello");

    let answer = h
        .client
        .post("/v1/chat/completions", &chat(model, "Say hello", true))
        .await;
    let data = sse_data(&answer.text());
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"), "{data:?}");
    let text: String = data
        .iter()
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter_map(|c| {
            c["choices"][0]["delta"]["content"]
                .as_str()
                .map(String::from)
        })
        .collect();
    assert_eq!(text, "Hello from the mock upstream.");
    assert!(h.mock.requests()[1].path.ends_with("/converse-stream"));
    let traces = h.traces(2).await;
    assert_eq!(traces[0].tokens, traces[1].tokens);
    assert!(traces[0].tokens.prompt > 0 && !traces[1].usage_estimated);

    // A throttling exception mid-stream is an error event, never a clean finish.
    h.mock.push(mock_upstream::Behavior {
        exception_after_chunks: Some(1),
        ..Default::default()
    });
    let answer = h
        .client
        .post("/v1/chat/completions", &chat(model, "hi", true))
        .await;
    let data = sse_data(&answer.text());
    assert!(!data.iter().any(|d| d == "[DONE]"), "{data:?}");
    assert!(data.last().unwrap().contains("\"error\""), "{data:?}");
}

#[tokio::test]
async fn drop_unsupported_drops_instead_of_refusing() {
    let h = start(|url| {
        format!(
            "[providers.groq]\nbase_url = \"{url}\"\napi_key = \"gk\"\ndrop_unsupported = true\n"
        )
    })
    .await;
    let body = json!({"model": "groq/llama-3.3-70b-versatile", "logprobs": true,
        "messages": [{"role": "user", "content": "hi"}]});
    let answer = h
        .client
        .post("/v1/chat/completions", &body.to_string())
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert!(h.mock.requests()[0].body.get("logprobs").is_none());
}

#[tokio::test]
async fn azure_dated_api_uses_deployment_urls() {
    let h = start(|url| {
        let root = url.trim_end_matches("/v1");
        format!("[providers.azure]\nbase_url = \"{root}\"\napi_key = \"az\"\napi_version = \"2024-10-21\"\n")
    })
    .await;
    let _ = h
        .client
        .post(
            "/v1/chat/completions",
            &chat("azure/prod-gpt4o", "hi", false),
        )
        .await;
    let got = &h.mock.requests()[0];
    assert_eq!(
        got.path,
        "/openai/deployments/prod-gpt4o/chat/completions?api-version=2024-10-21"
    );
    assert_eq!(got.header("api-key"), Some("az"));
}

#[tokio::test]
async fn gemini_embeddings_in_float_and_base64() {
    let h = start(|url| {
        let root = url.trim_end_matches("/v1");
        format!("[providers.gemini]\nbase_url = \"{root}/v1beta\"\napi_key = \"gm-key\"\n")
    })
    .await;
    let body = json!({"model": "gemini/gemini-embedding-001", "input": ["a b c", "d"]});
    let answer = h.client.post("/v1/embeddings", &body.to_string()).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let value = answer.json();
    assert_eq!(value["object"], "list");
    assert_eq!(value["data"].as_array().unwrap().len(), 2);
    assert!(value["data"][0]["embedding"][0].is_number());
    assert!(
        h.mock.requests()[0]
            .path
            .ends_with("/models/gemini-embedding-001:batchEmbedContents")
    );
    let body = json!({"model": "gemini/gemini-embedding-001", "input": "a b c", "encoding_format": "base64"});
    let answer = h.client.post("/v1/embeddings", &body.to_string()).await;
    assert!(answer.json()["data"][0]["embedding"].is_string());
    let trace = &h.traces(2).await[0];
    // Gemini's batch API reports no usage: the tokenizer counts it, and the trace says so.
    assert!(
        trace.tokens.prompt > 0 && trace.usage_estimated,
        "{trace:?}"
    );
}

#[tokio::test]
async fn bedrock_embeddings_with_titan_and_cohere() {
    let h = bedrock().await;
    let body = json!({"model": "bedrock/amazon.titan-embed-text-v2:0", "input": "a b c"});
    let answer = h.client.post("/v1/embeddings", &body.to_string()).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert!(answer.json()["data"][0]["embedding"][0].is_number());
    assert_eq!(
        h.mock.requests()[0].path,
        "/model/amazon.titan-embed-text-v2%3A0/invoke"
    );
    let body = json!({"model": "bedrock/cohere.embed-english-v3", "input": ["a", "b"]});
    let answer = h.client.post("/v1/embeddings", &body.to_string()).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.json()["data"].as_array().unwrap().len(), 2);
    let body = json!({"model": "bedrock/amazon.titan-embed-text-v2:0", "input": ["a", "b"]});
    let answer = h.client.post("/v1/embeddings", &body.to_string()).await;
    assert_eq!(answer.status, 400);
    assert_eq!(answer.json()["error"]["param"], "input");
    let traces = h.traces(2).await;
    assert!(traces[0].tokens.prompt > 0);
}

/// The Anthropic and Responses formats reach Gemini and Bedrock too, streamed and not.
#[tokio::test]
async fn messages_and_responses_clients_reach_gemini_and_bedrock() {
    let gemini = start(|url| {
        let root = url.trim_end_matches("/v1");
        format!("[providers.gemini]\nbase_url = \"{root}/v1beta\"\napi_key = \"gm-key\"\n")
    })
    .await;
    let bedrock = bedrock().await;
    for (h, model) in [
        (&gemini, "gemini-2.5-flash"),
        (
            &bedrock,
            "bedrock/anthropic.claude-sonnet-4-5-20250929-v1:0",
        ),
    ] {
        let messages = json!({"model": model, "max_tokens": 100, "messages": [{"role": "user", "content": "Say hello"}]});
        let answer = h.client.post("/v1/messages", &messages.to_string()).await;
        assert_eq!(answer.status, 200, "{model}: {}", answer.text());
        assert_eq!(
            answer.json()["content"][0]["text"],
            "Hello from the mock upstream.",
            "{model}"
        );

        let mut streamed = messages.clone();
        streamed["stream"] = json!(true);
        let answer = h.client.post("/v1/messages", &streamed.to_string()).await;
        let text = answer.text();
        assert!(text.contains("event: message_stop"), "{model}: {text}");
        let joined: String = text
            .split("\n\n")
            .filter_map(|e| e.lines().find_map(|l| l.strip_prefix("data: ")))
            .filter_map(|d| serde_json::from_str::<Value>(d).ok())
            .filter_map(|d| d["delta"]["text"].as_str().map(String::from))
            .collect();
        assert_eq!(joined, "Hello from the mock upstream.", "{model}");

        let responses = json!({"model": model, "input": "Say hello", "stream": true});
        let answer = h.client.post("/v1/responses", &responses.to_string()).await;
        let text = answer.text();
        assert!(
            text.contains("event: response.completed"),
            "{model}: {text}"
        );

        let traces = h.traces(3).await;
        for trace in &traces {
            assert!(
                trace.tokens.prompt > 0 && !trace.usage_estimated,
                "{model}: {trace:?}"
            );
        }
    }
}

#[tokio::test]
async fn vertex_calls_carry_project_location_and_a_bearer_token() {
    let h = start(|url| {
        format!(
            "[providers.vertex]\nkind = \"vertex\"\nproject = \"proj-1\"\nlocation = \"us-central1\"\n\
             base_url = \"{url}\"\napi_key = \"ya29.token\"\n"
        )
    })
    .await;
    let answer = h
        .client
        .post(
            "/v1/chat/completions",
            &chat("vertex/gemini-2.5-pro", "Say hello", false),
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let got = &h.mock.requests()[0];
    assert_eq!(
        got.path,
        "/v1/projects/proj-1/locations/us-central1/publishers/google/models/gemini-2.5-pro:generateContent"
    );
    assert_eq!(got.header("authorization"), Some("Bearer ya29.token"));
}

#[tokio::test]
async fn messages_to_claude_on_bedrock_go_natively_through_invoke_model() {
    let h = bedrock().await;
    let model = "bedrock/anthropic.claude-sonnet-4-5-20250929-v1:0";
    let request = json!({"model": model, "max_tokens": 100, "thinking": {"type": "enabled", "budget_tokens": 1024},
        "messages": [{"role": "user", "content": "Say hello"}]});
    let answer = h.client.post("/v1/messages", &request.to_string()).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let message = answer.json();
    assert_eq!(message["content"][0]["type"], "thinking");
    assert!(
        message["content"][0]["signature"]
            .as_str()
            .is_some_and(|s| !s.is_empty())
    );
    let got = &h.mock.requests()[0];
    assert_eq!(
        got.path,
        "/model/anthropic.claude-sonnet-4-5-20250929-v1%3A0/invoke"
    );
    assert_eq!(got.body["anthropic_version"], "bedrock-2023-05-31");
    assert!(got.body.get("model").is_none() && got.body.get("stream").is_none());
    assert_eq!(got.body["thinking"]["budget_tokens"], 1024);

    let mut streamed = request.clone();
    streamed["stream"] = json!(true);
    let answer = h.client.post("/v1/messages", &streamed.to_string()).await;
    let text = answer.text();
    assert!(
        h.mock.requests()[1]
            .path
            .ends_with("/invoke-with-response-stream")
    );
    assert!(text.starts_with("event: message_start"), "{text}");
    assert!(text.contains("event: message_stop"), "{text}");
    let traces = h.traces(2).await;
    assert_eq!(traces[0].tokens, traces[1].tokens);
    assert!(traces[1].tokens.prompt > 0 && !traces[1].usage_estimated);

    h.mock.push(mock_upstream::Behavior {
        exception_after_chunks: Some(1),
        ..Default::default()
    });
    let answer = h.client.post("/v1/messages", &streamed.to_string()).await;
    let text = answer.text();
    assert!(text.contains("event: error"), "{text}");
    assert!(!text.contains("event: message_stop"), "{text}");
}

/// A model name lands in the URL's path for Gemini and Azure's deployments: one that would reach
/// another method or resource with the operator's key, or be priced as unknown (`models/...`),
/// is refused as the client's mistake, and nothing goes upstream.
#[tokio::test]
async fn model_names_that_would_change_the_upstream_url_are_refused() {
    let h = start(|url| {
        let root = url.trim_end_matches("/v1");
        format!(
            "[providers.gemini]\nbase_url = \"{root}/v1beta\"\napi_key = \"gm-key\"\n\n\
             [providers.azure]\nbase_url = \"{root}\"\napi_key = \"az\"\napi_version = \"2024-10-21\"\n"
        )
    })
    .await;
    for model in [
        "gemini/gemini-2.5-pro:generateContent#",
        "gemini/../../v1beta/files?x=",
        "gemini/x:countTokens?alt=json&",
        "gemini/gemini-2.5-flash/../../cachedContents",
        "gemini/a b",
        "azure/prod/../../files?x=",
    ] {
        let answer = h
            .client
            .post("/v1/chat/completions", &chat(model, "hi", false))
            .await;
        assert_eq!(answer.status, 400, "{model}: {}", answer.text());
        let body = answer.json();
        assert_eq!(body["error"]["param"], "model", "{model}: {body}");
        assert!(
            !answer.text().contains("gm-key") && !answer.text().contains("\"az\""),
            "{model}: {body}"
        );
    }
    assert!(h.mock.requests().is_empty(), "{:?}", h.mock.requests());
    // The `models/` prefix Google's SDKs write is the same model, at the same price.
    for model in ["gemini/gemini-2.5-pro", "gemini/models/gemini-2.5-pro"] {
        let answer = h
            .client
            .post("/v1/chat/completions", &chat(model, "hi", false))
            .await;
        assert_eq!(answer.status, 200, "{model}: {}", answer.text());
    }
    let traces = h.traces(2).await;
    assert!(
        traces.iter().all(|t| t.price_known && t.cost_nanos > 0),
        "{traces:?}"
    );
    assert_eq!(traces[0].cost_nanos, traces[1].cost_nanos);
}
