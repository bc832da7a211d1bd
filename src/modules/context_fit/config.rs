//! The `context_fit` module's config: what to do with a conversation over the model's window.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::modules::registry::ModuleConfig;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Drop the oldest turns after the system prompt, a tool call with its results as one.
    #[default]
    DropOldest,
    /// Cut the longest message's text until the conversation fits.
    TruncateLongest,
    /// Refuse with a 400 that names the window.
    Refuse,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ContextFitConfig {
    /// `drop_oldest` (default), `truncate_longest` or `refuse`.
    pub strategy: Strategy,
    /// Input windows in tokens by model name (as asked, after aliases: a model, an alias's
    /// target or a routing group), over the price table's `max_input_tokens`.
    pub context_windows: BTreeMap<String, u64>,
    /// Tokens kept free below the window (the tokenizer here may count a little differently
    /// from the provider's own). Default 0.
    pub reserve_tokens: u64,
}

impl ModuleConfig for ContextFitConfig {
    fn validate(&self) -> Result<(), String> {
        for (model, window) in &self.context_windows {
            if *window == 0 {
                return Err(format!("context_windows.{model}: must be at least 1"));
            }
            if self.reserve_tokens >= *window {
                return Err(format!(
                    "reserve_tokens: {} leaves nothing of context_windows.{model} ({window})",
                    self.reserve_tokens
                ));
            }
        }
        Ok(())
    }
}
