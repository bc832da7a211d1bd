//! Routing and resilience over real sockets, with several mock upstreams: retries, retry-after,
//! failover, timeouts, late commit for streams, breakers (also across a restart), fallbacks,
//! load-balancing strategies, aliases and the admin API.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::{ADMIN_KEY, Harness, chat, sse_data};
use hyper::Method;
use mock_upstream::{Behavior, MockUpstream};
use serde_json::{Value, json};

/// Providers `p0..pN` pointing at the mocks, plus `dead` (nothing listens there).
fn providers_toml(mocks: &[&MockUpstream]) -> String {
    let mut toml = format!("[admin]\nkey = \"{ADMIN_KEY}\"\n");
    for (i, mock) in mocks.iter().enumerate() {
        toml.push_str(&format!(
            "[providers.p{i}]\nbase_url = \"{}\"\napi_key = \"key-{i}\"\n",
            mock.base_url()
        ));
    }
    toml.push_str(
        "[providers.dead]\nbase_url = \"http://127.0.0.1:9/v1\"\napi_key = \"key-dead\"\n",
    );
    toml
}

async fn start(mocks: Vec<MockUpstream>, routing_toml: &str) -> (Harness, Vec<MockUpstream>) {
    let refs: Vec<&MockUpstream> = mocks.iter().collect();
    let toml = format!("{}{routing_toml}", providers_toml(&refs));
    let dir = tempfile::tempdir().unwrap();
    let config = common::config_for(&toml, "http://127.0.0.1:9/v1", &dir);
    let mut mocks = mocks;
    let first = mocks.remove(0);
    let h = Harness::start_on(config, first, dir).await;
    (h, mocks)
}

async fn mocks(n: usize) -> Vec<MockUpstream> {
    let mut all = Vec::new();
    for _ in 0..n {
        all.push(MockUpstream::start().await.unwrap());
    }
    all
}

const FAST_RETRY: &str = "retry = { max_attempts = 3, base_backoff_ms = 5, max_backoff_ms = 20 }\n";

#[tokio::test]
async fn a_500_is_retried_once_and_succeeds() {
    let (h, _others) = start(mocks(1).await, &format!(
        "[modules.routing.groups.pool]\n{FAST_RETRY}[[modules.routing.groups.pool.deployments]]\nprovider = \"p0\"\nmodel = \"m0\"\n"
    )).await;
    h.mock.push(Behavior {
        status: Some(500),
        ..Behavior::default()
    });
    let answer = h
        .client
        .post("/v1/chat/completions", &chat("pool", "hi", false))
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.header("x-stockyard-attempts"), Some("2"));
    assert_eq!(answer.header("x-stockyard-deployment"), Some("pool/p0/m0"));
    assert_eq!(h.mock.request_count(), 2);
    let trace = &h.traces(1).await[0];
    assert_eq!(
        (trace.attempts, trace.deployment.as_deref()),
        (2, Some("pool/p0/m0"))
    );
    assert_eq!(trace.upstream_model.as_deref(), Some("m0"));
}

#[tokio::test]
async fn a_429_with_retry_after_waits_then_succeeds() {
    let (h, _others) = start(mocks(1).await, &format!(
        "[modules.routing.groups.pool]\n{FAST_RETRY}[[modules.routing.groups.pool.deployments]]\nprovider = \"p0\"\nmodel = \"m0\"\n"
    )).await;
    h.mock.push(Behavior {
        status: Some(429),
        retry_after_s: Some(1),
        ..Behavior::default()
    });
    let started = Instant::now();
    let answer = h
        .client
        .post("/v1/chat/completions", &chat("pool", "hi", false))
        .await;
    let waited = started.elapsed();
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert!(
        waited >= Duration::from_millis(950),
        "retried after {waited:?}, before retry-after"
    );
    assert!(waited < Duration::from_secs(5));
    assert_eq!(h.mock.request_count(), 2);
}

