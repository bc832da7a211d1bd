//! `alerts`: rules on error rate, latency, spend, budget alerts, open breakers and writer drops
//! (`config.rs`), evaluated in the background every `interval`; an alert is posted to the
//! configured webhooks (`deliver.rs`), recorded in the `alerts` table and shown by `stockyard
//! alerts`. After a rule fires it is quiet for `cool_down`, and that state is stored with the
//! alert, so a restart inside a cool-down does not fire again.
//!
//! On the request path the module only pushes one sample per finished request into a bounded
//! window (`measure.rs`). The evaluation task is one per proxy (in `Shared`) and follows the
//! newest chain holding the module, like `retention`'s.

pub mod config;
mod deliver;
mod measure;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

pub use config::{AlertsConfig, Rule, RuleKind};
use deliver::Delivery;
pub use deliver::generic_body;
use measure::{RequestWindow, Sample};

use super::background::Policies;
use super::registry::{ModuleConfig, ModuleSpec};
use super::retention::config::parse_age;
use super::shared::Shared;
use super::{Hooks, Module, ModuleDeps, ModuleError, Outcome};
use crate::request::RequestCtx;
use crate::store::alerts::AlertRecord;
use crate::store::writer::Writer;
use crate::store::{BreakerPhase, Store, now_ms};

pub const SPEC: ModuleSpec = ModuleSpec {
    name: "alerts",
    description: "alerts on error rate, latency, spend, budgets, breakers and writer drops, to a webhook or Slack",
    order: 98,
    finish_order: 85,
    enabled_by_default: true,
    required: super::registry::never_required,
    default_config: AlertsConfig::default_json,
    check: AlertsConfig::check,
    build,
};

/// A chain's alerts config with its webhooks, ready to post.
struct Policy {
    config: AlertsConfig,
    delivery: Delivery,
}

#[derive(Default)]
pub struct AlertRunner {
    policies: Policies<Policy>,
    window: RequestWindow,
}

impl AlertRunner {
    fn current(&self) -> Option<Arc<Policy>> {
        self.policies.current()
    }
}

fn build(config: &serde_json::Value, deps: &ModuleDeps) -> Result<Arc<dyn Module>, ModuleError> {
    let config = AlertsConfig::parse(config).map_err(ModuleError::Config)?;
    let delivery = Delivery::new(
        config.webhook_url.as_deref(),
        config.slack_webhook_url.as_deref(),
        Duration::from_millis(config.webhook_timeout_ms),
    )
    .map_err(ModuleError::Config)?;
    let policy = Arc::new(Policy { config, delivery });
    let runner = deps.shared.get_or_init(AlertRunner::default);
    runner.policies.register(&policy);
    start_task(&runner, deps);
    Ok(Arc::new(Alerts { policy, runner }))
}

pub struct Alerts {
    policy: Arc<Policy>,
    runner: Arc<AlertRunner>,
}

#[async_trait]
impl Module for Alerts {
    fn name(&self) -> &'static str {
        "alerts"
    }

    fn hooks(&self) -> Hooks {
        Hooks::FINISH_NOW
    }

    fn fail_policy(&self) -> super::FailPolicy {
        super::FailPolicy::Open
    }

    fn on_finish_now(&self, ctx: &mut RequestCtx, _outcome: Outcome) {
        // Only what a request-window rule reads; with none configured, nothing is kept.
        if self.policy.config.rules.iter().any(|r| {
            matches!(
                r.kind,
                RuleKind::ErrorRate | RuleKind::LatencyP95Ms | RuleKind::SpendUsd
            )
        }) {
            self.runner.window.push(Sample {
                ts_ms: now_ms(),
                server_error: ctx.result.status >= 500,
                latency_ms: ctx
                    .timings
                    .started
                    .elapsed()
                    .as_millis()
                    .min(u32::MAX as u128) as u32,
                cost_nanos: ctx.usage.cost_nanos,
            });
        }
    }
}

fn start_task(runner: &Arc<AlertRunner>, deps: &ModuleDeps) {
    let Ok(handle) = tokio::runtime::Handle::try_current() else {
        return;
    };
    if !runner.policies.first_start() {
        return;
    }
    let runner = Arc::downgrade(runner);
    let writer = Arc::downgrade(&deps.writer);
    let store = deps.store.clone();
    let shared = deps.shared.clone();
    handle.spawn(async move {
        let mut state = Evaluator::load(&store).await;
        loop {
            let wait = runner
                .upgrade()
                .and_then(|r| r.current())
                .map_or(Duration::from_secs(30), |p| p.config.interval());
            tokio::time::sleep(wait).await;
            let (Some(runner), Some(writer)) = (runner.upgrade(), writer.upgrade()) else {
                return;
            };
            if let Some(policy) = runner.current() {
                state
                    .evaluate(&policy, &runner.window, &writer, &store, &shared)
                    .await;
            }
        }
    });
}

