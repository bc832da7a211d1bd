//! Property tests: arbitrary OpenAI chat requests (valid and odd) translate for every provider
//! without panicking, and a translation that succeeds yields a JSON object.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use serde_json::{Value, json};
use stockyard::providers::{anthropic, bedrock, gemini, openai::presets};

fn text() -> impl Strategy<Value = String> {
    prop_oneof!["[a-z ]{0,12}", "\\PC{0,8}", Just(String::new())]
}

fn arguments() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("{\"city\":\"Paris\"}".to_string()),
        Just("{}".to_string()),
        "\\PC{0,6}"
    ]
}

fn message() -> impl Strategy<Value = Value> {
    prop_oneof![
        text().prop_map(|t| json!({"role": "system", "content": t})),
        text().prop_map(|t| json!({"role": "developer", "content": t})),
        text().prop_map(|t| json!({"role": "user", "content": t})),
        (text(), text()).prop_map(|(a, b)| json!({"role": "user", "content": [
            {"type": "text", "text": a},
            {"type": "image_url", "image_url": {"url": format!("data:image/png;base64,{}", if b.is_empty() { "AAAA" } else { "iVBORw0KGgo=" })}}
        ]})),
        text().prop_map(|t| json!({"role": "assistant", "content": t})),
        (arguments(), "[a-z]{1,6}").prop_map(|(args, name)| json!({"role": "assistant", "content": null,
            "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": name, "arguments": args}}]})),
        text().prop_map(|t| json!({"role": "tool", "tool_call_id": "call_1", "content": t})),
    ]
}

fn request() -> impl Strategy<Value = Value> {
    (
        proptest::collection::vec(message(), 0..6),
        proptest::option::of(0.0f64..2.0),
        proptest::option::of(1u64..5000),
        any::<bool>(),
        proptest::option::of(prop_oneof![Just("low"), Just("medium"), Just("high"), Just("minimal")]),
        proptest::option::of(prop_oneof![Just(json!("auto")), Just(json!("required")), Just(json!("none"))]),
        any::<bool>(),
    )
        .prop_map(|(messages, temperature, max_tokens, stream, effort, tool_choice, with_tools)| {
            let mut request = json!({"model": "m", "messages": messages, "stream": stream});
            if let Some(t) = temperature {
                request["temperature"] = json!(t);
            }
            if let Some(m) = max_tokens {
                request["max_tokens"] = json!(m);
            }
            if let Some(e) = effort {
                request["reasoning_effort"] = json!(e);
            }
            if with_tools {
                request["tools"] = json!([{"type": "function", "function": {"name": "weather",
                    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]);
                if let Some(choice) = tool_choice {
                    request["tool_choice"] = choice;
                }
            }
            request
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn every_translator_takes_any_chat_request_without_panicking(request in request(), drop in any::<bool>()) {
        let ok = |result: Result<Value, String>| match result {
            Ok(value) => value.is_object(),
            Err(message) => !message.is_empty(),
        };
        let a = anthropic::request::from_chat(&request, "claude-sonnet-4-5", &anthropic::TranslateOptions { drop_unsupported: drop });
        prop_assert!(ok(a.map_err(|e| e.to_string())));
        let g = gemini::request::from_chat(&request, "gemini-2.5-flash", &gemini::TranslateOptions { drop_unsupported: drop });
        prop_assert!(ok(g.map_err(|e| e.to_string())));
        let b = bedrock::request::from_chat(&request, "anthropic.claude-sonnet-4-5-20250929-v1:0", &bedrock::TranslateOptions { drop_unsupported: drop });
        prop_assert!(ok(b.map_err(|e| e.to_string())));
        for preset in presets::PRESETS {
            let mut chat = request.clone();
            presets::apply_quirks(&mut chat, &preset.quirks);
            prop_assert!(chat.is_object());
        }
    }

    #[test]
    fn anthropic_and_responses_clients_map_to_chat_without_panicking(texts in proptest::collection::vec(text(), 1..4), stream in any::<bool>()) {
        let messages: Vec<Value> = texts.iter().map(|t| json!({"role": "user", "content": t})).collect();
        let anthropic_request = json!({"model": "m", "max_tokens": 10, "messages": messages, "stream": stream, "system": texts[0]});
        let chat = stockyard::wire::anthropic::request::to_chat(&anthropic_request, &anthropic::TranslateOptions::default());
        prop_assert!(chat.map(|c| c.is_object()).unwrap_or(true));
        let responses_request = json!({"model": "m", "input": texts[0], "instructions": texts.last(), "stream": stream});
        let chat = stockyard::wire::responses::request::to_chat(&responses_request, &stockyard::wire::responses::TranslateOptions::default());
        prop_assert!(chat.map(|c| c.is_object()).unwrap_or(true));
    }
}
