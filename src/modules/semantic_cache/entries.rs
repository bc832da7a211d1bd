//! The semantic cache's entries: answers by id, their vectors by partition ([`Vectors`]), and
//! the order they came in (the oldest go first past `max_entries`). Loaded from the file once at
//! start-up; every change is queued to the writer. On a store other nodes share, a miss reads the
//! partition's entries stored since this node last looked ([`SemanticEntries::sync`]).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use serde_json::{Value, json};

use super::vectors::{Vectors, normalise};
use crate::modules::cache::index::CacheStats;
use crate::modules::cache::shared::SharedReads;
use crate::store::writer::{CacheOp, Writer};
use crate::store::{CacheEntry, CacheKind, CachePurge, CacheStore};

pub struct SemStored {
    pub namespace: String,
    pub key: String,
    pub model: String,
    pub partition: String,
    pub created_ms: i64,
    pub expires_ms: i64,
    pub saved_nanos: i64,
    pub answer: Value,
    bytes: usize,
}

pub struct SemanticEntries {
    inner: RwLock<Inner>,
    writer: Arc<Writer>,
    max_entries: AtomicUsize,
    /// Set when other nodes write to the store too.
    shared: Option<SharedReads>,
    /// When this node loaded the store, and when it last read each partition from it.
    loaded_ms: i64,
    synced: Mutex<HashMap<String, i64>>,
    pub stats: CacheStats,
}

/// How far back a partition read looks before its last one: another node's writer commits an
/// entry a batch (about 50 ms, longer while its database is away) after stamping it, so an entry
/// can become visible older than the last read. Rows already held are skipped.
const COMMIT_SLACK_MS: i64 = 10_000;

#[derive(Default)]
struct Inner {
    by_id: HashMap<String, Arc<SemStored>>,
    order: VecDeque<String>,
    vectors: Vectors,
    bytes: usize,
}

fn id_of(namespace: &str, key: &str) -> String {
    format!("{namespace}\u{0}{key}")
}

impl SemanticEntries {
    pub fn load(
        store: &dyn CacheStore,
        writer: Arc<Writer>,
        max_entries: usize,
    ) -> SemanticEntries {
        let entries = SemanticEntries {
            inner: RwLock::default(),
            writer,
            max_entries: AtomicUsize::new(max_entries),
            shared: None,
            loaded_ms: crate::store::now_ms(),
            synced: Mutex::default(),
            stats: CacheStats::default(),
        };
        match store.cache_entries(entries.loaded_ms) {
            Ok(rows) => {
                let mut inner = entries.write();
                for row in rows.into_iter().filter(|e| e.kind == CacheKind::Semantic) {
                    Self::insert(&mut inner, row);
                }
                let evicted = entries.evict(&mut inner);
                drop(inner);
                entries.forget(evicted);
            }
            Err(e) => tracing::warn!(error = %e, "semantic cache entries not loaded"),
        }
        entries
    }

    /// Reads misses from `store` when other nodes write to it.
    pub fn reading_shared(mut self, store: &Arc<dyn CacheStore>) -> SemanticEntries {
        self.shared = SharedReads::of(store);
        self
    }

    /// After a miss: adds the entries of `partition` other nodes stored since this node last
    /// read it; `true` when any was new. `false` at once when the store is this node's alone.
    pub async fn sync(&self, namespace: &str, partition: &str, now_ms: i64) -> bool {
        let Some(shared) = &self.shared else {
            return false;
        };
        let since = self
            .synced
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(partition)
            .copied()
            .unwrap_or(self.loaded_ms)
            - COMMIT_SLACK_MS;
        let (ns, part) = (namespace.to_string(), partition.to_string());
        let Some(rows) = shared
            .read("semantic partition", move |store| {
                store.semantic_since(&ns, &part, since, now_ms)
            })
            .await
        else {
            return false;
        };
        self.synced
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(partition.to_string(), now_ms);
        let (added, evicted) = {
            let mut inner = self.write();
            let mut added = 0;
            for row in rows {
                let held = inner
                    .by_id
                    .get(&id_of(&row.namespace, &row.key))
                    .is_some_and(|e| e.created_ms >= row.created_ms);
                // Already in the store: kept in memory only, not written again.
                if !held && Self::insert(&mut inner, row) {
                    added += 1;
                }
            }
            (added, self.evict(&mut inner))
        };
        self.forget(evicted);
        shared.hits.fetch_add(added, Ordering::Relaxed);
        added > 0
    }

