//! Provider credentials and the master key, changed through [`Admin::apply`] like everything
//! else: validate and build (seal the key, prepare the providers' new pools), persist with a
//! ledger entry that never holds a key, then install (swap the pools, in force on the next
//! request). [`Vault`] holds the master key in force and every stored credential, opened, in
//! memory: the request path reads the pools, never the store.
//!
//! Rotation re-seals every record under a new key in one transaction. With the key in a file, the
//! new key is staged beside it (`<db>.master-key.new`) before the commit and renamed over it
//! after, so a crash between leaves the staged key for the next start to finish with
//! (`MasterKey::for_writing`); with `STOCKYARD_MASTER_KEY`, the operator supplies the new key and
//! must set the variable to it before the next start.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use serde_json::json;

use super::{Admin, AdminError};
use crate::config::ProviderKind;
use crate::ledger::{LedgerDraft, LedgerEntry};
use crate::modules::Chain;
use crate::providers::ProviderRegistry;
use crate::providers::registry::OpenedCredential;
use crate::secret::Secret;
use crate::secrets::{self, KeySource, MasterKey, SealError};
use crate::store::{CredentialStore, ModuleState, Persist, StoreError, StoredCredential};

mod follow;
pub use follow::Reloaded;

/// The master key in force and the stored credentials, opened. Shared by the app and its admin.
pub struct Vault {
    master: ArcSwap<MasterKey>,
    source: KeySource,
    db_path: PathBuf,
    providers: Arc<ProviderRegistry>,
    /// Every stored credential with its key, as last installed; changed under the admin lock.
    opened: Mutex<Vec<(StoredCredential, Secret<String>)>>,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Vault({})", self.source.describe())
    }
}

/// The kinds a stored key can serve: Bedrock signs with AWS credentials instead.
const KINDS: &str = "openai, openai_compatible, anthropic, gemini or vertex";

impl Vault {
    /// Opens every stored record under `master` and installs the providers' pools. A record that
    /// does not open (altered by hand) is left out and named in the log, so one bad row does not
    /// keep the proxy down; `providers remove ID` drops it.
    pub fn load(
        master: MasterKey,
        source: KeySource,
        db_path: PathBuf,
        providers: Arc<ProviderRegistry>,
        store: &dyn CredentialStore,
    ) -> Result<Vault, String> {
        let mut opened = Vec::new();
        for record in store.credentials().map_err(|e| e.to_string())? {
            match open_key(&master, &record) {
                Ok(key) => opened.push((record, key)),
                Err(e) => tracing::error!(
                    error = %e,
                    provider = %record.provider,
                    "stored credential left out; remove it with `stockyard providers remove {}`",
                    record.id
                ),
            }
        }
        let vault = Vault {
            master: ArcSwap::from_pointee(master),
            source,
            db_path,
            providers,
            opened: Mutex::new(opened),
        };
        let prepared = vault
            .providers
            .prepare(&vault.opened_credentials(&vault.list()))?;
        vault.providers.install(prepared);
        Ok(vault)
    }

    /// `text` sealed under the master key in force for the record `id`, as hex (what a module
    /// config may hold: an MCP server's bearer token).
    pub fn seal_text(&self, id: &str, text: &str) -> Result<String, String> {
        self.master
            .load()
            .seal(id, text.as_bytes())
            .map(hex::encode)
            .map_err(|e| e.to_string())
    }

    /// The text [`Vault::seal_text`] sealed for `id`; `None` when it does not open (another
    /// master key, an edited value).
    pub fn open_text(&self, id: &str, sealed_hex: &str) -> Option<Secret<String>> {
        let sealed = hex::decode(sealed_hex).ok()?;
        let bytes = self.master.load().open(id, &sealed).ok()?;
        String::from_utf8(bytes).ok().map(Secret::new)
    }

    /// Where the master key in force comes from.
    pub fn source(&self) -> &KeySource {
        &self.source
    }

