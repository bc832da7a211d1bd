//! `/metrics`: scraped and parsed as Prometheus would, its counters match the requests sent.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::prom::{self, parse};
use common::{Harness, chat};
use hyper::StatusCode;

#[tokio::test]
async fn counters_match_the_requests_sent() {
    let h = Harness::start().await;
    let (ok_plain, ok_stream, unknown) = (5, 3, 2);
    for i in 0..ok_plain {
        let answer = h
            .client
            .post(
                "/v1/chat/completions",
                &chat("gpt-4o-mini", &format!("hi {i}"), false),
            )
            .await;
        assert_eq!(answer.status, StatusCode::OK);
    }
    for _ in 0..ok_stream {
        let answer = h
            .client
            .post("/v1/chat/completions", &chat("gpt-4o-mini", "stream", true))
            .await;
        assert_eq!(answer.status, StatusCode::OK);
    }
    for _ in 0..unknown {
        let answer = h
            .client
            .post("/v1/chat/completions", &chat("no-such/model-x", "x", false))
            .await;
        assert!(!answer.status.is_success());
    }
    let total = ok_plain + ok_stream + unknown;
    let traces = h.traces(total).await;

    let scraped = h.client.get("/metrics").await;
    assert_eq!(scraped.status, StatusCode::OK);
    assert!(
        scraped
            .header("content-type")
            .is_some_and(|c| c.starts_with("text/plain; version=0.0.4"))
    );
    let scrape = parse(&scraped.text());
    assert_eq!(scrape.types["stockyard_requests_total"], "counter");
    assert_eq!(
        scrape.types["stockyard_request_duration_seconds"],
        "histogram"
    );

    let requests = |labels: &[(&str, &str)]| scrape.sum("stockyard_requests_total", labels);
    assert_eq!(requests(&[]), total as f64);
    assert_eq!(
        requests(&[
            ("status", "200"),
            ("model", "gpt-4o-mini"),
            ("provider", "openai")
        ]),
        (ok_plain + ok_stream) as f64
    );
    // Every status the traces hold is counted the same number of times.
    for status in traces.iter().map(|t| t.status) {
        let want = traces.iter().filter(|t| t.status == status).count() as f64;
        assert_eq!(requests(&[("status", &status.to_string())]), want);
    }
    assert_eq!(
        scrape.sum("stockyard_request_duration_seconds_count", &[]),
        total as f64
    );
    assert_eq!(
        scrape.sum("stockyard_time_to_first_token_seconds_count", &[]),
        ok_stream as f64
    );
    let input: u64 = traces.iter().map(|t| t.tokens.prompt).sum();
    let output: u64 = traces.iter().map(|t| t.tokens.completion).sum();
    assert!(input > 0 && output > 0);
    assert_eq!(
        scrape.sum("stockyard_tokens_total", &[("direction", "input")]),
        input as f64
    );
    assert_eq!(
        scrape.sum("stockyard_tokens_total", &[("direction", "output")]),
        output as f64
    );
    let cost_nanos: i64 = traces.iter().map(|t| t.cost_nanos).sum();
    let cost = scrape.sum("stockyard_cost_usd_total", &[]);
    assert!((cost - cost_nanos as f64 / 1e9).abs() < 1e-9, "{cost}");
    // The writer committed the rows the test read back, and says so.
    assert!(scrape.sum("stockyard_writer_batch_rows_count", &[]) >= 1.0);
    assert_eq!(
        scrape.sum("stockyard_writer_batch_rows_sum", &[]),
        total as f64
    );
    assert_eq!(scrape.sum("stockyard_writer_dropped_records", &[]), 0.0);
    assert!(scrape.sum("stockyard_writer_commit_seconds_count", &[]) >= 1.0);
    // No key, team or user is a label.
    for sample in &scrape.samples {
        for key in sample.labels.keys() {
            assert!(
                !["key_id", "team", "user"].contains(&key.as_str()),
                "{sample:?}"
            );
        }
    }
}

#[tokio::test]
async fn a_disabled_module_stops_counting_and_keeps_the_totals() {
    let h = Harness::start_with("[modules.metrics]\nenabled = false\n").await;
    h.client
        .post("/v1/chat/completions", &chat("gpt-4o-mini", "hi", false))
        .await;
    h.traces(1).await;
    let scrape = parse(&h.client.get("/metrics").await.text());
    assert_eq!(scrape.sum("stockyard_requests_total", &[]), 0.0);
    // The writer's side is there either way.
    assert!(scrape.types.contains_key("stockyard_writer_queue_depth"));
}

#[test]
fn the_test_parser_reads_labels_escapes_and_special_values() {
    let scrape = prom::parse(
        "# HELP x_total help\n# TYPE x_total counter\nx_total{a=\"1\",b=\"q\\\"\\\\\"} 3\nh_bucket{le=\"+Inf\"} +Inf 123\ny 2.5\n",
    );
    assert_eq!(scrape.types["x_total"], "counter");
    assert_eq!(scrape.sum("x_total", &[("b", "q\"\\")]), 3.0);
    assert_eq!(scrape.sum("y", &[]), 2.5);
    assert!(scrape.sum("h_bucket", &[("le", "+Inf")]).is_infinite());
}
