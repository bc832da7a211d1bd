//! The Responses API (`POST /v1/responses`): the response object and its echoes, the token rule,
//! forced function calls, the named event stream with sequence numbers, and the stream faults
//! (reset, `error` + `response.failed`, a broken event, no usage).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::{bounded, json, post, read_until_abort, sse_events};
use http_body_util::BodyExt;
use hyper::{Method, StatusCode};
use mock_upstream::{Behavior, MockUpstream};
use serde_json::{Value, json};

const PATH: &str = "/v1/responses";

fn weather_tools() -> Value {
    json!([
        {"type": "function", "name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}},
        {"type": "function", "name": "get_time", "parameters": {"type": "object"}}
    ])
}

fn names(events: &[(String, Value)]) -> Vec<&str> {
    events.iter().map(|(name, _)| name.as_str()).collect()
}

fn assert_sequence_numbers(events: &[(String, Value)]) {
    for (i, (name, data)) in events.iter().enumerate() {
        assert_eq!(data["sequence_number"], i, "sequence_number of {name}");
    }
}

#[tokio::test]
async fn text_answer_has_the_response_shape_usage_and_is_recorded() {
    let mock = MockUpstream::start().await.unwrap();
    mock.push(Behavior {
        cached_tokens: 3,
        reasoning_tokens: 2,
        ..Behavior::default()
    });
    let req = json!({
        "model": "gpt-4.1",
        "instructions": "Be terse please.",
        "input": "tell me something"
    });
    let (status, headers, body) = post(&mock, PATH, &req).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "application/json");
    let mut resp = json(&body);
    assert!(resp["created_at"].as_u64().unwrap() > 1_700_000_000);
    resp.as_object_mut().unwrap().remove("created_at");
    // input: instructions 3 + (3 + 4); output: 5 words + 2 reasoning.
    assert_eq!(
        resp,
        json!({
            "id": "resp_mock_1",
            "object": "response",
            "status": "completed",
            "error": null,
            "incomplete_details": null,
            "model": "gpt-4.1",
            "instructions": "Be terse please.",
            "output": [{
                "type": "message",
                "id": "msg_mock_1",
                "status": "completed",
                "role": "assistant",
                "content": [{
                    "type": "output_text",
                    "text": "Hello from the mock upstream.",
                    "annotations": [],
                    "logprobs": []
                }]
            }],
            "tools": [],
            "tool_choice": "auto",
            "previous_response_id": null,
            "store": true,
            "usage": {
                "input_tokens": 10,
                "input_tokens_details": {"cached_tokens": 3},
                "output_tokens": 7,
                "output_tokens_details": {"reasoning_tokens": 2},
                "total_tokens": 17
            }
        })
    );

    let recorded = mock.requests();
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].method, "POST");
    assert_eq!(recorded[0].path, PATH);
    assert_eq!(recorded[0].body, req);
}

#[tokio::test]
async fn item_input_counts_message_items_and_echoes_conversation_fields() {
    let mock = MockUpstream::start().await.unwrap();
    let req = json!({
        "model": "gpt-4.1",
        "input": [
            {"role": "user", "content": "what is the weather"},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "in Paris"}]},
            {"type": "function_call_output", "call_id": "call_1", "output": "sunny and warm"}
        ],
        "tools": weather_tools(),
        "tool_choice": "auto",
        "previous_response_id": "resp_prev_7",
        "store": false,
        "mock": {"content": "Sunny."}
    });
    let (status, _, body) = post(&mock, PATH, &req).await;
    assert_eq!(status, StatusCode::OK);
    let resp = json(&body);
    // (4 + 4) + (2 + 4); the function output counts nothing.
    assert_eq!(resp["usage"]["input_tokens"], 14);
    assert_eq!(resp["usage"]["output_tokens"], 1);
    assert_eq!(resp["usage"]["total_tokens"], 15);
    assert_eq!(resp["output"][0]["content"][0]["text"], "Sunny.");
    assert_eq!(resp["previous_response_id"], "resp_prev_7");
    assert_eq!(resp["store"], false);
    assert_eq!(resp["instructions"], Value::Null);
    assert_eq!(resp["tools"], weather_tools());
}

