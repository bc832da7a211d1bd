//! `invoke` (InvokeModel) for the image and rerank models, recognized by model id.
//!
//! - Nova Canvas and Titan Image Generator (`amazon.nova-canvas-*`, `amazon.titan-image-*`): a
//!   body with `taskType` `TEXT_IMAGE`, `INPAINTING` or `IMAGE_VARIATION` and its params object
//!   (`textToImageParams`, `inPaintingParams`, `imageVariationParams`) ->
//!   `{"images": [...], "error": null}`, `imageGenerationConfig.numberOfImages` of them (1 when
//!   absent), each the base64 of `mock-image-<i>`, as the OpenAI mode makes them.
//! - Stability AI (`stability.*`): `{"prompt"}` -> `{"seeds": [42], "finish_reasons": [null],
//!   "images": [one]}`.
//! - Cohere Rerank and Amazon Rerank (`cohere.rerank-*`, `amazon.rerank-*`): `{"query",
//!   "documents": [string], "top_n"?}` -> `{"results": [{"index", "relevance_score"}]}`, scored
//!   like the OpenAI-compatible mode's rerank (the share of the query's words a document holds,
//!   best first, ties by index); Cohere's answer adds an `id`, and like Bedrock's it refuses a
//!   body without `api_version` 2 or more.
//!
//! A body missing what the model needs gets a 400 `ValidationException`, as Bedrock answers.

use bytes::Bytes;
use serde_json::{Value, json};

use super::error;
use crate::openai::Reply;

/// Whether this file answers InvokeModel on `model_id`.
pub(crate) fn serves(model_id: &str) -> bool {
    [
        "amazon.nova-canvas",
        "amazon.titan-image",
        "stability.",
        "cohere.rerank-",
        "amazon.rerank-",
    ]
    .iter()
    .any(|m| model_id.contains(m))
}

pub(crate) fn reply(model_id: &str, req: &Value, n: usize) -> Reply {
    if model_id.contains("rerank-") {
        rerank(model_id, req, n)
    } else if model_id.contains("stability.") {
        match req.get("prompt").and_then(Value::as_str) {
            Some(_) => {
                json_reply(&json!({"seeds": [42], "finish_reasons": [null], "images": [image(0)]}))
            }
            None => error::validation("prompt: required key [prompt] not found"),
        }
    } else {
        task(req)
    }
}

fn image(i: u64) -> String {
    crate::base64::encode(format!("mock-image-{i}").as_bytes())
}

fn json_reply(value: &Value) -> Reply {
    Reply::Json(Bytes::from(value.to_string()))
}

fn task(req: &Value) -> Reply {
    let params = match req.get("taskType").and_then(Value::as_str) {
        Some("TEXT_IMAGE") => "textToImageParams",
        Some("INPAINTING") => "inPaintingParams",
        Some("IMAGE_VARIATION") => "imageVariationParams",
        other => {
            return error::validation(&format!(
                "taskType: the mock serves TEXT_IMAGE, INPAINTING and IMAGE_VARIATION (got {other:?})"
            ));
        }
    };
    if !req.get(params).is_some_and(Value::is_object) {
        return error::validation(&format!("{params}: required for this taskType"));
    }
    let count = req["imageGenerationConfig"]["numberOfImages"]
        .as_u64()
        .unwrap_or(1);
    let images: Vec<String> = (0..count).map(image).collect();
    json_reply(&json!({"images": images, "error": null}))
}

fn rerank(model_id: &str, req: &Value, n: usize) -> Reply {
    let cohere = model_id.contains("cohere.");
    if cohere && req["api_version"].as_u64().is_none_or(|v| v < 2) {
        return error::validation("Malformed input request: #/api_version: must be 2 or more");
    }
    let (Some(query), Some(docs)) = (req["query"].as_str(), req["documents"].as_array()) else {
        return error::validation("query and documents are required");
    };
    let query = query.to_lowercase();
    let query_words: Vec<&str> = query.split_whitespace().collect();
    let mut scored: Vec<(usize, f64)> = docs
        .iter()
        .enumerate()
        .map(|(i, doc)| {
            let lower = doc.as_str().unwrap_or_default().to_lowercase();
            let hits = query_words.iter().filter(|w| lower.contains(**w)).count();
            (i, hits as f64 / query_words.len().max(1) as f64)
        })
        .collect();
    scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    if let Some(top) = req["top_n"].as_u64() {
        scored.truncate(usize::try_from(top).unwrap_or(usize::MAX));
    }
    let results: Vec<Value> = scored
        .iter()
        .map(|(i, s)| json!({"index": i, "relevance_score": s}))
        .collect();
    let mut answer = json!({"results": results});
    if cohere {
        answer["id"] = json!(super::request_id(n));
    }
    json_reply(&answer)
}
