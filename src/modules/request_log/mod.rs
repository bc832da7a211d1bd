//! `request_log`: keeps the bodies of a request and its answer with its trace row, redacted
//! before they are stored (personal data and secrets, with the guardrails' detectors), for the
//! keys that opted in: those listed in `keys`, or whose metadata sets `request_log = "on"`, or
//! every request with `capture = "all"`. Each body is cut at `max_body_capture_bytes`.
//!
//! It collects the answer as it goes out (the complete body, or the stream's events) and, when
//! the request finishes, leaves the redacted bodies in the context ([`LoggedBodies`]) for `trace`,
//! which finishes after it and writes them with the row. Redaction runs in `on_finish`, after the
//! client has its answer (a stream) or just before (a complete answer, as every finish does).

pub mod capture;
mod redact;

use std::sync::Arc;

use async_trait::async_trait;
use bytes::BytesMut;
use serde::{Deserialize, Serialize};

use self::redact::Redactor;
use super::registry::{ModuleConfig, ModuleSpec};
use super::{
    Answer, Hooks, Module, ModuleDeps, ModuleError, Outcome, StreamDecision, StreamEvent,
    StreamWindow,
};
use crate::request::RequestCtx;

pub const SPEC: ModuleSpec = ModuleSpec {
    name: "request_log",
    description: "stores request and answer bodies with the trace, redacted (personal data, secrets), for opted-in keys",
    // Just before `trace` (90): it sees the answer as it goes out.
    order: 89,
    // Before `trace` (90), which writes what it leaves.
    finish_order: 88,
    enabled_by_default: false,
    required: super::registry::never_required,
    default_config: RequestLogConfig::default_json,
    check: RequestLogConfig::check,
    build,
};

#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Capture {
    /// Only keys listed in `keys` or whose metadata has `request_log` set to `on` or `true`.
    #[default]
    OptedIn,
    /// Every request, with or without a key.
    All,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RequestLogConfig {
    pub capture: Capture,
    /// Key ids whose requests are logged (with `capture = "opted_in"`).
    pub keys: Vec<String>,
    /// The key metadata field that opts a key in (`on` or `true`). Default `request_log`.
    pub metadata_field: String,
    /// Longest body kept, in bytes; the rest is cut. Default 16384.
    pub max_body_capture_bytes: usize,
    /// Replace personal data (e-mail, phone, card, IBAN, SSN, IP) with placeholders. Default on.
    pub redact_pii: bool,
    /// Replace secrets (API keys, tokens, private keys) with placeholders. Default on.
    pub redact_secrets: bool,
}

impl Default for RequestLogConfig {
    fn default() -> Self {
        RequestLogConfig {
            capture: Capture::OptedIn,
            keys: Vec::new(),
            metadata_field: "request_log".into(),
            max_body_capture_bytes: 16 * 1024,
            redact_pii: true,
            redact_secrets: true,
        }
    }
}

impl ModuleConfig for RequestLogConfig {
    fn validate(&self) -> Result<(), String> {
        if self.max_body_capture_bytes == 0 || self.max_body_capture_bytes > 16 * 1024 * 1024 {
            return Err(format!(
                "max_body_capture_bytes: must be 1..=16777216 (got {})",
                self.max_body_capture_bytes
            ));
        }
        if self.metadata_field.is_empty() {
            return Err("metadata_field: must not be empty".into());
        }
        if let Some(i) = self.keys.iter().position(String::is_empty) {
            return Err(format!("keys[{i}]: must not be empty"));
        }
        Ok(())
    }
}

fn build(config: &serde_json::Value, _deps: &ModuleDeps) -> Result<Arc<dyn Module>, ModuleError> {
    let config = RequestLogConfig::parse(config).map_err(ModuleError::Config)?;
    let redactor =
        Redactor::new(config.redact_pii, config.redact_secrets).map_err(ModuleError::Config)?;
    Ok(Arc::new(RequestLog { config, redactor }))
}