#[tokio::test]
async fn forced_tool_choice_answers_with_a_function_call() {
    let mock = MockUpstream::start().await.unwrap();
    let req = json!({
        "model": "gpt-4.1",
        "input": "weather in Paris?",
        "tools": weather_tools(),
        "tool_choice": "required"
    });
    let (_, _, body) = post(&mock, PATH, &req).await;
    let resp = json(&body);
    assert_eq!(
        resp["output"],
        json!([{
            "type": "function_call",
            "id": "fc_mock_1",
            "call_id": "call_mock_1",
            "name": "get_weather",
            "arguments": "{\"city\":\"Paris\"}",
            "status": "completed"
        }])
    );
    assert_eq!(resp["usage"]["output_tokens"], 1);
    assert_eq!(resp["usage"]["input_tokens"], 7);

    let mut named = req.clone();
    named["tool_choice"] = json!({"type": "function", "name": "get_time"});
    let (_, _, body) = post(&mock, PATH, &named).await;
    assert_eq!(json(&body)["output"][0]["name"], "get_time");
}

#[tokio::test]
async fn text_stream_has_the_event_order_sequence_numbers_and_timing() {
    let mock = MockUpstream::start().await.unwrap();
    mock.push(Behavior {
        chunks: Some(3),
        chunk_delay_ms: 15,
        reasoning_tokens: 1,
        ..Behavior::default()
    });
    let req = json!({"model": "gpt-4.1", "input": "tell me something", "stream": true});
    let resp = common::send(&mock, Method::POST, PATH, &req.to_string()).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let mut body = resp.into_body();
    let start = Instant::now();
    let mut frames = Vec::new();
    while let Some(frame) = bounded(body.frame()).await {
        if let Ok(data) = frame.unwrap().into_data() {
            frames.push((start.elapsed(), data));
        }
    }
    assert_eq!(frames.len(), 11, "each event arrives as its own frame");
    let spread = frames[10].0 - frames[0].0;
    assert!(
        spread >= Duration::from_millis(150),
        "events were spread over {spread:?}"
    );
    let all: Vec<u8> = frames.iter().flat_map(|(_, d)| d.to_vec()).collect();
    let events = sse_events(&all);
    assert_eq!(
        names(&events),
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.completed",
        ]
    );
    assert_sequence_numbers(&events);

    let created = &events[0].1["response"];
    assert_eq!(created["status"], "in_progress");
    assert_eq!(created["output"], json!([]));
    assert_eq!(created["usage"], Value::Null);
    assert_eq!(events[1].1["response"], *created);
    assert_eq!(
        events[2].1["item"],
        json!({"type": "message", "id": "msg_mock_1", "status": "in_progress", "role": "assistant", "content": []})
    );
    assert_eq!(events[3].1["part"]["text"], "");
    let text: String = events[4..7]
        .iter()
        .map(|(_, d)| {
            assert_eq!(d["item_id"], "msg_mock_1");
            assert_eq!(d["output_index"], 0);
            assert_eq!(d["content_index"], 0);
            d["delta"].as_str().unwrap()
        })
        .collect();
    assert_eq!(text, "Hello from the mock upstream.");
    assert_eq!(events[7].1["text"], text);
    assert_eq!(events[8].1["part"]["text"], text);
    assert_eq!(events[9].1["item"]["status"], "completed");

    // The terminal response equals the non-streamed answer but for its id and time.
    let completed = events[10].1["response"].clone();
    assert_eq!(completed["status"], "completed");
    assert_eq!(completed["output"], json!([events[9].1["item"]]));
    let mut plain = req.clone();
    plain["stream"] = json!(false);
    plain["mock"] = json!({"reasoning_tokens": 1});
    let (_, _, body) = post(&mock, PATH, &plain).await;
    let strip = |mut v: Value| {
        let map = v.as_object_mut().unwrap();
        map.remove("created_at");
        map.remove("id");
        v["output"][0]["id"] = Value::Null;
        v
    };
    assert_eq!(strip(completed.clone()), strip(json(&body)));
    assert_eq!(completed["usage"]["output_tokens"], 6);
}

#[tokio::test]
async fn function_call_stream_sends_argument_deltas() {
    let mock = MockUpstream::start().await.unwrap();
    let req = json!({
        "model": "gpt-4.1",
        "input": "weather in Paris?",
        "tools": weather_tools(),
        "tool_choice": "required",
        "stream": true
    });
    let (status, _, body) = post(&mock, PATH, &req).await;
    assert_eq!(status, StatusCode::OK);
    let events = sse_events(&body);
    assert_eq!(
        names(&events),
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.done",
            "response.output_item.done",
            "response.completed",
        ]
    );
    assert_sequence_numbers(&events);
    assert_eq!(
        events[2].1["item"],
        json!({
            "type": "function_call", "id": "fc_mock_1", "call_id": "call_mock_1",
            "name": "get_weather", "arguments": "", "status": "in_progress"
        })
    );
    assert_eq!(events[3].1["delta"], "{\"city\":");
    assert_eq!(events[4].1["delta"], "\"Paris\"}");
    assert_eq!(events[4].1["item_id"], "fc_mock_1");
    assert_eq!(events[5].1["arguments"], "{\"city\":\"Paris\"}");
    assert_eq!(events[6].1["item"]["arguments"], "{\"city\":\"Paris\"}");
    assert_eq!(events[6].1["item"]["status"], "completed");
    let completed = &events[7].1["response"];
    assert_eq!(completed["output"], json!([events[6].1["item"]]));
    assert_eq!(completed["usage"]["output_tokens"], 1);
}

