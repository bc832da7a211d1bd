//! Tests of the Responses request translation: golden requests, rejections by name, assistant
//! turns, and stored conversations.

use super::*;
use crate::wire::responses::testing::assert_json_eq;

const STRICT: TranslateOptions = TranslateOptions {
    drop_unsupported: false,
};
const LENIENT: TranslateOptions = TranslateOptions {
    drop_unsupported: true,
};

fn fixture(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

#[test]
fn golden_string_input_with_parameters() {
    let req = fixture(include_str!(
        "../../../../tests/fixtures/responses/request_text.json"
    ));
    let want = fixture(include_str!(
        "../../../../tests/fixtures/responses/chat_text.json"
    ));
    assert_json_eq(&to_chat(&req, &STRICT).unwrap(), &want);
}

#[test]
fn golden_items_with_tools_reasoning_and_images() {
    let req = fixture(include_str!(
        "../../../../tests/fixtures/responses/request_items.json"
    ));
    let want = fixture(include_str!(
        "../../../../tests/fixtures/responses/chat_items.json"
    ));
    assert_json_eq(&to_chat(&req, &STRICT).unwrap(), &want);
}

#[test]
fn golden_function_calling_example_from_the_reference() {
    let req = fixture(include_str!(
        "../../../../tests/fixtures/responses/request_function_call_output.json"
    ));
    let want = fixture(include_str!(
        "../../../../tests/fixtures/responses/chat_function_call_output.json"
    ));
    assert_json_eq(&to_chat(&req, &STRICT).unwrap(), &want);
}

#[test]
fn built_in_tools_are_rejected_by_name_unless_dropped() {
    let req = json!({
        "model": "claude-sonnet-4-5",
        "input": "hi",
        "tools": [
            {"type": "web_search_preview"},
            {"type": "function", "name": "f", "parameters": {"type": "object"}}
        ],
        "tool_choice": {"type": "web_search_preview"}
    });
    match to_chat(&req, &STRICT) {
        Err(TranslateError::Unsupported { param, .. }) => assert_eq!(param, "tools[0]"),
        other => panic!("expected Unsupported, got {other:?}"),
    }
    let chat = to_chat(&req, &LENIENT).unwrap();
    assert_eq!(chat["tools"].as_array().unwrap().len(), 1);
    assert_eq!(chat["tools"][0]["function"]["name"], "f");
    assert!(chat.get("tool_choice").is_none());
}

#[test]
fn tool_choice_and_parallel_calls_go_only_with_tools() {
    let req = json!({
        "model": "m", "input": "hi",
        "tools": [{"type": "file_search", "vector_store_ids": ["vs_1"]}],
        "tool_choice": "required", "parallel_tool_calls": false
    });
    let chat = to_chat(&req, &LENIENT).unwrap();
    assert!(chat.get("tools").is_none());
    assert!(chat.get("tool_choice").is_none());
    assert!(chat.get("parallel_tool_calls").is_none());

    let req = json!({
        "model": "m", "input": "hi",
        "tools": [{"type": "function", "name": "f"}],
        "tool_choice": {"type": "function", "name": "f"}, "parallel_tool_calls": false
    });
    let chat = to_chat(&req, &STRICT).unwrap();
    assert_eq!(
        chat["tool_choice"],
        json!({"type": "function", "function": {"name": "f"}})
    );
    assert_eq!(chat["parallel_tool_calls"], false);
}

#[test]
fn file_ids_and_files_are_rejected_by_path() {
    let req = json!({"model": "m", "input": [{"role": "user", "content": [
        {"type": "input_text", "text": "what is this"},
        {"type": "input_image", "file_id": "file-123", "detail": "auto"}
    ]}]});
    match to_chat(&req, &STRICT) {
        Err(TranslateError::Unsupported { param, .. }) => {
            assert_eq!(param, "input[0].content[1].file_id");
        }
        other => panic!("expected Unsupported, got {other:?}"),
    }
    let chat = to_chat(&req, &LENIENT).unwrap();
    assert_eq!(chat["messages"][0]["content"], "what is this");

    let req = json!({"model": "m", "input": [{"role": "user", "content": [
        {"type": "input_file", "file_id": "file-1"}
    ]}, {"role": "user", "content": "and this"}]});
    assert!(matches!(
        to_chat(&req, &STRICT),
        Err(TranslateError::Unsupported { ref param, .. }) if param == "input[0].content[0]"
    ));
    let chat = to_chat(&req, &LENIENT).unwrap();
    assert_eq!(
        chat["messages"],
        json!([{"role": "user", "content": "and this"}])
    );
}

#[test]
fn item_references_and_built_in_call_items_are_unsupported() {
    for item in [
        json!({"type": "item_reference", "id": "msg_1"}),
        json!({"type": "web_search_call", "id": "ws_1", "status": "completed"}),
        json!({"type": "computer_call_output", "call_id": "c", "output": {}}),
    ] {
        let req = json!({"model": "m", "input": [{"role": "user", "content": "hi"}, item]});
        assert!(matches!(
            to_chat(&req, &STRICT),
            Err(TranslateError::Unsupported { ref param, .. }) if param == "input[1]"
        ));
        assert_eq!(
            to_chat(&req, &LENIENT).unwrap()["messages"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
    }
}

#[test]
fn stateful_and_openai_only_parameters_are_rejected() {
    for (field, value) in [
        ("background", json!(true)),
        ("conversation", json!("conv_1")),
        ("prompt", json!({"id": "pmpt_1"})),
        ("truncation", json!("auto")),
        ("top_logprobs", json!(5)),
    ] {
        let mut req = json!({"model": "m", "input": "hi"});
        req[field] = value;
        match to_chat(&req, &STRICT) {
            Err(TranslateError::Unsupported { param, .. }) => assert_eq!(param, field),
            other => panic!("{field}: expected Unsupported, got {other:?}"),
        }
        assert!(to_chat(&req, &LENIENT).unwrap().get(field).is_none());
    }
    let ok = json!({"model": "m", "input": "hi", "background": false, "truncation": "disabled", "top_logprobs": 0});
    assert!(to_chat(&ok, &STRICT).is_ok());
}

#[test]
fn invalid_shapes_name_the_field() {
    let cases = [
        (json!({"input": "hi"}), "model"),
        (json!({"model": "m"}), "input"),
        (json!({"model": "m", "input": 3}), "input"),
        (
            json!({"model": "m", "input": [{"role": "tool", "content": "x"}]}),
            "input[0].role",
        ),
        (
            json!({"model": "m", "input": [{"type": "function_call", "name": "f"}]}),
            "input[0].call_id",
        ),
        (
            json!({"model": "m", "input": [{"content": "x"}]}),
            "input[0]",
        ),
        (
            json!({"model": "m", "input": "hi", "text": {"format": {"type": "json_schema"}}}),
            "text.format.name",
        ),
        (
            json!({"model": "m", "input": "hi", "tool_choice": "sometimes", "tools": [{"type": "function", "name": "f"}]}),
            "tool_choice",
        ),
        (
            json!({"model": "m", "input": "hi", "truncation": "maybe"}),
            "truncation",
        ),
    ];
    for (req, want) in cases {
        match to_chat(&req, &LENIENT) {
            Err(TranslateError::Invalid { param, .. }) => assert_eq!(param, want, "{req}"),
            other => panic!("{req}: expected Invalid({want}), got {other:?}"),
        }
    }
}

#[test]
fn reasoning_items_attach_to_the_next_assistant_turn_or_vanish() {
    let req = json!({"model": "m", "input": [
        {"role": "user", "content": "q1"},
        {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "gAAAA-openai-only"},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "a1", "annotations": []}]},
        {"role": "user", "content": "q2"},
        {"type": "reasoning", "id": "rs_2", "summary": [{"type": "summary_text", "text": "thinking about q2"}]},
        {"role": "user", "content": "q3"}
    ]});
    let chat = to_chat(&req, &STRICT).unwrap();
    assert_json_eq(
        &chat["messages"],
        &json!([
            {"role": "user", "content": "q1"},
            {"role": "assistant", "content": "a1"},
            {"role": "user", "content": "q2"},
            {"role": "user", "content": "q3"}
        ]),
    );
}

