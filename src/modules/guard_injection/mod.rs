//! `guard_injection`: prompt injection and jailbreak attempts, scored. Phrases that override
//! instructions, role-play that removes limits, requests for the hidden prompt and encoded
//! payloads each add to a score; at `threshold` the request is refused. A judge model, called
//! internally through routing, may be asked when the score stays below. Input only by default.

mod detect;

use serde::{Deserialize, Serialize};

use super::guard::judge::Judge;
use super::guard::{Action, Family, GuardConfig};
use super::registry::{ModuleConfig, ModuleSpec};

pub use detect::InjectionScanner;

pub const SPEC: ModuleSpec = ModuleSpec {
    name: "guard_injection",
    description: "scores prompts for injection and jailbreak attempts (phrases, role-play, encoded payloads), optionally asks a judge model; blocks or flags",
    order: 42,
    finish_order: 42,
    enabled_by_default: false,
    required: super::registry::never_required,
    default_config: GuardConfig::<Injection>::default_json,
    check: GuardConfig::<Injection>::check,
    build: super::guard::build::<Injection>,
};

pub struct Injection;

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct InjectionConfig {
    /// Score at which a text counts as an attack; one strong signal scores 1.0.
    pub threshold: f64,
    /// A model to ask when the score stays below the threshold; none by default.
    pub judge: Option<Judge>,
}

impl Default for InjectionConfig {
    fn default() -> Self {
        InjectionConfig {
            threshold: 1.0,
            judge: None,
        }
    }
}

impl Family for Injection {
    type Config = InjectionConfig;
    type Scanner = InjectionScanner;
    const NAME: &'static str = "guard_injection";
    const DEFAULT_ACTION: Action = Action::Block;
    const DEFAULT_OUTPUT: bool = false;

    fn validate(config: &InjectionConfig) -> Result<(), String> {
        if !(config.threshold > 0.0 && config.threshold <= 10.0) {
            return Err(format!(
                "threshold: must be above 0 and at most 10 (got {})",
                config.threshold
            ));
        }
        Ok(())
    }

    fn scanner(config: &InjectionConfig) -> Result<InjectionScanner, String> {
        InjectionScanner::new(config)
    }
}
