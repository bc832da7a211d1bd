//! Guardrails end to end over real sockets: a secret split across two stream chunks is caught on
//! a translated and on a native Anthropic stream, a redacted e-mail never reaches the provider
//! and comes back in the answer, a block mid-stream ends OpenAI, Responses and Messages streams
//! with an error event in each client's format, and the admin toggle works on the next request,
//! shows in the module list, survives a restart and lands in the ledger.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{ADMIN_KEY, Harness, chat, sse_data};
use hyper::Method;
use mock_upstream::{Behavior, MockUpstream};
use serde_json::{Value, json};

const ANTHROPIC_KEY: &str = "sk-ant-test-0123456789";

/// A private key block whose words the mock splits into two chunks.
const KEY_LINE: &str = "MIIEowIBAAKCAQEA7bq9Xq3Vv1n2Zr8uJxL0dQw5Yt6Pk4Hs3Gf2Ea1Cb9Dc8Fe7Ng6";
fn key_block() -> String {
    format!(
        "Here: -----BEGIN RSA PRIVATE KEY----- {KEY_LINE} Zm9vYmFyYmF6cXV4cXV1eHh5enp5MTIzNDU2Nzg5MGFiY2RlZmdoaWprbG1u -----END RSA PRIVATE KEY----- done"
    )
}

/// The proxy (with `extra` TOML) with `anthropic` on one mock (the harness's) and `openai` on
/// another.
async fn start(extra: &str) -> (Harness, MockUpstream) {
    let claude = MockUpstream::start().await.unwrap();
    let openai = MockUpstream::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "[admin]\nkey = \"{ADMIN_KEY}\"\n[providers.anthropic]\nbase_url = \"{}\"\napi_key = \"{ANTHROPIC_KEY}\"\n{extra}",
        claude.base_url()
    );
    let config = common::config_for(&toml, &openai.base_url(), &dir);
    (Harness::start_on(config, claude, dir).await, openai)
}

fn messages(model: &str, text: &str, stream: bool) -> String {
    json!({"model": model, "max_tokens": 100, "stream": stream,
           "messages": [{"role": "user", "content": text}]})
    .to_string()
}

/// The answer text of a Chat Completions stream, its content deltas joined.
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

fn streamed(content: &str, chunks: usize) -> Behavior {
    Behavior {
        content: Some(content.to_string()),
        chunks: Some(chunks),
        ..Behavior::default()
    }
}

#[tokio::test]
async fn a_private_key_split_across_two_chunks_is_caught_on_translated_and_native_streams() {
    let (h, openai) = start("[modules.guard_secrets]\nenabled = true\n").await;
    // Translated: a Messages client, an OpenAI upstream.
    openai.push(streamed(&key_block(), 2));
    let answer = h
        .client
        .post("/v1/messages", &messages("gpt-4o-mini", "key?", true))
        .await;
    let body = answer.text();
    assert!(!body.contains(KEY_LINE), "key leaked: {body}");
    assert!(body.contains("event: error"), "{body}");
    assert!(body.contains("guard_secrets"), "{body}");
    assert!(!body.contains("message_stop"), "{body}");

    // Native: a Messages client, an Anthropic upstream, the events passed through.
    h.mock.push(streamed(&key_block(), 2));
    let answer = h
        .client
        .post("/v1/messages", &messages("claude-sonnet-4-5", "key?", true))
        .await;
    let body = answer.text();
    assert!(!body.contains(KEY_LINE), "key leaked: {body}");
    assert!(body.contains("event: error"), "{body}");
    assert!(body.contains("private_key"), "{body}");

    // The verdict is in the trace, the key is not.
    let traces = h.traces(2).await;
    for trace in &traces {
        let verdicts = trace.verdicts.as_deref().unwrap_or_default();
        assert!(verdicts.contains("\"rule\":\"private_key\""), "{verdicts}");
        assert!(!verdicts.contains(KEY_LINE));
        assert_eq!(
            trace.error_class.as_deref(),
            Some("content_policy_violation")
        );
    }
}

