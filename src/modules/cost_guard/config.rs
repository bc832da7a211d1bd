//! The typed config of `cost_guard`: ceilings in nano-dollars, overall and per model.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::super::registry::ModuleConfig;

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct CostGuardConfig {
    /// The most one request may be estimated to cost before it is sent, in nano-dollars (the
    /// prompt counted with the model's tokenizer, plus the output it allows). Unset: no ceiling.
    pub max_request_nanos: Option<i64>,
    /// The most a stream may cost as it runs, in nano-dollars; past it the stream is cut with an
    /// error event. Unset: no ceiling.
    pub max_stream_nanos: Option<i64>,
    /// Output tokens counted for a request that sets no `max_tokens`. Default 4096.
    pub default_max_tokens: u64,
    /// Ceilings for one model (by the name clients ask for), in place of the ones above.
    pub models: BTreeMap<String, Ceilings>,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Ceilings {
    pub max_request_nanos: Option<i64>,
    pub max_stream_nanos: Option<i64>,
}

impl Default for CostGuardConfig {
    fn default() -> Self {
        CostGuardConfig {
            max_request_nanos: None,
            max_stream_nanos: None,
            default_max_tokens: 4096,
            models: BTreeMap::new(),
        }
    }
}

fn positive(field: &str, value: Option<i64>) -> Result<(), String> {
    match value {
        Some(v) if v <= 0 => Err(format!(
            "{field}: must be a positive number of nano-dollars (got {v}); leave it unset for no ceiling"
        )),
        _ => Ok(()),
    }
}

impl ModuleConfig for CostGuardConfig {
    fn validate(&self) -> Result<(), String> {
        positive("max_request_nanos", self.max_request_nanos)?;
        positive("max_stream_nanos", self.max_stream_nanos)?;
        if self.default_max_tokens == 0 || self.default_max_tokens > 10_000_000 {
            return Err(format!(
                "default_max_tokens: must be 1..=10000000 (got {})",
                self.default_max_tokens
            ));
        }
        for (model, c) in &self.models {
            positive(
                &format!("models.{model}.max_request_nanos"),
                c.max_request_nanos,
            )?;
            positive(
                &format!("models.{model}.max_stream_nanos"),
                c.max_stream_nanos,
            )?;
        }
        Ok(())
    }
}
