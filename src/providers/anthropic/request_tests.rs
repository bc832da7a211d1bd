//! Tests of the Anthropic request translator (`request.rs`).

use super::*;
use crate::providers::anthropic::assert_json_eq;

fn fixture(text: &str) -> Value {
    serde_json::from_str(text).expect("fixture is JSON")
}

const STRICT: TranslateOptions = TranslateOptions {
    drop_unsupported: false,
};
const LENIENT: TranslateOptions = TranslateOptions {
    drop_unsupported: true,
};

#[test]
fn full_chat_request_matches_golden_messages_body() {
    let chat = fixture(include_str!(
        "../../../tests/fixtures/anthropic/chat_request_full.json"
    ));
    let expected = fixture(include_str!(
        "../../../tests/fixtures/anthropic/messages_request_full.json"
    ));
    let got = from_chat(&chat, "claude-sonnet-4-5-20250929", &STRICT).expect("translates");
    assert_json_eq(&got, &expected);
}

#[test]
fn adaptive_models_get_effort_instead_of_budget() {
    let chat = fixture(include_str!(
        "../../../tests/fixtures/anthropic/chat_request_adaptive.json"
    ));
    let expected = fixture(include_str!(
        "../../../tests/fixtures/anthropic/messages_request_adaptive.json"
    ));
    let got = from_chat(&chat, "claude-opus-4-8", &STRICT).expect("translates");
    assert_json_eq(&got, &expected);
}

fn minimal(extra: Value) -> Value {
    let mut base = json!({
        "model": "claude",
        "messages": [{"role": "user", "content": "hi"}]
    });
    if let (Some(b), Some(e)) = (base.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            b.insert(k.clone(), v.clone());
        }
    }
    base
}

#[test]
fn default_max_tokens_when_absent() {
    let got = from_chat(&minimal(json!({})), "claude-opus-4-8", &STRICT).expect("ok");
    assert_eq!(got["max_tokens"], json!(DEFAULT_MAX_TOKENS));
    assert_eq!(
        got["messages"],
        json!([{"role": "user", "content": [{"type": "text", "text": "hi"}]}])
    );
    assert!(got.get("thinking").is_none());
}

#[test]
fn max_completion_tokens_wins_over_max_tokens() {
    let req = minimal(json!({"max_tokens": 10, "max_completion_tokens": 20}));
    let got = from_chat(&req, "claude-opus-4-8", &STRICT).expect("ok");
    assert_eq!(got["max_tokens"], json!(20));
}

#[test]
fn unsupported_params_are_rejected_by_name_or_dropped() {
    for (param, value) in [
        ("logit_bias", json!({"50256": -100})),
        ("logprobs", json!(true)),
        ("n", json!(2)),
        ("presence_penalty", json!(0.5)),
        ("frequency_penalty", json!(0.5)),
        ("seed", json!(7)),
        ("some_future_param", json!(1)),
    ] {
        let req = minimal(json!({ param: value }));
        match from_chat(&req, "claude-opus-4-8", &STRICT) {
            Err(TranslateError::Unsupported { param: p, .. }) => assert_eq!(p, param),
            other => panic!("{param}: expected Unsupported, got {other:?}"),
        }
        let got = from_chat(&req, "claude-opus-4-8", &LENIENT).expect("dropped");
        assert!(got.get(param).is_none());
    }
}

#[test]
fn default_valued_and_null_params_pass() {
    let req = minimal(json!({
        "n": 1, "logprobs": false, "presence_penalty": 0, "seed": null, "temperature": null
    }));
    assert!(from_chat(&req, "claude-opus-4-8", &STRICT).is_ok());
}

