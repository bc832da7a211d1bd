//! Tests of the Responses stream encoder: golden streams, terminal events, and streams split at
//! any byte.

use super::*;
use crate::wire::responses::call_item_id;
use crate::wire::responses::response::from_chat;
use crate::wire::responses::testing::{assert_json_eq, parse_sse};
use crate::wire::sse::SseSplitter;
use proptest::prelude::*;

fn fixture(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

/// Canonical chunks of an SSE fixture.
fn chunks(sse: &str) -> Vec<Value> {
    parse_sse(sse).into_iter().map(|(_, data)| data).collect()
}

fn encode(request: &Value, chunks: &[Value]) -> Vec<Event> {
    let mut encoder = Encoder::new(request, None);
    let mut events = Vec::new();
    for chunk in chunks {
        events.extend(encoder.push(chunk).unwrap());
    }
    events.extend(encoder.finish().unwrap());
    events
}

fn assert_events_eq(got: &[Event], want: &[(String, Value)]) {
    let got: Vec<Value> = got
        .iter()
        .map(|(n, d)| json!({"event": n, "data": d}))
        .collect();
    let want: Vec<Value> = want
        .iter()
        .map(|(n, d)| json!({"event": n, "data": d}))
        .collect();
    assert_json_eq(&Value::Array(got), &Value::Array(want));
}

/// The `response` of the last event.
fn terminal(events: &[Event]) -> Value {
    events.last().map(|(_, d)| d["response"].clone()).unwrap()
}

#[test]
fn golden_text_stream() {
    let request = fixture(include_str!(
        "../../../../tests/fixtures/responses/request_text.json"
    ));
    let input = chunks(include_str!(
        "../../../../tests/fixtures/responses/chunks_text.sse"
    ));
    let want = parse_sse(include_str!(
        "../../../../tests/fixtures/responses/events_text.sse"
    ));
    let events = encode(&request, &input);
    assert_events_eq(&events, &want);
    // Formatting and re-parsing loses nothing.
    assert_events_eq(&events, &parse_sse(&to_sse(&events)));
}

#[test]
fn golden_reasoning_and_interleaved_parallel_calls() {
    let request = fixture(include_str!(
        "../../../../tests/fixtures/responses/request_items.json"
    ));
    let input = chunks(include_str!(
        "../../../../tests/fixtures/responses/chunks_tools.sse"
    ));
    let want = parse_sse(include_str!(
        "../../../../tests/fixtures/responses/events_tools.sse"
    ));
    assert_events_eq(&encode(&request, &input), &want);
}

#[test]
fn completed_response_equals_the_non_streamed_answer() {
    for (request, stream, completion) in [
        (
            include_str!("../../../../tests/fixtures/responses/request_text.json"),
            include_str!("../../../../tests/fixtures/responses/chunks_text.sse"),
            include_str!("../../../../tests/fixtures/responses/completion_text.json"),
        ),
        (
            include_str!("../../../../tests/fixtures/responses/request_items.json"),
            include_str!("../../../../tests/fixtures/responses/chunks_tools.sse"),
            include_str!("../../../../tests/fixtures/responses/completion_tools.json"),
        ),
    ] {
        let request = fixture(request);
        let events = encode(&request, &chunks(stream));
        let want = from_chat(&fixture(completion), &request, None).unwrap();
        assert_json_eq(&terminal(&events), &want);
    }
}

#[test]
fn length_finish_ends_with_response_incomplete() {
    let request = json!({"model": "m", "max_output_tokens": 3});
    let input = vec![
        json!({"id": "chatcmpl-l", "created": 5, "model": "m", "choices": [{"index": 0, "delta": {"role": "assistant", "content": "one two"}, "finish_reason": null}]}),
        json!({"id": "chatcmpl-l", "created": 5, "model": "m", "choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]}),
        json!({"id": "chatcmpl-l", "created": 5, "model": "m", "choices": [], "usage": {"prompt_tokens": 4, "completion_tokens": 3, "total_tokens": 7}}),
    ];
    let events = encode(&request, &input);
    let (name, data) = events.last().unwrap();
    assert_eq!(*name, "response.incomplete");
    assert_eq!(
        data["response"]["incomplete_details"],
        json!({"reason": "max_output_tokens"})
    );
    assert_eq!(data["response"]["output"][0]["status"], "incomplete");
    assert_eq!(data["response"]["usage"]["output_tokens"], 3);
    let completion = json!({"id": "chatcmpl-l", "created": 5, "model": "m", "choices": [{"index": 0,
        "message": {"role": "assistant", "content": "one two"}, "finish_reason": "length"}],
        "usage": {"prompt_tokens": 4, "completion_tokens": 3, "total_tokens": 7}});
    assert_json_eq(
        &data["response"],
        &from_chat(&completion, &request, None).unwrap(),
    );
}

#[test]
fn provider_error_mid_stream_fails_the_response() {
    let mut encoder = Encoder::new(&json!({"model": "m"}), None);
    let mut events = encoder
        .push(&json!({"id": "chatcmpl-e", "created": 1, "model": "m", "choices": [{"index": 0, "delta": {"content": "par"}}]}))
        .unwrap();
    events.extend(
        encoder
            .push(&json!({"error": {"message": "overloaded", "type": "overloaded_error"}}))
            .unwrap(),
    );
    let names: Vec<&str> = events.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        names,
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "error",
            "response.failed"
        ]
    );
    let (_, error) = &events[5];
    assert_eq!(error["code"], "overloaded_error");
    assert_eq!(error["message"], "overloaded");
    let failed = &events[6].1["response"];
    assert_eq!(failed["status"], "failed");
    assert_eq!(
        failed["error"],
        json!({"code": "overloaded_error", "message": "overloaded"})
    );
    assert_eq!(failed["output"][0]["status"], "incomplete");
    assert_eq!(failed["output"][0]["content"][0]["text"], "par");
    // Nothing after the failure, and no clean finish.
    assert!(encoder.finish().unwrap().is_empty());
    assert!(encoder.push(&json!({"choices": []})).unwrap().is_empty());
    assert_eq!(
        encoder.final_response().map(|r| r["status"].clone()),
        Some(json!("failed"))
    );
}

#[test]
fn truncated_stream_is_an_error_not_a_completion() {
    let mut encoder = Encoder::new(&json!({"model": "m"}), None);
    assert!(matches!(
        encoder.finish(),
        Err(TranslateError::Malformed(_))
    ));
    let failed = encoder.fail("upstream_error", "no answer");
    assert_eq!(
        failed.len(),
        1,
        "no response.created was sent, so only the error event"
    );
    assert_eq!(failed[0].0, "error");

    let mut encoder = Encoder::new(&json!({"model": "m"}), None);
    encoder
        .push(&json!({"id": "c", "choices": [{"index": 0, "delta": {"content": "hal"}}]}))
        .unwrap();
    assert!(matches!(
        encoder.finish(),
        Err(TranslateError::Malformed(_))
    ));
    let failed = encoder.fail("stream_truncated", "the provider stream ended early");
    assert_eq!(
        failed.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
        ["error", "response.failed"]
    );
    assert!(encoder.fail("again", "x").is_empty());
}

#[test]
fn sequence_numbers_count_from_zero_without_gaps() {
    let request = fixture(include_str!(
        "../../../../tests/fixtures/responses/request_items.json"
    ));
    let events = encode(
        &request,
        &chunks(include_str!(
            "../../../../tests/fixtures/responses/chunks_tools.sse"
        )),
    );
    for (i, (name, data)) in events.iter().enumerate() {
        assert_eq!(data["sequence_number"], i as u64);
        assert_eq!(data["type"], *name);
    }
}

#[test]
fn signature_pieces_merge_into_one_thinking_block() {
    let mut encoder = Encoder::new(&json!({}), None);
    for delta in [
        json!({"reasoning_content": "Let me think", "x_thinking_blocks": [{"type": "thinking", "thinking": "Let me think"}]}),
        json!({"reasoning_content": " more.", "x_thinking_blocks": [{"type": "thinking", "thinking": " more."}]}),
        json!({"x_thinking_blocks": [{"type": "thinking", "thinking": "", "signature": "EqQB"}]}),
        json!({"x_thinking_blocks": [{"type": "redacted_thinking", "data": "cipher"}]}),
        json!({"content": "Answer."}),
    ] {
        encoder
            .push(&json!({"id": "chatcmpl-t", "choices": [{"index": 0, "delta": delta}]}))
            .unwrap();
    }
    encoder.push(&json!({"id": "chatcmpl-t", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})).unwrap();
    let events = encoder.finish().unwrap();
    let response = terminal(&events);
    let messages = crate::wire::responses::output_to_chat_messages(&response);
    assert_json_eq(
        &messages[0]["x_thinking_blocks"],
        &json!([{"type": "thinking", "thinking": "Let me think more.", "signature": "EqQB"},
                {"type": "redacted_thinking", "data": "cipher"}]),
    );
    assert_eq!(messages[0]["reasoning_content"], "Let me think more.");
}

#[test]
fn arguments_after_the_finish_reason_are_malformed() {
    let mut encoder = Encoder::new(&json!({}), None);
    let call = |args: &str, finish: Value| {
        json!({"id": "c", "choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": "call_1",
            "function": {"name": "f", "arguments": args}}]}, "finish_reason": finish}]})
    };
    encoder.push(&call("{", json!("tool_calls"))).unwrap();
    assert!(matches!(
        encoder.push(&call("}", Value::Null)),
        Err(TranslateError::Malformed(_))
    ));
}

