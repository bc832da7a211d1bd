//! The `fan_out` module's config: names a client may ask for, each sent to several models.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::modules::registry::ModuleConfig;

/// The most models one fan-out calls.
pub const MAX_MODELS: usize = 8;

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct FanOutConfig {
    /// By the model name a client asks for (`best-of-3`): the models it goes to.
    pub groups: BTreeMap<String, FanOutGroup>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// The first successful answer (the other calls still finish, traced and priced).
    #[default]
    First,
    /// Every successful answer, as `choices` (Chat Completions clients only).
    All,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FanOutGroup {
    /// 2 to 8 models (or aliases, or routing groups), called at once.
    pub models: Vec<String>,
    /// `first` (default) or `all`.
    #[serde(default)]
    pub mode: Mode,
}

impl ModuleConfig for FanOutConfig {
    fn validate(&self) -> Result<(), String> {
        for (name, group) in &self.groups {
            if name.trim().is_empty() {
                return Err("groups: a group's name must not be empty".into());
            }
            if !(2..=MAX_MODELS).contains(&group.models.len()) {
                return Err(format!(
                    "groups.{name}.models: give 2..={MAX_MODELS} models (got {})",
                    group.models.len()
                ));
            }
            if let Some(i) = group.models.iter().position(|m| m.trim().is_empty()) {
                return Err(format!("groups.{name}.models[{i}]: must not be empty"));
            }
            if let Some(i) = group
                .models
                .iter()
                .position(|m| self.groups.contains_key(m))
            {
                return Err(format!(
                    "groups.{name}.models[{i}]: {:?} is a fan-out group itself; fan-outs do not nest",
                    group.models[i]
                ));
            }
        }
        Ok(())
    }
}
