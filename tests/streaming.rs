//! Streams end to end: chunks pass through as they arrive, usage is captured (and withheld from
//! clients that did not ask for it), streamed and non-streamed requests cost the same, and every
//! way a stream can fail is an error event plus a trace that says so.

mod common;

use std::time::Duration;

use common::{Harness, chat, read_frames, sse_data};
use hyper::Method;
use mock_upstream::Behavior;
use serde_json::{Value, json};

#[tokio::test]
async fn chunks_reach_the_client_before_the_upstream_finishes() {
    let h = Harness::start().await;
    h.mock.push(Behavior {
        chunk_delay_ms: 150,
        chunks: Some(5),
        ..Behavior::default()
    });
    let response = h
        .client
        .send(
            Method::POST,
            "/v1/chat/completions",
            &chat("gpt-4o-mini", "Say hello", true),
            &[],
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let (frames, error) = read_frames(response, Duration::from_secs(5)).await;
    assert_eq!(error, None);
    // The upstream needs at least 6 gaps of 150 ms; the first content must arrive well before.
    let first = frames.first().map(|(t, _)| *t).unwrap();
    let last = frames.last().map(|(t, _)| *t).unwrap();
    assert!(
        first < Duration::from_millis(400),
        "first frame after {first:?}"
    );
    assert!(
        last >= Duration::from_millis(750),
        "last frame after {last:?}"
    );
    assert!(frames.len() >= 5, "only {} frames", frames.len());
    let body: String = frames
        .iter()
        .map(|(_, b)| String::from_utf8_lossy(b).into_owned())
        .collect();
    let data = sse_data(&body);
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"));
    assert_eq!(delta_text(&body), "Hello from the mock upstream.");
    let trace = &h.traces(1).await[0];
    assert!(trace.stream);
    assert!(trace.ttft_us.unwrap() < trace.latency_us);
}

#[tokio::test]
async fn usage_chunk_is_asked_for_and_withheld_from_clients_that_did_not_ask() {
    let h = Harness::start().await;
    let answer = h
        .client
        .post(
            "/v1/chat/completions",
            &chat("gpt-4o-mini", "Say hello", true),
        )
        .await;
    assert_eq!(
        h.mock.requests()[0].body["stream_options"]["include_usage"],
        true,
        "proxy asks upstream for usage"
    );
    let data = sse_data(&answer.text());
    assert!(
        !has_usage_chunk(&data),
        "usage chunk leaked to a client that did not ask: {data:?}"
    );
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"));

    let body = json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say hello"}],
                      "stream": true, "stream_options": {"include_usage": true}});
    let answer = h
        .client
        .post("/v1/chat/completions", &body.to_string())
        .await;
    let data = sse_data(&answer.text());
    let usage: Vec<Value> = data
        .iter()
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter(|v| v["usage"].is_object())
        .collect();
    assert_eq!(usage.len(), 1);
    assert_eq!(usage[0]["usage"]["prompt_tokens"], 6);

    let traces = h.traces(2).await;
    for trace in traces {
        assert_eq!(
            (
                trace.tokens.prompt,
                trace.tokens.completion,
                trace.usage_estimated
            ),
            (6, 5, false)
        );
    }
}

/// The client's bytes go upstream with the usage member added when it set no stream options;
/// options it did set (even `null`, or `false`) are encoded again with usage turned on. Either
/// way the upstream gets every field the client sent, and a client that did not ask sees no
/// usage chunk.
#[tokio::test]
async fn usage_is_asked_for_whatever_stream_options_the_client_set() {
    let h = Harness::start().await;
    let bodies = [
        r#"{"messages":[{"role":"user","content":"Say hello"}],"stream":true,"x_vendor":[1,2.50],"model":"gpt-4o-mini"}"#,
        r#"{"model":"gpt-4o-mini","stream_options":null,"stream":true,"x_vendor":[1,2.50],"messages":[{"role":"user","content":"Say hello"}]}"#,
        r#"{"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":false},"x_vendor":[1,2.50],"messages":[{"role":"user","content":"Say hello"}]}"#,
    ];
    for (i, body) in bodies.iter().enumerate() {
        let answer = h.client.post("/v1/chat/completions", body).await;
        assert_eq!(answer.status, 200, "{body}");
        let sent = &h.mock.requests()[i].body;
        assert_eq!(sent["stream_options"]["include_usage"], true, "{body}");
        assert_eq!(sent["x_vendor"], json!([1, 2.5]), "{body}");
        assert_eq!(sent["messages"][0]["content"], "Say hello", "{body}");
        assert!(
            !has_usage_chunk(&sse_data(&answer.text())),
            "usage chunk leaked to a client that did not ask: {body}"
        );
    }
    for trace in h.traces(3).await {
        assert_eq!((trace.tokens.prompt, trace.usage_estimated), (6, false));
    }
}

