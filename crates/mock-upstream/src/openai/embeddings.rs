//! `POST /v1/embeddings`: eight numbers per input, derived from the input's bytes (FNV-1a, then
//! splitmix64) and scaled to unit length, so the same text always gets the same vector and
//! different texts almost surely differ. `encoding_format: "base64"` sends the little-endian
//! `f32` bytes in base64, as OpenAI does.
//!
//! A model whose name contains `bag-of-words` gets [`BAG_DIMENSIONS`] numbers instead: each word
//! (lower-cased, letters and digits) adds ±1 to a bucket chosen by its hash, then the vector is
//! scaled to unit length. Texts sharing most words are close (cosine = the share of words in
//! common, roughly), so semantic-cache tests get real hits and near-misses.

use std::borrow::Cow;

use bytes::Bytes;
use serde::Serialize;
use serde_json::Value;

use super::{Reply, error, model, to_json, words};

pub(crate) const DIMENSIONS: usize = 8;
pub const BAG_DIMENSIONS: usize = 256;

#[derive(Serialize)]
struct List<'a> {
    object: &'static str,
    data: Vec<Embedding>,
    model: &'a str,
    usage: Usage,
}

#[derive(Serialize)]
struct Embedding {
    object: &'static str,
    index: usize,
    embedding: Vector,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Vector {
    Floats([f32; DIMENSIONS]),
    Bag(Vec<f32>),
    Base64(String),
}

#[derive(Serialize)]
struct Usage {
    prompt_tokens: u64,
    total_tokens: u64,
}

/// One input: the bytes its vector derives from, and its token count.
struct Input<'a> {
    seed: Cow<'a, [u8]>,
    tokens: u64,
}

pub(crate) fn reply(req: &Value) -> Reply {
    let Some(inputs) = req.get("input").and_then(inputs) else {
        return error::bad_request(
            "\"input\" must be a string, an array of strings, or an array of token arrays",
            "invalid_input",
        );
    };
    let base64 = req.get("encoding_format").and_then(Value::as_str) == Some("base64");
    let bag = model(req).contains("bag-of-words");
    let tokens = inputs.iter().map(|i| i.tokens).sum();
    let data = inputs
        .iter()
        .enumerate()
        .map(|(index, input)| {
            let floats = vector(&input.seed);
            let embedding = if bag {
                Vector::Bag(bag_of_words(&String::from_utf8_lossy(&input.seed)))
            } else if base64 {
                let bytes: Vec<u8> = floats.iter().flat_map(|f| f.to_le_bytes()).collect();
                Vector::Base64(crate::base64::encode(&bytes))
            } else {
                Vector::Floats(floats)
            };
            Embedding {
                object: "embedding",
                index,
                embedding,
            }
        })
        .collect();
    Reply::Json(Bytes::from(to_json(&List {
        object: "list",
        data,
        model: model(req),
        usage: Usage {
            prompt_tokens: tokens,
            total_tokens: tokens,
        },
    })))
}

fn inputs(input: &Value) -> Option<Vec<Input<'_>>> {
    match input {
        Value::String(s) => Some(vec![text(s)]),
        // All numbers: one token array. OpenAI takes this form too.
        Value::Array(items) if !items.is_empty() && items.iter().all(Value::is_number) => {
            Some(vec![tokens(items)])
        }
        Value::Array(items) if !items.is_empty() => items
            .iter()
            .map(|item| match item {
                Value::String(s) => Some(text(s)),
                Value::Array(ts) if ts.iter().all(Value::is_number) => Some(tokens(ts)),
                _ => None,
            })
            .collect(),
        _ => None,
    }
}

fn text(s: &str) -> Input<'_> {
    Input {
        seed: Cow::Borrowed(s.as_bytes()),
        tokens: words(s),
    }
}

fn tokens(ts: &[Value]) -> Input<'static> {
    let seed = ts
        .iter()
        .flat_map(|t| t.as_i64().unwrap_or(0).to_le_bytes())
        .collect();
    Input {
        seed: Cow::Owned(seed),
        tokens: ts.len() as u64,
    }
}

/// The deterministic vector for `seed`, scaled to unit length.
pub(crate) fn vector(seed: &[u8]) -> [f32; DIMENSIONS] {
    // FNV-1a: tiny, stable across platforms and releases (unlike `DefaultHasher`).
    let mut state = seed.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, &byte| {
        (h ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    });
    let mut v = [0f32; DIMENSIONS];
    for x in &mut v {
        state = splitmix64(state);
        // 24 random bits fit an f32 mantissa exactly; map them to [-1, 1).
        *x = (state >> 40) as f32 / (1u64 << 23) as f32 - 1.0;
    }
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        for x in &mut v {
            *x /= norm;
        }
    }
    v
}

/// The bag-of-words vector of `text` (see the module doc), unit length.
pub fn bag_of_words(text: &str) -> Vec<f32> {
    let mut v = vec![0f32; BAG_DIMENSIONS];
    for word in text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        let hash = word
            .to_lowercase()
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
            });
        let hash = splitmix64(hash);
        let sign = if hash >> 63 == 0 { 1.0 } else { -1.0 };
        v[(hash % BAG_DIMENSIONS as u64) as usize] += sign;
    }
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        for x in &mut v {
            *x /= norm;
        }
    }
    v
}

fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
