//! The typed config of `session_limits`.

use serde::{Deserialize, Serialize};

use super::super::registry::ModuleConfig;

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionLimitsConfig {
    /// The request header naming the session. Default `x-stockyard-session`.
    pub header: String,
    /// The field of the request's `metadata` object naming the session, when the header is
    /// absent. Default `session_id`.
    pub metadata_field: String,
    /// The window the limits count over, in milliseconds. Default 3600000 (an hour).
    pub window_ms: u64,
    /// Requests per session per window. Unset: no limit.
    pub max_requests: Option<u64>,
    /// Tokens (prompt + completion) per session per window. Unset: no limit.
    pub max_tokens: Option<u64>,
    /// Cost per session per window, in nano-dollars. Unset: no limit.
    pub max_cost_nanos: Option<i64>,
}

impl Default for SessionLimitsConfig {
    fn default() -> Self {
        SessionLimitsConfig {
            header: "x-stockyard-session".into(),
            metadata_field: "session_id".into(),
            window_ms: 3_600_000,
            max_requests: None,
            max_tokens: None,
            max_cost_nanos: None,
        }
    }
}

impl ModuleConfig for SessionLimitsConfig {
    fn validate(&self) -> Result<(), String> {
        if hyper::header::HeaderName::from_bytes(self.header.as_bytes()).is_err() {
            return Err(format!(
                "header: {:?} is not a valid header name",
                self.header
            ));
        }
        if self.metadata_field.is_empty() {
            return Err("metadata_field: must not be empty".into());
        }
        if self.window_ms < 1000 || self.window_ms > 31 * 86_400_000 {
            return Err(format!(
                "window_ms: must be 1000..=2678400000 (got {})",
                self.window_ms
            ));
        }
        if self.max_requests == Some(0) {
            return Err("max_requests: must be at least 1; leave it unset for no limit".into());
        }
        if self.max_tokens == Some(0) {
            return Err("max_tokens: must be at least 1; leave it unset for no limit".into());
        }
        if self.max_cost_nanos.is_some_and(|c| c <= 0) {
            return Err("max_cost_nanos: must be positive; leave it unset for no limit".into());
        }
        Ok(())
    }
}