#[tokio::test]
async fn a_redacted_email_never_reaches_the_provider_and_comes_back_in_the_answer() {
    let (h, openai) =
        start("[modules.guard_pii]\nenabled = true\naction = \"redact\"\nrestore = true\n").await;
    let ask = "Write to anna.k@example.com about the invoice";
    for stream in [false, true] {
        openai.push(Behavior {
            content: Some("I will write to [EMAIL_1] today.".into()),
            chunks: Some(3),
            ..Behavior::default()
        });
        let answer = h
            .client
            .post("/v1/chat/completions", &chat("gpt-4o-mini", ask, stream))
            .await;
        assert_eq!(answer.status, 200, "{}", answer.text());
        let text = answer.text();
        assert!(text.contains("anna.k@example.com"), "not restored: {text}");
        assert!(!text.contains("[EMAIL_1]"), "{text}");
        let sent = openai.requests().last().unwrap().body.to_string();
        assert!(!sent.contains("anna.k@example.com"), "leaked: {sent}");
        assert!(sent.contains("[EMAIL_1]"), "{sent}");
    }
    let trace = &h.traces(2).await[0];
    let verdicts = trace.verdicts.as_deref().unwrap_or_default();
    assert!(verdicts.contains("\"action\":\"redact\""), "{verdicts}");
    assert!(!verdicts.contains("anna.k"), "{verdicts}");
}

#[tokio::test]
async fn a_block_mid_stream_ends_openai_responses_and_messages_streams_cleanly() {
    let (h, openai) = start(
        "[modules.guard_policy]\nenabled = true\ndetector = { deny = [\"project falcon\"] }\n",
    )
    .await;
    let content = "Sure. The codename you asked about is project falcon and it ships soon";
    let cases = [
        (
            "/v1/chat/completions",
            chat("gpt-4o-mini", "codename?", true),
        ),
        (
            "/v1/responses",
            json!({"model": "gpt-4o-mini", "input": "codename?", "stream": true}).to_string(),
        ),
        ("/v1/messages", messages("gpt-4o-mini", "codename?", true)),
    ];
    for (path, body) in cases {
        openai.push(streamed(content, 6));
        let answer = h.client.post(path, &body).await;
        let text = answer.text();
        assert!(!text.contains("falcon"), "{path}: {text}");
        assert!(
            text.contains("Sure."),
            "{path}: released text missing: {text}"
        );
        let last = text
            .split("\n\n")
            .filter(|e| !e.trim().is_empty())
            .last()
            .unwrap_or_default();
        let data: Value = last
            .lines()
            .find_map(|l| l.strip_prefix("data: "))
            .and_then(|d| serde_json::from_str(d).ok())
            .unwrap_or(Value::Null);
        let error = &data["error"];
        assert!(
            data.to_string().contains("guard_policy"),
            "{path}: last event is not the policy error: {last}"
        );
        if path == "/v1/messages" {
            assert_eq!(data["type"], "error", "{last}");
        } else {
            let code = if error.is_object() {
                &error["code"]
            } else {
                &data["code"]
            };
            assert_eq!(code, "content_policy_violation", "{path}: {last}");
        }
        assert!(!text.contains("[DONE]"), "{path}: {text}");
    }

    // On the way in: a plain 400 naming the rule.
    let answer = h
        .client
        .post(
            "/v1/chat/completions",
            &chat("gpt-4o-mini", "status of Project Falcon?", false),
        )
        .await;
    assert_eq!(answer.status, 400);
    assert_eq!(answer.json()["error"]["code"], "content_policy_violation");
    assert!(!answer.text().to_lowercase().contains("falcon"));
}

