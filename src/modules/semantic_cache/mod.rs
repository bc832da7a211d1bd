//! `semantic_cache`: answers a request with the answer of an earlier one that asked nearly the
//! same. The last user turn (with `include_history`, the whole conversation's text) is embedded
//! by the configured embedding model, called through Stockyard's own routing like any model call
//! (so the embeddings cache, cost and trace apply to it); the nearest earlier entry in the same
//! partition (namespace, model after alias resolution, system prompt and output parameters)
//! answers when its cosine similarity is at least `threshold`. The response says
//! `x-stockyard-cache: semantic-hit` and `x-stockyard-cache-similarity`.
//!
//! An embedding that fails or times out never fails the request: the lookup is skipped (and
//! nothing is stored), and the trace's `cache` says `semantic-error`.

pub mod entries;
pub mod vectors;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use async_trait::async_trait;
use hyper::header::{HeaderName, HeaderValue};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

pub use self::entries::SemanticEntries;
use super::cache::collect::{Collected, storable};
use super::cache::controls::{Controls, SIMILARITY_HEADER};
use super::cache::key::{self, NamespaceBy};
use super::cache::{report, too_hot};
use super::registry::{ModuleConfig, ModuleSpec};
use super::{Answer, Hooks, Module, ModuleDeps, ModuleError, Outcome, StreamWindow, Verdict};
use crate::request::internal::{InternalCall, ModelCalls};
use crate::request::{CanonicalAnswer, RequestCtx, StreamDecision, StreamEvent};
use crate::store::{CacheEntry, CacheKind};
use crate::wire::openai::{ChatRequest, Endpoint};

pub const SPEC: ModuleSpec = ModuleSpec {
    name: "semantic_cache",
    description: "semantic response cache: a request close enough to an earlier one (by embedding similarity) gets its answer",
    // Right after the exact cache (60), which answers for free what it can.
    order: 61,
    finish_order: 61,
    enabled_by_default: false,
    required: super::registry::never_required,
    default_config: SemanticConfig::default_json,
    check: SemanticConfig::check,
    build,
};

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SemanticConfig {
    /// The model that embeds requests (any model name routing knows, an alias included).
    pub embedding_model: String,
    /// The least cosine similarity that counts as the same question.
    pub threshold: f32,
    pub ttl_secs: u64,
    /// Entries kept; the oldest go first.
    pub max_entries: usize,
    pub namespace: NamespaceBy,
    pub allow_client_namespace: bool,
    pub max_temperature: f64,
    /// Embed every turn's text, not only the last user turn.
    pub include_history: bool,
    /// How long the embedding call may take before the lookup is skipped.
    pub timeout_ms: u64,
}

impl Default for SemanticConfig {
    fn default() -> Self {
        SemanticConfig {
            embedding_model: "text-embedding-3-small".into(),
            threshold: 0.95,
            ttl_secs: 3600,
            max_entries: 100_000,
            namespace: NamespaceBy::Key,
            allow_client_namespace: true,
            max_temperature: 1.0,
            include_history: false,
            timeout_ms: 2000,
        }
    }
}

impl ModuleConfig for SemanticConfig {
    fn validate(&self) -> Result<(), String> {
        if !(0.0..=1.0).contains(&self.threshold) {
            return Err("threshold: must be between 0 and 1".into());
        }
        if self.embedding_model.is_empty() {
            return Err("embedding_model: must name a model".into());
        }
        if self.max_entries == 0 {
            return Err("max_entries: must be at least 1".into());
        }
        Ok(())
    }
}

pub fn entries(deps: &ModuleDeps, max_entries: usize) -> Arc<SemanticEntries> {
    deps.shared.get_or_init(|| {
        SemanticEntries::load(deps.store.cache.as_ref(), deps.writer.clone(), max_entries)
            .reading_shared(&deps.store.cache)
    })
}

