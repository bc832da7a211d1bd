//! Rate limits over real sockets, on virtual keys made through the admin API: the
//! `x-ratelimit-*` headers on answers (streamed too), refusals with `retry-after`, windows that
//! reset, counts that hold across a restart on the same database, a team's limits on top of its
//! keys', and per-model limits from the module's config with token counts corrected after.
//!
//! A one-word chat to `gpt-4o-mini` is estimated at 7 prompt tokens (1 + OpenAI's framing) plus
//! its `max_tokens`; the mock reports 5 prompt and 5 completion tokens.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{ADMIN_KEY, Answer, Harness};
use hyper::Method;
use serde_json::{Value, json};
use stockyard::store::now_ms;

fn admin_toml() -> String {
    format!("[admin]\nkey = \"{ADMIN_KEY}\"\n")
}

async fn create(h: &Harness, path: &str, body: Value) -> Value {
    let answer = h.client.admin(Method::POST, path, &body.to_string()).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    answer.json()
}

/// A virtual key with `limits` (in `team` if given); returns the key.
async fn key(h: &Harness, name: &str, limits: Value, team: Option<&str>) -> String {
    let mut body = json!({"name": name, "limits": limits});
    if let Some(team) = team {
        body["team"] = json!(team);
    }
    create(h, "/admin/keys", body).await["key"]
        .as_str()
        .unwrap()
        .to_string()
}

fn body(stream: bool) -> String {
    json!({
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "hello"}],
        "max_tokens": 5,
        "stream": stream,
    })
    .to_string()
}

async fn call(h: &Harness, key: Option<&str>, stream: bool) -> Answer {
    let auth = key.map(|k| format!("Bearer {k}"));
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("authorization", a.as_str())).collect();
    h.client
        .call(
            Method::POST,
            "/v1/chat/completions",
            &body(stream),
            &headers,
        )
        .await
}

/// Waits (less than `window_ms`) until at least `room_ms` are left in the current window, so a
/// test's requests all land in one window.
async fn in_one_window(window_ms: i64, room_ms: i64) {
    let left = window_ms - now_ms().rem_euclid(window_ms);
    if left < room_ms {
        tokio::time::sleep(Duration::from_millis(left as u64 + 20)).await;
    }
}

/// Waits until the current window is over (less than `window_ms`).
async fn next_window(window_ms: i64) {
    let left = window_ms - now_ms().rem_euclid(window_ms);
    tokio::time::sleep(Duration::from_millis(left as u64 + 20)).await;
}

fn header<'a>(answer: &'a Answer, name: &str) -> &'a str {
    answer
        .header(name)
        .unwrap_or_else(|| panic!("no {name}: {:?}", answer.headers))
}

#[tokio::test]
async fn limits_return_the_headers_and_refuse_with_retry_after() {
    let h = Harness::start_with(&admin_toml()).await;
    let k = key(&h, "ci", json!({"rpm": 4, "tpm": 10000}), None).await;
    in_one_window(60_000, 5_000).await;

    let first = call(&h, Some(&k), false).await;
    assert_eq!(first.status, 200, "{}", first.text());
    assert_eq!(header(&first, "x-ratelimit-limit-requests"), "4");
    assert_eq!(header(&first, "x-ratelimit-remaining-requests"), "3");
    assert_eq!(header(&first, "x-ratelimit-limit-tokens"), "10000");
    assert_eq!(header(&first, "x-ratelimit-remaining-tokens"), "9988");
    let reset = header(&first, "x-ratelimit-reset-requests");
    assert!(reset.ends_with('s') && reset.len() <= 6, "{reset}");
    assert!(first.header("x-ratelimit-reset-tokens").is_some());

    // The first request's 12 estimated tokens became the 10 it used.
    let second = call(&h, Some(&k), false).await;
    assert_eq!(header(&second, "x-ratelimit-remaining-tokens"), "9978");
    // A stream's head carries them too.
    let stream = call(&h, Some(&k), true).await;
    assert_eq!(stream.status, 200);
    assert_eq!(header(&stream, "x-ratelimit-remaining-requests"), "1");
    assert_eq!(call(&h, Some(&k), false).await.status, 200);

    let refused = call(&h, Some(&k), false).await;
    assert_eq!(refused.status, 429, "{}", refused.text());
    let error = &refused.json()["error"];
    assert_eq!(error["code"], "rate_limit_exceeded");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("allows 4 requests per minute"),
        "{message}"
    );
    let retry: u64 = header(&refused, "retry-after").parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(header(&refused, "x-ratelimit-remaining-requests"), "0");
    assert_eq!(
        h.mock.request_count(),
        4,
        "the refused request never went upstream"
    );
}

