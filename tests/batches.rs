//! Files and batches over real sockets against the mock upstream (which completes a batch on its
//! first retrieve, each result using `BATCH_LINE_USAGE` tokens): OpenAI's `/v1/files` and
//! `/v1/batches`, Anthropic's `/v1/messages/batches`; each object visible only to the key that
//! made it; a batch's output priced at half price when fetched, once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::Harness;
use common::grants::{GRANTS, grant};
use hyper::Method;
use mock_upstream::MockUpstream;
use serde_json::{Value, json};

const ANTHROPIC_KEY: &str = "sk-ant-test-0123456789";

/// One mock serving both OpenAI and Anthropic, and the test grants module.
async fn start() -> Harness {
    start_with("").await
}

async fn start_with(extra: &str) -> Harness {
    let mock = MockUpstream::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "[providers.anthropic]\nbase_url = \"{}\"\napi_key = \"{ANTHROPIC_KEY}\"\n{extra}",
        mock.base_url()
    );
    let config = common::config_for(&toml, &mock.base_url(), &dir);
    Harness::start_on_with(config, mock, dir, &[&GRANTS]).await
}

fn key(name: &str) -> String {
    grant(name, json!({}), None)
}

/// The JSONL input of a batch of `n` chat requests.
fn input_lines(n: usize) -> String {
    common::files::batch_input(n, "/v1/chat/completions")
}

/// Uploads `content` as a batch input file with the grant `who`; status and body.
async fn upload(h: &Harness, who: &str, content: &str) -> (u16, Value) {
    common::files::upload_batch_file(h, who, content, &[]).await
}

async fn call(h: &Harness, who: &str, method: Method, path: &str, body: &str) -> common::Answer {
    h.client
        .call(method, path, body, &[("x-test-grant", who)])
        .await
}

/// Traces of the batch's requests (tagged `batch:<id>`), after the writer settled.
async fn batch_traces(h: &Harness, batch_id: &str) -> Vec<stockyard::store::TraceRecord> {
    h.trace_count_settled().await;
    let rows = h
        .store()
        .traces
        .traces(&stockyard::store::TraceQuery {
            limit: 1000,
            ..Default::default()
        })
        .unwrap();
    let tag = format!("[\"batch:{batch_id}\"]");
    rows.into_iter()
        .filter(|t| t.tags.as_deref() == Some(tag.as_str()))
        .collect()
}

#[tokio::test]
async fn files_upload_list_retrieve_content_and_delete_pass_through() {
    let h = start().await;
    let me = key("vk_files");
    let (status, file) = upload(&h, &me, &input_lines(2)).await;
    assert_eq!(status, 200, "{file}");
    let id = file["id"].as_str().unwrap().to_string();
    assert_eq!(file["purpose"], "batch");
    let sent = &h.mock.requests()[0];
    assert_eq!(sent.path, "/v1/files");
    assert_eq!(
        sent.header("authorization"),
        Some(&*format!("Bearer {}", common::PROVIDER_KEY))
    );

    let listed = call(&h, &me, Method::GET, "/v1/files", "").await;
    assert_eq!(listed.status, 200, "{}", listed.text());
    assert_eq!(listed.json()["data"][0]["id"], id.as_str());
    let got = call(&h, &me, Method::GET, &format!("/v1/files/{id}"), "").await;
    assert_eq!(got.json()["id"], id.as_str());
    let content = call(&h, &me, Method::GET, &format!("/v1/files/{id}/content"), "").await;
    assert_eq!(content.status, 200);
    assert_eq!(content.text(), input_lines(2));
    let deleted = call(&h, &me, Method::DELETE, &format!("/v1/files/{id}"), "").await;
    assert_eq!(deleted.json()["deleted"], true);
    // Gone for its owner too, without asking the provider again.
    let before = h.mock.request_count();
    let again = call(&h, &me, Method::GET, &format!("/v1/files/{id}"), "").await;
    assert_eq!(again.status, 404);
    assert_eq!(h.mock.request_count(), before);
    let trace = &h.traces(1).await[0];
    assert_eq!(trace.endpoint, "files");
    assert_eq!(trace.key_id.as_deref(), Some("vk_files"));
}