#[tokio::test]
async fn a_refused_connection_moves_to_the_next_deployment() {
    let (h, _others) = start(mocks(1).await, &format!(
        "[modules.routing.groups.pool]\nstrategy = \"priority\"\n{FAST_RETRY}\
         [[modules.routing.groups.pool.deployments]]\nprovider = \"dead\"\nmodel = \"m-dead\"\npriority = 0\n\
         [[modules.routing.groups.pool.deployments]]\nprovider = \"p0\"\nmodel = \"m0\"\npriority = 1\n"
    )).await;
    let answer = h
        .client
        .post("/v1/chat/completions", &chat("pool", "hi", false))
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.header("x-stockyard-deployment"), Some("pool/p0/m0"));
    assert_eq!(answer.header("x-stockyard-attempts"), Some("2"));
}

#[tokio::test]
async fn a_timeout_before_the_first_byte_is_retried() {
    let (h, _others) = start(
        mocks(1).await,
        &format!(
            "[modules.routing.groups.pool]\n{FAST_RETRY}timeouts = {{ first_byte_ms = 300 }}\n\
         [[modules.routing.groups.pool.deployments]]\nprovider = \"p0\"\nmodel = \"m0\"\n"
        ),
    )
    .await;
    h.mock.push(Behavior {
        headers_delay_ms: 2_000,
        ..Behavior::default()
    });
    let started = Instant::now();
    let answer = h
        .client
        .post("/v1/chat/completions", &chat("pool", "hi", false))
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert!(started.elapsed() < Duration::from_millis(1_500));
    assert_eq!(answer.header("x-stockyard-attempts"), Some("2"));
}

#[tokio::test]
async fn a_stream_failing_before_content_falls_back_and_the_client_sees_one_clean_stream() {
    let (h, others) = start(mocks(2).await, &format!(
        "[modules.routing.groups.primary]\nretry = {{ max_attempts = 1 }}\nfallbacks = [\"backup\"]\n\
         [[modules.routing.groups.primary.deployments]]\nprovider = \"p0\"\nmodel = \"m0\"\n\
         [modules.routing.groups.backup]\n{FAST_RETRY}[[modules.routing.groups.backup.deployments]]\nprovider = \"p1\"\nmodel = \"m1\"\n"
    )).await;
    h.mock.push(Behavior {
        reset_after_chunks: Some(0),
        ..Behavior::default()
    });
    let answer = h
        .client
        .post("/v1/chat/completions", &chat("primary", "hi", true))
        .await;
    assert_eq!(answer.status, 200);
    let data = sse_data(&answer.text());
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"), "{data:?}");
    let roles = data.iter().filter(|d| d.contains("\"role\"")).count();
    assert_eq!(roles, 1, "exactly one stream reached the client: {data:?}");
    assert!(!data.iter().any(|d| d.contains("\"error\"")));
    assert_eq!((h.mock.request_count(), others[0].request_count()), (1, 1));
    assert_eq!(
        answer.header("x-stockyard-deployment"),
        Some("backup/p1/m1")
    );
    let trace = &h.traces(1).await[0];
    assert_eq!((trace.attempts, trace.error_class.as_deref()), (2, None));
}

#[tokio::test]
async fn a_reset_after_content_is_an_error_event_and_not_retried() {
    let (h, _others) = start(mocks(1).await, &format!(
        "[modules.routing.groups.pool]\n{FAST_RETRY}[[modules.routing.groups.pool.deployments]]\nprovider = \"p0\"\nmodel = \"m0\"\n"
    )).await;
    h.mock.push(Behavior {
        reset_after_chunks: Some(2),
        ..Behavior::default()
    });
    let answer = h
        .client
        .post("/v1/chat/completions", &chat("pool", "hi", true))
        .await;
    let data = sse_data(&answer.text());
    assert!(data.last().unwrap().contains("\"error\""), "{data:?}");
    assert!(!data.iter().any(|d| d == "[DONE]"));
    assert_eq!(
        h.mock.request_count(),
        1,
        "no retry once content reached the client"
    );
}