#[tokio::test]
async fn reset_after_chunks_aborts_without_completed() {
    let mock = MockUpstream::start().await.unwrap();
    mock.push(Behavior {
        reset_after_chunks: Some(2),
        ..Behavior::default()
    });
    let req = json!({"model": "gpt-4.1", "input": "hi", "stream": true});
    let resp = common::send(&mock, Method::POST, PATH, &req.to_string()).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let (received, _error) = read_until_abort(resp).await;
    let events = sse_events(&received);
    assert_eq!(events.len(), 6, "{:?}", names(&events));
    assert_eq!(events[5].0, "response.output_text.delta");
    assert!(!names(&events).contains(&"response.completed"));
}

#[tokio::test]
async fn error_event_sends_error_then_failed_and_ends_cleanly() {
    let mock = MockUpstream::start().await.unwrap();
    mock.push(Behavior {
        error_event_after_chunks: Some(1),
        ..Behavior::default()
    });
    let req = json!({"model": "gpt-4.1", "input": "hi", "stream": true});
    // `post` reads to a clean end; an abort would fail it.
    let (status, _, body) = post(&mock, PATH, &req).await;
    assert_eq!(status, StatusCode::OK);
    let events = sse_events(&body);
    assert_eq!(
        names(&events),
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "error",
            "response.failed",
        ]
    );
    assert_sequence_numbers(&events);
    assert_eq!(
        events[5].1,
        json!({"type": "error", "code": "server_error", "message": "mock error", "param": null, "sequence_number": 5})
    );
    let failed = &events[6].1["response"];
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["id"], "resp_mock_1");
    assert_eq!(
        failed["error"],
        json!({"code": "server_error", "message": "mock error"})
    );

    // Through the "mock" object, for a function call, before the first delta.
    let req = json!({
        "model": "gpt-4.1", "input": "hi", "stream": true,
        "tools": weather_tools(), "tool_choice": "required",
        "mock": {"error_event_after_chunks": 0}
    });
    let (_, _, body) = post(&mock, PATH, &req).await;
    assert_eq!(
        names(&sse_events(&body)),
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "error",
            "response.failed",
        ]
    );
}

#[tokio::test]
async fn omit_usage_and_malformed_body_and_status_faults() {
    let mock = MockUpstream::start().await.unwrap();
    let req = json!({"model": "gpt-4.1", "input": "hi", "mock": {"omit_usage": true}});
    let (_, _, body) = post(&mock, PATH, &req).await;
    assert_eq!(json(&body)["usage"], Value::Null);

    let mut streamed = req.clone();
    streamed["stream"] = json!(true);
    let (_, _, body) = post(&mock, PATH, &streamed).await;
    let events = sse_events(&body);
    assert_eq!(events.last().unwrap().0, "response.completed");
    assert_eq!(events.last().unwrap().1["response"]["usage"], Value::Null);

    // One broken event before the first delta; the rest still arrive.
    streamed["mock"] = json!({"malformed_body": true, "chunks": 1});
    let (_, _, body) = post(&mock, PATH, &streamed).await;
    let text = std::str::from_utf8(&body).unwrap();
    let broken: Vec<&str> = text
        .split("\n\n")
        .filter(|e| !e.is_empty())
        .filter(|e| {
            let data = e.split_once("\ndata: ").unwrap().1;
            serde_json::from_str::<Value>(data).is_err()
        })
        .collect();
    assert_eq!(broken.len(), 1);
    assert!(broken[0].starts_with("event: response.output_text.delta\n"));
    assert!(text.contains("event: response.completed\n"));

    mock.push(Behavior {
        status: Some(429),
        retry_after_s: Some(2),
        ..Behavior::default()
    });
    let (status, headers, body) = post(&mock, PATH, &json!({"input": "hi"})).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(headers["retry-after"], "2");
    assert_eq!(
        json(&body),
        json!({"error": {"message": "mock error", "type": "mock_error", "param": null, "code": "mock_429"}})
    );
    assert_eq!(mock.request_count(), 4);
}