#[tokio::test]
async fn a_batch_is_created_retrieved_listed_cancelled_and_its_output_priced_once_at_half_price() {
    let h = start().await;
    let me = key("vk_batch");
    let (_, file) = upload(&h, &me, &input_lines(3)).await;
    let body = json!({"input_file_id": file["id"], "endpoint": "/v1/chat/completions",
        "completion_window": "24h", "metadata": {"run": "nightly"}});
    let created = call(&h, &me, Method::POST, "/v1/batches", &body.to_string()).await;
    assert_eq!(created.status, 200, "{}", created.text());
    let batch_id = created.json()["id"].as_str().unwrap().to_string();
    assert_eq!(
        h.mock.requests().last().unwrap().body["metadata"]["run"],
        "nightly"
    );

    let listed = call(&h, &me, Method::GET, "/v1/batches?limit=5", "").await;
    assert_eq!(listed.json()["data"][0]["id"], batch_id.as_str());
    assert!(h.mock.requests().last().unwrap().path.ends_with("?limit=5"));
    let done = call(&h, &me, Method::GET, &format!("/v1/batches/{batch_id}"), "").await;
    assert_eq!(done.json()["status"], "completed", "{}", done.text());
    let output = done.json()["output_file_id"].as_str().unwrap().to_string();

    let fetched = call(
        &h,
        &me,
        Method::GET,
        &format!("/v1/files/{output}/content"),
        "",
    )
    .await;
    assert_eq!(fetched.status, 200);
    assert_eq!(fetched.text().lines().count(), 3);
    let priced = batch_traces(&h, &batch_id).await;
    assert_eq!(priced.len(), 3);
    let (input, output_tokens) = mock_upstream::BATCH_LINE_USAGE;
    for trace in &priced {
        assert_eq!(trace.requested_model, "gpt-4o-mini");
        assert_eq!(trace.tokens.prompt, input);
        assert_eq!(trace.tokens.completion, output_tokens);
        assert_eq!(trace.key_id.as_deref(), Some("vk_batch"));
        // gpt-4o-mini: 1000 x $0.15/M + 200 x $0.60/M = $0.00027, at half price.
        assert_eq!(trace.cost_nanos, 135_000);
        assert!(trace.price_known);
    }
    // A second fetch passes the file but charges nothing more.
    let again = call(
        &h,
        &me,
        Method::GET,
        &format!("/v1/files/{output}/content"),
        "",
    )
    .await;
    assert_eq!(again.status, 200);
    assert_eq!(batch_traces(&h, &batch_id).await.len(), 3);

    let cancelled = call(
        &h,
        &me,
        Method::POST,
        &format!("/v1/batches/{batch_id}/cancel"),
        "",
    )
    .await;
    assert_eq!(cancelled.status, 200, "{}", cancelled.text());
    assert_eq!(
        h.mock.requests().last().unwrap().path,
        format!("/v1/batches/{batch_id}/cancel")
    );
}

#[tokio::test]
async fn another_key_gets_404_and_sees_none_of_the_batches() {
    let h = start().await;
    let owner = key("vk_owner");
    let other = key("vk_other");
    let (_, file) = upload(&h, &owner, &input_lines(1)).await;
    let body = json!({"input_file_id": file["id"], "endpoint": "/v1/chat/completions",
        "completion_window": "24h"});
    let created = call(&h, &owner, Method::POST, "/v1/batches", &body.to_string()).await;
    let batch_id = created.json()["id"].as_str().unwrap().to_string();
    let before = h.mock.request_count();
    for (method, path) in [
        (Method::GET, format!("/v1/batches/{batch_id}")),
        (Method::POST, format!("/v1/batches/{batch_id}/cancel")),
        (
            Method::GET,
            format!("/v1/files/{}", file["id"].as_str().unwrap()),
        ),
        (
            Method::GET,
            format!("/v1/files/{}/content", file["id"].as_str().unwrap()),
        ),
    ] {
        let answer = call(&h, &other, method, &path, "").await;
        assert_eq!(answer.status, 404, "{path}: {}", answer.text());
        assert_eq!(answer.json()["error"]["type"], "invalid_request_error");
    }
    assert_eq!(h.mock.request_count(), before, "nothing went upstream");
    let listed = call(&h, &other, Method::GET, "/v1/batches", "").await;
    assert_eq!(listed.status, 200);
    assert_eq!(listed.json()["data"].as_array().unwrap().len(), 0);
    // The operator (no virtual key) sees it.
    let operator = h.client.get(&format!("/v1/batches/{batch_id}")).await;
    assert_eq!(operator.status, 200);
}

#[tokio::test]
async fn malformed_batch_creates_get_400_in_openai_shape_and_nothing_goes_upstream() {
    let h = start().await;
    let me = key("vk_bad");
    for (body, param) in [
        ("{not json".to_string(), None),
        (json!({"endpoint": "/v1/chat/completions", "completion_window": "24h"}).to_string(), Some("input_file_id")),
        (json!({"input_file_id": 12, "endpoint": "/v1/chat/completions", "completion_window": "24h"}).to_string(), Some("input_file_id")),
        (json!({"input_file_id": "f", "endpoint": "/v1/chat/completions", "completion_window": "24h", "metadata": "x"}).to_string(), Some("metadata")),
    ] {
        let answer = call(&h, &me, Method::POST, "/v1/batches", &body).await;
        assert_eq!(answer.status, 400, "{body}: {}", answer.text());
        let json = answer.json();
        assert_eq!(json["error"]["type"], "invalid_request_error", "{json}");
        assert_eq!(json["error"]["param"].as_str(), param, "{json}");
    }
    let (status, body) = upload(&h, &me, "").await;
    assert_eq!(status, 200, "{body}");
    let no_file = call(&h, &me, Method::POST, "/v1/files", "{}").await;
    assert_eq!(no_file.status, 400);
    assert_eq!(
        h.mock.request_count(),
        1,
        "only the good upload went upstream"
    );
}

