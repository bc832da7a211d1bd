//! The metric families `/metrics` shows, in one registry per proxy (kept in `Shared`, so a
//! rebuilt chain keeps counting where the old one stopped).
//!
//! Label values are bounded: statuses, endpoints and module names are finite by construction, and
//! model and provider names pass through a [`LabelCap`], so a client inventing model names can't
//! grow the registry without end. No key id, team or user is ever a label.

use std::collections::HashSet;
use std::sync::{PoisonError, RwLock};

use prometheus::{
    Encoder, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};

use super::series::SeriesCache;
use crate::store::writer::WriterSnapshot;

/// Distinct values a capped label takes before the rest are counted as `other`.
pub const MAX_LABEL_VALUES: usize = 64;

/// The first [`MAX_LABEL_VALUES`] values seen pass; later new ones become `other`.
#[derive(Default)]
pub struct LabelCap {
    seen: RwLock<HashSet<String>>,
}

impl LabelCap {
    pub fn admit<'a>(&self, value: &'a str) -> &'a str {
        if self
            .seen
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(value)
        {
            return value;
        }
        let mut seen = self.seen.write().unwrap_or_else(PoisonError::into_inner);
        if seen.len() < MAX_LABEL_VALUES {
            seen.insert(value.to_string());
            return value;
        }
        if seen.contains(value) { value } else { "other" }
    }
}

pub struct Families {
    pub registry: Registry,
    pub requests: IntCounterVec,
    pub latency: HistogramVec,
    pub ttft: HistogramVec,
    pub overhead: HistogramVec,
    pub tokens: IntCounterVec,
    pub cost_usd: prometheus::CounterVec,
    pub rejections: IntCounterVec,
    pub module_events: IntCounterVec,
    pub breaker_open: GaugeVec,
    pub writer_queue_depth: IntGauge,
    pub writer_queue_capacity: IntGauge,
    pub writer_written: IntGauge,
    pub writer_dropped: IntGauge,
    pub writer_failed: IntGauge,
    pub writer_held: IntGauge,
    pub writer_wal_frames: IntGauge,
    pub writer_last_checkpoint: IntGauge,
    pub models: LabelCap,
    pub providers: LabelCap,
    /// A finished request's handles, by its labels (`series.rs`).
    pub series: SeriesCache,
}

/// Seconds, from a quarter millisecond (the proxy's own overhead) to two minutes (a long answer).
fn seconds_buckets() -> Vec<f64> {
    vec![
        0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
        10.0, 30.0, 60.0, 120.0,
    ]
}

impl Families {
    pub fn new() -> Result<Families, prometheus::Error> {
        let registry = Registry::new();
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels)?;
            registry.register(Box::new(c.clone()))?;
            Ok::<_, prometheus::Error>(c)
        };
        let histogram = |name: &str, help: &str, labels: &[&str]| {
            let opts = HistogramOpts::new(name, help).buckets(seconds_buckets());
            let h = HistogramVec::new(opts, labels)?;
            registry.register(Box::new(h.clone()))?;
            Ok::<_, prometheus::Error>(h)
        };
        let gauge = |name: &str, help: &str| {
            let g = IntGauge::new(name, help)?;
            registry.register(Box::new(g.clone()))?;
            Ok::<_, prometheus::Error>(g)
        };
        let cost_usd = prometheus::CounterVec::new(
            Opts::new("stockyard_cost_usd_total", "spend in US dollars, as priced"),
            &["model", "provider"],
        )?;
        registry.register(Box::new(cost_usd.clone()))?;
        let breaker_open = GaugeVec::new(
            Opts::new(
                "stockyard_breaker_open",
                "1 while a deployment's circuit breaker refuses traffic, 0.5 half open, else 0",
            ),
            &["deployment"],
        )?;
        registry.register(Box::new(breaker_open.clone()))?;
        Ok(Families {
            requests: counter(
                "stockyard_requests_total",
                "requests finished, by model, provider, status and what answered",
                &["endpoint", "model", "provider", "status", "answered_by"],
            )?,
            latency: histogram(
                "stockyard_request_duration_seconds",
                "time from request to the last byte",
                &["model", "provider"],
            )?,
            ttft: histogram(
                "stockyard_time_to_first_token_seconds",
                "time to the first streamed token",
                &["model", "provider"],
            )?,
            overhead: histogram(
                "stockyard_overhead_seconds",
                "time the proxy itself spent on a request (total minus upstream)",
                &["endpoint"],
            )?,
            tokens: counter(
                "stockyard_tokens_total",
                "tokens, by direction (input, output)",
                &["model", "provider", "direction"],
            )?,
            cost_usd,
            rejections: counter(
                "stockyard_rejections_total",
                "requests a module refused (rate limits, budgets, guardrails, ...)",
                &["module", "status"],
            )?,
            module_events: counter(
                "stockyard_module_events_total",
                "events modules count: verdicts, cache outcomes, ...",
                &["module", "event"],
            )?,
            breaker_open,
            writer_queue_depth: gauge("stockyard_writer_queue_depth", "records waiting")?,
            writer_queue_capacity: gauge("stockyard_writer_queue_capacity", "queue size")?,
            writer_written: gauge("stockyard_writer_written_rows", "trace rows committed")?,
            writer_dropped: gauge("stockyard_writer_dropped_records", "records dropped")?,
            writer_failed: gauge(
                "stockyard_writer_failed_rows",
                "rows lost to failed commits",
            )?,
            writer_held: gauge(
                "stockyard_writer_held_records",
                "records held in memory while the store is unreachable",
            )?,
            writer_wal_frames: gauge(
                "stockyard_wal_frames",
                "WAL frames left after the last checkpoint",
            )?,
            writer_last_checkpoint: gauge(
                "stockyard_wal_last_checkpoint_ms",
                "when the writer last checkpointed, epoch ms",
            )?,
            models: LabelCap::default(),
            providers: LabelCap::default(),
            series: SeriesCache::default(),
            registry,
        })
    }

    pub fn set_writer(&self, w: &WriterSnapshot) {
        self.writer_queue_depth.set(w.queue_depth as i64);
        self.writer_queue_capacity.set(w.queue_capacity as i64);
        self.writer_written.set(w.written as i64);
        self.writer_dropped.set(w.dropped as i64);
        self.writer_failed.set(w.failed as i64);
        self.writer_held.set(w.held as i64);
        self.writer_wal_frames.set(w.wal_frames as i64);
        self.writer_last_checkpoint.set(w.last_checkpoint_ms);
    }

    /// The registry in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        // Encoding into a Vec can only fail on a malformed family, which `new` ruled out.
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::warn!(error = %e, "metrics not encoded");
        }
        String::from_utf8(out).unwrap_or_default()
    }
}
