//! `fixtures` over real sockets: answers from files and from the config, by model and exact or
//! regex prompt, reach Chat, Messages and Responses clients, streamed or not, with no upstream
//! call; a miss passes or is refused as configured; record mode writes the real answer as a file
//! that then replays; config errors name the field; a toggle applies to the next request and is
//! audited.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::catalogue::{admin_toml, assert_config_refused, audit_entries, change, listed_enabled};
use common::{Harness, chat, sse_data};
use serde_json::{Value, json};

const NAME: &str = "fixtures";

/// A fixtures directory beside the test's database, with two files.
fn fixture_dir(h_dir: &std::path::Path) -> String {
    let dir = h_dir.join("fixtures");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("greeting.json"),
        json!({"model": "gpt-4o*", "prompt": "Hello?", "answer": "Hello from a fixture file."})
            .to_string(),
    )
    .unwrap();
    std::fs::write(
        dir.join("weather.json"),
        json!([{"prompt_regex": "(?i)weather in \\w+", "answer": "Always sunny in fixtures."}])
            .to_string(),
    )
    .unwrap();
    dir.display().to_string()
}

async fn start_with_dir(extra: &str) -> (Harness, String) {
    let h = Harness::start_with(&admin_toml("")).await;
    let dir = fixture_dir(h.dir.path());
    let toml = admin_toml(&format!(
        "[modules.fixtures]\nenabled = true\ndir = \"{dir}\"\n{extra}"
    ));
    (h.restart(&toml).await, dir)
}

fn streamed_text(body: &str) -> String {
    sse_data(body)
        .iter()
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter_map(|c| {
            c["choices"][0]["delta"]["content"]
                .as_str()
                .map(String::from)
        })
        .collect()
}

#[tokio::test]
async fn file_fixtures_answer_every_client_format_streamed_or_not_without_the_upstream() {
    let (h, _dir) = start_with_dir("").await;
    let answer = h
        .client
        .post(
            "/v1/chat/completions",
            &chat("gpt-4o-mini", "Hello?", false),
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let body = answer.json();
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "Hello from a fixture file."
    );
    assert_eq!(body["model"], "gpt-4o-mini");
    assert!(body["usage"]["completion_tokens"].as_u64().unwrap() > 0);

    let answer = h
        .client
        .post(
            "/v1/chat/completions",
            &chat("gpt-4o-mini", "the weather in Oslo", true),
        )
        .await;
    assert_eq!(streamed_text(&answer.text()), "Always sunny in fixtures.");
    assert!(answer.text().contains("[DONE]"));

    let messages = |stream: bool| {
        json!({"model": "claude-sonnet-4-5", "max_tokens": 50, "stream": stream,
            "messages": [{"role": "user", "content": "Weather in Rome?"}]})
        .to_string()
    };
    let answer = h.client.post("/v1/messages", &messages(false)).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(
        answer.json()["content"][0]["text"],
        "Always sunny in fixtures."
    );
    let answer = h.client.post("/v1/messages", &messages(true)).await;
    assert!(
        answer.text().contains("event: message_stop"),
        "{}",
        answer.text()
    );
    assert!(answer.text().contains("Always sunny"), "{}", answer.text());

    let responses = json!({"model": "gpt-4o-mini", "input": "Hello?"}).to_string();
    let answer = h.client.post("/v1/responses", &responses).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert!(
        answer.text().contains("Hello from a fixture file."),
        "{}",
        answer.text()
    );

    assert_eq!(
        h.mock.request_count(),
        0,
        "no fixture request reached the provider"
    );
    let traces = h.traces(5).await;
    assert!(
        traces
            .iter()
            .all(|t| t.answered_by.as_deref() == Some("fixtures"))
    );
}

