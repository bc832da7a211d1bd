//! The `route_rules` module over real sockets: each kind of rule (prompt tokens, a regex on the
//! last user message, a header, key metadata, the UTC time, a tag) picks the model the mock is
//! asked for, first match wins, the trace names the rule, a Messages client is routed alike;
//! config errors name the field; a runtime toggle needs no restart and is in the ledger.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::grants::GRANTS;
use common::{ADMIN_KEY, Harness, chat};
use hyper::Method;
use serde_json::json;

const RULES: &str = r#"
[modules.tags]
enabled = true

[modules.route_rules]
enabled = true

[[modules.route_rules.rules]]
name = "code"
model = "gpt-4.1"
last_user_matches = "(?i)stack trace"

[[modules.route_rules.rules]]
name = "priority"
model = "gpt-4o"
header = "x-priority"
header_value = "high"

[[modules.route_rules.rules]]
name = "gold"
model = "gpt-4.1-mini"
key_metadata = "tier"
key_metadata_value = "gold"

[[modules.route_rules.rules]]
name = "batch"
model = "gpt-4o-mini-batch"
tag = "batch"

[[modules.route_rules.rules]]
name = "short"
model = "gpt-4o-mini"
models = ["auto"]
max_prompt_tokens = 30

[[modules.route_rules.rules]]
name = "long"
model = "gpt-4o"
models = ["auto"]
"#;

fn admin_toml(extra: &str) -> String {
    format!("[admin]\nkey = \"{ADMIN_KEY}\"\n{extra}")
}

/// Sends a chat for `model` with `text` and `headers`; returns the model the mock was asked for.
async fn asked(h: &Harness, model: &str, text: &str, headers: &[(&str, &str)]) -> String {
    let before = h.mock.request_count();
    let answer = h
        .client
        .call(
            Method::POST,
            "/v1/chat/completions",
            &chat(model, text, false),
            headers,
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let requests = h.mock.requests();
    assert_eq!(requests.len(), before + 1);
    let upstream = requests[before].body["model"].as_str().unwrap().to_string();
    assert_eq!(
        answer.json()["model"],
        upstream.as_str(),
        "the mock echoes the model"
    );
    upstream
}

#[tokio::test]
async fn each_kind_of_rule_picks_the_model_and_the_trace_names_the_rule() {
    let h = Harness::start_with_modules(&admin_toml(RULES), &[&GRANTS]).await;
    let long_text = "word ".repeat(200);
    let gold = json!({"key": "k1", "limits": {}, "metadata": {"tier": "gold"}}).to_string();
    // (model asked, text, headers, model the mock must get, rule that fires)
    type Case<'a> = (&'a str, String, Vec<(&'a str, &'a str)>, &'a str, &'a str);
    let cases: Vec<Case> = vec![
        ("auto", "hi".into(), vec![], "gpt-4o-mini", "short"),
        ("auto", long_text.clone(), vec![], "gpt-4o", "long"),
        (
            "auto",
            "here is a Stack Trace".into(),
            vec![],
            "gpt-4.1",
            "code",
        ),
        (
            "gpt-4o-mini",
            "hi".into(),
            vec![("x-priority", "high")],
            "gpt-4o",
            "priority",
        ),
        (
            "gpt-4o-mini",
            "hi".into(),
            vec![("x-test-grant", &gold)],
            "gpt-4.1-mini",
            "gold",
        ),
        (
            "auto",
            "hi".into(),
            vec![("x-stockyard-tags", "batch")],
            "gpt-4o-mini-batch",
            "batch",
        ),
    ];
    for (model, text, headers, want, _) in &cases {
        assert_eq!(
            &asked(&h, model, text, headers).await,
            want,
            "{model} {headers:?}"
        );
    }
    // No rule for this one: the client's model stands, and no rule is recorded.
    assert_eq!(asked(&h, "gpt-4o-mini", "hi", &[]).await, "gpt-4o-mini");

    let rows = h.traces(cases.len() + 1).await;
    for (row, (_, _, _, want, rule)) in rows.iter().zip(&cases) {
        assert_eq!(row.route_rule.as_deref(), Some(*rule));
        assert_eq!(row.requested_model, *want);
        assert_eq!(row.upstream_model.as_deref(), Some(*want));
    }
    assert_eq!(rows[cases.len()].route_rule, None);
}

