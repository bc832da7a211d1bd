//! Anthropic end to end over real sockets: OpenAI clients calling Claude through the Anthropic
//! adapter (translated requests, answers, tool calls, streams, errors, exact cost), and
//! Anthropic-SDK-shaped clients on `/v1/messages` calling both OpenAI and Anthropic upstreams.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Harness, chat, sse_data};
use hyper::Method;
use mock_upstream::{Behavior, MockUpstream};
use serde_json::{Value, json};

const ANTHROPIC_KEY: &str = "sk-ant-test-0123456789";

/// The proxy with `anthropic` pointing at an Anthropic-mode mock and `openai` at another mock.
async fn start() -> (Harness, MockUpstream) {
    let claude = MockUpstream::start().await.unwrap();
    let openai = MockUpstream::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "[providers.anthropic]\nbase_url = \"{}\"\napi_key = \"{ANTHROPIC_KEY}\"\n",
        claude.base_url()
    );
    let config = common::config_for(&toml, &openai.base_url(), &dir);
    (Harness::start_on(config, claude, dir).await, openai)
}

/// Server-sent events as (name, data) pairs.
fn events(body: &str) -> Vec<(String, Value)> {
    body.split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .map(|e| {
            let name = e
                .lines()
                .find_map(|l| l.strip_prefix("event: "))
                .unwrap_or_default()
                .to_string();
            let data = e
                .lines()
                .find_map(|l| l.strip_prefix("data: "))
                .unwrap_or("null");
            (name, serde_json::from_str(data).unwrap_or(Value::Null))
        })
        .collect()
}

#[tokio::test]
async fn openai_client_calls_claude_and_pays_the_exact_price() {
    let (h, _openai) = start().await;
    h.mock.push(Behavior {
        cached_tokens: 2,
        cache_write_tokens: 1,
        ..Behavior::default()
    });
    let answer = h
        .client
        .call(
            Method::POST,
            "/v1/chat/completions",
            &chat("claude-sonnet-4-5", "Say hello", false),
            &[("anthropic-beta", "some-beta-2026")],
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let body = answer.json();
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "Hello from the mock upstream."
    );
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    assert_eq!(body["usage"]["prompt_tokens"], 6);
    assert_eq!(body["usage"]["prompt_tokens_details"]["cached_tokens"], 2);

    let got = &h.mock.requests()[0];
    assert_eq!(got.path, "/v1/messages");
    assert_eq!(got.header("x-api-key"), Some(ANTHROPIC_KEY));
    assert_eq!(got.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(got.header("anthropic-beta"), Some("some-beta-2026"));
    assert!(got.header("authorization").is_none());
    assert_eq!(got.body["model"], "claude-sonnet-4-5");
    assert!(got.body["max_tokens"].as_u64().is_some());
    assert_eq!(got.body["messages"][0]["role"], "user");

    let trace = &h.traces(1).await[0];
    assert_eq!(trace.provider.as_deref(), Some("anthropic"));
    assert_eq!(
        (
            trace.tokens.prompt,
            trace.tokens.cached_input,
            trace.tokens.cache_write,
            trace.tokens.completion
        ),
        (6, 2, 1, 5)
    );
    // claude-sonnet-4-5 per token: 3000 in, 300 cache read, 3750 cache write, 15000 out (nanos).
    assert_eq!(trace.cost_nanos, 3 * 3_000 + 2 * 300 + 3_750 + 5 * 15_000);
}

#[tokio::test]
async fn streams_from_claude_arrive_as_openai_chunks_with_usage_and_tools() {
    let (h, _openai) = start().await;
    let body = json!({"model": "claude-sonnet-4-5", "stream": true, "stream_options": {"include_usage": true},
        "messages": [{"role": "user", "content": "Say hello"}]});
    let answer = h
        .client
        .post("/v1/chat/completions", &body.to_string())
        .await;
    assert_eq!(answer.status, 200);
    let data = sse_data(&answer.text());
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"), "{data:?}");
    let chunks: Vec<Value> = data
        .iter()
        .filter_map(|d| serde_json::from_str(d).ok())
        .collect();
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "Hello from the mock upstream.");
    assert!(
        chunks
            .iter()
            .any(|c| c["choices"][0]["finish_reason"] == "stop")
    );
    let usage = chunks.iter().find(|c| c["usage"].is_object()).unwrap();
    assert_eq!(usage["usage"]["completion_tokens"], 5);

    // Tool calls: argument deltas reassemble in order.
    let body = json!({"model": "claude-sonnet-4-5", "stream": true, "tool_choice": "required",
        "tools": [{"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}],
        "messages": [{"role": "user", "content": "Weather?"}]});
    let answer = h
        .client
        .post("/v1/chat/completions", &body.to_string())
        .await;
    let chunks: Vec<Value> = sse_data(&answer.text())
        .iter()
        .filter_map(|d| serde_json::from_str(d).ok())
        .collect();
    let args: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"].as_str())
        .collect();
    assert_eq!(
        serde_json::from_str::<Value>(&args).unwrap(),
        json!({"city": "Paris"})
    );
    assert!(
        chunks
            .iter()
            .any(|c| c["choices"][0]["finish_reason"] == "tool_calls")
    );
    assert_eq!(h.mock.requests()[1].body["tool_choice"]["type"], "any");
    let traces = h.traces(2).await;
    assert_eq!(
        (traces[0].tokens.completion, traces[0].usage_estimated),
        (5, false)
    );
}

#[tokio::test]
async fn claude_errors_keep_their_status_and_mid_stream_errors_never_look_clean() {
    let (h, _openai) = start().await;
    h.mock.push(Behavior {
        status: Some(529),
        ..Behavior::default()
    });
    let answer = h
        .client
        .post(
            "/v1/chat/completions",
            &chat("claude-sonnet-4-5", "hi", false),
        )
        .await;
    assert_eq!(answer.status, 529);
    let error = &answer.json()["error"];
    assert!(
        error["message"].is_string() && error["type"].is_string(),
        "{error}"
    );

    h.mock.push(Behavior {
        error_event_after_chunks: Some(2),
        ..Behavior::default()
    });
    let answer = h
        .client
        .post(
            "/v1/chat/completions",
            &chat("claude-sonnet-4-5", "hi", true),
        )
        .await;
    let data = sse_data(&answer.text());
    assert!(!data.iter().any(|d| d == "[DONE]"), "{data:?}");
    assert!(data.last().unwrap().contains("Overloaded"), "{data:?}");

    h.mock.push(Behavior {
        reset_after_chunks: Some(1),
        ..Behavior::default()
    });
    let answer = h
        .client
        .post(
            "/v1/chat/completions",
            &chat("claude-sonnet-4-5", "hi", true),
        )
        .await;
    let data = sse_data(&answer.text());
    assert!(!data.iter().any(|d| d == "[DONE]"));
    assert!(data.last().unwrap().contains("\"error\""));

    // A parameter Anthropic cannot honour is refused by name.
    let body = json!({"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": "x"}], "logit_bias": {"1": 2}});
    let answer = h
        .client
        .post("/v1/chat/completions", &body.to_string())
        .await;
    assert_eq!(answer.status, 400);
    assert_eq!(answer.json()["error"]["param"], "logit_bias");
}

