//! The `prompt_templates` module over real sockets: a template put through the admin API (or the
//! CLI, offline or through the server) is rendered into a request that names it, by version or
//! the one in force, for Chat and Messages clients; a rollback is in force on the next request;
//! weighted variants split sticky per user and the trace records `name@version#variant`;
//! templates load from the database at start-up; missing variables, unknown templates and bad
//! definitions are refused naming the field; the module toggles at runtime; changes are ledgered.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{ADMIN_KEY, Harness, chat};
use hyper::Method;
use mock_upstream::MockUpstream;
use serde_json::{Value, json};

const ON: &str = "[modules.prompt_templates]\nenabled = true\n";

fn admin_toml(extra: &str) -> String {
    format!("[admin]\nkey = \"{ADMIN_KEY}\"\n{extra}")
}

fn support(greeting: &str) -> Value {
    json!({"messages": [{"role": "system",
        "content": format!("{greeting} {{{{ customer }}}}, ask about {{{{ product | upper }}}}.")}]})
}

async fn put(h: &Harness, name: &str, definition: &Value) -> Value {
    let answer = h
        .client
        .admin(
            Method::PUT,
            &format!("/admin/prompts/{name}"),
            &definition.to_string(),
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    answer.json()
}

const VARS: &str = r#"{"customer": "Ada", "product": "stockyard"}"#;

/// Sends a chat naming `prompt`; returns the status and the messages the mock got (if called).
async fn ask(h: &Harness, prompt: &str, vars: &str, user: Option<&str>) -> (u16, Value, Value) {
    let before = h.mock.request_count();
    let mut body: Value = serde_json::from_str(&chat("gpt-4o-mini", "hello", false)).unwrap();
    if let Some(user) = user {
        body["user"] = json!(user);
    }
    let answer = h
        .client
        .call(
            Method::POST,
            "/v1/chat/completions",
            &body.to_string(),
            &[
                ("x-stockyard-prompt", prompt),
                ("x-stockyard-prompt-vars", vars),
            ],
        )
        .await;
    let sent = if h.mock.request_count() > before {
        h.mock.requests()[before].body["messages"].clone()
    } else {
        Value::Null
    };
    let json = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
    (answer.status.as_u16(), sent, json)
}

#[tokio::test]
async fn versions_render_by_reference_and_a_rollback_is_in_force_at_once() {
    let h = Harness::start_with(&admin_toml(ON)).await;
    let first = put(&h, "support", &support("Hello")).await;
    assert_eq!(first["details"]["version"], 1);
    put(&h, "support", &support("Welcome")).await;

    let (status, sent, _) = ask(&h, "support", VARS, None).await;
    assert_eq!(status, 200);
    assert_eq!(sent[0]["role"], "system");
    assert_eq!(sent[0]["content"], "Welcome Ada, ask about STOCKYARD.");
    assert_eq!(sent[1]["content"], "hello");
    let (_, sent, _) = ask(&h, "support@1", VARS, None).await;
    assert_eq!(sent[0]["content"], "Hello Ada, ask about STOCKYARD.");

    let answer = h
        .client
        .admin(Method::POST, "/admin/prompts/support/rollback", "")
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let (_, sent, _) = ask(&h, "support", VARS, None).await;
    assert_eq!(sent[0]["content"], "Hello Ada, ask about STOCKYARD.");

    let rows = h.traces(3).await;
    let prompts: Vec<_> = rows.iter().map(|r| r.prompt.clone().unwrap()).collect();
    assert_eq!(prompts, ["support@2", "support@1", "support@1"]);

    let listed = h
        .client
        .admin(Method::GET, "/admin/prompts", "")
        .await
        .json();
    assert_eq!(
        listed["prompts"][0],
        json!({"name": "support", "active": 1, "latest": 2, "versions": 2})
    );
    let got = h
        .client
        .admin(Method::GET, "/admin/prompts/support?version=2", "")
        .await
        .json();
    assert_eq!(got["version"], 2);
    assert_eq!(got["active"], 1);

    let audit = h.client.admin(Method::GET, "/admin/audit", "").await.json();
    let entries = audit["entries"].as_array().unwrap();
    let actions: Vec<_> = entries
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["prompt.put", "prompt.put", "prompt.rollback"]);
    assert_eq!(entries[2]["target"], "support");
    assert_eq!(entries[2]["details"], json!({"from": 2, "to": 1}));
    assert_eq!(audit["verify"]["ok"], true);
}

