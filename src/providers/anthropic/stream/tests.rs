//! Tests of the Anthropic stream decoder: golden streams, errors, refusals, thinking, and
//! streams split at any byte decoding like the non-streamed answer.

use super::*;
use crate::providers::anthropic::assert_json_eq;
use crate::providers::anthropic::response::to_chat_at;
use crate::wire::anthropic::stream::parse_sse;
use crate::wire::sse::SseSplitter;
use proptest::prelude::*;

const TEXT: &str = include_str!("../../../../tests/fixtures/anthropic/stream_text.sse");
const TOOL_USE: &str = include_str!("../../../../tests/fixtures/anthropic/stream_tool_use.sse");
const THINKING: &str = include_str!("../../../../tests/fixtures/anthropic/stream_thinking.sse");
const ERROR: &str = include_str!("../../../../tests/fixtures/anthropic/stream_error.sse");

fn decode(text: &str) -> Result<Vec<Value>, TranslateError> {
    let mut decoder = Decoder::new("claude-opus-4-8", 1_767_225_600);
    let mut chunks = vec![];
    for (name, data) in parse_sse(text) {
        chunks.extend(decoder.push(&name, &data)?);
    }
    chunks.extend(decoder.finish()?);
    Ok(chunks)
}

/// The same stream fed as raw bytes cut at `cuts`, framed by the proxy's SSE splitter.
fn decode_split(text: &str, cuts: &[usize]) -> Result<Vec<Value>, TranslateError> {
    let bytes = text.as_bytes();
    let mut decoder = Decoder::new("claude-opus-4-8", 1_767_225_600);
    let mut splitter = SseSplitter::default();
    let mut chunks = vec![];
    let mut start = 0;
    let mut cuts = cuts.to_vec();
    cuts.sort_unstable();
    cuts.push(bytes.len());
    for cut in cuts {
        let cut = cut.clamp(start, bytes.len());
        for event in splitter.push(&bytes[start..cut]) {
            chunks.extend(decoder.push_sse(&event.bytes)?);
        }
        start = cut;
    }
    chunks.extend(decoder.finish()?);
    Ok(chunks)
}

#[test]
fn text_stream_matches_golden_chunks() {
    let expected: Value = serde_json::from_str(include_str!(
        "../../../../tests/fixtures/anthropic/stream_text.chunks.json"
    ))
    .expect("fixture is JSON");
    assert_json_eq(&json!(decode(TEXT).expect("decodes")), &expected);
}

#[test]
fn tool_use_stream_matches_golden_chunks() {
    let expected: Value = serde_json::from_str(include_str!(
        "../../../../tests/fixtures/anthropic/stream_tool_use.chunks.json"
    ))
    .expect("fixture is JSON");
    assert_json_eq(&json!(decode(TOOL_USE).expect("decodes")), &expected);
}

#[test]
fn thinking_stream_carries_reasoning_and_the_signed_block() {
    let chunks = decode(THINKING).expect("decodes");
    let msg = assemble(&chunks);
    let blocks = msg["x_thinking_blocks"].as_array().expect("blocks");
    assert_eq!(blocks.len(), 1);
    assert_eq!(blocks[0]["type"], "thinking");
    assert_eq!(blocks[0]["thinking"], msg["reasoning_content"]);
    assert!(
        blocks[0]["signature"]
            .as_str()
            .is_some_and(|s| s.starts_with("EqQBCgIYAhIM"))
    );
    assert_eq!(msg["content"], "27 * 453 = 12,231");
    assert_eq!(msg["finish_reason"], "stop");
}

#[test]
fn usage_sums_cache_classes_and_takes_the_last_cumulative_counts() {
    let chunks = decode(THINKING).expect("decodes");
    let usage = &assemble(&chunks)["usage"];
    // message_start: input 12 + cache read 2048 + cache creation 512; message_delta: output 310.
    assert_eq!(usage["prompt_tokens"], 2572);
    assert_eq!(usage["completion_tokens"], 310);
    assert_eq!(usage["total_tokens"], 2882);
    assert_eq!(usage["prompt_tokens_details"]["cached_tokens"], 2048);
    assert_eq!(usage["prompt_tokens_details"]["cache_creation_tokens"], 512);
}

