//! `metrics`: counts every finished request into Prometheus families (`families.rs`), which
//! `GET /metrics` renders in the text format together with the writer's queue, batches, commits
//! and drops, and the routing breakers' states.
//!
//! The counters live in [`Shared`], not in the module, so disabling the module stops the counting
//! without losing what was counted, and other modules count their own events through
//! [`count_event`] whether or not this module is in the chain. Recording is one lookup of the
//! request's series (`series.rs`) and a handful of atomic adds in `on_finish`, after `cost`
//! priced it.

mod families;
mod series;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

pub use families::{Families, LabelCap, MAX_LABEL_VALUES};
use series::SeriesLabels;

use super::registry::{ModuleConfig, ModuleSpec};
use super::shared::Shared;
use super::{Hooks, Module, ModuleDeps, ModuleError, Outcome};
use crate::request::RequestCtx;
use crate::store::BreakerPhase;

pub const SPEC: ModuleSpec = ModuleSpec {
    name: "metrics",
    description: "counts requests, latency, tokens, cost and rejections for GET /metrics (Prometheus)",
    order: 95,
    // After cost (10) and the settling modules, before trace (90): the numbers are final.
    finish_order: 80,
    enabled_by_default: true,
    required: super::registry::never_required,
    default_config: MetricsConfig::default_json,
    check: MetricsConfig::check,
    build,
};

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {}

impl ModuleConfig for MetricsConfig {}

/// The metric families of this proxy, registered the first time anything asks.
pub struct MetricsState {
    pub families: Families,
    /// The writer's histograms joined the registry (at the first scrape).
    writer_registered: AtomicBool,
}

/// The proxy's metrics, made on first use; `None` only if the families could not be registered,
/// which the unit tests rule out.
pub fn state(shared: &Shared) -> Option<Arc<MetricsState>> {
    let made = shared.get_or_init(|| match Families::new() {
        Ok(families) => Some(Arc::new(MetricsState {
            families,
            writer_registered: AtomicBool::new(false),
        })),
        Err(e) => {
            tracing::error!(error = %e, "metrics families not registered");
            None
        }
    });
    made.as_ref().clone()
}

/// Counts one event of a module (a guardrail verdict, a cache hit, ...) under
/// `stockyard_module_events_total{module, event}`. Both labels must come from a fixed set.
pub fn count_event(shared: &Shared, module: &'static str, event: &'static str) {
    if let Some(state) = state(shared) {
        state
            .families
            .module_events
            .with_label_values(&[module, event])
            .inc();
    }
}

fn build(config: &serde_json::Value, deps: &ModuleDeps) -> Result<Arc<dyn Module>, ModuleError> {
    MetricsConfig::parse(config).map_err(ModuleError::Config)?;
    let state = state(&deps.shared).ok_or_else(|| ModuleError::Failed {
        module: "metrics",
        message: "metric families could not be registered".into(),
    })?;
    Ok(Arc::new(Metrics { state }))
}

pub struct Metrics {
    state: Arc<MetricsState>,
}

#[async_trait]
impl Module for Metrics {
    fn name(&self) -> &'static str {
        "metrics"
    }

    fn hooks(&self) -> Hooks {
        Hooks::FINISH_NOW
    }

    fn fail_policy(&self) -> super::FailPolicy {
        super::FailPolicy::Open
    }

    fn on_finish_now(&self, ctx: &mut RequestCtx, _outcome: Outcome) {
        record(&self.state.families, ctx);
    }
}

fn record(f: &Families, ctx: &RequestCtx) {
    let status = status_label(ctx.result.status);
    if let Some(module) = ctx.route.refused_by {
        f.rejections.with_label_values(&[module, status]).inc();
    }
    let labels = SeriesLabels {
        endpoint: ctx.request.endpoint.as_str(),
        model: ctx
            .upstream_model()
            .unwrap_or(ctx.request.requested_model.as_str()),
        provider: ctx.provider_name().unwrap_or("none"),
        status,
        answered_by: ctx.route.answered_by.unwrap_or("upstream"),
    };
    f.series.with(f, labels, |series| {
        series.requests.inc();
        series
            .latency
            .observe(ctx.timings.started.elapsed().as_secs_f64());
        if let Some(ttft) = ctx.timings.ttft {
            series.ttft(f).observe(ttft.as_secs_f64());
        }
        series.overhead.observe(ctx.timings.overhead.as_secs_f64());
        let tokens = &ctx.usage.tokens;
        if tokens.prompt > 0 {
            series.input_tokens(f).inc_by(tokens.prompt);
        }
        if tokens.completion > 0 {
            series.output_tokens(f).inc_by(tokens.completion);
        }
        if ctx.usage.cost_nanos > 0 {
            series.cost_usd(f).inc_by(ctx.usage.cost_nanos as f64 / 1e9);
        }
    });
}

/// Status codes as static strings: a fixed set, so no allocation and no unbounded label.
fn status_label(status: u16) -> &'static str {
    match status {
        200 => "200",
        400 => "400",
        401 => "401",
        403 => "403",
        404 => "404",
        408 => "408",
        413 => "413",
        422 => "422",
        429 => "429",
        499 => "499",
        500 => "500",
        502 => "502",
        503 => "503",
        504 => "504",
        s if s < 300 => "2xx",
        s if s < 500 => "4xx",
        _ => "5xx",
    }
}

/// `/metrics`: the families, with the gauges read now from the writer and the breakers.
pub fn render(deps: &ModuleDeps) -> String {
    let Some(state) = state(&deps.shared) else {
        return String::new();
    };
    let f = &state.families;
    if !state.writer_registered.swap(true, Ordering::Relaxed) {
        let h = deps.writer.histograms().clone();
        let _ = f.registry.register(Box::new(h.batch_rows));
        let _ = f.registry.register(Box::new(h.commit_seconds));
    }
    f.set_writer(&deps.writer.snapshot());
    if let Some(routing) = deps.shared.get::<super::routing::RoutingShared>() {
        let now = crate::store::now_ms();
        for (key, breaker) in routing.breakers.all() {
            let (deployment, _) = super::routing::breaker::split_key(&key);
            let value = match breaker.phase {
                BreakerPhase::Open { until_ms } if until_ms > now => 1.0,
                BreakerPhase::Closed => 0.0,
                _ => 0.5,
            };
            f.breaker_open.with_label_values(&[deployment]).set(value);
        }
    }
    f.render()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_register_and_render() {
        let shared = Shared::default();
        count_event(&shared, "guardrails", "blocked");
        let text = state(&shared)
            .map(|s| s.families.render())
            .unwrap_or_default();
        assert!(
            text.contains(
                r#"stockyard_module_events_total{event="blocked",module="guardrails"} 1"#
            ),
            "{text}"
        );
    }

    #[test]
    fn a_capped_label_turns_new_values_into_other() {
        let cap = LabelCap::default();
        for i in 0..MAX_LABEL_VALUES {
            let name = format!("m{i}");
            assert_eq!(cap.admit(&name), name);
        }
        assert_eq!(cap.admit("m0"), "m0");
        assert_eq!(cap.admit("invented"), "other");
    }
}
