//! Virtual keys, teams and admin keys over real sockets, through the admin API: keys allowed and
//! refused (missing, unknown, revoked, expired, a model outside the key's or its team's list),
//! in the OpenAI and the Anthropic error shapes; revocation seen on the next request; rotation;
//! team changes reaching their keys at once; read-only admin keys; actors in the ledger; and no
//! key in the database files or the ledger.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{ADMIN_KEY, Answer, Harness, chat};
use hyper::Method;
use serde_json::{Value, json};

fn admin_toml() -> String {
    format!("[admin]\nkey = \"{ADMIN_KEY}\"\n")
}

/// Creates a virtual key through the admin API; returns the answer (with `key` and `id`).
async fn create_key(h: &Harness, body: Value) -> Value {
    let answer = h
        .client
        .admin(Method::POST, "/admin/keys", &body.to_string())
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    answer.json()
}

async fn chat_with(h: &Harness, key: Option<&str>, model: &str) -> Answer {
    let auth = key.map(|k| format!("Bearer {k}"));
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("authorization", a.as_str())).collect();
    h.client
        .call(
            Method::POST,
            "/v1/chat/completions",
            &chat(model, "hi", false),
            &headers,
        )
        .await
}

fn code(answer: &Answer) -> String {
    answer.json()["error"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn virtual_keys_are_allowed_and_refused_saying_why() {
    let h = Harness::start_with(&admin_toml()).await;
    // Local mode until the first key exists.
    assert_eq!(chat_with(&h, None, "gpt-4o-mini").await.status, 200);

    let created = create_key(
        &h,
        json!({"name": "ci", "limits": {"models": ["gpt-4o*"]}, "metadata": {"owner": "ana"}}),
    )
    .await;
    let key = created["key"].as_str().unwrap();
    let id = created["id"].as_str().unwrap();
    assert!(
        key.starts_with("sk-sy-") && id.starts_with("vk_"),
        "{created}"
    );
    assert!(key.starts_with(created["prefix"].as_str().unwrap()));

    let ok = chat_with(&h, Some(key), "gpt-4o-mini").await;
    assert_eq!(ok.status, 200, "{}", ok.text());
    let traces = h.traces(2).await;
    assert_eq!(
        traces[1].key_id.as_deref(),
        Some(id),
        "the trace names the key's id"
    );

    let missing = chat_with(&h, None, "gpt-4o-mini").await;
    assert_eq!(
        (missing.status.as_u16(), code(&missing)),
        (401, "missing_api_key".into())
    );
    let unknown = chat_with(&h, Some("sk-sy-notakey0123456789"), "gpt-4o-mini").await;
    assert_eq!(
        (unknown.status.as_u16(), code(&unknown)),
        (401, "invalid_api_key".into())
    );

    let refused = chat_with(&h, Some(key), "gpt-3.5-turbo").await;
    assert_eq!(
        (refused.status.as_u16(), code(&refused)),
        (403, "model_not_allowed".into())
    );
    let error = &refused.json()["error"];
    assert_eq!(error["param"], "model");
    assert!(
        error["message"].as_str().unwrap().contains("gpt-3.5-turbo"),
        "{error}"
    );

    let past = common_now_ms() - 1;
    let expired = create_key(&h, json!({"name": "old", "expires_ms": past})).await;
    let answer = chat_with(&h, expired["key"].as_str(), "gpt-4o-mini").await;
    assert_eq!(
        (answer.status.as_u16(), code(&answer)),
        (401, "expired_api_key".into())
    );

    // Revoked: refused from the very next request on.
    let revoked = h
        .client
        .admin(Method::POST, &format!("/admin/keys/{id}/revoke"), "")
        .await;
    assert_eq!(revoked.status, 200, "{}", revoked.text());
    let answer = chat_with(&h, Some(key), "gpt-4o-mini").await;
    assert_eq!(
        (answer.status.as_u16(), code(&answer)),
        (401, "revoked_api_key".into())
    );

    // Keys require authentication: the auth module cannot be turned off now.
    let off = h
        .client
        .admin(Method::PUT, "/admin/modules/auth", r#"{"enabled": false}"#)
        .await;
    assert_eq!(off.status, 400, "{}", off.text());
    assert!(off.text().contains("virtual keys exist"), "{}", off.text());

    // After a restart: the same keys, the same answers.
    let h = h.restart(&admin_toml()).await;
    let answer = chat_with(&h, Some(key), "gpt-4o-mini").await;
    assert_eq!(code(&answer), "revoked_api_key");
    assert_eq!(
        code(&chat_with(&h, None, "gpt-4o-mini").await),
        "missing_api_key"
    );
}

fn common_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[tokio::test]
async fn anthropic_clients_get_refusals_in_their_own_shape() {
    let h = Harness::start_with(&admin_toml()).await;
    let created = create_key(
        &h,
        json!({"name": "claude-sdk", "limits": {"models": ["gpt-4o-mini"]}}),
    )
    .await;
    let key = created["key"].as_str().unwrap();
    let messages = |model: &str| {
        json!({"model": model, "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]})
            .to_string()
    };
    let call = |key: Option<&str>, model: &str| {
        let body = messages(model);
        let key = key.map(String::from);
        let h = &h;
        async move {
            let headers: Vec<(&str, &str)> =
                key.iter().map(|k| ("x-api-key", k.as_str())).collect();
            h.client
                .call(Method::POST, "/v1/messages", &body, &headers)
                .await
        }
    };
    let ok = call(Some(key), "gpt-4o-mini").await;
    assert_eq!(ok.status, 200, "{}", ok.text());
    assert_eq!(ok.json()["type"], "message");

    let missing = call(None, "gpt-4o-mini").await;
    assert_eq!(missing.status, 401);
    assert_eq!(missing.json()["type"], "error");
    assert_eq!(missing.json()["error"]["type"], "authentication_error");

    let refused = call(Some(key), "gpt-4o").await;
    assert_eq!(refused.status, 403, "{}", refused.text());
    assert_eq!(refused.json()["error"]["type"], "permission_error");
    assert!(
        refused.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("gpt-4o")
    );

    let id = created["id"].as_str().unwrap();
    let gone = h
        .client
        .admin(Method::DELETE, &format!("/admin/keys/{id}"), "")
        .await;
    assert_eq!(gone.status, 200, "{}", gone.text());
    let revoked = call(Some(key), "gpt-4o-mini").await;
    assert_eq!(revoked.status, 401);
    assert_eq!(revoked.json()["error"]["type"], "authentication_error");
    assert!(
        revoked.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("revoked")
    );
}

#[tokio::test]
async fn rotation_issues_a_new_key_with_the_same_limits_and_revokes_the_old() {
    let h = Harness::start_with(&admin_toml()).await;
    let created = create_key(
        &h,
        json!({"name": "svc", "limits": {"models": ["gpt-4o-mini"], "rpm": 100}}),
    )
    .await;
    let (old_key, old_id) = (
        created["key"].as_str().unwrap(),
        created["id"].as_str().unwrap(),
    );
    let rotated = h
        .client
        .admin(Method::POST, &format!("/admin/keys/{old_id}/rotate"), "")
        .await;
    assert_eq!(rotated.status, 200, "{}", rotated.text());
    let rotated = rotated.json();
    let new_key = rotated["key"].as_str().unwrap();
    assert_ne!(new_key, old_key);
    assert_eq!(rotated["rotated_from"], old_id);
    assert_eq!(rotated["limits"]["rpm"], 100);

    assert_eq!(
        chat_with(&h, Some(new_key), "gpt-4o-mini").await.status,
        200
    );
    assert_eq!(
        code(&chat_with(&h, Some(new_key), "gpt-4o").await),
        "model_not_allowed"
    );
    assert_eq!(
        code(&chat_with(&h, Some(old_key), "gpt-4o-mini").await),
        "revoked_api_key"
    );

    let listed = h.client.admin(Method::GET, "/admin/keys", "").await.json();
    let statuses: Vec<(&str, &str)> = listed["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| (k["id"].as_str().unwrap(), k["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        statuses,
        [
            (old_id, "revoked"),
            (rotated["id"].as_str().unwrap(), "active")
        ]
    );
}

#[tokio::test]
async fn team_models_apply_on_top_of_the_keys_and_a_team_change_applies_at_once() {
    let h = Harness::start_with(&admin_toml()).await;
    let team = h
        .client
        .admin(
            Method::POST,
            "/admin/teams",
            &json!({"name": "ml", "limits": {"models": ["gpt-4o-mini", "o1*"]}}).to_string(),
        )
        .await;
    assert_eq!(team.status, 200, "{}", team.text());
    let created = create_key(
        &h,
        json!({"name": "ana", "team": "ml", "limits": {"models": ["gpt-*"]}}),
    )
    .await;
    let key = created["key"].as_str().unwrap();

    assert_eq!(chat_with(&h, Some(key), "gpt-4o-mini").await.status, 200);
    // The key allows gpt-4o, its team does not; the team allows o1, the key does not.
    assert_eq!(
        code(&chat_with(&h, Some(key), "gpt-4o").await),
        "model_not_allowed"
    );
    assert_eq!(
        code(&chat_with(&h, Some(key), "o1-mini").await),
        "model_not_allowed"
    );

    // /v1/models lists what this key may use.
    let auth = format!("Bearer {key}");
    let models = h
        .client
        .call(Method::GET, "/v1/models", "", &[("authorization", &auth)])
        .await
        .json();
    let ids: Vec<&str> = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&"gpt-4o-mini"), "{ids:?}");
    assert!(ids.iter().all(|id| *id == "gpt-4o-mini"), "{ids:?}");

    // The team's list cleared: the key's own list is all that is left, at the next request.
    let cleared = h
        .client
        .admin(Method::PATCH, "/admin/teams/ml", r#"{"models": null}"#)
        .await;
    assert_eq!(cleared.status, 200, "{}", cleared.text());
    assert_eq!(chat_with(&h, Some(key), "gpt-4o").await.status, 200);

    // A team with a live key cannot be deleted.
    let delete = h.client.admin(Method::DELETE, "/admin/teams/ml", "").await;
    assert_eq!(delete.status, 400, "{}", delete.text());
    let shown = h
        .client
        .admin(Method::GET, "/admin/teams/ml", "")
        .await
        .json();
    assert_eq!(shown["keys"], json!([created["id"]]));
}

#[tokio::test]
async fn admin_keys_have_roles_and_every_change_names_its_actor() {
    let h = Harness::start_with(&admin_toml()).await;
    let mut keys = Vec::new();
    for (name, role) in [("auditor", "read-only"), ("ops", "admin")] {
        let answer = h
            .client
            .admin(
                Method::POST,
                "/admin/admin-keys",
                &json!({"name": name, "role": role}).to_string(),
            )
            .await;
        assert_eq!(answer.status, 200, "{}", answer.text());
        let key = answer.json()["key"].as_str().unwrap().to_string();
        assert!(key.starts_with("sk-sy-admin-"));
        keys.push(format!("Bearer {key}"));
    }
    let (read_only, ops) = (&keys[0], &keys[1]);
    let as_key = |auth: &str, method: Method, path: &str, body: &str| {
        let auth = auth.to_string();
        let (path, body) = (path.to_string(), body.to_string());
        let h = &h;
        async move {
            h.client
                .call(method, &path, &body, &[("authorization", &auth)])
                .await
        }
    };

    assert_eq!(
        as_key(read_only, Method::GET, "/admin/keys", "")
            .await
            .status,
        200
    );
    let refused = as_key(read_only, Method::POST, "/admin/keys", r#"{"name": "x"}"#).await;
    assert_eq!(refused.status, 403, "{}", refused.text());
    assert_eq!(code(&refused), "read_only_admin_key");

    let made = as_key(ops, Method::POST, "/admin/keys", r#"{"name": "from-ops"}"#).await;
    assert_eq!(made.status, 200, "{}", made.text());
    let revoked = as_key(ops, Method::DELETE, "/admin/admin-keys/auditor", "").await;
    assert_eq!(revoked.status, 200, "{}", revoked.text());
    assert_eq!(
        as_key(read_only, Method::GET, "/admin/keys", "")
            .await
            .status,
        401
    );

    let audit = h.client.admin(Method::GET, "/admin/audit", "").await.json();
    assert_eq!(audit["verify"]["ok"], true, "{}", audit["verify"]);
    let actors: Vec<(&str, &str)> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["actor"].as_str().unwrap(), e["action"].as_str().unwrap()))
        .collect();
    assert_eq!(
        actors,
        [
            ("admin", "admin_key.create"),
            ("admin", "admin_key.create"),
            ("admin-key:ops", "key.create"),
            ("admin-key:ops", "admin_key.revoke"),
        ]
    );
}

#[tokio::test]
async fn no_key_is_in_the_database_files_the_listings_or_the_ledger() {
    let h = Harness::start_with(&admin_toml()).await;
    let created = create_key(&h, json!({"name": "secret-holder"})).await;
    let key = created["key"].as_str().unwrap().to_string();
    let id = created["id"].as_str().unwrap();
    let admin = h
        .client
        .admin(
            Method::POST,
            "/admin/admin-keys",
            r#"{"name": "ops", "role": "admin"}"#,
        )
        .await
        .json();
    let admin_key = admin["key"].as_str().unwrap().to_string();
    h.server.app.writer.flush().await.unwrap();

    // The hash the store keeps, computed as the proxy does, under the key file beside the db.
    let db = h.dir.path().join("stockyard.db");
    let ledger_key = stockyard::ledger::LedgerKey::find(&db, None)
        .unwrap()
        .unwrap();
    let hasher = stockyard::modules::auth::hasher::KeyHasher::new(ledger_key);
    let hash = hasher.virtual_key(&key);

    let mut files = Vec::new();
    for suffix in ["", "-wal", "-shm"] {
        let mut name = db.as_os_str().to_owned();
        name.push(suffix);
        if let Ok(bytes) = std::fs::read(&name) {
            files.push(bytes);
        }
    }
    let contains =
        |hay: &[u8], needle: &str| hay.windows(needle.len()).any(|w| w == needle.as_bytes());
    assert!(
        files.iter().any(|f| contains(f, &hash)),
        "the stored hash is not where we look"
    );
    for f in &files {
        assert!(
            !contains(f, &key) && !contains(f, &admin_key),
            "a key is stored in plain text"
        );
    }

    for path in [
        "/admin/keys".to_string(),
        format!("/admin/keys/{id}"),
        "/admin/audit".into(),
        "/admin/admin-keys".into(),
    ] {
        let text = h.client.admin(Method::GET, &path, "").await.text();
        assert!(
            !text.contains(&key) && !text.contains(&admin_key),
            "{path}: {text}"
        );
        assert!(!text.contains(&hash), "{path} shows the hash");
        if path != "/admin/audit" {
            assert!(!text.contains("\"hash\""), "{path}: {text}");
        }
    }
    let audit = h.client.admin(Method::GET, "/admin/audit", "").await.json();
    for entry in audit["entries"].as_array().unwrap() {
        assert!(entry["details"].get("hash").is_none(), "{entry}");
    }
}

/// The admin API refuses what would silently weaken or bloat a key, naming the field: a
/// misspelt limit (which would leave the key unlimited), a wrong type, a name with control or
/// direction characters, metadata past its bounds (copied into every trace row). A bearer token
/// is read whatever the scheme's case, for admin and client keys alike.
#[tokio::test]
async fn key_changes_that_would_silently_weaken_or_bloat_a_key_are_refused() {
    let h = Harness::start_with(&admin_toml()).await;
    let refused = |body: Value| {
        let h = &h;
        async move {
            let answer = h
                .client
                .admin(Method::POST, "/admin/keys", &body.to_string())
                .await;
            assert_eq!(answer.status, 400, "{body}: {}", answer.text());
            answer.json()["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        }
    };
    let said =
        refused(json!({"name": "k", "limits": {"model": ["gpt-4o*"], "rpm_limit": 1}})).await;
    assert!(
        said.contains("limits") && said.contains("unknown field"),
        "{said}"
    );
    let said = refused(json!({"name": "k", "limits": {"budget": {"limit_nanos": 5, "period": "day", "budget_usd": 1}}})).await;
    assert!(
        said.contains("limits.budget") && said.contains("budget_usd"),
        "{said}"
    );
    let said = refused(json!({"name": "k", "limits": {"rpm": "ten"}})).await;
    assert!(said.contains("limits.rpm"), "{said}");
    for name in ["line\nbreak", "nul\u{0}", "rtl\u{202E}txt", ""] {
        let said = refused(json!({ "name": name })).await;
        assert!(said.contains("key name"), "{name:?}: {said}");
    }
    let said = refused(json!({"name": "k", "metadata": {"owner\u{200F}": "x"}})).await;
    assert!(said.contains("metadata"), "{said}");
    let said = refused(json!({"name": "k", "metadata": {"a": "x".repeat(9000)}})).await;
    assert!(said.contains("metadata"), "{said}");
    let many: serde_json::Map<String, Value> =
        (0..100).map(|i| (format!("k{i}"), json!("v"))).collect();
    let said = refused(json!({"name": "k", "metadata": many})).await;
    assert!(said.contains("metadata"), "{said}");
    let listed = h.client.admin(Method::GET, "/admin/keys", "").await.json();
    assert_eq!(listed["keys"].as_array().map(Vec::len), Some(0), "{listed}");

    // A value may run over lines.
    create_key(
        &h,
        json!({"name": "described", "metadata": {"about": "line one\nline two\tend"}}),
    )
    .await;
    let created = create_key(&h, json!({"name": "ci"})).await;
    let key = created["key"].as_str().unwrap();
    for scheme in ["bearer", "BEARER", "Bearer "] {
        let auth = format!("{scheme} {key}");
        let answer = h
            .client
            .call(
                Method::POST,
                "/v1/chat/completions",
                &chat("gpt-4o-mini", "hi", false),
                &[("authorization", &auth)],
            )
            .await;
        assert_eq!(answer.status, 200, "{scheme:?}: {}", answer.text());
        let auth = format!("{scheme} {}", common::ADMIN_KEY);
        let answer = h
            .client
            .call(Method::GET, "/admin/keys", "", &[("authorization", &auth)])
            .await;
        assert_eq!(answer.status, 200, "{scheme:?}: {}", answer.text());
    }
}

/// A rotation replaces the secret, not the allowance: the new key counts against the same
/// requests-per-minute as the one it replaced, twice over (a chain of rotations).
#[tokio::test]
async fn a_rotated_key_keeps_counting_against_its_predecessors_limits() {
    let h = Harness::start_with(&admin_toml()).await;
    let created = create_key(&h, json!({"name": "svc", "limits": {"rpm": 3}})).await;
    let (first, first_id) = (
        created["key"].as_str().unwrap().to_string(),
        created["id"].as_str().unwrap().to_string(),
    );
    for _ in 0..2 {
        assert_eq!(chat_with(&h, Some(&first), "gpt-4o-mini").await.status, 200);
    }
    let rotate = |id: String| {
        let h = &h;
        async move {
            let rotated = h
                .client
                .admin(Method::POST, &format!("/admin/keys/{id}/rotate"), "")
                .await;
            assert_eq!(rotated.status, 200, "{}", rotated.text());
            rotated.json()
        }
    };
    let second = rotate(first_id).await;
    let second_key = second["key"].as_str().unwrap();
    assert_eq!(
        chat_with(&h, Some(second_key), "gpt-4o-mini").await.status,
        200
    );
    let third = rotate(second["id"].as_str().unwrap().to_string()).await;
    let refused = chat_with(&h, Some(third["key"].as_str().unwrap()), "gpt-4o-mini").await;
    assert_eq!(refused.status, 429, "{}", refused.text());
}
