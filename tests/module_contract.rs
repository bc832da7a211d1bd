//! The module contract, proved with test-only modules (tests/common/test_modules.rs) over real
//! sockets: a module's canonical answer reaches every client format streamed and not; a stream
//! watcher holds a window and ends translated and native streams on a marker split across events;
//! a budget-like module reserves before routing and settles after cost; an internal model call
//! goes through a routing group and fails over.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::test_modules::{
    BUDGET, BudgetLog, CANNED, CANNED_MODEL, CANNED_TEXT, EMBED_PROBE, EMBED_PROBE_MODEL, GUARD,
    PLAIN, QUIET_MODEL, budget_log,
};
use common::{Harness, chat, sse_data};
use mock_upstream::Behavior;
use serde_json::{Value, json};
use stockyard::modules::Outcome;

/// `(event name, data)` of each SSE event.
fn events(body: &str) -> Vec<(String, Value)> {
    body.split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .filter_map(|e| {
            let name = e
                .lines()
                .find_map(|l| l.strip_prefix("event: "))
                .unwrap_or_default()
                .to_string();
            let data = e.lines().find_map(|l| l.strip_prefix("data: "))?;
            Some((name, serde_json::from_str(data).unwrap_or(Value::Null)))
        })
        .collect()
}

fn chat_text(body: &str) -> String {
    sse_data(body)
        .iter()
        .filter(|d| *d != "[DONE]")
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter_map(|c| {
            c["choices"][0]["delta"]["content"]
                .as_str()
                .map(String::from)
        })
        .collect()
}

