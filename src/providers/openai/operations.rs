//! Rerank in Voyage's dialect: the common (Cohere) shape says `top_n` and answers in `results`;
//! Voyage says `top_k` and answers in `data`, with the list's `object`. Reference:
//! https://docs.voyageai.com/reference/reranker-api

use serde_json::{Map, Value, json};

/// A common rerank body as Voyage takes it.
pub fn rerank_to_voyage(map: &Map<String, Value>) -> Value {
    let mut body = map.clone();
    if let Some(top_n) = body.remove("top_n") {
        body.insert("top_k".into(), top_n);
    }
    // Voyage has no per-document token cap; it truncates by itself.
    body.remove("max_tokens_per_doc");
    Value::Object(body)
}

/// Voyage's answer in the common shape (`results`, `relevance_score`, `usage` kept).
pub fn rerank_from_voyage(answer: &Value) -> Value {
    let results: Vec<Value> = answer["data"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|item| {
            let mut result = json!({
                "index": item["index"],
                "relevance_score": item["relevance_score"],
            });
            if let Some(document) = item.get("document") {
                result["document"] = json!({"text": document});
            }
            result
        })
        .collect();
    let mut out = json!({"results": results, "model": answer["model"]});
    if let Some(usage) = answer.get("usage") {
        out["usage"] = usage.clone();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn voyage_takes_top_k_and_answers_in_data() {
        let body = json!({"model": "rerank-2", "query": "q", "documents": ["a", "b"], "top_n": 1});
        let Value::Object(map) = body else {
            return;
        };
        let voyage = rerank_to_voyage(&map);
        assert_eq!(voyage["top_k"], 1);
        assert!(voyage.get("top_n").is_none());
        let answer = json!({"object": "list", "model": "rerank-2", "usage": {"total_tokens": 9},
            "data": [{"index": 1, "relevance_score": 0.9}]});
        let common = rerank_from_voyage(&answer);
        assert_eq!(common["results"][0]["index"], 1);
        assert_eq!(common["usage"]["total_tokens"], 9);
    }
}
