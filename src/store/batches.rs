//! Files and batches held by a provider on a client's behalf (`modules/batches`): which provider
//! and credential hold each object, who created it, and whether a batch's output was priced.
//! The module keeps recent records in memory (a create is followed at once by a retrieve, before
//! the writer commits); this is where all of them live.

use serde::Serialize;

use super::StoreError;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct BatchObject {
    /// The provider's id (`file-...`, `batch_...`, `msgbatch_...`).
    pub id: String,
    /// `file`, `batch` or `message_batch`.
    pub kind: String,
    pub provider: String,
    /// The stored credential's id, or `config` for the configured key.
    pub credential: Option<String>,
    /// The creator: only this key (or its team) sees the object.
    pub key_id: Option<String>,
    pub team_id: Option<String>,
    pub created_ms: i64,
    /// For a batch's output or error file: that batch.
    pub batch_id: Option<String>,
    /// When the batch's output was priced (never twice).
    pub costed_ms: Option<i64>,
    pub deleted: bool,
}

/// Reads. Methods block; async callers use `spawn_blocking`. Ownership is checked by the caller.
pub trait BatchStore: Send + Sync {
    fn batch_object(&self, id: &str) -> Result<Option<BatchObject>, StoreError>;
}

/// Called only by the writer thread.
pub trait BatchWrites {
    /// Saves a record; a second save of the same id keeps the first creator and the earliest
    /// `costed_ms`, and a deletion sticks.
    fn save_batch_object(&mut self, record: &BatchObject) -> Result<(), StoreError>;
}