#[tokio::test]
async fn weighted_variants_split_sticky_per_user_and_the_trace_names_the_variant() {
    let h = Harness::start_with(&admin_toml(ON)).await;
    let definition = json!({"variants": [
        {"name": "warm", "weight": 1, "messages": [{"role": "system", "content": "Warm {{ customer }}"}]},
        {"name": "terse", "weight": 1, "messages": [{"role": "system", "content": "Terse {{ customer }}"}]},
    ]});
    put(&h, "tone", &definition).await;
    let mut seen = std::collections::BTreeMap::new();
    for i in 0..16 {
        let user = format!("user-{i}");
        let (status, sent, _) = ask(&h, "tone", VARS, Some(&user)).await;
        assert_eq!(status, 200);
        let text = sent[0]["content"].as_str().unwrap().to_string();
        // The same user sees the same variant again.
        let (_, again, _) = ask(&h, "tone", VARS, Some(&user)).await;
        assert_eq!(again[0]["content"], text.as_str());
        *seen.entry(text).or_insert(0) += 1;
    }
    assert_eq!(seen.len(), 2, "both variants served: {seen:?}");
    let rows = h.traces(32).await;
    for row in rows {
        let prompt = row.prompt.unwrap();
        assert!(
            prompt == "tone@1#warm" || prompt == "tone@1#terse",
            "{prompt}"
        );
    }
}

#[tokio::test]
async fn a_messages_client_gets_the_template_too() {
    let h = Harness::start_with(&admin_toml(ON)).await;
    put(&h, "support", &support("Hi")).await;
    let body = json!({"model": "gpt-4o-mini", "max_tokens": 20,
        "messages": [{"role": "user", "content": "hello"}]});
    let answer = h
        .client
        .call(
            Method::POST,
            "/v1/messages",
            &body.to_string(),
            &[
                ("x-stockyard-prompt", "support@1"),
                ("x-stockyard-prompt-vars", VARS),
            ],
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.json()["type"], "message");
    let sent = &h.mock.requests()[0].body["messages"];
    assert_eq!(sent[0]["content"], "Hi Ada, ask about STOCKYARD.");
}

