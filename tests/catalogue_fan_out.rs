//! The `fan_out` module over real sockets: a fan-out name answers with the first successful
//! answer (the slower call still finishes, traced and priced) or with every answer as `choices`;
//! a failed member is named and left out; a stream is refused naming `stream`; config errors
//! name the field; a runtime toggle needs no restart and is in the ledger.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{ADMIN_KEY, Harness, chat};
use hyper::Method;
use mock_upstream::{Behavior, MockUpstream};
use serde_json::json;

const GROUPS: &str = "[modules.tags]\nenabled = true\n[modules.fan_out]\nenabled = true\n\
[modules.fan_out.groups.duo]\nmodels = [\"gpt-4o-mini\", \"claude-sonnet-4-5\"]\n\
[modules.fan_out.groups.both]\nmodels = [\"gpt-4o-mini\", \"claude-sonnet-4-5\"]\nmode = \"all\"\n";

/// The proxy with `openai` on the harness's mock and `anthropic` on another (returned).
async fn start(extra: &str) -> (Harness, MockUpstream) {
    let openai = MockUpstream::start().await.unwrap();
    let claude = MockUpstream::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "[admin]\nkey = \"{ADMIN_KEY}\"\n[providers.anthropic]\nbase_url = \"{}\"\napi_key = \"sk-ant-test-0123456789\"\n{extra}",
        claude.base_url()
    );
    let config = common::config_for(&toml, &openai.base_url(), &dir);
    (Harness::start_on(config, openai, dir).await, claude)
}

#[tokio::test]
async fn first_mode_answers_with_the_fastest_and_every_call_is_traced_and_priced() {
    let (h, claude) = start(GROUPS).await;
    claude.set_default(Behavior {
        headers_delay_ms: 700,
        ..Behavior::default()
    });
    let started = std::time::Instant::now();
    let answer = h
        .client
        .call(
            Method::POST,
            "/v1/chat/completions",
            &chat("duo", "hi", false),
            &[("x-stockyard-tags", "exp-1")],
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert!(
        started.elapsed() < Duration::from_millis(650),
        "did not wait for the slow call"
    );
    assert_eq!(answer.json()["model"], "gpt-4o-mini");
    assert_eq!(answer.header("x-stockyard-fan-out"), Some("gpt-4o-mini"));
    assert_eq!(h.mock.request_count(), 1);

    // The slow call still finishes: three rows, the client's and one per call.
    let rows = h.traces(3).await;
    let client = rows.iter().find(|r| r.internal_caller.is_none()).unwrap();
    assert_eq!(client.answered_by.as_deref(), Some("fan_out"));
    assert_eq!(client.requested_model, "duo");
    assert_eq!(client.cost_nanos, 0, "priced once, on the calls");
    let mut calls: Vec<_> = rows
        .iter()
        .filter(|r| r.internal_caller.as_deref() == Some("fan_out"))
        .collect();
    calls.sort_by_key(|r| r.requested_model.clone());
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].requested_model, "claude-sonnet-4-5");
    assert_eq!(calls[0].provider.as_deref(), Some("anthropic"));
    assert_eq!(calls[1].requested_model, "gpt-4o-mini");
    for call in calls {
        // The calls carry the client's tags, so their cost counts under them.
        assert_eq!(call.tags.as_deref(), Some(r#"["exp-1"]"#));
        assert_eq!(call.status, 200);
        assert!(call.price_known && call.cost_nanos > 0, "{call:?}");
    }
    assert_eq!(claude.request_count(), 1);
}

#[tokio::test]
async fn all_mode_answers_every_model_as_choices_and_names_a_failed_one() {
    let (h, claude) = start(GROUPS).await;
    let answer = h
        .client
        .post("/v1/chat/completions", &chat("both", "hi", false))
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let body = answer.json();
    assert_eq!(body["model"], "both");
    let choices = body["choices"].as_array().unwrap();
    assert_eq!(choices.len(), 2);
    assert_eq!(choices[0]["index"], 0);
    assert_eq!(choices[0]["model"], "gpt-4o-mini");
    assert_eq!(choices[1]["index"], 1);
    assert_eq!(choices[1]["model"], "claude-sonnet-4-5");
    assert!(choices[1]["message"]["content"].as_str().unwrap().len() > 1);
    let usage = &body["usage"];
    assert_eq!(
        usage["total_tokens"].as_u64().unwrap(),
        usage["prompt_tokens"].as_u64().unwrap() + usage["completion_tokens"].as_u64().unwrap()
    );
    assert_eq!(
        answer.header("x-stockyard-fan-out"),
        Some("gpt-4o-mini,claude-sonnet-4-5")
    );

    // A member that fails is left out and named.
    claude.set_default(Behavior {
        status: Some(400),
        ..Behavior::default()
    });
    let answer = h
        .client
        .post("/v1/chat/completions", &chat("both", "hi", false))
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.json()["choices"].as_array().unwrap().len(), 1);
    assert_eq!(
        answer.header("x-stockyard-fan-out-failed"),
        Some("claude-sonnet-4-5")
    );

    // Every member failing: the first member's error.
    h.mock.set_default(Behavior {
        status: Some(400),
        ..Behavior::default()
    });
    let answer = h
        .client
        .post("/v1/chat/completions", &chat("duo", "hi", false))
        .await;
    assert_eq!(answer.status, 400, "{}", answer.text());
}

