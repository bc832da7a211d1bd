//! `cache`: the exact response cache. A request whose normalised form (see [`key`]) was answered
//! before, in the same namespace, is answered from memory without an upstream call; the answer
//! is kept in canonical form, so one stored from a stream serves a non-streamed request and the
//! reverse, and one stored for a Chat client serves a Messages client. Only complete, successful
//! answers are stored: an errored, cut or refused one never is. Entries live in the SQLite file
//! (through the writer) and in memory ([`index`]), with a TTL and a byte budget. On a store
//! several nodes share, a miss in memory is read from the store ([`shared`]), so an answer one
//! node stored serves the others.
//!
//! Per request: `Cache-Control: no-cache` skips the lookup but stores, `no-store` does neither,
//! `max-age=N` accepts only entries younger than N seconds; `x-stockyard-cache-ttl` sets how long
//! this answer is kept; `x-stockyard-cache-namespace` picks a sub-namespace of the tenant's own.
//! Every response says what happened in `x-stockyard-cache` (`hit`, `miss` or `skip`).

pub mod collect;
pub mod controls;
pub mod embeddings;
pub mod index;
pub mod key;
pub mod shared;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use async_trait::async_trait;
use hyper::header::{HeaderName, HeaderValue};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use self::collect::{Collected, storable};
use self::controls::{Controls, OUTCOME_HEADER};
use self::index::EntryIndex;
use self::key::NamespaceBy;
use super::registry::{ModuleConfig, ModuleSpec};
use super::{Answer, Hooks, Module, ModuleDeps, ModuleError, Outcome, StreamWindow, Verdict};
use crate::request::{CanonicalAnswer, RequestCtx, StreamDecision, StreamEvent};
use crate::store::{CacheEntry, CacheKind};

pub const SPEC: ModuleSpec = ModuleSpec {
    name: "cache",
    description: "exact response cache: repeated requests answered from the SQLite file's cache, in any client format, streamed or not",
    // After routing (50), so the key has the alias resolved; before cost (80).
    order: 60,
    // After cost (10), which prices the answer this stores (what a hit saves).
    finish_order: 60,
    enabled_by_default: false,
    required: super::registry::never_required,
    default_config: CacheConfig::default_json,
    check: CacheConfig::check,
    build,
};

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct CacheConfig {
    /// How long an answer is kept, unless the request or `model_ttl_secs` says otherwise.
    pub ttl_secs: u64,
    /// The budget of all entries together; the least recently used go first.
    pub max_bytes: u64,
    /// An answer larger than this is not stored.
    pub max_entry_bytes: u64,
    /// Whose answers a request may get: `key` (default), `team` or `global`.
    pub namespace: NamespaceBy,
    /// Whether `x-stockyard-cache-namespace` may split a tenant's namespace further.
    pub allow_client_namespace: bool,
    /// Requests with a higher `temperature` are neither looked up nor stored, unless they ask
    /// for caching (`x-stockyard-cache-ttl` or `Cache-Control: max-age`).
    pub max_temperature: f64,
    /// The TTL per model (after alias resolution); 0 turns the cache off for that model.
    pub model_ttl_secs: BTreeMap<String, u64>,
    /// The TTL per client key id, over the model's; 0 turns the cache off for that key.
    pub key_ttl_secs: BTreeMap<String, u64>,
    /// The TTL per team id, for keys without their own.
    pub team_ttl_secs: BTreeMap<String, u64>,
    /// Largest TTL a request may ask for.
    pub max_ttl_secs: u64,
    /// Whether `/v1/embeddings` answers are cached per input string.
    pub embeddings: bool,
    /// The embeddings cache's own byte budget.
    pub embeddings_max_bytes: u64,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            ttl_secs: 3600,
            max_bytes: 64 * 1024 * 1024,
            max_entry_bytes: 1024 * 1024,
            namespace: NamespaceBy::Key,
            allow_client_namespace: true,
            max_temperature: 1.0,
            model_ttl_secs: BTreeMap::new(),
            key_ttl_secs: BTreeMap::new(),
            team_ttl_secs: BTreeMap::new(),
            max_ttl_secs: 30 * 86_400,
            embeddings: true,
            embeddings_max_bytes: 64 * 1024 * 1024,
        }
    }
}

impl ModuleConfig for CacheConfig {
    fn validate(&self) -> Result<(), String> {
        if self.max_bytes == 0 {
            return Err("max_bytes: must be at least 1".into());
        }
        if !(0.0..=2.0).contains(&self.max_temperature) {
            return Err("max_temperature: must be between 0 and 2".into());
        }
        Ok(())
    }
}

/// The exact cache's entries, shared by every chain and the admin API.
pub struct ResponseEntries(pub EntryIndex);

