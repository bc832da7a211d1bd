//! Budgets over real sockets: a burst of 50 concurrent requests against a budget of a few cents
//! stays within the bound the README states; the refusal's message; a team's budget on top of its
//! keys'; spend that survives a restart; threshold alerts recorded once and posted to a webhook.
//!
//! Prices are set so one token costs $0.0005 (5e5 nano-dollars). The mock counts a one-word
//! message as 5 prompt tokens and answers with 5 words by default; the proxy's estimate of the
//! same prompt is 7 tokens (1 + OpenAI's framing of 6), plus the request's `max_tokens`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::grants::{GRANTS, grant};
use common::{Answer, Harness, TestClient};
use hyper::Method;
use serde_json::{Value, json};
use stockyard::store::counters::calendar::rfc3339;
use stockyard::store::{SpendBy, day_start, now_ms};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PRICES: &str =
    "[prices.\"gpt-4o-mini\"]\ninput_per_million = 500.0\noutput_per_million = 500.0\n";
const TOKEN: i64 = 500_000;
const DAY: i64 = 86_400_000;

async fn start(extra: &str) -> Harness {
    Harness::start_with_modules(&format!("{PRICES}{extra}"), &[&GRANTS]).await
}

async fn restart(h: Harness) -> Harness {
    let Harness {
        server, mock, dir, ..
    } = h;
    server.stop().await.unwrap();
    let config = common::config_for(PRICES, &mock.base_url(), &dir);
    Harness::start_on_with(config, mock, dir, &[&GRANTS]).await
}

fn body(max_tokens: u64, mock: Value) -> String {
    json!({
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "hello"}],
        "max_tokens": max_tokens,
        "mock": mock,
    })
    .to_string()
}

async fn call(client: &TestClient, grant: &str, body: &str) -> Answer {
    call_at(client, "/v1/chat/completions", grant, body).await
}

async fn call_at(client: &TestClient, path: &str, grant: &str, body: &str) -> Answer {
    client
        .call(Method::POST, path, body, &[("x-test-grant", grant)])
        .await
}

fn budget(limit_nanos: i64, period: &str, alerts: &[u8]) -> Value {
    json!({"budget": {"limit_nanos": limit_nanos, "period": period, "alert_percents": alerts}})
}

/// The recorded spend of `id` grouped `by`, from the rollups, once the writer committed.
async fn recorded(h: &Harness, by: SpendBy, id: &str) -> i64 {
    h.server.app.writer.flush().await.unwrap();
    let rows = h.store().spend.spend(by, 0).unwrap();
    rows.iter()
        .find(|r| r.key == id)
        .map_or(0, |r| r.cost_nanos)
}

/// Sends `n` requests at once, each its own connection; returns the answers.
async fn burst(h: &Harness, n: usize, grant: &str, body: &str) -> Vec<Answer> {
    burst_at(h, n, "/v1/chat/completions", grant, body).await
}

