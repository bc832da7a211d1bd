//! Provider credentials at rest, through the admin API of an in-process server in front of the
//! mock upstream: a stored key is what goes upstream on the next request; the database, its WAL
//! and the ledger never hold it in plaintext; several keys take turns and a 429 rests one while
//! the others serve; a key from the environment joins the pool; removal is in force at once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

use common::{ADMIN_KEY, Harness, PROVIDER_KEY, chat};
use hyper::Method;
use mock_upstream::Behavior;
use serde_json::{Value, json};

fn admin_toml() -> String {
    format!("[admin]\nkey = \"{ADMIN_KEY}\"\n")
}

async fn add(h: &Harness, name: &str, key: &str) -> Value {
    let body = json!({
        "name": name,
        "kind": "openai_compatible",
        "base_url": h.mock.base_url(),
        "key": key,
        "label": "test",
    });
    let answer = h
        .client
        .admin(Method::POST, "/admin/providers", &body.to_string())
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    answer.json()
}

/// The Authorization header of each request the mock got, oldest first.
fn sent_keys(h: &Harness) -> Vec<String> {
    h.mock
        .requests()
        .iter()
        .map(|r| r.header("authorization").unwrap_or_default().to_string())
        .collect()
}

async fn ask(h: &Harness, model: &str) -> u16 {
    let answer = h
        .client
        .post("/v1/chat/completions", &chat(model, "hi", false))
        .await;
    answer.status.as_u16()
}

/// Whether `needle` occurs in the database file, its WAL or its shared-memory file.
pub fn db_files_contain(db: &Path, needle: &str) -> Vec<String> {
    ["", "-wal", "-shm"]
        .iter()
        .filter_map(|suffix| {
            let mut name = db.as_os_str().to_owned();
            name.push(suffix);
            let bytes = std::fs::read(std::path::PathBuf::from(name)).ok()?;
            bytes
                .windows(needle.len())
                .any(|w| w == needle.as_bytes())
                .then(|| format!("stockyard.db{suffix}"))
        })
        .collect()
}

