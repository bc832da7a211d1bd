//! Non-streamed endpoints end to end: chat, completions, embeddings, models, health and ready, the
//! exact trace row of a request, and what reaches the upstream.

mod common;

use common::{Harness, chat};
use mock_upstream::Behavior;
use serde_json::json;

#[tokio::test]
async fn chat_completion_is_proxied_and_traced_exactly() {
    let h = Harness::start().await;
    let answer = h
        .client
        .call(
            hyper::Method::POST,
            "/v1/chat/completions",
            &chat("gpt-4o-mini", "Say hello", false),
            &[("x-request-id", "req-abc-123")],
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let body = answer.json();
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "Hello from the mock upstream."
    );
    assert_eq!(answer.header("x-request-id"), Some("req-abc-123"));
    let overhead: f64 = answer
        .header("x-stockyard-overhead-ms")
        .unwrap()
        .parse()
        .unwrap();
    assert!((0.0..1000.0).contains(&overhead));

    let trace = &h.traces(1).await[0];
    assert_eq!(trace.request_id, "req-abc-123");
    assert_eq!(trace.endpoint, "chat_completions");
    assert_eq!(trace.requested_model, "gpt-4o-mini");
    assert_eq!(trace.provider.as_deref(), Some("openai"));
    assert_eq!(trace.upstream_model.as_deref(), Some("gpt-4o-mini"));
    assert_eq!(trace.status, 200);
    assert_eq!(trace.error_class, None);
    assert!(!trace.stream);
    // Mock rule: 2 words + 4 per message in; 5 words out.
    assert_eq!((trace.tokens.prompt, trace.tokens.completion), (6, 5));
    assert!(!trace.usage_estimated);
    // gpt-4o-mini: $0.15/M in, $0.60/M out => 6*150 + 5*600 nano-dollars.
    assert_eq!(trace.cost_nanos, 3_900);
    assert!(trace.price_known);
    assert!(trace.latency_us > 0 && trace.upstream_us.is_some());
    assert!(trace.bytes_in > 0 && trace.bytes_out as usize == answer.body.len());
    assert!(trace.id.len() == 36);
}

#[tokio::test]
async fn cached_and_reasoning_tokens_are_priced_at_their_rates() {
    let h = Harness::start().await;
    h.mock.push(Behavior {
        cached_tokens: 2,
        reasoning_tokens: 3,
        ..Behavior::default()
    });
    let answer = h
        .client
        .post(
            "/v1/chat/completions",
            &chat("gpt-4o-mini", "Say hello", false),
        )
        .await;
    assert_eq!(answer.status, 200);
    let trace = &h.traces(1).await[0];
    assert_eq!(trace.tokens.cached_input, 2);
    assert_eq!(trace.tokens.reasoning, 3);
    assert_eq!(trace.tokens.completion, 8);
    // 4 uncached * 150 + 2 cached * 75 + 5 visible * 600 + 3 reasoning * 600
    assert_eq!(trace.cost_nanos, 600 + 150 + 3_000 + 1_800);
}

#[tokio::test]
async fn unknown_fields_reach_the_upstream_untouched() {
    let h = Harness::start().await;
    let body = json!({
        "model": "openai/gpt-4o-mini",
        "messages": [{"role": "user", "content": "hi", "name": "ann"}],
        "logit_bias": {"50256": -100},
        "temperature": 0.2,
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
        "user": "user-7",
    });
    let answer = h
        .client
        .post("/v1/chat/completions", &body.to_string())
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let got = &h.mock.requests()[0];
    assert_eq!(got.path, "/v1/chat/completions");
    assert_eq!(
        got.body["model"], "gpt-4o-mini",
        "provider prefix is stripped"
    );
    assert_eq!(got.body["logit_bias"]["50256"], -100);
    assert_eq!(got.body["temperature"], 0.2);
    assert_eq!(got.body["messages"][0]["name"], "ann");
    assert_eq!(got.body["tools"][0]["function"]["name"], "f");
    assert_eq!(
        got.header("authorization"),
        Some(format!("Bearer {}", common::PROVIDER_KEY).as_str())
    );
    let trace = &h.traces(1).await[0];
    assert_eq!(trace.user.as_deref(), Some("user-7"));
    assert_eq!(trace.requested_model, "openai/gpt-4o-mini");
}