/// [`burst`] to another endpoint.
async fn burst_at(h: &Harness, n: usize, path: &str, grant: &str, body: &str) -> Vec<Answer> {
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let client = TestClient::new(h.client.base.clone());
            let (path, grant, body) = (path.to_string(), grant.to_string(), body.to_string());
            tokio::spawn(async move { call_at(&client, &path, &grant, &body).await })
        })
        .collect();
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.unwrap());
    }
    answers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_of_50_never_passes_a_five_cent_budget_when_estimates_hold() {
    let h = start("").await;
    let limit = 100 * TOKEN; // $0.05
    let g = grant("vk_burst", budget(limit, "day", &[]), None);
    // Every request is held upstream long enough for the whole burst to be in flight at once.
    let answers = burst(&h, 50, &g, &body(5, json!({"headers_delay_ms": 300}))).await;
    let ok = answers.iter().filter(|a| a.status == 200).count() as i64;
    let refused: Vec<&Answer> = answers.iter().filter(|a| a.status == 429).collect();
    assert_eq!(ok as usize + refused.len(), 50);
    // Each holds 12 tokens and costs 10: 8 fit while all are in flight (9 if one settled first).
    assert!((8..=9).contains(&ok), "{ok} admitted");
    for answer in refused {
        assert_eq!(answer.json()["error"]["code"], "insufficient_quota");
    }
    let spent = recorded(&h, SpendBy::Key, "vk_burst").await;
    assert_eq!(spent, ok * 10 * TOKEN);
    assert!(spent <= limit, "spent {spent} over the limit {limit}");
    assert_eq!(
        h.mock.request_count() as i64,
        ok,
        "refused requests never went upstream"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_whose_answers_run_past_their_estimates_overshoots_by_at_most_the_bound() {
    let h = start("").await;
    let limit = 100 * TOKEN;
    let g = grant("vk_long", budget(limit, "day", &[]), None);
    // The upstream ignores max_tokens: 10 words where 2 were allowed. Each request holds
    // 7 + 2 = 9 tokens and costs 5 + 10 = 15: 6 tokens past its estimate.
    let mock = json!({"headers_delay_ms": 300, "content": "one two three four five six seven eight nine ten"});
    let answers = burst(&h, 50, &g, &body(2, mock)).await;
    let ok = answers.iter().filter(|a| a.status == 200).count() as i64;
    assert!(ok >= 1);
    let spent = recorded(&h, SpendBy::Key, "vk_long").await;
    assert_eq!(spent, ok * 15 * TOKEN);
    let overshoot = spent - limit;
    // The README's bound: the sum, over the requests admitted, of cost beyond the estimate.
    let bound = ok * 6 * TOKEN;
    assert!(
        overshoot > 0,
        "this burst does overshoot ({spent} of {limit})"
    );
    assert!(
        overshoot <= bound,
        "overshoot {overshoot} past the bound {bound} ({ok} admitted)"
    );
    // Once spent, the key is refused.
    let after = call(&h.client, &g, &body(2, json!({}))).await;
    assert_eq!(after.status, 429);
}

#[tokio::test]
async fn the_refusal_gives_the_budget_the_spend_and_the_reset_time() {
    let h = start("").await;
    let g = grant("vk_msg", budget(100 * TOKEN, "day", &[]), None);
    // $0.005 each, holding $0.006: 9 fit in $0.05.
    for _ in 0..9 {
        let answer = call(&h.client, &g, &body(5, json!({}))).await;
        assert_eq!(answer.status, 200, "{}", answer.text());
    }
    let refused = call(&h.client, &g, &body(5, json!({}))).await;
    assert_eq!(refused.status, 429);
    let error = &refused.json()["error"];
    assert_eq!(error["code"], "insufficient_quota");
    assert_eq!(error["type"], "insufficient_quota");
    let tomorrow = rfc3339(day_start(now_ms()) + DAY);
    assert_eq!(
        error["message"].as_str().unwrap(),
        format!(
            "budget exceeded: key vk_msg has a budget of $0.05 per day; spent $0.045 (+ $0.00 held \
             by requests in flight), and this request may cost up to $0.006; the budget resets at \
             {tomorrow}"
        )
    );
    assert_eq!(h.mock.request_count(), 9);
    // A cheaper request still fits: the budget refuses by estimate, not by a flag.
    let small = call(&h.client, &g, &body(1, json!({"content": "ok"}))).await;
    assert_eq!(small.status, 200, "{}", small.text());
}

#[tokio::test]
async fn a_team_budget_applies_on_top_of_each_key_budget() {
    let h = start("").await;
    let team = Some(("red", budget(60 * TOKEN, "week", &[])));
    let a = grant("vk_a", budget(1000 * TOKEN, "day", &[]), team.clone());
    let b = grant("vk_b", json!({}), team);
    for _ in 0..5 {
        assert_eq!(call(&h.client, &a, &body(5, json!({}))).await.status, 200);
    }
    // The team has spent $0.025 of $0.03: key b's own (absent) budget is no help.
    let refused = call(&h.client, &b, &body(5, json!({}))).await;
    assert_eq!(refused.status, 429);
    let message = refused.json()["error"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        message
            .starts_with("budget exceeded: team red has a budget of $0.03 per week; spent $0.025"),
        "{message}"
    );
    assert!(message.contains("T00:00:00Z"), "{message}");
    // A key outside the team is not held by it.
    let other = grant("vk_c", budget(1000 * TOKEN, "day", &[]), None);
    assert_eq!(
        call(&h.client, &other, &body(5, json!({}))).await.status,
        200
    );
    assert_eq!(recorded(&h, SpendBy::Team, "red").await, 50 * TOKEN);
    assert_eq!(recorded(&h, SpendBy::Key, "vk_a").await, 50 * TOKEN);
}

#[tokio::test]
async fn a_restart_keeps_the_period_spend() {
    let h = start("").await;
    let g = grant("vk_restart", budget(100 * TOKEN, "month", &[]), None);
    for _ in 0..9 {
        assert_eq!(call(&h.client, &g, &body(5, json!({}))).await.status, 200);
    }
    let h = restart(h).await;
    let refused = call(&h.client, &g, &body(5, json!({}))).await;
    assert_eq!(refused.status, 429, "{}", refused.text());
    let message = refused.json()["error"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(message.contains("per month; spent $0.045"), "{message}");
}

/// A webhook receiver on 127.0.0.1:0 that answers 200 and passes each body on.
async fn webhook() -> (String, tokio::sync::mpsc::UnboundedReceiver<String>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks/budget", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let read =
                        tokio::time::timeout(Duration::from_secs(5), socket.read(&mut chunk));
                    let Ok(Ok(n)) = read.await else { return };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    if let Some((head, body)) = text.split_once("\r\n\r\n") {
                        let length = head
                            .lines()
                            .find_map(|l| {
                                let (k, v) = l.split_once(':')?;
                                k.eq_ignore_ascii_case("content-length")
                                    .then(|| v.trim().parse::<usize>().ok())?
                            })
                            .unwrap_or(0);
                        if body.len() >= length {
                            let _ = tx.send(body.to_string());
                            let _ = socket
                                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                                .await;
                            return;
                        }
                    }
                }
            });
        }
    });
    (url, rx)
}

