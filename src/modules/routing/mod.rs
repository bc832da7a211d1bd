//! `routing`: aliases, groups of deployments with a load-balancing strategy, retries with backoff,
//! fallbacks, late commit for streams, per-group timeouts and circuit breakers.
//!
//! `on_request` turns the requested model into an attempt plan ([`plan::RoutePlan`]): alias, then
//! group (or a one-deployment group for a plain model), then the group's fallbacks. The pipeline
//! runs the plan; this module never calls the upstream itself. `on_finish` feeds the committed
//! deployment's outcome back: latency and time to first token (for `lowest_latency`), tokens (for
//! tpm), and success or failure (for its breaker). Breakers and live figures are shared across chain
//! rebuilds through [`RoutingShared`].

pub mod breaker;
pub mod config;
pub mod cool_down;
pub mod plan;
pub mod stats;
pub mod strategy;
pub mod table;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;

use self::breaker::{Availability, Breakers};
use self::config::{BreakerConfig, RoutingConfig};
use self::cool_down::CoolDowns;
use self::plan::{CommittedSlot, RoutePlan};
use self::stats::StatsRegistry;
use self::table::RoutingTable;
use super::registry::{ModuleConfig, ModuleSpec};
use super::{Hooks, Module, ModuleDeps, ModuleError, Outcome, Verdict};
use crate::providers::ProviderRegistry;
use crate::request::{ApiError, ErrorCode, RequestCtx};
use crate::store::{BreakerRecord, BreakerStore, MemoryBreakers, StoreError, now_ms};

pub const SPEC: ModuleSpec = ModuleSpec {
    name: "routing",
    description: "aliases, deployment groups, load balancing, retries, fallbacks and circuit breakers",
    order: 50,
    finish_order: 20,
    enabled_by_default: true,
    required: super::registry::never_required,
    default_config: RoutingConfig::default_json,
    check: RoutingConfig::check,
    build,
};

/// What outlives a chain rebuild: breaker states, plain models' cool-downs and live figures per
/// deployment.
pub struct RoutingShared {
    pub breakers: Breakers,
    pub cool_downs: CoolDowns,
    /// Where plain models' cool-downs go for the other nodes; `None` on a store one node uses.
    announce: Option<Arc<crate::store::writer::Writer>>,
    pub stats: Arc<StatsRegistry>,
    pub providers: Arc<ProviderRegistry>,
    /// Whether the stored breakers were loaded (once, by the first chain with routing).
    restored: AtomicBool,
}

/// The routing state of this proxy, made the first time anything asks.
pub fn shared(deps: &ModuleDeps) -> Arc<RoutingShared> {
    deps.shared.get_or_init(|| RoutingShared {
        breakers: Breakers::new(
            Arc::new(MemoryBreakers::default()),
            Some(deps.writer.clone()),
        ),
        cool_downs: CoolDowns::default(),
        announce: deps.store.counters.is_shared().then(|| deps.writer.clone()),
        stats: Arc::default(),
        providers: deps.providers.clone(),
        restored: AtomicBool::new(false),
    })
}

/// A deployment's traffic control: its group's breaker, or (`breaker` = `None`, a plain model)
/// the in-memory cool-down after a 429.
impl RoutingShared {
    /// Restores the stored breakers of deployments configured now. A stored key names the
    /// upstream base URL, so a deployment since pointed elsewhere (or a model no longer in any
    /// group, or a key from a build without URLs in keys) starts closed instead of inheriting an
    /// old failure.
    fn restore_breakers(
        &self,
        config: &serde_json::Value,
        stored: &dyn BreakerStore,
    ) -> Result<(), StoreError> {
        let configured: HashSet<String> = breaker_keys(config, &self.providers)
            .into_iter()
            .map(|(_, key)| key)
            .collect();
        let stored: Vec<BreakerRecord> = stored
            .breakers()?
            .into_iter()
            .filter(|record| configured.contains(&record.deployment))
            .collect();
        self.breakers.restore(&stored);
        Ok(())
    }

    pub fn peek(&self, breaker: Option<&BreakerConfig>, key: &str, now: i64) -> Availability {
        match breaker {
            Some(config) => self.breakers.peek(key, config, now),
            None => match self.cool_downs.until(key, now) {
                Some(until_ms) => Availability::Unavailable { until_ms },
                None => Availability::Available,
            },
        }
    }

    pub fn acquire(&self, breaker: Option<&BreakerConfig>, key: &str, now: i64) -> bool {
        match breaker {
            Some(config) => self.breakers.acquire(key, config, now),
            None => self.cool_downs.until(key, now).is_none(),
        }
    }

    pub fn record(&self, breaker: Option<&BreakerConfig>, key: &str, failed: bool, now: i64) {
        if let Some(config) = breaker {
            self.breakers.record(key, config, failed, now);
        }
    }

    /// A 429: traffic stays off `key` until `until_ms` (its `retry-after`).
    pub fn rate_limited(
        &self,
        breaker: Option<&BreakerConfig>,
        key: &str,
        until_ms: i64,
        now: i64,
    ) {
        match breaker {
            Some(_) => self.breakers.cool_down(key, until_ms, "rate limited (429)"),
            None => {
                if self.cool_downs.set(key, until_ms, now)
                    && let Some(writer) = &self.announce
                {
                    writer.submit_breaker(BreakerRecord {
                        deployment: cool_down::record_key(key),
                        phase: crate::store::BreakerPhase::Open { until_ms },
                        reason: "rate limited (429)".into(),
                        updated_ms: now,
                    });
                }
            }
        }
    }

