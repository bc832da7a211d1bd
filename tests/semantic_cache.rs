//! The semantic cache over real sockets, with the mock's deterministic bag-of-words embeddings
//! (`text-embedding-bag-of-words`): a rephrasing that shares every word is a hit with its
//! similarity in the header; one that changes a word is a near-miss; another system prompt or
//! another key is never compared; an embedding failure skips the lookup without failing the
//! request; entries survive a restart.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::grants::{GRANTS, grant};
use common::{Answer, Harness};
use hyper::Method;
use mock_upstream::Behavior;
use serde_json::json;

const CONFIG: &str = "[modules.semantic_cache]\nenabled = true\n\
    embedding_model = \"text-embedding-bag-of-words\"\nthreshold = 0.95\n";

fn ask(text: &str, system: Option<&str>) -> String {
    let mut messages = Vec::new();
    if let Some(system) = system {
        messages.push(json!({"role": "system", "content": system}));
    }
    messages.push(json!({"role": "user", "content": text}));
    json!({"model": "gpt-4o-mini", "messages": messages}).to_string()
}

async fn chat(h: &Harness, body: &str, headers: &[(&str, &str)]) -> Answer {
    h.client
        .call(Method::POST, "/v1/chat/completions", body, headers)
        .await
}

fn outcome(a: &Answer) -> &str {
    a.header("x-stockyard-cache").unwrap_or("none")
}

/// Chat requests the mock received (embedding calls excluded).
fn chats(h: &Harness) -> usize {
    h.mock
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/chat/completions"))
        .count()
}

#[tokio::test]
async fn a_close_rephrasing_is_a_hit_and_a_changed_word_a_near_miss() {
    let h = Harness::start_with(CONFIG).await;
    let first = chat(&h, &ask("What is the capital of France?", None), &[]).await;
    assert_eq!(first.status, 200, "{}", first.text());
    assert_eq!(outcome(&first), "miss");
    // Same words, other case and punctuation: the same bag of words.
    let hit = chat(&h, &ask("what is the capital of france", None), &[]).await;
    assert_eq!(outcome(&hit), "semantic-hit");
    let similarity: f32 = hit
        .header("x-stockyard-cache-similarity")
        .unwrap()
        .parse()
        .unwrap();
    assert!(similarity >= 0.95, "{similarity}");
    assert_eq!(
        hit.json()["choices"][0]["message"],
        first.json()["choices"][0]["message"]
    );
    // One word in six differs: similar, but under the threshold.
    let near = chat(&h, &ask("What is the capital of Germany?", None), &[]).await;
    assert_eq!(outcome(&near), "miss");
    assert_eq!(near.header("x-stockyard-cache-similarity"), None);
    // Another system prompt is never compared.
    let other_system = chat(
        &h,
        &ask("What is the capital of France?", Some("Answer in French.")),
        &[],
    )
    .await;
    assert_eq!(outcome(&other_system), "miss");
    assert_eq!(chats(&h), 3);

    let traces = h.traces(8).await;
    let hit_trace = traces
        .iter()
        .find(|t| t.cache.as_deref() == Some("semantic-hit"))
        .expect("a semantic-hit trace");
    assert_eq!(hit_trace.answered_by.as_deref(), Some("semantic_cache"));
    assert!(
        traces
            .iter()
            .any(|t| t.internal_caller.as_deref() == Some("semantic_cache")),
        "embedding calls are traced as internal"
    );
}

#[tokio::test]
async fn keys_do_not_share_semantic_entries() {
    let h = Harness::start_with_modules(CONFIG, &[&GRANTS]).await;
    let alice = grant("alice", json!({}), None);
    let bob = grant("bob", json!({}), None);
    let q = ask("how tall is mount everest", None);
    assert_eq!(
        outcome(&chat(&h, &q, &[("x-test-grant", alice.as_str())]).await),
        "miss"
    );
    assert_eq!(
        outcome(&chat(&h, &q, &[("x-test-grant", alice.as_str())]).await),
        "semantic-hit"
    );
    assert_eq!(
        outcome(&chat(&h, &q, &[("x-test-grant", bob.as_str())]).await),
        "miss"
    );
}

#[tokio::test]
async fn an_embedding_failure_skips_the_lookup_and_the_request_still_succeeds() {
    let h = Harness::start_with(CONFIG).await;
    // The embedding call gets the 400 (not retried); the chat call after it succeeds.
    h.mock.push(Behavior {
        status: Some(400),
        ..Behavior::default()
    });
    let answer = chat(&h, &ask("will this still work", None), &[]).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let traces = h.traces(2).await;
    let client = traces.iter().find(|t| t.internal_caller.is_none()).unwrap();
    assert_eq!(client.cache.as_deref(), Some("semantic-error"));
    // Nothing was stored for it (no vector), so the same question is a miss again.
    let again = chat(&h, &ask("will this still work", None), &[]).await;
    assert_eq!(outcome(&again), "miss");
}

#[tokio::test]
async fn semantic_entries_survive_a_restart() {
    let h = Harness::start_with(CONFIG).await;
    assert_eq!(
        outcome(&chat(&h, &ask("name a blue fruit", None), &[]).await),
        "miss"
    );
    let h = h.restart(CONFIG).await;
    let after = chat(&h, &ask("Name a blue fruit!", None), &[]).await;
    assert_eq!(outcome(&after), "semantic-hit");
    assert_eq!(chats(&h), 1);
}
