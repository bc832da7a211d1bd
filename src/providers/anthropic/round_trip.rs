//! Round trips through both Anthropic translators: a Messages client's request, answer or stream
//! read by the client side (`crate::wire::anthropic`) and written by the provider side (here), or
//! the other way, keeps what a client relies on (thinking signatures, cache_control, tool inputs,
//! usage classes). They live here because providers may use wire and wire never uses providers.

use std::collections::HashMap;

use proptest::prelude::*;
use serde_json::{Value, json};

use super::request::from_chat;
use super::response::to_chat_at;
use super::stream::{Decoder, assemble};
use crate::wire::anthropic::request::to_chat;
use crate::wire::anthropic::response::from_chat as message_from_chat;
use crate::wire::anthropic::stream::{Encoder, Event, parse_sse};
use crate::wire::translate::{TranslateOptions, assert_json_eq};

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
fn adaptive_thinking_effort_comes_back() {
    let req = json!({
        "model": "claude-opus-4-8", "max_tokens": 10,
        "messages": [{"role": "user", "content": "hi"}],
        "thinking": {"type": "adaptive"}, "output_config": {"effort": "medium"}
    });
    let got = to_chat(&req, &STRICT).expect("ok");
    let back = from_chat(&got, "claude-opus-4-8", &STRICT).expect("back");
    assert_eq!(back["thinking"], json!({"type": "adaptive"}));
    assert_eq!(back["output_config"], json!({"effort": "medium"}));
}

/// Anthropic -> canonical -> Anthropic gives back the same request: thinking blocks with
/// their signatures, every cache_control mark (system, tool, tool result), the exact thinking
/// budget, tool choice and parallelism, stop sequences and user id.
#[test]
fn round_trip_keeps_thinking_signatures_and_cache_control() {
    let original = inbound();
    let canonical = to_chat(&original, &STRICT).expect("to canonical");
    let back = from_chat(&canonical, "claude-sonnet-4-5-20250929", &STRICT).expect("back");
    assert_json_eq(&back, &original);
}

/// An Anthropic answer read by the provider side and written back by this side is the same
/// answer: thinking signatures, tool inputs, text, stop reason and usage classes.
#[test]
fn anthropic_answer_round_trips() {
    let original = fixture(include_str!(
        "../../../tests/fixtures/anthropic/message_response_tool_use.json"
    ));
    let chat = to_chat_at(&original, "claude-sonnet-4-5-20250929", 0).expect("to chat");
    let back = message_from_chat(&chat).expect("back");
    assert_eq!(back["id"], original["id"]);
    assert_eq!(back["content"], original["content"]);
    assert_eq!(back["stop_reason"], original["stop_reason"]);
    for key in [
        "input_tokens",
        "cache_creation_input_tokens",
        "cache_read_input_tokens",
        "output_tokens",
    ] {
        assert_eq!(back["usage"][key], original["usage"][key], "{key}");
    }
}

fn decode(events: &[(String, Value)]) -> Vec<Value> {
    let mut decoder = Decoder::new("claude-opus-4-8", 1_767_225_600);
    let mut chunks = vec![];
    for (name, data) in events {
        chunks.extend(decoder.push(name, data).expect("decodes"));
    }
    chunks.extend(decoder.finish().expect("complete"));
    chunks
}

/// Anthropic events -> canonical chunks -> Anthropic events keeps the golden thinking
/// stream's text, signature and usage.
#[test]
fn thinking_stream_survives_decode_then_encode() {
    let original = parse_sse(include_str!(
        "../../../tests/fixtures/anthropic/stream_thinking.sse"
    ));
    let events = encode(&decode(&original));
    let back = assemble(&decode(&events));
    let first = assemble(&decode(&original));
    assert_eq!(back, first);
    let signatures: Vec<&Value> = events
        .iter()
        .filter(|(_, d)| d["delta"]["type"] == "signature_delta")
        .map(|(_, d)| &d["delta"]["signature"])
        .collect();
    assert_eq!(signatures.len(), 1);
}

fn input() -> impl Strategy<Value = Value> {
    proptest::collection::btree_map(
        "[a-z]{1,6}",
        prop_oneof![
            any::<i64>().prop_map(|n| json!(n)),
            "[a-z \"\\\\{}é]{0,10}".prop_map(|s| json!(s)),
            proptest::collection::vec(any::<bool>(), 0..3).prop_map(|v| json!(v)),
        ],
        0..4,
    )
    .prop_map(|m| Value::Object(m.into_iter().collect()))
}

