//! `budgets`: refuses a request once its virtual key or the key's team has spent its budget for
//! the period (UTC day, week from Monday, month, or total).
//!
//! Reserve, then settle. Before routing, the most the request may cost (its prompt counted with
//! the model's tokenizer, plus `max_tokens` or `default_max_tokens`, at the model's prices) is
//! held against each budget, atomically: refused with 429 `insufficient_quota` when spend +
//! estimates held by requests in flight + this estimate would pass the limit. After `cost`
//! priced the request, the estimate is swapped for the exact cost (nothing, for a request that
//! failed without cost). So a burst can't all pass before any is charged; what it can still
//! overshoot by is stated (and tested) in the README: the sum, over the requests in flight, of
//! what each cost beyond its estimate.
//!
//! Soft thresholds (`alert_percents`) raise an alert once per period and percent: recorded in the
//! store through the writer, logged, and posted to `webhook_url` if set (off the request path).
//! Counters live in memory ([`book::BudgetBook`]), seeded at start-up from the spend rollups; on a
//! store shared between nodes they are leases of shared rows, so a budget holds across the nodes
//! (`store/counters/leased.rs`).

pub mod book;
pub mod webhook;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use arc_swap::ArcSwap;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use self::book::{BudgetBook, Held, PERIODS, Refusal, usd, when};
use self::webhook::Webhook;
use super::registry::{ModuleConfig, ModuleSpec};
use super::{Hooks, Module, ModuleDeps, ModuleError, Outcome, Verdict};
use crate::cost::PriceTable;
use crate::providers::ProviderRegistry;
use crate::request::{ApiError, Budget, Grant, Period, RequestCtx};
use crate::store::counters::NodeCounters;
use crate::store::writer::Writer;
use crate::store::{BudgetAlert, HotCounters, MemoryCounters};

pub const SPEC: ModuleSpec = ModuleSpec {
    name: "budgets",
    description: "holds each virtual key's and team's spend within its budget per day, week, month or in total (reserve before the call, settle to the exact cost)",
    // Before routing (50), after the rate limits (25): a request refused for its rate holds nothing.
    order: 30,
    // After `cost` (10), which prices the request this settles.
    finish_order: 12,
    enabled_by_default: true,
    required: super::registry::never_required,
    default_config: BudgetsConfig::default_json,
    check: BudgetsConfig::check,
    build,
};

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct BudgetsConfig {
    /// Output tokens reserved for a request that sets no `max_tokens`. Default 4096. A request
    /// whose answer runs past it can cost more than was held (see the README's bound).
    pub default_max_tokens: u64,
    /// Where threshold alerts are POSTed as JSON; unset, they are only recorded and logged.
    pub webhook_url: Option<String>,
    /// How long one webhook post may take, in milliseconds. Default 5000.
    pub webhook_timeout_ms: u64,
}

impl Default for BudgetsConfig {
    fn default() -> Self {
        BudgetsConfig {
            default_max_tokens: 4096,
            webhook_url: None,
            webhook_timeout_ms: 5000,
        }
    }
}

impl ModuleConfig for BudgetsConfig {
    fn validate(&self) -> Result<(), String> {
        if self.default_max_tokens == 0 || self.default_max_tokens > 10_000_000 {
            return Err(format!(
                "default_max_tokens: must be 1..=10000000 (got {})",
                self.default_max_tokens
            ));
        }
        if self.webhook_timeout_ms == 0 || self.webhook_timeout_ms > 60_000 {
            return Err(format!(
                "webhook_timeout_ms: must be 1..=60000 (got {})",
                self.webhook_timeout_ms
            ));
        }
        if let Some(url) = &self.webhook_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(format!(
                "webhook_url: must be an http:// or https:// URL (got {url:?})"
            ));
        }
        Ok(())
    }
}

fn build(config: &serde_json::Value, deps: &ModuleDeps) -> Result<Arc<dyn Module>, ModuleError> {
    let config = BudgetsConfig::parse(config).map_err(ModuleError::Config)?;
    // Asked for before the book: `Shared` holds its lock while it makes a state.
    let node = deps.shared.get_or_init(|| NodeCounters::of(&deps.store));
    let loaded = deps.shared.get_or_init(|| Loaded::new(deps, node));
    let book = loaded.book(deps)?;
    super::estimate::preload_tokenizers(deps, false);
    let webhook = config
        .webhook_url
        .as_deref()
        .map(|url| Webhook::new(url, Duration::from_millis(config.webhook_timeout_ms)))
        .transpose()
        .map_err(ModuleError::Config)?;
    Ok(Arc::new(Budgets {
        config,
        book,
        _live: Live::new(&loaded.live),
        node: loaded.node.clone(),
        prices: deps.prices.clone(),
        providers: deps.providers.clone(),
        writer: deps.writer.clone(),
        webhook,
    }))
}