#[tokio::test]
async fn a_key_whose_budget_is_spent_cannot_make_a_batch() {
    let h = start().await;
    let spent = grant(
        "vk_spent",
        json!({"budget": {"limit_nanos": 0, "period": "day", "alert_percents": []}}),
        None,
    );
    let body = json!({"input_file_id": "file-x", "endpoint": "/v1/chat/completions",
        "completion_window": "24h"});
    let answer = call(&h, &spent, Method::POST, "/v1/batches", &body.to_string()).await;
    assert_eq!(answer.status, 429, "{}", answer.text());
    assert_eq!(answer.json()["error"]["code"], "insufficient_quota");
    assert_eq!(h.mock.request_count(), 0);
}

#[tokio::test]
async fn anthropic_message_batches_pass_natively_and_their_results_are_priced_once() {
    let h = start().await;
    let me = key("vk_claude");
    let body = json!({"requests": [
        {"custom_id": "a", "params": {"model": "claude-sonnet-4-5", "max_tokens": 64,
            "messages": [{"role": "user", "content": "hi"}]}},
        {"custom_id": "b", "params": {"model": "claude-sonnet-4-5", "max_tokens": 64,
            "messages": [{"role": "user", "content": "hello"}]}}]});
    let created = call(
        &h,
        &me,
        Method::POST,
        "/v1/messages/batches",
        &body.to_string(),
    )
    .await;
    assert_eq!(created.status, 200, "{}", created.text());
    let id = created.json()["id"].as_str().unwrap().to_string();
    let sent = h.mock.requests().last().unwrap().clone();
    assert_eq!(sent.path, "/v1/messages/batches");
    assert_eq!(sent.header("x-api-key"), Some(ANTHROPIC_KEY));
    assert_eq!(sent.body["requests"][1]["custom_id"], "b");

    let listed = call(&h, &me, Method::GET, "/v1/messages/batches", "").await;
    assert_eq!(listed.json()["data"][0]["id"], id.as_str());
    let ended = call(
        &h,
        &me,
        Method::GET,
        &format!("/v1/messages/batches/{id}"),
        "",
    )
    .await;
    assert_eq!(ended.json()["processing_status"], "ended");
    let results = call(
        &h,
        &me,
        Method::GET,
        &format!("/v1/messages/batches/{id}/results"),
        "",
    )
    .await;
    assert_eq!(results.status, 200);
    assert_eq!(results.text().lines().count(), 2);
    let priced = batch_traces(&h, &id).await;
    assert_eq!(priced.len(), 2);
    for trace in &priced {
        assert_eq!(trace.endpoint, "message_batches");
        assert_eq!(trace.provider.as_deref(), Some("anthropic"));
        // claude-sonnet-4-5: 1000 x $3/M + 200 x $15/M = $0.006, at half price.
        assert_eq!(trace.cost_nanos, 3_000_000);
    }
    call(
        &h,
        &me,
        Method::GET,
        &format!("/v1/messages/batches/{id}/results"),
        "",
    )
    .await;
    assert_eq!(batch_traces(&h, &id).await.len(), 2);

    // Another key: Anthropic's error shape, a 404, nothing upstream.
    let before = h.mock.request_count();
    let other = call(
        &h,
        &key("vk_else"),
        Method::GET,
        &format!("/v1/messages/batches/{id}"),
        "",
    )
    .await;
    assert_eq!(other.status, 404);
    assert_eq!(other.json()["type"], "error", "{}", other.text());
    assert_eq!(h.mock.request_count(), before);
    let cancelled = call(
        &h,
        &me,
        Method::POST,
        &format!("/v1/messages/batches/{id}/cancel"),
        "",
    )
    .await;
    assert_eq!(cancelled.status, 200, "{}", cancelled.text());
    let bad = call(
        &h,
        &me,
        Method::POST,
        "/v1/messages/batches",
        r#"{"requests": []}"#,
    )
    .await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.json()["type"], "error", "{}", bad.text());
}

