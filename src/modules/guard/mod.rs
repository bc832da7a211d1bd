//! What the guardrail modules share. Each detector family (`guard_pii`, `guard_secrets`,
//! `guard_injection`, `guard_policy`) is its own module folder with its own scanner; this folder
//! holds the module they all are, [`Guard`], generic over the family: scope, actions (block,
//! redact with restore, flag), verdicts for the trace, and the stream look-behind.
//!
//! On a stream, each event's text joins a tail of what this module still holds; the tail is
//! scanned whole, so a secret split across two chunks is seen as one, and then everything except
//! what may still grow into a match (the family's [`Scanner::pending_tail`]) is released at once
//! (`StreamDecision::ReleaseBut`), so the time to first token barely moves.

mod config;
pub mod gate;
pub mod judge;
mod redact;
mod scan;
mod stream;
mod texts;
mod verdicts;

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;

pub use config::{Action, Family, GuardConfig, Scope};
pub use redact::Placeholders;
pub use scan::{Finding, Scanner, tail_after};
pub use texts::{each_text, each_text_mut};
pub use verdicts::{VerdictRecord, Verdicts};

use super::registry::ModuleConfig;
use super::{
    Answer, Hooks, Module, ModuleDeps, ModuleError, StreamDecision, StreamEvent, StreamWindow,
    Verdict,
};
use crate::request::internal::ModelCalls;
use crate::request::{ApiError, RequestCtx};
use crate::wire::openai::Inbound;

/// Builds the guardrail module of family `F` from its config (a registry `build` function).
pub fn build<F: Family>(config: &Value, deps: &ModuleDeps) -> Result<Arc<dyn Module>, ModuleError> {
    let config = GuardConfig::<F>::parse(config).map_err(ModuleError::Config)?;
    let scanner = F::scanner(&config.detector).map_err(ModuleError::Config)?;
    Ok(Arc::new(Guard::<F> {
        config,
        scanner,
        models: Some(deps.models.clone()),
    }))
}

pub struct Guard<F: Family> {
    config: GuardConfig<F>,
    scanner: F::Scanner,
    /// For a judge model, when the family has one.
    models: Option<Arc<dyn ModelCalls>>,
}

impl<F: Family> Guard<F> {
    /// A guardrail with no model calls (a judge, if configured, is skipped): for tests and the
    /// benchmark.
    pub fn new(config: GuardConfig<F>) -> Result<Guard<F>, String> {
        let scanner = F::scanner(&config.detector)?;
        Ok(Guard {
            config,
            scanner,
            models: None,
        })
    }

    pub fn scanner(&self) -> &F::Scanner {
        &self.scanner
    }

    /// Whether this request is one this guardrail watches. A model call a module made itself
    /// (a judge) is left alone: its text is the client's, already scanned.
    fn applies(&self, ctx: &RequestCtx) -> bool {
        ctx.identity.internal.is_none() && self.config.scope.covers(ctx)
    }

    fn record(&self, ctx: &mut RequestCtx, finding: &Finding, position: String) {
        ctx.slots
            .get_or_insert_default::<Verdicts>()
            .push(VerdictRecord {
                detector: F::NAME,
                rule: finding.rule.to_string(),
                action: self.config.action.as_str(),
                position,
            });
    }

    fn refusal(&self, finding: &Finding) -> ApiError {
        ApiError::ContentPolicy {
            detector: F::NAME,
            rule: finding.rule.to_string(),
        }
    }

    /// Scans every text of the request's messages; returns the findings with their positions.
    fn scan_request(&self, ctx: &RequestCtx) -> Vec<(Finding, String)> {
        let mut found = Vec::new();
        let Some(Inbound::Chat(chat)) = &ctx.request.parsed else {
            return found;
        };
        let mut buf = Vec::new();
        let mut path = String::new();
        for (i, message) in chat.messages.iter().enumerate() {
            let mut visit = |text: &str, at: &str| {
                buf.clear();
                self.scanner.scan(text, &mut buf);
                for finding in buf.drain(..) {
                    let position = format!("input:messages[{i}].{at}@{}", finding.start);
                    found.push((finding, position));
                }
            };
            if let Some(content) = &message.content {
                path.clear();
                path.push_str("content");
                each_text(content, &mut path, &mut visit);
            }
            for (key, value) in &message.rest {
                path.clear();
                path.push_str(key);
                each_text(value, &mut path, &mut visit);
            }
        }
        found
    }