/// The book, loaded from the store once per process (the first build); later chains share it,
/// unless the module was off in between: nothing counted what requests spent meanwhile, so the
/// book is loaded afresh from the rollups, which did.
struct Loaded {
    book: Mutex<Result<Arc<BudgetBook>, String>>,
    node: Arc<NodeCounters>,
    /// Built modules not yet dropped: 0 at a build means no chain had the module.
    live: Arc<AtomicUsize>,
    /// The book was just loaded and no build has taken it yet.
    fresh: AtomicBool,
}

impl Loaded {
    fn new(deps: &ModuleDeps, node: Arc<NodeCounters>) -> Loaded {
        Loaded {
            book: Mutex::new(Self::load(deps, &node)),
            node,
            live: Arc::default(),
            fresh: AtomicBool::new(true),
        }
    }

    fn load(deps: &ModuleDeps, node: &NodeCounters) -> Result<Arc<BudgetBook>, String> {
        // Nodes sharing a store hold budgets together in leases of shared rows.
        let counters: Arc<dyn HotCounters> = match &node.0 {
            Some(leased) => leased.clone(),
            None => Arc::new(MemoryCounters::default()),
        };
        let book = BudgetBook::new(counters);
        match book.load(&deps.store) {
            Ok(()) => Ok(Arc::new(book)),
            Err(e) => Err(format!("cannot read the spend rollups: {e}")),
        }
    }

    fn book(&self, deps: &ModuleDeps) -> Result<Arc<BudgetBook>, ModuleError> {
        let mut book = self.book.lock().unwrap_or_else(PoisonError::into_inner);
        let fresh = self.fresh.swap(false, Ordering::AcqRel);
        let was_off = !fresh && self.live.load(Ordering::Acquire) == 0;
        if was_off && book.as_ref().is_ok_and(|b| Arc::strong_count(b) == 1) {
            *book = Self::load(deps, &self.node);
        }
        book.clone().map_err(|message| ModuleError::Failed {
            module: "budgets",
            message,
        })
    }
}

/// Counts a built module in [`Loaded::live`] until it is dropped.
struct Live(Arc<AtomicUsize>);

impl Live {
    fn new(live: &Arc<AtomicUsize>) -> Live {
        live.fetch_add(1, Ordering::AcqRel);
        Live(live.clone())
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

pub struct Budgets {
    config: BudgetsConfig,
    book: Arc<BudgetBook>,
    _live: Live,
    node: Arc<NodeCounters>,
    prices: Arc<ArcSwap<PriceTable>>,
    providers: Arc<ProviderRegistry>,
    writer: Arc<Writer>,
    webhook: Option<Webhook>,
}

/// The estimates a request holds until it finishes (this module's slot).
#[derive(Clone)]
struct Holds(Vec<Held>);

/// The key, then its team: scope, id and budget.
fn subjects(grant: &Grant) -> impl Iterator<Item = (&'static str, &str, Option<&Budget>)> {
    let key = (
        "key",
        grant.limits_id.as_str(),
        grant.limits.budget.as_ref(),
    );
    let team = grant
        .team
        .as_ref()
        .map(|team| ("team", team.id.as_str(), team.limits.budget.as_ref()));
    std::iter::once(key).chain(team)
}

fn per(period: Period) -> &'static str {
    match period {
        Period::Day => "per day",
        Period::Week => "per week",
        Period::Month => "per month",
        Period::Total => "in total",
    }
}

/// The refusal's message: the budget, the spend, and when it resets. `key_id` is the caller's
/// key, named too when its budget is counted under the key it was rotated from.
fn refusal_message(r: &Refusal, key_id: &str) -> String {
    let resets = match r.resets_at_ms {
        Some(ms) => format!("the budget resets at {}", when(ms)),
        None => "a total budget never resets".to_string(),
    };
    let subject = if r.subject.scope == "key" && r.subject.id != key_id {
        format!("{key_id} (rotated from {})", r.subject.id)
    } else {
        r.subject.id.clone()
    };
    format!(
        "budget exceeded: {} {} has a budget of {} {}; spent {} (+ {} held by requests in flight), and this request may cost up to {}; {}",
        r.subject.scope,
        subject,
        usd(r.budget.limit_nanos),
        per(r.budget.period),
        usd(r.spent),
        usd(r.held),
        usd(r.estimate),
        resets
    )
}

fn alert_message(alert: &BudgetAlert) -> String {
    format!(
        "{} {} has spent {} of its {} {} budget ({}% threshold)",
        alert.scope,
        alert.subject,
        usd(alert.spend_nanos),
        usd(alert.limit_nanos),
        alert.period,
        alert.percent
    )
}

impl Budgets {
    fn raise(&self, alert: BudgetAlert) {
        let message = alert_message(&alert);
        tracing::warn!(subject = %alert.subject, percent = alert.percent, "{message}");
        if let Some(webhook) = &self.webhook {
            webhook.post(&alert, &message);
        }
        self.writer.submit_budget_alert(alert);
    }
}

#[async_trait]
impl Module for Budgets {
    fn name(&self) -> &'static str {
        "budgets"
    }