#[tokio::test]
async fn legacy_completions_and_embeddings_work() {
    let h = Harness::start().await;
    let answer = h
        .client
        .post(
            "/v1/completions",
            &json!({"model": "gpt-3.5-turbo-instruct", "prompt": "Once upon a time"}).to_string(),
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.json()["object"], "text_completion");

    let answer = h
        .client
        .post(
            "/v1/embeddings",
            &json!({"model": "text-embedding-3-small", "input": ["a b c", "d"]}).to_string(),
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.json()["data"].as_array().map(Vec::len), Some(2));

    let answer = h
        .client
        .post(
            "/v1/embeddings",
            &json!({"model": "text-embedding-3-small", "input": "a b c", "encoding_format": "base64"}).to_string(),
        )
        .await;
    assert!(answer.json()["data"][0]["embedding"].is_string());

    let traces = h.traces(3).await;
    assert_eq!(traces[0].endpoint, "completions");
    assert_eq!(
        (traces[0].tokens.prompt, traces[0].tokens.completion),
        (5, 5)
    );
    assert_eq!(traces[1].endpoint, "embeddings");
    assert_eq!(traces[1].tokens.prompt, 4);
    // text-embedding-3-small: $0.02/M => 4 * 20 nanos.
    assert_eq!(traces[1].cost_nanos, 80);
}

#[tokio::test]
async fn models_health_and_ready() {
    let h =
        Harness::start_with("[[models]]\nname = \"fast\"\ntarget = \"openai/gpt-4o-mini\"\n").await;
    let models = h.client.get("/v1/models").await.json();
    let ids: Vec<&str> = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["id"].as_str())
        .collect();
    assert!(ids.contains(&"fast"));
    assert!(ids.contains(&"gpt-4o-mini"));
    // Operations' models too, and each once.
    assert!(ids.contains(&"whisper-1") && ids.contains(&"dall-e-3"));
    let unique: std::collections::HashSet<&&str> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len());
    assert!(models["data"][0]["created"].is_number() && models["data"][0]["object"] == "model");
    assert!(ids.contains(&"openai/gpt-4o-mini"));

    let health = h.client.get("/health").await;
    assert_eq!(
        (health.status.as_u16(), health.json()["status"].as_str()),
        (200, Some("ok"))
    );

    let ready = h.client.get("/ready").await;
    assert_eq!(ready.status, 200);
    let ready = ready.json();
    assert_eq!(ready["ready"], true);
    assert_eq!(
        ready["store"]["schema_version"],
        stockyard::store::SCHEMA_VERSION
    );
    assert_eq!(ready["writer"]["alive"], true);
    assert_eq!(ready["writer"]["dropped"], 0);

    // A configured name routes to its target.
    let answer = h
        .client
        .post("/v1/chat/completions", &chat("fast", "hi", false))
        .await;
    assert_eq!(answer.status, 200);
    assert_eq!(h.mock.requests()[0].body["model"], "gpt-4o-mini");
}

#[tokio::test]
async fn openai_compatible_provider_from_config() {
    let mock = mock_upstream::MockUpstream::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "[providers.local]\nkind = \"openai_compatible\"\nbase_url = \"{}\"\napi_key = \"local-key-123\"\nmodel_prefixes = [\"llama-\"]\n",
        mock.base_url()
    );
    let config = common::config_for(&toml, "http://127.0.0.1:9/v1", &dir);
    let h = Harness::start_on(config, mock, dir).await;
    let answer = h
        .client
        .post("/v1/chat/completions", &chat("llama-3.3-70b", "hi", false))
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(
        h.mock.requests()[0].header("authorization"),
        Some("Bearer local-key-123")
    );
    let trace = &h.traces(1).await[0];
    assert_eq!(trace.provider.as_deref(), Some("local"));
    // No price for this model: cost 0 and flagged.
    assert_eq!((trace.cost_nanos, trace.price_known), (0, false));
}

#[tokio::test]
async fn config_price_overrides_replace_the_built_in_price() {
    let h = Harness::start_with(
        "[prices.\"gpt-4o-mini\"]\ninput_per_million = 1.0\noutput_per_million = 2.0\n",
    )
    .await;
    h.client
        .post(
            "/v1/chat/completions",
            &chat("gpt-4o-mini", "Say hello", false),
        )
        .await;
    let trace = &h.traces(1).await[0];
    // 6 tokens in at $1/M (1000 nanos each), 5 out at $2/M.
    assert_eq!(trace.cost_nanos, 6_000 + 10_000);
}