#[tokio::test]
async fn a_breaker_opens_refuses_probes_closes_and_survives_a_restart() {
    let routing = "[modules.routing.groups.pool]\nretry = { max_attempts = 1 }\n\
         breaker = { consecutive_failures = 3, cooldown_ms = 1500 }\n\
         [[modules.routing.groups.pool.deployments]]\nprovider = \"p0\"\nmodel = \"m0\"\n";
    let (h, _others) = start(mocks(1).await, routing).await;
    let body = chat("pool", "hi", false);
    for _ in 0..3 {
        h.mock.push(Behavior {
            status: Some(500),
            ..Behavior::default()
        });
        assert_eq!(
            h.client.post("/v1/chat/completions", &body).await.status,
            500
        );
    }
    // Open: nothing reaches the upstream, and the 503 says which group and when.
    let answer = h.client.post("/v1/chat/completions", &body).await;
    assert_eq!(answer.status, 503, "{}", answer.text());
    let retry_after: u64 = answer.header("retry-after").unwrap().parse().unwrap();
    assert!(retry_after >= 1, "{retry_after}");
    let message = answer.json()["error"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        message.contains("\"pool\"") && message.contains(" s"),
        "{message}"
    );
    assert_eq!(h.mock.request_count(), 3);
    let breakers = h
        .client
        .admin(Method::GET, "/admin/breakers", "")
        .await
        .json();
    assert_eq!(breakers["breakers"][0]["deployment"], "pool/p0/m0");
    assert_eq!(breakers["breakers"][0]["state"]["phase"], "open");

    // Restart inside the cool-down: still open, still nothing sent.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let toml = providers_toml(&[&h.mock]) + routing;
    let Harness {
        server, mock, dir, ..
    } = h;
    server.stop().await.unwrap();
    let h = Harness::start_on(
        common::config_for(&toml, "http://127.0.0.1:9/v1", &dir),
        mock,
        dir,
    )
    .await;
    assert_eq!(
        h.client.post("/v1/chat/completions", &body).await.status,
        503
    );
    assert_eq!(h.mock.request_count(), 3);

    // After the cool-down a probe goes through; its success closes the breaker.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(
        h.client.post("/v1/chat/completions", &body).await.status,
        200
    );
    assert_eq!(h.mock.request_count(), 4);
    let breakers = h
        .client
        .admin(Method::GET, "/admin/breakers", "")
        .await
        .json();
    assert_eq!(breakers["breakers"][0]["state"]["phase"], "closed");
}

#[tokio::test]
async fn a_failed_probe_reopens_the_breaker() {
    let (h, _others) = start(
        mocks(1).await,
        "[modules.routing.groups.pool]\nretry = { max_attempts = 1 }\n\
         breaker = { consecutive_failures = 1, cooldown_ms = 300 }\n\
         [[modules.routing.groups.pool.deployments]]\nprovider = \"p0\"\nmodel = \"m0\"\n",
    )
    .await;
    let body = chat("pool", "hi", false);
    h.mock.push(Behavior {
        status: Some(502),
        ..Behavior::default()
    });
    assert_eq!(
        h.client.post("/v1/chat/completions", &body).await.status,
        502
    );
    assert_eq!(
        h.client.post("/v1/chat/completions", &body).await.status,
        503
    );
    tokio::time::sleep(Duration::from_millis(350)).await;
    h.mock.push(Behavior {
        status: Some(502),
        ..Behavior::default()
    });
    assert_eq!(
        h.client.post("/v1/chat/completions", &body).await.status,
        502,
        "the probe went through and failed"
    );
    assert_eq!(
        h.client.post("/v1/chat/completions", &body).await.status,
        503,
        "open again"
    );
    assert_eq!(h.mock.request_count(), 2);
}

