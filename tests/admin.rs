//! The admin API: its gate, module changes that take effect on the next request, survive a restart
//! and land in a verifiable ledger; invalid changes refused without effect.

mod common;

use common::{ADMIN_KEY, Harness, chat};
use hyper::Method;
use serde_json::json;

fn admin_toml() -> String {
    format!("[admin]\nkey = \"{ADMIN_KEY}\"\n")
}

#[tokio::test]
async fn admin_api_is_off_without_a_key_and_checks_the_key() {
    let h = Harness::start().await;
    let answer = h.client.admin(Method::GET, "/admin/modules", "").await;
    assert_eq!(answer.status, 403);
    assert!(
        answer.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("STOCKYARD_ADMIN_KEY")
    );

    let h = Harness::start_with(&admin_toml()).await;
    let answer = h
        .client
        .call(
            Method::GET,
            "/admin/modules",
            "",
            &[("authorization", "Bearer nope")],
        )
        .await;
    assert_eq!(answer.status, 401);
    let answer = h.client.admin(Method::GET, "/admin/modules", "").await;
    assert_eq!(answer.status, 200);
    let names: Vec<String> = answer.json()["modules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        names,
        [
            "auth",
            "ip_filter",
            "request_limits",
            "defaults_and_overrides",
            "rate_limits",
            "session_limits",
            "cost_guard",
            "budgets",
            "tags",
            "prompt_templates",
            "route_rules",
            "batches",
            "responses",
            "guard_policy",
            "guard_injection",
            "guard_secrets",
            "guard_pii",
            "guard_webhook",
            "guard_schema",
            "fixtures",
            "moderations",
            "fan_out",
            "routing",
            "context_fit",
            "cache",
            "semantic_cache",
            "cost",
            "request_log",
            "trace",
            "metrics",
            "retention",
            "backups",
            "mcp",
            "alerts",
            "otel"
        ]
    );
}

