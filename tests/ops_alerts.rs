//! Alerts: a rule fires to an in-process webhook (generic JSON and Slack's shape), is recorded
//! and shown by `stockyard alerts`, stays quiet for its cool-down, also across a restart.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::binary::stockyard;
use common::receiver::Receiver;
use common::{Harness, chat};
use hyper::StatusCode;

fn config(hook: &str, cool_down: &str) -> String {
    format!(
        "[modules.alerts]\ninterval = \"1s\"\ncool_down = \"{cool_down}\"\n\
         webhook_url = \"{hook}/generic\"\nslack_webhook_url = \"{hook}/slack\"\n\
         rules = [\n  {{ name = \"spend\", kind = \"spend_usd\", threshold = 0.000000001, window = \"10m\" }},\n  \
         {{ name = \"errors\", kind = \"error_rate\", threshold = 0.5, window = \"10m\", min_requests = 1 }},\n]\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rule_fires_once_per_cool_down_even_across_a_restart() {
    let hook = Receiver::start().await;
    let h = Harness::start_with(&config(&hook.url, "1h")).await;
    for i in 0..3 {
        let answer = h
            .client
            .post(
                "/v1/chat/completions",
                &chat("gpt-4o-mini", &format!("hi {i}"), false),
            )
            .await;
        assert_eq!(answer.status, StatusCode::OK);
    }
    let got = hook.wait_for(2, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 2, "{got:?}");
    let generic = got.iter().find(|r| r.path == "/generic").unwrap().json();
    assert_eq!(generic["event"], "stockyard.alert");
    assert_eq!(generic["rule"], "spend");
    assert_eq!(generic["kind"], "spend_usd");
    assert!(generic["value"].as_f64().unwrap() > 0.0);
    let slack = got.iter().find(|r| r.path == "/slack").unwrap().json();
    let text = slack["text"].as_str().unwrap();
    assert!(text.contains("spend") && text.contains("spent $"), "{text}");
    // The error-rate rule saw only successes and stays quiet.
    assert!(
        got.iter()
            .all(|r| !String::from_utf8_lossy(&r.body).contains("errors"))
    );

    // Three more evaluations inside the cool-down: nothing more.
    tokio::time::sleep(Duration::from_millis(3_200)).await;
    assert_eq!(hook.received().len(), 2);

    // A restart inside the cool-down does not fire again.
    let h = h.restart(&config(&hook.url, "1h")).await;
    h.client
        .post("/v1/chat/completions", &chat("gpt-4o-mini", "again", false))
        .await;
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert_eq!(hook.received().len(), 2);

    let db = h.dir.path().join("stockyard.db");
    h.server.app.writer.flush().await.unwrap();
    let listed = stockyard(&db).args(["alerts", "--json"]).output().unwrap();
    assert!(listed.status.success(), "{listed:?}");
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&listed.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["rule"], "spend");
    assert_eq!(lines[0]["delivered"], true);
    let table = stockyard(&db).arg("alerts").output().unwrap();
    assert!(String::from_utf8_lossy(&table.stdout).contains("spend_usd"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_the_cool_down_a_rule_fires_again() {
    let hook = Receiver::start().await;
    let h = Harness::start_with(&config(&hook.url, "2s")).await;
    h.client
        .post("/v1/chat/completions", &chat("gpt-4o-mini", "hi", false))
        .await;
    let first = hook.wait_for(2, Duration::from_secs(10)).await;
    assert_eq!(first.len(), 2);
    let again = hook.wait_for(4, Duration::from_secs(10)).await;
    assert_eq!(again.len(), 4, "{again:?}");
}
