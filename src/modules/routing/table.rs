//! The routing table: the routing config resolved against the configured providers, built with
//! the chain (so a bad deployment fails the change, not a request). Models outside any group get
//! a one-deployment group of their own, built on first use and cached; such a group has no
//! breaker (the user configured none), only an in-memory cool-down after a 429.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use super::breaker;
use super::config::{
    BreakerConfig, GroupConfig, RetryConfig, RoutingConfig, Strategy, TimeoutOverrides,
};
use super::stats::{DeploymentStats, StatsRegistry};
use crate::config::Timeouts;
use crate::providers::{ProviderRegistry, Route};

pub struct Deployment {
    /// `group/provider/model`, or `provider/model` outside groups.
    pub id: String,
    /// [`super::breaker::key`]: the id plus the upstream base URL.
    pub breaker_key: String,
    pub route: Route,
    pub weight: u32,
    pub priority: u32,
    pub rpm: Option<u32>,
    pub tpm: Option<u64>,
    pub variant: String,
    pub stats: Arc<DeploymentStats>,
}

pub struct Group {
    pub name: String,
    pub strategy: Strategy,
    pub deployments: Vec<Deployment>,
    pub fallbacks: Vec<String>,
    pub fallback_on_context_window: bool,
    pub fallback_on_content_policy: bool,
    pub retry: RetryConfig,
    pub late_commit: Option<Duration>,
    /// `None` for a plain model's group: no breaker, a 429 cools it down in memory only.
    pub breaker: Option<BreakerConfig>,
    pub tag_header: String,
}

/// Most single-model groups cached; past it they are built per request (still correct).
const PLAIN_CACHE_LIMIT: usize = 4_096;

pub struct RoutingTable {
    aliases: HashMap<String, String>,
    groups: HashMap<String, Arc<Group>>,
    default_retry: RetryConfig,
    providers: Arc<ProviderRegistry>,
    stats: Arc<StatsRegistry>,
    plain: RwLock<HashMap<String, Arc<Group>>>,
}

fn apply(base: Timeouts, overrides: &TimeoutOverrides) -> Timeouts {
    let ms = |v: Option<u64>, d: Duration| v.map(Duration::from_millis).unwrap_or(d);
    Timeouts {
        connect: ms(overrides.connect_ms, base.connect),
        first_byte: ms(overrides.first_byte_ms, base.first_byte),
        total: ms(overrides.total_ms, base.total),
        stream_idle: ms(overrides.stream_idle_ms, base.stream_idle),
    }
}

impl RoutingTable {
    pub fn build(
        config: &RoutingConfig,
        providers: Arc<ProviderRegistry>,
        stats: Arc<StatsRegistry>,
    ) -> Result<RoutingTable, String> {
        let mut groups = HashMap::new();
        for (name, group) in &config.groups {
            groups.insert(
                name.clone(),
                Arc::new(build_group(name, group, &providers, &stats)?),
            );
        }
        let table = RoutingTable {
            aliases: config.aliases.clone().into_iter().collect(),
            groups,
            default_retry: config.default_retry,
            providers,
            stats,
            plain: RwLock::new(HashMap::new()),
        };
        for (name, target) in &config.aliases {
            if !table.groups.contains_key(target) && table.providers.resolve(target).is_err() {
                return Err(format!(
                    "aliases.{name}: {target:?} is neither a group nor a known model"
                ));
            }
        }
        for (name, group) in &config.groups {
            for fallback in &group.fallbacks {
                if !table.groups.contains_key(fallback)
                    && table.providers.resolve(fallback).is_err()
                {
                    return Err(format!(
                        "groups.{name}.fallbacks: {fallback:?} is neither a group nor a known model"
                    ));
                }
            }
        }
        Ok(table)
    }

    /// The alias target for `model`, or `model` itself.
    pub fn dealias<'a>(&'a self, model: &'a str) -> &'a str {
        self.aliases.get(model).map(String::as_str).unwrap_or(model)
    }