    /// Takes what other nodes stored: breaker phases, and plain models' cool-downs.
    pub fn adopt(&self, records: &[BreakerRecord]) {
        let now = now_ms();
        let (cool, breakers): (Vec<&BreakerRecord>, Vec<&BreakerRecord>) = records
            .iter()
            .partition(|r| cool_down::from_record_key(&r.deployment).is_some());
        for record in cool {
            if let (Some(key), crate::store::BreakerPhase::Open { until_ms }) =
                (cool_down::from_record_key(&record.deployment), record.phase)
                && until_ms > now
            {
                self.cool_downs.set(key, until_ms, now);
            }
        }
        let breakers: Vec<BreakerRecord> = breakers.into_iter().cloned().collect();
        self.breakers.adopt(&breakers);
    }
}

/// `(deployment id, breaker key)` of every deployment in the routing module's JSON `config`,
/// sorted by id; empty when it does not parse (a chain could not have been built from it).
pub fn breaker_keys(
    config: &serde_json::Value,
    providers: &ProviderRegistry,
) -> Vec<(String, String)> {
    match <RoutingConfig as ModuleConfig>::parse(config) {
        Ok(config) => table::breaker_keys(&config, providers),
        Err(_) => Vec::new(),
    }
}

fn build(value: &serde_json::Value, deps: &ModuleDeps) -> Result<Arc<dyn Module>, ModuleError> {
    let config = RoutingConfig::parse(value).map_err(ModuleError::Config)?;
    let shared = shared(deps);
    if !shared.restored.swap(true, Ordering::SeqCst) {
        shared
            .restore_breakers(value, deps.store.breakers.as_ref())
            .map_err(|e| ModuleError::Config(format!("stored breakers: {e}")))?;
    }
    let table = RoutingTable::build(&config, shared.providers.clone(), shared.stats.clone())
        .map_err(ModuleError::Config)?;
    Ok(Arc::new(Routing {
        table: Arc::new(table),
        shared,
    }))
}

pub struct Routing {
    table: Arc<RoutingTable>,
    shared: Arc<RoutingShared>,
}

impl Routing {
    pub fn table(&self) -> &RoutingTable {
        &self.table
    }
}

#[async_trait]
impl Module for Routing {
    fn name(&self) -> &'static str {
        "routing"
    }

    fn hooks(&self) -> Hooks {
        Hooks::REQUEST_NOW | Hooks::FINISH_NOW
    }

    fn on_request_now(&self, ctx: &mut RequestCtx) -> Result<Verdict, ModuleError> {
        let target = self.table.dealias(&ctx.request.requested_model).to_string();
        ctx.route.target_model = Some(target.clone());
        let primary = match self.table.group(&target) {
            Ok(group) => group,
            Err(message) => return Ok(Verdict::Reject(ApiError::UnknownModel { message })),
        };
        let mut groups = vec![primary.clone()];
        for fallback in &primary.fallbacks {
            // Validated when the table was built; a model that stopped resolving is skipped.
            if let Ok(group) = self.table.group(fallback) {
                groups.push(group);
            }
        }
        let tag = (!primary.tag_header.is_empty())
            .then(|| {
                ctx.request
                    .headers
                    .get(primary.tag_header.as_str())
                    .and_then(|v| v.to_str().ok())
                    .map(String::from)
            })
            .flatten()
            .or_else(|| {
                ctx.request
                    .parsed
                    .as_ref()
                    .and_then(|r| r.user())
                    .map(String::from)
            });
        ctx.route.plan = Some(Box::new(RoutePlan::new(
            self.shared.clone(),
            groups,
            ctx.request.stream,
            tag,
        )));
        Ok(Verdict::Continue)
    }

    fn on_finish_now(&self, ctx: &mut RequestCtx, _outcome: Outcome) {
        let Some(slot) = ctx.slots.remove::<CommittedSlot>() else {
            return;
        };
        let Some(committed) = slot.0.lock().unwrap_or_else(|p| p.into_inner()).take() else {
            return;
        };
        let now = now_ms();
        let failed = match ctx.result.error_class {
            None => false,
            // The client went away: says nothing about the deployment.
            Some(ErrorCode::Cancelled) => {
                self.shared.record(
                    committed.breaker.as_ref(),
                    &committed.breaker_key,
                    false,
                    now,
                );
                return;
            }
            Some(class) => class.is_upstream(),
        };
        let latency = (!failed).then(|| {
            ctx.timings
                .started
                .elapsed()
                .saturating_sub(ctx.timings.overhead)
                .as_micros() as u64
        });
        let ttft = ctx.timings.ttft.map(|t| t.as_micros() as u64);
        let tokens = ctx.usage.tokens.prompt + ctx.usage.tokens.completion;
        committed.stats.record(
            if ctx.request.stream { None } else { latency },
            ttft,
            tokens,
            now,
        );
        self.shared.record(
            committed.breaker.as_ref(),
            &committed.breaker_key,
            failed,
            now,
        );
        drop(committed.ticket);
    }
}
