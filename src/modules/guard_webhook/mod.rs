//! `guard_webhook`: an external guardrail. The request (before the upstream call) and the answer
//! (a complete one, or a streamed one's whole text at its end) go to an HTTP webhook, which
//! answers allow, block or a rewritten body. The webhook has `timeout_ms` to answer; without a
//! verdict the request goes on (`on_error = "allow"`) or is refused (`"block"`).
//!
//! A streamed answer is judged once it ended: its text is already out, so a block there replaces
//! the stream's clean ending with an error event (the client's SDK raises it), and a rewrite
//! cannot apply (it is recorded). The webhook sees a request in the client's own format (Chat,
//! Messages, Responses, ...) and a rewrite comes back in that format: it replaces the client's
//! body, its canonical form and what a native pass-through sends, so every route gets it.

mod call;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::guard::{Scope, VerdictRecord, Verdicts};
use super::registry::{ModuleConfig, ModuleSpec};
use super::{
    Answer, Hooks, Module, ModuleDeps, ModuleError, StreamDecision, StreamEvent, StreamWindow,
    Verdict,
};
use crate::request::{ApiError, RequestCtx};
use crate::wire::openai::Inbound;
use call::{Decision, Hook};

pub const SPEC: ModuleSpec = ModuleSpec {
    name: "guard_webhook",
    description: "asks an external HTTP guardrail about each request and answer (streamed ones at their end): allow, block or rewrite, with a timeout and a fail-open or fail-closed policy",
    order: 46,
    finish_order: 46,
    enabled_by_default: false,
    required: super::registry::never_required,
    default_config: WebhookConfig::default_json,
    check: WebhookConfig::check,
    build,
};

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum OnError {
    Allow,
    Block,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookConfig {
    /// Where to POST; empty leaves the module idle.
    pub url: String,
    /// How long the webhook has to answer, in milliseconds. Default 1000.
    pub timeout_ms: u64,
    /// Without a verdict (timeout, error, nonsense): `allow` (fail open, the default) or `block`.
    pub on_error: OnError,
    /// Send requests.
    pub input: bool,
    /// Send answers, streamed ones at their end.
    pub output: bool,
    /// The most streamed answer text kept for the end-of-stream call, in bytes.
    pub max_stream_bytes: usize,
    pub scope: Scope,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            url: String::new(),
            timeout_ms: 1000,
            on_error: OnError::Allow,
            input: true,
            output: true,
            max_stream_bytes: 256 * 1024,
            scope: Scope::default(),
        }
    }
}

impl ModuleConfig for WebhookConfig {
    fn validate(&self) -> Result<(), String> {
        if !(1..=60_000).contains(&self.timeout_ms) {
            return Err(format!(
                "timeout_ms: must be 1..=60000 (got {})",
                self.timeout_ms
            ));
        }
        if !self.url.is_empty() {
            Hook::new(&self.url, Duration::from_millis(self.timeout_ms))?;
        }
        Ok(())
    }
}

fn build(config: &Value, _deps: &ModuleDeps) -> Result<Arc<dyn Module>, ModuleError> {
    let config = WebhookConfig::parse(config).map_err(ModuleError::Config)?;
    let hook = if config.url.is_empty() {
        None
    } else {
        Some(
            Hook::new(&config.url, Duration::from_millis(config.timeout_ms))
                .map_err(ModuleError::Config)?,
        )
    };
    Ok(Arc::new(GuardWebhook { config, hook }))
}

pub struct GuardWebhook {
    config: WebhookConfig,
    hook: Option<Hook>,
}

/// The streamed answer's text so far (this module's slot).
#[derive(Clone, Default)]
struct StreamText(String);

const NAME: &str = "guard_webhook";

impl GuardWebhook {
    fn applies(&self, ctx: &RequestCtx) -> bool {
        self.hook.is_some() && ctx.identity.internal.is_none() && self.config.scope.covers(ctx)
    }

    fn document(ctx: &RequestCtx, stage: &str, body: Value) -> Value {
        let grant = ctx.identity.grant.as_deref();
        json!({
            "stage": stage,
            "request_id": ctx.identity.request_id,
            "endpoint": ctx.request.endpoint.as_str(),
            "model": ctx.request.requested_model,
            "key_id": grant.map(|g| g.key_id.clone()).or_else(|| ctx.identity.key_id.clone()),
            "team_id": grant.and_then(|g| g.team_id()),
            "body": body,
        })
    }

    fn record(ctx: &mut RequestCtx, rule: &str, action: &'static str, position: &str) {
        ctx.slots
            .get_or_insert_default::<Verdicts>()
            .push(VerdictRecord {
                detector: NAME,
                rule: rule.to_string(),
                action,
                position: position.to_string(),
            });
    }

    fn refusal(rule: &str) -> ApiError {
        ApiError::ContentPolicy {
            detector: NAME,
            rule: rule.to_string(),
        }
    }

    /// The verdict, with the fail policy applied to a missing one.
    async fn ask(&self, document: Value) -> Decision {
        let Some(hook) = &self.hook else {
            return Decision::Allow;
        };
        match hook.ask(&document).await {
            Ok(decision) => decision,
            Err(err) => {
                tracing::warn!(module = NAME, error = %err, "no verdict from the guardrail webhook");
                match self.config.on_error {
                    OnError::Allow => Decision::Allow,
                    OnError::Block => Decision::Block {
                        rule: Some("webhook_unavailable".into()),
                    },
                }
            }
        }
    }
}

