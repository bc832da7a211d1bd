//! `defaults_and_overrides` over real sockets: defaults fill what the client left out, forced
//! values replace the client's, stripped parameters never reach the provider and the system
//! prompt goes first, for a Chat client, a Messages client translated to OpenAI and a Messages
//! client passed natively to Anthropic; rules by key; config errors name the field; a toggle
//! takes effect on the next request and lands in the ledger.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::catalogue::{admin_toml, assert_config_refused, audit_entries, change, listed_enabled};
use common::grants::{GRANTS, grant};
use common::{Harness, chat};
use hyper::Method;
use mock_upstream::MockUpstream;
use serde_json::{Value, json};

const NAME: &str = "defaults_and_overrides";

const RULES: &str = r#"
[modules.defaults_and_overrides]
enabled = true
[[modules.defaults_and_overrides.rules]]
defaults = { temperature = 0.2, max_tokens = 64 }
force = { top_p = 0.5 }
strip = ["logit_bias", "top_k"]
system_prompt = "Answer in French."
[[modules.defaults_and_overrides.rules]]
keys = ["k-strict"]
force = { temperature = 0 }
"#;

/// The proxy with `anthropic` on the harness's mock and `openai` on the returned one.
async fn start(extra: &str) -> (Harness, MockUpstream) {
    let claude = MockUpstream::start().await.unwrap();
    let openai = MockUpstream::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let toml = admin_toml(&format!(
        "[providers.anthropic]\nbase_url = \"{}\"\napi_key = \"sk-ant-test-0123456789\"\n{extra}",
        claude.base_url()
    ));
    let config = common::config_for(&toml, &openai.base_url(), &dir);
    (
        Harness::start_on_with(config, claude, dir, &[&GRANTS]).await,
        openai,
    )
}

fn last_body(mock: &MockUpstream) -> Value {
    mock.requests().last().map(|r| r.body.clone()).unwrap()
}

#[tokio::test]
async fn chat_and_messages_clients_get_defaults_forced_values_strips_and_the_system_prompt() {
    let (h, openai) = start(RULES).await;
    // Chat: the client's temperature stays, max_tokens is filled, top_p forced, logit_bias gone.
    let body = json!({"model": "gpt-4o-mini", "temperature": 0.9, "top_p": 1,
        "logit_bias": {"50256": -100}, "messages": [{"role": "user", "content": "hi"}]});
    let answer = h
        .client
        .post("/v1/chat/completions", &body.to_string())
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let sent = last_body(&openai);
    assert_eq!(sent["temperature"], 0.9);
    assert_eq!(sent["max_tokens"], 64);
    assert_eq!(sent["top_p"], 0.5);
    assert!(sent.get("logit_bias").is_none(), "{sent}");
    assert_eq!(sent["messages"][0]["role"], "system");
    assert_eq!(sent["messages"][0]["content"], "Answer in French.");
    assert_eq!(sent["messages"][1]["content"], "hi");

    // Messages, translated for OpenAI: the canonical request carries the edits.
    let messages = json!({"model": "gpt-4o-mini", "max_tokens": 100, "top_k": 5,
        "system": "Be kind.", "messages": [{"role": "user", "content": "hello"}]});
    let answer = h.client.post("/v1/messages", &messages.to_string()).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let sent = last_body(&openai);
    assert_eq!(sent["messages"][0]["content"], "Answer in French.");
    assert_eq!(sent["messages"][1]["content"], "Be kind.");
    assert_eq!(sent["max_completion_tokens"], 100, "{sent}");
    assert_eq!(sent["top_p"], 0.5);
    assert_eq!(sent["temperature"], 0.2);
    assert!(sent.get("top_k").is_none(), "{sent}");

    // Messages, native to Anthropic: the client's own body carries them in its own names.
    let mut native = messages.clone();
    native["model"] = json!("claude-sonnet-4-5");
    let answer = h.client.post("/v1/messages", &native.to_string()).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let sent = last_body(&h.mock);
    assert_eq!(sent["system"], "Answer in French.\n\nBe kind.", "{sent}");
    assert_eq!(sent["top_p"], 0.5);
    assert_eq!(sent["temperature"], 0.2);
    assert_eq!(sent["max_tokens"], 100);
    assert!(sent.get("top_k").is_none(), "{sent}");
}

#[tokio::test]
async fn a_rule_for_one_key_leaves_other_keys_alone() {
    let (h, openai) = start(RULES).await;
    let body = json!({"model": "gpt-4o-mini", "temperature": 0.9,
        "messages": [{"role": "user", "content": "hi"}]})
    .to_string();
    for (key, want) in [("k-strict", json!(0)), ("k-other", json!(0.9))] {
        let header = grant(key, json!({}), None);
        let answer = h
            .client
            .call(
                Method::POST,
                "/v1/chat/completions",
                &body,
                &[("x-test-grant", &header)],
            )
            .await;
        assert_eq!(answer.status, 200, "{}", answer.text());
        assert_eq!(last_body(&openai)["temperature"], want, "key {key}");
    }
}

#[tokio::test]
async fn config_errors_name_the_field_and_a_toggle_applies_next_request_and_is_audited() {
    let (h, openai) = start("").await;
    assert!(!listed_enabled(&h, NAME).await, "disabled by default");
    assert_config_refused(
        &h,
        NAME,
        json!({"rules": [{"force": {"model": "x"}}]}),
        "rules[0].force.model",
    )
    .await;
    assert_config_refused(
        &h,
        NAME,
        json!({"rules": [{"strip": ["seed"]}, {"keys": ["k"]}]}),
        "rules[1]",
    )
    .await;
    assert_config_refused(
        &h,
        NAME,
        json!({"rules": [{"sytem_prompt": "x"}]}),
        "sytem_prompt",
    )
    .await;

    h.client
        .post("/v1/chat/completions", &chat("gpt-4o-mini", "hi", false))
        .await;
    assert!(last_body(&openai).get("seed").is_none());
    let answer = change(
        &h,
        NAME,
        json!({"enabled": true, "config": {"rules": [{"force": {"seed": 7}}]}}),
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    h.client
        .post("/v1/chat/completions", &chat("gpt-4o-mini", "hi", false))
        .await;
    assert_eq!(last_body(&openai)["seed"], 7);
    assert!(listed_enabled(&h, NAME).await);

    assert_eq!(
        change(&h, NAME, json!({"enabled": false})).await.status,
        200
    );
    h.client
        .post("/v1/chat/completions", &chat("gpt-4o-mini", "hi", false))
        .await;
    assert!(last_body(&openai).get("seed").is_none());

    let entries = audit_entries(&h, NAME).await;
    assert_eq!(entries.len(), 2, "{entries:?}");
    assert_eq!(entries[0]["details"]["after"]["enabled"], true);
    assert_eq!(
        entries[0]["details"]["after"]["config"]["rules"][0]["force"]["seed"],
        7
    );
    assert_eq!(entries[1]["details"]["after"]["enabled"], false);
}