#[tokio::test]
async fn toggling_a_guardrail_works_next_request_survives_restart_and_is_audited() {
    let (h, _openai) = start("").await;
    let leak = "my key is AKIAIOSFODNN7EXAMPLX, fix the bucket policy";
    let body = chat("gpt-4o-mini", leak, false);
    assert_eq!(
        h.client.post("/v1/chat/completions", &body).await.status,
        200
    );
    let answer = h
        .client
        .admin(
            Method::PUT,
            "/admin/modules/guard_secrets",
            r#"{"enabled": true}"#,
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let refused = h.client.post("/v1/chat/completions", &body).await;
    assert_eq!(refused.status, 400, "{}", refused.text());
    assert_eq!(refused.json()["error"]["code"], "content_policy_violation");
    assert!(refused.text().contains("aws_access_key_id"));
    assert!(!refused.text().contains("AKIAIOSFODNN7EXAMPLX"));

    let toml = format!(
        "[admin]\nkey = \"{ADMIN_KEY}\"\n[providers.anthropic]\nbase_url = \"http://127.0.0.1:9\"\napi_key = \"{ANTHROPIC_KEY}\"\n"
    );
    let h = h.restart(&toml).await;
    assert_eq!(
        h.client.post("/v1/chat/completions", &body).await.status,
        400
    );
    let modules = h
        .client
        .admin(Method::GET, "/admin/modules", "")
        .await
        .json();
    let guard = modules["modules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "guard_secrets")
        .cloned()
        .unwrap_or_default();
    assert_eq!(guard["enabled"], true, "{modules}");
    let audit = h.client.admin(Method::GET, "/admin/audit", "").await.json();
    let entries = audit["entries"].as_array().unwrap();
    assert!(
        entries
            .iter()
            .any(|e| e["action"] == "module.update" && e["target"] == "guard_secrets"),
        "{audit}"
    );
}

/// An external guardrail on 127.0.0.1:0: blocks what mentions `forbidden-word` (rule
/// `corp-rule-9`) or, at a stream's end, `verboten` (rule `late-rule`); takes 2 s over anything
/// that mentions `slow-please`; rewrites a request that mentions `codename-aurora` (in whatever
/// format it came) to say `codename-withheld`; allows the rest.
async fn guard_hook() -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/guard", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 8192];
                let body = loop {
                    let read = tokio::time::timeout(
                        std::time::Duration::from_secs(5),
                        socket.read(&mut chunk),
                    );
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
                            break body.to_string();
                        }
                    }
                };
                let doc: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
                let text = doc["body"].to_string();
                if text.contains("slow-please") {
                    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
                }
                let verdict = if doc["stage"] == "request" && text.contains("codename-aurora") {
                    let rewritten = text.replace("codename-aurora", "codename-withheld");
                    json!({"action": "rewrite", "body": serde_json::from_str::<Value>(&rewritten).unwrap()})
                } else if text.contains("forbidden-word") {
                    json!({"action": "block", "rule": "corp-rule-9"})
                } else if doc["stage"] == "stream_end" && text.contains("verboten") {
                    json!({"action": "block", "rule": "late-rule"})
                } else {
                    json!({"action": "allow"})
                };
                let verdict = verdict.to_string();
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{verdict}",
                    verdict.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
            });
        }
    });
    url
}

#[tokio::test]
async fn the_webhook_blocks_requests_and_streamed_answers_at_their_end_and_fails_closed() {
    let url = guard_hook().await;
    let (h, openai) = start(&format!(
        "[modules.guard_webhook]\nenabled = true\nurl = \"{url}\"\ntimeout_ms = 300\non_error = \"block\"\n"
    ))
    .await;
    // Allowed.
    let answer = h
        .client
        .post("/v1/chat/completions", &chat("gpt-4o-mini", "hello", false))
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    // Refused on the way in, by the webhook's rule.
    let answer = h
        .client
        .post(
            "/v1/chat/completions",
            &chat("gpt-4o-mini", "say forbidden-word", false),
        )
        .await;
    assert_eq!(answer.status, 400, "{}", answer.text());
    assert!(answer.text().contains("corp-rule-9"), "{}", answer.text());
    // No verdict in time: fail closed.
    let answer = h
        .client
        .post(
            "/v1/chat/completions",
            &chat("gpt-4o-mini", "slow-please", false),
        )
        .await;
    assert_eq!(answer.status, 400, "{}", answer.text());
    assert!(
        answer.text().contains("webhook_unavailable"),
        "{}",
        answer.text()
    );
    // A streamed answer judged at its end: the clean ending gives way to the error event.
    for (path, body) in [
        ("/v1/chat/completions", chat("gpt-4o-mini", "go", true)),
        ("/v1/messages", messages("gpt-4o-mini", "go", true)),
    ] {
        openai.push(streamed("this answer is verboten indeed", 3));
        let answer = h.client.post(path, &body).await;
        let text = answer.text();
        assert!(text.contains("late-rule"), "{path}: {text}");
        assert!(
            !text.contains("[DONE]") && !text.contains("message_stop"),
            "{path}: {text}"
        );
    }
}

