//! `cost_guard` over real sockets: a request estimated over the per-request ceiling is refused
//! with a 400 naming the ceiling, in the Chat and in the Messages shape, before any upstream
//! call; a stream whose running cost passes the per-stream ceiling is cut with an error event in
//! each client's format; config errors name the field; a toggle applies to the next request and
//! is audited.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::catalogue::{admin_toml, assert_config_refused, audit_entries, change, listed_enabled};
use common::{Harness, sse_data};
use mock_upstream::Behavior;
use serde_json::{Value, json};

const NAME: &str = "cost_guard";

/// $1 per million tokens both ways: 1000 nano-dollars a token.
const PRICES: &str =
    "[prices.\"gpt-4o-mini\"]\ninput_per_million = 1.0\noutput_per_million = 1.0\n";

fn guarded() -> String {
    admin_toml(&format!(
        "{PRICES}[modules.cost_guard]\nenabled = true\nmax_request_nanos = 500000\nmax_stream_nanos = 60000\n"
    ))
}

fn chat(max_tokens: u64, stream: bool) -> String {
    json!({"model": "gpt-4o-mini", "max_tokens": max_tokens, "stream": stream,
        "messages": [{"role": "user", "content": "Tell me a long story"}]})
    .to_string()
}

fn messages(max_tokens: u64, stream: bool) -> String {
    json!({"model": "gpt-4o-mini", "max_tokens": max_tokens, "stream": stream,
        "messages": [{"role": "user", "content": "Tell me a long story"}]})
    .to_string()
}

#[tokio::test]
async fn a_request_estimated_over_the_ceiling_is_refused_in_the_client_s_shape() {
    let h = Harness::start_with(&guarded()).await;
    let answer = h
        .client
        .post("/v1/chat/completions", &chat(1000, false))
        .await;
    assert_eq!(answer.status, 400, "{}", answer.text());
    let error = &answer.json()["error"];
    assert_eq!(error["code"], "cost_limit_exceeded");
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("max_request_nanos = 500000"), "{message}");
    assert!(message.contains("$0.000500"), "{message}");

    let answer = h.client.post("/v1/messages", &messages(1000, false)).await;
    assert_eq!(answer.status, 400, "{}", answer.text());
    let body = answer.json();
    assert_eq!(body["type"], "error", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("max_request_nanos")
    );
    assert_eq!(h.mock.request_count(), 0, "nothing reached the provider");

    // Under the ceiling: answered.
    let answer = h
        .client
        .post("/v1/chat/completions", &chat(100, false))
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let traces = h.traces(3).await;
    assert_eq!(
        traces[0].error_class.as_deref(),
        Some("cost_limit_exceeded")
    );
    assert_eq!(traces[2].status, 200);
}

/// 800 characters in 20 chunks of 40 (about 10 tokens, 10000 nano-dollars, each).
fn long_stream() -> Behavior {
    let content: String = (0..20).map(|i| format!("chunk{i:02} ").repeat(5)).collect();
    Behavior {
        content: Some(content),
        chunks: Some(20),
        ..Behavior::default()
    }
}

#[tokio::test]
async fn a_stream_passing_its_ceiling_is_cut_with_an_error_event_in_each_format() {
    let h = Harness::start_with(&guarded()).await;
    h.mock.push(long_stream());
    let answer = h
        .client
        .post("/v1/chat/completions", &chat(200, true))
        .await;
    assert_eq!(answer.status, 200);
    let body = answer.text();
    let data = sse_data(&body);
    let last: Value = serde_json::from_str(data.last().unwrap()).unwrap();
    assert_eq!(last["error"]["code"], "cost_limit_exceeded", "{body}");
    assert!(
        last["error"]["message"]
            .as_str()
            .unwrap()
            .contains("max_stream_nanos = 60000")
    );
    assert!(body.contains("chunk00"), "{body}");
    assert!(!body.contains("chunk19"), "the stream went on: {body}");
    assert!(!body.contains("[DONE]"), "{body}");

    h.mock.push(long_stream());
    let answer = h.client.post("/v1/messages", &messages(200, true)).await;
    let body = answer.text();
    assert!(body.contains("event: error"), "{body}");
    assert!(body.contains("max_stream_nanos"), "{body}");
    assert!(!body.contains("chunk19"), "{body}");
    assert!(!body.contains("message_stop"), "{body}");

    // A short stream stays under the ceiling and ends cleanly.
    let answer = h
        .client
        .post("/v1/chat/completions", &chat(200, true))
        .await;
    assert!(answer.text().contains("[DONE]"), "{}", answer.text());
}

#[tokio::test]
async fn config_errors_name_the_field_and_a_toggle_applies_next_request_and_is_audited() {
    let h = Harness::start_with(&admin_toml(PRICES)).await;
    assert!(!listed_enabled(&h, NAME).await, "disabled by default");
    assert_config_refused(
        &h,
        NAME,
        json!({"max_request_nanos": 0}),
        "max_request_nanos",
    )
    .await;
    assert_config_refused(
        &h,
        NAME,
        json!({"models": {"gpt-4o-mini": {"max_stream_nanos": -5}}}),
        "models.gpt-4o-mini.max_stream_nanos",
    )
    .await;
    assert_config_refused(&h, NAME, json!({"max_request_usd": 1}), "max_request_usd").await;

    assert_eq!(
        h.client
            .post("/v1/chat/completions", &chat(1000, false))
            .await
            .status,
        200
    );
    let answer = change(
        &h,
        NAME,
        json!({"enabled": true, "config": {"models": {"gpt-4o-mini": {"max_request_nanos": 200000}}}}),
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let refused = h
        .client
        .post("/v1/chat/completions", &chat(1000, false))
        .await;
    assert_eq!(refused.status, 400);
    assert!(
        refused
            .text()
            .contains("models.gpt-4o-mini.max_request_nanos")
    );
    assert_eq!(
        change(&h, NAME, json!({"enabled": false})).await.status,
        200
    );
    assert_eq!(
        h.client
            .post("/v1/chat/completions", &chat(1000, false))
            .await
            .status,
        200
    );
    let entries = audit_entries(&h, NAME).await;
    assert_eq!(entries.len(), 2);
    assert_eq!(
        entries[0]["details"]["after"]["config"]["models"]["gpt-4o-mini"]["max_request_nanos"],
        200000
    );
}
