//! The embeddings cache (part of `cache`): `/v1/embeddings` answers kept per input string and
//! model (and the parameters that change a vector: `dimensions`, `encoding_format`). A batch whose
//! inputs were all seen is answered from memory; one that repeats some sends only the new inputs
//! upstream (each once, even if the batch repeats it) and the answer is merged back in order.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use serde_json::{Value, json};

use super::index::EntryIndex;
use super::key;
use crate::request::RequestCtx;
use crate::store::{CacheEntry, CacheKind};
use crate::wire::openai::{EmbeddingRequest, Inbound};

/// The embeddings cache's entries, shared by every chain and the admin API.
pub struct EmbeddingEntries(pub EntryIndex);

/// A batch partly answered from the cache: what goes where when the upstream answers.
#[derive(Clone)]
pub struct Merge {
    namespace: String,
    model: String,
    ttl_ms: i64,
    /// Per input position: its cache key.
    keys: Vec<String>,
    /// Vectors already known, by cache key.
    known: HashMap<String, Value>,
    /// The inputs sent upstream, in order (each key once).
    sent: Vec<String>,
}

/// What the lookup decided.
pub enum Lookup {
    /// Every input was cached: the whole answer, and what its upstream calls cost.
    Answered(Value, i64),
    /// Some or none were: the request now asks only for the rest.
    Partial(Merge),
    /// Not a request this cache serves (token arrays, another endpoint).
    NotCached,
}

fn inputs(request: &EmbeddingRequest) -> Option<Vec<String>> {
    match &request.input {
        Value::String(s) => Some(vec![s.clone()]),
        Value::Array(items) => items
            .iter()
            .map(|i| i.as_str().map(String::from))
            .collect::<Option<Vec<_>>>()
            .filter(|v| !v.is_empty()),
        _ => None,
    }
}

fn entry_key(request: &EmbeddingRequest, model: &str, input: &str) -> String {
    let mut params = request.rest.clone();
    params.insert("model".into(), Value::String(model.to_string()));
    params.insert("input".into(), Value::String(input.to_string()));
    key::hash(&Value::Object(params))
}

/// Looks a batch up; rewrites the request to the inputs still needed.
pub fn lookup(
    ctx: &mut RequestCtx,
    entries: &EntryIndex,
    namespace: String,
    ttl_ms: i64,
    max_age_ms: Option<i64>,
    lookup: bool,
) -> Lookup {
    let model = key::target_model(ctx);
    let Some(Inbound::Embedding(request)) = ctx.request.parsed.as_mut() else {
        return Lookup::NotCached;
    };
    let Some(texts) = inputs(request) else {
        return Lookup::NotCached;
    };
    let now = crate::store::now_ms();
    let keys: Vec<String> = texts
        .iter()
        .map(|t| entry_key(request, &model, t))
        .collect();
    let mut known = HashMap::new();
    let mut sent = Vec::new();
    let mut new_inputs = Vec::new();
    let mut saved = 0;
    for (text, key) in texts.iter().zip(&keys) {
        if known.contains_key(key) || sent.contains(key) {
            continue;
        }
        match entries
            .get(&namespace, key, now, max_age_ms)
            .filter(|_| lookup)
        {
            Some(hit) => {
                entries.stats.hits.fetch_add(1, Ordering::Relaxed);
                saved += hit.saved_nanos;
                known.insert(key.clone(), hit.answer.clone());
            }
            None => {
                entries.stats.misses.fetch_add(1, Ordering::Relaxed);
                sent.push(key.clone());
                new_inputs.push(Value::String(text.clone()));
            }
        }
    }
    let merge = Merge {
        namespace,
        model: model.clone(),
        ttl_ms,
        keys,
        known,
        sent,
    };
    if merge.sent.is_empty() {
        let data: Vec<Value> = merge.vectors(&HashMap::new());
        return Lookup::Answered(
            json!({"object": "list", "data": data, "model": model,
            "usage": {"prompt_tokens": 0, "total_tokens": 0}}),
            saved,
        );
    }
    if !merge.known.is_empty() || new_inputs.len() < texts.len() {
        request.input = Value::Array(new_inputs);
        // The client's bytes go upstream when the parsed request looks unchanged (same model):
        // they must say what the parsed request now says.
        if let Ok(bytes) = serde_json::to_vec(&*request) {
            ctx.request.body = bytes::Bytes::from(bytes);
        }
    }
    Lookup::Partial(merge)
}

impl Merge {
    /// The answer's `data` for every input position, from the known vectors and `fresh` ones.
    fn vectors(&self, fresh: &HashMap<String, Value>) -> Vec<Value> {
        self.keys
            .iter()
            .enumerate()
            .map(|(i, key)| {
                let vector = self
                    .known
                    .get(key)
                    .or_else(|| fresh.get(key))
                    .cloned()
                    .unwrap_or(Value::Null);
                json!({"object": "embedding", "index": i, "embedding": vector})
            })
            .collect()
    }

    /// Stores the new vectors of the upstream's `answer` and returns the whole batch's answer, in
    /// the client's order; `None` if the answer does not have a vector for every input sent.
    pub fn merge(&self, entries: &EntryIndex, saved_nanos: i64, answer: &Value) -> Option<Value> {
        let data = answer["data"].as_array()?;
        let mut fresh = HashMap::new();
        for item in data {
            let index = item["index"].as_u64()? as usize;
            let key = self.sent.get(index)?;
            fresh.insert(key.clone(), item["embedding"].clone());
        }
        if fresh.len() != self.sent.len() {
            return None;
        }
        let now = crate::store::now_ms();
        let each = saved_nanos / self.sent.len().max(1) as i64;
        for (key, vector) in &fresh {
            entries.put(CacheEntry {
                kind: CacheKind::Embedding,
                namespace: self.namespace.clone(),
                key: key.clone(),
                model: self.model.clone(),
                partition: String::new(),
                created_ms: now,
                expires_ms: now.saturating_add(self.ttl_ms),
                saved_nanos: each,
                answer: vector.clone(),
                embedding: None,
            });
        }
        let mut merged = answer.clone();
        merged["data"] = Value::Array(self.vectors(&fresh));
        Some(merged)
    }
}

pub fn entries(deps: &crate::modules::ModuleDeps, max_bytes: usize) -> Arc<EmbeddingEntries> {
    deps.shared.get_or_init(|| {
        EmbeddingEntries(EntryIndex::load(
            CacheKind::Embedding,
            deps.store.cache.as_ref(),
            deps.writer.clone(),
            max_bytes,
        ))
    })
}