#[test]
fn the_canonical_stream_split_at_any_byte_gives_the_same_events() {
    let request = fixture(include_str!(
        "../../../../tests/fixtures/responses/request_items.json"
    ));
    let sse = include_str!("../../../../tests/fixtures/responses/chunks_tools.sse");
    let whole = encode(&request, &chunks(sse));
    proptest!(ProptestConfig::with_cases(64), |(cuts in proptest::collection::vec(0usize..sse.len(), 0..40))| {
        let mut cuts = cuts;
        cuts.sort_unstable();
        cuts.dedup();
        let bytes = sse.as_bytes();
        let mut splitter = SseSplitter::default();
        let mut encoder = Encoder::new(&request, None);
        let mut events = Vec::new();
        let mut start = 0;
        for end in cuts.into_iter().chain([bytes.len()]) {
            for raw in splitter.push(&bytes[start..end]) {
                let Some(data) = raw.data() else { continue };
                if data == "[DONE]" { continue; }
                let chunk: Value = serde_json::from_str(&data).unwrap();
                events.extend(encoder.push(&chunk).unwrap());
            }
            start = end;
        }
        events.extend(encoder.finish().unwrap());
        prop_assert_eq!(events, whole.clone());
    });
}

/// One generated stream: a text split into pieces and parallel calls whose argument pieces
/// are interleaved in a random order, each call's pieces keeping their own order.
#[derive(Clone, Debug)]
struct Script {
    text_pieces: Vec<String>,
    calls: Vec<(String, Vec<String>)>,
    /// Which queue gives the next delta (modulo the non-empty ones).
    picks: Vec<usize>,
    /// How many deltas go in each chunk.
    group: usize,
}