#[tokio::test]
async fn streamed_and_unstreamed_requests_record_the_same_tokens_and_cost() {
    let h = Harness::start().await;
    let faults = Behavior {
        cached_tokens: 3,
        reasoning_tokens: 7,
        ..Behavior::default()
    };
    h.mock.push(faults.clone());
    h.mock.push(faults);
    let plain = h
        .client
        .post(
            "/v1/chat/completions",
            &chat("gpt-4o-mini", "one two three four", false),
        )
        .await;
    let streamed = h
        .client
        .post(
            "/v1/chat/completions",
            &chat("gpt-4o-mini", "one two three four", true),
        )
        .await;
    assert_eq!(
        (plain.status.as_u16(), streamed.status.as_u16()),
        (200, 200)
    );
    let traces = h.traces(2).await;
    assert_eq!(traces[0].tokens, traces[1].tokens);
    assert_eq!(traces[0].cost_nanos, traces[1].cost_nanos);
    assert_eq!(traces[1].tokens.cached_input, 3);
    assert_eq!(traces[1].tokens.reasoning, 7);
    assert!(traces[1].cost_nanos > 0);
    assert!(traces[1].stream && !traces[0].stream);
}

#[tokio::test]
async fn missing_usage_is_estimated_with_the_tokenizer() {
    let h = Harness::start().await;
    h.mock.push(Behavior {
        omit_usage: true,
        ..Behavior::default()
    });
    let answer = h
        .client
        .post(
            "/v1/chat/completions",
            &chat("gpt-4o-mini", "Say hello", true),
        )
        .await;
    assert_eq!(answer.status, 200);
    let trace = &h.traces(1).await[0];
    assert!(trace.usage_estimated);
    // o200k_base: "Say hello" = 2 tokens + 3 per message + 3 priming; "Hello from the mock
    // upstream." = 6 tokens.
    assert_eq!(trace.tokens.prompt, 8);
    assert_eq!(trace.tokens.completion, 6);
    assert!(trace.cost_nanos > 0);
}

