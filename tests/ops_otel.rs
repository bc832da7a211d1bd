//! OpenTelemetry: request spans reach an in-process OTLP/HTTP receiver with the GenAI semantic
//! conventions, join the caller's trace, and follow an endpoint changed at run time.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::receiver::{Received, Receiver};
use common::{ADMIN_KEY, Harness, chat};
use hyper::{Method, StatusCode};
use serde_json::Value;

fn spans(received: &[Received]) -> Vec<Value> {
    received
        .iter()
        .flat_map(|r| {
            let body = r.json();
            body["resourceSpans"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|rs| rs["scopeSpans"].as_array().unwrap().clone())
                .flat_map(|ss| ss["spans"].as_array().unwrap().clone())
                .collect::<Vec<_>>()
        })
        .collect()
}

fn attribute<'a>(span: &'a Value, key: &str) -> Option<&'a Value> {
    span["attributes"]
        .as_array()?
        .iter()
        .find(|a| a["key"] == key)
        .map(|a| &a["value"])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_follow_the_genai_conventions_and_a_changed_endpoint() {
    let first = Receiver::start().await;
    let toml = format!(
        "[admin]\nkey = \"{ADMIN_KEY}\"\n\n[modules.otel]\nendpoint = \"{}/v1/traces\"\n\
         export_interval_ms = 100\nservice_name = \"proxy-under-test\"\n",
        first.url
    );
    let h = Harness::start_with(&toml).await;
    let parent_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let answer = h
        .client
        .call(
            Method::POST,
            "/v1/chat/completions",
            &chat("gpt-4o-mini", "hello", false),
            &[(
                "traceparent",
                &format!("00-{parent_trace}-00f067aa0ba902b7-01"),
            )],
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    h.client
        .post(
            "/v1/chat/completions",
            &chat("gpt-4o-mini", "streamed", true),
        )
        .await;
    let got = first.wait_for(1, Duration::from_secs(10)).await;
    let mut all = spans(&got);
    if all.len() < 2 {
        all = spans(&first.wait_for(2, Duration::from_secs(5)).await);
    }
    assert_eq!(all.len(), 2, "{got:?}");
    let received = &first.received()[0];
    assert_eq!(received.path, "/v1/traces");
    assert_eq!(received.content_type.as_deref(), Some("application/json"));
    let body = received.json();
    let resource = &body["resourceSpans"][0]["resource"]["attributes"];
    assert!(
        resource.to_string().contains("proxy-under-test"),
        "{resource}"
    );

    let trace = h.traces(2).await;
    let joined = all
        .iter()
        .find(|s| s["traceId"] == parent_trace)
        .expect("a span in the caller's trace");
    assert_eq!(joined["parentSpanId"], "00f067aa0ba902b7");
    assert_eq!(joined["name"], "chat gpt-4o-mini");
    assert_eq!(joined["kind"], 3);
    assert_eq!(
        attribute(joined, "gen_ai.operation.name").unwrap()["stringValue"],
        "chat"
    );
    assert_eq!(
        attribute(joined, "gen_ai.request.model").unwrap()["stringValue"],
        "gpt-4o-mini"
    );
    assert_eq!(
        attribute(joined, "gen_ai.provider.name").unwrap()["stringValue"],
        "openai"
    );
    let first_trace = trace.iter().find(|t| !t.stream).unwrap();
    assert_eq!(
        attribute(joined, "gen_ai.usage.input_tokens").unwrap()["intValue"],
        first_trace.tokens.prompt.to_string()
    );
    assert_eq!(
        attribute(joined, "gen_ai.usage.output_tokens").unwrap()["intValue"],
        first_trace.tokens.completion.to_string()
    );
    assert_eq!(
        attribute(joined, "stockyard.request_id").unwrap()["stringValue"],
        first_trace.request_id
    );
    let start: u128 = joined["startTimeUnixNano"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let end: u128 = joined["endTimeUnixNano"].as_str().unwrap().parse().unwrap();
    assert!(end > start);
    let streamed = all.iter().find(|s| s["traceId"] != parent_trace).unwrap();
    assert_eq!(streamed["traceId"].as_str().unwrap().len(), 32);
    assert!(attribute(streamed, "stockyard.ttft_ms").is_some());
    // No key or body in any span.
    let text = serde_json::to_string(&all).unwrap();
    assert!(!text.contains(common::PROVIDER_KEY));
    assert!(!text.contains("hello"));

    // The endpoint follows a config change made at run time.
    let second = Receiver::start().await;
    let change = serde_json::json!({
        "enabled": true,
        "config": {"endpoint": format!("{}/v1/traces", second.url), "export_interval_ms": 100},
    });
    let changed = h
        .client
        .admin(Method::PUT, "/admin/modules/otel", &change.to_string())
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.text());
    h.client
        .post("/v1/chat/completions", &chat("gpt-4o-mini", "after", false))
        .await;
    let moved = second.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(spans(&moved).len(), 1);
    assert_eq!(spans(&first.received()).len(), 2);
}

#[tokio::test]
async fn without_an_endpoint_nothing_is_exported() {
    let h = Harness::start().await;
    h.client
        .post("/v1/chat/completions", &chat("gpt-4o-mini", "hi", false))
        .await;
    h.traces(1).await;
    let exporter = h
        .server
        .app
        .admin
        .deps()
        .shared
        .get::<stockyard::modules::otel::Exporter>()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        exporter.exported.load(std::sync::atomic::Ordering::Relaxed)
            + exporter.dropped.load(std::sync::atomic::Ordering::Relaxed),
        0
    );
}
