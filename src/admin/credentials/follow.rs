//! Another node's credential change, applied to this node's [`Vault`]: `server/follow.rs` calls
//! [`Vault::reload`] on the change watch's thread when a notice says credentials (or anything)
//! changed. The reload reads every stored record, as start-up does, so a late or repeated notice
//! is harmless; the caller holds the admin lock, so a change this node is applying meanwhile
//! can't install a list built before the reload over it.

use super::{Vault, open_key};
use crate::store::CredentialStore;

/// What a reload changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reloaded {
    /// The stored credentials are the ones already installed (this node's own change, a repeat).
    Unchanged,
    /// Keys changed within the same providers: the pools were swapped.
    Keys,
    /// A provider appeared or went: routes the chain cached may name one that is gone, so the
    /// caller rebuilds the chain.
    Providers,
}

impl Vault {
    /// Reads the stored credentials again and installs the pools they make when they differ
    /// from the installed ones. Blocks on the store: call it off the async runtime.
    pub fn reload(&self, store: &dyn CredentialStore) -> Result<Reloaded, String> {
        let stored = store.credentials().map_err(|e| e.to_string())?;
        let master = self.master.load_full();
        let current = self.list();
        let mut list = Vec::with_capacity(stored.len());
        for record in stored {
            match open_key(&master, &record) {
                Ok(key) => list.push((record, key)),
                Err(e) => match current.iter().find(|(held, _)| held.id == record.id) {
                    // Another node rotated the master key and re-sealed the record: the key
                    // inside is the one this node already holds, so it keeps serving with it.
                    Some((_, key)) => {
                        tracing::warn!(
                            credential = %record.id,
                            "stored credential sealed under another master key (rotated on \
                             another node?); keeping the key this node opened; restart with \
                             the new STOCKYARD_MASTER_KEY"
                        );
                        list.push((record, key.clone()));
                    }
                    None => tracing::error!(
                        error = %e,
                        provider = %record.provider,
                        "credential another node stored does not open under this node's master \
                         key; every node of one store needs the same STOCKYARD_MASTER_KEY"
                    ),
                },
            }
        }
        let same = list.len() == current.len()
            && list
                .iter()
                .zip(&current)
                .all(|((a, _), (b, _))| a.id == b.id && a.fingerprint == b.fingerprint);
        if same {
            return Ok(Reloaded::Unchanged);
        }
        let prepared = self.providers.prepare(&self.opened_credentials(&list))?;
        *self.lock() = list;
        Ok(if self.providers.install(prepared) {
            Reloaded::Providers
        } else {
            Reloaded::Keys
        })
    }
}
