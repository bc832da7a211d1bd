//! The console in headless Chromium, driven over WebDriver (`common/webdriver.rs`): log in, see
//! the trace a test request just made, filter traces, open a trace, create a key and use it
//! through the proxy, toggle a module and see its effect on the next requests, verify the
//! ledger, watch a request arrive live; a screenshot of each page is written under
//! `target/ui-screenshots/` for review.
//!
//! Skipped, saying why, only where Chromium and its driver are not installed (`.ci/run` installs
//! them).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::webdriver::{self, Browser};
use common::{ADMIN_KEY, Answer, Harness, chat};
use hyper::Method;

async fn chat_as(h: &Harness, key: Option<&str>, model: &str, text: &str) -> Answer {
    let auth = key.map(|k| format!("Bearer {k}"));
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("authorization", a.as_str())).collect();
    h.client
        .call(
            Method::POST,
            "/v1/chat/completions",
            &chat(model, text, false),
            &headers,
        )
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_works_in_a_real_browser() {
    if let Some(why) = webdriver::unavailable() {
        eprintln!("SKIPPED the_console_works_in_a_real_browser: {why}");
        return;
    }
    let h = Harness::start_with(&format!("[admin]\nkey = \"{ADMIN_KEY}\"\n")).await;
    let base = h.client.base.clone();
    assert_eq!(chat_as(&h, None, "gpt-4o-mini", "first").await.status, 200);
    assert_eq!(chat_as(&h, None, "gpt-4o", "second").await.status, 200);
    let traces = h.traces(2).await;
    // The overview's roll-ups are written about once a second; a flush writes them now.
    h.server.app.writer.flush().await.unwrap();
    let (mini, big) = (&traces[0], &traces[1]);
    let browser = Browser::start().await;

    // Log in: a wrong key is refused on the page, the right one lands on the overview.
    browser.goto(&format!("{base}/ui")).await;
    assert!(browser.url().await.ends_with("/ui/login"));
    browser.screenshot("login").await;
    browser.type_into("#key", "admin-key-that-is-wrong").await;
    browser.click("#login").await;
    assert!(
        browser
            .text("#login-error")
            .await
            .contains("not a live admin key")
    );
    browser.type_into("#key", ADMIN_KEY).await;
    browser.click("#login").await;
    browser.find("#tiles").await;
    assert!(browser.url().await.ends_with("/ui"));
    assert_eq!(browser.text("#tile-requests .v").await, "2");
    browser.find("#chart-latency svg").await;
    browser.screenshot("overview").await;

    // The trace list shows both requests; a filter keeps the one asked for.
    browser.goto(&format!("{base}/ui/traces")).await;
    browser.find(&format!("tr[data-id=\"{}\"]", mini.id)).await;
    browser.find(&format!("tr[data-id=\"{}\"]", big.id)).await;
    browser.screenshot("traces").await;
    browser.type_into("#f-model", "gpt-4o").await;
    browser.click("#apply-filters").await;
    browser.find("#f-model[value=\"gpt-4o\"]").await;
    assert_eq!(browser.count("#traces tbody tr").await, 1);
    assert_eq!(
        browser.count(&format!("tr[data-id=\"{}\"]", big.id)).await,
        1
    );
    browser.screenshot("traces-filtered").await;
    browser
        .click(&format!("tr[data-id=\"{}\"] a", big.id))
        .await;
    browser.find("#trace-timings").await;
    assert!(browser.text("#trace-route").await.contains("gpt-4o"));
    browser.screenshot("trace-detail").await;

    // Create a key; it is shown once and works through the proxy; without it, refused.
    browser.goto(&format!("{base}/ui/keys")).await;
    browser.type_into("#new-key-name", "from-the-browser").await;
    browser.click("#create-key").await;
    let key = browser.text("#new-key").await;
    assert!(key.len() > 20, "{key}");
    browser.screenshot("key-created").await;
    assert_eq!(
        chat_as(&h, Some(&key), "gpt-4o-mini", "with my key")
            .await
            .status,
        200
    );
    assert_eq!(chat_as(&h, None, "gpt-4o-mini", "no key").await.status, 401);
    browser.goto(&format!("{base}/ui/keys")).await;
    browser.screenshot("keys").await;

    // Toggle the cache on: the same request twice is answered from it the second time.
    browser.goto(&format!("{base}/ui/modules")).await;
    assert_eq!(browser.text("#state-cache").await, "disabled");
    browser.click("#toggle-cache").await;
    browser.find("#flash").await;
    assert_eq!(browser.text("#state-cache").await, "enabled");
    browser.screenshot("modules").await;
    let first = chat_as(&h, Some(&key), "gpt-4o-mini", "cache me").await;
    let second = chat_as(&h, Some(&key), "gpt-4o-mini", "cache me").await;
    assert_eq!(first.header("x-stockyard-cache"), Some("miss"));
    assert_eq!(second.header("x-stockyard-cache"), Some("hit"));

    // The audit page verifies the chain of these changes.
    browser.goto(&format!("{base}/ui/audit")).await;
    browser.click("#verify").await;
    assert!(
        browser
            .text("#verify-result")
            .await
            .contains("The ledger verifies")
    );
    let ledger = browser.text("#ledger").await;
    assert!(
        ledger.contains("key.create") && ledger.contains("module.update"),
        "{ledger}"
    );
    browser.screenshot("audit").await;

    // Live: a request made while the page is open appears in it.
    browser.goto(&format!("{base}/ui/live")).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !browser.text("#live-status").await.starts_with("connected") {
        assert!(
            tokio::time::Instant::now() < deadline,
            "live stream never connected"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        chat_as(&h, Some(&key), "gpt-4o", "live one").await.status,
        200
    );
    browser.find("#live-rows tr").await;
    assert!(browser.text("#live-rows").await.contains("gpt-4o"));
    browser.screenshot("live").await;

    for page in ["spend", "routing"] {
        browser.goto(&format!("{base}/ui/{page}")).await;
        browser.find("main h1").await;
        browser.screenshot(page).await;
    }
    browser.quit().await;
}