#[tokio::test]
async fn bad_references_variables_and_definitions_are_refused_naming_the_field() {
    let h = Harness::start_with(&admin_toml(ON)).await;
    put(&h, "support", &support("Hi")).await;

    let (status, _, body) = ask(&h, "nope", VARS, None).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["param"], "x-stockyard-prompt");
    let (status, _, body) = ask(&h, "support@9", VARS, None).await;
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no version 9")
    );
    let (status, _, body) = ask(&h, "support", r#"{"customer": "Ada"}"#, None).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["param"], "x-stockyard-prompt-vars");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("support@1")
    );
    let (status, _, body) = ask(&h, "support", "[1]", None).await;
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("JSON object")
    );
    assert_eq!(h.mock.request_count(), 0);

    let bad = json!({"messages": [{"role": "system", "content": "{{ unclosed"}]});
    let answer = h
        .client
        .admin(Method::PUT, "/admin/prompts/support", &bad.to_string())
        .await;
    assert_eq!(answer.status, 400);
    let message = answer.json()["error"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        message.contains("variants[0].messages[0].content"),
        "{message}"
    );
    let answer = h
        .client
        .admin(
            Method::PUT,
            "/admin/prompts/has@at",
            &support("x").to_string(),
        )
        .await;
    assert_eq!(answer.status, 400);
    let answer = h
        .client
        .admin(
            Method::POST,
            "/admin/prompts/support/rollback",
            r#"{"version": 5}"#,
        )
        .await;
    assert_eq!(answer.status, 404);
    // Nothing refused reached the ledger.
    let audit = h.client.admin(Method::GET, "/admin/audit", "").await.json();
    assert_eq!(audit["entries"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn the_module_toggles_at_runtime_and_templates_load_from_the_database_at_start() {
    let h = Harness::start_with(&admin_toml("")).await;
    put(&h, "support", &support("Hi")).await;
    // Off by default: the header is ignored.
    let (status, sent, _) = ask(&h, "support", VARS, None).await;
    assert_eq!(status, 200);
    assert_eq!(sent.as_array().unwrap().len(), 1);

    let answer = h
        .client
        .admin(
            Method::PUT,
            "/admin/modules/prompt_templates",
            r#"{"enabled": true, "config": {"header": "bad header"}}"#,
        )
        .await;
    assert_eq!(answer.status, 400);
    assert!(answer.text().contains("modules.prompt_templates: header"));
    let answer = h
        .client
        .admin(
            Method::PUT,
            "/admin/modules/prompt_templates",
            r#"{"enabled": true}"#,
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let (_, sent, _) = ask(&h, "support", VARS, None).await;
    assert_eq!(sent[0]["content"], "Hi Ada, ask about STOCKYARD.");
    let audit = h.client.admin(Method::GET, "/admin/audit", "").await.json();
    let last = audit["entries"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["action"], "module.update");
    assert_eq!(last["target"], "prompt_templates");

    // A new process reads the templates (and the module state) back from the database.
    let h = h.restart(&admin_toml("")).await;
    let (status, sent, _) = ask(&h, "support", VARS, None).await;
    assert_eq!(status, 200);
    assert_eq!(sent[0]["content"], "Hi Ada, ask about STOCKYARD.");
}

// The binary is run blocking: the server needs threads of its own meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_puts_lists_gets_and_rolls_back_offline_and_through_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("stockyard.db");
    let file = dir.path().join("support.json");
    std::fs::write(&file, support("Offline").to_string()).unwrap();
    let run = |args: &[&str]| {
        let out = common::binary::stockyard(&db).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // No server: straight to the database, under its lock.
    let out = run(&["prompts", "put", "support", file.to_str().unwrap()]);
    assert!(out.contains("version 1"), "{out}");

    let mock = MockUpstream::start().await.unwrap();
    let config = common::config_for(&admin_toml(ON), &mock.base_url(), &dir);
    let h = Harness::start_on(config, mock, tempfile::tempdir().unwrap()).await;
    let (_, sent, _) = ask(&h, "support", VARS, None).await;
    assert_eq!(sent[0]["content"], "Offline Ada, ask about STOCKYARD.");

    // Through the running server: in force on its next request.
    let server = h.server.url();
    std::fs::write(&file, support("Online").to_string()).unwrap();
    let through = ["--server", server.as_str(), "--admin-key", ADMIN_KEY];
    let out = run(&[
        &["prompts", "put", "support", file.to_str().unwrap()][..],
        &through[..],
    ]
    .concat());
    assert!(out.contains("version 2"), "{out}");
    let (_, sent, _) = ask(&h, "support", VARS, None).await;
    assert_eq!(sent[0]["content"], "Online Ada, ask about STOCKYARD.");

    let out = run(&[&["prompts", "list"][..], &through[..]].concat());
    assert!(out.contains("support") && out.contains('2'), "{out}");
    let out = run(&[
        &["prompts", "get", "support", "--version", "1"][..],
        &through[..],
    ]
    .concat());
    assert!(out.contains("Offline"), "{out}");
    run(&[&["prompts", "rollback", "support"][..], &through[..]].concat());
    let (_, sent, _) = ask(&h, "support", VARS, None).await;
    assert_eq!(sent[0]["content"], "Offline Ada, ask about STOCKYARD.");

    let audit = h.client.admin(Method::GET, "/admin/audit", "").await.json();
    let entries = audit["entries"].as_array().unwrap();
    let actions: Vec<_> = entries
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["prompt.put", "prompt.put", "prompt.rollback"]);
    assert_eq!(entries[0]["actor"], "cli:tester");
}
