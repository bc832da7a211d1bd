//! Model name -> provider. Resolution order: a configured `[[models]]` name; a `provider/model`
//! name whose prefix is a configured provider; a bare name matching a provider's model prefixes
//! (`gpt-*` goes to `openai`). Anything else is an unknown model (404).

use std::sync::Arc;

use thiserror::Error;

use super::Provider;
use super::openai::OpenAi;
use crate::config::{ModelEntry, ProviderConfig, ProviderKind, provider_env_vars};

/// What the server logs at start-up when no provider is configured: without one every request
/// fails as an unknown model, and the usual cause is a key missing from the environment.
pub fn no_providers_warning() -> String {
    format!(
        "no providers configured, so every model is unknown; set one of {} or declare \
         [providers] in the config file",
        provider_env_vars().join(", ")
    )
}

#[derive(Clone)]
pub struct Route {
    pub provider: Arc<dyn Provider>,
    pub upstream_model: String,
}

#[derive(Debug, Error)]
pub enum ResolveError {
    #[error("unknown model {model:?}; configured: {configured}")]
    UnknownModel { model: String, configured: String },
}

pub struct ProviderRegistry {
    providers: Vec<Arc<dyn Provider>>,
    prefixes: Vec<(String, usize)>,
    models: Vec<ModelEntry>,
}

impl ProviderRegistry {
    pub fn new(
        configs: &[ProviderConfig],
        models: &[ModelEntry],
    ) -> Result<ProviderRegistry, String> {
        let mut providers: Vec<Arc<dyn Provider>> = Vec::new();
        let mut prefixes = Vec::new();
        for config in configs {
            let provider: Arc<dyn Provider> = match config.kind {
                ProviderKind::Anthropic => {
                    Arc::new(super::anthropic::adapter::Anthropic::new(config)?)
                }
                ProviderKind::Bedrock => Arc::new(super::bedrock::adapter::Bedrock::new(config)?),
                ProviderKind::Gemini | ProviderKind::Vertex => {
                    Arc::new(super::gemini::adapter::Gemini::new(config)?)
                }
                ProviderKind::OpenAi | ProviderKind::OpenAiCompatible => {
                    Arc::new(OpenAi::new(config)?)
                }
            };
            for prefix in &config.model_prefixes {
                prefixes.push((prefix.clone(), providers.len()));
            }
            providers.push(provider);
        }
        // Longest prefix first, so `gpt-4o-` can be routed apart from `gpt-`.
        prefixes.sort_by_key(|p| std::cmp::Reverse(p.0.len()));
        Ok(ProviderRegistry {
            providers,
            prefixes,
            models: models.to_vec(),
        })
    }

    pub fn providers(&self) -> &[Arc<dyn Provider>] {
        &self.providers
    }

    pub fn models(&self) -> &[ModelEntry] {
        &self.models
    }

    pub fn by_name(&self, name: &str) -> Option<&Arc<dyn Provider>> {
        self.providers.iter().find(|p| p.name() == name)
    }

    pub fn resolve(&self, model: &str) -> Result<Route, ResolveError> {
        if let Some(entry) = self.models.iter().find(|m| m.name == model)
            && let Some(provider) = self.by_name(&entry.provider)
        {
            return Ok(Route {
                provider: provider.clone(),
                upstream_model: entry.upstream_model.clone(),
            });
        }
        if let Some((prefix, rest)) = model.split_once('/')
            && let Some(provider) = self.by_name(prefix)
            && !rest.is_empty()
        {
            return Ok(Route {
                provider: provider.clone(),
                upstream_model: rest.to_string(),
            });
        }
        if let Some((_, index)) = self
            .prefixes
            .iter()
            .find(|(prefix, _)| model.starts_with(prefix.as_str()))
        {
            return Ok(Route {
                provider: self.providers[*index].clone(),
                upstream_model: model.to_string(),
            });
        }
        Err(ResolveError::UnknownModel {
            model: model.to_string(),
            configured: self.describe(),
        })
    }

    /// `fast, openai/*, gpt-*`: what a client may ask for, for error messages.
    fn describe(&self) -> String {
        let mut names: Vec<String> = self.models.iter().map(|m| m.name.clone()).collect();
        names.extend(self.providers.iter().map(|p| format!("{}/*", p.name())));
        names.extend(self.prefixes.iter().map(|(p, _)| format!("{p}*")));
        if names.is_empty() {
            "none (set OPENAI_API_KEY or declare [providers] in the config file)".to_string()
        } else {
            names.join(", ")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{RawConfig, load_from_str, validate};
    use crate::providers::openai::presets;

    #[test]
    fn the_no_providers_warning_names_every_preset_variable() {
        let warning = no_providers_warning();
        for var in ["OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY"] {
            assert!(warning.contains(var), "{var}: {warning}");
        }
        // Every OpenAI-compatible preset is named by a variable of its own (key or base URL).
        for p in presets::PRESETS.iter().chain([&presets::AZURE]) {
            let named = warning.contains(p.api_key_env)
                || p.base_url_env.is_some_and(|v| warning.contains(v));
            assert!(named, "{}: {warning}", p.name);
        }
    }

    fn registry(toml: &str) -> ProviderRegistry {
        let raw = load_from_str(toml).unwrap_or_else(|_| RawConfig::default());
        let env = |k: &str| (k == "OPENAI_API_KEY").then(|| "sk-x".to_string());
        let valid = validate(&raw, &env).unwrap_or_else(|e| panic!("{e}"));
        ProviderRegistry::new(&valid.providers, &valid.models).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn resolves_every_form_of_name() {
        let r = registry(
            "[providers.local]\nbase_url = \"http://127.0.0.1:1/v1\"\nmodel_prefixes = [\"llama-\"]\n\
             [[models]]\nname = \"fast\"\ntarget = \"local/llama-3.3-70b\"\n",
        );
        let check = |model: &str, provider: &str, upstream: &str| {
            let route = r.resolve(model).unwrap_or_else(|e| panic!("{model}: {e}"));
            assert_eq!(
                (route.provider.name(), route.upstream_model.as_str()),
                (provider, upstream)
            );
        };
        check("fast", "local", "llama-3.3-70b");
        check("local/qwen3", "local", "qwen3");
        check("openai/gpt-4o-mini", "openai", "gpt-4o-mini");
        check("gpt-4o-mini", "openai", "gpt-4o-mini");
        check("o3-mini", "openai", "o3-mini");
        check("text-embedding-3-small", "openai", "text-embedding-3-small");
        check("llama-3", "local", "llama-3");
        let err = r
            .resolve("claude-9")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains("unknown model \"claude-9\"") && err.contains("fast"),
            "{err}"
        );
    }
}