proptest! {
    /// encoder(decoder(events)) keeps the text, every tool input and every thinking
    /// signature of an Anthropic stream, whatever their sizes and chunking.
    #[test]
    fn encode_of_decode_keeps_text_tool_inputs_and_signatures(
        thinking in proptest::collection::vec(("[a-z .]{0,15}", "[A-Za-z0-9+/]{1,20}"), 0..3),
        redacted in proptest::option::of("[A-Za-z0-9]{4,12}"),
        text in "[a-zA-Z ,.é]{0,30}",
        inputs in proptest::collection::vec(input(), 0..4),
        piece in 1usize..7,
    ) {
        let mut events: Vec<(String, Value)> = vec![];
        let mut push = |name: &str, data: Value| events.push((name.to_string(), data));
        push("message_start", json!({"type": "message_start", "message": {"id": "msg_q", "type": "message", "role": "assistant", "content": [], "model": "claude-opus-4-8", "stop_reason": null, "stop_sequence": null, "usage": {"input_tokens": 7, "cache_read_input_tokens": 3, "cache_creation_input_tokens": 2, "output_tokens": 1}}}));
        let mut index = 0u64;
        let mut expected_blocks = vec![];
        for (t, sig) in &thinking {
            push("content_block_start", json!({"type": "content_block_start", "index": index, "content_block": {"type": "thinking", "thinking": "", "signature": ""}}));
            for p in t.as_bytes().chunks(piece) {
                push("content_block_delta", json!({"type": "content_block_delta", "index": index, "delta": {"type": "thinking_delta", "thinking": String::from_utf8_lossy(p)}}));
            }
            push("content_block_delta", json!({"type": "content_block_delta", "index": index, "delta": {"type": "signature_delta", "signature": sig}}));
            push("content_block_stop", json!({"type": "content_block_stop", "index": index}));
            expected_blocks.push(json!({"type": "thinking", "thinking": t, "signature": sig}));
            index += 1;
        }
        if let Some(data) = &redacted {
            push("content_block_start", json!({"type": "content_block_start", "index": index, "content_block": {"type": "redacted_thinking", "data": data}}));
            push("content_block_stop", json!({"type": "content_block_stop", "index": index}));
            expected_blocks.push(json!({"type": "redacted_thinking", "data": data}));
            index += 1;
        }
        if !text.is_empty() {
            push("content_block_start", json!({"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}}));
            for p in text.chars().collect::<Vec<_>>().chunks(piece) {
                push("content_block_delta", json!({"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": p.iter().collect::<String>()}}));
            }
            push("content_block_stop", json!({"type": "content_block_stop", "index": index}));
            index += 1;
        }
        for (k, input) in inputs.iter().enumerate() {
            push("content_block_start", json!({"type": "content_block_start", "index": index, "content_block": {"type": "tool_use", "id": format!("toolu_{k}"), "name": "lookup", "input": {}}}));
            for p in input.to_string().chars().collect::<Vec<_>>().chunks(piece) {
                push("content_block_delta", json!({"type": "content_block_delta", "index": index, "delta": {"type": "input_json_delta", "partial_json": p.iter().collect::<String>()}}));
            }
            push("content_block_stop", json!({"type": "content_block_stop", "index": index}));
            index += 1;
        }
        let stop = if inputs.is_empty() { "end_turn" } else { "tool_use" };
        push("message_delta", json!({"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": null}, "usage": {"output_tokens": 99}}));
        push("message_stop", json!({"type": "message_stop"}));

        let reencoded = encode(&decode(&events));

        // Text, thinking blocks (signatures included) and tool inputs, as the client's SDK
        // would accumulate them from the re-encoded events.
        let mut blocks: Vec<Value> = vec![];
        let mut partial: HashMap<u64, String> = HashMap::new();
        let mut stop_reason = Value::Null;
        let mut usage = Value::Null;
        for (name, data) in &reencoded {
            let i = data["index"].as_u64().unwrap_or(0) as usize;
            match name.as_str() {
                "content_block_start" => {
                    prop_assert_eq!(i, blocks.len());
                    blocks.push(data["content_block"].clone());
                }
                "content_block_delta" => {
                    let d = &data["delta"];
                    let b = &mut blocks[i];
                    match d["type"].as_str() {
                        Some("text_delta") => b["text"] = json!(b["text"].as_str().unwrap_or("").to_string() + d["text"].as_str().unwrap_or("")),
                        Some("thinking_delta") => b["thinking"] = json!(b["thinking"].as_str().unwrap_or("").to_string() + d["thinking"].as_str().unwrap_or("")),
                        Some("signature_delta") => b["signature"] = json!(b["signature"].as_str().unwrap_or("").to_string() + d["signature"].as_str().unwrap_or("")),
                        Some("input_json_delta") => partial.entry(i as u64).or_default().push_str(d["partial_json"].as_str().unwrap_or("")),
                        _ => {}
                    }
                }
                "message_delta" => {
                    stop_reason = data["delta"]["stop_reason"].clone();
                    usage = data["usage"].clone();
                }
                _ => {}
            }
        }
        for (i, json_text) in &partial {
            blocks[*i as usize]["input"] = serde_json::from_str(json_text).expect("input JSON");
        }
        let got_thinking: Vec<Value> = blocks.iter().filter(|b| b["type"] == "thinking" || b["type"] == "redacted_thinking").cloned().collect();
        prop_assert_eq!(got_thinking, expected_blocks);
        let got_text: String = blocks.iter().filter(|b| b["type"] == "text").filter_map(|b| b["text"].as_str()).collect();
        prop_assert_eq!(got_text, text);
        let got_inputs: Vec<Value> = blocks.iter().filter(|b| b["type"] == "tool_use").map(|b| b["input"].clone()).collect();
        prop_assert_eq!(&got_inputs, &inputs);
        let ids: Vec<Value> = blocks.iter().filter(|b| b["type"] == "tool_use").map(|b| b["id"].clone()).collect();
        let want_ids: Vec<Value> = (0..inputs.len()).map(|k| json!(format!("toolu_{k}"))).collect();
        prop_assert_eq!(ids, want_ids);
        prop_assert_eq!(stop_reason, json!(stop));
        prop_assert_eq!(usage, json!({"input_tokens": 7, "cache_read_input_tokens": 3, "cache_creation_input_tokens": 2, "output_tokens": 99}));
        prop_assert_eq!(&reencoded.last().map(|(n, _)| n.clone()), &Some("message_stop".to_string()));
    }
}

fn encode(chunks: &[Value]) -> Vec<Event> {
    let mut encoder = Encoder::new();
    let mut events = vec![];
    for chunk in chunks {
        events.extend(encoder.push(chunk).expect("encodes"));
    }
    events.extend(encoder.finish());
    events
}
