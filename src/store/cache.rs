//! Cache entries: the exact and semantic response caches and the embeddings cache. The modules
//! keep every live entry in memory (loaded once at start-up); this is where they survive a
//! restart. Writes go through the writer like every other record.

use serde::Serialize;
use serde_json::Value;

use super::StoreError;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CacheKind {
    Exact,
    Semantic,
    Embedding,
}

impl CacheKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CacheKind::Exact => "exact",
            CacheKind::Semantic => "semantic",
            CacheKind::Embedding => "embedding",
        }
    }

    pub fn parse(s: &str) -> Option<CacheKind> {
        match s {
            "exact" => Some(CacheKind::Exact),
            "semantic" => Some(CacheKind::Semantic),
            "embedding" => Some(CacheKind::Embedding),
            _ => None,
        }
    }
}

/// One cached answer.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CacheEntry {
    pub kind: CacheKind,
    pub namespace: String,
    /// Hex SHA-256 of the normalised request (semantic: of the entry's own request).
    pub key: String,
    /// The model after alias resolution.
    pub model: String,
    /// Semantic entries: what must be equal for two requests to be compared at all.
    pub partition: String,
    pub created_ms: i64,
    pub expires_ms: i64,
    /// What the upstream call cost when it was made: what each hit saves.
    pub saved_nanos: i64,
    /// The canonical answer (a `chat.completion`, or one embedding vector as a JSON array).
    pub answer: Value,
    /// Semantic entries: the request's embedding, unit length.
    #[serde(skip)]
    pub embedding: Option<Vec<f32>>,
}

/// Which entries a purge removes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CachePurge {
    pub kind: Option<CacheKind>,
    pub model: Option<String>,
    /// A namespace exactly, or every namespace under it (`key:abc` also takes `key:abc/sub`).
    pub namespace: Option<String>,
}

impl CachePurge {
    pub fn matches(&self, kind: CacheKind, namespace: &str, model: &str) -> bool {
        self.kind.is_none_or(|k| k == kind)
            && self.model.as_deref().is_none_or(|m| m == model)
            && self.namespace.as_deref().is_none_or(|n| {
                namespace == n
                    || namespace
                        .strip_prefix(n)
                        .is_some_and(|rest| rest.starts_with('/'))
            })
    }
}

/// Loads entries at start-up and, on a store several nodes share, reads what another node stored
/// after this one loaded. Blocks: async callers use `spawn_blocking`.
pub trait CacheStore: Send + Sync {
    /// Every entry that has not expired at `now_ms`, oldest first.
    fn cache_entries(&self, now_ms: i64) -> Result<Vec<CacheEntry>, StoreError>;

    /// Whether other nodes write entries here too (PostgreSQL). Only then is a miss in memory
    /// worth a read: a store one node uses holds nothing its memory lacks.
    fn is_shared(&self) -> bool {
        false
    }

    /// The entry under `kind`, `namespace` and `key` if it is live at `now_ms`. Only asked of a
    /// shared store; a store one node uses answers `None`.
    fn cache_entry(
        &self,
        _kind: CacheKind,
        _namespace: &str,
        _key: &str,
        _now_ms: i64,
    ) -> Result<Option<CacheEntry>, StoreError> {
        Ok(None)
    }

    /// The semantic entries of `namespace` and `partition` created after `since_ms` and live at
    /// `now_ms`, oldest first. Only asked of a shared store.
    fn semantic_since(
        &self,
        _namespace: &str,
        _partition: &str,
        _since_ms: i64,
        _now_ms: i64,
    ) -> Result<Vec<CacheEntry>, StoreError> {
        Ok(Vec::new())
    }

    /// The kind, namespace and key of every entry stored: what another node's purge left.
    fn cache_keys(&self) -> Result<Vec<(CacheKind, String, String)>, StoreError> {
        Ok(Vec::new())
    }
}

/// Called only by the writer thread.
pub trait CacheWrites {
    /// Stores an entry; one under the same kind, namespace and key is replaced.
    fn save_cache_entry(&mut self, entry: &CacheEntry) -> Result<(), StoreError>;
    /// Removes entries by kind, namespace and key (evicted or expired in memory).
    fn delete_cache_entries(
        &mut self,
        keys: &[(CacheKind, String, String)],
    ) -> Result<(), StoreError>;
    /// Removes every entry expired at `now_ms`; returns how many.
    fn drop_expired_cache(&mut self, now_ms: i64) -> Result<u64, StoreError>;
    /// Removes every entry `purge` matches; returns how many.
    fn purge_cache(&mut self, purge: &CachePurge) -> Result<u64, StoreError>;
}