#[tokio::test]
async fn an_upload_past_the_body_limit_gets_413_and_nothing_goes_upstream() {
    let h = start_with("[modules.request_limits]\nmax_body_bytes = 4096\n").await;
    let (status, body) = upload(&h, &key("vk_big"), &input_lines(100)).await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["error"]["type"], "invalid_request_error", "{body}");
    assert_eq!(h.mock.request_count(), 0);
}

/// The JSONL input of a batch whose lines use `models`, one line each.
fn lines_for(models: &[&str]) -> String {
    models
        .iter()
        .enumerate()
        .map(|(i, model)| {
            json!({"custom_id": format!("req-{i}"), "method": "POST", "url": "/v1/chat/completions",
                "body": {"model": model, "messages": [{"role": "user", "content": "hi"}]}})
            .to_string()
                + "\n"
        })
        .collect()
}

#[tokio::test]
async fn a_key_limited_to_some_models_cannot_batch_others() {
    let h = start().await;
    let limited = grant("vk_limited", json!({"models": ["gpt-4o-mini*"]}), None);
    let (_, file) = upload(&h, &limited, &lines_for(&["gpt-4o-mini", "gpt-4o"])).await;
    let body = json!({"input_file_id": file["id"], "endpoint": "/v1/chat/completions",
        "completion_window": "24h"});
    let refused = call(&h, &limited, Method::POST, "/v1/batches", &body.to_string()).await;
    assert_eq!(refused.status, 403, "{}", refused.text());
    let json = refused.json();
    assert_eq!(json["error"]["type"], "permission_error", "{json}");
    assert_eq!(json["error"]["code"], "model_not_allowed", "{json}");
    assert!(
        json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("\"gpt-4o\""),
        "{json}"
    );
    // The input was read back from the provider; no batch was made.
    let sent = h.mock.requests();
    assert!(sent.iter().all(|r| r.path != "/v1/batches"), "{sent:?}");
    assert_eq!(
        sent.last().unwrap().path,
        format!("/v1/files/{}/content", file["id"].as_str().unwrap())
    );

    // Its team's list applies too: the key's own list allows gpt-4o, the team's does not.
    let in_team = grant(
        "vk_team_member",
        json!({"models": ["gpt-4o*"]}),
        Some(("team_small", json!({"models": ["gpt-4o-mini"]}))),
    );
    let (_, file) = upload(&h, &in_team, &lines_for(&["gpt-4o"])).await;
    let body = json!({"input_file_id": file["id"], "endpoint": "/v1/chat/completions",
        "completion_window": "24h"});
    let refused = call(&h, &in_team, Method::POST, "/v1/batches", &body.to_string()).await;
    assert_eq!(refused.status, 403, "{}", refused.text());

    // Only allowed models: the batch is made.
    let (_, file) = upload(&h, &limited, &lines_for(&["gpt-4o-mini", "gpt-4o-mini"])).await;
    let body = json!({"input_file_id": file["id"], "endpoint": "/v1/chat/completions",
        "completion_window": "24h"});
    let made = call(&h, &limited, Method::POST, "/v1/batches", &body.to_string()).await;
    assert_eq!(made.status, 200, "{}", made.text());
}

#[tokio::test]
async fn a_key_cannot_batch_another_keys_file() {
    let h = start().await;
    let owner = key("vk_file_owner");
    let (_, file) = upload(&h, &owner, &input_lines(1)).await;
    let before = h.mock.request_count();
    let body = json!({"input_file_id": file["id"], "endpoint": "/v1/chat/completions",
        "completion_window": "24h"});
    let answer = call(
        &h,
        &key("vk_thief"),
        Method::POST,
        "/v1/batches",
        &body.to_string(),
    )
    .await;
    assert_eq!(answer.status, 404, "{}", answer.text());
    assert_eq!(h.mock.request_count(), before, "nothing went upstream");
}

#[tokio::test]
async fn a_limited_key_cannot_put_other_models_in_a_message_batch() {
    let h = start().await;
    let limited = grant("vk_haiku", json!({"models": ["claude-haiku-*"]}), None);
    let body = json!({"requests": [
        {"custom_id": "a", "params": {"model": "claude-haiku-4-5", "max_tokens": 8,
            "messages": [{"role": "user", "content": "hi"}]}},
        {"custom_id": "b", "params": {"model": "claude-opus-4-1", "max_tokens": 8,
            "messages": [{"role": "user", "content": "hi"}]}}]});
    let answer = call(
        &h,
        &limited,
        Method::POST,
        "/v1/messages/batches",
        &body.to_string(),
    )
    .await;
    assert_eq!(answer.status, 403, "{}", answer.text());
    let json = answer.json();
    assert_eq!(json["type"], "error", "{json}");
    assert_eq!(json["error"]["type"], "permission_error", "{json}");
    assert!(
        json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("claude-opus-4-1"),
        "{json}"
    );
    assert_eq!(h.mock.request_count(), 0);
}
