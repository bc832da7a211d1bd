//! Azure OpenAI files and batches over real sockets against the mock upstream, in both of
//! Azure's API forms: the v1 API (`{resource}/openai/v1/files`) and the dated one
//! (`{resource}/openai/files?api-version=...`, files and batches being the resource's, not a
//! deployment's). Upload, create, retrieve, list with the client's query kept, and the output
//! fetched and priced once at batch prices, each call with Azure's `api-key` header.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::Harness;
use common::grants::{GRANTS, grant};
use hyper::Method;
use mock_upstream::MockUpstream;
use serde_json::{Value, json};

const AZURE_KEY: &str = "az-key-0123456789";

/// The proxy with only an Azure provider (OpenAI's own is pointed at a dead port, so anything
/// sent there fails loudly), in the v1 form or, with `api_version`, the dated one.
async fn azure(api_version: Option<&str>) -> Harness {
    let mock = MockUpstream::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let root = mock.base_url().trim_end_matches("/v1").to_string();
    let mut toml = format!("[providers.azure]\nbase_url = \"{root}\"\napi_key = \"{AZURE_KEY}\"\n");
    if let Some(version) = api_version {
        toml.push_str(&format!("api_version = \"{version}\"\n"));
    }
    let config = common::config_for(&toml, "http://127.0.0.1:9/v1", &dir);
    Harness::start_on_with(config, mock, dir, &[&GRANTS]).await
}

fn input(n: usize) -> String {
    common::files::batch_input(n, "/chat/completions")
}

async fn upload(h: &Harness, who: &str, content: &str) -> (u16, Value) {
    common::files::upload_batch_file(h, who, content, &[("x-stockyard-provider", "azure")]).await
}

async fn call(h: &Harness, who: &str, method: Method, path: &str, body: &str) -> common::Answer {
    h.client
        .call(
            method,
            path,
            body,
            &[("x-test-grant", who), ("x-stockyard-provider", "azure")],
        )
        .await
}

/// Upload, create, list, retrieve (the mock completes the batch), fetch the output; returns the
/// paths the mock saw, in order, and the batch's id.
async fn run_batch(h: &Harness, who: &str) -> (Vec<String>, String) {
    let (status, file) = upload(h, who, &input(2)).await;
    assert_eq!(status, 200, "{file}");
    let body = json!({"input_file_id": file["id"], "endpoint": "/chat/completions",
        "completion_window": "24h"});
    let created = call(h, who, Method::POST, "/v1/batches", &body.to_string()).await;
    assert_eq!(created.status, 200, "{}", created.text());
    let batch_id = created.json()["id"].as_str().unwrap().to_string();
    let listed = call(h, who, Method::GET, "/v1/batches?limit=5", "").await;
    assert_eq!(listed.status, 200, "{}", listed.text());
    assert_eq!(listed.json()["data"][0]["id"], batch_id.as_str());
    let done = call(h, who, Method::GET, &format!("/v1/batches/{batch_id}"), "").await;
    assert_eq!(done.json()["status"], "completed", "{}", done.text());
    let output = done.json()["output_file_id"].as_str().unwrap().to_string();
    let fetched = call(
        h,
        who,
        Method::GET,
        &format!("/v1/files/{output}/content"),
        "",
    )
    .await;
    assert_eq!(fetched.status, 200, "{}", fetched.text());
    assert_eq!(fetched.text().lines().count(), 2);
    for sent in h.mock.requests() {
        assert_eq!(sent.header("api-key"), Some(AZURE_KEY), "{}", sent.path);
        assert_eq!(sent.header("authorization"), None, "{}", sent.path);
    }
    let paths = h.mock.requests().into_iter().map(|r| r.path).collect();
    (paths, batch_id)
}

/// The batch's priced requests, after the writer settled.
async fn priced(h: &Harness, batch_id: &str) -> Vec<stockyard::store::TraceRecord> {
    h.trace_count_settled().await;
    let tag = format!("[\"batch:{batch_id}\"]");
    h.store()
        .traces
        .traces(&stockyard::store::TraceQuery {
            limit: 100,
            ..Default::default()
        })
        .unwrap()
        .into_iter()
        .filter(|t| t.tags.as_deref() == Some(tag.as_str()))
        .collect()
}

#[tokio::test]
async fn azure_v1_files_and_batches_end_to_end_with_the_output_priced_once() {
    let h = azure(None).await;
    let me = grant("vk_azure", json!({}), None);
    let (paths, batch_id) = run_batch(&h, &me).await;
    assert_eq!(paths[0], "/openai/v1/files");
    assert_eq!(paths[1], "/openai/v1/batches");
    assert_eq!(paths[2], "/openai/v1/batches?limit=5");
    assert_eq!(paths[3], format!("/openai/v1/batches/{batch_id}"));
    assert!(
        paths[4].starts_with("/openai/v1/files/file-out"),
        "{paths:?}"
    );
    assert!(paths[4].ends_with("/content"), "{paths:?}");

    let traces = priced(&h, &batch_id).await;
    assert_eq!(traces.len(), 2);
    for trace in &traces {
        assert_eq!(trace.provider.as_deref(), Some("azure"));
        assert_eq!(trace.requested_model, "gpt-4o-mini");
        assert_eq!(trace.key_id.as_deref(), Some("vk_azure"));
        // azure/gpt-4o-mini: 1000 x $0.15/M + 200 x $0.60/M = $0.00027, at half price.
        assert_eq!(trace.cost_nanos, 135_000);
        assert!(trace.price_known);
    }
}

#[tokio::test]
async fn azure_dated_api_files_and_batches_carry_the_api_version() {
    let h = azure(Some("2024-10-21")).await;
    let me = grant("vk_azure_dated", json!({}), None);
    let (paths, batch_id) = run_batch(&h, &me).await;
    let v = "api-version=2024-10-21";
    assert_eq!(paths[0], format!("/openai/files?{v}"));
    assert_eq!(paths[1], format!("/openai/batches?{v}"));
    // The client's own query follows Azure's version.
    assert_eq!(paths[2], format!("/openai/batches?{v}&limit=5"));
    assert_eq!(paths[3], format!("/openai/batches/{batch_id}?{v}"));
    assert!(
        paths[4].starts_with("/openai/files/file-out")
            && paths[4].ends_with(&format!("/content?{v}")),
        "{paths:?}"
    );
    assert_eq!(priced(&h, &batch_id).await.len(), 2);

    // A limited key's batch is checked against its input, read back on the dated path too.
    let limited = grant("vk_azure_limited", json!({"models": ["gpt-4.1*"]}), None);
    let (_, file) = upload(&h, &limited, &input(1)).await;
    let body = json!({"input_file_id": file["id"], "endpoint": "/chat/completions",
        "completion_window": "24h"});
    let refused = call(&h, &limited, Method::POST, "/v1/batches", &body.to_string()).await;
    assert_eq!(refused.status, 403, "{}", refused.text());
    let last = h.mock.requests().last().unwrap().path.clone();
    assert_eq!(
        last,
        format!("/openai/files/{}/content?{v}", file["id"].as_str().unwrap())
    );
}
