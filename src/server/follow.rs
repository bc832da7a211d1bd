//! Following a shared store: what this node does when another node commits an administrative
//! change (`store::watch` calls [`on_change`] on the watch's thread). Keys: the key table is read
//! again and swapped in. Provider credentials: the vault reads and opens the stored records again
//! and swaps the providers' key pools, under the admin lock (`Vault::reload` says why); when a
//! provider appeared or went, the chain is rebuilt so no cached route holds a gone one. Module
//! settings (aliases and routing live there too): the module states are read again and a new
//! chain is built from them and swapped in, as `Admin::apply` does for a change made here. A
//! chain that fails to build keeps the current one, logged. Breakers: the stored phases are read
//! again and the newer ones adopted, so a breaker opened on one node keeps the others off the
//! deployment too. Cache: another node purged entries; the entries this node holds that the
//! store no longer has are dropped from memory (what another node stored is read on a miss, see
//! `modules/cache/shared.rs`, so only removals need telling).

use std::sync::Arc;

use crate::admin::Vault;
use crate::admin::credentials::Reloaded;
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
    /// The stored credentials, opened, and the admin lock a credential reload takes.
    pub vault: Arc<Vault>,
    pub admin_lock: Arc<tokio::sync::Mutex<()>>,
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
        if changed.covers(Changed::Credentials) {
            match reload_credentials(&follow) {
                Ok(Reloaded::Unchanged) => {}
                Ok(what) => tracing::info!(?what, "reloaded credentials changed by another node"),
                Err(e) => tracing::warn!(
                    error = %e,
                    "cannot reload credentials changed by another node; keeping the current ones"
                ),
            }
        }
        if changed.covers(Changed::Breakers) {
            match adopt_breakers(&follow) {
                Ok(()) => tracing::debug!("adopted breaker phases stored by another node"),
                Err(e) => tracing::warn!(error = %e, "cannot read breakers another node changed"),
            }
        }
        if changed.covers(Changed::Cache) {
            match drop_purged(&follow) {
                Ok(0) => {}
                Ok(dropped) => tracing::info!(dropped, "dropped cache entries another node purged"),
                Err(e) => tracing::warn!(error = %e, "cannot read the cache another node purged"),
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

fn reload_credentials(f: &Follow) -> Result<Reloaded, String> {
    // This is the watch's own thread, outside any runtime, so blocking on the lock is allowed;
    // an admin change holds it only for its commit.
    let _serialized = f.admin_lock.blocking_lock();
    let reloaded = f.vault.reload(f.store.credentials.as_ref())?;
    if reloaded == Reloaded::Providers {
        let _entered = f.runtime.as_ref().map(tokio::runtime::Handle::enter);
        let current = f.chain.load_full();
        match Chain::build(current.states(), &f.deps) {
            Ok(chain) => f.chain.store(Arc::new(chain)),
            // The pools are in; a route to a removed provider fails with a clear error.
            Err(e) => tracing::warn!(error = %e, "chain not rebuilt after a provider change"),
        }
    }
    Ok(reloaded)
}

fn adopt_breakers(f: &Follow) -> Result<(), StoreError> {
    let records = f.store.breakers.breakers()?;
    crate::modules::routing::shared(&f.deps).adopt(&records);
    Ok(())
}

/// Keeps in memory only the cache entries the store still holds. An entry stored here but not
/// committed yet is dropped too; it is read back from the store at its next miss.
fn drop_purged(f: &Follow) -> Result<usize, StoreError> {
    use crate::modules::cache::ResponseEntries;
    use crate::modules::cache::embeddings::EmbeddingEntries;
    use crate::modules::semantic_cache::SemanticEntries;
    let shared = &f.deps.shared;
    let (exact, semantic, embeddings) = (
        shared.get::<ResponseEntries>(),
        shared.get::<SemanticEntries>(),
        shared.get::<EmbeddingEntries>(),
    );
    if exact.is_none() && semantic.is_none() && embeddings.is_none() {
        return Ok(0);
    }
    let stored: std::collections::HashSet<_> = f.store.cache.cache_keys()?.into_iter().collect();
    Ok(exact.map_or(0, |e| e.0.keep_only(&stored))
        + semantic.map_or(0, |s| s.keep_only(&stored))
        + embeddings.map_or(0, |e| e.0.keep_only(&stored)))
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