#[tokio::test]
async fn thresholds_alert_once_per_crossing_recorded_and_posted() {
    let (url, mut posts) = webhook().await;
    let h = start(&format!("[modules.budgets]\nwebhook_url = \"{url}\"\n")).await;
    let g = grant("vk_alert", budget(200 * TOKEN, "day", &[20, 50]), None);
    // 10 tokens each: 20% is crossed by the 4th request, 50% by the 10th.
    for _ in 0..11 {
        assert_eq!(call(&h.client, &g, &body(5, json!({}))).await.status, 200);
    }
    let mut bodies = Vec::new();
    for _ in 0..2 {
        let post = tokio::time::timeout(Duration::from_secs(10), posts.recv()).await;
        bodies.push(post.expect("no webhook post within 10 s").unwrap());
    }
    let percents: Vec<u64> = bodies
        .iter()
        .map(|b| serde_json::from_str::<Value>(b).unwrap())
        .map(|v| {
            assert_eq!(v["event"], "budget.threshold");
            assert_eq!(v["subject"], "vk_alert");
            assert!(
                v["message"]
                    .as_str()
                    .unwrap()
                    .contains("vk_alert has spent")
            );
            v["percent"].as_u64().unwrap()
        })
        .collect();
    let mut sorted = percents.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, [20, 50]);
    let late = tokio::time::timeout(Duration::from_millis(500), posts.recv()).await;
    assert!(late.is_err(), "a third post: {late:?}");

    h.server.app.writer.flush().await.unwrap();
    let alerts = h.store().spend.budget_alerts(0).unwrap();
    let recorded: Vec<(u8, i64)> = alerts.iter().map(|a| (a.percent, a.spend_nanos)).collect();
    assert_eq!(recorded, [(20, 40 * TOKEN), (50, 100 * TOKEN)]);
}