    /// Drops from memory the entries the store no longer holds (another node purged them), and
    /// reads every partition afresh at its next miss; returns how many went.
    pub fn keep_only(&self, stored: &HashSet<(CacheKind, String, String)>) -> usize {
        let mut inner = self.write();
        let gone: Vec<String> = inner
            .by_id
            .iter()
            .filter(|(_, e)| {
                !stored.contains(&(CacheKind::Semantic, e.namespace.clone(), e.key.clone()))
            })
            .map(|(id, _)| id.clone())
            .collect();
        for id in &gone {
            Self::remove(&mut inner, id);
        }
        drop(inner);
        self.synced
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        gone.len()
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|p| p.into_inner())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|p| p.into_inner())
    }

    pub fn set_max_entries(&self, max: usize) {
        self.max_entries.store(max, Ordering::Relaxed);
        let evicted = {
            let mut inner = self.write();
            self.evict(&mut inner)
        };
        self.forget(evicted);
    }

    /// Adds an entry (its vector must be set); `false` if it has none or of the wrong size.
    fn insert(inner: &mut Inner, entry: CacheEntry) -> bool {
        let Some(mut vector) = entry.embedding else {
            return false;
        };
        if !normalise(&mut vector) {
            return false;
        }
        let id = id_of(&entry.namespace, &entry.key);
        Self::remove(inner, &id);
        if !inner.vectors.push(&entry.partition, id.clone(), &vector) {
            return false;
        }
        let bytes = entry.answer.to_string().len() + vector.len() * 5 + id.len();
        inner.bytes += bytes;
        inner.order.push_back(id.clone());
        inner.by_id.insert(
            id,
            Arc::new(SemStored {
                namespace: entry.namespace,
                key: entry.key,
                model: entry.model,
                partition: entry.partition,
                created_ms: entry.created_ms,
                expires_ms: entry.expires_ms,
                saved_nanos: entry.saved_nanos,
                answer: entry.answer,
                bytes,
            }),
        );
        true
    }

    fn remove(inner: &mut Inner, id: &str) -> Option<Arc<SemStored>> {
        let gone = inner.by_id.remove(id)?;
        inner.vectors.remove(&gone.partition, id);
        inner.bytes = inner.bytes.saturating_sub(gone.bytes);
        // `order` keeps the id; eviction skips ids no longer present.
        Some(gone)
    }

    fn evict(&self, inner: &mut Inner) -> Vec<Arc<SemStored>> {
        let max = self.max_entries.load(Ordering::Relaxed);
        let mut evicted = Vec::new();
        while inner.by_id.len() > max {
            let Some(id) = inner.order.pop_front() else {
                break;
            };
            if let Some(gone) = Self::remove(inner, &id) {
                evicted.push(gone);
            }
        }
        self.stats
            .evictions
            .fetch_add(evicted.len() as u64, Ordering::Relaxed);
        evicted
    }

    fn forget(&self, gone: Vec<Arc<SemStored>>) {
        let keys: Vec<_> = gone
            .iter()
            .map(|e| (CacheKind::Semantic, e.namespace.clone(), e.key.clone()))
            .collect();
        if !keys.is_empty() {
            self.writer.submit_cache(CacheOp::Delete(keys));
        }
    }

    /// The nearest live entry of `partition` to the unit vector `query`, with its similarity,
    /// whatever the similarity (the caller holds it to its threshold).
    pub fn nearest(
        &self,
        partition: &str,
        query: &[f32],
        now_ms: i64,
    ) -> Option<(Arc<SemStored>, f32)> {
        let found = {
            let inner = self.read();
            let nearest = inner.vectors.nearest(partition, query)?;
            let entry = inner.by_id.get(&nearest.key)?.clone();
            (entry, nearest.similarity)
        };
        if found.0.expires_ms <= now_ms {
            let gone = {
                let mut inner = self.write();
                Self::remove(&mut inner, &id_of(&found.0.namespace, &found.0.key))
            };
            self.forget(gone.into_iter().collect());
            return None;
        }
        Some(found)
    }

    pub fn put(&self, entry: CacheEntry) {
        let record = entry.clone();
        let evicted = {
            let mut inner = self.write();
            if !Self::insert(&mut inner, entry) {
                return;
            }
            self.evict(&mut inner)
        };
        self.stats.stores.fetch_add(1, Ordering::Relaxed);
        self.writer.submit_cache(CacheOp::Save(Box::new(record)));
        self.forget(evicted);
    }

    pub fn purge(&self, purge: &CachePurge) -> usize {
        if purge.kind.is_some_and(|k| k != CacheKind::Semantic) {
            return 0;
        }
        let mut inner = self.write();
        let ids: Vec<String> = inner
            .by_id
            .iter()
            .filter(|(_, e)| purge.matches(CacheKind::Semantic, &e.namespace, &e.model))
            .map(|(id, _)| id.clone())
            .collect();
        for id in &ids {
            Self::remove(&mut inner, id);
        }
        ids.len()
    }

    pub fn snapshot(&self) -> Value {
        let inner = self.read();
        let s = &self.stats;
        let mut out = json!({
            "kind": "semantic",
            "entries": inner.by_id.len(),
            "partitions": inner.vectors.partitions.len(),
            "bytes": inner.bytes,
            "max_entries": self.max_entries.load(Ordering::Relaxed),
            "hits": s.hits.load(Ordering::Relaxed),
            "misses": s.misses.load(Ordering::Relaxed),
            "skips": s.skips.load(Ordering::Relaxed),
            "stores": s.stores.load(Ordering::Relaxed),
            "evictions": s.evictions.load(Ordering::Relaxed),
            "saved_nanos": s.saved_nanos.load(Ordering::Relaxed),
        });
        // Only on a shared store, as the exact cache's: entries read from it, failed reads.
        if let Some(shared) = &self.shared {
            out["shared_added"] = json!(shared.hits.load(Ordering::Relaxed));
            out["shared_failures"] = json!(shared.failures.load(Ordering::Relaxed));
        }
        out
    }
}
