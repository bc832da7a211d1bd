//! OpenAI `POST /v1/embeddings` <-> Gemini embeddings.
//!
//! - Gemini API: `models/{m}:batchEmbedContents` with
//!   `{"requests": [{"model": "models/{m}", "content": {"parts": [{"text"}]}, "outputDimensionality"?}]}`,
//!   answered by `{"embeddings": [{"values": [...]}]}` in input order
//!   (<https://ai.google.dev/api/embeddings>). That answer carries no token counts, so `usage` is
//!   0 unless a `usageMetadata.promptTokenCount` is present.
//! - Vertex AI: `publishers/google/models/{m}:predict` with
//!   `{"instances": [{"content": text}], "parameters": {"outputDimensionality"?}}`, answered by
//!   `{"predictions": [{"embeddings": {"values", "statistics": {"token_count", "truncated"}}}]}`;
//!   `usage.prompt_tokens` is the sum of `token_count`
//!   (<https://cloud.google.com/vertex-ai/generative-ai/docs/model-reference/text-embeddings-api>).
//!
//! `input` may be a string or an array of strings; token arrays are `Unsupported` (Gemini takes
//! text only). `dimensions` -> `outputDimensionality`; `user` is ignored; `encoding_format: base64`
//! is applied on the way back: each vector becomes the base64 of its little-endian f32 bytes, as
//! OpenAI sends it.

use serde_json::{Map, Value, json};

use super::request::{VertexTarget, model_url};
use super::{TranslateError, TranslateOptions, invalid, unsupported};
use crate::providers::translate::embedding_list;
pub use crate::providers::translate::{EncodingFormat, base64_f32, encoding_format};

/// The embeddings URL: `:batchEmbedContents` on the Gemini API, `:predict` on Vertex AI.
pub fn url(base: &str, model: &str, vertex: Option<&VertexTarget>) -> String {
    let method = if vertex.is_some() {
        "predict"
    } else {
        "batchEmbedContents"
    };
    model_url(base, model, method, vertex)
}

/// Checks the request and returns (texts, dimensions).
fn texts(
    req: &Value,
    opts: &TranslateOptions,
) -> Result<(Vec<String>, Option<Value>), TranslateError> {
    let obj = req
        .as_object()
        .ok_or_else(|| invalid("body", "expected a JSON object"))?;
    for (key, value) in obj {
        let known = matches!(
            key.as_str(),
            "input" | "model" | "dimensions" | "encoding_format" | "user"
        );
        if !known && !value.is_null() && !opts.drop_unsupported {
            return Err(unsupported(
                key.as_str(),
                "not supported by Gemini embeddings",
            ));
        }
    }
    encoding_format(req)?;
    let texts = match obj.get("input") {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) if !items.is_empty() => items
            .iter()
            .enumerate()
            .map(|(i, item)| match item {
                Value::String(s) => Ok(s.clone()),
                _ => Err(unsupported(
                    format!("input[{i}]"),
                    "token arrays are not supported by Gemini; send text",
                )),
            })
            .collect::<Result<_, _>>()?,
        _ => {
            return Err(invalid(
                "input",
                "expected a string or a non-empty array of strings",
            ));
        }
    };
    let dimensions = match obj.get("dimensions") {
        None | Some(Value::Null) => None,
        Some(v @ Value::Number(_)) => Some(v.clone()),
        Some(_) => return Err(invalid("dimensions", "expected a number")),
    };
    Ok((texts, dimensions))
}

/// OpenAI embeddings request -> `batchEmbedContents` body.
pub fn from_openai(
    req: &Value,
    upstream_model: &str,
    opts: &TranslateOptions,
) -> Result<Value, TranslateError> {
    let (texts, dimensions) = texts(req, opts)?;
    let model = upstream_model
        .strip_prefix("models/")
        .unwrap_or(upstream_model);
    let requests: Vec<Value> = texts
        .into_iter()
        .map(|text| {
            let mut r = Map::new();
            r.insert("model".into(), json!(format!("models/{model}")));
            r.insert("content".into(), json!({ "parts": [{ "text": text }] }));
            if let Some(d) = &dimensions {
                r.insert("outputDimensionality".into(), d.clone());
            }
            Value::Object(r)
        })
        .collect();
    Ok(json!({ "requests": requests }))
}