fn build(config: &Value, deps: &ModuleDeps) -> Result<Arc<dyn Module>, ModuleError> {
    let config = SemanticConfig::parse(config).map_err(ModuleError::Config)?;
    let entries = entries(deps, config.max_entries);
    entries.set_max_entries(config.max_entries);
    Ok(Arc::new(SemanticCache {
        config,
        entries,
        models: deps.models.clone(),
    }))
}

pub struct SemanticCache {
    config: SemanticConfig,
    entries: Arc<SemanticEntries>,
    models: Arc<dyn ModelCalls>,
}

#[derive(Clone)]
struct Pending {
    namespace: String,
    key: String,
    model: String,
    partition: String,
    vector: Vec<f32>,
    ttl_ms: i64,
    answer: Collected,
}

/// The text of a message's content: a string, or its text parts joined.
fn content_text(content: Option<&Value>) -> String {
    match content {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| p["text"].as_str())
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

/// What is embedded: the last user turn, or with `history` every turn but the system prompt.
fn embedded_text(chat: &ChatRequest, history: bool) -> Option<String> {
    use crate::wire::openai::Role;
    let turns = chat
        .messages
        .iter()
        .filter(|m| !matches!(m.role, Role::System | Role::Developer));
    let text = if history {
        turns
            .map(|m| content_text(m.content.as_ref()))
            .collect::<Vec<_>>()
            .join("\n")
    } else {
        chat.messages
            .iter()
            .rev()
            .find(|m| m.role == Role::User)
            .map(|m| content_text(m.content.as_ref()))?
    };
    (!text.trim().is_empty()).then_some(text)
}

/// What two requests must share to be compared: the namespace, and the normalised request with
/// the embedded turns left out (model, system prompt, tools, parameters).
fn partition(chat: &ChatRequest, model: &str, namespace: &str, history: bool) -> String {
    use crate::wire::openai::Role;
    let mut normalised = key::normalised(chat, model);
    if let Some(Value::Array(messages)) = normalised.get_mut("messages") {
        if history {
            messages.retain(|m| matches!(m["role"].as_str(), Some("system" | "developer")));
        } else if let Some(last_user) = chat.messages.iter().rposition(|m| m.role == Role::User) {
            // Earlier turns stay in the partition: only the last question may vary.
            messages.remove(last_user);
        }
    }
    key::hash(&json!({"namespace": namespace, "request": normalised}))
}

impl SemanticCache {
    /// The embeddings call for `text`, made for the request `ctx`.
    /// The nearest entry of `partition`; when none here is close enough and other nodes share the
    /// store, the partition's entries they stored since the last look are read first.
    async fn nearest(
        &self,
        namespace: &str,
        partition: &str,
        vector: &[f32],
        now: i64,
    ) -> Option<(Arc<entries::SemStored>, f32)> {
        let local = self.entries.nearest(partition, vector, now);
        if local
            .as_ref()
            .is_some_and(|(_, similarity)| *similarity >= self.config.threshold)
            || !self.entries.sync(namespace, partition, now).await
        {
            return local;
        }
        self.entries.nearest(partition, vector, now)
    }

    fn embedding_call(&self, ctx: &RequestCtx, text: String) -> InternalCall {
        InternalCall::for_request(
            ctx,
            Endpoint::Embeddings,
            json!({"model": self.config.embedding_model, "input": text}),
            "semantic_cache",
        )
    }

    /// The unit embedding the call answers, or why there is none.
    async fn embed(&self, call: InternalCall) -> Result<Vec<f32>, String> {
        let timeout = Duration::from_millis(self.config.timeout_ms);
        let answer = tokio::time::timeout(timeout, self.models.call(call))
            .await
            .map_err(|_| format!("embedding timed out after {} ms", self.config.timeout_ms))?
            .map_err(|e| format!("embedding failed: {}", e.error_code().as_str()))?;
        let mut vector: Vec<f32> = answer.body["data"][0]["embedding"]
            .as_array()
            .ok_or("embedding answer has no vector")?
            .iter()
            .map(|x| x.as_f64().unwrap_or(0.0) as f32)
            .collect();
        if !vectors::normalise(&mut vector) {
            return Err("embedding is a zero vector".into());
        }
        Ok(vector)
    }
}

#[async_trait]
impl Module for SemanticCache {
    fn name(&self) -> &'static str {
        "semantic_cache"
    }

    fn hooks(&self) -> Hooks {
        Hooks::REQUEST | Hooks::RESPONSE_NOW | Hooks::FINISH_NOW
    }

    fn fail_policy(&self) -> super::FailPolicy {
        super::FailPolicy::Open
    }

    async fn on_request(&self, ctx: &mut RequestCtx) -> Result<Verdict, ModuleError> {
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
        if controls.no_store || too_hot(ctx, self.config.max_temperature, &controls) {
            self.entries.stats.skips.fetch_add(1, Ordering::Relaxed);
            if ctx.result.cache.is_none() {
                report(ctx, "skip");
            }
            return Ok(Verdict::Continue);
        }
        let history = self.config.include_history;
        let Some(text) = embedded_text(chat, history) else {
            return Ok(Verdict::Continue);
        };
        let model = key::target_model(ctx);
        let client_namespace = controls
            .namespace
            .as_deref()
            .filter(|_| self.config.allow_client_namespace);
        let namespace = key::namespace(ctx, self.config.namespace, client_namespace);
        let partition = partition(chat, &model, &namespace, history);
        let entry_key = key::hash(&key::normalised(chat, &model));
        let call = self.embedding_call(ctx, text);
        let vector = match self.embed(call).await {
            Ok(vector) => vector,
            Err(why) => {
                tracing::debug!(request_id = %ctx.identity.request_id, why, "semantic lookup skipped");
                self.entries.stats.skips.fetch_add(1, Ordering::Relaxed);
                // The header keeps what the exact cache said; the trace says why.
                ctx.result.cache = Some("semantic-error");
                return Ok(Verdict::Continue);
            }
        };
        let now = crate::store::now_ms();
        if !controls.no_cache
            && let Some((hit, similarity)) =
                self.nearest(&namespace, &partition, &vector, now).await
            && similarity >= self.config.threshold
            && controls
                .max_age_s
                .is_none_or(|age| now - hit.created_ms <= (age as i64).saturating_mul(1000))
        {
            self.entries.stats.hits.fetch_add(1, Ordering::Relaxed);
            self.entries
                .stats
                .saved_nanos
                .fetch_add(hit.saved_nanos, Ordering::Relaxed);
            ctx.usage.saved_nanos = hit.saved_nanos;
            report(ctx, "semantic-hit");
            if let Ok(value) = HeaderValue::from_str(&format!("{similarity:.4}")) {
                ctx.result
                    .response_headers
                    .insert(HeaderName::from_static(SIMILARITY_HEADER), value);
            }
            return Ok(Verdict::Answer(CanonicalAnswer::Complete(
                hit.answer.clone(),
            )));
        }
        self.entries.stats.misses.fetch_add(1, Ordering::Relaxed);
        if ctx.result.cache.is_none() {
            report(ctx, "miss");
        }
        let ttl_s = controls
            .ttl_s
            .or(controls.max_age_s)
            .unwrap_or(self.config.ttl_secs);
        ctx.slots.insert(Pending {
            namespace,
            key: entry_key,
            model,
            partition,
            vector,
            ttl_ms: (ttl_s as i64).saturating_mul(1000),
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
        if pending.ttl_ms == 0 {
            return;
        }
        let Some(answer) = storable(ctx, outcome, pending.answer.answer(ctx)) else {
            return;
        };
        let now = crate::store::now_ms();
        self.entries.put(CacheEntry {
            kind: CacheKind::Semantic,
            namespace: pending.namespace,
            key: pending.key,
            model: pending.model,
            partition: pending.partition,
            created_ms: now,
            expires_ms: now.saturating_add(pending.ttl_ms),
            saved_nanos: ctx.usage.cost_nanos,
            answer,
            embedding: Some(pending.vector),
        });
    }
}