#[tokio::test]
async fn fallbacks_on_exhausted_retries_and_on_context_window() {
    let (h, others) = start(mocks(2).await, "[modules.routing.groups.gpt]\nretry = { max_attempts = 2, base_backoff_ms = 5 }\n\
         fallbacks = [\"claude\"]\n[[modules.routing.groups.gpt.deployments]]\nprovider = \"p0\"\nmodel = \"gpt-x\"\n\
         [modules.routing.groups.claude]\nretry = { max_attempts = 1 }\n\
         [[modules.routing.groups.claude.deployments]]\nprovider = \"p1\"\nmodel = \"claude-x\"\n").await;
    let body = chat("gpt", "hi", false);
    h.mock.push(Behavior {
        status: Some(503),
        ..Behavior::default()
    });
    h.mock.push(Behavior {
        status: Some(503),
        ..Behavior::default()
    });
    let answer = h.client.post("/v1/chat/completions", &body).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(
        answer.header("x-stockyard-deployment"),
        Some("claude/p1/claude-x")
    );
    assert_eq!(answer.header("x-stockyard-attempts"), Some("3"));
    assert_eq!(others[0].requests()[0].body["model"], "claude-x");

    // Context window exceeded: straight to the fallback, no retry of the same group.
    h.mock.push(Behavior {
        status: Some(400),
        error_code: Some("context_length_exceeded".into()),
        ..Behavior::default()
    });
    let answer = h.client.post("/v1/chat/completions", &body).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("x-stockyard-attempts"), Some("2"));
    // A plain client error is not retried and not fallen back from.
    h.mock.push(Behavior {
        status: Some(400),
        ..Behavior::default()
    });
    let answer = h.client.post("/v1/chat/completions", &body).await;
    assert_eq!(answer.status, 400);
    assert_eq!(h.mock.request_count(), 4);
}

/// `workers` clients, each sending requests one after another, `n` in all; counts by deployment.
async fn spread(
    h: &Harness,
    model: &str,
    n: usize,
    workers: usize,
) -> std::collections::HashMap<String, usize> {
    let remaining = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(n));
    let mut tasks = Vec::new();
    for _ in 0..workers {
        let client = common::TestClient::new(h.server.url());
        let body = chat(model, "hi", false);
        let remaining = remaining.clone();
        tasks.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            while remaining
                .fetch_update(
                    std::sync::atomic::Ordering::SeqCst,
                    std::sync::atomic::Ordering::SeqCst,
                    |r| r.checked_sub(1),
                )
                .is_ok()
            {
                let answer = client.post("/v1/chat/completions", &body).await;
                assert_eq!(answer.status, 200, "{}", answer.text());
                seen.push(answer.header("x-stockyard-deployment").unwrap().to_string());
            }
            seen
        }));
    }
    let mut counts = std::collections::HashMap::new();
    for task in tasks {
        for deployment in task.await.unwrap() {
            *counts.entry(deployment).or_insert(0) += 1;
        }
    }
    counts
}

#[tokio::test]
async fn weighted_random_follows_the_weights() {
    let (h, _others) = start(mocks(2).await, "[modules.routing.groups.pool]\n\
         [[modules.routing.groups.pool.deployments]]\nprovider = \"p0\"\nmodel = \"a\"\nweight = 3\n\
         [[modules.routing.groups.pool.deployments]]\nprovider = \"p1\"\nmodel = \"b\"\nweight = 1\n").await;
    let counts = spread(&h, "pool", 400, 8).await;
    let a = counts.get("pool/p0/a").copied().unwrap_or(0);
    // Expect 300 of 400; 4.5 standard deviations either side is 261..339.
    assert!((255..=345).contains(&a), "{counts:?}");
}

#[tokio::test]
async fn least_inflight_and_lowest_latency_steer_away_from_a_slow_deployment() {
    for strategy in ["least_inflight", "lowest_latency"] {
        let all = mocks(2).await;
        all[0].set_default(Behavior {
            headers_delay_ms: 150,
            ..Behavior::default()
        });
        let (h, _others) = start(
            all,
            &format!(
                "[modules.routing.groups.pool]\nstrategy = \"{strategy}\"\n\
             [[modules.routing.groups.pool.deployments]]\nprovider = \"p0\"\nmodel = \"slow\"\n\
             [[modules.routing.groups.pool.deployments]]\nprovider = \"p1\"\nmodel = \"fast\"\n"
            ),
        )
        .await;
        let counts = spread(&h, "pool", 120, 4).await;
        let slow = counts.get("pool/p0/slow").copied().unwrap_or(0);
        // Even shares would give the slow one 60; steering keeps it to a handful.
        assert!(slow <= 20, "{strategy}: {counts:?}");
    }
}

