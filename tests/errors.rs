//! Every failure answers in the OpenAI error shape with the right status, and no key leaks.

mod common;

use common::{Harness, PROVIDER_KEY, chat};
use hyper::Method;
use mock_upstream::Behavior;
use serde_json::Value;

fn assert_error_shape(body: &Value) {
    let error = &body["error"];
    assert!(error["message"].is_string(), "{body}");
    assert!(error["type"].is_string(), "{body}");
    assert!(error.get("param").is_some(), "{body}");
    assert!(error.get("code").is_some(), "{body}");
}

#[tokio::test]
async fn malformed_json_and_wrong_types_are_400_naming_the_field() {
    let h = Harness::start().await;
    let answer = h
        .client
        .post("/v1/chat/completions", "{\"model\": \"gpt-4o-mini\", ")
        .await;
    assert_eq!(answer.status, 400);
    let body = answer.json();
    assert_error_shape(&body);
    assert_eq!(body["error"]["code"], "invalid_json");

    let answer = h
        .client
        .post(
            "/v1/chat/completions",
            r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"x"}],"stream":"yes"}"#,
        )
        .await;
    assert_eq!(answer.status, 400);
    assert_eq!(answer.json()["error"]["param"], "stream");

    let answer = h
        .client
        .post(
            "/v1/chat/completions",
            r#"{"model":"gpt-4o-mini","messages":[{"role":"robot"}]}"#,
        )
        .await;
    assert_eq!(answer.status, 400);
    assert_eq!(answer.json()["error"]["param"], "messages[0].role");

    let answer = h
        .client
        .post("/v1/chat/completions", r#"{"messages":[]}"#)
        .await;
    assert_eq!(answer.status, 400);
    assert!(
        answer.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("model")
    );
    assert_eq!(
        h.mock.request_count(),
        0,
        "nothing invalid reaches the upstream"
    );
    // Each refusal is traced with its class.
    let traces = h.traces(4).await;
    assert_eq!(traces[0].error_class.as_deref(), Some("invalid_json"));
    assert_eq!(traces[1].status, 400);
}

#[tokio::test]
async fn unknown_model_is_404_listing_what_is_configured() {
    let h = Harness::start().await;
    let answer = h
        .client
        .post(
            "/v1/chat/completions",
            &chat("claude-nonexistent-9", "hi", false),
        )
        .await;
    assert_eq!(answer.status, 404);
    let body = answer.json();
    assert_error_shape(&body);
    assert_eq!(body["error"]["code"], "model_not_found");
    assert_eq!(body["error"]["param"], "model");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("openai/*")
    );
}

#[tokio::test]
async fn body_over_the_limit_is_413_and_too_many_messages_400() {
    let h =
        Harness::start_with("[modules.request_limits]\nmax_body_bytes = 1024\nmax_messages = 2\n")
            .await;
    let big = chat("gpt-4o-mini", &"x".repeat(4096), false);
    let answer = h.client.post("/v1/chat/completions", &big).await;
    assert_eq!(answer.status, 413);
    assert_eq!(answer.json()["error"]["code"], "body_too_large");

    let three = r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"a"},{"role":"assistant","content":"b"},{"role":"user","content":"c"}]}"#;
    let answer = h.client.post("/v1/chat/completions", three).await;
    assert_eq!(answer.status, 400);
    assert_eq!(answer.json()["error"]["code"], "too_many_messages");
    assert_eq!(h.mock.request_count(), 0);
}

#[tokio::test]
async fn upstream_unreachable_is_502_and_timeout_504() {
    // Port 9 on loopback: nothing listens, the connection is refused at once.
    let mock = mock_upstream::MockUpstream::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = common::config_for("", "http://127.0.0.1:9/v1", &dir);
    let h = Harness::start_on(config, mock, dir).await;
    let answer = h
        .client
        .post("/v1/chat/completions", &chat("gpt-4o-mini", "hi", false))
        .await;
    assert_eq!(answer.status, 502);
    let body = answer.json();
    assert_error_shape(&body);
    assert_eq!(body["error"]["code"], "upstream_unreachable");
    assert!(!answer.text().contains(PROVIDER_KEY));

    let h = Harness::start_with("[providers.openai]\ntimeouts = { first_byte_ms = 200 }\n").await;
    h.mock.push(Behavior {
        headers_delay_ms: 2_000,
        ..Behavior::default()
    });
    let answer = h
        .client
        .post("/v1/chat/completions", &chat("gpt-4o-mini", "hi", false))
        .await;
    assert_eq!(answer.status, 504);
    assert_eq!(answer.json()["error"]["code"], "upstream_timeout");
    let trace = &h.traces(1).await[0];
    assert_eq!(
        (trace.status, trace.error_class.as_deref()),
        (504, Some("upstream_timeout"))
    );
}