/// Some OpenAI-compatible servers write JSON with spaces (`"usage": {...}`). The relay's quick
/// scan of ordinary chunks must not misread such a stream: the content reaches the client, and
/// the usage the server reported is the one recorded, not an estimate.
#[tokio::test]
async fn spaced_json_streams_record_the_reported_usage() {
    let h = Harness::start().await;
    let spaced = Behavior {
        spaced_json: true,
        cached_tokens: 3,
        ..Behavior::default()
    };
    h.mock.push(spaced.clone());
    h.mock.push(Behavior {
        cached_tokens: 3,
        ..Behavior::default()
    });
    let mut answers = Vec::new();
    for _ in 0..2 {
        answers.push(
            h.client
                .post(
                    "/v1/chat/completions",
                    &chat("gpt-4o-mini", "one two three four", true),
                )
                .await,
        );
    }
    assert!(
        answers[0].text().contains(r#""content": "Hello "#),
        "{}",
        answers[0].text()
    );
    let text = |answer: &common::Answer| delta_text(&answer.text());
    assert_eq!(text(&answers[0]), mock_upstream::DEFAULT_CONTENT);
    assert_eq!(text(&answers[0]), text(&answers[1]));
    let traces = h.traces(2).await;
    assert!(!traces[0].usage_estimated && !traces[1].usage_estimated);
    assert_eq!(traces[0].tokens, traces[1].tokens);
    assert_eq!(traces[0].tokens.cached_input, 3);
}

#[tokio::test]
async fn reset_mid_stream_becomes_an_error_event_without_done() {
    let h = Harness::start().await;
    h.mock.push(Behavior {
        reset_after_chunks: Some(2),
        ..Behavior::default()
    });
    let answer = h
        .client
        .post("/v1/chat/completions", &chat("gpt-4o-mini", "hi", true))
        .await;
    assert_eq!(answer.status, 200);
    let data = sse_data(&answer.text());
    assert!(!data.iter().any(|d| d == "[DONE]"), "{data:?}");
    let last: Value = serde_json::from_str(data.last().unwrap()).unwrap();
    assert_eq!(last["error"]["type"], "upstream_error");
    assert!(last["error"]["message"].is_string());
    assert!(last["error"].get("param").is_some() && last["error"]["code"].is_string());
    let trace = &h.traces(1).await[0];
    assert_eq!(
        trace.error_class.as_deref(),
        Some("upstream_protocol_error")
    );
}

#[tokio::test]
async fn stalled_stream_ends_with_an_idle_timeout_error() {
    let h = Harness::start_with("[providers.openai]\ntimeouts = { stream_idle_ms = 200 }\n").await;
    h.mock.push(Behavior {
        chunk_delay_ms: 2_000,
        ..Behavior::default()
    });
    let started = std::time::Instant::now();
    let answer = h
        .client
        .post("/v1/chat/completions", &chat("gpt-4o-mini", "hi", true))
        .await;
    assert!(started.elapsed() < Duration::from_secs(2));
    let data = sse_data(&answer.text());
    let last: Value = serde_json::from_str(data.last().unwrap()).unwrap();
    assert_eq!(last["error"]["code"], "upstream_timeout");
    let trace = &h.traces(1).await[0];
    assert_eq!(trace.error_class.as_deref(), Some("upstream_timeout"));
}

#[tokio::test]
async fn upstream_error_event_is_forwarded_and_never_a_clean_finish() {
    let h = Harness::start().await;
    // A malformed chunk is forwarded as is; the stream still finishes cleanly.
    h.mock.push(Behavior {
        malformed_body: true,
        ..Behavior::default()
    });
    let answer = h
        .client
        .post("/v1/chat/completions", &chat("gpt-4o-mini", "hi", true))
        .await;
    assert_eq!(
        sse_data(&answer.text()).last().map(String::as_str),
        Some("[DONE]")
    );
    // An upstream error status before the stream starts passes through with its status.
    h.mock.push(Behavior {
        status: Some(503),
        ..Behavior::default()
    });
    let answer = h
        .client
        .post("/v1/chat/completions", &chat("gpt-4o-mini", "hi", true))
        .await;
    assert_eq!(answer.status, 503);
    assert_eq!(answer.json()["error"]["code"], "mock_503");
}

#[tokio::test]
async fn client_disconnect_cancels_the_upstream_and_is_traced() {
    let h = Harness::start().await;
    h.mock.push(Behavior {
        chunk_delay_ms: 300,
        chunks: Some(10),
        ..Behavior::default()
    });
    let response = h
        .client
        .send(
            Method::POST,
            "/v1/chat/completions",
            &chat("gpt-4o-mini", "hi", true),
            &[],
        )
        .await;
    let mut body = response.into_body();
    let first = tokio::time::timeout(
        Duration::from_secs(5),
        http_body_util::BodyExt::frame(&mut body),
    )
    .await;
    assert!(matches!(first, Ok(Some(Ok(_)))));
    drop(body);
    let trace = &h.traces(1).await[0];
    assert_eq!(trace.error_class.as_deref(), Some("cancelled"));
    // Cancelled well before the upstream's 3 s of chunks.
    assert!(trace.latency_us < 2_500_000, "latency {}", trace.latency_us);
}

/// The first choice's content deltas of an SSE body, joined.
/// Whether any event of a stream carries a usage object.
fn has_usage_chunk(data: &[String]) -> bool {
    data.iter()
        .any(|d| serde_json::from_str::<Value>(d).is_ok_and(|v| v["usage"].is_object()))
}

fn delta_text(body: &str) -> String {
    sse_data(body)
        .iter()
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter_map(|v| {
            v["choices"][0]["delta"]["content"]
                .as_str()
                .map(String::from)
        })
        .collect()
}