pub struct RequestLog {
    config: RequestLogConfig,
    redactor: Redactor,
}

/// The bodies `trace` stores with the row, already redacted.
#[derive(Clone, Debug, Default)]
pub struct LoggedBodies {
    pub request: Option<String>,
    pub response: Option<String>,
}

/// The answer collected so far, for a request being logged (this module's slot): its bytes, and
/// for a stream the answer's text joined across events, to catch a value split between two.
#[derive(Clone, Default)]
struct Collecting {
    bytes: BytesMut,
    text: String,
}

impl RequestLog {
    fn opted_in(&self, ctx: &RequestCtx) -> bool {
        if self.config.capture == Capture::All {
            return true;
        }
        let grant = ctx.identity.grant.as_deref();
        let key = grant
            .map(|g| g.key_id.as_str())
            .or(ctx.identity.key_id.as_deref());
        if key.is_some_and(|k| self.config.keys.iter().any(|x| x == k)) {
            return true;
        }
        grant
            .and_then(|g| g.metadata.get(&self.config.metadata_field))
            .is_some_and(|v| matches!(v.as_str(), "on" | "true" | "yes" | "1"))
    }

    fn collect(&self, ctx: &mut RequestCtx, bytes: &[u8], text: &str) {
        if let Some(collecting) = ctx.slots.get_mut::<Collecting>() {
            let cap = self.config.max_body_capture_bytes;
            capture::append(&mut collecting.bytes, cap, bytes);
            if collecting.text.len() < cap {
                collecting.text.push_str(text);
            }
        }
    }
}

#[async_trait]
impl Module for RequestLog {
    fn name(&self) -> &'static str {
        "request_log"
    }

    fn hooks(&self) -> Hooks {
        Hooks::REQUEST_NOW | Hooks::RESPONSE_NOW | Hooks::FINISH_NOW
    }

    fn fail_policy(&self) -> super::FailPolicy {
        super::FailPolicy::Open
    }

    fn on_request_now(&self, ctx: &mut RequestCtx) -> Result<super::Verdict, ModuleError> {
        if self.opted_in(ctx) {
            ctx.slots.insert(Collecting::default());
        }
        Ok(super::Verdict::Continue)
    }

    fn on_response_now(
        &self,
        ctx: &mut RequestCtx,
        answer: &mut Answer,
    ) -> Result<(), ModuleError> {
        self.collect(ctx, &answer.body, "");
        Ok(())
    }

    fn stream_window(&self) -> Option<StreamWindow> {
        Some(StreamWindow::WATCH)
    }

    fn on_event(&self, ctx: &mut RequestCtx, event: &mut StreamEvent) -> StreamDecision {
        self.collect(ctx, event.raw(), event.text());
        StreamDecision::Pass
    }

    fn on_finish_now(&self, ctx: &mut RequestCtx, _outcome: Outcome) {
        let Some(collected) = ctx.slots.remove::<Collecting>() else {
            return;
        };
        let cap = self.config.max_body_capture_bytes;
        let request = self.redactor.body(capture::cut(&ctx.request.body, cap));
        let response = (!collected.bytes.is_empty()).then(|| {
            let bytes = String::from_utf8_lossy(&collected.bytes).into_owned();
            match ctx.request.stream {
                true => self.redactor.stream(bytes, &collected.text),
                false => self.redactor.body(bytes),
            }
        });
        ctx.slots.insert(LoggedBodies {
            request: Some(request),
            response,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn config_errors_name_the_field() {
        for (config, field) in [
            (
                json!({"max_body_capture_bytes": 0}),
                "max_body_capture_bytes",
            ),
            (json!({"capture": "some"}), "capture"),
            (json!({"keys": ["a", ""]}), "keys[1]"),
            (json!({"redact": true}), "redact"),
        ] {
            let err = RequestLogConfig::check(&config).err().unwrap_or_default();
            assert!(err.contains(field), "{field}: {err}");
        }
    }
}