#[tokio::test]
async fn messages_clients_reach_openai_models_in_their_own_format() {
    let (h, openai) = start().await;
    let request = json!({"model": "gpt-4o-mini", "max_tokens": 100, "system": "Be brief.",
        "messages": [{"role": "user", "content": "Say hello"}]});
    let answer = h.client.post("/v1/messages", &request.to_string()).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let message = answer.json();
    assert_eq!(message["type"], "message");
    assert_eq!(message["role"], "assistant");
    assert_eq!(message["content"][0]["type"], "text");
    assert_eq!(
        message["content"][0]["text"],
        "Hello from the mock upstream."
    );
    assert_eq!(message["stop_reason"], "end_turn");
    assert!(message["usage"]["input_tokens"].as_u64().is_some());
    let sent = &openai.requests()[0];
    assert_eq!(sent.path, "/v1/chat/completions");
    assert_eq!(sent.body["messages"][0]["role"], "system");
    assert_eq!(sent.body["messages"][0]["content"], "Be brief.");

    // Streamed: Anthropic's event sequence, text reassembled, usage in message_delta.
    let request = json!({"model": "gpt-4o-mini", "max_tokens": 100, "stream": true,
        "messages": [{"role": "user", "content": "Say hello"}]});
    let answer = h.client.post("/v1/messages", &request.to_string()).await;
    let events = events(&answer.text());
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names.first(), Some(&"message_start"), "{names:?}");
    assert_eq!(names.last(), Some(&"message_stop"), "{names:?}");
    let text: String = events
        .iter()
        .filter_map(|(_, d)| d["delta"]["text"].as_str())
        .collect();
    assert_eq!(text, "Hello from the mock upstream.");
    let delta = events.iter().find(|(n, _)| n == "message_delta").unwrap();
    assert_eq!(delta.1["delta"]["stop_reason"], "end_turn");
    assert_eq!(delta.1["usage"]["output_tokens"], 5);

    // Errors in Anthropic's shape.
    let answer = h
        .client
        .post(
            "/v1/messages",
            &json!({"model": "no-such", "max_tokens": 5, "messages": []}).to_string(),
        )
        .await;
    assert_eq!(answer.status, 404);
    assert_eq!(answer.json()["type"], "error");
    assert_eq!(answer.json()["error"]["type"], "not_found_error");
    let answer = h.client.post("/v1/messages", "{broken").await;
    assert_eq!(answer.status, 400);
    assert_eq!(answer.json()["error"]["type"], "invalid_request_error");
    openai.push(Behavior {
        reset_after_chunks: Some(2),
        ..Behavior::default()
    });
    let answer = h.client.post("/v1/messages", &request.to_string()).await;
    let events = self::events(&answer.text());
    assert_eq!(
        events.last().map(|(n, _)| n.as_str()),
        Some("error"),
        "{events:?}"
    );
    assert!(!events.iter().any(|(n, _)| n == "message_stop"));
}