#[test]
fn error_event_is_a_provider_error() {
    match decode(ERROR) {
        Err(TranslateError::ProviderErrorOfType {
            status,
            error_type,
            message,
        }) => {
            assert_eq!(status, 529);
            assert_eq!(error_type, "overloaded_error");
            assert_eq!(message, "Overloaded");
        }
        other => panic!("expected ProviderError, got {other:?}"),
    }
}

#[test]
fn truncated_stream_fails_on_finish() {
    let cut = TEXT.find("event: message_stop").expect("has message_stop");
    assert!(matches!(
        decode(&TEXT[..cut]),
        Err(TranslateError::Malformed(_))
    ));
}

#[test]
fn refusal_stream_finishes_with_content_filter() {
    let mut decoder = Decoder::new("m", 0);
    let mut chunks = vec![];
    for (name, data) in [
        (
            "message_start",
            json!({"type": "message_start", "message": {"id": "msg_r", "usage": {"input_tokens": 5, "output_tokens": 1}}}),
        ),
        (
            "content_block_start",
            json!({"index": 0, "content_block": {"type": "text", "text": ""}}),
        ),
        (
            "content_block_delta",
            json!({"index": 0, "delta": {"type": "text_delta", "text": "Hello.."}}),
        ),
        ("content_block_stop", json!({"index": 0})),
        (
            "message_delta",
            json!({"delta": {"stop_reason": "refusal", "stop_sequence": null}, "usage": {"output_tokens": 3}}),
        ),
        ("message_stop", json!({})),
    ] {
        chunks.extend(decoder.push(name, &data).expect("decodes"));
    }
    let last = &chunks[chunks.len() - 2];
    assert_eq!(last["choices"][0]["finish_reason"], "content_filter");
    assert!(last["choices"][0]["delta"]["refusal"].is_string());
}

#[test]
fn redacted_thinking_becomes_a_complete_block() {
    let mut decoder = Decoder::new("m", 0);
    decoder
        .push("message_start", &json!({"message": {"id": "msg_x"}}))
        .expect("start");
    decoder
        .push(
            "content_block_start",
            &json!({"index": 0, "content_block": {"type": "redacted_thinking", "data": "EmwKAhgB"}}),
        )
        .expect("block");
    let chunks = decoder
        .push("content_block_stop", &json!({"index": 0}))
        .expect("stop");
    assert_eq!(
        chunks[0]["choices"][0]["delta"]["x_thinking_blocks"],
        json!([{"type": "redacted_thinking", "data": "EmwKAhgB"}])
    );
}

