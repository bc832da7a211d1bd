//! The one path for administrative changes, in this order:
//! 1. validate, and build everything the change needs (a new chain, a new price table); a failure
//!    here changes nothing;
//! 2. persist the change and append its ledger entry, in one transaction, through the writer;
//! 3. apply it: swap in what step 1 built. Only this step is visible to requests, and it can't fail.
//!
//! Changes are serialized by a lock so two of them can't build on the same old state. The CLI
//! uses this same function against the database when no server runs.

use std::sync::Arc;

use arc_swap::ArcSwap;
use serde_json::{Value, json};
use thiserror::Error;
use tokio::sync::Mutex;

use super::credentials::{NewCredential, Vault};
use crate::cost::{PriceError, PriceTable};
use crate::ledger::{LedgerDraft, LedgerEntry};
use crate::modules::registry::ModuleConfig;
use crate::modules::routing::config::RoutingConfig;
use crate::modules::routing::{self, breaker};
use crate::modules::{Chain, ChainHandle, ModuleDeps, ModuleError};
use crate::secret::Secret;
use crate::store::writer::Writer;
use crate::store::{BreakerPhase, BreakerRecord, ModuleState, Persist, StoreError};

#[derive(Debug, Error)]
pub enum AdminError {
    #[error("unknown module {name:?}; known: {known}")]
    UnknownModule { name: String, known: String },
    #[error("modules.{name}: {problem}")]
    InvalidConfig { name: String, problem: String },
    #[error("unknown deployment {deployment:?}; known: {known}")]
    UnknownDeployment { deployment: String, known: String },
    #[error("module {name} cannot be disabled: {why}")]
    Required { name: String, why: &'static str },
    #[error("{0}")]
    NotFound(String),
    /// A change that cannot be made as asked (a name taken, a key already revoked).
    #[error("{0}")]
    Invalid(String),
    /// A provider credential or master key change that cannot be made; says why.
    #[error("{0}")]
    Credential(String),
    #[error(transparent)]
    Module(#[from] ModuleError),
    #[error(transparent)]
    Prices(#[from] PriceError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Clone, Debug)]
pub enum AdminChange {
    /// Enable or disable a module and/or merge `config` (top-level keys) into its config.
    UpdateModule {
        name: String,
        enabled: Option<bool>,
        config: Option<Value>,
    },
    /// Load a price file (the bundled file's format), layered over the bundled table.
    LoadPrices { body: String },
    /// Set (`Some`) or delete (`None`) a routing alias.
    SetAlias {
        name: String,
        target: Option<String>,
    },
    /// Set (`Some`, a group as JSON) or delete (`None`) a routing group.
    SetGroup { name: String, group: Option<Value> },
    /// Force a deployment's breaker open for some milliseconds, or reset it (`None`).
    Breaker {
        deployment: String,
        open_for_ms: Option<u64>,
    },
    /// Create, change, revoke or rotate a virtual key, a team or an admin key.
    Keys(super::keys::KeyOp),
    /// Store a provider credential, sealed (see `credentials.rs`).
    AddCredential {
        provider: String,
        kind: String,
        base_url: Option<String>,
        key: Secret<String>,
        label: Option<String>,
    },
    /// Remove a stored credential by id, or every stored credential of a provider by name.
    RemoveCredential { target: String },
    /// Re-seal every credential under a new master key (`None`: a new random one, written to the
    /// key file).
    RotateSecrets { new_key: Option<Secret<String>> },
    /// Remove cache entries (memory and file).
    PurgeCache(crate::store::CachePurge),
    /// Store a new version of a prompt template (`{"messages": [...]}` or `{"variants": [...]}`),
    /// in force from the next request.
    PutPrompt { name: String, definition: Value },
    /// Put an older version of a prompt template back in force (`None`: the one before).
    RollbackPrompt { name: String, version: Option<u32> },
    /// A change of the MCP gateway's servers or rules (see `mcp.rs`).
    Mcp(super::mcp::McpChange),
}

pub struct Admin {
    pub(super) chain: ChainHandle,
    pub(super) deps: ModuleDeps,
    pub(super) writer: Arc<Writer>,
    /// Layers under the stored price file: the bundled table; and over it: config overrides.
    base_prices: Arc<PriceTable>,
    override_prices: Arc<PriceTable>,
    /// The master key and the stored credentials, opened (`None` only before it is attached).
    pub(super) vault: Option<Arc<Vault>>,
    /// Shared with the change watch (`server/follow.rs`), which reloads under it.
    lock: Arc<Mutex<()>>,
}

impl Admin {
    pub fn new(
        chain: ChainHandle,
        deps: ModuleDeps,
        base_prices: Arc<PriceTable>,
        override_prices: Arc<PriceTable>,
    ) -> Admin {
        let writer = deps.writer.clone();
        Admin {
            chain,
            deps,
            writer,
            base_prices,
            override_prices,
            vault: None,
            lock: Arc::new(Mutex::new(())),
        }
    }

    /// Attaches the master key and stored credentials that credential changes work on.
    pub fn with_vault(mut self, vault: Arc<Vault>) -> Admin {
        self.vault = Some(vault);
        self
    }

    /// The lock admin changes take turns on: a reload of another node's change takes it too,
    /// so a change applied here can't install a state built before that reload over it.
    pub fn serializer(&self) -> Arc<Mutex<()>> {
        self.lock.clone()
    }

    pub fn vault(&self) -> Option<&Arc<Vault>> {
        self.vault.as_ref()
    }

    /// What modules are built with (shared state such as counters lives here).
    pub fn deps(&self) -> &ModuleDeps {
        &self.deps
    }

    /// Every known module with its state in force.
    pub fn listing(&self) -> Vec<crate::modules::chain::ModuleListing> {
        self.chain.load().listing(&self.deps.catalogue)
    }

    pub fn chain(&self) -> &ChainHandle {
        &self.chain
    }

    /// The price table in force: bundled, then `stored` (a loaded file), then config overrides.
    pub fn layered_prices(
        base: &Arc<PriceTable>,
        stored: Option<&PriceTable>,
        overrides: &PriceTable,
    ) -> PriceTable {
        let layers: Vec<&PriceTable> = stored.into_iter().chain([overrides]).collect();
        PriceTable::layered(base.clone(), &layers)
    }

    pub fn prices(&self) -> &Arc<ArcSwap<PriceTable>> {
        &self.deps.prices
    }

    pub async fn apply(&self, actor: &str, change: AdminChange) -> Result<LedgerEntry, AdminError> {
        let _serialized = self.lock.lock().await;
        match change {
            AdminChange::UpdateModule {
                name,
                enabled,
                config,
            } => {
                let target = name.clone();
                self.change_module(actor, &name, "module.update", &target, |state| {
                    if let Some(enabled) = enabled {
                        state.enabled = enabled;
                    }
                    if let Some(patch) = config {
                        merge_config(&name, &mut state.config, patch)?;
                    }
                    Ok(())
                })
                .await
            }
            AdminChange::SetAlias { name, target } => {
                let action = if target.is_some() {
                    "alias.set"
                } else {
                    "alias.delete"
                };
                self.change_module(actor, "routing", action, &name, |state| {
                    edit_map(state, "aliases", &name, target.map(Value::String))
                })
                .await
            }
            AdminChange::SetGroup { name, group } => {
                let action = if group.is_some() {
                    "group.set"
                } else {
                    "group.delete"
                };
                self.change_module(actor, "routing", action, &name, |state| {
                    edit_map(state, "groups", &name, group)
                })
                .await
            }
            AdminChange::Breaker {
                deployment,
                open_for_ms,
            } => self.change_breaker(actor, deployment, open_for_ms).await,
            AdminChange::LoadPrices { body } => self.load_prices(actor, body).await,
            AdminChange::Keys(op) => super::keys::apply(self, actor, op).await,
            AdminChange::AddCredential {
                provider,
                kind,
                base_url,
                key,
                label,
            } => {
                let new = NewCredential {
                    provider,
                    kind,
                    base_url,
                    key,
                    label,
                };
                self.add_credential(actor, new).await
            }
            AdminChange::RemoveCredential { target } => self.remove_credential(actor, target).await,
            AdminChange::RotateSecrets { new_key } => self.rotate_secrets(actor, new_key).await,
            AdminChange::PurgeCache(purge) => super::cache_http::purge(self, actor, purge).await,
            AdminChange::PutPrompt { name, definition } => {
                super::prompts::put(self, actor, name, definition).await
            }
            AdminChange::RollbackPrompt { name, version } => {
                super::prompts::rollback(self, actor, name, version).await
            }
            AdminChange::Mcp(change) => super::mcp::apply(self, actor, change).await,
        }
    }

    /// Changes one module's state through `edit`, then validates, builds the new chain, persists
    /// and audits (as `action` on `target`), and swaps the chain in.
    pub(super) async fn change_module(
        &self,
        actor: &str,
        name: &str,
        action: &str,
        target: &str,
        edit: impl FnOnce(&mut ModuleState) -> Result<(), AdminError>,
    ) -> Result<LedgerEntry, AdminError> {
        // 1. Validate and build.
        let unknown = || AdminError::UnknownModule {
            name: name.to_string(),
            known: self.deps.catalogue.names().join(", "),
        };
        let spec = self.deps.catalogue.find(name).ok_or_else(unknown)?;
        let current = self.chain.load_full();
        let mut states: Vec<ModuleState> = current.states().to_vec();
        let state = states
            .iter_mut()
            .find(|s| s.name == name)
            .ok_or_else(unknown)?;
        let before = state.clone();
        edit(state)?;
        (spec.check)(&state.config).map_err(|problem| AdminError::InvalidConfig {
            name: name.to_string(),
            problem,
        })?;
        if !state.enabled
            && let Some(why) = (spec.required)(&self.deps)
        {
            return Err(AdminError::Required {
                name: name.to_string(),
                why,
            });
        }
        let after = state.clone();
        let candidate = Chain::build(&states, &self.deps)?;

        // 2. Persist and audit.
        let draft = LedgerDraft {
            actor: actor.to_string(),
            action: action.into(),
            target: target.to_string(),
            details: json!({
                "module": name,
                "before": {"enabled": before.enabled, "config": before.config},
                "after": {"enabled": after.enabled, "config": after.config},
            }),
        };
        let entry = self
            .writer
            .admin(Some(Persist::ModuleState(after)), draft)
            .await?;

        // 3. Apply.
        self.chain.store(Arc::new(candidate));
        tracing::info!(module = %name, action, target, seq = entry.seq, "module changed");
        Ok(entry)
    }

    /// Forces a breaker open for `open_for_ms`, or resets it (`None`).
    async fn change_breaker(
        &self,
        actor: &str,
        deployment: String,
        open_for_ms: Option<u64>,
    ) -> Result<LedgerEntry, AdminError> {
        let routing = routing::shared(&self.deps);
        let breakers = &routing.breakers;
        // The operator names a deployment by id; its breaker is keyed by id and upstream URL.
        let key = self
            .known_breakers()
            .into_iter()
            .find(|(id, _)| *id == deployment)
            .map(|(_, key)| key)
            .or_else(|| {
                breakers
                    .all()
                    .into_iter()
                    .map(|(key, _)| key)
                    .find(|key| breaker::split_key(key).0 == deployment)
            });
        let Some(key) = key else {
            return Err(AdminError::UnknownDeployment {
                deployment,
                known: self.known_deployments().join(", "),
            });
        };
        let now = crate::store::now_ms();
        let (action, phase, reason) = match open_for_ms {
            Some(ms) => (
                "breaker.open",
                BreakerPhase::Open {
                    until_ms: now + ms as i64,
                },
                "forced open by an operator",
            ),
            None => ("breaker.reset", BreakerPhase::Closed, ""),
        };
        let record = BreakerRecord {
            deployment: key.clone(),
            phase,
            reason: reason.into(),
            updated_ms: now,
        };
        let draft = LedgerDraft {
            actor: actor.to_string(),
            action: action.into(),
            target: deployment.clone(),
            details: json!({"phase": phase}),
        };
        let entry = self
            .writer
            .admin(Some(Persist::Breaker(record)), draft)
            .await?;
        match phase {
            BreakerPhase::Open { until_ms } => {
                breakers.force_open(&key, until_ms);
            }
            _ => {
                breakers.reset(&key);
            }
        }
        Ok(entry)
    }

    /// `(deployment id, breaker key)` of the routing table in force.
    fn known_breakers(&self) -> Vec<(String, String)> {
        let chain = self.chain.load();
        match chain.states().iter().find(|s| s.name == "routing") {
            Some(state) => routing::breaker_keys(&state.config, &self.deps.providers),
            None => Vec::new(),
        }
    }

    /// Deployment ids of the routing table in force.
    pub fn known_deployments(&self) -> Vec<String> {
        let chain = self.chain.load();
        let Some(state) = chain.states().iter().find(|s| s.name == "routing") else {
            return Vec::new();
        };
        let Ok(config) = <RoutingConfig as ModuleConfig>::parse(&state.config) else {
            return Vec::new();
        };
        let mut ids: Vec<String> = config
            .groups
            .iter()
            .flat_map(|(g, group)| {
                group
                    .deployments
                    .iter()
                    .map(move |d| format!("{g}/{}/{}", d.provider, d.model))
            })
            .collect();
        ids.sort();
        ids
    }

    pub fn routing(&self) -> Arc<crate::modules::routing::RoutingShared> {
        routing::shared(&self.deps)
    }

    async fn load_prices(&self, actor: &str, body: String) -> Result<LedgerEntry, AdminError> {
        let loaded = PriceTable::from_json(body.as_bytes())?;
        let table = Admin::layered_prices(&self.base_prices, Some(&loaded), &self.override_prices);
        let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(body.as_bytes()));
        let draft = LedgerDraft {
            actor: actor.to_string(),
            action: "prices.update".into(),
            target: "prices".into(),
            details: json!({"models": loaded.len(), "sha256": digest}),
        };
        let entry = self
            .writer
            .admin(Some(Persist::Prices { body }), draft)
            .await?;
        self.deps.prices.store(Arc::new(table));
        Ok(entry)
    }
}

/// Merges the top-level keys of `patch` into `config`.
fn merge_config(name: &str, config: &mut Value, patch: Value) -> Result<(), AdminError> {
    let Value::Object(patch) = patch else {
        return Err(AdminError::InvalidConfig {
            name: name.to_string(),
            problem: "config must be a JSON object".into(),
        });
    };
    let mut merged = match config.take() {
        Value::Object(map) => map,
        _ => serde_json::Map::new(),
    };
    merged.extend(patch);
    *config = Value::Object(merged);
    Ok(())
}

/// Sets or removes `key` in the map `field` of a module's config.
fn edit_map(
    state: &mut ModuleState,
    field: &str,
    key: &str,
    value: Option<Value>,
) -> Result<(), AdminError> {
    if !state.config.is_object() {
        state.config = json!({});
    }
    let map = state
        .config
        .as_object_mut()
        .map(|c| c.entry(field).or_insert_with(|| json!({})));
    let Some(Value::Object(map)) = map else {
        return Err(AdminError::InvalidConfig {
            name: state.name.clone(),
            problem: format!("{field} must be an object"),
        });
    };
    match value {
        Some(value) => {
            map.insert(key.to_string(), value);
        }
        None => {
            if map.remove(key).is_none() {
                return Err(AdminError::NotFound(format!(
                    "no {field} entry named {key:?}"
                )));
            }
        }
    }
    Ok(())
}