pub fn entries(deps: &ModuleDeps, max_bytes: usize) -> Arc<ResponseEntries> {
    deps.shared.get_or_init(|| {
        ResponseEntries(
            EntryIndex::load(
                CacheKind::Exact,
                deps.store.cache.as_ref(),
                deps.writer.clone(),
                max_bytes,
            )
            .reading_shared(&deps.store.cache),
        )
    })
}

fn build(config: &Value, deps: &ModuleDeps) -> Result<Arc<dyn Module>, ModuleError> {
    let config = CacheConfig::parse(config).map_err(ModuleError::Config)?;
    let max_bytes = usize::try_from(config.max_bytes).unwrap_or(usize::MAX);
    let entries = entries(deps, max_bytes);
    entries.0.set_max_bytes(max_bytes);
    let embedding_bytes = usize::try_from(config.embeddings_max_bytes).unwrap_or(usize::MAX);
    let vectors = embeddings::entries(deps, embedding_bytes);
    vectors.0.set_max_bytes(embedding_bytes);
    Ok(Arc::new(ExactCache {
        config,
        entries,
        vectors,
    }))
}

pub struct ExactCache {
    config: CacheConfig,
    entries: Arc<ResponseEntries>,
    vectors: Arc<embeddings::EmbeddingEntries>,
}

/// A miss this request may fill: where it goes, and the answer as it arrives.
#[derive(Clone)]
struct Pending {
    namespace: String,
    key: String,
    model: String,
    ttl_ms: i64,
    answer: Collected,
}

/// Sets the `x-stockyard-cache` response header and the trace's outcome.
pub fn report(ctx: &mut RequestCtx, outcome: &'static str) {
    ctx.result.cache = Some(outcome);
    ctx.result.response_headers.insert(
        HeaderName::from_static(OUTCOME_HEADER),
        HeaderValue::from_static(outcome),
    );
}

/// Whether a request's temperature keeps it out of the cache.
pub fn too_hot(ctx: &RequestCtx, max: f64, controls: &Controls) -> bool {
    let temperature = key::chat_request(ctx)
        .and_then(|c| c.rest.get("temperature"))
        .and_then(Value::as_f64)
        .unwrap_or(0.0);
    temperature > max && !controls.asks_for_caching()
}

impl ExactCache {
    /// `/v1/embeddings`: answer from the cache, or ask upstream only for the inputs not in it.
    fn embeddings(&self, ctx: &mut RequestCtx) -> Verdict {
        if !self.config.embeddings {
            return Verdict::Continue;
        }
        let controls = match Controls::from_headers(&ctx.request.headers) {
            Ok(controls) => controls,
            Err(error) => return Verdict::Reject(error),
        };
        let model = key::target_model(ctx);
        let ttl_ms = self.ttl_ms(ctx, &model, &controls);
        if controls.no_store || ttl_ms == 0 {
            report(ctx, "skip");
            return Verdict::Continue;
        }
        let client_namespace = controls
            .namespace
            .as_deref()
            .filter(|_| self.config.allow_client_namespace);
        let namespace = key::namespace(ctx, self.config.namespace, client_namespace);
        let max_age = controls.max_age_s.map(|s| (s as i64).saturating_mul(1000));
        match embeddings::lookup(
            ctx,
            &self.vectors.0,
            namespace,
            ttl_ms,
            max_age,
            !controls.no_cache,
        ) {
            embeddings::Lookup::Answered(answer, saved) => {
                ctx.usage.saved_nanos = saved;
                report(ctx, "hit");
                Verdict::Answer(CanonicalAnswer::Complete(answer))
            }
            embeddings::Lookup::Partial(merge) => {
                report(ctx, "miss");
                ctx.slots.insert(merge);
                Verdict::Continue
            }
            embeddings::Lookup::NotCached => Verdict::Continue,
        }
    }

    /// How long this request's answer is kept: the request's own TTL (bounded), else the key's,
    /// the team's, the model's, the default; 0 means not cached.
    fn ttl_ms(&self, ctx: &RequestCtx, model: &str, controls: &Controls) -> i64 {
        let grant = ctx.identity.grant.as_deref();
        let key = grant
            .map(|g| g.key_id.as_str())
            .or(ctx.identity.key_id.as_deref());
        let c = &self.config;
        let default = key
            .and_then(|k| c.key_ttl_secs.get(k))
            .or_else(|| {
                grant
                    .and_then(|g| g.team_id())
                    .and_then(|t| c.team_ttl_secs.get(t))
            })
            .or_else(|| c.model_ttl_secs.get(model))
            .copied()
            .unwrap_or(c.ttl_secs);
        if default == 0 {
            return 0;
        }
        let ttl = controls
            .ttl_s
            .or(controls.max_age_s)
            .map_or(default, |asked| asked.min(self.config.max_ttl_secs));
        (ttl as i64).saturating_mul(1000)
    }
}