/// Builds an Anthropic stream of `text` then tool calls whose input JSON is cut into
/// `pieces` parts, and the equivalent non-streamed message.
fn synthetic(text: &str, inputs: &[Value], piece_len: usize) -> (String, Value) {
    let mut sse = String::new();
    let mut emit = |name: &str, data: Value| {
        sse.push_str(&format!("event: {name}\ndata: {data}\n\n"));
    };
    emit(
        "message_start",
        json!({"type": "message_start", "message": {"id": "msg_p", "type": "message", "role": "assistant", "content": [], "model": "claude-opus-4-8", "stop_reason": null, "stop_sequence": null, "usage": {"input_tokens": 9, "output_tokens": 1}}}),
    );
    let mut content = vec![];
    let mut index = 0;
    if !text.is_empty() {
        emit(
            "content_block_start",
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        );
        emit("ping", json!({"type": "ping"}));
        for piece in text.chars().collect::<Vec<_>>().chunks(3) {
            let piece: String = piece.iter().collect();
            emit(
                "content_block_delta",
                json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}}),
            );
        }
        emit(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": 0}),
        );
        content.push(json!({"type": "text", "text": text}));
        index += 1;
    }
    for (k, input) in inputs.iter().enumerate() {
        let id = format!("toolu_{k}");
        emit(
            "content_block_start",
            json!({"type": "content_block_start", "index": index, "content_block": {"type": "tool_use", "id": id, "name": "get_weather", "input": {}}}),
        );
        let encoded: Vec<char> = input.to_string().chars().collect();
        emit(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": index, "delta": {"type": "input_json_delta", "partial_json": ""}}),
        );
        for piece in encoded.chunks(piece_len.max(1)) {
            let piece: String = piece.iter().collect();
            emit(
                "content_block_delta",
                json!({"type": "content_block_delta", "index": index, "delta": {"type": "input_json_delta", "partial_json": piece}}),
            );
        }
        emit(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": index}),
        );
        content.push(json!({"type": "tool_use", "id": id, "name": "get_weather", "input": input}));
        index += 1;
    }
    let stop = if inputs.is_empty() {
        "end_turn"
    } else {
        "tool_use"
    };
    emit(
        "message_delta",
        json!({"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": null}, "usage": {"output_tokens": 42}}),
    );
    emit("message_stop", json!({"type": "message_stop"}));
    let message = json!({
        "id": "msg_p", "type": "message", "role": "assistant", "model": "claude-opus-4-8",
        "content": content, "stop_reason": stop, "stop_sequence": null,
        "usage": {"input_tokens": 9, "output_tokens": 42}
    });
    (sse, message)
}

fn json_input() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        any::<i32>().prop_map(|n| json!(n)),
        any::<bool>().prop_map(|b| json!(b)),
        "[a-z \\\\\"é{}:,]{0,12}".prop_map(|s| json!(s)),
    ];
    let value = leaf.prop_recursive(2, 8, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
            proptest::collection::btree_map("[a-z]{1,5}", inner, 0..3)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    });
    proptest::collection::btree_map("[a-z_]{1,8}", value, 0..4)
        .prop_map(|m| Value::Object(m.into_iter().collect()))
}

proptest! {
    /// However the bytes are cut, the same chunks come out, and the streamed tool arguments
    /// concatenate to exactly what the non-streamed answer gives.
    #[test]
    fn split_stream_gives_same_chunks_and_tool_arguments(
        text in "[a-zA-Z ,.!é]{0,20}",
        inputs in proptest::collection::vec(json_input(), 0..4),
        piece_len in 1usize..9,
        cuts in proptest::collection::vec(0usize..4000, 0..12),
    ) {
        let (sse, message) = synthetic(&text, &inputs, piece_len);
        let whole = decode(&sse).expect("decodes");
        let split = decode_split(&sse, &cuts).expect("decodes split");
        prop_assert_eq!(&whole, &split);

        let streamed = assemble(&whole);
        let answer = to_chat_at(&message, "claude-opus-4-8", 1_767_225_600).expect("answer");
        let answer_msg = &answer["choices"][0]["message"];
        let answer_calls = answer_msg["tool_calls"].as_array().cloned().unwrap_or_default();
        let streamed_calls = streamed["tool_calls"].as_array().cloned().unwrap_or_default();
        prop_assert_eq!(streamed_calls.len(), answer_calls.len());
        for (s, a) in streamed_calls.iter().zip(&answer_calls) {
            prop_assert_eq!(&s["id"], &a["id"]);
            prop_assert_eq!(&s["function"]["name"], &a["function"]["name"]);
            let s_args: Value = serde_json::from_str(s["function"]["arguments"].as_str().unwrap_or("")).expect("streamed args are JSON");
            let a_args: Value = serde_json::from_str(a["function"]["arguments"].as_str().unwrap_or("")).expect("answer args are JSON");
            prop_assert_eq!(s_args, a_args);
        }
        prop_assert_eq!(streamed["content"].as_str().unwrap_or(""), answer_msg["content"].as_str().unwrap_or(""));
        prop_assert_eq!(&streamed["finish_reason"], &answer["choices"][0]["finish_reason"]);
        prop_assert_eq!(&streamed["usage"], &answer["usage"]);
    }
}
