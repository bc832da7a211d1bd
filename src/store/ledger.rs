//! The audit ledger: administrative changes, each persisted in the same transaction as its
//! hash-chained, MACed entry (see `crate::ledger` for sealing and verification). Only the writer
//! thread appends, so entries are numbered by one hand.

use super::StoreError;
use super::breakers::BreakerRecord;
use super::credentials::StoredCredential;
use super::keys::KeyWrite;
use super::modules::ModuleState;
use super::prompts::PromptWrite;
use crate::ledger::{Head, LedgerDraft, LedgerEntry};

/// What an administrative change persists, in the same transaction as its ledger entry.
#[derive(Clone, Debug)]
pub enum Persist {
    ModuleState(ModuleState),
    /// A whole price file (`stockyard prices update`), replacing the previous one.
    Prices {
        body: String,
    },
    /// A breaker forced open or reset by an operator.
    Breaker(BreakerRecord),
    /// Keys, teams and admin keys created, changed, revoked or deleted, in order.
    Keys(Vec<KeyWrite>),
    /// A provider credential, sealed; `check` is the master key's check value, stored when the
    /// store holds none yet (the first seal).
    AddCredential {
        record: Box<StoredCredential>,
        check: Vec<u8>,
    },
    /// Provider credentials removed, by id; every id must exist.
    RemoveCredentials {
        ids: Vec<String>,
    },
    /// Every credential re-sealed under a new master key, and that key's check value; the ids
    /// must be exactly the stored ones, so no record is left under the old key.
    Reseal {
        records: Vec<(String, Vec<u8>)>,
        check: Vec<u8>,
        /// Module states whose configs hold values sealed under the master key (MCP servers'
        /// tokens), re-sealed in the same transaction.
        modules: Vec<ModuleState>,
    },
    /// A prompt template version put, or a rollback.
    Prompt(PromptWrite),
}

/// Ledger reads. Methods block; async callers use `spawn_blocking`.
pub trait LedgerStore: Send + Sync {
    /// Entries in stored order (by sequence number).
    fn ledger(&self) -> Result<Vec<LedgerEntry>, StoreError>;
}

/// Called only by the writer thread.
pub trait LedgerWrites {
    /// Persists `change` and appends the ledger entry for it in one transaction. Refuses
    /// ([`StoreError::LedgerBehindHead`]) when the stored ledger ends before the published head.
    fn apply_admin(
        &mut self,
        change: Option<&Persist>,
        draft: &LedgerDraft,
        ts_ms: i64,
    ) -> Result<LedgerEntry, StoreError>;
    /// Publishes the ledger's newest entry outside the store (after the commit that wrote it), so
    /// a later cut of the tail shows.
    fn publish_head(&mut self, head: &Head) -> Result<(), StoreError>;
}