#[tokio::test]
async fn module_toggle_takes_effect_survives_restart_and_is_audited() {
    let h = Harness::start_with(&admin_toml()).await;
    let body = chat("gpt-4o-mini", "hi", false);
    h.client.post("/v1/chat/completions", &body).await;
    assert_eq!(h.traces(1).await.len(), 1);

    let answer = h
        .client
        .admin(Method::PUT, "/admin/modules/trace", r#"{"enabled": false}"#)
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.json()["module"]["enabled"], false);
    assert_eq!(answer.json()["ledger_seq"], 1);

    // The very next request runs on the new chain: no trace row.
    let answer = h.client.post("/v1/chat/completions", &body).await;
    assert_eq!(answer.status, 200);
    assert_eq!(h.trace_count_settled().await, 1);

    // Restart on the same database: still disabled.
    let h = h.restart(&admin_toml()).await;
    h.client.post("/v1/chat/completions", &body).await;
    assert_eq!(h.trace_count_settled().await, 1);
    let modules = h
        .client
        .admin(Method::GET, "/admin/modules", "")
        .await
        .json();
    let trace = modules["modules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "trace")
        .unwrap()
        .clone();
    assert_eq!(trace["enabled"], false);

    // Config change merges, and re-enabling restores tracing with body capture.
    let answer = h
        .client
        .admin(
            Method::PUT,
            "/admin/modules/trace",
            r#"{"enabled": true, "config": {"capture_bodies": true}}"#,
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    h.client.post("/v1/chat/completions", &body).await;
    let row = &h.traces(2).await[1];
    assert!(row.request_body.as_deref().unwrap().contains("\"hi\""));
    assert!(
        row.response_body
            .as_deref()
            .unwrap()
            .contains("Hello from the mock upstream.")
    );

    let audit = h.client.admin(Method::GET, "/admin/audit", "").await.json();
    assert_eq!(audit["verify"]["ok"], true);
    let entries = audit["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0]["action"], "module.update");
    assert_eq!(entries[0]["target"], "trace");
    assert_eq!(
        entries[1]["details"]["after"]["config"]["capture_bodies"],
        true
    );
    assert_eq!(entries[1]["prev_hash"], entries[0]["hash"]);
}

#[tokio::test]
async fn invalid_changes_are_refused_and_change_nothing() {
    let h = Harness::start_with(&admin_toml()).await;
    let answer = h
        .client
        .admin(
            Method::PUT,
            "/admin/modules/request_limits",
            r#"{"config": {"max_body_bytes": 0}}"#,
        )
        .await;
    assert_eq!(answer.status, 400);
    assert!(
        answer.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("max_body_bytes")
    );
    let answer = h
        .client
        .admin(
            Method::PUT,
            "/admin/modules/request_limits",
            r#"{"config": {"max_bodyy": 5}}"#,
        )
        .await;
    assert_eq!(answer.status, 400);
    let answer = h
        .client
        .admin(
            Method::PUT,
            "/admin/modules/nonexistent",
            r#"{"enabled": true}"#,
        )
        .await;
    assert_eq!(answer.status, 404);
    let answer = h
        .client
        .admin(Method::PUT, "/admin/modules/trace", r#"{"enabled": "yes"}"#)
        .await;
    assert_eq!(answer.status, 400);
    let audit = h.client.admin(Method::GET, "/admin/audit", "").await.json();
    assert_eq!(
        audit["entries"].as_array().unwrap().len(),
        0,
        "refused changes leave no ledger entry"
    );
}

#[tokio::test]
async fn request_limits_change_applies_to_the_next_request() {
    let h = Harness::start_with(&admin_toml()).await;
    let body = chat("gpt-4o-mini", &"y".repeat(2000), false);
    assert_eq!(
        h.client.post("/v1/chat/completions", &body).await.status,
        200
    );
    let answer = h
        .client
        .admin(
            Method::PUT,
            "/admin/modules/request_limits",
            &json!({"config": {"max_body_bytes": 1000}}).to_string(),
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(
        h.client.post("/v1/chat/completions", &body).await.status,
        413
    );
}

#[tokio::test]
async fn traces_are_listed_and_filtered() {
    let h = Harness::start_with(&admin_toml()).await;
    h.client
        .post("/v1/chat/completions", &chat("gpt-4o-mini", "hi", false))
        .await;
    h.client
        .post("/v1/chat/completions", &chat("gpt-4o", "hi", false))
        .await;
    h.client
        .post("/v1/chat/completions", &chat("nope-model", "hi", false))
        .await;
    h.traces(3).await;
    let all = h
        .client
        .admin(Method::GET, "/admin/traces?limit=10", "")
        .await
        .json();
    assert_eq!(all["traces"].as_array().unwrap().len(), 3);
    let only = h
        .client
        .admin(Method::GET, "/admin/traces?model=gpt-4o", "")
        .await
        .json();
    assert_eq!(only["traces"].as_array().unwrap().len(), 1);
    let failed = h
        .client
        .admin(Method::GET, "/admin/traces?status=404", "")
        .await
        .json();
    assert_eq!(failed["traces"][0]["requested_model"], "nope-model");
    let bad = h
        .client
        .admin(Method::GET, "/admin/traces?limit=many", "")
        .await;
    assert_eq!(bad.status, 400);
}

#[tokio::test]
async fn price_file_update_reprices_the_next_request() {
    let h = Harness::start_with(&admin_toml()).await;
    let file = json!({"gpt-4o-mini": {"litellm_provider": "openai", "mode": "chat",
        "input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6}});
    let answer = h
        .client
        .admin(Method::PUT, "/admin/prices", &file.to_string())
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    h.client
        .post(
            "/v1/chat/completions",
            &chat("gpt-4o-mini", "Say hello", false),
        )
        .await;
    let trace = &h.traces(1).await[0];
    // 6 tokens in at 1000 nanos, 5 out at 2000 nanos.
    assert_eq!(trace.cost_nanos, 6_000 + 10_000);
    let bad = h
        .client
        .admin(
            Method::PUT,
            "/admin/prices",
            "{\"m\": {\"input_cost_per_token\": -1}}",
        )
        .await;
    assert_eq!(bad.status, 400);
}