#[tokio::test]
async fn an_answer_off_its_json_schema_is_asked_again_with_the_error_then_refused() {
    let (h, openai) = start("[modules.guard_schema]\nenabled = true\nmax_retries = 1\n").await;
    let body = json!({
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "a person"}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "person", "schema": {
            "type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}
        }}},
    })
    .to_string();
    let says = |content: &str| Behavior {
        content: Some(content.to_string()),
        ..Behavior::default()
    };
    // Wrong, then right: the retry's answer is the one the client gets.
    openai.push(says(r#"{"nom": 1}"#));
    openai.push(says(r#"{"name": "Ada"}"#));
    let answer = h.client.post("/v1/chat/completions", &body).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(
        answer.json()["choices"][0]["message"]["content"],
        r#"{"name": "Ada"}"#
    );
    let sent = openai.requests();
    assert_eq!(sent.len(), 2);
    let retry = sent[1].body.to_string();
    assert!(
        retry.contains("does not match the required JSON schema"),
        "{retry}"
    );
    assert!(retry.contains("name"), "{retry}");

    // Wrong twice: refused, by rule.
    openai.push(says("not json at all"));
    openai.push(says(r#"{"name": 7}"#));
    let answer = h.client.post("/v1/chat/completions", &body).await;
    assert_eq!(answer.status, 400, "{}", answer.text());
    assert_eq!(answer.json()["error"]["code"], "content_policy_violation");
    assert!(answer.text().contains("response_schema"));
    assert_eq!(openai.requests().len(), 4, "at most one retry");
}

#[tokio::test]
async fn a_phone_number_split_across_chunks_is_caught_before_any_of_it_leaves() {
    let (h, openai) = start("[modules.guard_pii]\nenabled = true\naction = \"block\"\n").await;
    openai.push(streamed(
        "Sure, the desk is reachable on +44 20 7946 0958 during office hours",
        6,
    ));
    let answer = h
        .client
        .post(
            "/v1/chat/completions",
            &chat("gpt-4o-mini", "number?", true),
        )
        .await;
    let text = answer.text();
    assert!(
        text.contains("Sure,"),
        "prose before the number is released: {text}"
    );
    assert!(!text.contains("+44") && !text.contains("7946"), "{text}");
    assert!(
        text.contains("\"rule\"") || text.contains("rule phone"),
        "{text}"
    );
}

#[tokio::test]
async fn a_phone_number_split_across_chunks_is_redacted_whole_and_the_stream_goes_on() {
    let (h, openai) = start("[modules.guard_pii]\nenabled = true\naction = \"redact\"\n").await;
    let answer_text = "Sure, the desk is reachable on +44 20 7946 0958 during office hours";
    // Translated: a Chat client, an OpenAI upstream.
    openai.push(streamed(answer_text, 6));
    let answer = h
        .client
        .post(
            "/v1/chat/completions",
            &chat("gpt-4o-mini", "number?", true),
        )
        .await;
    let text = answer.text();
    assert!(!text.contains("7946") && !text.contains("+44"), "{text}");
    assert!(text.contains("[PHONE_1]"), "{text}");
    assert!(text.contains("office hours"), "the stream went on: {text}");
    assert!(text.contains("[DONE]"), "{text}");
    let content = streamed_text(&text);
    assert_eq!(
        content,
        "Sure, the desk is reachable on [PHONE_1] during office hours"
    );

    // Native: a Messages client, an Anthropic upstream, the events passed through.
    h.mock.push(streamed(answer_text, 6));
    let answer = h
        .client
        .post(
            "/v1/messages",
            &messages("claude-sonnet-4-5", "number?", true),
        )
        .await;
    let body = answer.text();
    assert!(!body.contains("7946") && !body.contains("+44"), "{body}");
    assert!(body.contains("[PHONE_1]"), "{body}");
    assert!(body.contains("message_stop"), "{body}");
}

#[tokio::test]
async fn a_placeholder_the_model_splits_across_chunks_is_restored_whole() {
    let (h, openai) =
        start("[modules.guard_pii]\nenabled = true\naction = \"redact\"\nrestore = true\n").await;
    let ask = "Write to anna.k@example.com about the invoice";
    let mark = mock_upstream::SPLIT_MARK;
    // The placeholder arrives in three pieces, as a model's tokens would bring it.
    let content = format!("I will write to [EM{mark}AIL_{mark}1] today.");
    openai.push(streamed(&content, 1));
    let answer = h
        .client
        .post("/v1/chat/completions", &chat("gpt-4o-mini", ask, true))
        .await;
    let text = answer.text();
    let content = streamed_text(&text);
    assert_eq!(
        content, "I will write to anna.k@example.com today.",
        "{text}"
    );
    let sent = openai.requests().last().unwrap().body.to_string();
    assert!(!sent.contains("anna.k@example.com"), "leaked: {sent}");
}

#[tokio::test]
async fn a_webhook_rewrite_of_the_request_reaches_the_provider_for_every_client_format() {
    let url = guard_hook().await;
    let (h, openai) = start(&format!(
        "[modules.guard_webhook]\nenabled = true\nurl = \"{url}\"\ntimeout_ms = 2000\n"
    ))
    .await;
    let responses = json!({"model": "gpt-4o-mini", "input": "about codename-aurora"}).to_string();
    // Chat, Messages and Responses clients translated to an OpenAI upstream.
    for (path, body) in [
        (
            "/v1/chat/completions",
            chat("gpt-4o-mini", "about codename-aurora", false),
        ),
        (
            "/v1/messages",
            messages("gpt-4o-mini", "about codename-aurora", false),
        ),
        ("/v1/responses", responses.clone()),
    ] {
        let answer = h.client.post(path, &body).await;
        assert_eq!(answer.status, 200, "{path}: {}", answer.text());
        let sent = openai.requests().last().unwrap().body.to_string();
        assert!(sent.contains("codename-withheld"), "{path}: {sent}");
        assert!(!sent.contains("codename-aurora"), "{path}: {sent}");
    }
    // A Messages client on Anthropic: the native pass-through sends the rewritten body.
    let answer = h
        .client
        .post(
            "/v1/messages",
            &messages("claude-sonnet-4-5", "about codename-aurora", false),
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let sent = h.mock.requests().last().unwrap().body.to_string();
    assert!(sent.contains("codename-withheld"), "{sent}");
    assert!(!sent.contains("codename-aurora"), "{sent}");
    // The rewrite is in every trace's verdicts.
    for trace in &h.traces(4).await {
        let verdicts = trace.verdicts.as_deref().unwrap_or_default();
        assert!(verdicts.contains("\"action\":\"rewrite\""), "{verdicts}");
    }
}

#[tokio::test]
async fn native_answers_off_their_schema_are_asked_again_and_answered_in_the_clients_format() {
    let (h, openai) = start("[modules.guard_schema]\nenabled = true\nmax_retries = 1\n").await;
    let schema =
        json!({"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}});
    let says = |content: &str| Behavior {
        content: Some(content.to_string()),
        ..Behavior::default()
    };
    // A Messages client on Anthropic (native): wrong, then the retry (an internal chat call
    // through routing, to the same provider) is right, and comes back as a Messages answer.
    h.mock.push(says(r#"{"nom": 1}"#));
    h.mock.push(says(r#"{"name": "Ada"}"#));
    let body = json!({"model": "claude-sonnet-4-5", "max_tokens": 100,
        "messages": [{"role": "user", "content": "a person"}],
        "output_config": {"format": {"type": "json_schema", "schema": schema}}})
    .to_string();
    let answer = h.client.post("/v1/messages", &body).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let message = answer.json();
    assert_eq!(message["type"], "message", "{message}");
    assert_eq!(
        message["content"][0]["text"], r#"{"name": "Ada"}"#,
        "{message}"
    );
    let sent = h.mock.requests();
    assert_eq!(sent.len(), 2);
    assert!(
        sent[1]
            .body
            .to_string()
            .contains("does not match the required JSON schema"),
        "{}",
        sent[1].body
    );

    // A Responses client on OpenAI (native): the retried answer is a Responses object.
    openai.push(says(r#"{"nom": 1}"#));
    openai.push(says(r#"{"name": "Grace"}"#));
    let body = json!({"model": "gpt-4o-mini", "input": "a person",
        "text": {"format": {"type": "json_schema", "name": "person", "schema": schema}}})
    .to_string();
    let answer = h.client.post("/v1/responses", &body).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let response = answer.json();
    assert_eq!(response["object"], "response", "{response}");
    assert!(
        response.to_string().contains(r#"{\"name\": \"Grace\"}"#),
        "{response}"
    );
    assert_eq!(openai.requests().len(), 2);
}

#[tokio::test]
async fn an_e_mail_in_a_native_answer_is_redacted_before_the_client_sees_it() {
    let (h, _openai) =
        start("[modules.guard_pii]\nenabled = true\naction = \"redact\"\noutput = true\n").await;
    h.mock.push(Behavior {
        content: Some("write to grace.h@example.org today".into()),
        ..Behavior::default()
    });
    let answer = h
        .client
        .post(
            "/v1/messages",
            &messages("claude-sonnet-4-5", "who?", false),
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let text = answer.text();
    assert!(!text.contains("grace.h@example.org"), "leaked: {text}");
    assert!(text.contains("[EMAIL_1]"), "{text}");
    assert_eq!(answer.json()["type"], "message", "{text}");
}
