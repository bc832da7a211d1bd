//! Tests of the Messages request reader (`request.rs`).

use super::*;
use crate::wire::translate::assert_json_eq;

const STRICT: TranslateOptions = TranslateOptions {
    drop_unsupported: false,
};

fn fixture(text: &str) -> Value {
    serde_json::from_str(text).expect("fixture is JSON")
}

fn inbound() -> Value {
    fixture(include_str!(
        "../../../tests/fixtures/anthropic/inbound_messages_request.json"
    ))
}

#[test]
fn inbound_request_matches_golden_canonical_request() {
    let expected = fixture(include_str!(
        "../../../tests/fixtures/anthropic/inbound_chat_request.json"
    ));
    let got = to_chat(&inbound(), &STRICT).expect("translates");
    assert_json_eq(&got, &expected);
}

#[test]
fn server_tools_are_unsupported_by_name() {
    let req = json!({
        "model": "claude-opus-4-8", "max_tokens": 10,
        "messages": [{"role": "user", "content": "hi"}],
        "tools": [{"type": "web_search_20250305", "name": "web_search", "max_uses": 5}]
    });
    assert!(matches!(
        to_chat(&req, &STRICT),
        Err(TranslateError::Unsupported { ref param, .. }) if param == "tools[0]"
    ));
    let got = to_chat(
        &req,
        &TranslateOptions {
            drop_unsupported: true,
        },
    )
    .expect("dropped");
    assert!(got.get("tools").is_none());
}

#[test]
fn adaptive_thinking_takes_the_effort() {
    let req = json!({
        "model": "claude-opus-4-8", "max_tokens": 10,
        "messages": [{"role": "user", "content": "hi"}],
        "thinking": {"type": "adaptive"}, "output_config": {"effort": "medium"}
    });
    let got = to_chat(&req, &STRICT).expect("ok");
    assert_eq!(got["reasoning_effort"], "medium");
    assert!(got.get("x_thinking_budget").is_none());
}

#[test]
fn effort_without_thinking_is_unsupported() {
    let req = json!({
        "model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}],
        "output_config": {"effort": "low"}
    });
    assert!(matches!(
        to_chat(&req, &STRICT),
        Err(TranslateError::Unsupported { ref param, .. }) if param == "output_config.effort"
    ));
}

#[test]
fn stream_asks_for_usage() {
    let req = json!({"model": "m", "max_tokens": 5, "stream": true, "messages": [{"role": "user", "content": "hi"}]});
    let got = to_chat(&req, &STRICT).expect("ok");
    assert_eq!(got["stream_options"], json!({"include_usage": true}));
}

#[test]
fn thinking_block_in_a_user_turn_is_invalid() {
    let req = json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": [
        {"type": "thinking", "thinking": "x", "signature": "s"}
    ]}]});
    assert!(matches!(
        to_chat(&req, &STRICT),
        Err(TranslateError::Invalid { ref param, .. }) if param == "messages[0].content[0]"
    ));
}
