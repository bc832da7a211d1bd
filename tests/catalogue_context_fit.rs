//! The `context_fit` module over real sockets: a conversation over the model's window reaches
//! the mock trimmed (oldest turns dropped after the system prompt, a tool call with its result
//! as one; or the longest message cut), for Chat, Messages (translated and native) and
//! Responses clients; `refuse` answers 400 naming the window and calls nothing; config errors
//! name the field; a runtime toggle needs no restart and is in the ledger.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{ADMIN_KEY, Harness};
use hyper::Method;
use mock_upstream::MockUpstream;
use serde_json::{Value, json};

fn admin_toml(extra: &str) -> String {
    format!("[admin]\nkey = \"{ADMIN_KEY}\"\n{extra}")
}

fn fit(strategy: &str) -> String {
    format!(
        "[modules.context_fit]\nenabled = true\nstrategy = \"{strategy}\"\n\
         context_windows = {{ \"gpt-4o-mini\" = 200, \"claude-sonnet-4-5\" = 200 }}\n"
    )
}

/// About 60 tokens of text, distinct per `n`.
fn filler(n: usize) -> String {
    (0..60)
        .map(|i| format!("w{n}x{i}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A system prompt, three old turns (one with a tool call and its result), and a short question.
fn long_chat() -> Value {
    json!({"model": "gpt-4o-mini", "messages": [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": filler(1)},
        {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function",
            "function": {"name": "lookup", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": filler(2)},
        {"role": "assistant", "content": "Found it."},
        {"role": "user", "content": filler(3)},
        {"role": "assistant", "content": "Sure."},
        {"role": "user", "content": "And the answer?"},
    ]})
}

fn roles(body: &Value) -> Vec<String> {
    body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn drop_oldest_keeps_the_system_prompt_the_question_and_tool_pairs_whole() {
    let h = Harness::start_with(&admin_toml(&fit("drop_oldest"))).await;
    let answer = h
        .client
        .post("/v1/chat/completions", &long_chat().to_string())
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let fitted = answer
        .header("x-stockyard-context-fit")
        .unwrap()
        .to_string();
    assert!(fitted.starts_with("dropped "), "{fitted}");
    let sent = &h.mock.requests()[0].body;
    let roles = roles(sent);
    assert_eq!(roles.first().map(String::as_str), Some("system"));
    assert_eq!(
        sent["messages"].as_array().unwrap().last().unwrap()["content"],
        "And the answer?"
    );
    // A tool result never goes without its call (nor the reverse).
    let calls = sent.to_string().matches("call_1").count();
    assert!(calls == 0 || calls == 2, "{sent}");
    // The first turn after the system prompt is a user's.
    assert_eq!(roles.get(1).map(String::as_str), Some("user"), "{roles:?}");
    assert!(roles.len() < 8, "{roles:?}");
    // The mock counts prompt tokens by its own rule; it saw far fewer words than were sent.
    assert!(
        !sent.to_string().contains("w1x0"),
        "the oldest turn went first"
    );
}

#[tokio::test]
async fn truncate_longest_cuts_the_biggest_message() {
    let h = Harness::start_with(&admin_toml(&fit("truncate_longest"))).await;
    let body = json!({"model": "gpt-4o-mini", "messages": [
        {"role": "user", "content": format!("{} {} {}", filler(1), filler(2), filler(3))},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": "summarise"},
    ]});
    let answer = h
        .client
        .post("/v1/chat/completions", &body.to_string())
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let sent = &h.mock.requests()[0].body;
    assert_eq!(roles(sent), ["user", "assistant", "user"]);
    let first = sent["messages"][0]["content"].as_str().unwrap();
    assert!(first.starts_with("w1x0 w1x1"), "{first}");
    assert!(first.ends_with("[truncated by stockyard]"), "{first}");
    assert!(!first.contains("w3x59"), "{first}");
    assert_eq!(sent["messages"][2]["content"], "summarise");
}

#[tokio::test]
async fn refuse_answers_400_naming_the_window_and_calls_nothing() {
    let h = Harness::start_with(&admin_toml(&fit("refuse"))).await;
    let answer = h
        .client
        .post("/v1/chat/completions", &long_chat().to_string())
        .await;
    assert_eq!(answer.status, 400, "{}", answer.text());
    let error = &answer.json()["error"];
    assert_eq!(error["param"], "messages");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("context window is 200 tokens"),
        "{message}"
    );
    assert!(message.contains("gpt-4o-mini"), "{message}");
    assert_eq!(h.mock.request_count(), 0);

    // A Messages client gets the refusal in its own shape.
    let body = json!({"model": "gpt-4o-mini", "max_tokens": 10,
        "messages": [{"role": "user", "content": format!("{} {} {} {}", filler(1), filler(2), filler(3), filler(4))}]});
    let answer = h.client.post("/v1/messages", &body.to_string()).await;
    assert_eq!(answer.status, 400);
    assert_eq!(answer.json()["type"], "error");
    assert!(answer.text().contains("context window is 200 tokens"));

    // A small conversation passes untouched.
    let small = common::chat("gpt-4o-mini", "hi", false);
    assert_eq!(
        h.client.post("/v1/chat/completions", &small).await.status,
        200
    );
}

#[tokio::test]
async fn messages_and_responses_clients_are_fitted_on_the_canonical_request() {
    let h = Harness::start_with(&admin_toml(&fit("drop_oldest"))).await;
    let messages = json!({"model": "gpt-4o-mini", "max_tokens": 50, "system": "Be terse.",
    "messages": [
        {"role": "user", "content": filler(1)},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": filler(2)},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": filler(3)},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": "final question"},
    ]});
    let answer = h.client.post("/v1/messages", &messages.to_string()).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.json()["type"], "message");
    let sent = &h.mock.requests()[0].body;
    assert_eq!(sent["messages"][0]["role"], "system");
    assert!(!sent.to_string().contains("w1x0"), "{sent}");
    assert!(sent.to_string().contains("final question"));

    let responses = json!({"model": "gpt-4o-mini", "instructions": "Be terse.", "input": [
        {"role": "user", "content": filler(1)},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": filler(2)},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": filler(3)},
        {"role": "user", "content": "final question"},
    ]});
    let answer = h.client.post("/v1/responses", &responses.to_string()).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.json()["object"], "response");
    let sent = &h.mock.requests()[1].body;
    assert!(!sent.to_string().contains("w1x0"), "{sent}");
    assert!(sent.to_string().contains("final question"));
}

#[tokio::test]
async fn a_native_messages_call_gets_the_trimmed_conversation() {
    let claude = MockUpstream::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let toml = admin_toml(&format!(
        "[providers.anthropic]\nbase_url = \"{}\"\napi_key = \"sk-ant-test-0123456789\"\n{}",
        claude.base_url(),
        fit("drop_oldest")
    ));
    let openai = MockUpstream::start().await.unwrap();
    let config = common::config_for(&toml, &openai.base_url(), &dir);
    let h = Harness::start_on(config, claude, dir).await;
    let body = json!({"model": "claude-sonnet-4-5", "max_tokens": 50, "system": "Be terse.",
    "messages": [
        {"role": "user", "content": filler(1)},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": filler(2)},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": filler(3)},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": "final question"},
    ]});
    let answer = h.client.post("/v1/messages", &body.to_string()).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.json()["type"], "message");
    let sent = &h.mock.requests()[0];
    assert!(sent.path.ends_with("/messages"), "{}", sent.path);
    // Translated from the trimmed canonical request (the client's own JSON is stale now).
    assert!(
        sent.body["system"].to_string().contains("Be terse."),
        "{}",
        sent.body
    );
    assert!(!sent.body.to_string().contains("w1x0"), "{}", sent.body);
    assert!(sent.body.to_string().contains("final question"));
}

