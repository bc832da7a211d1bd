//! `guard_webhook`: an external guardrail. The request (before the upstream call) and the answer
//! (a complete one, or a streamed one's whole text at its end) go to an HTTP webhook, which
//! answers allow, block or a rewritten body. The webhook has `timeout_ms` to answer; without a
//! verdict the request goes on (`on_error = "allow"`) or is refused (`"block"`).
//!
//! A streamed answer is judged once it ended: its text is already out, so a block there replaces
//! the stream's clean ending with an error event (the client's SDK raises it), and a rewrite
//! cannot apply (it is recorded). A rewrite of the request applies to OpenAI chat clients only;
//! for other formats it is refused, since the client's own body would still go to a provider
//! that speaks it.

mod call;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::guard::{Scope, VerdictRecord, Verdicts};
use super::registry::{ModuleConfig, ModuleSpec};
use super::{
    Answer, Module, ModuleDeps, ModuleError, StreamDecision, StreamEvent, StreamWindow, Verdict,
};
use crate::request::{ApiError, RequestCtx};
use crate::wire::openai::{Endpoint, Inbound};
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

    async fn on_request(&self, ctx: &mut RequestCtx) -> Result<Verdict, ModuleError> {
        if !self.config.input || !self.applies(ctx) {
            return Ok(Verdict::Continue);
        }
        let body = match &ctx.request.parsed {
            Some(Inbound::Chat(chat)) => serde_json::to_value(chat).unwrap_or(Value::Null),
            _ => return Ok(Verdict::Continue),
        };
        let document = Self::document(ctx, "request", body);
        match self.ask(document).await {
            Decision::Allow => Ok(Verdict::Continue),
            Decision::Block { rule } => {
                let rule = rule.unwrap_or_else(|| "webhook".into());
                Self::record(ctx, &rule, "block", "input");
                Ok(Verdict::Reject(Self::refusal(&rule)))
            }
            Decision::Rewrite { body } => {
                if ctx.request.endpoint != Endpoint::ChatCompletions {
                    Self::record(ctx, "rewrite_unsupported", "block", "input");
                    return Ok(Verdict::Reject(Self::refusal("rewrite_unsupported")));
                }
                let bytes = bytes::Bytes::from(body.to_string());
                match Inbound::parse(Endpoint::ChatCompletions, &bytes) {
                    Ok(parsed) => {
                        Self::record(ctx, "webhook", "rewrite", "input");
                        ctx.request.parsed = Some(parsed);
                        ctx.request.body = bytes;
                        Ok(Verdict::Continue)
                    }
                    Err(e) => Err(ModuleError::Failed {
                        module: NAME,
                        message: format!("the webhook's rewritten request does not parse: {e}"),
                    }),
                }
            }
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