/// The evaluation task's memory: each rule's last firing, and the writer's drop count last seen.
struct Evaluator {
    last_fired: HashMap<String, i64>,
    drops_seen: Option<u64>,
}

impl Evaluator {
    /// Starts from the stored cool-downs, so a restart does not fire again inside one.
    async fn load(store: &Store) -> Evaluator {
        let alerts = store.alerts.clone();
        let stored = tokio::task::spawn_blocking(move || alerts.alert_state()).await;
        let last_fired = match stored {
            Ok(Ok(rows)) => rows.into_iter().collect(),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "alert cool-downs not loaded");
                HashMap::new()
            }
            Err(_) => HashMap::new(),
        };
        Evaluator {
            last_fired,
            drops_seen: None,
        }
    }

    async fn evaluate(
        &mut self,
        policy: &Policy,
        window: &RequestWindow,
        writer: &Writer,
        store: &Store,
        shared: &Shared,
    ) {
        let now = now_ms();
        let config = &policy.config;
        window.trim(now - config.longest_window().as_millis() as i64);
        let dropped = writer.snapshot().dropped;
        let drops = dropped.saturating_sub(self.drops_seen.unwrap_or(dropped));
        self.drops_seen = Some(dropped);
        let cool_down = config.cool_down().as_millis() as i64;
        for rule in &config.rules {
            if self
                .last_fired
                .get(&rule.name)
                .is_some_and(|&at| now - at < cool_down)
            {
                continue;
            }
            let since = now - parse_age(&rule.window).unwrap_or_default().as_millis() as i64;
            let Some((value, message)) = measure(rule, since, window, drops, store, shared).await
            else {
                continue;
            };
            if value < rule.threshold {
                continue;
            }
            let mut alert = AlertRecord {
                ts_ms: now,
                rule: rule.name.clone(),
                kind: rule.kind.as_str().to_string(),
                value,
                threshold: rule.threshold,
                message,
                delivered: false,
            };
            alert.delivered = policy.delivery.post(&alert).await;
            tracing::warn!(rule = %alert.rule, value, threshold = rule.threshold, message = %alert.message, "alert");
            self.last_fired.insert(rule.name.clone(), now);
            super::metrics::count_event(shared, "alerts", "fired");
            writer.submit_alert(alert);
        }
    }
}

/// The rule's current value and a sentence saying it; `None` when there is too little to judge.
async fn measure(
    rule: &Rule,
    since_ms: i64,
    window: &RequestWindow,
    drops: u64,
    store: &Store,
    shared: &Shared,
) -> Option<(f64, String)> {
    let span = &rule.window;
    match rule.kind {
        RuleKind::ErrorRate | RuleKind::LatencyP95Ms | RuleKind::SpendUsd => {
            let figures = window.figures(since_ms);
            match rule.kind {
                RuleKind::ErrorRate if figures.requests >= rule.min_requests => Some((
                    figures.error_rate,
                    format!(
                        "{:.1}% of {} requests failed with a 5xx in the last {span} (threshold {:.1}%)",
                        figures.error_rate * 100.0,
                        figures.requests,
                        rule.threshold * 100.0
                    ),
                )),
                RuleKind::LatencyP95Ms if figures.requests >= rule.min_requests => Some((
                    figures.latency_p95_ms,
                    format!(
                        "p95 latency {:.0} ms over {} requests in the last {span} (threshold {} ms)",
                        figures.latency_p95_ms, figures.requests, rule.threshold
                    ),
                )),
                RuleKind::SpendUsd => Some((
                    figures.spend_usd,
                    format!(
                        "spent ${:.6} in the last {span} (threshold ${})",
                        figures.spend_usd, rule.threshold
                    ),
                )),
                _ => None,
            }
        }
        RuleKind::Budget => {
            let spend = store.spend.clone();
            let alerts = tokio::task::spawn_blocking(move || spend.budget_alerts(since_ms))
                .await
                .ok()?
                .ok()?;
            let subjects: Vec<&str> = alerts.iter().map(|a| a.subject.as_str()).take(5).collect();
            Some((
                alerts.len() as f64,
                format!(
                    "{} budget threshold alert(s) in the last {span}: {}",
                    alerts.len(),
                    subjects.join(", ")
                ),
            ))
        }
        RuleKind::BreakerOpen => {
            let routing = shared.get::<super::routing::RoutingShared>()?;
            let now = now_ms();
            let open: Vec<String> = routing
                .breakers
                .all()
                .into_iter()
                .filter(
                    |(_, s)| matches!(s.phase, BreakerPhase::Open { until_ms } if until_ms > now),
                )
                .map(|(key, _)| super::routing::breaker::split_key(&key).0.to_string())
                .collect();
            Some((
                open.len() as f64,
                format!(
                    "{} circuit breaker(s) open: {}",
                    open.len(),
                    open.join(", ")
                ),
            ))
        }
        RuleKind::WriterDrops => Some((
            drops as f64,
            format!("the writer dropped {drops} record(s) since the last check"),
        )),
    }
}
