//! `rate_limits`: requests (RPM) and tokens (TPM) per window for each virtual key, its team, and
//! each model named in the module's config; a request must fit every limit that applies.
//!
//! Reserve, then correct: before routing, one request and the request's token estimate (its
//! prompt with the model's tokenizer plus `max_tokens`, or `default_max_tokens`) are added to
//! each counter only if it stays within its limit, atomically; the token count is corrected to
//! the real usage when the request finishes. A refusal is a 429 `rate_limit_exceeded` with
//! `retry-after` (seconds until the window resets). Every response to a limited request carries
//! `x-ratelimit-{limit,remaining,reset}-{requests,tokens}`, for the tightest limit of each kind.
//!
//! Counts live in memory on the request path ([`book::RateBook`]), in fixed windows of
//! `window_ms` (a minute by default), and reach the store in batches through the writer, so a
//! restart inside a window carries on from the count. Nodes sharing a store count in leases of
//! their shared rows instead, so a limit holds across the nodes (`store/counters/leased.rs`).

pub mod book;

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use hyper::header::{HeaderName, HeaderValue};
use serde::{Deserialize, Serialize};

use self::book::RateBook;
use super::registry::{ModuleConfig, ModuleSpec};
use super::{Hooks, Module, ModuleDeps, ModuleError, Outcome, Verdict};
use crate::providers::ProviderRegistry;
use crate::request::{ApiError, RequestCtx};
use crate::store::counters::NodeCounters;
use crate::store::counters::counter_key;
use crate::store::{Reservation, ReserveError, SystemClock, Window};

pub const SPEC: ModuleSpec = ModuleSpec {
    name: "rate_limits",
    description: "requests and tokens per minute for each virtual key, its team and configured models; 429 with retry-after, x-ratelimit-* headers on every answer",
    // Before `budgets` (30) and routing (50).
    order: 25,
    // After `cost` (10): the token count is corrected from the recorded usage.
    finish_order: 14,
    enabled_by_default: true,
    required: super::registry::never_required,
    default_config: RateLimitsConfig::default_json,
    check: RateLimitsConfig::check,
    build,
};

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitsConfig {
    /// Limits per model, by the name clients ask for (`[modules.rate_limits.models."gpt-4o"]`).
    pub models: BTreeMap<String, ModelLimits>,
    /// Output tokens counted for a request that sets no `max_tokens`, until its real usage
    /// corrects the count. Default 4096.
    pub default_max_tokens: u64,
    /// The window the limits count over, in milliseconds. Default 60000 (per minute).
    pub window_ms: u64,
    /// How often counts are handed to the writer, in milliseconds. Default 1000.
    pub persist_interval_ms: u64,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ModelLimits {
    /// Requests per window.
    pub rpm: Option<u64>,
    /// Tokens (prompt + completion) per window.
    pub tpm: Option<u64>,
}

impl Default for RateLimitsConfig {
    fn default() -> Self {
        RateLimitsConfig {
            models: BTreeMap::new(),
            default_max_tokens: 4096,
            window_ms: 60_000,
            persist_interval_ms: 1000,
        }
    }
}

impl ModuleConfig for RateLimitsConfig {
    fn validate(&self) -> Result<(), String> {
        if self.window_ms < 100 || self.window_ms > 86_400_000 {
            return Err(format!(
                "window_ms: must be 100..=86400000 (got {})",
                self.window_ms
            ));
        }
        if self.default_max_tokens == 0 || self.default_max_tokens > 10_000_000 {
            return Err(format!(
                "default_max_tokens: must be 1..=10000000 (got {})",
                self.default_max_tokens
            ));
        }
        if self.persist_interval_ms == 0 || self.persist_interval_ms > 60_000 {
            return Err(format!(
                "persist_interval_ms: must be 1..=60000 (got {})",
                self.persist_interval_ms
            ));
        }
        for (model, limits) in &self.models {
            if limits.rpm == Some(0) || limits.tpm == Some(0) {
                return Err(format!(
                    "models.{model}: a limit of 0 refuses everything; remove the model to refuse it"
                ));
            }
        }
        Ok(())
    }
}

fn build(config: &serde_json::Value, deps: &ModuleDeps) -> Result<Arc<dyn Module>, ModuleError> {
    let config = RateLimitsConfig::parse(config).map_err(ModuleError::Config)?;
    // Asked for before the book: `Shared` holds its lock while it makes a state.
    let node = deps.shared.get_or_init(|| NodeCounters::of(&deps.store));
    let loaded = deps.shared.get_or_init(|| {
        let book =
            RateBook::with_counters(deps.writer.clone(), Arc::new(SystemClock), node.0.clone());
        let loaded = book.load(&deps.store).map_err(|e| e.to_string());
        Loaded(Arc::new(book), loaded)
    });
    if let Err(e) = &loaded.1 {
        return Err(ModuleError::Failed {
            module: "rate_limits",
            message: format!("cannot read the stored rate-limit counts: {e}"),
        });
    }
    let model_tpm = config.models.values().any(|m| m.tpm.is_some());
    super::estimate::preload_tokenizers(deps, model_tpm);
    Ok(Arc::new(RateLimits {
        config,
        book: loaded.0.clone(),
        providers: deps.providers.clone(),
    }))
}

/// The book, with the counts read from the store once per process (the first build); later
/// chains share it.
struct Loaded(Arc<RateBook>, Result<(), String>);

pub struct RateLimits {
    config: RateLimitsConfig,
    book: Arc<RateBook>,
    providers: Arc<ProviderRegistry>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Requests,
    Tokens,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Requests => "requests",
            Kind::Tokens => "tokens",
        }
    }
}

