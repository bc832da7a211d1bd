//! Images and rerank on Bedrock over real sockets against the mock upstream: the OpenAI images
//! request (JSON or multipart) and the common rerank request go to InvokeModel on the model,
//! signed with SigV4 and translated into the model's own body; the answer comes back in the
//! OpenAI (or common rerank) shape, and the trace is priced per image at the tier made, or per
//! query of up to 100 documents.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::Harness;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use mock_upstream::MockUpstream;
use serde_json::{Value, json};

async fn bedrock() -> Harness {
    let mock = MockUpstream::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "[providers.bedrock]\nkind = \"bedrock\"\nbase_url = \"{}\"\nregion = \"us-east-1\"\n\
         access_key_id_env = \"STOCKYARD_TEST_AWS_KEY\"\nsecret_access_key_env = \"STOCKYARD_TEST_AWS_SECRET\"\n",
        mock.bedrock_base_url()
    );
    let config = common::config_for(&toml, "http://127.0.0.1:9/v1", &dir);
    Harness::start_on(config, mock, dir).await
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Posts a multipart form of text `fields` and `files`; status and JSON body.
async fn post_form(
    h: &Harness,
    path: &str,
    fields: &[(&str, &str)],
    files: &[(&str, &[u8])],
) -> (u16, Value) {
    let boundary = "stockyard-bedrock-boundary";
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    for (name, bytes) in files {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{name}.png\"\r\nContent-Type: image/png\r\n\r\n").as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let request = Request::builder()
        .method(Method::POST)
        .uri(format!("{}{path}", h.client.base))
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    let response = tokio::time::timeout(Duration::from_secs(20), client.request(request))
        .await
        .unwrap()
        .unwrap();
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

#[tokio::test]
async fn nova_canvas_generation_is_signed_translated_and_priced_at_its_tier() {
    let h = bedrock().await;
    let body = json!({"model": "bedrock/amazon.nova-canvas-v1:0", "prompt": "a red barn",
        "n": 2, "size": "1024x1024", "quality": "hd", "negative_prompt": "people"});
    let answer = h
        .client
        .post("/v1/images/generations", &body.to_string())
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let json = answer.json();
    let data = json["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    assert_eq!(data[1]["b64_json"], b64(b"mock-image-1"));
    assert!(json["created"].is_u64());

    let sent = &h.mock.requests()[0];
    assert_eq!(sent.path, "/model/amazon.nova-canvas-v1%3A0/invoke");
    let auth = sent.header("authorization").unwrap();
    assert!(auth.contains("/us-east-1/bedrock/aws4_request"), "{auth}");
    assert_eq!(
        sent.body,
        json!({"taskType": "TEXT_IMAGE",
            "textToImageParams": {"text": "a red barn", "negativeText": "people"},
            "imageGenerationConfig": {"numberOfImages": 2, "width": 1024, "height": 1024, "quality": "premium"}})
    );

    let trace = &h.traces(1).await[0];
    assert_eq!(trace.endpoint, "images_generations");
    assert_eq!(trace.provider.as_deref(), Some("bedrock"));
    assert_eq!(
        trace.upstream_model.as_deref(),
        Some("amazon.nova-canvas-v1:0")
    );
    // Nova Canvas, premium up to 1024x1024: $0.06 an image.
    assert_eq!(trace.cost_nanos, 2 * 60_000_000);
    assert!(trace.price_known);
}

#[tokio::test]
async fn titan_and_stability_generations_and_what_bedrock_cannot_do() {
    let h = bedrock().await;
    let titan = json!({"model": "bedrock/amazon.titan-image-generator-v2:0", "prompt": "a boat", "size": "512x512"});
    let answer = h
        .client
        .post("/v1/images/generations", &titan.to_string())
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let sent = h.mock.requests().last().unwrap().clone();
    assert_eq!(
        sent.body["imageGenerationConfig"],
        json!({"numberOfImages": 1, "width": 512, "height": 512, "quality": "standard"})
    );
    // Titan v2, standard 512x512: $0.008.
    assert_eq!(h.traces(1).await[0].cost_nanos, 8_000_000);

    let stability = json!({"model": "bedrock/stability.sd3-5-large-v1:0", "prompt": "a fox", "size": "1792x1024"});
    let answer = h
        .client
        .post("/v1/images/generations", &stability.to_string())
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.json()["data"][0]["b64_json"], b64(b"mock-image-0"));
    let sent = h.mock.requests().last().unwrap().clone();
    assert_eq!(sent.path, "/model/stability.sd3-5-large-v1%3A0/invoke");
    assert_eq!(
        sent.body,
        json!({"prompt": "a fox", "aspect_ratio": "16:9"})
    );
    assert_eq!(h.traces(2).await[1].cost_nanos, 80_000_000);

    // Refused by name before anything goes upstream: URLs, several Stability images, a model
    // that makes no images.
    let before = h.mock.request_count();
    for (body, param) in [
        (
            json!({"model": "bedrock/amazon.nova-canvas-v1:0", "prompt": "x", "response_format": "url"}),
            "response_format",
        ),
        (
            json!({"model": "bedrock/stability.stable-image-core-v1:1", "prompt": "x", "n": 3}),
            "n",
        ),
        (
            json!({"model": "bedrock/amazon.titan-embed-text-v2:0", "prompt": "x"}),
            "model",
        ),
    ] {
        let answer = h
            .client
            .post("/v1/images/generations", &body.to_string())
            .await;
        assert_eq!(answer.status, 400, "{body}: {}", answer.text());
        let json = answer.json();
        assert_eq!(json["error"]["type"], "invalid_request_error", "{json}");
        assert_eq!(json["error"]["param"], param, "{json}");
    }
    assert_eq!(h.mock.request_count(), before);
}

#[tokio::test]
async fn nova_canvas_edits_are_inpainting_and_variations_are_image_variation() {
    let h = bedrock().await;
    let model = "bedrock/amazon.nova-canvas-v1:0";
    let (status, json) = post_form(
        &h,
        "/v1/images/edits",
        &[
            ("model", model),
            ("prompt", "a straw hat"),
            ("mask_prompt", "the hat"),
        ],
        &[("image", b"PNG-1")],
    )
    .await;
    assert_eq!(status, 200, "{json}");
    assert_eq!(json["data"][0]["b64_json"], b64(b"mock-image-0"));
    let sent = h.mock.requests().last().unwrap().clone();
    assert_eq!(sent.header("content-type"), Some("application/json"));
    assert_eq!(sent.body["taskType"], "INPAINTING");
    assert_eq!(
        sent.body["inPaintingParams"],
        json!({"image": b64(b"PNG-1"), "maskPrompt": "the hat", "text": "a straw hat"})
    );

    let (status, json) = post_form(
        &h,
        "/v1/images/variations",
        &[("model", model), ("n", "3")],
        &[("image", b"PNG-2")],
    )
    .await;
    assert_eq!(status, 200, "{json}");
    assert_eq!(json["data"].as_array().unwrap().len(), 3);
    let sent = h.mock.requests().last().unwrap().clone();
    assert_eq!(sent.body["taskType"], "IMAGE_VARIATION");
    assert_eq!(
        sent.body["imageVariationParams"],
        json!({"images": [b64(b"PNG-2")]})
    );
    let traces = h.traces(2).await;
    assert_eq!(traces[0].endpoint, "images_edits");
    assert_eq!(traces[0].cost_nanos, 40_000_000);
    assert_eq!(traces[1].endpoint, "images_variations");
    assert_eq!(traces[1].cost_nanos, 3 * 40_000_000);

    // An OpenAI mask means the opposite of Bedrock's: refused, with the way round it.
    let before = h.mock.request_count();
    let (status, json) = post_form(
        &h,
        "/v1/images/edits",
        &[("model", model), ("prompt", "x"), ("mask_prompt", "y")],
        &[("image", b"PNG"), ("mask", b"MASK")],
    )
    .await;
    assert_eq!(status, 400, "{json}");
    assert_eq!(json["error"]["param"], "mask");
    assert!(
        json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("mask_prompt")
    );
    // Stability has no edit task here.
    let (status, json) = post_form(
        &h,
        "/v1/images/edits",
        &[
            ("model", "bedrock/stability.sd3-5-large-v1:0"),
            ("prompt", "x"),
        ],
        &[("image", b"PNG")],
    )
    .await;
    assert_eq!(status, 400, "{json}");
    assert_eq!(h.mock.request_count(), before);
}

#[tokio::test]
async fn bedrock_rerank_goes_through_invoke_model_and_is_priced_per_query() {
    let h = bedrock().await;
    let body = json!({"model": "bedrock/cohere.rerank-v3-5:0", "query": "red apples",
        "documents": ["bananas are yellow", {"text": "red apples are sweet"}, "apples"],
        "top_n": 2, "return_documents": true});
    let answer = h.client.post("/v1/rerank", &body.to_string()).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let json = answer.json();
    assert_eq!(json["results"][0]["index"], 1);
    assert_eq!(json["results"][0]["relevance_score"], 1.0);
    assert_eq!(
        json["results"][0]["document"]["text"],
        "red apples are sweet"
    );
    assert_eq!(json["results"].as_array().unwrap().len(), 2);
    assert_eq!(json["meta"]["billed_units"]["search_units"], 1);
    let sent = h.mock.requests()[0].clone();
    assert_eq!(sent.path, "/model/cohere.rerank-v3-5%3A0/invoke");
    assert!(
        sent.header("authorization")
            .unwrap()
            .starts_with("AWS4-HMAC-SHA256")
    );
    assert_eq!(
        sent.body,
        json!({"query": "red apples", "api_version": 2, "top_n": 2,
            "documents": ["bananas are yellow", "red apples are sweet", "apples"]})
    );
    let trace = &h.traces(1).await[0];
    assert_eq!(trace.endpoint, "rerank");
    assert_eq!(trace.provider.as_deref(), Some("bedrock"));
    // Cohere Rerank 3.5 on Bedrock: $2.00 per 1,000 queries.
    assert_eq!(trace.cost_nanos, 2_000_000);
    assert!(trace.price_known);

    // Amazon Rerank, 150 documents: two queries at $1.00 per 1,000; no api_version sent.
    let docs: Vec<String> = (0..150).map(|i| format!("document {i}")).collect();
    let body =
        json!({"model": "bedrock/amazon.rerank-v1:0", "query": "document 7", "documents": docs});
    let answer = h.client.post("/v1/rerank", &body.to_string()).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.json()["results"].as_array().unwrap().len(), 150);
    let sent = h.mock.requests().last().unwrap().clone();
    assert!(sent.body.get("api_version").is_none(), "{}", sent.body);
    assert_eq!(h.traces(2).await[1].cost_nanos, 2 * 1_000_000);

    // A field Bedrock cannot honour is refused by name, nothing sent.
    let before = h.mock.request_count();
    let body = json!({"model": "bedrock/amazon.rerank-v1:0", "query": "q", "documents": ["a"], "rank_fields": ["t"]});
    let answer = h.client.post("/v1/rerank", &body.to_string()).await;
    assert_eq!(answer.status, 400, "{}", answer.text());
    assert_eq!(answer.json()["error"]["param"], "rank_fields");
    assert_eq!(h.mock.request_count(), before);
}

#[tokio::test]
async fn a_bedrock_validation_error_reaches_the_client_in_openai_shape() {
    let h = bedrock().await;
    // A scripted 400 comes as Bedrock's ValidationException (`{"message"}`, the name in
    // `x-amzn-ErrorType`) and goes back to the client as an OpenAI error.
    h.mock.push(mock_upstream::Behavior {
        status: Some(400),
        ..mock_upstream::Behavior::default()
    });
    let body = json!({"model": "bedrock/amazon.nova-canvas-v1:0", "prompt": "x"});
    let answer = h
        .client
        .post("/v1/images/generations", &body.to_string())
        .await;
    assert_eq!(answer.status, 400, "{}", answer.text());
    let json = answer.json();
    assert_eq!(json["error"]["type"], "invalid_request_error", "{json}");
    assert!(json["error"]["message"].is_string());
}