#[tokio::test]
async fn messages_clients_keep_thinking_signatures_and_tool_use_with_claude() {
    let (h, _openai) = start().await;
    let request = json!({"model": "claude-sonnet-4-5", "max_tokens": 8000,
        "thinking": {"type": "enabled", "budget_tokens": 2048},
        "messages": [{"role": "user", "content": "Think, then say hello"}]});
    let answer = h.client.post("/v1/messages", &request.to_string()).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let message = answer.json();
    assert_eq!(message["content"][0]["type"], "thinking");
    assert_eq!(
        message["content"][0]["thinking"],
        mock_upstream::THINKING_TEXT
    );
    assert!(
        message["content"][0]["signature"]
            .as_str()
            .unwrap()
            .starts_with("sig_mock_")
    );
    assert_eq!(
        message["content"][1]["text"],
        "Hello from the mock upstream."
    );
    assert_eq!(h.mock.requests()[0].body["thinking"]["budget_tokens"], 2048);

    // The thinking block goes back upstream, signature intact, on the next turn.
    let next = json!({"model": "claude-sonnet-4-5", "max_tokens": 8000,
        "thinking": {"type": "enabled", "budget_tokens": 2048},
        "messages": [{"role": "user", "content": "Think, then say hello"},
                     {"role": "assistant", "content": message["content"].clone()},
                     {"role": "user", "content": "Again"}]});
    let answer = h.client.post("/v1/messages", &next.to_string()).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let replayed = &h.mock.requests()[1].body["messages"][1]["content"][0];
    assert_eq!(replayed["type"], "thinking");
    assert_eq!(replayed["signature"], message["content"][0]["signature"]);

    // Streamed tool use: input_json_delta reassembles.
    let request = json!({"model": "claude-sonnet-4-5", "max_tokens": 500, "stream": true,
        "tool_choice": {"type": "any"},
        "tools": [{"name": "weather", "input_schema": {"type": "object"}}],
        "messages": [{"role": "user", "content": "Weather?"}]});
    let answer = h.client.post("/v1/messages", &request.to_string()).await;
    let events = events(&answer.text());
    let start = events
        .iter()
        .find(|(n, d)| n == "content_block_start" && d["content_block"]["type"] == "tool_use")
        .unwrap();
    assert_eq!(start.1["content_block"]["name"], "weather");
    let json_text: String = events
        .iter()
        .filter_map(|(_, d)| d["delta"]["partial_json"].as_str())
        .collect();
    assert_eq!(
        serde_json::from_str::<Value>(&json_text).unwrap(),
        json!({"city": "Paris"})
    );
    let delta = events.iter().find(|(n, _)| n == "message_delta").unwrap();
    assert_eq!(delta.1["delta"]["stop_reason"], "tool_use");
}

#[tokio::test]
async fn count_tokens_answers_locally() {
    let (h, _openai) = start().await;
    let request = json!({"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": "Hello world"}]});
    let answer = h
        .client
        .post("/v1/messages/count_tokens", &request.to_string())
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert!(answer.json()["input_tokens"].as_u64().unwrap() >= 2);
    let answer = h.client.post("/v1/messages/count_tokens", "nope").await;
    assert_eq!(answer.status, 400);
    assert_eq!(answer.json()["type"], "error");
}