#[tokio::test]
async fn a_modules_canonical_answer_reaches_every_client_format() {
    let h = Harness::start_with_modules("", &[&CANNED]).await;
    let messages = |stream: bool| {
        json!({"model": CANNED_MODEL, "max_tokens": 64, "stream": stream,
            "messages": [{"role": "user", "content": "hi"}]})
        .to_string()
    };
    let responses =
        |stream: bool| json!({"model": CANNED_MODEL, "input": "hi", "stream": stream}).to_string();

    // OpenAI Chat, complete and streamed.
    let answer = h
        .client
        .post("/v1/chat/completions", &chat(CANNED_MODEL, "hi", false))
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(
        answer.json()["choices"][0]["message"]["content"],
        CANNED_TEXT
    );
    assert_eq!(answer.json()["usage"]["total_tokens"], 11);
    let answer = h
        .client
        .post("/v1/chat/completions", &chat(CANNED_MODEL, "hi", true))
        .await;
    assert_eq!(answer.header("content-type"), Some("text/event-stream"));
    assert_eq!(chat_text(&answer.text()), CANNED_TEXT);
    assert_eq!(
        sse_data(&answer.text()).last().map(String::as_str),
        Some("[DONE]")
    );
    // Usage the client did not ask for is withheld, as for an upstream stream.
    assert!(!answer.text().contains("\"usage\""));

    // Legacy Completions, complete and streamed: the text_completion shape.
    let prompt =
        |stream: bool| json!({"model": CANNED_MODEL, "prompt": "hi", "stream": stream}).to_string();
    let answer = h.client.post("/v1/completions", &prompt(false)).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.json()["object"], "text_completion");
    assert_eq!(answer.json()["choices"][0]["text"], CANNED_TEXT);
    let answer = h.client.post("/v1/completions", &prompt(true)).await;
    let text: String = sse_data(&answer.text())
        .iter()
        .filter(|d| *d != "[DONE]")
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .inspect(|c| assert_eq!(c["object"], "text_completion", "{c}"))
        .filter_map(|c| c["choices"][0]["text"].as_str().map(String::from))
        .collect();
    assert_eq!(text, CANNED_TEXT);

    // Responses, complete and streamed.
    let answer = h.client.post("/v1/responses", &responses(false)).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.json()["object"], "response");
    assert_eq!(
        answer.json()["output"][0]["content"][0]["text"],
        CANNED_TEXT
    );
    let answer = h.client.post("/v1/responses", &responses(true)).await;
    let evs = events(&answer.text());
    let deltas: String = evs
        .iter()
        .filter(|(n, _)| n == "response.output_text.delta")
        .map(|(_, d)| d["delta"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(deltas, CANNED_TEXT);
    assert_eq!(evs.last().unwrap().0, "response.completed");

    // Anthropic Messages, complete and streamed.
    let answer = h.client.post("/v1/messages", &messages(false)).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.json()["type"], "message");
    assert_eq!(answer.json()["content"][0]["text"], CANNED_TEXT);
    let answer = h.client.post("/v1/messages", &messages(true)).await;
    let evs = events(&answer.text());
    let text: String = evs
        .iter()
        .filter(|(n, _)| n == "content_block_delta")
        .map(|(_, d)| d["delta"]["text"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(text, CANNED_TEXT);
    assert_eq!(evs.first().unwrap().0, "message_start");
    assert_eq!(evs.last().unwrap().0, "message_stop");

    // No provider was called, and every answer is traced as the module's.
    assert_eq!(h.mock.request_count(), 0);
    let traces = h.traces(8).await;
    for trace in &traces {
        assert_eq!(
            trace.answered_by.as_deref(),
            Some("test_canned"),
            "{trace:?}"
        );
        assert_eq!(trace.status, 200);
        assert_eq!((trace.tokens.prompt, trace.tokens.completion), (5, 6));
        assert!(trace.provider.is_none());
    }
}

const MARKED: &str = "Hello FORBIDDEN WORD here";

/// The mock's next answer: `content` in four chunks, split at word starts.
fn push_marked(mock: &mock_upstream::MockUpstream, content: &str) {
    mock.push(Behavior {
        content: Some(content.into()),
        chunks: Some(4),
        ..Behavior::default()
    });
}

#[tokio::test]
async fn a_watcher_ends_a_translated_stream_on_a_marker_split_across_chunks() {
    let h = Harness::start_with_modules("", &[&GUARD]).await;
    // "FORBIDDEN " and "WORD " arrive in two chunks; the first is held until the second decides.
    push_marked(&h.mock, MARKED);
    let answer = h
        .client
        .post("/v1/chat/completions", &chat("gpt-4o-mini", "hi", true))
        .await;
    let body = answer.text();
    assert_eq!(chat_text(&body), "Hello ", "{body}");
    assert!(
        !body.contains("FORBIDDEN") && !body.contains("[DONE]"),
        "{body}"
    );
    let last: Value = serde_json::from_str(sse_data(&body).last().unwrap()).unwrap();
    assert!(
        last["error"]["message"]
            .as_str()
            .unwrap()
            .contains("blocked marker"),
        "{body}"
    );

    // The same for a Messages client whose stream is translated: its own error event.
    push_marked(&h.mock, MARKED);
    let request = json!({"model": "gpt-4o-mini", "max_tokens": 64, "stream": true,
        "messages": [{"role": "user", "content": "hi"}]});
    let answer = h.client.post("/v1/messages", &request.to_string()).await;
    let evs = events(&answer.text());
    assert_eq!(evs.last().unwrap().0, "error", "{}", answer.text());
    assert!(!answer.text().contains("FORBIDDEN") && !answer.text().contains("message_stop"));

    // A held prefix that turns out harmless goes out in full, in order.
    push_marked(&h.mock, "Hello FORBIDDEN here now");
    let answer = h
        .client
        .post("/v1/chat/completions", &chat("gpt-4o-mini", "hi", true))
        .await;
    assert_eq!(
        chat_text(&answer.text()),
        "Hello FORBIDDEN here now",
        "{}",
        answer.text()
    );
    assert_eq!(
        sse_data(&answer.text()).last().map(String::as_str),
        Some("[DONE]")
    );

    let traces = h.traces(3).await;
    assert_eq!(traces[0].error_class.as_deref(), Some("invalid_value"));
    assert_eq!(traces[1].error_class.as_deref(), Some("invalid_value"));
    assert!(traces[2].error_class.is_none());
}

#[tokio::test]
async fn a_watcher_ends_a_native_anthropic_stream_too() {
    let mock = mock_upstream::MockUpstream::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "[providers.anthropic]\nbase_url = \"{}\"\napi_key = \"sk-ant-test-0123456789\"\n",
        mock.base_url()
    );
    let config = common::config_for(&toml, &mock.base_url(), &dir);
    let h = Harness::start_on_with(config, mock, dir, &[&GUARD]).await;
    push_marked(&h.mock, MARKED);
    let request = json!({"model": "claude-sonnet-4-5", "max_tokens": 64, "stream": true,
        "messages": [{"role": "user", "content": "hi"}]});
    let answer = h.client.post("/v1/messages", &request.to_string()).await;
    let body = answer.text();
    let evs = events(&body);
    assert_eq!(evs.first().unwrap().0, "message_start", "{body}");
    let text: String = evs
        .iter()
        .filter(|(n, _)| n == "content_block_delta")
        .filter_map(|(_, d)| d["delta"]["text"].as_str().map(String::from))
        .collect();
    assert_eq!(text, "Hello ", "{body}");
    assert_eq!(evs.last().unwrap().0, "error", "{body}");
    assert!(
        !body.contains("FORBIDDEN") && !body.contains("message_stop"),
        "{body}"
    );
    let trace = &h.traces(1).await[0];
    assert_eq!(trace.provider.as_deref(), Some("anthropic"));
    assert_eq!(trace.error_class.as_deref(), Some("invalid_value"));

    // A clean native stream passes whole, byte for byte as the provider sent it.
    let answer = h.client.post("/v1/messages", &request.to_string()).await;
    let evs = events(&answer.text());
    assert_eq!(evs.last().unwrap().0, "message_stop", "{}", answer.text());
}

#[tokio::test]
async fn a_budget_reserves_before_routing_and_settles_after_cost() {
    let h = Harness::start_with_modules("", &[&BUDGET]).await;
    let answer = h
        .client
        .post("/v1/chat/completions", &chat("gpt-4o-mini", "hi", false))
        .await;
    assert_eq!(answer.status, 200);
    h.mock.push(Behavior {
        status: Some(500),
        ..Behavior::default()
    });
    let answer = h
        .client
        .post("/v1/chat/completions", &chat("gpt-4o-mini", "hi", false))
        .await;
    assert_eq!(answer.status, 500);
    let traces = h.traces(2).await;

    let log = budget_calls(&h);
    // Reserved while no route was chosen yet.
    assert_eq!(log.reserved, vec![(false, 1_000_000), (false, 1_000_000)]);
    // Settled with the cost the cost module computed, the same the trace recorded.
    assert_eq!(log.settled.len(), 2);
    let (cost, price_known, outcome) = log.settled[0];
    assert!(price_known && cost > 0, "{log:?}");
    assert_eq!(cost, traces[0].cost_nanos);
    assert_eq!(outcome, Outcome::Success);
    assert_eq!(log.settled[1].2, Outcome::UpstreamError { status: 500 });
}

#[tokio::test]
async fn plain_and_async_hooks_run_in_one_order() {
    let h = Harness::start_with_modules("", &[&BUDGET, &PLAIN]).await;
    let answer = h
        .client
        .post("/v1/chat/completions", &chat("gpt-4o-mini", "hi", false))
        .await;
    assert_eq!(answer.status, 200);
    h.traces(1).await;
    let log = budget_calls(&h);
    assert_eq!(
        log.calls,
        [
            "plain request",
            "async request",
            "async finish",
            "plain finish, priced"
        ]
    );
}

#[tokio::test]
async fn a_module_with_no_work_for_a_request_is_not_called_in_its_waiting_hooks() {
    let h = Harness::start_with_modules("", &[&BUDGET, &PLAIN]).await;
    for model in [QUIET_MODEL, "gpt-4o-mini"] {
        let answer = h
            .client
            .post("/v1/chat/completions", &chat(model, "hi", false))
            .await;
        assert_eq!(answer.status, 200, "{model}");
    }
    h.traces(2).await;
    let log = budget_calls(&h);
    // The quiet request: only the plain probe's hooks; then both probes', in their one order.
    assert_eq!(
        log.calls,
        [
            "plain request",
            "plain finish, priced",
            "plain request",
            "async request",
            "async finish",
            "plain finish, priced"
        ]
    );
    assert_eq!(log.settled.len(), 1);
}

#[tokio::test]
async fn an_internal_embeddings_call_goes_through_routing_and_fails_over() {
    let toml = "[providers.dead]\nbase_url = \"http://127.0.0.1:9/v1\"\napi_key = \"key-dead\"\n\
        [modules.routing.groups.embed-group]\nstrategy = \"priority\"\n\
        retry = { max_attempts = 3, base_backoff_ms = 5, max_backoff_ms = 20 }\n\
        [[modules.routing.groups.embed-group.deployments]]\nprovider = \"dead\"\nmodel = \"text-embedding-3-small\"\npriority = 0\n\
        [[modules.routing.groups.embed-group.deployments]]\nprovider = \"openai\"\nmodel = \"text-embedding-3-small\"\npriority = 1\n";
    let h = Harness::start_with_modules(toml, &[&EMBED_PROBE]).await;
    let answer = h
        .client
        .post(
            "/v1/chat/completions",
            &chat(EMBED_PROBE_MODEL, "hi", false),
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let content = answer.json()["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(content.starts_with("dims="), "{content}");
    assert!(!content.starts_with("dims=0"), "{content}");
    assert!(
        content.contains("openai/text-embedding-3-small"),
        "{content}"
    );
    assert!(!content.ends_with("cost=0"), "{content}");
    // The mock saw one embeddings call, and nothing else.
    assert_eq!(h.mock.request_count(), 1);
    assert_eq!(h.mock.requests()[0].path, "/v1/embeddings");

    let traces = h.traces(2).await;
    let internal = &traces[0];
    assert_eq!(
        internal.internal_caller.as_deref(),
        Some("test_embed_probe")
    );
    assert_eq!(internal.endpoint, "embeddings");
    assert_eq!(
        internal.attempts, 2,
        "the dead deployment first, then the mock"
    );
    assert!(internal.cost_nanos > 0);
    let outer = &traces[1];
    assert_eq!(outer.answered_by.as_deref(), Some("test_embed_probe"));
    assert!(outer.internal_caller.is_none());
}

#[tokio::test]
async fn a_holder_past_its_window_ends_the_stream_and_capture_never_sees_what_was_held() {
    use common::test_modules::HOARDER;
    let h =
        Harness::start_with_modules("[modules.trace]\ncapture_bodies = true\n", &[&HOARDER]).await;
    let answer = h
        .client
        .post("/v1/chat/completions", &chat("gpt-4o-mini", "hi", true))
        .await;
    let body = answer.text();
    // Nothing it held reached the client: only the error, in the client's format.
    assert_eq!(chat_text(&body), "", "{body}");
    let last: Value = serde_json::from_str(sse_data(&body).last().unwrap()).unwrap();
    assert!(
        last["error"]["message"]
            .as_str()
            .unwrap()
            .contains("test_hoarder"),
        "{body}"
    );
    let trace = &h.traces(1).await[0];
    assert_eq!(trace.error_class.as_deref(), Some("internal_error"));

    // A guard's held marker never reaches the captured body either.
    let h =
        Harness::start_with_modules("[modules.trace]\ncapture_bodies = true\n", &[&GUARD]).await;
    push_marked(&h.mock, MARKED);
    let answer = h
        .client
        .post("/v1/chat/completions", &chat("gpt-4o-mini", "hi", true))
        .await;
    assert!(!answer.text().contains("FORBIDDEN"));
    let trace = &h.traces(1).await[0];
    let captured = trace.response_body.clone().unwrap_or_default();
    assert!(captured.contains("Hello"), "{captured}");
    assert!(!captured.contains("FORBIDDEN"), "{captured}");
}

/// What the budget and plain probes have logged so far.
fn budget_calls(h: &Harness) -> BudgetLog {
    budget_log(h.server.app.admin.deps())
        .lock()
        .unwrap()
        .clone()
}