#[tokio::test]
async fn a_key_added_through_the_admin_api_is_used_at_once_never_stored_in_plaintext_and_removal_holds()
 {
    let h = Harness::start_with(&admin_toml()).await;
    let key = "sk-stored-api-7d1f0c2b9e";
    let added = add(&h, "vaulted", key).await;
    let id = added["details"]["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("cred_"), "{added}");
    assert!(!added.to_string().contains(key), "{added}");

    // In force on the next request, no restart: the stored key is what went upstream.
    assert_eq!(ask(&h, "vaulted/gpt-4o-mini").await, 200);
    assert_eq!(sent_keys(&h), [format!("Bearer {key}")]);
    let upstream = &h.mock.requests()[0];
    assert_eq!(upstream.body["model"], "gpt-4o-mini");

    // The listing names it by id and fingerprint, never the key.
    let listing = h.client.admin(Method::GET, "/admin/providers", "").await;
    assert_eq!(listing.status, 200);
    let text = listing.text();
    assert!(!text.contains(key), "{text}");
    let vaulted = listing.json()["providers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "vaulted")
        .cloned()
        .unwrap();
    assert_eq!(vaulted["credentials"][0]["id"], id.as_str());
    assert_eq!(
        vaulted["credentials"][0]["fingerprint"],
        added["details"]["fingerprint"]
    );

    // Neither the database, its WAL nor the ledger hold the key.
    h.server.app.writer.flush().await.unwrap();
    let db = h.dir.path().join("stockyard.db");
    assert!(db_files_contain(&db, "sk-stored").is_empty());
    assert!(
        !db_files_contain(&db, "vaulted").is_empty(),
        "the test sees the new rows"
    );
    let ledger = h.store().ledger.ledger().unwrap();
    let entry = ledger
        .iter()
        .find(|e| e.action == "provider.credential.add")
        .unwrap();
    assert!(!serde_json::to_string(&ledger).unwrap().contains(key));
    assert_eq!(entry.target, "vaulted");
    assert_eq!(entry.details["id"], id.as_str());

    // Removal is in force on the next request: the provider it defined is gone.
    let removed = h
        .client
        .admin(Method::DELETE, &format!("/admin/providers/{id}"), "")
        .await;
    assert_eq!(removed.status, 200, "{}", removed.text());
    let answer = h
        .client
        .post(
            "/v1/chat/completions",
            &chat("vaulted/gpt-4o-mini", "hi", false),
        )
        .await;
    assert_eq!(answer.status, 404, "{}", answer.text());
    assert_eq!(h.mock.request_count(), 1, "nothing more went upstream");
    let again = h
        .client
        .admin(Method::DELETE, &format!("/admin/providers/{id}"), "")
        .await;
    assert_eq!(again.status, 404);
}

#[tokio::test]
async fn keys_take_turns_and_a_key_that_got_a_429_rests_while_the_other_serves() {
    let h = Harness::start_with(&admin_toml()).await;
    let (a, b) = ("sk-pool-key-a-1111", "sk-pool-key-b-2222");
    add(&h, "pooled", a).await;
    add(&h, "pooled", b).await;
    for _ in 0..4 {
        assert_eq!(ask(&h, "pooled/gpt-4o-mini").await, 200);
    }
    let turns = sent_keys(&h);
    assert_ne!(turns[0], turns[1], "{turns:?}");
    assert_eq!((&turns[0], &turns[1]), (&turns[2], &turns[3]), "{turns:?}");

    // The next key in turn gets a 429 with a long retry-after: the client still gets its answer,
    // from the other key at once, and the limited key sits out the following requests.
    h.mock.push(Behavior {
        status: Some(429),
        retry_after_s: Some(60),
        ..Behavior::default()
    });
    assert_eq!(ask(&h, "pooled/gpt-4o-mini").await, 200);
    let sent = sent_keys(&h);
    let (limited, other) = (sent[4].clone(), sent[5].clone());
    assert_ne!(limited, other);
    assert_eq!(sent.len(), 6);
    for _ in 0..3 {
        assert_eq!(ask(&h, "pooled/gpt-4o-mini").await, 200);
    }
    let after: Vec<String> = sent_keys(&h)[6..].to_vec();
    assert!(after.iter().all(|k| *k == other), "{after:?}");
    assert!([format!("Bearer {a}"), format!("Bearer {b}")].contains(&limited));

    // Every key resting: the 429 reaches the client (and routing), nothing is retried forever.
    h.mock.push(Behavior {
        status: Some(429),
        retry_after_s: Some(60),
        ..Behavior::default()
    });
    let before = h.mock.request_count();
    assert_eq!(ask(&h, "pooled/gpt-4o-mini").await, 429);
    assert_eq!(h.mock.request_count(), before + 1);
}

#[tokio::test]
async fn a_key_from_the_environment_joins_the_pool_of_its_provider_and_stays_in_memory() {
    let h = Harness::start_with(&admin_toml()).await;
    // `openai` is configured from OPENAI_API_KEY; a stored key for it joins its pool.
    let body = json!({"name": "openai", "kind": "openai", "key": "sk-stored-for-openai-42"});
    let answer = h
        .client
        .admin(Method::POST, "/admin/providers", &body.to_string())
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    for _ in 0..2 {
        assert_eq!(ask(&h, "gpt-4o-mini").await, 200);
    }
    let mut sent = sent_keys(&h);
    sent.sort();
    assert_eq!(
        sent,
        [
            format!("Bearer {PROVIDER_KEY}"),
            "Bearer sk-stored-for-openai-42".to_string()
        ]
    );
    h.server.app.writer.flush().await.unwrap();
    let db = h.dir.path().join("stockyard.db");
    assert!(db_files_contain(&db, PROVIDER_KEY).is_empty());
    assert!(db_files_contain(&db, "sk-stored-for-openai").is_empty());

    // A configured provider takes keys of its own kind, at its own URL; removing by its name
    // drops the stored keys and keeps the environment's.
    let wrong = json!({"name": "openai", "kind": "anthropic", "key": "k"});
    let answer = h
        .client
        .admin(Method::POST, "/admin/providers", &wrong.to_string())
        .await;
    assert_eq!(answer.status, 400, "{}", answer.text());
    assert!(answer.text().contains("configured with kind openai"));
    let answer = h
        .client
        .admin(Method::DELETE, "/admin/providers/openai", "")
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(ask(&h, "gpt-4o-mini").await, 200);
    let last = sent_keys(&h).pop().unwrap();
    assert_eq!(last, format!("Bearer {PROVIDER_KEY}"));
    let answer = h
        .client
        .admin(Method::DELETE, "/admin/providers/openai", "")
        .await;
    assert_eq!(answer.status, 404);
    assert!(answer.text().contains("from the config or the environment"));
}

#[tokio::test]
async fn bad_additions_are_refused_and_change_nothing() {
    let h = Harness::start_with(&admin_toml()).await;
    for (body, says) in [
        (
            json!({"name": "x", "kind": "bedrock", "key": "k"}),
            "expected openai",
        ),
        (
            json!({"name": "bad name", "kind": "openai", "key": "k"}),
            "letters, digits",
        ),
        (
            json!({"name": "x", "kind": "openai_compatible", "key": "k"}),
            "base_url",
        ),
        (json!({"name": "x", "kind": "openai", "key": "  "}), "empty"),
    ] {
        let answer = h
            .client
            .admin(Method::POST, "/admin/providers", &body.to_string())
            .await;
        assert_eq!(answer.status, 400, "{body}: {}", answer.text());
        assert!(answer.text().contains(says), "{says}: {}", answer.text());
    }
    add(&h, "one", "sk-one").await;
    let other_url = json!({
        "name": "one", "kind": "openai_compatible", "base_url": "http://127.0.0.1:9/v1", "key": "k2"
    });
    let answer = h
        .client
        .admin(Method::POST, "/admin/providers", &other_url.to_string())
        .await;
    assert_eq!(answer.status, 400, "{}", answer.text());
    let ledger = h.store().ledger.ledger().unwrap();
    assert_eq!(ledger.len(), 1, "only the good addition is in the ledger");
}