#[tokio::test]
async fn models_lists_every_provider_by_qualified_and_bare_name() {
    let (h, _openai) = start().await;
    let models = h.client.get("/v1/models").await.json();
    let ids: Vec<&str> = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["id"].as_str())
        .collect();
    for id in [
        "anthropic/claude-sonnet-4-5",
        "claude-sonnet-4-5",
        "openai/gpt-4o-mini",
        "gpt-4o-mini",
    ] {
        assert!(ids.contains(&id), "{id} missing");
    }
}

#[tokio::test]
async fn messages_to_claude_pass_through_natively() {
    let (h, _openai) = start().await;
    let request = json!({"model": "claude-sonnet-4-5", "max_tokens": 64,
        "system": [{"type": "text", "text": "Long, cacheable context.", "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Say hello", "cache_control": {"type": "ephemeral"}}]}],
        "metadata": {"user_id": "u-1"}, "top_k": 5});
    h.mock.push(Behavior {
        cached_tokens: 3,
        ..Behavior::default()
    });
    let answer = h
        .client
        .call(
            Method::POST,
            "/v1/messages",
            &request.to_string(),
            &[("anthropic-beta", "beta-x")],
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    // The upstream got the client's body as it was, and the client the upstream's answer.
    let got = &h.mock.requests()[0];
    assert_eq!(got.body, request);
    assert_eq!(got.header("anthropic-beta"), Some("beta-x"));
    assert_eq!(answer.json()["id"], "msg_mock_1");
    assert_eq!(answer.json()["usage"]["cache_read_input_tokens"], 3);
    let trace = &h.traces(1).await[0];
    assert_eq!(
        (trace.tokens.cached_input, trace.usage_estimated),
        (3, false)
    );
    assert!(trace.cost_nanos > 0);

    // Errors come back in Anthropic's own words, and stream errors as they were sent.
    h.mock.push(Behavior {
        status: Some(529),
        ..Behavior::default()
    });
    let answer = h.client.post("/v1/messages", &request.to_string()).await;
    assert_eq!(answer.status, 529);
    assert_eq!(answer.json()["error"]["type"], "overloaded_error");
    let mut streamed = request.clone();
    streamed["stream"] = json!(true);
    h.mock.push(Behavior {
        error_event_after_chunks: Some(2),
        ..Behavior::default()
    });
    let answer = h.client.post("/v1/messages", &streamed.to_string()).await;
    let events = events(&answer.text());
    assert_eq!(
        events.last().map(|(n, _)| n.as_str()),
        Some("error"),
        "{events:?}"
    );
    assert_eq!(events.iter().filter(|(n, _)| n == "error").count(), 1);
    let trace = &h.traces(3).await[2];
    assert_eq!(trace.error_class.as_deref(), Some("upstream_stream_error"));
}

/// What only Anthropic honours (server tools, `mcp_servers`, `container`, `context_management`,
/// fields added after this build) goes to Claude untouched on `/v1/messages`; the same request
/// to a model on another provider is refused naming the field, before anything is sent.
#[tokio::test]
async fn messages_with_anthropic_only_fields_reach_claude_natively_and_nobody_else() {
    let (h, openai) = start().await;
    let request = json!({"model": "claude-sonnet-4-5", "max_tokens": 64,
        "messages": [{"role": "user", "content": "What is new today?"}],
        "tools": [{"type": "web_search_20250305", "name": "web_search", "max_uses": 3}],
        "mcp_servers": [{"type": "url", "url": "https://mcp.example.com/sse", "name": "example"}],
        "container": "container_011",
        "context_management": {"edits": [{"type": "clear_tool_uses_20250919"}]},
        "a_field_from_next_year": {"x": 1}});
    let answer = h.client.post("/v1/messages", &request.to_string()).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(h.mock.requests()[0].body, request);
    assert_eq!(answer.json()["type"], "message");

    let mut elsewhere = request.clone();
    elsewhere["model"] = json!("gpt-4o-mini");
    let answer = h.client.post("/v1/messages", &elsewhere.to_string()).await;
    assert_eq!(answer.status, 400, "{}", answer.text());
    let body = answer.json();
    assert_eq!(body["type"], "error", "{body}");
    assert_eq!(body["error"]["type"], "invalid_request_error", "{body}");
    assert!(openai.requests().is_empty());

    // A stream flag that is not a boolean is refused, not read as false.
    let mut wrong = request.clone();
    wrong["stream"] = json!("yes");
    let answer = h.client.post("/v1/messages", &wrong.to_string()).await;
    assert_eq!(answer.status, 400, "{}", answer.text());
    assert_eq!(answer.json()["type"], "error");
    assert_eq!(h.mock.requests().len(), 1);
}
