//! The exact response cache over real sockets: hit and miss, expiry, byte-budget eviction,
//! namespaces per key, an answer stored from a stream serving a non-streamed request and the
//! reverse, Chat to Messages and back, tool calls replayed exactly, errored and cut streams never
//! stored, `no-cache` and `no-store`, entries surviving a restart, and what the trace records.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::grants::{GRANTS, grant};
use common::{Answer, Harness, sse_data};
use hyper::Method;
use mock_upstream::Behavior;
use serde_json::{Value, json};

const PRICES: &str =
    "[prices.\"gpt-4o-mini\"]\ninput_per_million = 500.0\noutput_per_million = 500.0\n";
const ON: &str = "[admin]\nkey = \"admin-key-0123456789abcdef\"\n[modules.cache]\nenabled = true\n";

async fn start(extra: &str) -> Harness {
    Harness::start_with_modules(&format!("{PRICES}{ON}{extra}"), &[&GRANTS]).await
}

fn body(text: &str, stream: bool) -> String {
    json!({
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": text}],
        "max_tokens": 50,
        "stream": stream,
    })
    .to_string()
}

async fn chat(h: &Harness, body: &str, headers: &[(&str, &str)]) -> Answer {
    h.client
        .call(Method::POST, "/v1/chat/completions", body, headers)
        .await
}

fn outcome(a: &Answer) -> &str {
    a.header("x-stockyard-cache").unwrap_or("none")
}

/// The text and finish reason a chat stream carried.
fn streamed(a: &Answer) -> (String, Option<String>, Option<Value>) {
    let mut text = String::new();
    let mut finish = None;
    let mut usage = None;
    for data in sse_data(&a.text()) {
        if data == "[DONE]" {
            continue;
        }
        let chunk: Value = serde_json::from_str(&data).unwrap();
        if chunk.get("usage").is_some_and(|u| !u.is_null()) {
            usage = Some(chunk["usage"].clone());
        }
        for choice in chunk["choices"].as_array().into_iter().flatten() {
            text.push_str(choice["delta"]["content"].as_str().unwrap_or(""));
            if let Some(f) = choice["finish_reason"].as_str() {
                finish = Some(f.to_string());
            }
        }
    }
    (text, finish, usage)
}

#[tokio::test]
async fn a_repeated_request_is_answered_from_the_cache_and_the_trace_says_what_it_saved() {
    let h = start("").await;
    let first = chat(&h, &body("hello", false), &[]).await;
    assert_eq!(first.status, 200, "{}", first.text());
    assert_eq!(outcome(&first), "miss");
    // The writer stores the entry in memory at once; the file gets it in its next batch.
    let second = chat(&h, &body("hello", false), &[]).await;
    assert_eq!(outcome(&second), "hit");
    assert_eq!(h.mock.request_count(), 1, "a hit never calls the upstream");
    assert_eq!(
        second.json()["choices"][0]["message"],
        first.json()["choices"][0]["message"]
    );
    assert_eq!(second.json()["usage"], first.json()["usage"]);
    // A different parameter is a different request.
    let other = json!({"model": "gpt-4o-mini", "max_tokens": 50, "temperature": 0.2,
        "messages": [{"role": "user", "content": "hello"}]})
    .to_string();
    assert_eq!(outcome(&chat(&h, &other, &[]).await), "miss");
    let traces = h.traces(3).await;
    assert_eq!(traces[0].cache.as_deref(), Some("miss"));
    assert!(traces[0].cost_nanos > 0);
    assert_eq!(traces[1].cache.as_deref(), Some("hit"));
    assert_eq!(traces[1].answered_by.as_deref(), Some("cache"));
    assert_eq!(traces[1].cost_nanos, 0, "a hit costs nothing");
    assert_eq!(traces[1].saved_nanos, traces[0].cost_nanos);
    // Spend reports show the savings beside the spend.
    let spend = h
        .store()
        .spend
        .spend(stockyard::store::SpendBy::Model, 0)
        .unwrap();
    let row = spend.iter().find(|r| r.key == "gpt-4o-mini").unwrap();
    assert_eq!(row.saved_nanos, traces[0].cost_nanos);
    assert_eq!(row.requests, 3);
}

