//! `guard_secrets`: credentials in prompts and answers: provider API keys (OpenAI, Anthropic,
//! Google, AWS, GitHub, Slack, Stripe), private key blocks, JWTs and generic high-entropy tokens.
//! Blocks by default: a key that reached a provider's logs must be rotated, whatever comes next.

mod detect;

use serde::{Deserialize, Serialize};

use super::guard::{Action, Family, GuardConfig};
use super::registry::{ModuleConfig, ModuleSpec};

pub use detect::SecretsScanner;

pub const SPEC: ModuleSpec = ModuleSpec {
    name: "guard_secrets",
    description: "finds API keys, private keys, JWTs and high-entropy tokens in prompts and answers, streamed too; blocks, redacts or flags",
    order: 44,
    finish_order: 44,
    enabled_by_default: false,
    required: super::registry::never_required,
    default_config: GuardConfig::<Secrets>::default_json,
    check: GuardConfig::<Secrets>::check,
    build: super::guard::build::<Secrets>,
};

pub struct Secrets;

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecretsConfig {
    /// Flag tokens of no known format whose Shannon entropy (bits per character) reaches
    /// `entropy_threshold`.
    pub generic_tokens: bool,
    /// Bits per character; random base64 is near 6, English words near 3, hex at most 4.
    pub entropy_threshold: f64,
    /// Shortest generic token considered, in characters.
    pub min_token_chars: usize,
}

impl Default for SecretsConfig {
    fn default() -> Self {
        SecretsConfig {
            generic_tokens: true,
            entropy_threshold: 4.3,
            min_token_chars: 32,
        }
    }
}

impl Family for Secrets {
    type Config = SecretsConfig;
    type Scanner = SecretsScanner;
    const NAME: &'static str = "guard_secrets";
    const DEFAULT_ACTION: Action = Action::Block;
    const DEFAULT_OUTPUT: bool = true;

    fn validate(config: &SecretsConfig) -> Result<(), String> {
        if !(1.0..=8.0).contains(&config.entropy_threshold) {
            return Err(format!(
                "entropy_threshold: must be 1.0..=8.0 (got {})",
                config.entropy_threshold
            ));
        }
        if config.min_token_chars < 16 {
            return Err(format!(
                "min_token_chars: must be at least 16 (got {})",
                config.min_token_chars
            ));
        }
        Ok(())
    }

    fn scanner(config: &SecretsConfig) -> Result<SecretsScanner, String> {
        SecretsScanner::new(config)
    }
}
