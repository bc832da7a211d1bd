//! Spend reports over real sockets and the real binary: requests made with virtual keys (one in a
//! team, with metadata) and `user` fields, then `GET /admin/spend` and `stockyard spend` grouped by
//! key, team, user, model, provider and day must match them exactly; the traces name the key,
//! team, user and metadata; and a virtual key's budget refuses with `insufficient_quota`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;

use common::{ADMIN_KEY, Answer, Harness};
use hyper::Method;
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_stockyard");
/// One token costs $0.0005; each request here uses 5 prompt + 5 completion tokens: $0.005.
const PER_REQUEST: i64 = 5_000_000;

fn toml() -> String {
    format!(
        "[admin]\nkey = \"{ADMIN_KEY}\"\n[prices.\"gpt-4o-mini\"]\ninput_per_million = 500.0\noutput_per_million = 500.0\n"
    )
}

async fn create(h: &Harness, path: &str, body: Value) -> Value {
    let answer = h.client.admin(Method::POST, path, &body.to_string()).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    answer.json()
}

async fn call(h: &Harness, key: &str, user: Option<&str>) -> Answer {
    let mut body = json!({
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "hello"}],
        "max_tokens": 5,
    });
    if let Some(user) = user {
        body["user"] = json!(user);
    }
    let auth = format!("Bearer {key}");
    h.client
        .call(
            Method::POST,
            "/v1/chat/completions",
            &body.to_string(),
            &[("authorization", &auth)],
        )
        .await
}

/// `(key, requests, prompt tokens, cost)` of a report's rows.
fn rows(report: &[Value]) -> Vec<(String, i64, i64, i64)> {
    report
        .iter()
        .map(|r| {
            (
                r["key"].as_str().unwrap().to_string(),
                r["requests"].as_i64().unwrap(),
                r["prompt_tokens"].as_i64().unwrap(),
                r["cost_nanos"].as_i64().unwrap(),
            )
        })
        .collect()
}

fn row(key: &str, requests: i64) -> (String, i64, i64, i64) {
    (
        key.to_string(),
        requests,
        5 * requests,
        PER_REQUEST * requests,
    )
}

async fn admin_report(h: &Harness, by: &str) -> Vec<(String, i64, i64, i64)> {
    let answer = h
        .client
        .admin(Method::GET, &format!("/admin/spend?by={by}&since=7d"), "")
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    rows(answer.json()["rows"].as_array().unwrap())
}

fn cli_report(db: &std::path::Path, by: &str, json: bool) -> String {
    let mut cmd = Command::new(BIN);
    for (key, _) in std::env::vars() {
        if key.starts_with("STOCKYARD_") || key.starts_with("OPENAI_") {
            cmd.env_remove(key);
        }
    }
    cmd.env("STOCKYARD_DB", db)
        .args(["spend", "--by", by, "--since", "7d"]);
    if json {
        cmd.arg("--json");
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn spend_reports_match_the_requests_made() {
    let h = Harness::start_with(&toml()).await;
    create(&h, "/admin/teams", json!({"name": "red"})).await;
    let a = create(
        &h,
        "/admin/keys",
        json!({"name": "a", "team": "red", "metadata": {"env": "prod"}}),
    )
    .await;
    let b = create(&h, "/admin/keys", json!({"name": "b"})).await;
    let (a_key, a_id) = (a["key"].as_str().unwrap(), a["id"].as_str().unwrap());
    let (b_key, b_id) = (b["key"].as_str().unwrap(), b["id"].as_str().unwrap());
    for (key, user) in [
        (a_key, Some("ann")),
        (a_key, Some("ann")),
        (a_key, None),
        (b_key, Some("bob")),
        (b_key, Some("bob")),
    ] {
        let answer = call(&h, key, user).await;
        assert_eq!(answer.status, 200, "{}", answer.text());
    }
    h.server.app.writer.flush().await.unwrap();

    let mut by_key = vec![row(a_id, 3), row(b_id, 2)];
    assert_eq!(admin_report(&h, "key").await, by_key);
    assert_eq!(
        admin_report(&h, "team").await,
        [row("red", 3), row("(none)", 2)]
    );
    let mut by_user = admin_report(&h, "user").await;
    by_user.sort();
    assert_eq!(by_user, [row("(none)", 1), row("ann", 2), row("bob", 2)]);
    assert_eq!(admin_report(&h, "model").await, [row("gpt-4o-mini", 5)]);
    assert_eq!(admin_report(&h, "provider").await, [row("openai", 5)]);
    let by_day = admin_report(&h, "day").await;
    assert_eq!(by_day.len(), 1);
    assert_eq!((by_day[0].1, by_day[0].3), (5, 5 * PER_REQUEST));
    let whole = h
        .client
        .admin(Method::GET, "/admin/spend?by=key&since=7d", "")
        .await;
    assert_eq!(whole.json()["total_cost_nanos"], 5 * PER_REQUEST);
    let bad = h
        .client
        .admin(Method::GET, "/admin/spend?by=color", "")
        .await;
    assert_eq!(bad.status, 400);
    assert!(
        bad.text()
            .contains("by: \\\"color\\\" is not one of key, team"),
        "{}",
        bad.text()
    );

    // The CLI reads the same rollups, from the database, beside the running server.
    let db = h.dir.path().join("stockyard.db");
    let lines: Vec<Value> = cli_report(&db, "key", true)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    by_key.sort();
    let mut printed = rows(&lines);
    printed.sort();
    assert_eq!(printed, by_key);
    let table = cli_report(&db, "team", false);
    let red = table
        .lines()
        .find(|l| l.starts_with("red"))
        .unwrap_or_default();
    assert!(
        red.contains("$0.015000000") && red.contains(" 3 "),
        "{table}"
    );

    let traces = h.traces(5).await;
    let first = &traces[0];
    assert_eq!(first.key_id.as_deref(), Some(a_id));
    assert_eq!(first.team_id.as_deref(), Some("red"));
    assert_eq!(first.user.as_deref(), Some("ann"));
    assert_eq!(first.key_metadata.as_deref(), Some(r#"{"env":"prod"}"#));
    assert_eq!(traces[4].team_id, None);
}

#[tokio::test]
async fn a_virtual_key_budget_refuses_with_insufficient_quota() {
    let h = Harness::start_with(&toml()).await;
    // $0.012 a day: each request holds $0.006 (12 tokens) and costs $0.005.
    let c = create(
        &h,
        "/admin/keys",
        json!({"name": "c", "limits": {"budget": {"limit_nanos": 12_000_000, "period": "day"}}}),
    )
    .await;
    let (key, id) = (c["key"].as_str().unwrap(), c["id"].as_str().unwrap());
    assert_eq!(call(&h, key, None).await.status, 200);
    assert_eq!(call(&h, key, None).await.status, 200);
    let refused = call(&h, key, None).await;
    assert_eq!(refused.status, 429);
    let error = &refused.json()["error"];
    assert_eq!(error["code"], "insufficient_quota");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.starts_with(&format!(
            "budget exceeded: key {id} has a budget of $0.012 per day; spent $0.01"
        )),
        "{message}"
    );
    assert_eq!(h.mock.request_count(), 2);
}