#[tokio::test]
async fn a_streamed_answer_serves_a_plain_request_and_the_reverse() {
    let h = start("").await;
    let streamed_first = chat(&h, &body("stream first", true), &[]).await;
    assert_eq!(outcome(&streamed_first), "miss");
    let (text, finish, _) = streamed(&streamed_first);
    let plain = chat(&h, &body("stream first", false), &[]).await;
    assert_eq!(outcome(&plain), "hit");
    assert_eq!(plain.json()["choices"][0]["message"]["content"], text);
    assert_eq!(
        plain.json()["choices"][0]["finish_reason"].as_str(),
        finish.as_deref()
    );
    assert!(plain.json()["usage"]["total_tokens"].as_u64().unwrap() > 0);

    let plain_first = chat(&h, &body("plain first", false), &[]).await;
    assert_eq!(outcome(&plain_first), "miss");
    let with_usage = json!({"model": "gpt-4o-mini", "max_tokens": 50, "stream": true,
        "stream_options": {"include_usage": true},
        "messages": [{"role": "user", "content": "plain first"}]})
    .to_string();
    let replay = chat(&h, &with_usage, &[]).await;
    assert_eq!(outcome(&replay), "hit");
    assert!(replay.text().ends_with("data: [DONE]\n\n"));
    let (text, finish, usage) = streamed(&replay);
    assert_eq!(
        text,
        plain_first.json()["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
    );
    assert_eq!(finish.as_deref(), Some("stop"));
    assert_eq!(usage.unwrap(), plain_first.json()["usage"]);
    assert_eq!(h.mock.request_count(), 2);
}

#[tokio::test]
async fn a_chat_answer_serves_a_messages_client_and_the_reverse() {
    let h = start("").await;
    let messages = |text: &str, stream: bool| {
        json!({"model": "gpt-4o-mini", "max_tokens": 50, "stream": stream,
            "messages": [{"role": "user", "content": text}]})
        .to_string()
    };
    let first = chat(&h, &body("from chat", false), &[]).await;
    assert_eq!(outcome(&first), "miss");
    let as_messages = h
        .client
        .post("/v1/messages", &messages("from chat", false))
        .await;
    assert_eq!(as_messages.status, 200, "{}", as_messages.text());
    assert_eq!(outcome(&as_messages), "hit");
    assert_eq!(as_messages.json()["type"], "message");
    assert_eq!(
        as_messages.json()["content"][0]["text"],
        first.json()["choices"][0]["message"]["content"]
    );

    let stored = h
        .client
        .post("/v1/messages", &messages("from messages", true))
        .await;
    assert_eq!(outcome(&stored), "miss");
    assert!(stored.text().contains("message_stop"));
    let as_chat = chat(&h, &body("from messages", false), &[]).await;
    assert_eq!(outcome(&as_chat), "hit");
    assert_eq!(
        as_chat.json()["choices"][0]["message"]["content"],
        mock_upstream::DEFAULT_CONTENT
    );
    let replayed = h
        .client
        .post("/v1/messages", &messages("from messages", true))
        .await;
    assert_eq!(outcome(&replayed), "hit");
    let events = replayed.text();
    for event in [
        "message_start",
        "content_block_delta",
        "message_delta",
        "message_stop",
    ] {
        assert!(events.contains(event), "{event} missing: {events}");
    }
    assert_eq!(h.mock.request_count(), 2);
}

#[tokio::test]
async fn tool_call_answers_are_replayed_exactly() {
    let h = start("").await;
    let tools = |stream: bool| {
        json!({"model": "gpt-4o-mini", "stream": stream,
            "messages": [{"role": "user", "content": "weather?"}],
            "tools": [{"type": "function", "function": {"name": "get_weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}],
            "tool_choice": "required"})
        .to_string()
    };
    let first = chat(&h, &tools(true), &[]).await;
    assert_eq!(outcome(&first), "miss");
    let plain = chat(&h, &tools(false), &[]).await;
    assert_eq!(outcome(&plain), "hit");
    let message = &plain.json()["choices"][0]["message"];
    assert_eq!(plain.json()["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(message["tool_calls"][0]["function"]["name"], "get_weather");
    // What the upstream sent, as a non-streamed answer, is what the cache gives back.
    let fresh = chat(
        &h,
        &tools(false),
        &[
            ("cache-control", "no-cache"),
            ("x-stockyard-cache-ttl", "5"),
        ],
    )
    .await;
    assert_eq!(outcome(&fresh), "miss");
    assert_eq!(
        fresh.json()["choices"][0]["message"]["tool_calls"],
        message["tool_calls"]
    );
    let replay = chat(&h, &tools(true), &[]).await;
    assert_eq!(outcome(&replay), "hit");
    let mut arguments = String::new();
    let mut name = None;
    for data in sse_data(&replay.text()) {
        let Ok(chunk) = serde_json::from_str::<Value>(&data) else {
            continue;
        };
        if let Some(call) = chunk["choices"][0]["delta"]["tool_calls"][0].as_object() {
            name = name.or(call["function"]["name"].as_str().map(String::from));
            arguments.push_str(call["function"]["arguments"].as_str().unwrap_or(""));
        }
    }
    assert_eq!(name.as_deref(), Some("get_weather"));
    assert_eq!(arguments, message["tool_calls"][0]["function"]["arguments"]);
}

#[tokio::test]
async fn errored_and_cut_streams_are_never_stored() {
    let h = start("").await;
    h.mock.push(Behavior {
        reset_after_chunks: Some(2),
        ..Behavior::default()
    });
    let cut = chat(&h, &body("cut me", true), &[]).await;
    assert_eq!(outcome(&cut), "miss");
    assert!(!cut.text().contains("[DONE]"), "{}", cut.text());
    let again = chat(&h, &body("cut me", true), &[]).await;
    assert_eq!(outcome(&again), "miss", "a cut stream was stored");
    assert!(again.text().contains("[DONE]"));
    assert_eq!(outcome(&chat(&h, &body("cut me", false), &[]).await), "hit");

    h.mock.push(Behavior {
        status: Some(500),
        ..Behavior::default()
    });
    h.mock.push(Behavior {
        status: Some(500),
        ..Behavior::default()
    });
    h.mock.push(Behavior {
        status: Some(500),
        ..Behavior::default()
    });
    let failed = chat(&h, &body("fail me", false), &[]).await;
    assert!(failed.status.is_server_error());
    // Whatever the retries did, the next request is not answered by a stored error.
    let next = chat(&h, &body("fail me", false), &[]).await;
    if failed.status.is_server_error() && next.status == 200 {
        assert_eq!(outcome(&next), "miss");
    }
}

#[tokio::test]
async fn no_cache_and_no_store_are_honoured() {
    let h = start("").await;
    let stored = chat(
        &h,
        &body("controls", false),
        &[("cache-control", "no-store")],
    )
    .await;
    assert_eq!(outcome(&stored), "skip");
    assert_eq!(
        outcome(&chat(&h, &body("controls", false), &[]).await),
        "miss"
    );
    assert_eq!(
        outcome(&chat(&h, &body("controls", false), &[]).await),
        "hit"
    );
    let fresh = chat(
        &h,
        &body("controls", false),
        &[("cache-control", "no-cache")],
    )
    .await;
    assert_eq!(outcome(&fresh), "miss");
    assert_eq!(h.mock.request_count(), 3);
    // A request hotter than the limit is skipped unless it asks for caching.
    let hot = json!({"model": "gpt-4o-mini", "temperature": 1.5,
        "messages": [{"role": "user", "content": "hot"}]})
    .to_string();
    assert_eq!(outcome(&chat(&h, &hot, &[]).await), "skip");
    assert_eq!(outcome(&chat(&h, &hot, &[]).await), "skip");
    let asked = [("x-stockyard-cache-ttl", "60")];
    assert_eq!(outcome(&chat(&h, &hot, &asked).await), "miss");
    assert_eq!(outcome(&chat(&h, &hot, &asked).await), "hit");
}

#[tokio::test]
async fn entries_expire() {
    let h = start("").await;
    let short = [("x-stockyard-cache-ttl", "1")];
    assert_eq!(
        outcome(&chat(&h, &body("brief", false), &short).await),
        "miss"
    );
    assert_eq!(outcome(&chat(&h, &body("brief", false), &[]).await), "hit");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(outcome(&chat(&h, &body("brief", false), &[]).await), "miss");
    // max-age: an entry older than the client accepts is not given.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let fresh_only = [("cache-control", "max-age=1")];
    assert_eq!(
        outcome(&chat(&h, &body("brief", false), &fresh_only).await),
        "miss"
    );
}

#[tokio::test]
async fn the_least_recently_used_entry_goes_when_the_budget_is_full() {
    // One answer is a little under 600 bytes: the budget holds two.
    let h = start("max_bytes = 1300\n").await;
    for text in ["one", "two"] {
        assert_eq!(outcome(&chat(&h, &body(text, false), &[]).await), "miss");
    }
    // Using "one" makes "two" the least recently used.
    assert_eq!(outcome(&chat(&h, &body("one", false), &[]).await), "hit");
    assert_eq!(outcome(&chat(&h, &body("three", false), &[]).await), "miss");
    assert_eq!(outcome(&chat(&h, &body("one", false), &[]).await), "hit");
    assert_eq!(outcome(&chat(&h, &body("two", false), &[]).await), "miss");
    let stats = h.client.admin(Method::GET, "/admin/cache", "").await;
    assert_eq!(stats.status, 200, "{}", stats.text());
    let exact = &stats.json()["exact"];
    assert!(exact["bytes"].as_u64().unwrap() <= 1300);
    assert!(exact["evictions"].as_u64().unwrap() >= 2);
}

#[tokio::test]
async fn the_retention_size_caps_the_cache_below_its_own_budget() {
    // The cache's own budget is large; retention's `cache` size holds it to two answers.
    let h = start("max_bytes = 10000000\n[modules.retention]\nenabled = true\ncache = \"1300\"\n")
        .await;
    for text in ["one", "two"] {
        assert_eq!(outcome(&chat(&h, &body(text, false), &[]).await), "miss");
    }
    assert_eq!(outcome(&chat(&h, &body("one", false), &[]).await), "hit");
    assert_eq!(outcome(&chat(&h, &body("three", false), &[]).await), "miss");
    assert_eq!(outcome(&chat(&h, &body("two", false), &[]).await), "miss");
    let stats = h.client.admin(Method::GET, "/admin/cache", "").await;
    let exact = &stats.json()["exact"];
    assert!(exact["bytes"].as_u64().unwrap() <= 1300, "{exact}");
    assert!(exact["evictions"].as_u64().unwrap() >= 1, "{exact}");
}

#[tokio::test]
async fn two_keys_never_see_each_others_answers() {
    let h = start("").await;
    let alice = grant("alice", json!({}), None);
    let bob = grant("bob", json!({}), None);
    let as_alice = [("x-test-grant", alice.as_str())];
    let as_bob = [("x-test-grant", bob.as_str())];
    assert_eq!(
        outcome(&chat(&h, &body("secret", false), &as_alice).await),
        "miss"
    );
    assert_eq!(
        outcome(&chat(&h, &body("secret", false), &as_alice).await),
        "hit"
    );
    assert_eq!(
        outcome(&chat(&h, &body("secret", false), &as_bob).await),
        "miss"
    );
    // A client namespace splits a key's own cache.
    let sub = [
        ("x-test-grant", alice.as_str()),
        ("x-stockyard-cache-namespace", "project-x"),
    ];
    assert_eq!(
        outcome(&chat(&h, &body("secret", false), &sub).await),
        "miss"
    );
    assert_eq!(
        outcome(&chat(&h, &body("secret", false), &sub).await),
        "hit"
    );

    // Shared per team when the operator says so.
    let h = start("namespace = \"team\"\n").await;
    let team = Some(("t1", json!({})));
    let carol = grant("carol", json!({}), team.clone());
    let dave = grant("dave", json!({}), team);
    assert_eq!(
        outcome(
            &chat(
                &h,
                &body("team", false),
                &[("x-test-grant", carol.as_str())]
            )
            .await
        ),
        "miss"
    );
    assert_eq!(
        outcome(&chat(&h, &body("team", false), &[("x-test-grant", dave.as_str())]).await),
        "hit"
    );
}

#[tokio::test]
async fn entries_survive_a_restart_and_can_be_purged() {
    let h = start("").await;
    assert_eq!(
        outcome(&chat(&h, &body("durable", false), &[]).await),
        "miss"
    );
    let h = h.restart(&format!("{PRICES}{ON}")).await;
    let after = chat(&h, &body("durable", false), &[]).await;
    assert_eq!(outcome(&after), "hit", "{}", after.text());
    assert_eq!(h.mock.request_count(), 1);

    let purged = h
        .client
        .admin(
            Method::POST,
            "/admin/cache/purge",
            r#"{"model": "gpt-4o-mini"}"#,
        )
        .await;
    assert_eq!(purged.status, 200, "{}", purged.text());
    assert_eq!(purged.json()["removed"], 1);
    assert_eq!(
        outcome(&chat(&h, &body("durable", false), &[]).await),
        "miss"
    );
    let h = h.restart(&format!("{PRICES}{ON}")).await;
    // The purge reached the file too; the last miss was stored again.
    assert_eq!(
        outcome(&chat(&h, &body("durable", false), &[]).await),
        "hit"
    );
    let purged = h
        .client
        .admin(Method::POST, "/admin/cache/purge", r#"{"all": true}"#)
        .await;
    assert_eq!(purged.json()["removed"], 1);
    let h = h.restart(&format!("{PRICES}{ON}")).await;
    assert_eq!(
        outcome(&chat(&h, &body("durable", false), &[]).await),
        "miss"
    );
}

#[tokio::test]
async fn the_cli_shows_and_purges_the_cache_offline() {
    let h = start("").await;
    assert_eq!(
        outcome(&chat(&h, &body("cli one", false), &[]).await),
        "miss"
    );
    assert_eq!(
        outcome(&chat(&h, &body("cli two", false), &[]).await),
        "miss"
    );
    let Harness { server, dir, .. } = h;
    server.stop().await.unwrap();
    let db = dir.path().join("stockyard.db");
    let run = |args: &[&str]| {
        let out = common::binary::stockyard(&db).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let stats = run(&["cache", "stats"]);
    assert!(
        stats
            .lines()
            .any(|l| l.starts_with("exact") && l.contains(" 2 ")),
        "{stats}"
    );
    run(&["cache", "purge", "--model", "gpt-4o-mini"]);
    let stats = run(&["cache", "stats"]);
    assert!(!stats.lines().any(|l| l.starts_with("exact")), "{stats}");
    let audit = run(&["audit", "export"]);
    assert!(audit.contains("cache.purge"), "{audit}");
}

#[tokio::test]
async fn a_key_or_team_can_have_its_own_ttl_or_none() {
    let h = start("key_ttl_secs = { bob = 0 }\nteam_ttl_secs = { t9 = 1 }\n").await;
    let alice = grant("alice", json!({}), None);
    let bob = grant("bob", json!({}), None);
    let carol = grant("carol", json!({}), Some(("t9", json!({}))));
    let as_ = |g: &str| [("x-test-grant", g.to_string())];
    let send = |g: &String| {
        let headers = as_(g);
        let h = &h;
        async move {
            let headers: Vec<(&str, &str)> =
                headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            outcome(&chat(h, &body("per key", false), &headers).await).to_string()
        }
    };
    assert_eq!(send(&alice).await, "miss");
    assert_eq!(send(&alice).await, "hit");
    // Off for bob, even when he asks for a TTL.
    let asks = [
        ("x-test-grant", bob.as_str()),
        ("x-stockyard-cache-ttl", "60"),
    ];
    assert_eq!(
        outcome(&chat(&h, &body("per key", false), &asks).await),
        "skip"
    );
    assert_eq!(send(&bob).await, "skip");
    // Carol's team keeps answers one second.
    assert_eq!(send(&carol).await, "miss");
    assert_eq!(send(&carol).await, "hit");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(send(&carol).await, "miss");
}

#[tokio::test]
async fn a_native_anthropic_stream_is_stored_and_serves_a_chat_client() {
    let claude = mock_upstream::MockUpstream::start().await.unwrap();
    let openai = mock_upstream::MockUpstream::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "{ON}[providers.anthropic]\nbase_url = \"{}\"\napi_key = \"sk-ant-test-0123456789\"\n",
        claude.base_url()
    );
    let config = common::config_for(&toml, &openai.base_url(), &dir);
    let h = Harness::start_on(config, claude, dir).await;
    let messages = |stream: bool| {
        json!({"model": "claude-sonnet-4-5", "max_tokens": 50, "stream": stream,
            "messages": [{"role": "user", "content": "natively streamed"}]})
        .to_string()
    };
    // A Messages client on Anthropic: the stream passes through in Anthropic's own events.
    let first = h.client.post("/v1/messages", &messages(true)).await;
    assert_eq!(first.status, 200, "{}", first.text());
    assert_eq!(outcome(&first), "miss");
    assert!(first.text().contains("message_stop"));
    let as_chat = h
        .client
        .call(
            Method::POST,
            "/v1/chat/completions",
            &json!({"model": "claude-sonnet-4-5", "max_tokens": 50,
                "messages": [{"role": "user", "content": "natively streamed"}]})
            .to_string(),
            &[],
        )
        .await;
    assert_eq!(outcome(&as_chat), "hit", "{}", as_chat.text());
    assert_eq!(
        as_chat.json()["choices"][0]["message"]["content"],
        mock_upstream::DEFAULT_CONTENT
    );
    let replayed = h.client.post("/v1/messages", &messages(true)).await;
    assert_eq!(outcome(&replayed), "hit");
    assert!(replayed.text().contains(mock_upstream::DEFAULT_CONTENT));
    assert_eq!(h.mock.request_count(), 1);
}

#[tokio::test]
async fn a_malformed_cache_header_is_a_clear_400_in_the_clients_shape() {
    let h = start("").await;
    let answer = chat(
        &h,
        &body("ttl?", false),
        &[("x-stockyard-cache-ttl", "an hour")],
    )
    .await;
    assert_eq!(answer.status, 400, "{}", answer.text());
    let error = &answer.json()["error"];
    assert_eq!(error["param"], "x-stockyard-cache-ttl", "{error}");
    assert!(
        error["message"].as_str().unwrap().contains("seconds"),
        "{error}"
    );
    assert_eq!(h.mock.request_count(), 0, "nothing went upstream");
}

#[tokio::test]
async fn a_native_responses_answer_is_stored_streamed_or_not_and_serves_a_chat_client() {
    let h = start("").await;
    for (text, stream) in [("responses plain", false), ("responses streamed", true)] {
        let request = |stream: bool| {
            json!({"model": "gpt-4o-mini", "input": text, "stream": stream,
                "max_output_tokens": 50})
            .to_string()
        };
        // A Responses client on OpenAI: the answer passes through in Responses' own format.
        let first = h.client.post("/v1/responses", &request(stream)).await;
        assert_eq!(first.status, 200, "{}", first.text());
        assert_eq!(outcome(&first), "miss");
        // The other way round (streamed if it was not) is answered from what was stored.
        let again = h.client.post("/v1/responses", &request(!stream)).await;
        assert_eq!(outcome(&again), "hit", "{text}: {}", again.text());
        assert!(
            again.text().contains(mock_upstream::DEFAULT_CONTENT),
            "{}",
            again.text()
        );
        // And a Chat client asking the same gets it too.
        let as_chat = chat(&h, &body(text, false), &[]).await;
        assert_eq!(outcome(&as_chat), "hit", "{text}: {}", as_chat.text());
        assert_eq!(
            as_chat.json()["choices"][0]["message"]["content"],
            mock_upstream::DEFAULT_CONTENT
        );
    }
    assert_eq!(h.mock.request_count(), 2);
}