    /// The stored credentials (no keys), oldest first.
    pub fn credentials(&self) -> Vec<StoredCredential> {
        self.lock()
            .iter()
            .map(|(record, _)| record.clone())
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(StoredCredential, Secret<String>)>> {
        // Every change replaces the whole list, so a panic elsewhere leaves it consistent.
        self.opened.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn list(&self) -> Vec<(StoredCredential, Secret<String>)> {
        self.lock().clone()
    }

    fn opened_credentials(
        &self,
        list: &[(StoredCredential, Secret<String>)],
    ) -> Vec<OpenedCredential> {
        list.iter()
            .filter_map(|(record, key)| {
                Some(OpenedCredential {
                    id: record.id.clone(),
                    provider: record.provider.clone(),
                    kind: ProviderKind::parse(&record.kind)?,
                    base_url: record.base_url.clone(),
                    key: key.clone(),
                })
            })
            .collect()
    }
}

fn open_key(master: &MasterKey, record: &StoredCredential) -> Result<Secret<String>, SealError> {
    let bytes = master.open(&record.id, &record.sealed)?;
    String::from_utf8(bytes)
        .map(Secret::new)
        .map_err(|_| SealError::Open {
            id: record.id.clone(),
        })
}

fn invalid(problem: impl Into<String>) -> AdminError {
    AdminError::Credential(problem.into())
}

fn normalize(url: &str) -> String {
    url.trim().trim_end_matches('/').to_string()
}

/// What `providers add` asks for.
pub struct NewCredential {
    pub provider: String,
    pub kind: String,
    pub base_url: Option<String>,
    pub key: Secret<String>,
    pub label: Option<String>,
}

impl Admin {
    fn vault_or_err(&self) -> Result<&Arc<Vault>, AdminError> {
        self.vault
            .as_ref()
            .ok_or_else(|| invalid("this process holds no master key"))
    }

    pub(super) async fn add_credential(
        &self,
        actor: &str,
        new: NewCredential,
    ) -> Result<LedgerEntry, AdminError> {
        // 1. Validate, seal, build the new pools.
        let vault = self.vault_or_err()?;
        let name = new.provider.trim().to_string();
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(invalid(format!(
                "provider name {name:?}: must be letters, digits, '_' or '-'"
            )));
        }
        let kind = ProviderKind::parse(new.kind.trim())
            .filter(|k| *k != ProviderKind::Bedrock)
            .ok_or_else(|| invalid(format!("--kind {:?}: expected {KINDS}", new.kind)))?;
        let key = new.key.expose().trim();
        if key.is_empty() {
            return Err(invalid("the key is empty"));
        }
        let base_url = new.base_url.as_deref().map(normalize);
        let list = vault.list();
        let base_url = match vault.providers.configured(&name) {
            Some(configured) => {
                if configured.kind() != kind {
                    return Err(invalid(format!(
                        "provider {name} is configured with kind {}, not {}",
                        configured.kind().as_str(),
                        kind.as_str()
                    )));
                }
                if configured.key_pool().is_none() {
                    return Err(invalid(format!("provider {name} takes no stored key")));
                }
                if base_url
                    .as_deref()
                    .is_some_and(|u| u != configured.base_url())
                {
                    return Err(invalid(format!(
                        "provider {name} is configured with base URL {}; leave --base-url out",
                        configured.base_url()
                    )));
                }
                None
            }
            None => match list.iter().find(|(r, _)| r.provider == name) {
                Some((first, _)) if first.kind != kind.as_str() || first.base_url != base_url => {
                    return Err(invalid(format!(
                        "provider {name} is stored with kind {} and base URL {}; a credential \
                         added to it must give the same",
                        first.kind,
                        first.base_url.as_deref().unwrap_or("(the kind's default)")
                    )));
                }
                _ => base_url,
            },
        };
        let id = format!("cred_{}", uuid::Uuid::now_v7().simple());
        let master = vault.master.load_full();
        let seal_error = |e: SealError| invalid(e.to_string());
        let record = StoredCredential {
            id: id.clone(),
            provider: name.clone(),
            kind: kind.as_str().to_string(),
            base_url,
            sealed: master.seal(&id, key.as_bytes()).map_err(seal_error)?,
            fingerprint: secrets::fingerprint(key),
            label: new.label.filter(|l| !l.trim().is_empty()),
            created_ms: crate::store::now_ms(),
        };
        let mut candidate = list;
        candidate.push((record.clone(), Secret::new(key.to_string())));
        let prepared = vault
            .providers
            .prepare(&vault.opened_credentials(&candidate))
            .map_err(invalid)?;
        let check = master.check_value().map_err(seal_error)?;

        // 2. Persist and audit: the record is sealed; the entry names the key by fingerprint.
        let draft = LedgerDraft {
            actor: actor.to_string(),
            action: "provider.credential.add".into(),
            target: name.clone(),
            details: json!({
                "id": record.id,
                "provider": record.provider,
                "kind": record.kind,
                "base_url": record.base_url,
                "fingerprint": record.fingerprint,
                "label": record.label,
            }),
        };
        let entry = self
            .writer
            .admin(
                Some(Persist::AddCredential {
                    record: Box::new(record),
                    check,
                }),
                draft,
            )
            .await?;

        // 3. Apply.
        self.install_credentials(vault, candidate, prepared);
        tracing::info!(provider = %name, id = %id, seq = entry.seq, "provider credential added");
        Ok(entry)
    }

    pub(super) async fn remove_credential(
        &self,
        actor: &str,
        target: String,
    ) -> Result<LedgerEntry, AdminError> {
        let vault = self.vault_or_err()?;
        self.refresh_credentials(vault).await?;
        let list = vault.list();
        let by_id = list.iter().any(|(r, _)| r.id == target);
        let (gone, kept): (Vec<_>, Vec<_>) = list.into_iter().partition(|(r, _)| {
            if by_id {
                r.id == target
            } else {
                r.provider == target
            }
        });
        if gone.is_empty() {
            return Err(AdminError::NotFound(
                match vault.providers.configured(&target) {
                    Some(_) => format!(
                        "provider {target} has no stored credentials: its key comes from the \
                         config or the environment, which `providers remove` does not change"
                    ),
                    None => format!("no stored credential or provider named {target:?}"),
                },
            ));
        }
        let prepared = vault
            .providers
            .prepare(&vault.opened_credentials(&kept))
            .map_err(invalid)?;
        let ids: Vec<String> = gone.iter().map(|(r, _)| r.id.clone()).collect();
        let provider = gone[0].0.provider.clone();
        let draft = LedgerDraft {
            actor: actor.to_string(),
            action: "provider.credential.remove".into(),
            target: provider.clone(),
            details: json!({
                "ids": ids,
                "provider": provider,
                "fingerprints": gone.iter().map(|(r, _)| r.fingerprint.clone()).collect::<Vec<_>>(),
            }),
        };
        let entry = self
            .writer
            .admin(Some(Persist::RemoveCredentials { ids }), draft)
            .await?;
        self.install_credentials(vault, kept, prepared);
        tracing::info!(provider = %provider, seq = entry.seq, "provider credentials removed");
        Ok(entry)
    }

    /// Reads the stored credentials into the vault before a removal picks what to delete:
    /// another node, or the CLI beside this one, may have removed some since this node last
    /// loaded them, and deleting a row that is gone would fail the whole change.
    async fn refresh_credentials(&self, vault: &Arc<Vault>) -> Result<(), AdminError> {
        let (held, store) = (vault.clone(), self.deps.store.credentials.clone());
        let reloaded = tokio::task::spawn_blocking(move || held.reload(store.as_ref()))
            .await
            .map_err(|e| AdminError::Store(StoreError::Backend(e.to_string())))?
            .map_err(|e| AdminError::Store(StoreError::Backend(e)))?;
        if reloaded == Reloaded::Providers {
            self.rebuild_chain();
        }
        Ok(())
    }

    /// Swaps the pools in; when the set of providers changed, rebuilds the chain so routes it
    /// cached to a provider that is gone (or re-made elsewhere) are dropped.
    fn install_credentials(
        &self,
        vault: &Vault,
        list: Vec<(StoredCredential, Secret<String>)>,
        prepared: crate::providers::registry::PreparedKeys,
    ) {
        *vault.lock() = list;
        if vault.providers.install(prepared) {
            self.rebuild_chain();
        }
    }

    /// A new chain over the same module states, so routes cached to a provider that is gone
    /// (or re-made elsewhere) are dropped.
    fn rebuild_chain(&self) {
        let current = self.chain.load_full();
        match Chain::build(current.states(), &self.deps) {
            Ok(chain) => self.chain.store(Arc::new(chain)),
            // The change stands; a route to a removed provider fails with a clear error.
            Err(e) => tracing::warn!(error = %e, "chain not rebuilt after a provider change"),
        }
    }

    pub(super) async fn rotate_secrets(
        &self,
        actor: &str,
        new_key: Option<Secret<String>>,
    ) -> Result<LedgerEntry, AdminError> {
        let vault = self.vault_or_err()?;
        let (new, bytes) = match (&new_key, &vault.source) {
            (Some(text), _) => {
                let bytes = secrets::key_file::decode_hex_or_base64(text.expose())
                    .filter(|b| b.len() == secrets::master_key::KEY_BYTES)
                    .ok_or_else(|| {
                        invalid("the new master key must be hex or base64 of exactly 32 bytes")
                    })?;
                let key = MasterKey::from_bytes(&bytes)
                    .ok_or_else(|| invalid("the new master key is not usable"))?;
                (key, Secret::new(bytes))
            }
            (None, KeySource::Env) => {
                return Err(invalid(
                    "STOCKYARD_MASTER_KEY is set: give the new key (`stockyard secrets rotate \
                     --new-key-file F`), then set STOCKYARD_MASTER_KEY to it before the next start",
                ));
            }
            (None, KeySource::File(_)) => {
                MasterKey::generate().map_err(|e| invalid(e.to_string()))?
            }
        };
        // Re-seal from the store (the record of truth), opened under the key in force.
        let store = self.deps.store.credentials.clone();
        let stored = tokio::task::spawn_blocking(move || store.credentials())
            .await
            .map_err(|e| invalid(e.to_string()))??;
        let old = vault.master.load_full();
        let mut records = Vec::with_capacity(stored.len());
        for record in &stored {
            let key = open_key(&old, record).map_err(|e| {
                invalid(format!(
                    "{e}; remove it (`stockyard providers remove {}`) before rotating",
                    record.id
                ))
            })?;
            let sealed = new
                .seal(&record.id, key.expose().as_bytes())
                .map_err(|e| invalid(e.to_string()))?;
            records.push((record.id.clone(), sealed));
        }
        let check = new.check_value().map_err(|e| invalid(e.to_string()))?;
        let (modules, mcp_tokens) = self.resealed_module_states(&old, &new)?;
        let key_file = match &vault.source {
            KeySource::File(path) => {
                MasterKey::stage(&vault.db_path, &bytes).map_err(|e| invalid(e.to_string()))?;
                Some(path.display().to_string())
            }
            KeySource::Env => None,
        };
        let draft = LedgerDraft {
            actor: actor.to_string(),
            action: "secrets.rotate".into(),
            target: "master-key".into(),
            details: json!({
                "credentials": records.len(),
                "mcp_tokens": mcp_tokens,
                "key_file": key_file,
                "env": key_file.is_none(),
            }),
        };
        let persisted = self
            .writer
            .admin(
                Some(Persist::Reseal {
                    records,
                    check,
                    modules: modules.clone(),
                }),
                draft,
            )
            .await;
        let entry = match persisted {
            Ok(entry) => entry,
            Err(e) => {
                // Nothing was committed: the staged key must not be taken for the new one.
                let _ = std::fs::remove_file(MasterKey::staged_path_for(&vault.db_path));
                return Err(e.into());
            }
        };
        if key_file.is_some()
            && let Err(e) = MasterKey::promote_staged(&vault.db_path)
        {
            // The records are under the new key, staged beside the database: the next start
            // finishes the rename.
            tracing::error!(error = %e, "master key rotated but its file not yet replaced");
        }
        vault.master.store(Arc::new(new));
        if !modules.is_empty() {
            // The new sealed values open under the new key only: build after the swap.
            let mut states = self.chain.load().states().to_vec();
            for changed in modules {
                if let Some(state) = states.iter_mut().find(|s| s.name == changed.name) {
                    *state = changed;
                }
            }
            match Chain::build(&states, &self.deps) {
                Ok(chain) => self.chain.store(Arc::new(chain)),
                Err(e) => tracing::error!(error = %e, "chain not rebuilt after the rotation"),
            }
        }
        tracing::info!(seq = entry.seq, "master key rotated");
        Ok(entry)
    }

    /// The `mcp` module's state with every server token re-sealed under `new`, if it holds any,
    /// and how many tokens that is. A token that does not open under `old` stops the rotation.
    fn resealed_module_states(
        &self,
        old: &MasterKey,
        new: &MasterKey,
    ) -> Result<(Vec<ModuleState>, usize), AdminError> {
        let chain = self.chain.load();
        let Some(state) = chain.states().iter().find(|s| s.name == "mcp") else {
            return Ok((Vec::new(), 0));
        };
        let mut state = state.clone();
        let mut count = 0;
        let servers = state
            .config
            .get_mut("servers")
            .and_then(|s| s.as_object_mut());
        for (name, server) in servers.into_iter().flatten() {
            let Some(sealed) = server.get("sealed_token").and_then(|t| t.as_str()) else {
                continue;
            };
            let id = crate::modules::mcp::token_id(name);
            let opened = hex::decode(sealed)
                .ok()
                .and_then(|bytes| old.open(&id, &bytes).ok())
                .ok_or_else(|| {
                    invalid(format!(
                        "the token of MCP server {name} does not open; add the server again \
                         (`stockyard mcp servers add {name} ... --token-stdin`) before rotating"
                    ))
                })?;
            let resealed = new.seal(&id, &opened).map_err(|e| invalid(e.to_string()))?;
            server["sealed_token"] = serde_json::Value::String(hex::encode(resealed));
            count += 1;
        }
        Ok(if count > 0 {
            (vec![state], count)
        } else {
            (Vec::new(), 0)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::AdminChange;
    use super::*;

    #[test]
    fn a_credential_change_never_prints_its_key() {
        let change = AdminChange::AddCredential {
            provider: "p".into(),
            kind: "openai".into(),
            base_url: None,
            key: Secret::new("sk-do-not-print".into()),
            label: None,
        };
        let rotate = AdminChange::RotateSecrets {
            new_key: Some(Secret::new("ab".repeat(32))),
        };
        let printed = format!("{change:?} {rotate:?}");
        assert!(!printed.contains("sk-do-not-print"), "{printed}");
        assert!(!printed.contains(&"ab".repeat(32)), "{printed}");
    }
}