/// One limit that applies to a request.
struct Limit {
    kind: Kind,
    /// `key`, `team` or `model`.
    scope: &'static str,
    /// The counter's name, `rpm:SCOPE:ID` or `tpm:SCOPE:ID`: built once, the id read back from
    /// it for messages.
    counter: String,
    limit: i64,
}

impl Limit {
    fn new(kind: Kind, scope: &'static str, id: &str, limit: i64) -> Limit {
        let prefix = match kind {
            Kind::Requests => "rpm",
            Kind::Tokens => "tpm",
        };
        Limit {
            kind,
            scope,
            counter: counter_key(&[prefix, scope, id]),
            limit,
        }
    }

    /// The key's, team's or model's id.
    fn id(&self) -> &str {
        // "rpm:" and the scope and its ':' come before it.
        &self.counter[4 + self.scope.len() + 1..]
    }
}

/// The token reservations a request holds until it finishes (this module's slot).
#[derive(Clone)]
struct TokenHolds(Vec<Reservation>);

/// The tightest limit of one kind, for the response headers.
#[derive(Clone, Copy)]
struct Tightest {
    limit: i64,
    remaining: i64,
}

impl RateLimits {
    /// Whether any limit can apply: a virtual key (its own or its team's) or a limited model.
    /// `limits_for` reads no further when none can, so `has_work` and it agree by construction.
    fn may_limit(&self, ctx: &RequestCtx) -> bool {
        ctx.identity.grant.is_some()
            || self
                .config
                .models
                .contains_key(&ctx.request.requested_model)
    }

    fn limits_for(&self, ctx: &RequestCtx) -> Vec<Limit> {
        let mut limits = Vec::new();
        if !self.may_limit(ctx) {
            return limits;
        }
        let mut push = |scope: &'static str, id: &str, rpm: Option<u64>, tpm: Option<u64>| {
            for (kind, value) in [(Kind::Requests, rpm), (Kind::Tokens, tpm)] {
                if let Some(value) = value {
                    let limit = i64::try_from(value).unwrap_or(i64::MAX);
                    limits.push(Limit::new(kind, scope, id, limit));
                }
            }
        };
        if let Some(grant) = &ctx.identity.grant {
            push("key", &grant.limits_id, grant.limits.rpm, grant.limits.tpm);
            if let Some(team) = &grant.team {
                push("team", &team.id, team.limits.rpm, team.limits.tpm);
            }
        }
        let model = &ctx.request.requested_model;
        if let Some(m) = self.config.models.get(model) {
            push("model", model, m.rpm, m.tpm);
        }
        limits
    }

    fn persist_interval_ms(&self) -> i64 {
        i64::try_from(self.config.persist_interval_ms).unwrap_or(1000)
    }

    fn window(&self) -> Window {
        Window::fixed_ms(i64::try_from(self.config.window_ms).unwrap_or(60_000))
    }

    fn per_window(&self) -> String {
        match self.config.window_ms {
            60_000 => "per minute".to_string(),
            ms => format!("per {ms} ms window"),
        }
    }
}

