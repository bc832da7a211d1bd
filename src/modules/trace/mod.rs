//! `trace`: turns each finished request into one trace row and queues it for the writer. Runs
//! last. Bodies are the `request_log` module's job: the row carries what it left (redacted, for
//! opted-in keys). `capture_bodies` here is the older switch, kept so existing configs go on
//! working: it stores every request's bodies, unredacted, each cut at `max_body_capture_bytes`,
//! when `request_log` left none.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::BytesMut;
use serde::{Deserialize, Serialize};

use super::registry::{ModuleConfig, ModuleSpec};
use super::request_log::{LoggedBodies, capture};
use super::{
    Answer, Hooks, Module, ModuleDeps, ModuleError, Outcome, StreamDecision, StreamEvent,
    StreamWindow,
};
use crate::request::RequestCtx;
use crate::store::TraceRecord;
use crate::store::writer::Writer;

pub const SPEC: ModuleSpec = ModuleSpec {
    name: "trace",
    description: "records one trace row per request (tokens, cost, timings, status) in the database",
    order: 90,
    finish_order: 90,
    enabled_by_default: true,
    required: super::registry::never_required,
    default_config: TraceConfig::default_json,
    check: TraceConfig::check,
    build,
};

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TraceConfig {
    /// Deprecated: use the `request_log` module (redacted, per key). Stores every request's and
    /// answer's bodies, unredacted, with each trace. Default off.
    pub capture_bodies: bool,
    /// Longest captured body, in bytes; the rest is cut. Default 16384.
    pub max_body_capture_bytes: usize,
}

impl Default for TraceConfig {
    fn default() -> Self {
        TraceConfig {
            capture_bodies: false,
            max_body_capture_bytes: 16 * 1024,
        }
    }
}

impl ModuleConfig for TraceConfig {
    fn validate(&self) -> Result<(), String> {
        if self.max_body_capture_bytes > 16 * 1024 * 1024 {
            return Err(format!(
                "max_body_capture_bytes: must be at most 16777216 (got {})",
                self.max_body_capture_bytes
            ));
        }
        Ok(())
    }
}

fn build(config: &serde_json::Value, deps: &ModuleDeps) -> Result<Arc<dyn Module>, ModuleError> {
    let config = TraceConfig::parse(config).map_err(ModuleError::Config)?;
    Ok(Arc::new(Trace {
        config,
        writer: deps.writer.clone(),
    }))
}

pub struct Trace {
    config: TraceConfig,
    writer: Arc<Writer>,
}

/// The response body captured so far (this module's private slot).
#[derive(Clone, Default)]
struct Captured(BytesMut);

impl Trace {
    fn capture(&self, ctx: &mut RequestCtx, bytes: &[u8]) {
        let cap = self.config.max_body_capture_bytes;
        let captured = ctx.slots.get_or_insert_default::<Captured>();
        capture::append(&mut captured.0, cap, bytes);
    }
}

#[async_trait]
impl Module for Trace {
    fn name(&self) -> &'static str {
        "trace"
    }

    fn hooks(&self) -> Hooks {
        Hooks::RESPONSE_NOW | Hooks::FINISH
    }

    fn fail_policy(&self) -> super::FailPolicy {
        super::FailPolicy::Open
    }

    fn on_response_now(
        &self,
        ctx: &mut RequestCtx,
        answer: &mut Answer,
    ) -> Result<(), ModuleError> {
        if self.config.capture_bodies {
            self.capture(ctx, &answer.body);
        }
        Ok(())
    }

    /// Watches streams only to capture them.
    fn stream_window(&self) -> Option<StreamWindow> {
        self.config.capture_bodies.then_some(StreamWindow::WATCH)
    }

    fn on_event(&self, ctx: &mut RequestCtx, event: &mut StreamEvent) -> StreamDecision {
        self.capture(ctx, event.raw());
        StreamDecision::Pass
    }

    async fn on_finish(&self, ctx: &mut RequestCtx, _outcome: Outcome) {
        let legacy = ctx.slots.remove::<Captured>();
        let (request_body, response_body) = match ctx.slots.remove::<LoggedBodies>() {
            Some(logged) => (logged.request, logged.response),
            None if self.config.capture_bodies => (
                Some(capture::cut(
                    &ctx.request.body,
                    self.config.max_body_capture_bytes,
                )),
                legacy.map(|c| String::from_utf8_lossy(&c.0).into_owned()),
            ),
            None => (None, None),
        };
        let micros = |d: std::time::Duration| d.as_micros() as i64;
        let grant = ctx.identity.grant.as_deref();
        let record = TraceRecord {
            id: crate::ids::uuid_v7(),
            ts_ms: ctx.timings.ts_ms,
            endpoint: ctx.request.endpoint.as_str().to_string(),
            requested_model: ctx.request.requested_model.clone(),
            provider: ctx.provider_name().map(String::from),
            upstream_model: ctx.upstream_model().map(String::from),
            status: ctx.result.status,
            error_class: ctx.result.error_class.map(|c| c.as_str().to_string()),
            stream: ctx.request.stream,
            tokens: ctx.usage.tokens,
            usage_estimated: ctx.usage.estimated,
            cost_nanos: ctx.usage.cost_nanos,
            price_known: ctx.usage.price_known,
            latency_us: micros(ctx.timings.started.elapsed()),
            ttft_us: ctx.timings.ttft.map(micros),
            upstream_us: ctx.timings.upstream_latency.map(micros),
            overhead_us: micros(ctx.timings.overhead),
            bytes_in: ctx.result.bytes_in as i64,
            bytes_out: ctx.result.bytes_out as i64,
            user: ctx.identity.user.clone(),
            deployment: ctx.route.deployment.clone(),
            attempts: ctx.route.attempts.max(1),
            variant: ctx.route.variant.clone(),
            request_id: ctx.identity.request_id.clone(),
            // A virtual key is named by its public id; a static key by its hash prefix.
            key_id: match &grant {
                Some(grant) => Some(grant.key_id.clone()),
                None => ctx.identity.key_id.clone(),
            },
            team_id: grant.and_then(|g| g.team_id()).map(String::from),
            key_metadata: grant
                .filter(|g| !g.metadata.is_empty())
                .and_then(|g| serde_json::to_string(&g.metadata).ok()),
            request_body,
            response_body,
            answered_by: ctx.route.answered_by.map(String::from),
            internal_caller: ctx.identity.internal.map(String::from),
            cache: ctx.result.cache.map(String::from),
            saved_nanos: ctx.usage.saved_nanos,
            verdicts: ctx
                .slots
                .get::<super::guard::Verdicts>()
                .and_then(|v| v.to_json()),
            tags: (!ctx.request.tags.is_empty())
                .then(|| serde_json::to_string(&ctx.request.tags).ok())
                .flatten(),
            route_rule: ctx.route.rule.clone(),
            prompt: ctx.route.prompt.clone(),
        };
        self.writer.submit_trace(record).await;
    }
}
