//! `ip_filter` over real sockets: the test client connects from 127.0.0.1, so lists naming or
//! excluding it decide; `X-Forwarded-For` counts only from a trusted proxy; a per-key list
//! applies to its key alone; the refusal is a 403 in the client's format before any body is read;
//! config errors name the field; a toggle applies to the next request and is audited.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::catalogue::{admin_toml, assert_config_refused, audit_entries, change, listed_enabled};
use common::grants::{GRANTS, grant};
use common::{Answer, Harness, chat};
use hyper::Method;
use serde_json::json;

const NAME: &str = "ip_filter";

async fn post(h: &Harness, path: &str, body: &str, headers: &[(&str, &str)]) -> Answer {
    h.client.call(Method::POST, path, body, headers).await
}

#[tokio::test]
async fn deny_and_allow_lists_decide_by_the_peer_address_in_the_client_s_shape() {
    let h = Harness::start_with(&admin_toml(
        "[modules.ip_filter]\nenabled = true\ndeny = [\"127.0.0.0/8\"]\n",
    ))
    .await;
    let body = chat("gpt-4o-mini", "hi", false);
    let refused = post(&h, "/v1/chat/completions", &body, &[]).await;
    assert_eq!(refused.status, 403, "{}", refused.text());
    let error = &refused.json()["error"];
    assert_eq!(error["code"], "address_not_allowed");
    assert!(error["message"].as_str().unwrap().contains("127.0.0.1"));
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("modules.ip_filter.deny")
    );
    let messages = json!({"model": "gpt-4o-mini", "max_tokens": 10,
        "messages": [{"role": "user", "content": "hi"}]})
    .to_string();
    let refused = post(&h, "/v1/messages", &messages, &[]).await;
    assert_eq!(refused.status, 403);
    assert_eq!(refused.json()["type"], "error");
    assert_eq!(
        refused.json()["error"]["type"],
        "permission_error",
        "{}",
        refused.text()
    );
    assert_eq!(h.mock.request_count(), 0);

    // An allow list that names the peer admits it; one that does not refuses it.
    let answer = change(
        &h,
        NAME,
        json!({"config": {"deny": [], "allow": ["10.0.0.0/8", "127.0.0.1"]}}),
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(
        post(&h, "/v1/chat/completions", &body, &[]).await.status,
        200
    );
    change(&h, NAME, json!({"config": {"allow": ["10.0.0.0/8"]}})).await;
    let refused = post(&h, "/v1/chat/completions", &body, &[]).await;
    assert_eq!(refused.status, 403);
    assert!(
        refused.text().contains("not on the allow list"),
        "{}",
        refused.text()
    );
}

#[tokio::test]
async fn a_forwarded_address_counts_only_from_a_trusted_proxy() {
    let h = Harness::start_with(&admin_toml(
        "[modules.ip_filter]\nenabled = true\ndeny = [\"203.0.113.0/24\"]\n",
    ))
    .await;
    let body = chat("gpt-4o-mini", "hi", false);
    let forwarded = [("x-forwarded-for", "203.0.113.9, 127.0.0.1")];
    // The peer is not trusted: its header proves nothing.
    assert_eq!(
        post(&h, "/v1/chat/completions", &body, &forwarded)
            .await
            .status,
        200
    );
    change(
        &h,
        NAME,
        json!({"config": {"trusted_proxies": ["127.0.0.1/32"]}}),
    )
    .await;
    let refused = post(&h, "/v1/chat/completions", &body, &forwarded).await;
    assert_eq!(refused.status, 403, "{}", refused.text());
    assert!(refused.text().contains("203.0.113.9"));
    // A spoofed leftmost hop is not the client: the rightmost untrusted one is.
    let spoofed = [("x-forwarded-for", "203.0.113.9, 198.51.100.7")];
    assert_eq!(
        post(&h, "/v1/chat/completions", &body, &spoofed)
            .await
            .status,
        200
    );
    // Another header, as configured.
    change(
        &h,
        NAME,
        json!({"config": {"client_ip_header": "x-real-ip"}}),
    )
    .await;
    let real = [("x-real-ip", "203.0.113.50")];
    assert_eq!(
        post(&h, "/v1/chat/completions", &body, &real).await.status,
        403
    );
    assert_eq!(
        post(&h, "/v1/chat/completions", &body, &forwarded)
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn a_key_s_list_applies_to_that_key_alone() {
    let toml = admin_toml(
        "[modules.ip_filter]\nenabled = true\n[modules.ip_filter.keys.k-office]\nallow = [\"192.0.2.0/24\"]\n",
    );
    let h = Harness::start_with_modules(&toml, &[&GRANTS]).await;
    let body = chat("gpt-4o-mini", "hi", false);
    let office = grant("k-office", json!({}), None);
    let other = grant("k-other", json!({}), None);
    let refused = post(
        &h,
        "/v1/chat/completions",
        &body,
        &[("x-test-grant", &office)],
    )
    .await;
    assert_eq!(refused.status, 403, "{}", refused.text());
    assert!(
        refused
            .text()
            .contains("modules.ip_filter.keys.k-office.allow"),
        "{}",
        refused.text()
    );
    let answer = post(
        &h,
        "/v1/chat/completions",
        &body,
        &[("x-test-grant", &other)],
    )
    .await;
    assert_eq!(answer.status, 200);
}

#[tokio::test]
async fn config_errors_name_the_field_and_a_toggle_applies_next_request_and_is_audited() {
    let h = Harness::start_with(&admin_toml("")).await;
    assert!(!listed_enabled(&h, NAME).await, "disabled by default");
    assert_config_refused(
        &h,
        NAME,
        json!({"allow": ["10.0.0.0/8", "nope"]}),
        "allow[1]",
    )
    .await;
    assert_config_refused(
        &h,
        NAME,
        json!({"trusted_proxies": ["1.2.3.4/99"]}),
        "trusted_proxies[0]",
    )
    .await;
    assert_config_refused(
        &h,
        NAME,
        json!({"keys": {"k": {"deny": ["x"]}}}),
        "keys.k.deny[0]",
    )
    .await;

    let body = chat("gpt-4o-mini", "hi", false);
    assert_eq!(
        post(&h, "/v1/chat/completions", &body, &[]).await.status,
        200
    );
    let answer = change(
        &h,
        NAME,
        json!({"enabled": true, "config": {"deny": ["127.0.0.1"]}}),
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(
        post(&h, "/v1/chat/completions", &body, &[]).await.status,
        403
    );
    // The admin API is not behind the filter: it can undo the change.
    assert_eq!(
        change(&h, NAME, json!({"enabled": false})).await.status,
        200
    );
    assert_eq!(
        post(&h, "/v1/chat/completions", &body, &[]).await.status,
        200
    );
    let entries = audit_entries(&h, NAME).await;
    assert_eq!(entries.len(), 2);
    assert_eq!(
        entries[0]["details"]["after"]["config"]["deny"][0],
        "127.0.0.1"
    );
}
