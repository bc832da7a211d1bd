//! `request_limits`: bounds the request body size and the number of chat messages. The body limit
//! is declared through `max_body_bytes`, so the body is never read past it (413); the message
//! count is checked once the body is parsed (400).

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::registry::{ModuleConfig, ModuleSpec};
use super::{Hooks, Module, ModuleDeps, ModuleError, Verdict};
use crate::request::{ApiError, RequestCtx};

pub const SPEC: ModuleSpec = ModuleSpec {
    name: "request_limits",
    description: "refuses request bodies over max_body_bytes (413) and chats over max_messages (400)",
    order: 20,
    finish_order: 30,
    enabled_by_default: true,
    required: super::registry::never_required,
    default_config: RequestLimitsConfig::default_json,
    check: RequestLimitsConfig::check,
    build,
};

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RequestLimitsConfig {
    /// Largest request body accepted, in bytes. Default 10 MiB.
    pub max_body_bytes: usize,
    /// Most messages in one chat request. Default 2048.
    pub max_messages: usize,
}

impl Default for RequestLimitsConfig {
    fn default() -> Self {
        RequestLimitsConfig {
            max_body_bytes: 10 * 1024 * 1024,
            max_messages: 2048,
        }
    }
}

impl ModuleConfig for RequestLimitsConfig {
    fn validate(&self) -> Result<(), String> {
        if self.max_body_bytes == 0 || self.max_body_bytes > super::chain::HARD_BODY_LIMIT {
            return Err(format!(
                "max_body_bytes: must be 1..={} (got {})",
                super::chain::HARD_BODY_LIMIT,
                self.max_body_bytes
            ));
        }
        if self.max_messages == 0 {
            return Err("max_messages: must be at least 1".into());
        }
        Ok(())
    }
}

fn build(config: &serde_json::Value, _deps: &ModuleDeps) -> Result<Arc<dyn Module>, ModuleError> {
    let config = RequestLimitsConfig::parse(config).map_err(ModuleError::Config)?;
    Ok(Arc::new(RequestLimits { config }))
}

pub struct RequestLimits {
    config: RequestLimitsConfig,
}

#[async_trait]
impl Module for RequestLimits {
    fn name(&self) -> &'static str {
        "request_limits"
    }

    fn hooks(&self) -> Hooks {
        Hooks::REQUEST_NOW
    }

    fn max_body_bytes(&self) -> Option<usize> {
        Some(self.config.max_body_bytes)
    }

    fn on_request_now(&self, ctx: &mut RequestCtx) -> Result<Verdict, ModuleError> {
        let got = ctx.request.parsed.as_ref().map_or(0, |r| r.message_count());
        if got > self.config.max_messages {
            return Ok(Verdict::Reject(ApiError::TooManyMessages {
                limit: self.config.max_messages,
                got,
            }));
        }
        Ok(Verdict::Continue)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn config_errors_name_the_field() {
        let err = RequestLimitsConfig::parse(&json!({"max_body_bytes": 0}))
            .err()
            .unwrap_or_default();
        assert!(err.starts_with("max_body_bytes"), "{err}");
        let err = RequestLimitsConfig::parse(&json!({"max_mesages": 3}))
            .err()
            .unwrap_or_default();
        assert!(err.contains("max_mesages"), "{err}");
        let err = RequestLimitsConfig::parse(&json!({"max_messages": "lots"}))
            .err()
            .unwrap_or_default();
        assert!(err.starts_with("max_messages"), "{err}");
    }
}