#[test]
fn invalid_tool_arguments_name_the_param() {
    let req = json!({
        "model": "m",
        "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{not json"}}
            ]}
        ]
    });
    match from_chat(&req, "claude-opus-4-8", &LENIENT) {
        Err(TranslateError::Invalid { param, .. }) => {
            assert_eq!(param, "messages[1].tool_calls[0].function.arguments")
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[test]
fn json_object_response_format_is_unsupported() {
    let req = minimal(json!({"response_format": {"type": "json_object"}}));
    assert!(matches!(
        from_chat(&req, "claude-opus-4-8", &STRICT),
        Err(TranslateError::Unsupported { ref param, .. }) if param == "response_format"
    ));
    let got = from_chat(&req, "claude-opus-4-8", &LENIENT).expect("dropped");
    assert!(got.get("output_config").is_none());
}

#[test]
fn budget_is_kept_below_max_tokens() {
    let req = minimal(json!({"reasoning_effort": "high", "max_tokens": 2000}));
    let got = from_chat(&req, "claude-sonnet-4-5", &STRICT).expect("ok");
    assert_eq!(
        got["thinking"],
        json!({"type": "enabled", "budget_tokens": 16384})
    );
    assert_eq!(got["max_tokens"], json!(18384));

    let req =
        minimal(json!({"reasoning_effort": "low", "x_thinking_budget": 3000, "max_tokens": 8000}));
    let got = from_chat(&req, "claude-sonnet-4-5", &STRICT).expect("ok");
    assert_eq!(got["thinking"]["budget_tokens"], json!(3000));
    assert_eq!(got["max_tokens"], json!(8000));
}

#[test]
fn reasoning_effort_none_sends_no_thinking() {
    let req = minimal(json!({"reasoning_effort": "none", "x_thinking_budget": 2048}));
    let got = from_chat(&req, "claude-sonnet-4-5", &STRICT).expect("ok");
    assert!(got.get("thinking").is_none());
}

#[test]
fn thinking_conflicts_are_named() {
    let tools =
        json!([{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]);
    for (extra, param) in [
        (json!({"temperature": 0.2}), "temperature"),
        (json!({"top_k": 5}), "top_k"),
        (json!({"top_p": 0.5}), "top_p"),
        (
            json!({"tools": tools, "tool_choice": "required"}),
            "tool_choice",
        ),
    ] {
        let mut req = minimal(extra);
        req["reasoning_effort"] = json!("medium");
        match from_chat(&req, "claude-opus-4-8", &STRICT) {
            Err(TranslateError::Unsupported { param: p, .. }) => assert_eq!(p, param),
            other => panic!("{param}: expected Unsupported, got {other:?}"),
        }
        let got = from_chat(&req, "claude-opus-4-8", &LENIENT).expect("dropped");
        assert!(got.get(param).is_none(), "{param} kept: {got}");
    }
}

#[test]
fn temperature_above_one_is_unsupported() {
    let req = minimal(json!({"temperature": 1.5}));
    assert!(matches!(
        from_chat(&req, "claude-opus-4-8", &STRICT),
        Err(TranslateError::Unsupported { ref param, .. }) if param == "temperature"
    ));
}

#[test]
fn parallel_tool_calls_false_without_tool_choice_sets_auto() {
    let req = minimal(json!({
        "tools": [{"type": "function", "function": {"name": "f"}}],
        "parallel_tool_calls": false
    }));
    let got = from_chat(&req, "claude-opus-4-8", &STRICT).expect("ok");
    assert_eq!(
        got["tool_choice"],
        json!({"type": "auto", "disable_parallel_tool_use": true})
    );
    assert_eq!(
        got["tools"],
        json!([{"name": "f", "input_schema": {"type": "object", "properties": {}}}])
    );
}

#[test]
fn bad_data_url_is_invalid() {
    let req = json!({"model": "m", "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "data:image/png,abc"}}
    ]}]});
    assert!(matches!(
        from_chat(&req, "claude-opus-4-8", &STRICT),
        Err(TranslateError::Invalid { ref param, .. }) if param == "messages[0].content[0].image_url.url"
    ));
}

#[test]
fn only_system_messages_is_invalid() {
    let req = json!({"model": "m", "messages": [{"role": "system", "content": "x"}]});
    assert!(matches!(
        from_chat(&req, "claude-opus-4-8", &STRICT),
        Err(TranslateError::Invalid { ref param, .. }) if param == "messages"
    ));
}