#[tokio::test]
async fn priority_sends_everything_to_the_first_tier() {
    let (h, _others) = start(mocks(2).await, "[modules.routing.groups.pool]\nstrategy = \"priority\"\n\
         [[modules.routing.groups.pool.deployments]]\nprovider = \"p1\"\nmodel = \"second\"\npriority = 2\n\
         [[modules.routing.groups.pool.deployments]]\nprovider = \"p0\"\nmodel = \"first\"\npriority = 1\n").await;
    let counts = spread(&h, "pool", 30, 5).await;
    assert_eq!(counts.get("pool/p0/first"), Some(&30), "{counts:?}");
}

#[tokio::test]
async fn tag_split_is_sticky_per_tag_and_recorded_in_the_trace() {
    let (h, _others) = start(mocks(2).await, "[modules.routing.groups.ab]\nstrategy = \"tag_split\"\n\
         [[modules.routing.groups.ab.deployments]]\nprovider = \"p0\"\nmodel = \"a\"\nvariant = \"control\"\n\
         [[modules.routing.groups.ab.deployments]]\nprovider = \"p1\"\nmodel = \"b\"\nvariant = \"treatment\"\n").await;
    let mut seen = std::collections::HashMap::new();
    for user in 0..40 {
        let tag = format!("user-{user}");
        for _ in 0..2 {
            let answer = h
                .client
                .call(
                    Method::POST,
                    "/v1/chat/completions",
                    &chat("ab", "hi", false),
                    &[("x-stockyard-tag", &tag)],
                )
                .await;
            let deployment = answer.header("x-stockyard-deployment").unwrap().to_string();
            let previous = seen.insert(tag.clone(), deployment.clone());
            assert!(previous.is_none_or(|p| p == deployment), "tag {tag} moved");
        }
    }
    let a = seen.values().filter(|d| d.ends_with("/a")).count();
    assert!((8..=32).contains(&a), "split {a}/40");
    let traces = h.traces(80).await;
    let variants: std::collections::HashSet<_> =
        traces.iter().filter_map(|t| t.variant.clone()).collect();
    assert_eq!(
        variants,
        ["control".to_string(), "treatment".to_string()]
            .into_iter()
            .collect()
    );
}

