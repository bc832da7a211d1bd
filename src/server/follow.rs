//! Following a shared store: what this node does when another node commits an administrative
//! change (`store::watch` calls [`on_change`] on the watch's thread). Keys: the key table is read
//! again and swapped in. Module settings (aliases and routing live there too): the module states
//! are read again and a new chain is built from them and swapped in, as `Admin::apply` does for a
//! change made here. A chain that fails to build keeps the current one, logged. Credentials still
//! wait for a restart (the vault holds them opened, and re-opening needs the master key's flow).
//! Breakers: the stored phases are read again and the newer ones adopted, so a breaker opened on
//! one node keeps the others off the deployment too.

use std::sync::Arc;

use crate::config::ValidConfig;
use crate::modules::auth::table::{KeyState, KeyTable};
use crate::modules::{Chain, ChainHandle, ModuleDeps};
use crate::store::changes::{Changed, OnChange};
use crate::store::{Store, StoreError};

/// What a reload needs.
pub struct Follow {
    pub store: Store,
    pub keys: Arc<KeyTable>,
    pub chain: ChainHandle,
    pub deps: ModuleDeps,
    pub config: ValidConfig,
    /// The server's runtime, entered while a chain is built (modules may spawn tasks).
    pub runtime: Option<tokio::runtime::Handle>,
}

pub fn on_change(follow: Follow) -> OnChange {
    Arc::new(move |changed: Changed| {
        if changed.covers(Changed::Keys) {
            match reload_keys(&follow) {
                Ok(()) => tracing::info!("reloaded keys changed by another node"),
                Err(e) => tracing::warn!(error = %e, "cannot reload keys changed by another node"),
            }
        }
        if changed.covers(Changed::Breakers) {
            match adopt_breakers(&follow) {
                Ok(()) => tracing::debug!("adopted breaker phases stored by another node"),
                Err(e) => tracing::warn!(error = %e, "cannot read breakers another node changed"),
            }
        }
        if changed.covers(Changed::Modules) {
            let _entered = follow.runtime.as_ref().map(tokio::runtime::Handle::enter);
            match reload_modules(&follow) {
                Ok(()) => tracing::info!("rebuilt the module chain after another node's change"),
                Err(e) => tracing::warn!(
                    error = %e,
                    "cannot apply another node's module change; keeping the current chain"
                ),
            }
        }
    })
}

fn reload_keys(f: &Follow) -> Result<(), StoreError> {
    let state = KeyState::new(
        f.store.keys.teams()?,
        f.store.keys.virtual_keys()?,
        f.store.keys.admin_keys()?,
    );
    // A change this node applies meanwhile is in the store too, so the reload holds it.
    f.keys.replace(state);
    Ok(())
}

fn adopt_breakers(f: &Follow) -> Result<(), StoreError> {
    let records = f.store.breakers.breakers()?;
    crate::modules::routing::shared(&f.deps).adopt(&records);
    Ok(())
}

fn reload_modules(f: &Follow) -> Result<(), String> {
    let stored = f.store.modules.module_states().map_err(|e| e.to_string())?;
    let states = super::app::initial_states(&f.config, &f.deps.catalogue, stored);
    if f.chain.load().states() == states.as_slice() {
        return Ok(());
    }
    let chain = Chain::build(&states, &f.deps).map_err(|e| e.to_string())?;
    f.chain.store(Arc::new(chain));
    Ok(())
}
