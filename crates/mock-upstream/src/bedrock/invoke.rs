//! `invoke` (InvokeModel) for the embedding models, recognized by model id (an inference-profile
//! prefix is fine). Each text gets the same eight-number vector as `POST /v1/embeddings` gives it
//! (see `openai/embeddings.rs`); `dimensions` and `normalize` are ignored.
//!
//! - Titan Text Embeddings V2 (`amazon.titan-embed-text-v2:0`): `{"inputText"}` ->
//!   `{"embedding", "inputTextTokenCount": words, "embeddingsByType": {"float": embedding}}`.
//! - Cohere Embed (`cohere.embed-english-v3`, `cohere.embed-multilingual-v3`, `cohere.embed-v4:0`):
//!   `{"texts": [...]}` -> `{"embeddings": [[...], ...], "id", "response_type":
//!   "embeddings_floats", "texts"}`; `id` is the request id.
//!
//! Both answers carry the `x-amzn-bedrock-input-token-count` header (the words of every text),
//! which is where InvokeModel reports usage; Claude ids go to `claude.rs`, and any other model id
//! gets a 400 `ValidationException`.

use bytes::Bytes;
use hyper::header::{HeaderName, HeaderValue};
use serde::Serialize;
use serde_json::Value;

use super::error;
use crate::openai::embeddings::{DIMENSIONS, vector};
use crate::openai::{Reply, to_json, words};

const INPUT_TOKEN_COUNT: HeaderName = HeaderName::from_static("x-amzn-bedrock-input-token-count");

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Titan {
    embedding: [f32; DIMENSIONS],
    input_text_token_count: u64,
    embeddings_by_type: ByType,
}

#[derive(Serialize)]
struct ByType {
    float: [f32; DIMENSIONS],
}

#[derive(Serialize)]
struct Cohere<'a> {
    embeddings: Vec<[f32; DIMENSIONS]>,
    id: String,
    response_type: &'static str,
    texts: Vec<&'a str>,
}

/// Answers one InvokeModel call on `model_id`; `n` numbers Cohere's `id`.
pub(crate) fn reply(model_id: &str, req: &Value, n: usize) -> Reply {
    if model_id.contains("amazon.titan-embed-text") {
        titan(req)
    } else if model_id.contains("cohere.embed-") {
        cohere(req, n)
    } else {
        error::validation(&format!(
            "the mock serves InvokeModel only for anthropic.*, amazon.titan-embed-text-* and cohere.embed-* models (got {model_id:?})"
        ))
    }
}

fn titan(req: &Value) -> Reply {
    let Some(text) = req.get("inputText").and_then(Value::as_str) else {
        return error::validation("inputText: must be a string");
    };
    let embedding = vector(text.as_bytes());
    let tokens = words(text);
    let body = to_json(&Titan {
        embedding,
        input_text_token_count: tokens,
        embeddings_by_type: ByType { float: embedding },
    });
    with_token_count(body, tokens)
}

fn cohere(req: &Value, n: usize) -> Reply {
    let texts: Option<Vec<&str>> = req
        .get("texts")
        .and_then(Value::as_array)
        .filter(|t| !t.is_empty())
        .and_then(|t| t.iter().map(Value::as_str).collect());
    let Some(texts) = texts else {
        return error::validation("texts: must be a non-empty list of strings");
    };
    let tokens = texts.iter().map(|t| words(t)).sum();
    let body = to_json(&Cohere {
        embeddings: texts.iter().map(|t| vector(t.as_bytes())).collect(),
        id: super::request_id(n),
        response_type: "embeddings_floats",
        texts,
    });
    with_token_count(body, tokens)
}

fn with_token_count(body: Vec<u8>, tokens: u64) -> Reply {
    Reply::WithHeaders(
        Box::new(Reply::Json(Bytes::from(body))),
        vec![(INPUT_TOKEN_COUNT, HeaderValue::from(tokens))],
    )
}