#[tokio::test]
async fn aliases_and_groups_change_at_runtime_through_the_admin_api_and_ledger() {
    let (h, _others) = start(mocks(1).await, "").await;
    let answer = h
        .client
        .post("/v1/chat/completions", &chat("fast", "hi", false))
        .await;
    assert_eq!(answer.status, 404);

    let answer = h
        .client
        .admin(
            Method::PUT,
            "/admin/aliases/fast",
            r#"{"target": "p0/llama-3.3-70b"}"#,
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let answer = h
        .client
        .post("/v1/chat/completions", &chat("fast", "hi", false))
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(h.mock.requests()[0].body["model"], "llama-3.3-70b");

    let group =
        json!({"strategy": "priority", "deployments": [{"provider": "p0", "model": "grouped"}]});
    let answer = h
        .client
        .admin(Method::PUT, "/admin/groups/pool", &group.to_string())
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let answer = h
        .client
        .admin(Method::PUT, "/admin/aliases/fast", r#"{"target": "pool"}"#)
        .await;
    assert_eq!(answer.status, 200);
    let answer = h
        .client
        .post("/v1/chat/completions", &chat("fast", "hi", false))
        .await;
    assert_eq!(
        answer.header("x-stockyard-deployment"),
        Some("pool/p0/grouped")
    );

    // Invalid: unknown provider, alias to nowhere, deleting what isn't there.
    let bad = json!({"deployments": [{"provider": "nope", "model": "x"}]});
    let answer = h
        .client
        .admin(Method::PUT, "/admin/groups/bad", &bad.to_string())
        .await;
    assert_eq!(answer.status, 400);
    assert!(
        answer.text().contains("groups.bad.deployments[0].provider"),
        "{}",
        answer.text()
    );
    let answer = h
        .client
        .admin(
            Method::PUT,
            "/admin/aliases/x",
            r#"{"target": "no-such-model-or-group"}"#,
        )
        .await;
    assert_eq!(answer.status, 400);
    let answer = h
        .client
        .admin(Method::DELETE, "/admin/aliases/never-set", "")
        .await;
    assert_eq!(answer.status, 404);

    // Force a breaker open, then reset it.
    let answer = h
        .client
        .admin(
            Method::POST,
            "/admin/breakers/pool/p0/grouped/open",
            r#"{"for_ms": 60000}"#,
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(
        h.client
            .post("/v1/chat/completions", &chat("pool", "hi", false))
            .await
            .status,
        503
    );
    let answer = h
        .client
        .admin(Method::POST, "/admin/breakers/pool/p0/grouped/reset", "")
        .await;
    assert_eq!(answer.status, 200);
    assert_eq!(
        h.client
            .post("/v1/chat/completions", &chat("pool", "hi", false))
            .await
            .status,
        200
    );
    let answer = h
        .client
        .admin(
            Method::POST,
            "/admin/breakers/nope/x/open",
            r#"{"for_ms": 5}"#,
        )
        .await;
    assert_eq!(answer.status, 404);

    let answer = h
        .client
        .admin(Method::DELETE, "/admin/aliases/fast", "")
        .await;
    assert_eq!(answer.status, 200);
    assert_eq!(
        h.client
            .post("/v1/chat/completions", &chat("fast", "hi", false))
            .await
            .status,
        404
    );

    let routing = h
        .client
        .admin(Method::GET, "/admin/routing", "")
        .await
        .json();
    assert!(routing["routing"]["groups"]["pool"].is_object());
    let audit = h.client.admin(Method::GET, "/admin/audit", "").await.json();
    assert_eq!(audit["verify"]["ok"], true);
    let actions: Vec<&str> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "alias.set",
            "group.set",
            "alias.set",
            "breaker.open",
            "breaker.reset",
            "alias.delete"
        ]
    );
    let value: Value = audit["entries"][0]["details"]["after"]["config"]["aliases"].clone();
    assert_eq!(value["fast"], "p0/llama-3.3-70b");
}

/// Restarts `h`'s server on the same database with `toml` (providers included), keeping its mock.
async fn restart_with(h: Harness, toml: &str) -> Harness {
    let Harness {
        server, mock, dir, ..
    } = h;
    server.stop().await.unwrap();
    let config = common::config_for(toml, "http://127.0.0.1:9/v1", &dir);
    Harness::start_on(config, mock, dir).await
}

fn provider_toml(name: &str, base_url: &str) -> String {
    format!("[providers.{name}]\nbase_url = \"{base_url}\"\napi_key = \"key-{name}\"\n")
}

#[tokio::test]
async fn issue_9_a_plain_model_has_no_breaker_and_works_once_its_url_is_fixed() {
    let mock = MockUpstream::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let broken = provider_toml("up", "http://127.0.0.1:9/v1");
    let config = common::config_for(&broken, "http://127.0.0.1:9/v1", &dir);
    let h = Harness::start_on(config, mock, dir).await;
    let body = chat("up/m", "hi", false);
    // More failures than a default breaker tolerates: each one is still tried, none is a 503.
    for _ in 0..7 {
        let answer = h.client.post("/v1/chat/completions", &body).await;
        assert_eq!(answer.status, 502, "{}", answer.text());
        assert!(!answer.text().contains("group"), "{}", answer.text());
    }
    let fixed = provider_toml("up", &h.mock.base_url());
    let h = restart_with(h, &fixed).await;
    let answer = h.client.post("/v1/chat/completions", &body).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(h.mock.request_count(), 1);
    assert!(
        h.store().breakers.breakers().unwrap().is_empty(),
        "no breaker was stored for a model in no group"
    );
}

#[tokio::test]
async fn issue_9_a_plain_models_429_cool_down_is_in_memory_and_names_the_model() {
    let mock = MockUpstream::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let toml = provider_toml("up", &mock.base_url());
    let config = common::config_for(&toml, "http://127.0.0.1:9/v1", &dir);
    let h = Harness::start_on(config, mock, dir).await;
    h.mock.push(Behavior {
        status: Some(429),
        retry_after_s: Some(30),
        ..Behavior::default()
    });
    let body = chat("up/m", "hi", false);
    assert_eq!(
        h.client.post("/v1/chat/completions", &body).await.status,
        429
    );
    // Inside the retry-after: refused without a call, naming the model, not a group.
    let answer = h.client.post("/v1/chat/completions", &body).await;
    assert_eq!(answer.status, 503, "{}", answer.text());
    let message = answer.json()["error"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(message.contains("model \"up/m\""), "{message}");
    assert!(!message.contains("group"), "{message}");
    assert_eq!(h.mock.request_count(), 1);
    // Not persisted: a restart forgets it.
    let h = restart_with(h, &toml).await;
    let answer = h.client.post("/v1/chat/completions", &body).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(h.mock.request_count(), 2);
}

#[tokio::test]
async fn issue_9_a_breaker_is_keyed_by_its_upstream_url_across_a_restart() {
    let mut all = mocks(3).await;
    let (stayed, moved_to) = (all.remove(1), all.remove(1));
    let moved_from = all.remove(0);
    let routing = "[modules.routing.groups.g_moved]\nretry = { max_attempts = 1 }\n\
         breaker = { consecutive_failures = 1, cooldown_ms = 60000 }\n\
         [[modules.routing.groups.g_moved.deployments]]\nprovider = \"moved\"\nmodel = \"m\"\n\
         [modules.routing.groups.g_stayed]\nretry = { max_attempts = 1 }\n\
         breaker = { consecutive_failures = 1, cooldown_ms = 60000 }\n\
         [[modules.routing.groups.g_stayed.deployments]]\nprovider = \"stayed\"\nmodel = \"m\"\n";
    let toml = |moved_url: &str| {
        format!(
            "[admin]\nkey = \"{ADMIN_KEY}\"\n{}{}{routing}",
            provider_toml("moved", moved_url),
            provider_toml("stayed", &stayed.base_url())
        )
    };
    let dir = tempfile::tempdir().unwrap();
    let config = common::config_for(&toml(&moved_from.base_url()), "http://127.0.0.1:9/v1", &dir);
    let h = Harness::start_on(config, moved_from, dir).await;
    for (mock, group) in [(&h.mock, "g_moved"), (&stayed, "g_stayed")] {
        mock.push(Behavior {
            status: Some(500),
            ..Behavior::default()
        });
        let body = chat(group, "hi", false);
        assert_eq!(
            h.client.post("/v1/chat/completions", &body).await.status,
            500
        );
        assert_eq!(
            h.client.post("/v1/chat/completions", &body).await.status,
            503,
            "{group} is open"
        );
    }
    let listed = h
        .client
        .admin(Method::GET, "/admin/breakers", "")
        .await
        .json();
    assert_eq!(listed["breakers"][0]["deployment"], "g_moved/moved/m");
    assert_eq!(
        listed["breakers"][0]["upstream"].as_str(),
        Some(h.mock.base_url().trim_end_matches('/'))
    );

    let h = restart_with(h, &toml(&moved_to.base_url())).await;
    let answer = h
        .client
        .post("/v1/chat/completions", &chat("g_moved", "hi", false))
        .await;
    assert_eq!(
        answer.status,
        200,
        "the moved deployment starts closed: {}",
        answer.text()
    );
    assert_eq!(moved_to.request_count(), 1);
    let answer = h
        .client
        .post("/v1/chat/completions", &chat("g_stayed", "hi", false))
        .await;
    assert_eq!(
        answer.status,
        503,
        "the unchanged one stays open: {}",
        answer.text()
    );
    assert_eq!(stayed.request_count(), 1);
}