/// `42s`, `1m30s`, `250ms`: how OpenAI writes its reset times.
/// Built by pieces rather than `format!`: it is written on every limited response.
fn reset_text(ms: i64) -> String {
    let ms = ms.max(0);
    if ms < 1000 {
        return ms.to_string() + "ms";
    }
    let secs = (ms + 999) / 1000;
    match (secs / 60, secs % 60) {
        (0, s) => s.to_string() + "s",
        (m, s) => m.to_string() + "m" + &s.to_string() + "s",
    }
}

/// The three headers of each kind: limit, remaining, reset.
const REQUEST_HEADERS: [HeaderName; 3] = [
    HeaderName::from_static("x-ratelimit-limit-requests"),
    HeaderName::from_static("x-ratelimit-remaining-requests"),
    HeaderName::from_static("x-ratelimit-reset-requests"),
];
const TOKEN_HEADERS: [HeaderName; 3] = [
    HeaderName::from_static("x-ratelimit-limit-tokens"),
    HeaderName::from_static("x-ratelimit-remaining-tokens"),
    HeaderName::from_static("x-ratelimit-reset-tokens"),
];

fn set_headers(ctx: &mut RequestCtx, tightest: &[(Kind, Tightest)], reset_ms: i64) {
    // Made once, shared by both kinds' reset headers (a clone is a reference count).
    let reset = HeaderValue::from_str(&reset_text(reset_ms)).ok();
    for (kind, t) in tightest {
        let [limit, remaining, reset_name] = match kind {
            Kind::Requests => REQUEST_HEADERS,
            Kind::Tokens => TOKEN_HEADERS,
        };
        let headers = &mut ctx.result.response_headers;
        headers.insert(limit, HeaderValue::from(t.limit));
        headers.insert(remaining, HeaderValue::from(t.remaining.max(0)));
        if let Some(value) = &reset {
            headers.insert(reset_name, value.clone());
        }
    }
}

fn tighten(tightest: &mut Vec<(Kind, Tightest)>, kind: Kind, limit: i64, remaining: i64) {
    match tightest.iter_mut().find(|(k, _)| *k == kind) {
        Some((_, t)) if remaining < t.remaining => {
            *t = Tightest { limit, remaining };
        }
        Some(_) => {}
        None => tightest.push((kind, Tightest { limit, remaining })),
    }
}

