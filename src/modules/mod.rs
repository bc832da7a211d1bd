//! The `Module` trait: one type per feature on the request path, with optional hooks.
//!
//! ```text
//! request ─► on_headers (headers only: auth; request order)
//!        ─► [read body ≤ max_body_bytes, within the body timeout and the server's budget] ─► parse
//!        ─► on_request (request order): continue, answer (a canonical answer), or refuse
//!        ─► attempts (the plan routing left) ─► upstream
//!        ─► on_response (a complete answer)  or  on_event (each event of any stream, native
//!           pass-through included, for modules that declare a stream window)
//!        ─► on_finish (always, finish order): the outcome, the usage and the cost
//! ```
//! `on_request` and `on_finish` run in their own declared orders ([`registry::ModuleSpec`]), so a
//! module can reserve before routing and settle after `cost` priced the request. Hooks default to
//! no-ops, so a module overrides only what it needs; `on_headers` and `on_event` are plain `fn`s
//! on the hot path, and a chain with no stream watcher skips the stream hook entirely. When a hook
//! returns `Err`, the chain applies the module's [`FailPolicy`]. A module never waits on disk;
//! records go to the writer queue. Everything a module may be built with is in [`ModuleDeps`]:
//! infrastructure by name, feature state through the typed [`shared::Shared`] handle.

pub mod alerts;
pub mod auth;
pub mod background;
pub mod backups;
pub mod batches;
pub mod budgets;
pub mod cache;
pub mod chain;
pub mod context_fit;
pub mod cost;
pub mod cost_guard;
pub mod defaults_and_overrides;
pub mod estimate;
pub mod fan_out;
pub mod fixtures;
pub mod guard;
pub mod guard_injection;
pub mod guard_pii;
pub mod guard_policy;
pub mod guard_schema;
pub mod guard_secrets;
pub mod guard_webhook;
mod hooks;
pub mod ip_filter;
pub mod mcp;
pub mod metrics;
pub mod moderations;
pub mod otel;
pub mod prompt_templates;
pub mod rate_limits;
pub mod registry;
pub mod request_limits;
pub mod request_log;
pub mod responses;
pub mod retention;
pub mod route_rules;
pub mod routing;
pub mod semantic_cache;
pub mod session_limits;
pub mod shared;
pub mod tags;
pub mod trace;

use std::sync::Arc;

use arc_swap::ArcSwap;
use async_trait::async_trait;
use bytes::Bytes;
use thiserror::Error;

pub use chain::{Chain, ChainHandle};
pub use hooks::Hooks;

use crate::cost::PriceTable;
use crate::providers::ProviderRegistry;
use crate::request::RequestCtx;
use crate::request::internal::ModelCalls;
pub use crate::request::{
    CanonicalAnswer, Outcome, StreamDecision, StreamEvent, StreamWindow, Verdict,
};
use crate::secret::Secret;
use crate::store::Store;
use crate::store::writer::Writer;

#[derive(Debug, Error)]
pub enum ModuleError {
    #[error("module {module}: {message}")]
    Failed {
        module: &'static str,
        message: String,
    },
    #[error("invalid config: {0}")]
    Config(String),
    /// The module refuses the answer (a guardrail): the client gets this error, whatever the
    /// module's fail policy.
    #[error("answer refused: {}", .0.message())]
    Refused(crate::request::ApiError),
}

/// What to do when a hook fails: let the request through (open) or refuse it (closed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailPolicy {
    Open,
    Closed,
}

/// A complete answer from the upstream (non-streamed), which `on_response` may inspect or change.
pub struct Answer {
    pub status: u16,
    pub body: Bytes,
}

