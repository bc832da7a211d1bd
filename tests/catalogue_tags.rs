//! The `tags` module over real sockets: tags from a header, a key's metadata and rules land in
//! the trace and in `spend --by tag` (admin API and CLI); a malformed header tag is refused
//! naming the header; config errors name the field; the module is toggled at runtime, without a
//! restart, and the change is in the ledger.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::grants::GRANTS;
use common::{ADMIN_KEY, Harness, chat};
use hyper::Method;
use serde_json::{Value, json};

fn admin_toml(extra: &str) -> String {
    format!("[admin]\nkey = \"{ADMIN_KEY}\"\n{extra}")
}

const TAGS_ON: &str = "[modules.tags]\nenabled = true\nkey_metadata = [\"team_name\"]\n\
[[modules.tags.rules]]\ntag = \"mini\"\nmodel = \"gpt-4o-mini*\"\n";

fn grant_with(metadata: Value) -> String {
    json!({"key": "k1", "limits": {}, "metadata": metadata}).to_string()
}

fn trace_tags(row: &stockyard::store::TraceRecord) -> Vec<String> {
    row.tags
        .as_deref()
        .map(|t| serde_json::from_str(t).unwrap())
        .unwrap_or_default()
}

#[tokio::test]
async fn tags_from_header_key_metadata_and_rules_reach_the_trace_and_spend_by_tag() {
    let h = Harness::start_with_modules(&admin_toml(TAGS_ON), &[&GRANTS]).await;
    let grant = grant_with(json!({"tags": "billing, nightly", "team_name": "search"}));
    let answer = h
        .client
        .call(
            Method::POST,
            "/v1/chat/completions",
            &chat("gpt-4o-mini", "hi", false),
            &[
                ("x-stockyard-tags", "exp-7,checkout"),
                ("x-test-grant", &grant),
            ],
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    // A second request: another model (no rule tag), only a header tag.
    let answer = h
        .client
        .call(
            Method::POST,
            "/v1/chat/completions",
            &chat("gpt-4o", "hi", false),
            &[("x-stockyard-tags", "checkout")],
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());

    let rows = h.traces(2).await;
    assert_eq!(
        trace_tags(&rows[0]),
        [
            "exp-7",
            "checkout",
            "billing",
            "nightly",
            "team_name:search",
            "mini"
        ]
    );
    assert_eq!(trace_tags(&rows[1]), ["checkout"]);

    let report = h
        .client
        .admin(Method::GET, "/admin/spend?by=tag&since=1d", "")
        .await;
    assert_eq!(report.status, 200, "{}", report.text());
    let report = report.json();
    let requests = |tag: &str| {
        report["rows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["key"] == tag)
            .map(|r| r["requests"].as_i64().unwrap())
    };
    assert_eq!(requests("checkout"), Some(2));
    assert_eq!(requests("mini"), Some(1));
    assert_eq!(requests("team_name:search"), Some(1));
    assert_eq!(requests("nope"), None);
    let checkout_cost = report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["key"] == "checkout")
        .unwrap()["cost_nanos"]
        .as_i64()
        .unwrap();
    assert_eq!(checkout_cost, rows[0].cost_nanos + rows[1].cost_nanos);
    assert!(checkout_cost > 0);

    // The CLI reads the same rollups.
    let db = h.dir.path().join("stockyard.db");
    let out = common::binary::stockyard(&db)
        .args(["spend", "--by", "tag", "--since", "1d", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let checkout: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|r| r["key"] == "checkout")
        .collect();
    assert_eq!(checkout.len(), 1, "{text}");
    assert_eq!(checkout[0]["requests"], 2);
}

#[tokio::test]
async fn a_malformed_header_tag_is_refused_naming_the_header() {
    let h = Harness::start_with(&admin_toml(TAGS_ON)).await;
    let answer = h
        .client
        .call(
            Method::POST,
            "/v1/chat/completions",
            &chat("gpt-4o-mini", "hi", false),
            &[("x-stockyard-tags", "fine,not fine")],
        )
        .await;
    assert_eq!(answer.status, 400, "{}", answer.text());
    let error = &answer.json()["error"];
    assert_eq!(error["param"], "x-stockyard-tags");
    assert!(
        error["message"].as_str().unwrap().contains("not fine"),
        "{error}"
    );
    assert_eq!(h.mock.request_count(), 0);
}

#[tokio::test]
async fn tags_toggle_at_runtime_with_a_ledger_entry_and_config_errors_name_the_field() {
    let h = Harness::start_with(&admin_toml("")).await;
    let body = chat("gpt-4o-mini", "hi", false);
    let headers = [("x-stockyard-tags", "a1")];
    h.client
        .call(Method::POST, "/v1/chat/completions", &body, &headers)
        .await;
    assert_eq!(h.traces(1).await[0].tags, None, "off by default");

    let answer = h
        .client
        .admin(
            Method::PUT,
            "/admin/modules/tags",
            r#"{"config": {"max_tags": 0}}"#,
        )
        .await;
    assert_eq!(answer.status, 400);
    let message = answer.json()["error"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(message.contains("modules.tags: max_tags"), "{message}");

    let answer = h
        .client
        .admin(Method::PUT, "/admin/modules/tags", r#"{"enabled": true}"#)
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    h.client
        .call(Method::POST, "/v1/chat/completions", &body, &headers)
        .await;
    assert_eq!(trace_tags(&h.traces(2).await[1]), ["a1"]);

    let audit = h.client.admin(Method::GET, "/admin/audit", "").await.json();
    let entries = audit["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "the refused change left no entry");
    assert_eq!(entries[0]["action"], "module.update");
    assert_eq!(entries[0]["target"], "tags");
    assert_eq!(entries[0]["details"]["after"]["enabled"], true);

    let modules = h
        .client
        .admin(Method::GET, "/admin/modules", "")
        .await
        .json();
    let tags = modules["modules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "tags")
        .unwrap()
        .clone();
    assert_eq!(tags["enabled"], true);
    assert!(tags["description"].as_str().unwrap().contains("tags"));
}