#[tokio::test]
async fn a_miss_passes_or_is_refused_and_config_fixtures_match_first() {
    let (h, _dir) = start_with_dir("").await;
    let answer = h
        .client
        .post(
            "/v1/chat/completions",
            &chat("gpt-4o-mini", "unmatched", false),
        )
        .await;
    assert_eq!(answer.status, 200);
    assert_eq!(h.mock.request_count(), 1, "a miss went upstream");

    let answer = change(
        &h,
        NAME,
        json!({"config": {"on_miss": "refuse",
            "fixtures": [{"model": "gpt-4o-mini", "prompt": "Hello?", "answer": "From the config."}]}}),
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let answer = h
        .client
        .post(
            "/v1/chat/completions",
            &chat("gpt-4o-mini", "Hello?", false),
        )
        .await;
    assert_eq!(
        answer.json()["choices"][0]["message"]["content"],
        "From the config."
    );
    let refused = h
        .client
        .post(
            "/v1/chat/completions",
            &chat("gpt-4o-mini", "unmatched", false),
        )
        .await;
    assert_eq!(refused.status, 400);
    assert!(refused.text().contains("on_miss"), "{}", refused.text());
    assert_eq!(h.mock.request_count(), 1);
}

#[tokio::test]
async fn record_mode_writes_real_answers_that_then_replay() {
    let h = Harness::start_with(&admin_toml("")).await;
    let dir = h.dir.path().join("recorded").display().to_string();
    let answer = change(
        &h,
        NAME,
        json!({"enabled": true, "config": {"mode": "record", "dir": dir}}),
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let live = h
        .client
        .post(
            "/v1/chat/completions",
            &chat("gpt-4o-mini", "Record me", false),
        )
        .await;
    assert_eq!(live.status, 200);
    let streamed = h
        .client
        .post(
            "/v1/chat/completions",
            &chat("gpt-4o-mini", "Record my stream", true),
        )
        .await;
    assert_eq!(streamed.status, 200);
    assert_eq!(h.mock.request_count(), 2);

    // The files land off the request path: wait for them (bounded).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let count = std::fs::read_dir(&dir)
            .map(|d| {
                d.filter_map(Result::ok)
                    .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
                    .count()
            })
            .unwrap_or(0);
        if count == 2 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{count} fixture files after 10 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let answer = change(
        &h,
        NAME,
        json!({"config": {"mode": "replay", "on_miss": "refuse"}}),
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let replayed = h
        .client
        .post(
            "/v1/chat/completions",
            &chat("gpt-4o-mini", "Record me", false),
        )
        .await;
    assert_eq!(replayed.status, 200, "{}", replayed.text());
    assert_eq!(
        replayed.json()["choices"][0]["message"]["content"],
        live.json()["choices"][0]["message"]["content"]
    );
    let replayed = h
        .client
        .post(
            "/v1/chat/completions",
            &chat("gpt-4o-mini", "Record my stream", true),
        )
        .await;
    assert_eq!(
        streamed_text(&replayed.text()),
        streamed_text(&streamed.text())
    );
    assert!(!streamed_text(&replayed.text()).is_empty());
    assert_eq!(
        h.mock.request_count(),
        2,
        "replays never reached the provider"
    );
}

#[tokio::test]
async fn config_errors_name_the_field_and_a_toggle_applies_next_request_and_is_audited() {
    let h = Harness::start_with(&admin_toml("")).await;
    assert!(!listed_enabled(&h, NAME).await, "disabled by default");
    assert_config_refused(
        &h,
        NAME,
        json!({"fixtures": [{"prompt_regex": "(", "answer": "x"}]}),
        "fixtures[0].prompt_regex",
    )
    .await;
    assert_config_refused(&h, NAME, json!({"mode": "record"}), "dir").await;
    assert_config_refused(
        &h,
        NAME,
        json!({"fixtures": [{"prompt": "x"}]}),
        "fixtures[0]",
    )
    .await;
    // A bad file in the directory is named with its field.
    let dir = h.dir.path().join("bad");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("broken.json"), r#"{"prompt": "x", "answr": "y"}"#).unwrap();
    let refused = change(
        &h,
        NAME,
        json!({"enabled": true, "config": {"dir": dir.display().to_string()}}),
    )
    .await;
    assert_eq!(refused.status, 400, "{}", refused.text());
    assert!(
        refused.text().contains("broken.json") && refused.text().contains("answr"),
        "{}",
        refused.text()
    );
    assert!(audit_entries(&h, NAME).await.is_empty());

    let body = chat("gpt-4o-mini", "canned?", false);
    assert_eq!(h.mock.request_count(), 0);
    h.client.post("/v1/chat/completions", &body).await;
    assert_eq!(h.mock.request_count(), 1);
    let answer = change(
        &h,
        NAME,
        json!({"enabled": true, "config": {"fixtures": [{"prompt": "canned?", "answer": "Yes."}]}}),
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let answer = h.client.post("/v1/chat/completions", &body).await;
    assert_eq!(answer.json()["choices"][0]["message"]["content"], "Yes.");
    assert_eq!(
        change(&h, NAME, json!({"enabled": false})).await.status,
        200
    );
    h.client.post("/v1/chat/completions", &body).await;
    assert_eq!(h.mock.request_count(), 2);
    let entries = audit_entries(&h, NAME).await;
    assert_eq!(entries.len(), 2);
    assert_eq!(
        entries[0]["details"]["after"]["config"]["fixtures"][0]["answer"],
        "Yes."
    );
}