/// Image requests are held back at their price per image before they go upstream, so a burst
/// cannot spend past the budget any more than chat can (dall-e-3 at 1024x1024: $0.04 an image).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_of_image_requests_is_held_to_the_budget_by_the_price_per_image() {
    let h = start("").await;
    let limit: i64 = 100_000_000; // $0.10: two images fit, a third does not
    let g = grant("vk_images", budget(limit, "day", &[]), None);
    let body = json!({"model": "dall-e-3", "prompt": "a cat", "n": 1, "size": "1024x1024",
        "mock": {"headers_delay_ms": 300}})
    .to_string();
    let mut ok = 0;
    for answer in burst_at(&h, 20, "/v1/images/generations", &g, &body).await {
        match answer.status.as_u16() {
            200 => ok += 1,
            429 => {
                let message = answer.json()["error"]["message"].to_string();
                assert!(message.contains("$0.04"), "{message}");
            }
            other => panic!("{other}: {}", answer.text()),
        }
    }
    assert_eq!(ok, 2, "{ok} admitted");
    let spent = recorded(&h, SpendBy::Key, "vk_images").await;
    assert!(spent <= limit, "spent {spent} over the limit {limit}");
    assert_eq!(spent, 2 * 40_000_000);
}

/// What keys spend while the module is off still counts once it is back on: the book is read
/// afresh from the spend rollups, which went on recording.
#[tokio::test]
async fn spend_while_the_module_was_off_counts_when_it_is_back_on() {
    let h = start(&format!("[admin]\nkey = \"{}\"\n", common::ADMIN_KEY)).await;
    let limit = 100 * TOKEN;
    let g = grant("vk_toggle", budget(limit, "day", &[]), None);
    let one = body(5, json!({}));
    for _ in 0..4 {
        assert_eq!(call(&h.client, &g, &one).await.status, 200);
    }
    let toggle = |enabled: bool| {
        let h = &h;
        async move {
            let answer = h
                .client
                .admin(
                    Method::PUT,
                    "/admin/modules/budgets",
                    &json!({ "enabled": enabled }).to_string(),
                )
                .await;
            assert_eq!(answer.status, 200, "{}", answer.text());
        }
    };
    toggle(false).await;
    for _ in 0..5 {
        assert_eq!(call(&h.client, &g, &one).await.status, 200);
    }
    assert_eq!(recorded(&h, SpendBy::Key, "vk_toggle").await, 90 * TOKEN);
    toggle(true).await;
    // 90 spent + 12 held would pass 100.
    let answer = call(&h.client, &g, &one).await;
    assert_eq!(answer.status, 429, "{}", answer.text());
    assert_eq!(answer.json()["error"]["code"], "insufficient_quota");
}

/// An image model priced by the token (gpt-image-1: $40 per million output tokens) holds each
/// image's output tokens at its quality: at low quality 500 an image ($0.02), so a $0.05 budget
/// admits two of a burst of 20 (before, only the prompt was held and all 20 passed).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn image_models_priced_by_the_token_hold_each_images_output_tokens() {
    let h = start("").await;
    let limit: i64 = 50_000_000;
    let g = grant("vk_gpt_image", budget(limit, "day", &[]), None);
    let body = json!({"model": "gpt-image-1", "prompt": "a cat", "n": 1, "quality": "low",
        "mock": {"headers_delay_ms": 300}})
    .to_string();
    let mut ok = 0;
    for answer in burst_at(&h, 20, "/v1/images/generations", &g, &body).await {
        match answer.status.as_u16() {
            200 => ok += 1,
            429 => {}
            other => panic!("{other}: {}", answer.text()),
        }
    }
    assert_eq!(ok, 2, "{ok} admitted");
    let spent = recorded(&h, SpendBy::Key, "vk_gpt_image").await;
    assert!(spent > 0 && spent <= limit, "spent {spent} of {limit}");
}
