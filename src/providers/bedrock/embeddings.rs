//! OpenAI `POST /v1/embeddings` <-> Bedrock InvokeModel bodies of the embedding models
//! (`{base}/model/{id}/invoke`, see [`super::request::invoke_url`]).
//!
//! - Amazon Titan Text Embeddings V2 (`amazon.titan-embed-text-v2:0`) embeds ONE text per call:
//!   [`titan_from_openai`] returns one body `{inputText, dimensions?, normalize: true}` per input,
//!   and [`titan_to_openai`] joins the answers `{embedding, inputTextTokenCount}` in the same
//!   order; `usage.prompt_tokens` is the sum of `inputTextTokenCount`. `dimensions` must be 256,
//!   512 or 1024 (<https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-titan-embed-text.html>).
//! - Cohere Embed (`cohere.embed-english-v3`, `cohere.embed-multilingual-v3`, `cohere.embed-v4:0`)
//!   embeds up to 96 texts per call: `{texts, input_type}`, answered by `{embeddings: [[..]], id,
//!   response_type, texts}` (or `{embeddings: {float: [[..]]}}` when embedding types were asked
//!   for). OpenAI has no `input_type`: a non-standard `input_type` in the request is passed on,
//!   else `search_document` is sent. `dimensions` maps to `output_dimension` on v4 and is
//!   `Unsupported` on v3. The body carries no token count: `usage` comes from the
//!   `X-Amzn-Bedrock-Input-Token-Count` response header when the adapter passes it, else 0
//!   (<https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-embed.html>).
//!
//! `input` may be a string or an array of strings (token arrays are `Unsupported`); `user` is
//! ignored; `encoding_format: base64` yields base64 of little-endian f32, as OpenAI sends it.

use serde_json::{Map, Value, json};

use super::{TranslateError, TranslateOptions, invalid, unsupported};
use crate::providers::translate::embedding_list;
pub use crate::providers::translate::{EncodingFormat, base64_f32, encoding_format};

/// The InvokeModel response header carrying the input token count.
pub const INPUT_TOKEN_COUNT_HEADER: &str = "x-amzn-bedrock-input-token-count";

/// Which request/response shape a Bedrock embedding model speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    TitanV2,
    Cohere,
}

/// Recognizes the embedding family from a model id (inference-profile prefixes allowed).
pub fn family(model_id: &str) -> Option<Family> {
    if model_id.contains("amazon.titan-embed-text-v2") {
        Some(Family::TitanV2)
    } else if model_id.contains("cohere.embed-") {
        Some(Family::Cohere)
    } else {
        None
    }
}

fn texts(
    req: &Value,
    opts: &TranslateOptions,
    extra: &[&str],
) -> Result<Vec<String>, TranslateError> {
    let obj = req
        .as_object()
        .ok_or_else(|| invalid("body", "expected a JSON object"))?;
    for (key, value) in obj {
        let known = matches!(
            key.as_str(),
            "input" | "model" | "dimensions" | "encoding_format" | "user"
        ) || extra.contains(&key.as_str());
        if !known && !value.is_null() && !opts.drop_unsupported {
            return Err(unsupported(
                key.as_str(),
                "not supported by this Bedrock embedding model",
            ));
        }
    }
    encoding_format(req)?;
    match obj.get("input") {
        Some(Value::String(s)) => Ok(vec![s.clone()]),
        Some(Value::Array(items)) if !items.is_empty() => items
            .iter()
            .enumerate()
            .map(|(i, item)| match item {
                Value::String(s) => Ok(s.clone()),
                _ => Err(unsupported(
                    format!("input[{i}]"),
                    "token arrays are not supported by Bedrock embedding models; send text",
                )),
            })
            .collect(),
        _ => Err(invalid(
            "input",
            "expected a string or a non-empty array of strings",
        )),
    }
}

/// OpenAI request -> one Titan V2 body per input.
pub fn titan_from_openai(
    req: &Value,
    opts: &TranslateOptions,
) -> Result<Vec<Value>, TranslateError> {
    let texts = texts(req, opts, &[])?;
    let dimensions = match req.get("dimensions") {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_u64() {
            Some(d @ (256 | 512 | 1024)) => Some(d),
            _ => {
                return Err(unsupported(
                    "dimensions",
                    "Titan Text Embeddings V2 accepts 256, 512 or 1024",
                ));
            }
        },
    };
    Ok(texts
        .into_iter()
        .map(|text| {
            let mut body = Map::new();
            body.insert("inputText".into(), json!(text));
            if let Some(d) = dimensions {
                body.insert("dimensions".into(), json!(d));
            }
            body.insert("normalize".into(), json!(true));
            Value::Object(body)
        })
        .collect())
}

/// Titan V2 answers (one per input, in order) -> OpenAI embeddings answer.
pub fn titan_to_openai(
    bodies: &[Value],
    model: &str,
    format: EncodingFormat,
) -> Result<Value, TranslateError> {
    let mut vectors = Vec::with_capacity(bodies.len());
    let mut tokens = 0;
    for (i, body) in bodies.iter().enumerate() {
        let embedding = body
            .get("embedding")
            .or_else(|| body.get("embeddingsByType").and_then(|e| e.get("float")))
            .ok_or_else(|| {
                TranslateError::Malformed(format!("Titan answer {i} has no embedding"))
            })?;
        vectors.push(Some(embedding));
        tokens += body
            .get("inputTextTokenCount")
            .and_then(Value::as_u64)
            .unwrap_or(0);
    }
    embedding_list(&vectors, model, format, tokens)
}