#[async_trait]
impl Module for RateLimits {
    fn name(&self) -> &'static str {
        "rate_limits"
    }

    fn hooks(&self) -> Hooks {
        Hooks::REQUEST | Hooks::FINISH | Hooks::SHUTDOWN
    }

    /// A request is counted only under a virtual key's or team's limits or a limited model's;
    /// `on_finish` settles the token holds a request took, and hands the counts over once an
    /// interval.
    fn has_work(&self, hook: Hooks, ctx: &RequestCtx) -> bool {
        if hook == Hooks::FINISH {
            return ctx.slots.get::<TokenHolds>().is_some()
                || self.book.persist_due(self.persist_interval_ms());
        }
        self.may_limit(ctx)
    }

    async fn on_request(&self, ctx: &mut RequestCtx) -> Result<Verdict, ModuleError> {
        let limits = self.limits_for(ctx);
        if limits.is_empty() {
            return Ok(Verdict::Continue);
        }
        let tokens = if limits.iter().any(|l| l.kind == Kind::Tokens) {
            let t = super::estimate::tokens(ctx, &self.providers, self.config.default_max_tokens);
            i64::try_from(t.prompt.saturating_add(t.completion)).unwrap_or(i64::MAX)
        } else {
            0
        };
        let window = self.window();
        let now = self.book.now_ms();
        let reset_ms = window.resets_at(now) - now;
        let mut tightest: Vec<(Kind, Tightest)> = Vec::new();
        let mut taken: Vec<(Kind, Reservation)> = Vec::with_capacity(limits.len());
        for limit in &limits {
            let amount = match limit.kind {
                Kind::Requests => 1,
                Kind::Tokens => tokens,
            };
            match self
                .book
                .reserve(&limit.counter, amount, limit.limit, window)
                .await
            {
                Ok(reservation) => {
                    tighten(
                        &mut tightest,
                        limit.kind,
                        limit.limit,
                        limit.limit - reservation.value,
                    );
                    taken.push((limit.kind, reservation));
                }
                Err(ReserveError::Exceeded(over)) => {
                    for (_, reservation) in taken {
                        self.book.settle(reservation, 0).await;
                    }
                    tighten(
                        &mut tightest,
                        limit.kind,
                        limit.limit,
                        limit.limit - over.current,
                    );
                    set_headers(ctx, &tightest, reset_ms);
                    let retry_after_s = u64::try_from((reset_ms + 999) / 1000).unwrap_or(1).max(1);
                    let needs = match limit.kind {
                        Kind::Requests => String::new(),
                        Kind::Tokens => format!(
                            " ({} used, and this request may use up to {amount})",
                            over.current
                        ),
                    };
                    let message = format!(
                        "rate limit reached: {} {} allows {} {} {}{needs}; retry in {retry_after_s} s",
                        limit.scope,
                        limit.id(),
                        limit.limit,
                        limit.kind.as_str(),
                        self.per_window(),
                    );
                    return Ok(Verdict::Reject(ApiError::RateLimited {
                        message,
                        retry_after_s,
                    }));
                }
                // A shared counter store that cannot answer: let the request through.
                Err(ReserveError::Store(e)) => {
                    tracing::warn!(error = %e, "rate limit not checked");
                }
            }
        }
        set_headers(ctx, &tightest, reset_ms);
        let tokens: Vec<Reservation> = taken
            .into_iter()
            .filter(|(kind, _)| *kind == Kind::Tokens)
            .map(|(_, r)| r)
            .collect();
        if !tokens.is_empty() {
            ctx.slots.insert(TokenHolds(tokens));
        }
        Ok(Verdict::Continue)
    }

    async fn on_finish(&self, ctx: &mut RequestCtx, _outcome: Outcome) {
        if let Some(TokenHolds(holds)) = ctx.slots.remove::<TokenHolds>() {
            let used = ctx
                .usage
                .tokens
                .prompt
                .saturating_add(ctx.usage.tokens.completion);
            let used = i64::try_from(used).unwrap_or(i64::MAX);
            for reservation in holds {
                self.book.settle(reservation, used).await;
            }
        }
        self.book.persist(self.persist_interval_ms(), false);
    }

    async fn on_shutdown(&self) {
        self.book.persist(0, true);
        self.book.give_back().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reset_times_read_like_openai_s() {
        assert_eq!(reset_text(250), "250ms");
        assert_eq!(reset_text(42_000), "42s");
        assert_eq!(reset_text(41_001), "42s");
        assert_eq!(reset_text(90_000), "1m30s");
    }

    #[test]
    fn a_limit_reads_its_id_back_from_its_counter_name() {
        let key = Limit::new(Kind::Requests, "key", "vk_1", 3);
        assert_eq!(key.counter, "rpm:key:vk_1");
        assert_eq!(key.id(), "vk_1");
        let model = Limit::new(Kind::Tokens, "model", "openai/gpt-4o:mini", 9);
        assert_eq!(model.counter, "tpm:model:openai/gpt-4o:mini");
        assert_eq!(model.id(), "openai/gpt-4o:mini");
    }

    #[test]
    fn config_is_checked_by_field() {
        let bad = serde_json::json!({"window_ms": 5});
        assert!(RateLimitsConfig::check(&bad).is_err_and(|e| e.contains("window_ms")));
        let bad = serde_json::json!({"models": {"gpt-4o": {"rpm": 0}}});
        assert!(RateLimitsConfig::check(&bad).is_err_and(|e| e.contains("models.gpt-4o")));
        let bad = serde_json::json!({"models": {"gpt-4o": {"rqm": 3}}});
        assert!(RateLimitsConfig::check(&bad).is_err());
        let good = serde_json::json!({"models": {"gpt-4o": {"rpm": 3, "tpm": 1000}}});
        assert!(RateLimitsConfig::check(&good).is_ok());
    }
}
