//! The embeddings cache (part of the `cache` module): answers cached per input string and model;
//! a batch that repeats inputs sends only the new ones upstream and gets every vector back in
//! its own order.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Answer, Harness};
use serde_json::{Value, json};

const ON: &str = "[modules.cache]\nenabled = true\n";

async fn embed(h: &Harness, input: Value) -> Answer {
    let body = json!({"model": "text-embedding-3-small", "input": input}).to_string();
    let answer = h.client.post("/v1/embeddings", &body).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    answer
}

fn vectors(a: &Answer) -> Vec<Value> {
    let data = a.json()["data"].as_array().unwrap().clone();
    for (i, item) in data.iter().enumerate() {
        assert_eq!(item["index"], i);
    }
    data.into_iter().map(|d| d["embedding"].clone()).collect()
}

/// The inputs the mock was asked to embed, per request.
fn upstream_inputs(h: &Harness) -> Vec<Value> {
    h.mock
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/embeddings"))
        .map(|r| r.body["input"].clone())
        .collect()
}

#[tokio::test]
async fn repeated_inputs_are_answered_from_the_cache_and_merged_in_order() {
    let h = Harness::start_with(ON).await;
    let first = embed(&h, json!(["alpha", "beta"])).await;
    assert_eq!(first.header("x-stockyard-cache"), Some("miss"));
    let [alpha, beta] = <[Value; 2]>::try_from(vectors(&first)).unwrap();

    // Known, new, known again, new repeated: only "gamma" goes upstream, once.
    let mixed = embed(&h, json!(["beta", "gamma", "alpha", "gamma"])).await;
    let got = vectors(&mixed);
    assert_eq!(got[0], beta);
    assert_eq!(got[2], alpha);
    assert_eq!(got[1], got[3]);
    assert_ne!(got[1], alpha);
    assert_eq!(
        upstream_inputs(&h),
        vec![json!(["alpha", "beta"]), json!(["gamma"])]
    );

    // Every input known: no upstream call at all.
    let all = embed(&h, json!(["gamma", "alpha"])).await;
    assert_eq!(all.header("x-stockyard-cache"), Some("hit"));
    assert_eq!(vectors(&all), vec![got[1].clone(), alpha.clone()]);
    let single = embed(&h, json!("beta")).await;
    assert_eq!(vectors(&single), vec![beta]);
    assert_eq!(upstream_inputs(&h).len(), 2);

    // Another model is another entry.
    let body = json!({"model": "text-embedding-3-large", "input": "alpha"}).to_string();
    let other = h.client.post("/v1/embeddings", &body).await;
    assert_eq!(other.header("x-stockyard-cache"), Some("miss"));
    assert_eq!(upstream_inputs(&h).len(), 3);
}

#[tokio::test]
async fn cached_embeddings_survive_a_restart() {
    let h = Harness::start_with(ON).await;
    let first = vectors(&embed(&h, json!(["kept"])).await);
    let h = h.restart(ON).await;
    let again = embed(&h, json!(["kept"])).await;
    assert_eq!(again.header("x-stockyard-cache"), Some("hit"));
    assert_eq!(vectors(&again), first);
    assert!(upstream_inputs(&h).len() == 1);
}