#[tokio::test]
async fn limits_reset_when_the_window_passes() {
    let toml = format!("{}[modules.rate_limits]\nwindow_ms = 1000\n", admin_toml());
    let h = Harness::start_with(&toml).await;
    let k = key(&h, "short", json!({"rpm": 2}), None).await;
    in_one_window(1000, 700).await;
    assert_eq!(call(&h, Some(&k), false).await.status, 200);
    assert_eq!(call(&h, Some(&k), false).await.status, 200);
    let refused = call(&h, Some(&k), false).await;
    assert_eq!(refused.status, 429);
    assert_eq!(header(&refused, "retry-after"), "1");
    let reset = header(&refused, "x-ratelimit-reset-requests");
    assert!(reset.ends_with("ms") || reset == "1s", "{reset}");
    assert!(
        refused.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("per 1000 ms window")
    );
    // Past the window's end (at most a second away), the key may call again.
    next_window(1000).await;
    let again = call(&h, Some(&k), false).await;
    assert_eq!(again.status, 200, "{}", again.text());
    assert_eq!(header(&again, "x-ratelimit-remaining-requests"), "1");
}

#[tokio::test]
async fn limits_hold_across_a_restart_on_the_same_database() {
    let h = Harness::start_with(&admin_toml()).await;
    let k = key(&h, "steady", json!({"rpm": 2}), None).await;
    let t = key(&h, "tokens", json!({"tpm": 30}), None).await;
    in_one_window(60_000, 5_000).await;
    for key in [&k, &k, &t, &t] {
        assert_eq!(call(&h, Some(key), false).await.status, 200);
    }

    let h = h.restart(&admin_toml()).await;
    let refused = call(&h, Some(&k), false).await;
    assert_eq!(refused.status, 429, "{}", refused.text());
    assert!(
        refused.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("allows 2 requests per minute")
    );
    // The token count came back as well: 2 x 10 used, and 12 more do not fit in 30.
    let refused = call(&h, Some(&t), false).await;
    assert_eq!(refused.status, 429, "{}", refused.text());
    let message = refused.json()["error"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(message.contains("(20 used,"), "{message}");
}

#[tokio::test]
async fn a_team_limit_applies_on_top_of_its_keys_limits() {
    let h = Harness::start_with(&admin_toml()).await;
    create(
        &h,
        "/admin/teams",
        json!({"name": "red", "limits": {"rpm": 2}}),
    )
    .await;
    let a = key(&h, "a", json!({"rpm": 10}), Some("red")).await;
    let b = key(&h, "b", json!({"rpm": 10}), Some("red")).await;
    let c = key(&h, "c", json!({"rpm": 10}), None).await;
    in_one_window(60_000, 5_000).await;
    let first = call(&h, Some(&a), false).await;
    assert_eq!(first.status, 200);
    // The tighter of the key's and the team's limits is what the headers show.
    assert_eq!(header(&first, "x-ratelimit-limit-requests"), "2");
    assert_eq!(header(&first, "x-ratelimit-remaining-requests"), "1");
    assert_eq!(call(&h, Some(&b), false).await.status, 200);
    let refused = call(&h, Some(&a), false).await;
    assert_eq!(refused.status, 429);
    let message = refused.json()["error"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(message.contains("team red allows 2 requests"), "{message}");
    // A key outside the team is not held by it; the refused request held nothing of a's.
    assert_eq!(call(&h, Some(&c), false).await.status, 200);
}

#[tokio::test]
async fn model_limits_come_from_config_and_token_counts_are_corrected_after() {
    let toml = "[modules.rate_limits.models.\"gpt-4o-mini\"]\nrpm = 100\ntpm = 34\n";
    let h = Harness::start_with(toml).await;
    in_one_window(60_000, 5_000).await;
    assert_eq!(call(&h, None, false).await.status, 200);
    assert_eq!(call(&h, None, false).await.status, 200);
    // 2 x 10 used (not 2 x 12 estimated): 20 + 12 fits in 34.
    let third = call(&h, None, false).await;
    assert_eq!(third.status, 200, "{}", third.text());
    assert_eq!(header(&third, "x-ratelimit-limit-tokens"), "34");
    assert_eq!(header(&third, "x-ratelimit-remaining-tokens"), "2");
    let refused = call(&h, None, false).await;
    assert_eq!(refused.status, 429);
    let message = refused.json()["error"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        message.contains("model gpt-4o-mini allows 34 tokens per minute (30 used, and this request may use up to 12)"),
        "{message}"
    );
}