    /// Replaces every match in the request, canonical and as the client wrote it, with its
    /// placeholder; the body the provider gets is re-encoded from the redacted request.
    fn redact_request(&self, ctx: &mut RequestCtx) -> Result<(), ModuleError> {
        let mut map = ctx.slots.remove::<Placeholders>().unwrap_or_default();
        let mut buf = Vec::new();
        let mut redact = |text: &str| {
            buf.clear();
            self.scanner.scan(text, &mut buf);
            (!buf.is_empty()).then(|| map.redact(text, &mut buf))
        };
        if let Some(Inbound::Chat(chat)) = ctx.request.parsed.as_mut() {
            for message in &mut chat.messages {
                if let Some(content) = message.content.as_mut() {
                    each_text_mut(content, &mut redact);
                }
                for value in message.rest.values_mut() {
                    each_text_mut(value, &mut redact);
                }
            }
        }
        if let Some(client) = ctx.request.client_request.as_mut() {
            let client = Arc::make_mut(client);
            if let Some(map) = client.as_object_mut() {
                for (key, value) in map.iter_mut() {
                    if key != "model" {
                        each_text_mut(value, &mut redact);
                    }
                }
            }
        }
        if let Some(parsed) = &ctx.request.parsed {
            ctx.request.body = parsed.to_bytes().map_err(|e| ModuleError::Failed {
                module: F::NAME,
                message: format!("cannot encode the redacted request: {e}"),
            })?;
        }
        ctx.slots.insert(map);
        // Placeholders replaced text: a prompt count made before no longer matches the prompt.
        crate::modules::estimate::forget(ctx);
        Ok(())
    }
}

/// The most a guardrail holds back of a stream: generous enough for a private key block, small
/// enough that a stream never waits long on it.
const STREAM_WINDOW: StreamWindow = StreamWindow {
    max_events: 4096,
    max_bytes: 256 * 1024,
};

/// An answer's body parsed by the first guardrail that read it, with the bytes it came from, so
/// that the next ones need not parse it again; one that rewrites the body leaves the new one.
#[derive(Clone)]
struct ParsedAnswer {
    bytes: bytes::Bytes,
    value: Value,
}