#[tokio::test]
async fn upstream_errors_pass_through_with_status_body_and_retry_after() {
    let h = Harness::start().await;
    h.mock.push(Behavior {
        status: Some(429),
        retry_after_s: Some(1),
        ..Behavior::default()
    });
    let answer = h
        .client
        .post("/v1/chat/completions", &chat("gpt-4o-mini", "hi", false))
        .await;
    assert_eq!(answer.status, 429);
    assert_eq!(answer.header("retry-after"), Some("1"));
    assert_eq!(answer.json()["error"]["code"], "mock_429");
    assert!(answer.header("x-request-id").is_some());

    // The 429 cooled the deployment down: until its retry-after passes, requests fail fast
    // with a 503 that says when, and nothing reaches the upstream.
    let answer = h
        .client
        .post("/v1/chat/completions", &chat("gpt-4o-mini", "hi", false))
        .await;
    assert_eq!(answer.status, 503);
    assert!(
        answer.text().contains("available again in"),
        "{}",
        answer.text()
    );
    // And says it in the header the SDKs read, so their retry waits out the cool-down.
    assert_eq!(answer.header("retry-after"), Some("1"));
    assert_eq!(h.mock.request_count(), 1);
    tokio::time::sleep(std::time::Duration::from_millis(1_050)).await;

    h.mock.push(Behavior {
        malformed_body: true,
        ..Behavior::default()
    });
    let answer = h
        .client
        .post("/v1/chat/completions", &chat("gpt-4o-mini", "hi", false))
        .await;
    assert_eq!(answer.status, 502);
    assert_eq!(answer.json()["error"]["code"], "upstream_protocol_error");

    let traces = h.traces(3).await;
    assert_eq!(
        (traces[0].status, traces[0].error_class.as_deref()),
        (429, Some("upstream_status"))
    );
    assert_eq!(traces[1].error_class.as_deref(), Some("unavailable"));
}

#[tokio::test]
async fn client_keys_are_required_when_configured_and_never_recorded() {
    let h = Harness::start_with("[auth]\nkeys = [\"sk-client-one-secret\"]\n").await;
    let body = chat("gpt-4o-mini", "hi", false);
    let answer = h.client.post("/v1/chat/completions", &body).await;
    assert_eq!(answer.status, 401);
    assert_eq!(answer.json()["error"]["code"], "missing_api_key");
    let answer = h
        .client
        .call(
            Method::POST,
            "/v1/chat/completions",
            &body,
            &[("authorization", "Bearer sk-wrong")],
        )
        .await;
    assert_eq!(answer.status, 401);
    assert_eq!(answer.json()["error"]["code"], "invalid_api_key");
    let answer = h.client.call(Method::GET, "/v1/models", "", &[]).await;
    assert_eq!(answer.status, 401);
    let answer = h
        .client
        .call(
            Method::POST,
            "/v1/chat/completions",
            &body,
            &[("authorization", "Bearer sk-client-one-secret")],
        )
        .await;
    assert_eq!(answer.status, 200);
    assert_eq!(h.mock.request_count(), 1);
    // The client key is replaced by the provider key upstream.
    assert_eq!(
        h.mock.requests()[0].header("authorization"),
        Some(format!("Bearer {PROVIDER_KEY}").as_str())
    );
    // Refused requests are counted in aggregate, not traced: one row, the served one.
    assert_eq!(h.trace_count_settled().await, 1);
    let traces = h.traces(1).await;
    let dump = serde_json::to_string(&traces).unwrap();
    assert!(!dump.contains("sk-client-one-secret") && !dump.contains(PROVIDER_KEY));
    assert!(traces[0].key_id.as_deref().unwrap().starts_with("key_"));
}

#[tokio::test]
async fn unknown_routes_and_wrong_methods_use_the_error_shape() {
    let h = Harness::start().await;
    let answer = h.client.get("/v1/nothing-here").await;
    assert_eq!(answer.status, 404);
    assert_error_shape(&answer.json());
    let answer = h.client.get("/v1/chat/completions").await;
    assert_eq!(answer.status, 405);
    assert_error_shape(&answer.json());
}

/// Errors about a path or method come back in the shape of the format the path belongs to
/// (Anthropic's SDK reads only `{"type":"error",...}`, Google's only `{"error":{"status":...}}`),
/// and every answer carries `x-request-id`: the client's own, or a new one.
#[tokio::test]
async fn path_and_method_errors_speak_the_paths_format_and_carry_a_request_id() {
    let h = Harness::start().await;
    let anthropic = [
        (Method::DELETE, "/v1/messages", 405),
        (Method::GET, "/v1/messages/count_tokens", 405),
        (Method::POST, "/v1/messages/nope", 404),
    ];
    for (method, path, status) in anthropic {
        let answer = h.client.call(method.clone(), path, "", &[]).await;
        assert_eq!(answer.status, status, "{method} {path}: {}", answer.text());
        let body = answer.json();
        assert_eq!(body["type"], "error", "{method} {path}: {body}");
        assert!(body["error"]["type"].is_string(), "{method} {path}: {body}");
        assert!(answer.header("x-request-id").is_some(), "{method} {path}");
    }
    for (method, path) in [
        (Method::GET, "/v1beta/models"),
        (Method::POST, "/v1beta/models/:generateContent"),
    ] {
        let answer = h.client.call(method.clone(), path, "{}", &[]).await;
        assert_eq!(answer.status, 404, "{method} {path}: {}", answer.text());
        let body = answer.json();
        assert_eq!(
            body["error"]["status"], "NOT_FOUND",
            "{method} {path}: {body}"
        );
    }
    let answer = h
        .client
        .call(
            Method::GET,
            "/nowhere",
            "",
            &[("x-request-id", "req-mine-1")],
        )
        .await;
    assert_eq!(answer.status, 404);
    assert!(answer.json()["error"]["message"].is_string());
    assert_eq!(answer.header("x-request-id"), Some("req-mine-1"));
    for path in ["/health", "/v1/models"] {
        let answer = h.client.call(Method::GET, path, "", &[]).await;
        assert_eq!(answer.status, 200, "{path}");
        assert!(answer.header("x-request-id").is_some(), "{path}");
    }
}
