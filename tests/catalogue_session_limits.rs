//! `session_limits` over real sockets: a looping agent's session is stopped at its request,
//! token and cost ceilings with a 429 naming the limit (Chat and Messages shapes) while other
//! sessions and requests without a session go on; the session is read from the header or the
//! body's metadata; counts reset with the window; config errors name the field; a toggle applies
//! to the next request and is audited.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::catalogue::{admin_toml, assert_config_refused, audit_entries, change, listed_enabled};
use common::{Answer, Harness, chat};
use hyper::Method;
use serde_json::json;

const NAME: &str = "session_limits";

async fn in_session(h: &Harness, path: &str, body: &str, session: Option<&str>) -> Answer {
    let headers: Vec<(&str, &str)> = session
        .map(|s| ("x-stockyard-session", s))
        .into_iter()
        .collect();
    h.client.call(Method::POST, path, body, &headers).await
}

fn messages() -> String {
    json!({"model": "gpt-4o-mini", "max_tokens": 50,
        "messages": [{"role": "user", "content": "again"}]})
    .to_string()
}

#[tokio::test]
async fn a_session_is_stopped_at_its_request_ceiling_and_others_go_on() {
    let h = Harness::start_with(&admin_toml(
        "[modules.session_limits]\nenabled = true\nmax_requests = 3\n",
    ))
    .await;
    let body = chat("gpt-4o-mini", "loop", false);
    for _ in 0..3 {
        let answer = in_session(&h, "/v1/chat/completions", &body, Some("agent-1")).await;
        assert_eq!(answer.status, 200, "{}", answer.text());
    }
    let refused = in_session(&h, "/v1/chat/completions", &body, Some("agent-1")).await;
    assert_eq!(refused.status, 429, "{}", refused.text());
    let error = &refused.json()["error"];
    assert_eq!(error["code"], "rate_limit_exceeded");
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("\"agent-1\""), "{message}");
    assert!(
        message.contains("modules.session_limits.max_requests"),
        "{message}"
    );
    assert!(refused.header("retry-after").is_some());

    // The Messages shape, same session.
    let refused = in_session(&h, "/v1/messages", &messages(), Some("agent-1")).await;
    assert_eq!(refused.status, 429);
    assert_eq!(refused.json()["type"], "error");
    assert_eq!(
        refused.json()["error"]["type"],
        "rate_limit_error",
        "{}",
        refused.text()
    );

    // Another session, and a request with no session, are not limited.
    assert_eq!(
        in_session(&h, "/v1/chat/completions", &body, Some("agent-2"))
            .await
            .status,
        200
    );
    for _ in 0..4 {
        assert_eq!(
            in_session(&h, "/v1/chat/completions", &body, None)
                .await
                .status,
            200
        );
    }
    assert_eq!(
        h.mock.request_count(),
        8,
        "refused requests never reached the provider"
    );
}

#[tokio::test]
async fn token_and_cost_ceilings_stop_a_session_named_in_metadata() {
    let h = Harness::start_with(&admin_toml(
        "[prices.\"gpt-4o-mini\"]\ninput_per_million = 1.0\noutput_per_million = 1.0\n\
         [modules.session_limits]\nenabled = true\nmax_tokens = 1\n",
    ))
    .await;
    let body = json!({"model": "gpt-4o-mini", "metadata": {"session_id": "run-7"},
        "messages": [{"role": "user", "content": "step"}]})
    .to_string();
    assert_eq!(
        h.client.post("/v1/chat/completions", &body).await.status,
        200
    );
    let refused = h.client.post("/v1/chat/completions", &body).await;
    assert_eq!(refused.status, 429, "{}", refused.text());
    let message = refused.json()["error"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        message.contains("\"run-7\"") && message.contains("max_tokens"),
        "{message}"
    );

    let answer = change(
        &h,
        NAME,
        json!({"config": {"max_tokens": null, "max_cost_nanos": 1}}),
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let body = body.replace("run-7", "run-8");
    assert_eq!(
        h.client.post("/v1/chat/completions", &body).await.status,
        200
    );
    let refused = h.client.post("/v1/chat/completions", &body).await;
    assert_eq!(refused.status, 429, "{}", refused.text());
    assert!(
        refused.text().contains("max_cost_nanos"),
        "{}",
        refused.text()
    );
}

#[tokio::test]
async fn the_count_starts_again_in_the_next_window() {
    let h = Harness::start_with(&admin_toml(
        "[modules.session_limits]\nenabled = true\nmax_requests = 1\nwindow_ms = 1000\n",
    ))
    .await;
    let body = chat("gpt-4o-mini", "tick", false);
    // Start just after a window boundary, so both requests fall in one window.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    if now % 1000 > 600 {
        tokio::time::sleep(Duration::from_millis(1000 - now % 1000 + 10)).await;
    }
    assert_eq!(
        in_session(&h, "/v1/chat/completions", &body, Some("s"))
            .await
            .status,
        200
    );
    assert_eq!(
        in_session(&h, "/v1/chat/completions", &body, Some("s"))
            .await
            .status,
        429
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        in_session(&h, "/v1/chat/completions", &body, Some("s"))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn config_errors_name_the_field_and_a_toggle_applies_next_request_and_is_audited() {
    let h = Harness::start_with(&admin_toml("")).await;
    assert!(!listed_enabled(&h, NAME).await, "disabled by default");
    assert_config_refused(&h, NAME, json!({"window_ms": 10}), "window_ms").await;
    assert_config_refused(&h, NAME, json!({"max_requests": 0}), "max_requests").await;
    assert_config_refused(&h, NAME, json!({"header": "not a header"}), "header").await;

    let body = chat("gpt-4o-mini", "loop", false);
    for _ in 0..2 {
        assert_eq!(
            in_session(&h, "/v1/chat/completions", &body, Some("a"))
                .await
                .status,
            200
        );
    }
    let answer = change(
        &h,
        NAME,
        json!({"enabled": true, "config": {"max_requests": 1}}),
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(
        in_session(&h, "/v1/chat/completions", &body, Some("a"))
            .await
            .status,
        200
    );
    assert_eq!(
        in_session(&h, "/v1/chat/completions", &body, Some("a"))
            .await
            .status,
        429
    );
    assert_eq!(
        change(&h, NAME, json!({"enabled": false})).await.status,
        200
    );
    assert_eq!(
        in_session(&h, "/v1/chat/completions", &body, Some("a"))
            .await
            .status,
        200
    );
    let entries = audit_entries(&h, NAME).await;
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0]["details"]["after"]["config"]["max_requests"], 1);
}