#[async_trait]
impl<F: Family> Module for Guard<F> {
    fn name(&self) -> &'static str {
        F::NAME
    }

    fn hooks(&self) -> Hooks {
        Hooks::REQUEST | Hooks::RESPONSE_NOW
    }

    async fn on_request(&self, ctx: &mut RequestCtx) -> Result<Verdict, ModuleError> {
        if !self.applies(ctx) {
            return Ok(Verdict::Continue);
        }
        // A moderation request is judged, never blocked: what matched goes to the answer.
        if ctx.request.endpoint == crate::wire::openai::Endpoint::Moderations {
            let mut buf = Vec::new();
            let mut scan = ctx
                .slots
                .remove::<super::moderations::ModerationScan>()
                .unwrap_or_default();
            scan.detectors.push(F::NAME);
            for (i, text) in super::moderations::inputs(ctx).iter().enumerate() {
                buf.clear();
                self.scanner.scan(text, &mut buf);
                for finding in buf.drain(..) {
                    scan.matches.push((i, F::NAME, finding.rule.to_string()));
                }
            }
            ctx.slots.insert(scan);
            return Ok(Verdict::Continue);
        }
        // Request-wide rules (models, sizes) refuse whatever the action: there is nothing to
        // redact in a model name.
        if let Some(finding) = self.scanner.check_request(ctx) {
            self.record(ctx, &finding, "input".into());
            return Ok(Verdict::Reject(self.refusal(&finding)));
        }
        if !self.config.input {
            return Ok(Verdict::Continue);
        }
        let mut found = self.scan_request(ctx);
        // The call is built first: the context cannot be held across the await.
        let judge_call = match (found.is_empty(), self.scanner.judge()) {
            (true, Some(judge)) => judge.call_for(ctx, F::NAME),
            _ => None,
        };
        if let (Some(call), Some(models)) = (judge_call, &self.models)
            && let Some(finding) = judge::Judge::ask(models.as_ref(), call).await
        {
            found.push((finding, "input".into()));
        }
        let Some((first, _)) = found.first() else {
            return Ok(Verdict::Continue);
        };
        let first = first.clone();
        for (finding, position) in &found {
            self.record(ctx, finding, position.clone());
        }
        match self.config.action {
            Action::Block => Ok(Verdict::Reject(self.refusal(&first))),
            Action::Flag => Ok(Verdict::Continue),
            Action::Redact => {
                self.redact_request(ctx)?;
                Ok(Verdict::Continue)
            }
        }
    }

    fn on_response_now(
        &self,
        ctx: &mut RequestCtx,
        answer: &mut Answer,
    ) -> Result<(), ModuleError> {
        let restore = self.config.restore
            && ctx
                .slots
                .get::<Placeholders>()
                .is_some_and(|map| !map.is_empty());
        if !(self.config.output || restore) || !self.applies(ctx) {
            return Ok(());
        }
        // Parsed once for every guardrail on the chain, unless one of them rewrote the body.
        let parsed = ctx
            .slots
            .remove::<ParsedAnswer>()
            .filter(|p| p.bytes == answer.body);
        let mut body = match parsed {
            Some(parsed) => parsed.value,
            None => match serde_json::from_slice::<Value>(&answer.body) {
                Ok(value) => value,
                Err(_) => return Ok(()),
            },
        };
        let mut found = Vec::new();
        let mut completion_bytes = 0;
        if self.config.output {
            let mut path = String::new();
            let mut buf = Vec::new();
            each_text(&body, &mut path, &mut |text, at| {
                completion_bytes += text.len();
                buf.clear();
                self.scanner.scan(text, &mut buf);
                for finding in buf.drain(..) {
                    let position = format!("output:{at}@{}", finding.start);
                    found.push((finding, position));
                }
            });
        }
        if let Some(limit) = self.scanner.max_output_tokens()
            && stream::estimated_tokens(completion_bytes) > limit
        {
            let finding = Finding::new("max_output_tokens", "LIMIT", 0, 0);
            self.record(ctx, &finding, "output".into());
            return Err(ModuleError::Refused(self.refusal(&finding)));
        }
        for (finding, position) in &found {
            self.record(ctx, finding, position.clone());
        }
        if let Some((first, _)) = found.first()
            && self.config.action == Action::Block
        {
            return Err(ModuleError::Refused(self.refusal(first)));
        }
        let redact = !found.is_empty() && self.config.action == Action::Redact;
        if !redact && !restore {
            ctx.slots.insert(ParsedAnswer {
                bytes: answer.body.clone(),
                value: body,
            });
            return Ok(());
        }
        let mut map = ctx.slots.remove::<Placeholders>().unwrap_or_default();
        let mut buf = Vec::new();
        each_text_mut(&mut body, &mut |text| {
            // Scan the provider's own text first, so restored values are not redacted again.
            let redacted = if redact {
                buf.clear();
                self.scanner.scan(text, &mut buf);
                (!buf.is_empty()).then(|| map.redact(text, &mut buf))
            } else {
                None
            };
            let current = redacted.as_deref().unwrap_or(text);
            match restore.then(|| map.restore(current)).flatten() {
                Some(restored) => Some(restored),
                None => redacted,
            }
        });
        ctx.slots.insert(map);
        answer.body =
            serde_json::to_vec(&body)
                .map(Into::into)
                .map_err(|e| ModuleError::Failed {
                    module: F::NAME,
                    message: format!("cannot encode the answer: {e}"),
                })?;
        ctx.slots.insert(ParsedAnswer {
            bytes: answer.body.clone(),
            value: body,
        });
        Ok(())
    }

    fn stream_window(&self) -> Option<StreamWindow> {
        (self.config.output || self.config.restore).then_some(STREAM_WINDOW)
    }

    fn on_event(&self, ctx: &mut RequestCtx, event: &mut StreamEvent) -> StreamDecision {
        stream::on_event(self, ctx, event)
    }
}