#[async_trait]
impl Module for ExactCache {
    fn name(&self) -> &'static str {
        "cache"
    }

    fn hooks(&self) -> Hooks {
        Hooks::REQUEST | Hooks::RESPONSE_NOW | Hooks::FINISH_NOW
    }

    /// A cache that fails is a miss, never a failed request.
    fn fail_policy(&self) -> super::FailPolicy {
        super::FailPolicy::Open
    }

    async fn on_request(&self, ctx: &mut RequestCtx) -> Result<Verdict, ModuleError> {
        if ctx.request.endpoint == crate::wire::openai::Endpoint::Embeddings {
            return Ok(self.embeddings(ctx));
        }
        if ctx.identity.internal.is_some() {
            return Ok(Verdict::Continue);
        }
        let Some(chat) = key::chat_request(ctx) else {
            return Ok(Verdict::Continue);
        };
        let controls = match Controls::from_headers(&ctx.request.headers) {
            Ok(controls) => controls,
            Err(error) => return Ok(Verdict::Reject(error)),
        };
        let model = key::target_model(ctx);
        let ttl_ms = self.ttl_ms(ctx, &model, &controls);
        if controls.no_store || ttl_ms == 0 || too_hot(ctx, self.config.max_temperature, &controls)
        {
            self.entries.0.stats.skips.fetch_add(1, Ordering::Relaxed);
            report(ctx, "skip");
            return Ok(Verdict::Continue);
        }
        let key = key::hash(&key::normalised(chat, &model));
        let client_namespace = controls
            .namespace
            .as_deref()
            .filter(|_| self.config.allow_client_namespace);
        let namespace = key::namespace(ctx, self.config.namespace, client_namespace);
        if !controls.no_cache {
            let now = crate::store::now_ms();
            let max_age = controls.max_age_s.map(|s| (s as i64).saturating_mul(1000));
            let local = self.entries.0.get(&namespace, &key, now, max_age);
            let hit = match local {
                Some(hit) => Some(hit),
                // Another node of a shared store may have answered it (free on SQLite).
                None => {
                    self.entries
                        .0
                        .get_shared(&namespace, &key, now, max_age)
                        .await
                }
            };
            if let Some(hit) = hit {
                let stats = &self.entries.0.stats;
                stats.hits.fetch_add(1, Ordering::Relaxed);
                stats
                    .saved_nanos
                    .fetch_add(hit.saved_nanos, Ordering::Relaxed);
                ctx.usage.saved_nanos = hit.saved_nanos;
                report(ctx, "hit");
                return Ok(Verdict::Answer(CanonicalAnswer::Complete(
                    hit.answer.clone(),
                )));
            }
        }
        self.entries.0.stats.misses.fetch_add(1, Ordering::Relaxed);
        report(ctx, "miss");
        ctx.slots.insert(Pending {
            namespace,
            key,
            model,
            ttl_ms,
            answer: Collected::default(),
        });
        Ok(Verdict::Continue)
    }

    fn on_response_now(
        &self,
        ctx: &mut RequestCtx,
        answer: &mut Answer,
    ) -> Result<(), ModuleError> {
        if let Some(pending) = ctx.slots.get_mut::<Pending>() {
            pending.answer.complete(&answer.body);
        }
        if let Some(merge) = ctx.slots.remove::<embeddings::Merge>()
            && (200..300).contains(&answer.status)
            && let Ok(upstream) = serde_json::from_slice::<Value>(&answer.body)
        {
            // What the call costs is not known before `on_finish`; the estimate is its usage.
            let merged = merge.merge(&self.vectors.0, 0, &upstream);
            if let Some(merged) = merged {
                answer.body = bytes::Bytes::from(merged.to_string());
            }
        }
        Ok(())
    }

    fn stream_window(&self) -> Option<StreamWindow> {
        Some(StreamWindow::WATCH)
    }

    fn on_event(&self, ctx: &mut RequestCtx, event: &mut StreamEvent) -> StreamDecision {
        if let Some(pending) = ctx.slots.get_mut::<Pending>() {
            pending.answer.capture(event);
        }
        StreamDecision::Pass
    }

    fn on_finish_now(&self, ctx: &mut RequestCtx, outcome: Outcome) {
        let Some(pending) = ctx.slots.remove::<Pending>() else {
            return;
        };
        let Some(answer) = storable(ctx, outcome, pending.answer.answer(ctx)) else {
            return;
        };
        let size = answer.to_string().len() as u64;
        if size > self.config.max_entry_bytes {
            return;
        }
        let now = crate::store::now_ms();
        self.entries.0.put(CacheEntry {
            kind: CacheKind::Exact,
            namespace: pending.namespace,
            key: pending.key,
            model: pending.model,
            partition: String::new(),
            created_ms: now,
            expires_ms: now.saturating_add(pending.ttl_ms),
            saved_nanos: ctx.usage.cost_nanos,
            answer,
            embedding: None,
        });
    }
}
