//! The Responses API over real sockets, translated for every provider: answers and typed stream
//! events, function calls, `store` and `previous_response_id` kept by Stockyard itself, and
//! `GET /v1/responses/{id}`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::Harness;
use hyper::Method;
use mock_upstream::MockUpstream;
use serde_json::{Value, json};

fn events(body: &str) -> Vec<(String, Value)> {
    body.split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .map(|e| {
            let name = e
                .lines()
                .find_map(|l| l.strip_prefix("event: "))
                .unwrap_or_default()
                .to_string();
            let data = e
                .lines()
                .find_map(|l| l.strip_prefix("data: "))
                .unwrap_or("null");
            (name, serde_json::from_str(data).unwrap_or(Value::Null))
        })
        .collect()
}

/// The proxy with an OpenAI-compatible provider (`compat`) on the mock: Responses requests to it
/// are translated through the canonical chat form, as for every provider but OpenAI itself.
async fn translated() -> Harness {
    let mock = MockUpstream::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "[providers.compat]\nkind = \"openai_compatible\"\nbase_url = \"{}\"\n",
        mock.base_url()
    );
    let config = common::config_for(&toml, "http://127.0.0.1:9/v1", &dir);
    Harness::start_on(config, mock, dir).await
}

const MODEL: &str = "compat/gpt-4o-mini";

fn output_text(response: &Value) -> String {
    response["output"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|item| item["type"] == "message")
        .flat_map(|item| item["content"].as_array().cloned().unwrap_or_default())
        .filter_map(|part| part["text"].as_str().map(String::from))
        .collect()
}

#[tokio::test]
async fn a_conversation_continues_by_previous_response_id_and_is_retrievable() {
    let h = translated().await;
    let first = json!({"model": MODEL, "instructions": "Be brief.", "input": "Say hello"});
    let answer = h.client.post("/v1/responses", &first.to_string()).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let response = answer.json();
    assert_eq!(response["object"], "response");
    assert_eq!(response["status"], "completed");
    assert_eq!(output_text(&response), "Hello from the mock upstream.");
    assert!(response["usage"]["input_tokens"].as_u64().unwrap() > 0);
    let id = response["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("resp_"));
    let sent = &h.mock.requests()[0].body;
    assert_eq!(sent["messages"][0]["role"], "system");
    assert_eq!(sent["messages"][1]["content"], "Say hello");

    let stored = h.client.get(&format!("/v1/responses/{id}")).await;
    assert_eq!(stored.status, 200);
    assert_eq!(stored.json(), response);

    let second = json!({"model": MODEL, "previous_response_id": id, "input": "And again"});
    let answer = h.client.post("/v1/responses", &second.to_string()).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let sent = &h.mock.requests()[1].body["messages"];
    let roles: Vec<&str> = sent
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["user", "assistant", "user"], "{sent}");
    assert_eq!(sent[1]["content"], "Hello from the mock upstream.");
    assert_eq!(sent[2]["content"], "And again");

    // What only OpenAI honours is refused by name for any other provider.
    let builtin = json!({"model": MODEL, "input": "x", "tools": [{"type": "web_search"}]});
    let answer = h.client.post("/v1/responses", &builtin.to_string()).await;
    assert_eq!(answer.status, 400, "{}", answer.text());
    assert_eq!(answer.json()["error"]["param"], "tools[0]");

    let missing = json!({"model": MODEL, "previous_response_id": "resp_nope", "input": "x"});
    let answer = h.client.post("/v1/responses", &missing.to_string()).await;
    assert_eq!(answer.status, 400);
    assert_eq!(answer.json()["error"]["param"], "previous_response_id");
    // Not a string: refused, not read as absent (which would drop the conversation silently).
    let wrong_type = json!({"model": MODEL, "previous_response_id": 42, "input": "x"});
    let answer = h
        .client
        .post("/v1/responses", &wrong_type.to_string())
        .await;
    assert_eq!(answer.status, 400, "{}", answer.text());
    assert_eq!(answer.json()["error"]["param"], "previous_response_id");

    let unstored = json!({"model": MODEL, "input": "x", "store": false});
    let answer = h.client.post("/v1/responses", &unstored.to_string()).await;
    let id = answer.json()["id"].as_str().unwrap().to_string();
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert_eq!(
        h.client.get(&format!("/v1/responses/{id}")).await.status,
        404
    );
    assert_eq!(h.client.get("/v1/responses/resp_unknown").await.status, 404);
}