#[tokio::test]
async fn a_messages_client_is_routed_by_the_rules_too() {
    let h = Harness::start_with(&admin_toml(RULES)).await;
    let body = json!({"model": "auto", "max_tokens": 50,
        "messages": [{"role": "user", "content": "why this stack trace?"}]})
    .to_string();
    let answer = h.client.post("/v1/messages", &body).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.json()["type"], "message");
    assert_eq!(h.mock.requests()[0].body["model"], "gpt-4.1");
    assert_eq!(h.traces(1).await[0].route_rule.as_deref(), Some("code"));
}

/// Minutes of the UTC day, `HH:MM`.
fn hhmm(minute: u64) -> String {
    format!("{:02}:{:02}", (minute / 60) % 24, minute % 60)
}

#[tokio::test]
async fn the_time_of_day_rule_fires_only_inside_its_utc_range() {
    let now_minute = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        / 60
        % 1440;
    // A two-hour range around now (wrapping past midnight when it must), and one far from it.
    let around = format!("{}-{}", hhmm(now_minute + 1440 - 60), hhmm(now_minute + 60));
    let away = format!("{}-{}", hhmm(now_minute + 180), hhmm(now_minute + 300));
    let toml = format!(
        "[modules.route_rules]\nenabled = true\n\
         [[modules.route_rules.rules]]\nname = \"away\"\nmodel = \"gpt-4.1\"\nutc_time = \"{away}\"\n\
         [[modules.route_rules.rules]]\nname = \"now\"\nmodel = \"gpt-4o\"\nutc_time = \"{around}\"\n"
    );
    let h = Harness::start_with(&admin_toml(&toml)).await;
    assert_eq!(asked(&h, "gpt-4o-mini", "hi", &[]).await, "gpt-4o");
    assert_eq!(h.traces(1).await[0].route_rule.as_deref(), Some("now"));
}

#[tokio::test]
async fn route_rules_toggle_at_runtime_with_a_ledger_entry_and_config_errors_name_the_field() {
    let h = Harness::start_with(&admin_toml("")).await;
    let body = chat("auto", "hi", false);
    // Off by default: `auto` is no model.
    assert_eq!(
        h.client.post("/v1/chat/completions", &body).await.status,
        404
    );

    let bad = json!({"enabled": true, "config": {"rules": [
        {"name": "r", "model": "gpt-4o", "last_user_matches": "(("}]}});
    let answer = h
        .client
        .admin(Method::PUT, "/admin/modules/route_rules", &bad.to_string())
        .await;
    assert_eq!(answer.status, 400);
    let message = answer.json()["error"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        message.contains("modules.route_rules: rules[0].last_user_matches"),
        "{message}"
    );

    let good = json!({"enabled": true, "config": {"rules": [
        {"name": "default", "model": "gpt-4o-mini", "models": ["auto"]}]}});
    let answer = h
        .client
        .admin(Method::PUT, "/admin/modules/route_rules", &good.to_string())
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let answer = h.client.post("/v1/chat/completions", &body).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(h.mock.requests()[0].body["model"], "gpt-4o-mini");

    let audit = h.client.admin(Method::GET, "/admin/audit", "").await.json();
    let entries = audit["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["action"], "module.update");
    assert_eq!(entries[0]["target"], "route_rules");
    assert_eq!(
        entries[0]["details"]["after"]["config"]["rules"][0]["name"],
        "default"
    );

    // And off again, on the next request.
    let answer = h
        .client
        .admin(
            Method::PUT,
            "/admin/modules/route_rules",
            r#"{"enabled": false}"#,
        )
        .await;
    assert_eq!(answer.status, 200);
    assert_eq!(
        h.client.post("/v1/chat/completions", &body).await.status,
        404
    );
}
