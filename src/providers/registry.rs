//! Model name -> provider. Resolution order: a configured `[[models]]` name; a `provider/model`
//! name whose prefix is a configured provider (or one that stored credentials define); a bare
//! name matching a provider's model prefixes (`gpt-*` goes to `openai`). Anything else is an
//! unknown model (404).
//!
//! Stored credentials (`stockyard providers add`) change the registry at run time, prepared then
//! installed like every admin change: they join the key pool of the configured provider of their
//! name, or define a provider of their own (kind and base URL from the record), kept in a list
//! swapped whole. A provider whose last stored key is removed leaves that list, and its pool
//! refuses requests that still hold it (a route cached before the removal).

use std::sync::Arc;

use arc_swap::ArcSwap;
use thiserror::Error;

use super::Provider;
use super::key_pool::{KeyPool, PoolKey};
use super::openai::OpenAi;
use crate::config::{
    ModelEntry, ProviderConfig, ProviderKind, provider_config_for, provider_env_vars,
};
use crate::secret::Secret;

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
    /// Providers that only stored credentials define; swapped whole by admin changes.
    stored: ArcSwap<Vec<Arc<dyn Provider>>>,
}

/// A stored credential, opened: what the registry builds pools from. Only in memory.
#[derive(Clone, Debug)]
pub struct OpenedCredential {
    pub id: String,
    pub provider: String,
    pub kind: ProviderKind,
    pub base_url: Option<String>,
    pub key: Secret<String>,
}

/// Everything a set of stored credentials changes, built and checked; [`ProviderRegistry::install`]
/// swaps it in and cannot fail.
pub struct PreparedKeys {
    pools: Vec<(Arc<KeyPool>, Vec<Arc<PoolKey>>, bool)>,
    stored: Vec<Arc<dyn Provider>>,
}

/// Builds the adapter for `config`.
fn build(config: &ProviderConfig) -> Result<Arc<dyn Provider>, String> {
    Ok(match config.kind {
        ProviderKind::Anthropic => Arc::new(super::anthropic::adapter::Anthropic::new(config)?),
        ProviderKind::Bedrock => Arc::new(super::bedrock::adapter::Bedrock::new(config)?),
        ProviderKind::Gemini | ProviderKind::Vertex => {
            Arc::new(super::gemini::adapter::Gemini::new(config)?)
        }
        ProviderKind::OpenAi | ProviderKind::OpenAiCompatible => Arc::new(OpenAi::new(config)?),
    })
}