#[test]
fn consecutive_assistant_messages_stay_apart_but_calls_join_the_text() {
    let req = json!({"model": "m", "input": [
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": "first"},
        {"role": "assistant", "content": "second"},
        {"type": "function_call", "call_id": "call_1", "name": "f", "arguments": "{}"},
        {"type": "function_call", "call_id": "call_2", "name": "g", "arguments": "{\"x\":1}"},
        {"type": "function_call_output", "call_id": "call_1", "output": "r1"},
        {"type": "function_call_output", "call_id": "call_2", "output": [{"type": "input_text", "text": "r2"}]}
    ]});
    let chat = to_chat(&req, &STRICT).unwrap();
    assert_json_eq(
        &chat["messages"],
        &json!([
            {"role": "user", "content": "go"},
            {"role": "assistant", "content": "first"},
            {"role": "assistant", "content": "second", "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}},
                {"id": "call_2", "type": "function", "function": {"name": "g", "arguments": "{\"x\":1}"}}
            ]},
            {"role": "tool", "tool_call_id": "call_1", "content": "r1"},
            {"role": "tool", "tool_call_id": "call_2", "content": "r2"}
        ]),
    );
}

#[test]
fn images_in_tool_output_are_rejected_unless_dropped() {
    let req = json!({"model": "m", "input": [
        {"type": "function_call", "call_id": "c1", "name": "shot", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": [
            {"type": "input_text", "text": "see image"},
            {"type": "input_image", "image_url": "https://example.com/a.png"}
        ]}
    ]});
    assert!(matches!(
        to_chat(&req, &STRICT),
        Err(TranslateError::Unsupported { ref param, .. }) if param == "input[1].output[1]"
    ));
    assert_eq!(
        to_chat(&req, &LENIENT).unwrap()["messages"][1]["content"],
        "see image"
    );
}

