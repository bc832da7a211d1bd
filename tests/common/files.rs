//! Batch input files for the files and batches tests: the JSONL of a batch of chat requests, and
//! its upload to `/v1/files` as a multipart form.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};

use super::Harness;

/// The JSONL input of a batch of `n` chat requests, each for `url` (the provider's own path:
/// `/v1/chat/completions` for OpenAI, `/chat/completions` for Azure).
pub fn batch_input(n: usize, url: &str) -> String {
    (0..n)
        .map(|i| {
            json!({"custom_id": format!("req-{i}"), "method": "POST", "url": url,
                "body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}})
            .to_string()
                + "\n"
        })
        .collect()
}

/// Uploads `content` as a batch input file with the grant `who` and `headers`; status and body.
pub async fn upload_batch_file(
    h: &Harness,
    who: &str,
    content: &str,
    headers: &[(&str, &str)],
) -> (u16, Value) {
    let boundary = "stockyard-files-boundary";
    let body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nbatch\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"in.jsonl\"\r\n\
         Content-Type: application/jsonl\r\n\r\n{content}\r\n--{boundary}--\r\n"
    );
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let mut request = Request::builder()
        .method(Method::POST)
        .uri(format!("{}/v1/files", h.client.base))
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .header("x-test-grant", who);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request.body(Full::new(Bytes::from(body))).unwrap();
    let response = tokio::time::timeout(Duration::from_secs(20), client.request(request))
        .await
        .unwrap()
        .unwrap();
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}