#[tokio::test]
async fn a_stream_is_refused_naming_stream_and_all_needs_chat_completions() {
    let (h, claude) = start(GROUPS).await;
    let answer = h
        .client
        .post("/v1/chat/completions", &chat("duo", "hi", true))
        .await;
    assert_eq!(answer.status, 400, "{}", answer.text());
    assert_eq!(answer.json()["error"]["param"], "stream");

    let messages = json!({"model": "both", "max_tokens": 20,
        "messages": [{"role": "user", "content": "hi"}]});
    let answer = h.client.post("/v1/messages", &messages.to_string()).await;
    assert_eq!(answer.status, 400, "{}", answer.text());
    assert_eq!(answer.json()["type"], "error");

    // `first` serves a Messages client in its own format.
    let messages = json!({"model": "duo", "max_tokens": 20,
        "messages": [{"role": "user", "content": "hi"}]});
    let answer = h.client.post("/v1/messages", &messages.to_string()).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.json()["type"], "message");
    assert!(h.mock.request_count() + claude.request_count() >= 1);
}

#[tokio::test]
async fn fan_out_toggles_at_runtime_with_a_ledger_entry_and_config_errors_name_the_field() {
    let (h, _claude) = start("").await;
    let body = chat("duo", "hi", false);
    assert_eq!(
        h.client.post("/v1/chat/completions", &body).await.status,
        404
    );

    let bad = json!({"enabled": true, "config": {"groups": {"duo": {"models": ["gpt-4o-mini"]}}}});
    let answer = h
        .client
        .admin(Method::PUT, "/admin/modules/fan_out", &bad.to_string())
        .await;
    assert_eq!(answer.status, 400);
    let message = answer.json()["error"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        message.contains("modules.fan_out: groups.duo.models"),
        "{message}"
    );

    let good = json!({"enabled": true, "config": {"groups": {"duo":
        {"models": ["gpt-4o-mini", "gpt-4o"], "mode": "all"}}}});
    let answer = h
        .client
        .admin(Method::PUT, "/admin/modules/fan_out", &good.to_string())
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let answer = h.client.post("/v1/chat/completions", &body).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let models: Vec<String> = answer.json()["choices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["model"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(models, ["gpt-4o-mini", "gpt-4o"]);
    assert_eq!(h.mock.request_count(), 2);

    let audit = h.client.admin(Method::GET, "/admin/audit", "").await.json();
    let entries = audit["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["target"], "fan_out");
    assert_eq!(entries[0]["details"]["after"]["enabled"], true);
}
