//! The common (Cohere-style) rerank shape <-> Bedrock InvokeModel on a rerank model
//! (`{base}/model/{id}/invoke`, see [`super::request::invoke_url`]): Cohere Rerank 3.5
//! (`cohere.rerank-v3-5:0`) and Amazon Rerank 1.0 (`amazon.rerank-v1:0`).
//!
//! InvokeModel rather than bedrock-agent-runtime's `Rerank` action: it is on the same Runtime
//! host, signed for the same service, as every other call this provider makes, and takes the
//! common shape almost as it is: `{query, documents: [string], top_n?}`, plus `api_version: 2`
//! for Cohere, which refuses the call without it
//! (<https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-cohere-rerank.html>).
//! Both answer `{"results": [{"index", "relevance_score"}]}` (Cohere adds an `id`).
//!
//! Bedrock bills rerank per query, a query being up to 100 documents
//! (<https://aws.amazon.com/bedrock/pricing/>); the answer says nothing of it, so the common
//! answer's `meta.billed_units.search_units` is counted here from the request: one per 100
//! documents, rounded up.

use serde_json::{Map, Value, json};

use crate::providers::Untranslatable;

/// Documents Bedrock counts as one billed query.
pub const DOCUMENTS_PER_QUERY: usize = 100;

fn refuse(param: &str, message: impl Into<String>) -> Untranslatable {
    Untranslatable {
        param: param.to_string(),
        message: message.into(),
    }
}

/// Whether a Bedrock model id is a rerank model this module speaks to.
pub fn is_rerank(model_id: &str) -> bool {
    model_id.contains("cohere.rerank-") || model_id.contains("amazon.rerank-")
}

/// The documents as plain strings: a string, or an object's `text`.
fn documents(map: &Map<String, Value>) -> Result<Vec<String>, Untranslatable> {
    map.get("documents")
        .and_then(Value::as_array)
        .ok_or_else(|| refuse("documents", "must be an array"))?
        .iter()
        .enumerate()
        .map(|(i, doc)| match doc {
            Value::String(s) => Ok(s.clone()),
            Value::Object(o) => o
                .get("text")
                .and_then(Value::as_str)
                .map(String::from)
                .ok_or_else(|| {
                    refuse(
                        &format!("documents[{i}]"),
                        "Bedrock reranks text: send a string or an object with text",
                    )
                }),
            _ => Err(refuse(&format!("documents[{i}]"), "must be a string")),
        })
        .collect()
}

/// A common rerank body as the InvokeModel body of `model_id`.
pub fn to_bedrock(
    map: &Map<String, Value>,
    model_id: &str,
    drop_unsupported: bool,
) -> Result<Value, Untranslatable> {
    if !is_rerank(model_id) {
        return Err(refuse(
            "model",
            format!(
                "{model_id} is not a Bedrock rerank model (cohere.rerank-v3-5:0, amazon.rerank-v1:0)"
            ),
        ));
    }
    for (key, value) in map {
        let known = matches!(
            key.as_str(),
            "model" | "query" | "documents" | "top_n" | "return_documents" | "user"
        );
        if !known && !value.is_null() && !drop_unsupported {
            return Err(refuse(key, "not supported by Bedrock rerank models"));
        }
    }
    let query = map
        .get("query")
        .and_then(Value::as_str)
        .ok_or_else(|| refuse("query", "must be a string"))?;
    let mut body = json!({"query": query, "documents": documents(map)?});
    match map.get("top_n") {
        None | Some(Value::Null) => {}
        Some(n) if n.as_u64().is_some_and(|n| n >= 1) => body["top_n"] = n.clone(),
        Some(_) => return Err(refuse("top_n", "must be a whole number of at least 1")),
    }
    if model_id.contains("cohere.") {
        body["api_version"] = json!(2);
    }
    Ok(body)
}

/// A Bedrock rerank answer in the common shape, with the queries billed and, when asked for,
/// each result's document.
pub fn from_bedrock(
    answer: &Value,
    request: &Map<String, Value>,
    model_id: &str,
) -> Result<Value, String> {
    let results = answer["results"]
        .as_array()
        .ok_or("a Bedrock rerank answer has no results")?;
    let docs = documents(request).map_err(|e| e.to_string())?;
    let with_documents = request.get("return_documents").and_then(Value::as_bool) == Some(true);
    let results: Vec<Value> = results
        .iter()
        .map(|r| {
            let mut out = json!({"index": r["index"], "relevance_score": r["relevance_score"]});
            if with_documents
                && let Some(text) = r["index"]
                    .as_u64()
                    .and_then(|i| docs.get(usize::try_from(i).ok()?))
            {
                out["document"] = json!({"text": text});
            }
            out
        })
        .collect();
    let search_units = docs.len().div_ceil(DOCUMENTS_PER_QUERY).max(1);
    Ok(json!({
        "id": answer.get("id").cloned().unwrap_or(Value::Null),
        "model": model_id,
        "results": results,
        "meta": {"billed_units": {"search_units": search_units}},
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    #[test]
    fn cohere_gets_api_version_two_and_amazon_does_not() {
        let request =
            map(json!({"model": "x", "query": "q", "documents": ["a", {"text": "b"}], "top_n": 1}));
        let cohere = to_bedrock(&request, "cohere.rerank-v3-5:0", false).unwrap_or_default();
        assert_eq!(
            cohere,
            json!({"query": "q", "documents": ["a", "b"], "top_n": 1, "api_version": 2})
        );
        let amazon = to_bedrock(&request, "amazon.rerank-v1:0", false).unwrap_or_default();
        assert_eq!(amazon.get("api_version"), None);
        let bad = map(json!({"query": "q", "documents": ["a"], "rank_fields": ["x"]}));
        let err = to_bedrock(&bad, "amazon.rerank-v1:0", false).err();
        assert_eq!(err.map(|e| e.param).as_deref(), Some("rank_fields"));
        let err = to_bedrock(&request, "amazon.titan-embed-text-v2:0", false).err();
        assert_eq!(err.map(|e| e.param).as_deref(), Some("model"));
    }

    #[test]
    fn answers_count_a_query_per_hundred_documents_and_return_documents_on_request() {
        let docs: Vec<String> = (0..150).map(|i| format!("doc {i}")).collect();
        let request = map(json!({"query": "q", "documents": docs, "return_documents": true}));
        let answer = json!({"results": [{"index": 3, "relevance_score": 0.9}]});
        let common = from_bedrock(&answer, &request, "amazon.rerank-v1:0").unwrap_or_default();
        assert_eq!(common["meta"]["billed_units"]["search_units"], 2);
        assert_eq!(common["results"][0]["document"]["text"], "doc 3");
        assert_eq!(common["results"][0]["relevance_score"], 0.9);
    }
}