#[test]
fn safety_identifier_stands_in_for_user_and_unknown_fields_pass_through() {
    let req = json!({"model": "m", "input": "hi", "safety_identifier": "u-1", "top_k": 40,
                     "metadata": {"a": "b"}, "store": false, "prompt_cache_key": "k",
                     "service_tier": "flex", "include": ["reasoning.encrypted_content"]});
    let chat = to_chat(&req, &STRICT).unwrap();
    assert_eq!(chat["user"], "u-1");
    assert_eq!(chat["top_k"], 40);
    for gone in [
        "metadata",
        "store",
        "prompt_cache_key",
        "service_tier",
        "include",
        "safety_identifier",
    ] {
        assert!(
            chat.get(gone).is_none(),
            "{gone} should not reach the upstream"
        );
    }
    let both = json!({"model": "m", "input": "hi", "user": "a", "safety_identifier": "b"});
    assert_eq!(to_chat(&both, &STRICT).unwrap()["user"], "a");
}

#[test]
fn instructions_as_items_become_leading_messages() {
    let req = json!({"model": "m", "input": "hi", "instructions": [
        {"role": "developer", "content": [{"type": "input_text", "text": "be brief"}]}
    ]});
    let chat = to_chat(&req, &STRICT).unwrap();
    assert_eq!(
        chat["messages"][0],
        json!({"role": "developer", "content": "be brief"})
    );
    let empty = json!({"model": "m", "input": "hi", "instructions": ""});
    assert_eq!(
        to_chat(&empty, &STRICT).unwrap()["messages"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn stored_history_round_trips_through_items() {
    let history = vec![
        json!({"role": "user", "content": [
            {"type": "text", "text": "look"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA", "detail": "low"}}
        ]}),
        json!({"role": "assistant", "content": null,
               "reasoning_content": "plan",
               "x_thinking_blocks": [{"type": "thinking", "thinking": "plan", "signature": "sig"},
                                     {"type": "redacted_thinking", "data": "zz"}],
               "tool_calls": [{"id": "call_1", "type": "function",
                               "function": {"name": "f", "arguments": "{}"}}]}),
        json!({"role": "tool", "tool_call_id": "call_1", "content": "42"}),
        json!({"role": "assistant", "content": "done", "refusal": "no"}),
        json!({"role": "system", "content": "mid-conversation note"}),
    ];
    let req = prepend_history(
        &history,
        json!({"model": "m", "input": "next", "instructions": "new rules"}),
    );
    let chat = to_chat(&req, &STRICT).unwrap();
    let mut want = vec![json!({"role": "system", "content": "new rules"})];
    want.extend(history.iter().cloned());
    want.push(json!({"role": "user", "content": "next"}));
    assert_json_eq(&chat["messages"], &Value::Array(want));
}

#[test]
fn history_to_store_skips_the_instructions_and_appends_the_answer() {
    let req = json!({"model": "m", "instructions": "rules", "input": "q"});
    let chat = to_chat(&req, &STRICT).unwrap();
    let response = json!({"output": [
        {"id": "msg_1", "type": "message", "role": "assistant", "status": "completed",
         "content": [{"type": "output_text", "text": "a", "annotations": []}]}
    ]});
    assert_json_eq(
        &Value::Array(history_to_store(&req, &chat, &response)),
        &json!([{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]),
    );
    // A second turn stores the whole conversation again, still without instructions.
    let stored = history_to_store(&req, &chat, &response);
    let req2 = prepend_history(
        &stored,
        json!({"model": "m", "instructions": "other", "input": "q2"}),
    );
    let chat2 = to_chat(&req2, &STRICT).unwrap();
    assert_eq!(
        chat2["messages"][0],
        json!({"role": "system", "content": "other"})
    );
    let stored2 = history_to_store(&req2, &chat2, &response);
    assert_eq!(stored2.len(), 4);
    assert_eq!(stored2[0], json!({"role": "user", "content": "q"}));
}