#[async_trait]
impl Module for GuardWebhook {
    fn name(&self) -> &'static str {
        NAME
    }

    fn hooks(&self) -> Hooks {
        Hooks::REQUEST | Hooks::RESPONSE | Hooks::STREAM_END
    }

    async fn on_request(&self, ctx: &mut RequestCtx) -> Result<Verdict, ModuleError> {
        if !self.config.input || !self.applies(ctx) {
            return Ok(Verdict::Continue);
        }
        let Some(body) = client_body(ctx) else {
            return Ok(Verdict::Continue);
        };
        let document = Self::document(ctx, "request", body);
        match self.ask(document).await {
            Decision::Allow => Ok(Verdict::Continue),
            Decision::Block { rule } => {
                let rule = rule.unwrap_or_else(|| "webhook".into());
                Self::record(ctx, &rule, "block", "input");
                Ok(Verdict::Reject(Self::refusal(&rule)))
            }
            Decision::Rewrite { body } => match apply_rewrite(ctx, body) {
                Ok(()) => {
                    Self::record(ctx, "webhook", "rewrite", "input");
                    Ok(Verdict::Continue)
                }
                Err(message) => Err(ModuleError::Failed {
                    module: NAME,
                    message,
                }),
            },
        }
    }

    async fn on_response(
        &self,
        ctx: &mut RequestCtx,
        answer: &mut Answer,
    ) -> Result<(), ModuleError> {
        if !self.config.output || !self.applies(ctx) {
            return Ok(());
        }
        let body = serde_json::from_slice::<Value>(&answer.body).unwrap_or(Value::Null);
        let document = Self::document(ctx, "response", body);
        match self.ask(document).await {
            Decision::Allow => Ok(()),
            Decision::Block { rule } => {
                let rule = rule.unwrap_or_else(|| "webhook".into());
                Self::record(ctx, &rule, "block", "output");
                Err(ModuleError::Refused(Self::refusal(&rule)))
            }
            Decision::Rewrite { body } => {
                Self::record(ctx, "webhook", "rewrite", "output");
                answer.body = bytes::Bytes::from(body.to_string());
                Ok(())
            }
        }
    }

    /// Watches streams only to collect their text for the end-of-stream call.
    fn stream_window(&self) -> Option<StreamWindow> {
        (self.config.output && self.hook.is_some()).then_some(StreamWindow::WATCH)
    }

    fn on_event(&self, ctx: &mut RequestCtx, event: &mut StreamEvent) -> StreamDecision {
        if !event.text().is_empty() {
            let text = ctx.slots.get_or_insert_default::<StreamText>();
            let room = self.config.max_stream_bytes.saturating_sub(text.0.len());
            let mut take = event.text().len().min(room);
            while !event.text().is_char_boundary(take) {
                take -= 1;
            }
            text.0.push_str(&event.text()[..take]);
        }
        StreamDecision::Pass
    }

    async fn on_stream_end(&self, ctx: &mut RequestCtx) -> Option<ApiError> {
        if !self.config.output || !self.applies(ctx) {
            return None;
        }
        let text = ctx.slots.remove::<StreamText>().unwrap_or_default().0;
        let document = Self::document(ctx, "stream_end", json!({ "text": text }));
        match self.ask(document).await {
            Decision::Allow => None,
            Decision::Block { rule } => {
                let rule = rule.unwrap_or_else(|| "webhook".into());
                Self::record(ctx, &rule, "block", "output:stream_end");
                Some(Self::refusal(&rule))
            }
            Decision::Rewrite { .. } => {
                // The text is already out; the rewrite is recorded, not applied.
                Self::record(ctx, "webhook", "flag", "output:stream_end");
                None
            }
        }
    }
}

/// The request as the client wrote it: its own JSON for the formats answered in their own shape,
/// else the parsed request re-encoded.
fn client_body(ctx: &RequestCtx) -> Option<Value> {
    if let Some(client) = &ctx.request.client_request {
        return Some(client.as_ref().clone());
    }
    let parsed = ctx.request.parsed.as_ref()?;
    let bytes = parsed.to_bytes().ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Puts the webhook's rewritten request (in the client's format) in place of the client's: the
/// bytes, the canonical form, and the client's own JSON a native call sends. The model stays what
/// routing already chose from, unless the rewrite names another.
fn apply_rewrite(ctx: &mut RequestCtx, body: Value) -> Result<(), String> {
    let bytes = bytes::Bytes::from(body.to_string());
    let endpoint = ctx.request.endpoint;
    let not_parsed = |e: crate::wire::openai::ParseError| {
        format!(
            "the webhook's rewritten request does not parse: {}",
            e.message
        )
    };
    let (parsed, refused) = if ctx.request.client_request.is_some() {
        Inbound::from_client_format(endpoint, &body).map_err(not_parsed)?
    } else {
        (Inbound::parse(endpoint, &bytes).map_err(not_parsed)?, None)
    };
    if parsed.is_stream() != ctx.request.stream {
        return Err("the webhook's rewritten request may not change `stream`".into());
    }
    if ctx.request.client_request.is_some() {
        ctx.request.native_only = refused.map(|refused| ApiError::InvalidField {
            param: refused.param,
            message: refused.message,
        });
        ctx.request.client_request = Some(Arc::new(body));
    }
    ctx.request.parsed = Some(parsed);
    ctx.request.body = bytes;
    // The webhook rewrote the prompt: a count made before is stale.
    crate::modules::estimate::forget(ctx);
    Ok(())
}