    fn hooks(&self) -> Hooks {
        Hooks::REQUEST | Hooks::FINISH | Hooks::SHUTDOWN
    }

    /// Budgets belong to virtual keys (and their teams): a request without one has none.
    fn has_work(&self, _hook: Hooks, ctx: &RequestCtx) -> bool {
        ctx.identity.grant.is_some()
    }

    async fn on_request(&self, ctx: &mut RequestCtx) -> Result<Verdict, ModuleError> {
        let Some(grant) = ctx.identity.grant.clone() else {
            return Ok(Verdict::Continue);
        };
        if subjects(&grant).all(|(_, _, budget)| budget.is_none()) {
            return Ok(Verdict::Continue);
        }
        let prices = self.prices.load();
        // A model without a price costs 0; holding one nano still refuses a spent budget.
        let estimate = super::estimate::cost_nanos(
            ctx,
            &self.providers,
            &prices,
            self.config.default_max_tokens,
        )
        .unwrap_or(0)
        .max(1);
        let mut holds = Vec::with_capacity(2);
        for (scope, id, budget) in subjects(&grant) {
            let Some(budget) = budget else { continue };
            match self
                .book
                .reserve(&self.book.counted(scope, id), budget, estimate)
                .await
            {
                Ok(held) => holds.push(held),
                Err(refusal) => {
                    for held in holds {
                        self.book.settle(held, 0).await;
                    }
                    return Ok(Verdict::Reject(ApiError::BudgetExceeded {
                        message: refusal_message(&refusal, &grant.key_id),
                    }));
                }
            }
        }
        ctx.slots.insert(Holds(holds));
        Ok(Verdict::Continue)
    }

    async fn on_finish(&self, ctx: &mut RequestCtx, _outcome: Outcome) {
        let Some(grant) = ctx.identity.grant.clone() else {
            return;
        };
        // Whatever the outcome: a hold left behind would block the key until the period ends.
        let cost = ctx.usage.cost_nanos.max(0);
        let holds = ctx.slots.remove::<Holds>().map(|h| h.0).unwrap_or_default();
        let mut covered = Vec::with_capacity(holds.len());
        for held in holds {
            let (spent, counted, budget) = self.book.settle(held, cost).await;
            for alert in self.book.crossed(&counted.subject, &budget, spent) {
                self.raise(alert);
            }
            covered.push((counted, budget.period));
        }
        if cost == 0 {
            return;
        }
        // Spend counts in every period of every subject, budget or not (see `book`).
        for (scope, id, _) in subjects(&grant) {
            let counted = match covered.iter().find(|(c, _)| c.subject.scope == scope) {
                Some((c, _)) => c.clone(),
                None => self.book.counted(scope, id),
            };
            for period in PERIODS {
                if !covered
                    .iter()
                    .any(|(c, p)| c.subject.scope == scope && *p == period)
                {
                    self.book.add(&counted, period, cost).await;
                }
            }
        }
    }

    async fn on_shutdown(&self) {
        // Spend not reported yet reaches the shared rows, and the leases go back to the others.
        if let Some(leased) = &self.node.0 {
            leased.give_back().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::book::Subject;
    use super::*;

    #[test]
    fn config_is_checked_by_field() {
        let bad = serde_json::json!({"webhook_url": "ftp://x"});
        assert!(BudgetsConfig::check(&bad).is_err_and(|e| e.contains("webhook_url")));
        let bad = serde_json::json!({"default_max_tokens": 0});
        assert!(BudgetsConfig::check(&bad).is_err_and(|e| e.contains("default_max_tokens")));
        assert!(BudgetsConfig::check(&serde_json::Value::Null).is_ok());
    }

    #[test]
    fn the_refusal_names_the_budget_the_spend_and_the_reset() {
        let refusal = Refusal {
            subject: Subject {
                scope: "key",
                id: "vk_1".into(),
            },
            budget: Budget {
                limit_nanos: 50_000_000,
                period: Period::Day,
                alert_percents: vec![],
            },
            spent: 49_000_000,
            held: 500_000,
            estimate: 2_000_000,
            resets_at_ms: Some(86_400_000),
        };
        let message = refusal_message(&refusal, "vk_1");
        assert_eq!(
            message,
            "budget exceeded: key vk_1 has a budget of $0.05 per day; spent $0.049 (+ $0.0005 held by requests in flight), and this request may cost up to $0.002; the budget resets at 1970-01-02T00:00:00Z"
        );
        assert!(refusal_message(&refusal, "vk_2").contains("key vk_2 (rotated from vk_1) has"));
    }
}