#[tokio::test]
async fn context_fit_toggles_at_runtime_with_a_ledger_entry_and_config_errors_name_the_field() {
    let h = Harness::start_with(&admin_toml("")).await;
    let body = long_chat().to_string();
    assert_eq!(
        h.client.post("/v1/chat/completions", &body).await.status,
        200
    );
    assert_eq!(
        h.mock.requests()[0].body["messages"]
            .as_array()
            .unwrap()
            .len(),
        8,
        "off by default: nothing trimmed"
    );

    let answer = h
        .client
        .admin(
            Method::PUT,
            "/admin/modules/context_fit",
            r#"{"enabled": true, "config": {"context_windows": {"gpt-4o-mini": 0}}}"#,
        )
        .await;
    assert_eq!(answer.status, 400);
    let message = answer.json()["error"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        message.contains("modules.context_fit: context_windows.gpt-4o-mini"),
        "{message}"
    );

    let answer = h
        .client
        .admin(
            Method::PUT,
            "/admin/modules/context_fit",
            r#"{"enabled": true, "config": {"strategy": "refuse", "context_windows": {"gpt-4o-mini": 200}}}"#,
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(
        h.client.post("/v1/chat/completions", &body).await.status,
        400
    );

    let audit = h.client.admin(Method::GET, "/admin/audit", "").await.json();
    let entries = audit["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["target"], "context_fit");
    assert_eq!(
        entries[0]["details"]["after"]["config"]["strategy"],
        "refuse"
    );
}

/// `cost_guard` estimates every prompt before `context_fit` runs; `context_fit` then uses that
/// count instead of counting again, but only while the prompt is unchanged: the refusal names
/// the same total with or without the earlier count, and a conversation that `responses`
/// expanded after the estimate is counted anew (else the stored turns would slip past the window).
#[tokio::test]
async fn an_earlier_prompt_count_is_reused_only_while_the_prompt_is_unchanged() {
    let guard = "[modules.cost_guard]\nenabled = true\nmax_request_nanos = 1000000000000\n";
    let alone = Harness::start_with(&admin_toml(&fit("refuse"))).await;
    let shared = Harness::start_with(&admin_toml(&format!("{}{guard}", fit("refuse")))).await;
    let mut refusals = Vec::new();
    for h in [&alone, &shared] {
        let answer = h
            .client
            .post("/v1/chat/completions", &long_chat().to_string())
            .await;
        assert_eq!(answer.status, 400, "{}", answer.text());
        refusals.push(
            answer.json()["error"]["message"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    assert_eq!(refusals[0], refusals[1]);
    assert!(
        refusals[0].starts_with("the conversation has "),
        "{}",
        refusals[0]
    );

    // About 4 tokens a word: fits on its own (about 100 tokens)...
    let words = |n: usize| filler(n).split(' ').take(25).collect::<Vec<_>>().join(" ");
    let first = json!({"model": "gpt-4o-mini", "input": words(1)});
    let answer = shared
        .client
        .post("/v1/responses", &first.to_string())
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let id = answer.json()["id"].as_str().unwrap().to_string();
    // ...and so does the next turn alone, but not the two together.
    let second = json!({"model": "gpt-4o-mini", "previous_response_id": id, "input": words(3)});
    let answer = shared
        .client
        .post("/v1/responses", &second.to_string())
        .await;
    assert_eq!(answer.status, 400, "{}", answer.text());
    let message = answer.json()["error"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        message.contains("context window is 200 tokens"),
        "{message}"
    );
    assert_eq!(shared.mock.request_count(), 1);
}