    /// A configured group, or a one-deployment group for a plain model; `None` for an unknown model.
    pub fn group(&self, name: &str) -> Result<Arc<Group>, String> {
        if let Some(group) = self.groups.get(name) {
            return Ok(group.clone());
        }
        if let Some(group) = self
            .plain
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
        {
            return Ok(group.clone());
        }
        let route = self.providers.resolve(name).map_err(|e| e.to_string())?;
        let id = format!("{}/{}", route.provider.name(), route.upstream_model);
        let breaker_key = breaker::key(&id, route.provider.base_url());
        let group = Arc::new(Group {
            name: name.to_string(),
            strategy: Strategy::WeightedRandom,
            deployments: vec![Deployment {
                stats: self.stats.get(&id),
                variant: id.clone(),
                id,
                breaker_key,
                route,
                weight: 1,
                priority: 0,
                rpm: None,
                tpm: None,
            }],
            fallbacks: Vec::new(),
            fallback_on_context_window: false,
            fallback_on_content_policy: false,
            retry: self.default_retry,
            late_commit: Some(Duration::from_secs(10)),
            breaker: None,
            tag_header: String::new(),
        });
        let mut plain = self.plain.write().unwrap_or_else(|p| p.into_inner());
        if plain.len() < PLAIN_CACHE_LIMIT {
            plain.insert(name.to_string(), group.clone());
        }
        Ok(group)
    }

    /// Every deployment id in configured groups, for the admin API.
    pub fn deployment_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .groups
            .values()
            .flat_map(|g| g.deployments.iter().map(|d| d.id.clone()))
            .collect();
        ids.sort();
        ids
    }
}

/// `(deployment id, breaker key)` of every deployment in `config`'s groups whose provider is
/// configured, sorted by id: how the admin API finds the breaker an operator names by id.
pub fn breaker_keys(config: &RoutingConfig, providers: &ProviderRegistry) -> Vec<(String, String)> {
    let mut keys: Vec<(String, String)> = config
        .groups
        .iter()
        .flat_map(|(name, group)| {
            group.deployments.iter().filter_map(move |d| {
                let provider = providers.by_name(&d.provider)?;
                let id = format!("{name}/{}/{}", d.provider, d.model);
                let key = breaker::key(&id, provider.base_url());
                Some((id, key))
            })
        })
        .collect();
    keys.sort();
    keys
}

fn build_group(
    name: &str,
    config: &GroupConfig,
    providers: &ProviderRegistry,
    stats: &StatsRegistry,
) -> Result<Group, String> {
    let mut deployments = Vec::new();
    for (i, d) in config.deployments.iter().enumerate() {
        let field = format!("groups.{name}.deployments[{i}]");
        let provider = providers
            .by_name(&d.provider)
            .ok_or_else(|| format!("{field}.provider: unknown provider {:?}", d.provider))?
            .clone();
        let overrides = d.timeouts.over(&config.timeouts);
        let provider = if overrides.is_empty() {
            provider
        } else {
            provider
                .with_timeouts(apply(*provider.timeouts(), &overrides))
                .map_err(|e| format!("{field}: {e}"))?
        };
        let id = format!("{name}/{}/{}", d.provider, d.model);
        let breaker_key = breaker::key(&id, provider.base_url());
        deployments.push(Deployment {
            stats: stats.get(&id),
            variant: d
                .variant
                .clone()
                .unwrap_or_else(|| format!("{}/{}", d.provider, d.model)),
            id,
            breaker_key,
            route: Route {
                provider,
                upstream_model: d.model.clone(),
            },
            weight: d.weight.unwrap_or(1),
            priority: d.priority,
            rpm: d.rpm,
            tpm: d.tpm,
        });
    }
    Ok(Group {
        name: name.to_string(),
        strategy: config.strategy,
        deployments,
        fallbacks: config.fallbacks.clone(),
        fallback_on_context_window: config.fallback_on_context_window,
        fallback_on_content_policy: config.fallback_on_content_policy,
        retry: config.retry,
        late_commit: (config.late_commit_ms > 0)
            .then(|| Duration::from_millis(config.late_commit_ms)),
        breaker: Some(config.breaker),
        tag_header: config.tag_header.clone(),
    })
}
