//! The `Module` trait: one type per feature on the request path, with optional hooks.
//!
//! ```text
//! request ─► on_headers (headers only: auth) ─► [read body ≤ max_body_bytes, within the body
//!        timeout and the server's budget] ─► parse ─► on_request (chain order) ─► route
//!        ─► upstream ─► on_response (whole body)  or  on_chunk (each SSE event, as it passes)
//!        ─► on_finish (always: success, error or cancel; chain order)
//! ```
//! Hooks default to no-ops, so a module overrides only what it needs. `on_chunk` is a plain `fn`:
//! it sits on the stream's hot path. When a hook returns `Err`, the chain applies the module's
//! [`FailPolicy`]. A module never waits on disk; records go to the writer queue.

pub mod auth;
pub mod chain;
pub mod cost;
pub mod registry;
pub mod request_limits;
pub mod responses;
pub mod routing;
pub mod trace;

use std::sync::Arc;

use arc_swap::ArcSwap;
use async_trait::async_trait;
use bytes::Bytes;
use thiserror::Error;

pub use chain::{Chain, ChainHandle};

use crate::cost::PriceTable;
use crate::request::{ApiError, RequestCtx};
use crate::secret::Secret;
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
}

/// What to do when a hook fails: let the request through (open) or refuse it (closed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailPolicy {
    Open,
    Closed,
}

pub enum Verdict {
    Continue,
    /// Answer the client directly with this JSON body; the upstream is not called.
    Respond {
        status: u16,
        body: Bytes,
    },
    Reject(ApiError),
}

/// A complete answer from the upstream (non-streamed), which `on_response` may inspect or change.
pub struct Answer {
    pub status: u16,
    pub body: Bytes,
}

/// One SSE event of a stream as it passes through.
pub struct StreamChunk {
    /// The event exactly as the upstream sent it, blank line included. A module may replace it.
    pub raw: Bytes,
    /// The event's JSON payload, parsed only when the client's format needs re-encoding (a
    /// `/v1/messages` client); `None` otherwise, and for `[DONE]` and comments. A module that
    /// needs it can parse `raw` itself.
    pub json: Option<serde_json::Value>,
    /// Set to withhold this event from the client.
    pub drop: bool,
}

#[async_trait]
pub trait Module: Send + Sync + 'static {
    /// The module's name: its folder, its `[modules.NAME]` table, its admin API path.
    fn name(&self) -> &'static str;

    fn fail_policy(&self) -> FailPolicy {
        FailPolicy::Closed
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

    /// Before the upstream call: may change the request, answer it, or refuse it.
    async fn on_request(&self, _ctx: &mut RequestCtx) -> Result<Verdict, ModuleError> {
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

    /// For each event of a streamed answer, in order, as it arrives.
    fn on_chunk(&self, _ctx: &mut RequestCtx, _chunk: &mut StreamChunk) {}

    /// Always runs once, last: on success, error, or cancellation.
    async fn on_finish(&self, _ctx: &mut RequestCtx) {}

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
    pub routing: Arc<routing::RoutingShared>,
    pub responses: Arc<responses::store::ResponseStore>,
    /// Refused authentications, counted per minute and source.
    pub auth_failures: Arc<auth::failures::AuthFailures>,
}
