//! Gemini embeddings: `batchEmbedContents` (Gemini API) and `predict` (Vertex AI). Each text gets
//! the same eight-number vector as `POST /v1/embeddings` gives it (see `openai/embeddings.rs`), so
//! a test can compare providers; `outputDimensionality` is ignored.
//!
//! - `batchEmbedContents`: `{"requests": [{"model", "content": {"parts": [{"text"}]}}]}` ->
//!   `{"embeddings": [{"values": [...]}]}` in request order; the vector derives from the
//!   request's text parts concatenated. Gemini reports no token counts here.
//! - `predict`: `{"instances": [{"content": text}]}` -> `{"predictions": [{"embeddings":
//!   {"values", "statistics": {"token_count": words in the text, "truncated": false}}}]}`.

use bytes::Bytes;
use serde::Serialize;
use serde_json::Value;

use super::error;
use crate::openai::embeddings::{DIMENSIONS, vector};
use crate::openai::{Reply, to_json, words};

#[derive(Serialize)]
struct Batch {
    embeddings: Vec<Values>,
}

#[derive(Serialize)]
struct Values {
    values: [f32; DIMENSIONS],
}

#[derive(Serialize)]
struct Predictions {
    predictions: Vec<Prediction>,
}

#[derive(Serialize)]
struct Prediction {
    embeddings: PredictionEmbedding,
}

#[derive(Serialize)]
struct PredictionEmbedding {
    values: [f32; DIMENSIONS],
    statistics: Statistics,
}

#[derive(Serialize)]
struct Statistics {
    token_count: u64,
    truncated: bool,
}

pub(crate) fn batch(req: &Value) -> Reply {
    let requests = req
        .get("requests")
        .and_then(Value::as_array)
        .filter(|r| !r.is_empty());
    let Some(requests) = requests else {
        return error::bad_request(
            "* BatchEmbedContentsRequest.requests: requests is not specified",
        );
    };
    let mut embeddings = Vec::with_capacity(requests.len());
    for (i, request) in requests.iter().enumerate() {
        let Some(parts) = request.pointer("/content/parts").and_then(Value::as_array) else {
            return error::bad_request(&format!(
                "* BatchEmbedContentsRequest.requests[{i}].content: content is not specified"
            ));
        };
        let text: String = parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect();
        embeddings.push(Values {
            values: vector(text.as_bytes()),
        });
    }
    Reply::Json(Bytes::from(to_json(&Batch { embeddings })))
}

pub(crate) fn predict(req: &Value) -> Reply {
    // Imagen: `{"instances": [{"prompt"}], "parameters": {"sampleCount"}}` gets `sampleCount`
    // images, each the bytes `mock-image-{i}` in base64.
    if let Some(prompt) = req["instances"][0]["prompt"].as_str() {
        let n = req["parameters"]["sampleCount"].as_u64().unwrap_or(1);
        let predictions: Vec<Value> = (0..n)
            .map(|i| {
                serde_json::json!({"bytesBase64Encoded": crate::base64::encode(format!("mock-image-{i}").as_bytes()),
                    "mimeType": "image/png", "prompt": prompt})
            })
            .collect();
        return Reply::Json(Bytes::from(
            serde_json::json!({"predictions": predictions}).to_string(),
        ));
    }
    let instances = req
        .get("instances")
        .and_then(Value::as_array)
        .filter(|i| !i.is_empty());
    let Some(instances) = instances else {
        return error::bad_request("instances: must be a non-empty list of {\"content\": text}");
    };
    let mut predictions = Vec::with_capacity(instances.len());
    for (i, instance) in instances.iter().enumerate() {
        let Some(text) = instance.get("content").and_then(Value::as_str) else {
            return error::bad_request(&format!("instances[{i}].content: must be a string"));
        };
        predictions.push(Prediction {
            embeddings: PredictionEmbedding {
                values: vector(text.as_bytes()),
                statistics: Statistics {
                    token_count: words(text),
                    truncated: false,
                },
            },
        });
    }
    Reply::Json(Bytes::from(to_json(&Predictions { predictions })))
}