/// OpenAI request -> Cohere Embed body for `model_id`.
pub fn cohere_from_openai(
    req: &Value,
    model_id: &str,
    opts: &TranslateOptions,
) -> Result<Value, TranslateError> {
    let texts = texts(req, opts, &["input_type"])?;
    let input_type = match req.get("input_type") {
        None | Some(Value::Null) => "search_document".to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err(invalid("input_type", "expected a string")),
    };
    let mut body = Map::new();
    body.insert("texts".into(), json!(texts));
    body.insert("input_type".into(), json!(input_type));
    match req.get("dimensions") {
        None | Some(Value::Null) => {}
        Some(d) if model_id.contains("embed-v4") => {
            body.insert("output_dimension".into(), d.clone());
        }
        Some(_) if opts.drop_unsupported => {}
        Some(_) => {
            return Err(unsupported(
                "dimensions",
                "Cohere Embed v3 has a fixed dimension",
            ));
        }
    }
    Ok(Value::Object(body))
}

/// Cohere Embed answer -> OpenAI embeddings answer. `input_tokens` is the value of the
/// [`INPUT_TOKEN_COUNT_HEADER`] response header, when the adapter has it.
pub fn cohere_to_openai(
    body: &Value,
    model: &str,
    format: EncodingFormat,
    input_tokens: Option<u64>,
) -> Result<Value, TranslateError> {
    let embeddings =
        match body.get("embeddings") {
            Some(Value::Array(list)) => list,
            Some(Value::Object(by_type)) => by_type
                .get("float")
                .and_then(Value::as_array)
                .ok_or_else(|| {
                    TranslateError::Malformed("Cohere answer has no float embeddings".into())
                })?,
            _ => {
                return Err(TranslateError::Malformed(
                    "Cohere answer has no embeddings".into(),
                ));
            }
        };
    let vectors: Vec<Option<&Value>> = embeddings.iter().map(Some).collect();
    let tokens = input_tokens
        .or_else(|| {
            body.get("meta")
                .and_then(|m| m.get("billed_units"))
                .and_then(|b| b.get("input_tokens"))
                .and_then(Value::as_u64)
        })
        .unwrap_or(0);
    embedding_list(&vectors, model, format, tokens)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::bedrock::test_support::{assert_json_eq, parse};

    #[test]
    fn titan_round_trip_matches_golden() {
        let req = parse(include_str!(
            "../../../tests/fixtures/bedrock/embeddings_request.json"
        ));
        let bodies = titan_from_openai(&req, &TranslateOptions::default()).expect("ok");
        let expected = parse(include_str!(
            "../../../tests/fixtures/bedrock/titan_requests.json"
        ));
        assert_json_eq(&Value::Array(bodies), &expected);

        let answers = parse(include_str!(
            "../../../tests/fixtures/bedrock/titan_responses.json"
        ));
        let got = titan_to_openai(
            answers.as_array().expect("array"),
            "amazon.titan-embed-text-v2:0",
            EncodingFormat::Float,
        )
        .expect("ok");
        let expected = parse(include_str!(
            "../../../tests/fixtures/bedrock/titan_embeddings_response.json"
        ));
        assert_json_eq(&got, &expected);
    }

    #[test]
    fn cohere_round_trip_matches_golden() {
        let req = json!({"model": "x", "input": ["hello", "world"], "input_type": "search_query"});
        let body = cohere_from_openai(
            &req,
            "cohere.embed-english-v3",
            &TranslateOptions::default(),
        )
        .expect("ok");
        assert_eq!(
            body,
            json!({"texts": ["hello", "world"], "input_type": "search_query"})
        );

        let answer = parse(include_str!(
            "../../../tests/fixtures/bedrock/cohere_response.json"
        ));
        let got = cohere_to_openai(
            &answer,
            "cohere.embed-english-v3",
            EncodingFormat::Base64,
            Some(4),
        )
        .expect("ok");
        assert_eq!(got["usage"], json!({"prompt_tokens": 4, "total_tokens": 4}));
        assert_eq!(got["data"][1]["index"], json!(1));
        assert_eq!(
            got["data"][0]["embedding"],
            json!(base64_f32(&[0.0185546875, -0.0290527344, 0.0163574219]))
        );
        let without_header =
            cohere_to_openai(&answer, "m", EncodingFormat::Float, None).expect("ok");
        assert_eq!(without_header["usage"]["prompt_tokens"], json!(0));
    }

    #[test]
    fn families_and_dimension_checks() {
        assert_eq!(
            family("amazon.titan-embed-text-v2:0"),
            Some(Family::TitanV2)
        );
        assert_eq!(family("cohere.embed-multilingual-v3"), Some(Family::Cohere));
        assert_eq!(family("anthropic.claude-sonnet-4-5-20250929-v1:0"), None);
        let req = json!({"input": "x", "dimensions": 300});
        assert!(matches!(
            titan_from_openai(&req, &TranslateOptions::default()),
            Err(TranslateError::Unsupported { .. })
        ));
        let req = json!({"input": "x", "dimensions": 512});
        assert!(
            cohere_from_openai(
                &req,
                "cohere.embed-english-v3",
                &TranslateOptions::default()
            )
            .is_err()
        );
        assert_eq!(
            cohere_from_openai(&req, "cohere.embed-v4:0", &TranslateOptions::default())
                .expect("ok")["output_dimension"],
            json!(512)
        );
    }
}