impl ProviderRegistry {
    pub fn new(
        configs: &[ProviderConfig],
        models: &[ModelEntry],
    ) -> Result<ProviderRegistry, String> {
        let mut providers: Vec<Arc<dyn Provider>> = Vec::new();
        let mut prefixes = Vec::new();
        for config in configs {
            let provider = build(config)?;
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
            stored: ArcSwap::from_pointee(Vec::new()),
        })
    }

    /// The configured providers, then those stored credentials define.
    pub fn providers(&self) -> Vec<Arc<dyn Provider>> {
        let mut all = self.providers.clone();
        all.extend(self.stored.load().iter().cloned());
        all
    }

    /// The provider the config defines under `name`.
    pub fn configured(&self, name: &str) -> Option<&Arc<dyn Provider>> {
        self.providers.iter().find(|p| p.name() == name)
    }

    pub fn models(&self) -> &[ModelEntry] {
        &self.models
    }

    pub fn by_name(&self, name: &str) -> Option<Arc<dyn Provider>> {
        if let Some(provider) = self.configured(name) {
            return Some(provider.clone());
        }
        self.stored
            .load()
            .iter()
            .find(|p| p.name() == name)
            .cloned()
    }

    /// What `credentials` (every stored credential, opened) make of the registry: each joins the
    /// pool of the configured provider of its name, or defines a provider with the others of its
    /// name. A record that no longer fits the config (another kind) is left out, with a warning.
    pub fn prepare(&self, credentials: &[OpenedCredential]) -> Result<PreparedKeys, String> {
        let mut pools = Vec::new();
        for provider in &self.providers {
            let Some(pool) = provider.key_pool() else {
                continue;
            };
            let mine: Vec<(String, Secret<String>)> = credentials
                .iter()
                .filter(|c| c.provider == provider.name())
                .filter(|c| {
                    let fits = c.kind == provider.kind();
                    if !fits {
                        tracing::warn!(
                            credential = %c.id,
                            provider = %c.provider,
                            stored_kind = c.kind.as_str(),
                            configured_kind = provider.kind().as_str(),
                            "stored credential left out: the config now gives its provider another kind"
                        );
                    }
                    fits
                })
                .map(|c| (c.id.clone(), c.key.clone()))
                .collect();
            pools.push((pool.clone(), pool.prepare(&mine)?, false));
        }
        let current = self.stored.load();
        let mut stored: Vec<Arc<dyn Provider>> = Vec::new();
        for c in credentials {
            if self.configured(&c.provider).is_some()
                || stored.iter().any(|p| p.name() == c.provider)
            {
                continue;
            }
            let config = provider_config_for(&c.provider, c.kind, c.base_url.as_deref())
                .map_err(|e| format!("credential {}: {e}", c.id))?;
            let base = config.base_url.as_str().trim_end_matches('/').to_string();
            // The same provider as before keeps its adapter (and its pool's rests).
            let provider = match current
                .iter()
                .find(|p| p.name() == c.provider && p.kind() == c.kind && p.base_url() == base)
            {
                Some(same) => same.clone(),
                None => build(&config)?,
            };
            let Some(pool) = provider.key_pool() else {
                return Err(format!(
                    "provider {}: kind {} takes no stored key",
                    c.provider,
                    c.kind.as_str()
                ));
            };
            let mine: Vec<(String, Secret<String>)> = credentials
                .iter()
                .filter(|o| o.provider == c.provider)
                .map(|o| (o.id.clone(), o.key.clone()))
                .collect();
            pools.push((pool.clone(), pool.prepare(&mine)?, true));
            stored.push(provider);
        }
        // A provider that is gone keeps refusing through routes that still hold it.
        for gone in current
            .iter()
            .filter(|p| !stored.iter().any(|s| Arc::ptr_eq(s, p)))
        {
            if let Some(pool) = gone.key_pool() {
                pools.push((pool.clone(), Vec::new(), true));
            }
        }
        Ok(PreparedKeys { pools, stored })
    }

    /// Swaps in what [`ProviderRegistry::prepare`] built; returns whether the set of providers
    /// changed (routes built before then may hold one that is gone).
    pub fn install(&self, prepared: PreparedKeys) -> bool {
        let before: Vec<String> = self.stored.load().iter().map(key_of).collect();
        let after: Vec<String> = prepared.stored.iter().map(key_of).collect();
        for (pool, keys, needs_key) in prepared.pools {
            pool.install(keys, needs_key);
        }
        self.stored.store(Arc::new(prepared.stored));
        before != after
    }

    pub fn resolve(&self, model: &str) -> Result<Route, ResolveError> {
        if let Some(entry) = self.models.iter().find(|m| m.name == model)
            && let Some(provider) = self.by_name(&entry.provider)
        {
            return Ok(Route {
                provider,
                upstream_model: entry.upstream_model.clone(),
            });
        }
        if let Some((prefix, rest)) = model.split_once('/')
            && !rest.is_empty()
            && let Some(provider) = self.by_name(prefix)
        {
            return Ok(Route {
                provider,
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
        names.extend(self.providers().iter().map(|p| format!("{}/*", p.name())));
        names.extend(self.prefixes.iter().map(|(p, _)| format!("{p}*")));
        if names.is_empty() {
            "none (set OPENAI_API_KEY or declare [providers] in the config file)".to_string()
        } else {
            names.join(", ")
        }
    }
}

/// A stored provider's identity: name, kind and where it sends requests.
fn key_of(provider: &Arc<dyn Provider>) -> String {
    format!(
        "{}|{}|{}",
        provider.name(),
        provider.kind().as_str(),
        provider.base_url()
    )
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

    fn stored(id: &str, provider: &str, base: &str) -> OpenedCredential {
        OpenedCredential {
            id: id.into(),
            provider: provider.into(),
            kind: ProviderKind::OpenAiCompatible,
            base_url: Some(base.into()),
            key: Secret::new(format!("sk-{id}")),
        }
    }

    #[test]
    fn stored_credentials_define_join_and_leave_providers() {
        let r = registry("");
        let base = "http://127.0.0.1:9/v1";
        let one = [stored("a", "lab", base), stored("b", "openai", base)];
        // `openai` is configured (openai kind): a compatible record for it is left out.
        let prepared = r.prepare(&one).unwrap_or_else(|e| panic!("{e}"));
        assert!(r.install(prepared), "a provider was added");
        let lab = r.by_name("lab").unwrap_or_else(|| panic!("no lab"));
        assert_eq!(lab.base_url(), base);
        assert!(r.resolve("lab/m").is_ok());
        let pool = lab.key_pool().cloned().unwrap_or_else(|| panic!("no pool"));
        assert_eq!(pool.sources(), (vec!["a".to_string()], false));
        let openai = r.by_name("openai").and_then(|p| p.key_pool().cloned());
        assert_eq!(openai.map(|p| p.sources()), Some((vec![], true)));

        // A second key joins the same adapter: routes built before keep working.
        let two = [stored("a", "lab", base), stored("c", "lab", base)];
        let prepared = r.prepare(&two).unwrap_or_else(|e| panic!("{e}"));
        assert!(!r.install(prepared), "the same providers");
        let again = r.by_name("lab").unwrap_or_else(|| panic!("no lab"));
        assert!(Arc::ptr_eq(&lab, &again));
        assert_eq!(pool.len(), 2);

        // The last key gone: the provider leaves, and its pool refuses those who still hold it.
        let prepared = r.prepare(&[]).unwrap_or_else(|e| panic!("{e}"));
        assert!(r.install(prepared));
        assert!(r.by_name("lab").is_none() && r.resolve("lab/m").is_err());
        assert!(pool.is_empty());
    }
}