fn script() -> impl Strategy<Value = Script> {
    let piece = "[a-z {}\":,0-9é]{1,6}";
    let text = proptest::collection::vec(piece, 0..6);
    let call = (
        "[a-z_]{1,8}",
        proptest::collection::btree_map("[a-z]{1,4}", any::<i32>(), 0..4),
        proptest::collection::vec(1usize..8, 1..6),
    )
        .prop_map(|(name, args, sizes)| {
            let json = serde_json::to_string(&args).unwrap();
            let chars: Vec<char> = json.chars().collect();
            let mut pieces = Vec::new();
            let mut at = 0;
            for size in sizes.iter().cycle() {
                if at >= chars.len() {
                    break;
                }
                let end = (at + size).min(chars.len());
                pieces.push(chars[at..end].iter().collect());
                at = end;
            }
            (name, pieces)
        });
    (
        text,
        proptest::collection::vec(call, 0..4),
        proptest::collection::vec(any::<usize>(), 64),
        1usize..4,
    )
        .prop_map(|(text_pieces, calls, picks, group)| Script {
            text_pieces,
            calls,
            picks,
            group,
        })
}

/// The canonical chunks of a script, its tool calls (id, name, full arguments), and whether
/// all the text comes before the first call.
fn render(script: &Script) -> (Vec<Value>, Vec<(String, String, String)>, bool) {
    #[derive(Clone)]
    enum Delta {
        Text(String),
        Args {
            index: usize,
            first: bool,
            piece: String,
        },
    }
    let mut queues: Vec<Vec<Delta>> = Vec::new();
    queues.push(
        script
            .text_pieces
            .iter()
            .cloned()
            .map(Delta::Text)
            .rev()
            .collect(),
    );
    for (index, (_, pieces)) in script.calls.iter().enumerate() {
        let mut queue: Vec<Delta> = pieces
            .iter()
            .enumerate()
            .map(|(i, piece)| Delta::Args {
                index,
                first: i == 0,
                piece: piece.clone(),
            })
            .collect();
        queue.reverse();
        queues.push(queue);
    }
    let mut order = Vec::new();
    let mut picks = script.picks.iter().cycle();
    while queues.iter().any(|q| !q.is_empty()) {
        let live: Vec<usize> = (0..queues.len())
            .filter(|&i| !queues[i].is_empty())
            .collect();
        let pick = picks.next().copied().unwrap_or(0) % live.len();
        order.extend(queues[live[pick]].pop());
    }
    let first_call = order.iter().position(|d| matches!(d, Delta::Args { .. }));
    let last_text = order.iter().rposition(|d| matches!(d, Delta::Text(_)));
    let text_first = match (first_call, last_text) {
        (Some(call), Some(text)) => text < call,
        _ => true,
    };
    let base = json!({"id": "chatcmpl-prop", "object": "chat.completion.chunk", "created": 7, "model": "m"});
    let mut chunks = Vec::new();
    for group in order.chunks(script.group) {
        let mut content = String::new();
        let mut tool_calls = Vec::new();
        for delta in group {
            match delta {
                Delta::Text(t) => content.push_str(t),
                Delta::Args {
                    index,
                    first,
                    piece,
                } => {
                    let mut call = json!({"index": index, "function": {"arguments": piece}});
                    if *first {
                        call["id"] = json!(format!("call_{index}"));
                        call["type"] = json!("function");
                        call["function"]["name"] = json!(script.calls[*index].0);
                    }
                    tool_calls.push(call);
                }
            }
        }
        let mut delta = json!({});
        if !content.is_empty() {
            delta["content"] = json!(content);
        }
        if !tool_calls.is_empty() {
            delta["tool_calls"] = json!(tool_calls);
        }
        let mut chunk = base.clone();
        chunk["choices"] = json!([{"index": 0, "delta": delta, "finish_reason": null}]);
        chunks.push(chunk);
    }
    let finish = if script.calls.is_empty() {
        "stop"
    } else {
        "tool_calls"
    };
    let mut last = base.clone();
    last["choices"] = json!([{"index": 0, "delta": {}, "finish_reason": finish}]);
    chunks.push(last);
    let mut usage = base;
    usage["choices"] = json!([]);
    usage["usage"] = json!({"prompt_tokens": 10, "completion_tokens": 20, "total_tokens": 30});
    chunks.push(usage);
    let calls = script
        .calls
        .iter()
        .enumerate()
        .map(|(i, (name, pieces))| (format!("call_{i}"), name.clone(), pieces.concat()))
        .collect();
    (chunks, calls, text_first)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn parallel_call_arguments_concatenate_to_the_done_and_completed_values(script in script()) {
        let (chunks, calls, text_first) = render(&script);
        let events = encode(&json!({"model": "m"}), &chunks);

        // Sequence numbers, and every delta lands on an item announced before it.
        let mut announced: BTreeMap<u64, String> = BTreeMap::new();
        let mut deltas: BTreeMap<String, String> = BTreeMap::new();
        let mut done: BTreeMap<String, String> = BTreeMap::new();
        let mut text = String::new();
        for (i, (name, data)) in events.iter().enumerate() {
            prop_assert_eq!(data["sequence_number"].as_u64(), Some(i as u64));
            match *name {
                "response.output_item.added" => {
                    let index = data["output_index"].as_u64().unwrap();
                    prop_assert_eq!(index, announced.len() as u64);
                    announced.insert(index, data["item"]["id"].as_str().unwrap().to_string());
                }
                "response.function_call_arguments.delta" => {
                    let id = data["item_id"].as_str().unwrap().to_string();
                    let index = data["output_index"].as_u64().unwrap();
                    prop_assert_eq!(announced.get(&index), Some(&id));
                    prop_assert!(!done.contains_key(&id), "delta after done");
                    deltas.entry(id).or_default().push_str(data["delta"].as_str().unwrap());
                }
                "response.function_call_arguments.done" => {
                    let id = data["item_id"].as_str().unwrap().to_string();
                    done.insert(id, data["arguments"].as_str().unwrap().to_string());
                }
                "response.output_text.delta" => text.push_str(data["delta"].as_str().unwrap()),
                _ => {}
            }
        }
        prop_assert_eq!(events.last().map(|(n, _)| *n), Some("response.completed"));
        let response = terminal(&events);
        let items: Vec<&Value> = response["output"].as_array().unwrap().iter()
            .filter(|i| i["type"] == "function_call").collect();
        prop_assert_eq!(items.len(), calls.len());
        for (call_id, name, arguments) in &calls {
            let item_id = call_item_id(call_id);
            prop_assert_eq!(done.get(&item_id), Some(arguments));
            prop_assert_eq!(deltas.get(&item_id).map(String::as_str).unwrap_or(""), arguments.as_str());
            let item = items.iter().find(|i| i["call_id"] == json!(call_id)).unwrap();
            prop_assert_eq!(&item["arguments"], &json!(arguments));
            prop_assert_eq!(&item["name"], &json!(name));
            prop_assert_eq!(&item["id"], &json!(item_id));
        }
        prop_assert_eq!(&text, &script.text_pieces.concat());
        let completed_text: String = response["output"].as_array().unwrap().iter()
            .filter(|i| i["type"] == "message")
            .flat_map(|i| i["content"].as_array().unwrap().iter())
            .filter_map(|p| p["text"].as_str())
            .collect();
        prop_assert_eq!(completed_text, script.text_pieces.concat());

        // When the text comes first, the stream gives exactly the non-streamed answer.
        if text_first {
            let mut message = json!({"role": "assistant", "content": null});
            if !script.text_pieces.is_empty() {
                message["content"] = json!(script.text_pieces.concat());
            }
            if !calls.is_empty() {
                let mut ordered: Vec<&(String, String, String)> = calls.iter().collect();
                ordered.sort_by_key(|(id, _, _)| announced.values().position(|v| *v == call_item_id(id)));
                message["tool_calls"] = json!(ordered.iter().map(|(id, name, args)| json!({
                    "id": id, "type": "function", "function": {"name": name, "arguments": args}
                })).collect::<Vec<_>>());
            }
            let completion = json!({"id": "chatcmpl-prop", "created": 7, "model": "m", "choices": [{
                "index": 0, "message": message,
                "finish_reason": if calls.is_empty() { "stop" } else { "tool_calls" }}],
                "usage": {"prompt_tokens": 10, "completion_tokens": 20, "total_tokens": 30}});
            let want = from_chat(&completion, &json!({"model": "m"}), None).unwrap();
            prop_assert_eq!(&response, &want);
        }
    }
}
