//! The real binary with virtual keys: `keys create --json` offline, then the key used against
//! `stockyard serve`; changes beside the running server go through it and take effect on the
//! next request; a read-only admin key is refused a change; `audit export`/`audit verify` show
//! every change with its actor; the database files hold no key.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

use common::{PROVIDER_KEY, TestClient, chat};
use hyper::Method;
use serde_json::Value;

use common::binary::{listening, stockyard};

/// Runs `stockyard ARGS` on `db` (bounded by the test harness's own timeout); panics with the
/// output unless it exits 0.
fn ok(db: &Path, args: &[&str]) -> String {
    let out = stockyard(db).args(args).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{args:?}: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// A `stockyard serve` child, killed when dropped.
struct Served {
    child: Child,
    url: String,
    log: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Served {
    fn start(db: &Path, mock_url: &str) -> Served {
        let mut child = stockyard(db)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env("OPENAI_API_KEY", PROVIDER_KEY)
            .env("OPENAI_BASE_URL", mock_url)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (url, log) = listening(&mut child);
        Served { child, url, log }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn chat_with(client: &TestClient, key: Option<&str>, model: &str) -> common::Answer {
    let auth = key.map(|k| format!("Bearer {k}"));
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("authorization", a.as_str())).collect();
    client
        .call(
            Method::POST,
            "/v1/chat/completions",
            &chat(model, "hi", false),
            &headers,
        )
        .await
}

fn code(answer: &common::Answer) -> String {
    answer.json()["error"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_made_by_the_cli_works_and_every_change_is_audited_with_its_actor() {
    let mock = mock_upstream::MockUpstream::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("keys.db");

    // Offline: a team and a key in it, printed once as JSON.
    ok(
        &db,
        &[
            "teams", "create", "ml", "--models", "gpt-4o*", "--rpm", "600",
        ],
    );
    let out = ok(
        &db,
        &[
            "keys",
            "create",
            "ci",
            "--team",
            "ml",
            "--budget",
            "12.50",
            "--period",
            "month",
            "--models",
            "gpt-4o-mini,gpt-4o",
            "--expires",
            "90d",
            "--metadata",
            "owner=ana",
            "--json",
        ],
    );
    let created: Value = serde_json::from_str(out.trim()).unwrap();
    let key = created["key"].as_str().unwrap().to_string();
    let id = created["id"].as_str().unwrap().to_string();
    assert!(key.starts_with("sk-sy-"), "{created}");
    assert_eq!(
        created["limits"]["budget"]["limit_nanos"],
        12_500_000_000i64
    );
    assert_eq!(created["limits"]["budget"]["period"], "month");
    assert_eq!(created["metadata"]["owner"], "ana");
    assert_eq!(created["team"], "ml");
    let listed = ok(&db, &["keys", "list"]);
    assert!(
        listed.contains(&id) && listed.contains("active") && !listed.contains(&key),
        "{listed}"
    );

    let out = ok(
        &db,
        &[
            "admin-keys",
            "create",
            "auditor",
            "--role",
            "read-only",
            "--json",
        ],
    );
    let read_only: Value = serde_json::from_str(out.trim()).unwrap();
    let read_only_key = read_only["key"].as_str().unwrap().to_string();

    // Served: the key works; without it, 401; outside its list, 403.
    let served = Served::start(&db, &mock.base_url());
    let client = TestClient::new(served.url.clone());
    let answer = chat_with(&client, Some(&key), "gpt-4o-mini").await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(
        code(&chat_with(&client, None, "gpt-4o-mini").await),
        "missing_api_key"
    );
    assert_eq!(
        code(&chat_with(&client, Some(&key), "gpt-4").await),
        "model_not_allowed"
    );

    // The read-only admin key reads, and is refused a change.
    let auth = format!("Bearer {read_only_key}");
    let read = client
        .call(Method::GET, "/admin/keys", "", &[("authorization", &auth)])
        .await;
    assert_eq!(read.status, 200, "{}", read.text());
    let write = client
        .call(
            Method::POST,
            "/admin/keys",
            r#"{"name": "x"}"#,
            &[("authorization", &auth)],
        )
        .await;
    assert_eq!(write.status, 403, "{}", write.text());

    // Beside the running server, the CLI goes through it: the team change and the rotation are
    // in force for the next request.
    ok(&db, &["teams", "update", "ml", "--models", "gpt-4o"]);
    assert_eq!(
        code(&chat_with(&client, Some(&key), "gpt-4o-mini").await),
        "model_not_allowed"
    );
    assert_eq!(chat_with(&client, Some(&key), "gpt-4o").await.status, 200);
    let out = ok(&db, &["keys", "rotate", &id, "--json"]);
    let rotated: Value = serde_json::from_str(out.trim()).unwrap();
    let new_key = rotated["key"].as_str().unwrap().to_string();
    assert_eq!(rotated["rotated_from"], id.as_str());
    assert_eq!(
        code(&chat_with(&client, Some(&key), "gpt-4o").await),
        "revoked_api_key"
    );
    assert_eq!(
        chat_with(&client, Some(&new_key), "gpt-4o").await.status,
        200
    );
    ok(&db, &["keys", "revoke", rotated["id"].as_str().unwrap()]);
    assert_eq!(
        code(&chat_with(&client, Some(&new_key), "gpt-4o").await),
        "revoked_api_key"
    );
    drop(served);

    // Every change is in the ledger with its actor, and the ledger verifies.
    let export = ok(&db, &["audit", "export"]);
    let entries: Vec<(String, String)> = export
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .map(|e| {
            (
                e["actor"].as_str().unwrap().to_string(),
                e["action"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let expected = [
        ("cli:tester", "team.create"),
        ("cli:tester", "key.create"),
        ("cli:tester", "admin_key.create"),
        ("cli:tester", "team.update"),
        ("cli:tester", "key.rotate"),
        ("cli:tester", "key.revoke"),
    ];
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    assert_eq!(entries, expected);
    assert!(
        !export.contains(&key) && !export.contains(&new_key) && !export.contains(&read_only_key)
    );
    let verify = ok(&db, &["audit", "verify"]);
    assert!(verify.starts_with("ok: 6 entries"), "{verify}");

    // No key in the database or its WAL.
    for suffix in ["", "-wal", "-shm"] {
        let mut name = db.as_os_str().to_owned();
        name.push(suffix);
        let Ok(bytes) = std::fs::read(&name) else {
            continue;
        };
        for secret in [&key, &new_key, &read_only_key] {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "a key is in {name:?}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_virtual_keys_decide_the_auth_mode_at_start_up() {
    let mock = mock_upstream::MockUpstream::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("mode.db");

    // A database without keys on a public address: refused, as before (nothing is bound).
    ok(&db, &["teams", "create", "ml"]);
    let out = stockyard(&db)
        .args(["serve", "--listen", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("keys create") && err.contains("--allow-open"),
        "{err}"
    );

    // With a stored key (and no static key), start-up says every route needs one.
    let out = ok(&db, &["keys", "create", "only", "--json"]);
    let key: Value = serde_json::from_str(out.trim()).unwrap();
    let key = key["key"].as_str().unwrap().to_string();
    let served = Served::start(&db, &mock.base_url());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !served.log.lock().unwrap().contains("stockyard listening") {
        assert!(std::time::Instant::now() < deadline, "no start-up line");
        std::thread::sleep(Duration::from_millis(20));
    }
    let log = served.log.lock().unwrap().clone();
    assert!(
        log.contains("every /v1 route requires a client key"),
        "{log}"
    );
    assert!(!log.contains(&key), "{log}");
    let client = TestClient::new(served.url.clone());
    assert_eq!(
        code(&chat_with(&client, None, "gpt-4o-mini").await),
        "missing_api_key"
    );
    assert_eq!(
        chat_with(&client, Some(&key), "gpt-4o-mini").await.status,
        200
    );
}