#[tokio::test]
async fn streamed_responses_use_typed_events_and_store_the_completed_response() {
    let h = translated().await;
    let request = json!({"model": MODEL, "input": "Say hello", "stream": true});
    let answer = h.client.post("/v1/responses", &request.to_string()).await;
    assert_eq!(answer.status, 200);
    let events = events(&answer.text());
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names.first(), Some(&"response.created"), "{names:?}");
    assert_eq!(names.last(), Some(&"response.completed"), "{names:?}");
    let deltas: String = events
        .iter()
        .filter(|(n, _)| n == "response.output_text.delta")
        .filter_map(|(_, d)| d["delta"].as_str())
        .collect();
    assert_eq!(deltas, "Hello from the mock upstream.");
    let completed = &events.last().unwrap().1["response"];
    assert_eq!(output_text(completed), deltas);
    assert!(completed["usage"]["output_tokens"].as_u64().unwrap() > 0);
    let id = completed["id"].as_str().unwrap();
    // Stored before the stream's last bytes went out: no wait is needed to continue from it.
    let next = json!({"model": MODEL, "previous_response_id": id, "input": "More"});
    assert_eq!(
        h.client
            .post("/v1/responses", &next.to_string())
            .await
            .status,
        200
    );
    let stored = h.client.get(&format!("/v1/responses/{id}")).await;
    assert_eq!(stored.status, 200, "{}", stored.text());
    assert_eq!(&stored.json(), completed);
    let trace = &h.traces(2).await[0];
    assert_eq!(
        (trace.endpoint.as_str(), trace.stream, trace.usage_estimated),
        ("responses", true, false)
    );

    // A failure mid-stream ends with response.failed, never response.completed.
    h.mock.push(mock_upstream::Behavior {
        reset_after_chunks: Some(2),
        ..Default::default()
    });
    let answer = h.client.post("/v1/responses", &request.to_string()).await;
    let names: Vec<String> = self::events(&answer.text())
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert!(names.iter().any(|n| n == "response.failed"), "{names:?}");
    assert!(!names.iter().any(|n| n == "response.completed"));
}