/// `batchEmbedContents` answer -> OpenAI embeddings answer.
pub fn to_openai(
    body: &Value,
    model: &str,
    format: EncodingFormat,
) -> Result<Value, TranslateError> {
    let embeddings = body
        .get("embeddings")
        .and_then(Value::as_array)
        .ok_or_else(|| TranslateError::Malformed("no embeddings array".into()))?;
    let vectors = embeddings
        .iter()
        .map(|e| e.get("values"))
        .collect::<Vec<_>>();
    let tokens = body
        .get("usageMetadata")
        .and_then(|u| u.get("promptTokenCount"))
        .and_then(Value::as_u64)
        .unwrap_or(0);
    embedding_list(&vectors, model, format, tokens)
}

/// OpenAI embeddings request -> Vertex AI `:predict` body.
pub fn vertex_from_openai(
    req: &Value,
    _upstream_model: &str,
    opts: &TranslateOptions,
) -> Result<Value, TranslateError> {
    let (texts, dimensions) = texts(req, opts)?;
    let instances: Vec<Value> = texts.into_iter().map(|t| json!({ "content": t })).collect();
    let mut out = json!({ "instances": instances });
    if let Some(d) = dimensions {
        out["parameters"] = json!({ "outputDimensionality": d });
    }
    Ok(out)
}

/// Vertex AI `:predict` answer -> OpenAI embeddings answer.
pub fn vertex_to_openai(
    body: &Value,
    model: &str,
    format: EncodingFormat,
) -> Result<Value, TranslateError> {
    let predictions = body
        .get("predictions")
        .and_then(Value::as_array)
        .ok_or_else(|| TranslateError::Malformed("no predictions array".into()))?;
    let vectors: Vec<Option<&Value>> = predictions
        .iter()
        .map(|p| p.get("embeddings").and_then(|e| e.get("values")))
        .collect();
    let tokens = predictions
        .iter()
        .filter_map(|p| {
            p.get("embeddings")
                .and_then(|e| e.get("statistics"))
                .and_then(|s| s.get("token_count"))
                .and_then(Value::as_f64)
        })
        .sum::<f64>();
    embedding_list(&vectors, model, format, tokens.round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::gemini::test_support::{assert_json_eq, parse};

    #[test]
    fn batch_request_and_response_match_golden() {
        let req = parse(include_str!(
            "../../../tests/fixtures/gemini/embeddings_request.json"
        ));
        let expected = parse(include_str!(
            "../../../tests/fixtures/gemini/batch_embed_request.json"
        ));
        let got = from_openai(&req, "gemini-embedding-001", &TranslateOptions::default())
            .expect("translates");
        assert_json_eq(&got, &expected);

        let answer = parse(include_str!(
            "../../../tests/fixtures/gemini/batch_embed_response.json"
        ));
        let expected = parse(include_str!(
            "../../../tests/fixtures/gemini/embeddings_response.json"
        ));
        let got = to_openai(&answer, "gemini-embedding-001", EncodingFormat::Float).expect("ok");
        assert_json_eq(&got, &expected);
    }

    #[test]
    fn base64_is_little_endian_f32() {
        // 1.0f32 = 00 00 80 3f; -2.0f32 = 00 00 00 c0.
        assert_eq!(base64_f32(&[1.0, -2.0]), "AACAPwAAAMA=");
        let answer = json!({"embeddings": [{"values": [1.0, -2.0]}]});
        let got = to_openai(&answer, "m", EncodingFormat::Base64).expect("ok");
        assert_eq!(got["data"][0]["embedding"], json!("AACAPwAAAMA="));
    }

    #[test]
    fn vertex_predict_round_trip() {
        let req = json!({"input": ["a", "b"], "model": "x", "dimensions": 256});
        let body = vertex_from_openai(&req, "gemini-embedding-001", &TranslateOptions::default())
            .expect("ok");
        assert_eq!(
            body,
            json!({"instances": [{"content": "a"}, {"content": "b"}], "parameters": {"outputDimensionality": 256}})
        );
        let answer = json!({"predictions": [
            {"embeddings": {"values": [0.5], "statistics": {"token_count": 3.0, "truncated": false}}},
            {"embeddings": {"values": [0.25], "statistics": {"token_count": 4.0, "truncated": false}}}
        ]});
        let got =
            vertex_to_openai(&answer, "gemini-embedding-001", EncodingFormat::Float).expect("ok");
        assert_eq!(got["usage"], json!({"prompt_tokens": 7, "total_tokens": 7}));
        assert_eq!(got["data"][1]["embedding"], json!([0.25]));
    }

    #[test]
    fn token_inputs_are_unsupported() {
        let req = json!({"input": [[1, 2, 3]], "model": "x"});
        match from_openai(&req, "gemini-embedding-001", &TranslateOptions::default()) {
            Err(TranslateError::Unsupported { param, .. }) => assert_eq!(param, "input[0]"),
            other => panic!("expected Unsupported, got {other:?}"),
        }
    }
}