#[async_trait]
pub trait Module: Send + Sync + 'static {
    /// The module's name: its folder, its `[modules.NAME]` table, its admin API path.
    fn name(&self) -> &'static str;

    fn fail_policy(&self) -> FailPolicy {
        FailPolicy::Closed
    }

    /// The async hooks this module implements; the chain calls no other (see `hooks.rs`). The
    /// default, every hook, is always correct, only slower.
    fn hooks(&self) -> Hooks {
        Hooks::ALL
    }

    /// The largest request body this module admits; the body is never read past the smallest.
    fn max_body_bytes(&self) -> Option<usize> {
        None
    }

    /// Before the body is read, from the request line and headers alone: whatever must refuse a
    /// client before it costs memory or leaves a record (authentication). A refusal here skips
    /// every later hook, `on_finish` included, so a refused request writes no trace row: the
    /// module that refuses records it in aggregate itself. Synchronous: it runs on every request.
    fn on_headers(&self, _ctx: &mut RequestCtx) -> Result<Verdict, ModuleError> {
        Ok(Verdict::Continue)
    }

    /// Whether the waiting form of `hook` (`Hooks::REQUEST`, `RESPONSE` or `FINISH`) has anything
    /// to do for this request. A module whose waiting hook returns at once for most requests (it
    /// acts only on a virtual key, or on one endpoint) says so here, and the chain skips the call
    /// and the boxed future it costs. `false` must mean the hook would do nothing; the hook keeps
    /// its own checks, so the default, `true`, is always correct.
    fn has_work(&self, _hook: Hooks, _ctx: &RequestCtx) -> bool {
        true
    }

    /// Before the upstream call: may change the request, answer it, or refuse it.
    async fn on_request(&self, _ctx: &mut RequestCtx) -> Result<Verdict, ModuleError> {
        Ok(Verdict::Continue)
    }

    /// `on_request` for a module that never waits in it: a plain call, in the same place of the
    /// chain, without the boxed future (declared with `Hooks::REQUEST_NOW`; see `hooks.rs`).
    fn on_request_now(&self, _ctx: &mut RequestCtx) -> Result<Verdict, ModuleError> {
        Ok(Verdict::Continue)
    }

    /// After a complete (non-streamed) successful answer.
    async fn on_response(
        &self,
        _ctx: &mut RequestCtx,
        _answer: &mut Answer,
    ) -> Result<(), ModuleError> {
        Ok(())
    }

    /// `on_response` for a module that never waits in it (`Hooks::RESPONSE_NOW`).
    fn on_response_now(
        &self,
        _ctx: &mut RequestCtx,
        _answer: &mut Answer,
    ) -> Result<(), ModuleError> {
        Ok(())
    }

    /// Whether this module watches streams, and the most it may hold back at once. `None` (the
    /// default) keeps it off the stream path.
    fn stream_window(&self) -> Option<StreamWindow> {
        None
    }

    /// For each event of a streamed answer (translated or native), in order, as it arrives; only
    /// for modules whose [`Module::stream_window`] is `Some`.
    fn on_event(&self, _ctx: &mut RequestCtx, _event: &mut StreamEvent) -> StreamDecision {
        StreamDecision::Pass
    }

    /// Once a stream ended cleanly, before `on_finish` and before its closing events go out;
    /// only for modules whose [`Module::stream_window`] is `Some`. A module that judges the whole
    /// answer (an external guardrail) may refuse it here: the client then gets an error event in
    /// its format instead of the clean ending.
    async fn on_stream_end(&self, _ctx: &mut RequestCtx) -> Option<crate::request::ApiError> {
        None
    }

    /// Always runs once, in finish order: on success, error, refusal or cancellation. Usage and
    /// cost are in the context by then (for modules after `cost` in finish order).
    async fn on_finish(&self, _ctx: &mut RequestCtx, _outcome: Outcome) {}

    /// `on_finish` for a module that never waits in it (`Hooks::FINISH_NOW`).
    fn on_finish_now(&self, _ctx: &mut RequestCtx, _outcome: Outcome) {}

    /// Once at shutdown, after the last request finished and before the writer flushes: hand
    /// anything aggregated in memory to the writer.
    async fn on_shutdown(&self) {}
}

/// What modules may be built with. Cloned into each new chain.
#[derive(Clone)]
pub struct ModuleDeps {
    pub auth_keys: Arc<Vec<Secret<String>>>,
    pub writer: Arc<Writer>,
    pub prices: Arc<ArcSwap<PriceTable>>,
    /// The store, one handle per concern, for what a module reads (the writer takes writes).
    pub store: Store,
    pub providers: Arc<ProviderRegistry>,
    /// Model calls a module makes itself (embeddings for a semantic cache, a judge's completion),
    /// through the same routing, retries, breakers, cost and trace as a client's.
    pub models: Arc<dyn ModelCalls>,
    /// State a feature keeps across chains and requests, by type.
    pub shared: Arc<shared::Shared>,
    /// Every module this proxy knows: the built-in ones and any an embedder added.
    pub catalogue: Arc<registry::Catalogue>,
}
