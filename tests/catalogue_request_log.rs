//! `request_log` over real sockets: bodies are stored with the trace row redacted (personal data
//! and secrets never reach the database), for complete and streamed answers; only opted-in keys
//! (listed, or by key metadata) are logged; it wins over trace's older unredacted switch; config
//! errors name the field; a toggle applies to the next request and is audited.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::catalogue::{admin_toml, assert_config_refused, audit_entries, change, listed_enabled};
use common::grants::GRANTS;
use common::{Harness, chat};
use hyper::Method;
use mock_upstream::Behavior;
use serde_json::json;

const NAME: &str = "request_log";
const EMAIL: &str = "anna.k@example.com";
const AWS_KEY: &str = "AKIAIOSFODNN7EXAMPLX";

fn leaky_answer() -> Behavior {
    Behavior {
        content: Some(format!("Sure, I wrote to {EMAIL} for you.")),
        chunks: Some(3),
        ..Behavior::default()
    }
}

#[tokio::test]
async fn bodies_are_stored_redacted_for_complete_and_streamed_answers() {
    let h = Harness::start_with(&admin_toml(
        "[modules.request_log]\nenabled = true\ncapture = \"all\"\n",
    ))
    .await;
    let ask = format!("Mail {EMAIL} my key {AWS_KEY}");
    for stream in [false, true] {
        h.mock.push(leaky_answer());
        let answer = h
            .client
            .post("/v1/chat/completions", &chat("gpt-4o-mini", &ask, stream))
            .await;
        assert_eq!(answer.status, 200);
        // The client gets the answer as it was: redaction is for storage only.
        assert!(
            answer.text().contains(EMAIL) || answer.text().contains("anna.k@"),
            "{}",
            answer.text()
        );
    }
    for row in h.traces(2).await {
        let request = row.request_body.clone().unwrap();
        let response = row.response_body.clone().unwrap();
        for body in [&request, &response] {
            assert!(!body.contains(EMAIL), "email stored: {body}");
            assert!(!body.contains(AWS_KEY), "key stored: {body}");
        }
        assert!(
            request.contains("[EMAIL_1]") && request.contains("gpt-4o-mini"),
            "{request}"
        );
        assert!(response.contains("[EMAIL_1]"), "{response}");
    }
}

fn grant_with(key: &str, metadata: serde_json::Value) -> String {
    json!({"key": key, "limits": {}, "metadata": metadata}).to_string()
}

#[tokio::test]
async fn an_address_split_between_two_stream_events_is_still_redacted() {
    let h = Harness::start_with(&admin_toml(
        "[modules.request_log]\nenabled = true\ncapture = \"all\"\n",
    ))
    .await;
    // 30 characters in 6 chunks of 5: the address spans several events.
    h.mock.push(Behavior {
        content: Some("Mail anna.k@example.com today!".into()),
        chunks: Some(6),
        ..Behavior::default()
    });
    let answer = h
        .client
        .post("/v1/chat/completions", &chat("gpt-4o-mini", "who?", true))
        .await;
    assert_eq!(answer.status, 200);
    let row = &h.traces(1).await[0];
    let response = row.response_body.as_deref().unwrap();
    assert!(
        !response.contains("example.com") && !response.contains("anna.k"),
        "{response}"
    );
    assert!(response.contains("[EMAIL_1]"), "{response}");
}

#[tokio::test]
async fn only_opted_in_keys_are_logged() {
    let toml = admin_toml("[modules.request_log]\nenabled = true\nkeys = [\"k-listed\"]\n");
    let h = Harness::start_with_modules(&toml, &[&GRANTS]).await;
    let body = chat("gpt-4o-mini", "hello", false);
    for (key, metadata) in [
        ("k-listed", json!({})),
        ("k-meta", json!({"request_log": "on"})),
        ("k-other", json!({"request_log": "off"})),
    ] {
        let header = grant_with(key, metadata);
        let answer = h
            .client
            .call(
                Method::POST,
                "/v1/chat/completions",
                &body,
                &[("x-test-grant", &header)],
            )
            .await;
        assert_eq!(answer.status, 200);
    }
    // Without a key at all: not opted in.
    h.client.post("/v1/chat/completions", &body).await;
    let rows = h.traces(4).await;
    let logged: Vec<(Option<String>, bool)> = rows
        .iter()
        .map(|r| (r.key_id.clone(), r.request_body.is_some()))
        .collect();
    assert_eq!(
        logged,
        [
            (Some("k-listed".into()), true),
            (Some("k-meta".into()), true),
            (Some("k-other".into()), false),
            (None, false)
        ]
    );
    assert!(
        rows[0]
            .response_body
            .as_deref()
            .unwrap()
            .contains("Hello from the mock upstream.")
    );
}

#[tokio::test]
async fn the_redacted_log_wins_over_trace_s_older_switch() {
    let h = Harness::start_with(&admin_toml(
        "[modules.trace]\ncapture_bodies = true\n[modules.request_log]\nenabled = true\ncapture = \"all\"\n",
    ))
    .await;
    h.client
        .post(
            "/v1/chat/completions",
            &chat("gpt-4o-mini", &format!("to {EMAIL}"), false),
        )
        .await;
    let row = &h.traces(1).await[0];
    let request = row.request_body.as_deref().unwrap();
    assert!(
        !request.contains(EMAIL) && request.contains("[EMAIL_1]"),
        "{request}"
    );
}

#[tokio::test]
async fn config_errors_name_the_field_and_a_toggle_applies_next_request_and_is_audited() {
    let h = Harness::start_with(&admin_toml("")).await;
    assert!(!listed_enabled(&h, NAME).await, "disabled by default");
    assert_config_refused(
        &h,
        NAME,
        json!({"max_body_capture_bytes": 0}),
        "max_body_capture_bytes",
    )
    .await;
    assert_config_refused(&h, NAME, json!({"capture": "everything"}), "capture").await;
    assert_config_refused(&h, NAME, json!({"keys": ["k", ""]}), "keys[1]").await;

    let body = chat("gpt-4o-mini", &format!("to {EMAIL}"), false);
    h.client.post("/v1/chat/completions", &body).await;
    assert!(h.traces(1).await[0].request_body.is_none());
    let answer = change(
        &h,
        NAME,
        json!({"enabled": true, "config": {"capture": "all", "max_body_capture_bytes": 64}}),
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    h.client.post("/v1/chat/completions", &body).await;
    let row = &h.traces(2).await[1];
    let request = row.request_body.as_deref().unwrap();
    assert!(request.len() <= 64 + 16, "cut at the cap: {request}");
    assert!(!request.contains(EMAIL), "{request}");
    assert_eq!(
        change(&h, NAME, json!({"enabled": false})).await.status,
        200
    );
    h.client.post("/v1/chat/completions", &body).await;
    assert!(h.traces(3).await[2].request_body.is_none());
    let entries = audit_entries(&h, NAME).await;
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0]["details"]["after"]["config"]["capture"], "all");
}
