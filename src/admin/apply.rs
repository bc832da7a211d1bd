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

use crate::cost::{PriceError, PriceTable};
use crate::ledger::{LedgerDraft, LedgerEntry};
use crate::modules::registry;
use crate::modules::{Chain, ChainHandle, ModuleDeps, ModuleError};
use crate::store::writer::Writer;
use crate::store::{ModuleState, Persist, StoreError};

#[derive(Debug, Error)]
pub enum AdminError {
    #[error("unknown module {name:?}; known: {known}")]
    UnknownModule { name: String, known: String },
    #[error("modules.{name}: {problem}")]
    InvalidConfig { name: String, problem: String },
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
}

pub struct Admin {
    chain: ChainHandle,
    deps: ModuleDeps,
    writer: Arc<Writer>,
    /// Layers under the stored price file: the bundled table; and over it: config overrides.
    base_prices: Arc<PriceTable>,
    override_prices: Arc<PriceTable>,
    lock: Mutex<()>,
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
            lock: Mutex::new(()),
        }
    }

    pub fn chain(&self) -> &ChainHandle {
        &self.chain
    }

    /// The price table in force: bundled, then `stored` (a loaded file), then config overrides.
    pub fn layered_prices(
        base: &PriceTable,
        stored: Option<&PriceTable>,
        overrides: &PriceTable,
    ) -> PriceTable {
        let mut table = base.clone();
        if let Some(stored) = stored {
            table.overlay(stored);
        }
        table.overlay(overrides);
        table
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
            } => self.update_module(actor, name, enabled, config).await,
            AdminChange::LoadPrices { body } => self.load_prices(actor, body).await,
        }
    }

    async fn update_module(
        &self,
        actor: &str,
        name: String,
        enabled: Option<bool>,
        config: Option<Value>,
    ) -> Result<LedgerEntry, AdminError> {
        // 1. Validate and build.
        if registry::find(&name).is_none() {
            return Err(AdminError::UnknownModule {
                name,
                known: registry::names().join(", "),
            });
        }
        let current = self.chain.load_full();
        let mut states: Vec<ModuleState> = current.states().to_vec();
        let Some(state) = states.iter_mut().find(|s| s.name == name) else {
            return Err(AdminError::UnknownModule {
                name,
                known: registry::names().join(", "),
            });
        };
        let before = state.clone();
        if let Some(enabled) = enabled {
            state.enabled = enabled;
        }
        if let Some(patch) = config {
            let Value::Object(patch) = patch else {
                return Err(AdminError::InvalidConfig {
                    name,
                    problem: "config must be a JSON object".into(),
                });
            };
            let mut merged = match state.config.clone() {
                Value::Object(map) => map,
                _ => serde_json::Map::new(),
            };
            merged.extend(patch);
            state.config = Value::Object(merged);
        }
        registry::check_config(&name, &state.config).map_err(|problem| {
            AdminError::InvalidConfig {
                name: name.clone(),
                problem,
            }
        })?;
        let after = state.clone();
        let candidate = Chain::build(&states, &self.deps)?;

        // 2. Persist and audit.
        let draft = LedgerDraft {
            actor: actor.to_string(),
            action: "module.update".into(),
            target: name.clone(),
            details: json!({
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
        tracing::info!(module = %name, seq = entry.seq, "module updated");
        Ok(entry)
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