#[tokio::test]
async fn function_calls_round_trip_with_claude() {
    let claude = MockUpstream::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "[providers.anthropic]\nbase_url = \"{}\"\napi_key = \"sk-ant\"\n",
        claude.base_url()
    );
    let config = common::config_for(&toml, "http://127.0.0.1:9/v1", &dir);
    let h = Harness::start_on(config, claude, dir).await;
    let tools = json!([{"type": "function", "name": "weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}]);
    let request = json!({"model": "claude-sonnet-4-5", "input": "Weather in Paris?", "tools": tools, "tool_choice": "required"});
    let answer = h.client.post("/v1/responses", &request.to_string()).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let response = answer.json();
    let call = response["output"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["type"] == "function_call")
        .unwrap()
        .clone();
    assert_eq!(call["name"], "weather");
    assert_eq!(
        serde_json::from_str::<Value>(call["arguments"].as_str().unwrap()).unwrap(),
        json!({"city": "Paris"})
    );

    let next = json!({"model": "claude-sonnet-4-5", "previous_response_id": response["id"], "tools": tools,
        "input": [{"type": "function_call_output", "call_id": call["call_id"], "output": "{\"temp\": 21}"}]});
    let answer = h
        .client
        .call(Method::POST, "/v1/responses", &next.to_string(), &[])
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(output_text(&answer.json()), "Hello from the mock upstream.");
    let sent = &h.mock.requests()[1].body["messages"];
    let last = sent.as_array().unwrap().last().unwrap();
    assert_eq!(last["role"], "user");
    assert_eq!(last["content"][0]["type"], "tool_result");
    assert_eq!(last["content"][0]["tool_use_id"], call["call_id"]);
}

#[tokio::test]
async fn responses_to_openai_pass_through_natively_and_are_stored() {
    let h = Harness::start().await;
    let request = json!({"model": "gpt-4o-mini", "input": "Say hello", "instructions": "Be brief.",
        "tools": [{"type": "web_search"}], "include": ["reasoning.encrypted_content"]});
    let answer = h.client.post("/v1/responses", &request.to_string()).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    // Built-in tools and every other field reach OpenAI as sent; its answer comes back as it is.
    let got = &h.mock.requests()[0];
    assert_eq!(got.path, "/v1/responses");
    assert_eq!(got.body, request);
    let response = answer.json();
    let id = response["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("resp_mock_"), "{id}");
    let trace = &h.traces(1).await[0];
    assert!(trace.tokens.prompt > 0 && trace.tokens.completion > 0 && !trace.usage_estimated);
    assert_eq!(
        h.client.get(&format!("/v1/responses/{id}")).await.json(),
        response
    );

    // Streamed: OpenAI's own events, usage read beside them; the next turn names OpenAI's id.
    let streamed = json!({"model": "gpt-4o-mini", "input": "Say hello", "stream": true});
    let answer = h.client.post("/v1/responses", &streamed.to_string()).await;
    let names: Vec<String> = events(&answer.text()).into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names.last().map(String::as_str),
        Some("response.completed"),
        "{names:?}"
    );
    let next = json!({"model": "gpt-4o-mini", "input": "Again", "previous_response_id": id});
    let answer = h.client.post("/v1/responses", &next.to_string()).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(h.mock.requests()[2].body["previous_response_id"], json!(id));
    let traces = h.traces(3).await;
    assert!(
        traces[1].stream && traces[1].tokens.completion > 0 && !traces[1].usage_estimated,
        "{:?}",
        traces[1]
    );

    // A failure mid-stream reaches the client as OpenAI sent it, and the trace says so.
    h.mock.push(mock_upstream::Behavior {
        error_event_after_chunks: Some(1),
        ..Default::default()
    });
    let answer = h.client.post("/v1/responses", &streamed.to_string()).await;
    let names: Vec<String> = events(&answer.text()).into_iter().map(|(n, _)| n).collect();
    assert!(names.iter().any(|n| n == "response.failed"), "{names:?}");
    let trace = &h.traces(4).await[3];
    assert_eq!(trace.error_class.as_deref(), Some("upstream_stream_error"));
}

const ALICE: [(&str, &str); 1] = [("authorization", "Bearer sk-alice-0123456789")];
const BOB: [(&str, &str); 1] = [("authorization", "Bearer sk-bob-0123456789")];

/// Alice reads and continues her answer `id`; Bob gets exactly what an unknown id gets.
async fn only_the_owner_sees(h: &Harness, id: &str) {
    let client = &h.client;
    let path = format!("/v1/responses/{id}");
    assert_eq!(
        client.call(Method::GET, &path, "", &ALICE).await.status,
        200
    );
    let theirs = client.call(Method::GET, &path, "", &BOB).await;
    let unknown = client
        .call(Method::GET, "/v1/responses/resp_unknown", "", &BOB)
        .await;
    assert_eq!(theirs.status, 404);
    assert_eq!(
        theirs.json()["error"]["code"],
        unknown.json()["error"]["code"]
    );

    let next = json!({"model": MODEL, "previous_response_id": id, "input": "Again"}).to_string();
    let missing =
        json!({"model": MODEL, "previous_response_id": "resp_nope", "input": "x"}).to_string();
    let theirs = client
        .call(Method::POST, "/v1/responses", &next, &BOB)
        .await;
    let unknown = client
        .call(Method::POST, "/v1/responses", &missing, &BOB)
        .await;
    assert_eq!(theirs.status, unknown.status, "{}", theirs.text());
    assert_eq!(theirs.json()["error"]["param"], "previous_response_id");
    assert_eq!(
        theirs.json()["error"]["code"],
        unknown.json()["error"]["code"]
    );
    let mine = client
        .call(Method::POST, "/v1/responses", &next, &ALICE)
        .await;
    assert_eq!(mine.status, 200, "{}", mine.text());
}

#[tokio::test]
async fn issue_9_a_stored_response_belongs_to_the_key_that_created_it() {
    let mock = MockUpstream::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "[auth]\nkeys = [\"sk-alice-0123456789\", \"sk-bob-0123456789\"]\n\
         [providers.compat]\nkind = \"openai_compatible\"\nbase_url = \"{}\"\n",
        mock.base_url()
    );
    let config = common::config_for(&toml, "http://127.0.0.1:9/v1", &dir);
    let h = Harness::start_on(config, mock, dir).await;
    let first = json!({"model": MODEL, "input": "Say hello"}).to_string();
    let answer = h
        .client
        .call(Method::POST, "/v1/responses", &first, &ALICE)
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let id = answer.json()["id"].as_str().unwrap().to_string();
    only_the_owner_sees(&h, &id).await;
    // The owner is stored too: after a restart (nothing in memory) the same holds.
    let h = h.restart(&toml).await;
    only_the_owner_sees(&h, &id).await;
}

#[tokio::test]
async fn issue_9_another_keys_response_is_refused_on_the_native_openai_route_too() {
    // `openai` is the native Responses provider: a request would go to it as the client wrote
    // it, so an id another key owns must be refused before it could resolve there.
    let h =
        Harness::start_with("[auth]\nkeys = [\"sk-alice-0123456789\", \"sk-bob-0123456789\"]\n")
            .await;
    let first = json!({"model": "gpt-4o-mini", "input": "Say hello"}).to_string();
    let answer = h
        .client
        .call(Method::POST, "/v1/responses", &first, &ALICE)
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let id = answer.json()["id"].as_str().unwrap().to_string();
    let seen = h.mock.request_count();
    let next =
        json!({"model": "gpt-4o-mini", "previous_response_id": id, "input": "Again"}).to_string();
    let theirs = h
        .client
        .call(Method::POST, "/v1/responses", &next, &BOB)
        .await;
    assert_eq!(theirs.status, 400, "{}", theirs.text());
    assert_eq!(theirs.json()["error"]["param"], "previous_response_id");
    assert_eq!(
        h.mock.request_count(),
        seen,
        "the provider never saw Bob's request"
    );
    let mine = h
        .client
        .call(Method::POST, "/v1/responses", &next, &ALICE)
        .await;
    assert_eq!(mine.status, 200, "{}", mine.text());
}
