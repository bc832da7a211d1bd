//! The entries of one cache kind in memory: a map for lookups and a recency order for eviction
//! under a byte budget, so a hit never waits on disk. Every change is also queued to the writer,
//! and [`EntryIndex::load`] reads the file once at start-up, so entries survive a restart. On a
//! store other nodes share, [`EntryIndex::get_shared`] reads a miss from the store (`shared.rs`).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use serde_json::Value;

use super::shared::SharedReads;
use crate::store::writer::{CacheOp, Writer};
use crate::store::{CacheEntry, CacheKind, CachePurge, CacheStore};

/// One live entry, shared by the index and any request it answers.
pub struct Stored {
    pub namespace: String,
    pub key: String,
    pub model: String,
    pub created_ms: i64,
    pub expires_ms: i64,
    pub saved_nanos: i64,
    pub answer: Value,
    /// What the entry counts against the budget: its answer's JSON and its names.
    pub bytes: usize,
}

pub struct EntryIndex {
    kind: CacheKind,
    inner: Mutex<Inner>,
    writer: Arc<Writer>,
    max_bytes: AtomicUsize,
    /// A ceiling set from outside the cache module (the retention module's `cache` size); the
    /// budget is the smaller of the two.
    cap_bytes: AtomicUsize,
    /// Set when other nodes write to the store too.
    shared: Option<SharedReads>,
    pub stats: CacheStats,
}

#[derive(Default)]
struct Inner {
    by_key: HashMap<String, Slot>,
    /// Recency tick to entry, oldest first: what eviction takes.
    recency: BTreeMap<u64, String>,
    tick: u64,
    bytes: usize,
}

struct Slot {
    entry: Arc<Stored>,
    tick: u64,
}

#[derive(Default)]
pub struct CacheStats {
    pub hits: AtomicU64,
    pub misses: AtomicU64,
    pub skips: AtomicU64,
    pub stores: AtomicU64,
    pub evictions: AtomicU64,
    pub saved_nanos: AtomicI64,
}

#[derive(Debug, Serialize)]
pub struct IndexSnapshot {
    pub kind: CacheKind,
    pub entries: usize,
    pub bytes: usize,
    pub max_bytes: usize,
    pub hits: u64,
    pub misses: u64,
    pub skips: u64,
    pub stores: u64,
    pub evictions: u64,
    pub saved_nanos: i64,
    /// Misses in memory found in the shared store, and reads of it that failed (`None`: the
    /// store is this node's alone).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shared_hits: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shared_failures: Option<u64>,
}

fn slot_key(namespace: &str, key: &str) -> String {
    format!("{namespace}\u{0}{key}")
}

impl EntryIndex {
    /// The index of `kind`, with the live entries of the file (a read failure starts empty: a
    /// cache is worth less than starting).
    pub fn load(
        kind: CacheKind,
        store: &dyn CacheStore,
        writer: Arc<Writer>,
        max_bytes: usize,
    ) -> EntryIndex {
        let index = EntryIndex {
            kind,
            inner: Mutex::default(),
            writer,
            max_bytes: AtomicUsize::new(max_bytes),
            cap_bytes: AtomicUsize::new(usize::MAX),
            shared: None,
            stats: CacheStats::default(),
        };
        let now = crate::store::now_ms();
        match store.cache_entries(now) {
            Ok(entries) => {
                // What was not loaded has expired: the file need not keep it either.
                index.writer.submit_cache(CacheOp::DropExpired(now));
                let mut inner = index.lock();
                for entry in entries.into_iter().filter(|e| e.kind == kind) {
                    index.insert(&mut inner, stored_from(entry));
                }
                let evicted = index.evict(&mut inner);
                drop(inner);
                index.forget(evicted);
            }
            Err(e) => tracing::warn!(error = %e, kind = kind.as_str(), "cache entries not loaded"),
        }
        index
    }

    /// Reads misses from `store` when other nodes write to it.
    pub fn reading_shared(mut self, store: &Arc<dyn CacheStore>) -> EntryIndex {
        self.shared = SharedReads::of(store);
        self
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn set_max_bytes(&self, max_bytes: usize) {
        self.max_bytes.store(max_bytes, Ordering::Relaxed);
        self.enforce_budget();
    }

    /// Caps the budget at `cap_bytes` whatever the cache module's own setting
    /// (`usize::MAX` lifts the cap).
    pub fn set_cap_bytes(&self, cap_bytes: usize) {
        self.cap_bytes.store(cap_bytes, Ordering::Relaxed);
        self.enforce_budget();
    }

    /// The bytes the entries may take: the module's budget or the cap, whichever is smaller.
    fn budget(&self) -> usize {
        self.max_bytes
            .load(Ordering::Relaxed)
            .min(self.cap_bytes.load(Ordering::Relaxed))
    }

    fn enforce_budget(&self) {
        let evicted = {
            let mut inner = self.lock();
            self.evict(&mut inner)
        };
        self.forget(evicted);
    }

    /// The live entry under `key` in `namespace`, no older than `max_age_ms` if given; an expired
    /// one is removed.
    pub fn get(
        &self,
        namespace: &str,
        key: &str,
        now_ms: i64,
        max_age_ms: Option<i64>,
    ) -> Option<Arc<Stored>> {
        let id = slot_key(namespace, key);
        let mut inner = self.lock();
        let found = inner.by_key.get(&id)?.entry.clone();
        if found.expires_ms <= now_ms {
            let removed = self.remove(&mut inner, &id);
            drop(inner);
            self.forget(removed);
            return None;
        }
        if max_age_ms.is_some_and(|age| now_ms - found.created_ms > age) {
            return None;
        }
        inner.tick += 1;
        let tick = inner.tick;
        if let Some(slot) = inner.by_key.get_mut(&id) {
            let old = std::mem::replace(&mut slot.tick, tick);
            inner.recency.remove(&old);
            inner.recency.insert(tick, id);
        }
        Some(found)
    }

    /// After a miss in memory: the entry another node stored under `key` in `namespace`, read
    /// from the shared store and kept in memory from then on (it is in the store already, so it
    /// is not written again). `None` at once when the store is this node's alone.
    pub async fn get_shared(
        &self,
        namespace: &str,
        key: &str,
        now_ms: i64,
        max_age_ms: Option<i64>,
    ) -> Option<Arc<Stored>> {
        let shared = self.shared.as_ref()?;
        let kind = self.kind;
        let (ns, k) = (namespace.to_string(), key.to_string());
        let found = shared
            .read("entry", move |store| {
                store.cache_entry(kind, &ns, &k, now_ms)
            })
            .await??;
        let stored = stored_from(found);
        if stored.bytes > self.budget() {
            return None;
        }
        let evicted = {
            let mut inner = self.lock();
            self.insert(&mut inner, stored);
            self.evict(&mut inner)
        };
        self.forget(evicted);
        let hit = self.get(namespace, key, now_ms, max_age_ms)?;
        shared.hits.fetch_add(1, Ordering::Relaxed);
        Some(hit)
    }

    /// Drops from memory the entries the store no longer holds (another node purged them);
    /// returns how many went. Nothing is queued: they are gone from the store already.
    pub fn keep_only(
        &self,
        stored: &std::collections::HashSet<(CacheKind, String, String)>,
    ) -> usize {
        let mut inner = self.lock();
        let gone: Vec<String> = inner
            .by_key
            .values()
            .filter(|s| {
                !stored.contains(&(self.kind, s.entry.namespace.clone(), s.entry.key.clone()))
            })
            .map(|s| slot_key(&s.entry.namespace, &s.entry.key))
            .collect();
        for id in &gone {
            let _ = self.remove(&mut inner, id);
        }
        gone.len()
    }

    /// Stores an entry in memory and queues it for the file; evicts the least recently used
    /// entries while the budget is exceeded. An entry larger than the whole budget is not kept.
    pub fn put(&self, entry: CacheEntry) {
        let record = entry.clone();
        let stored = stored_from(entry);
        if stored.bytes > self.budget() {
            return;
        }
        let evicted = {
            let mut inner = self.lock();
            self.insert(&mut inner, stored);
            self.evict(&mut inner)
        };
        self.stats.stores.fetch_add(1, Ordering::Relaxed);
        self.writer.submit_cache(CacheOp::Save(Box::new(record)));
        self.forget(evicted);
    }

    fn insert(&self, inner: &mut Inner, stored: Stored) {
        let id = slot_key(&stored.namespace, &stored.key);
        let _ = self.remove(inner, &id);
        inner.tick += 1;
        let tick = inner.tick;
        inner.bytes += stored.bytes;
        inner.recency.insert(tick, id.clone());
        inner.by_key.insert(
            id,
            Slot {
                entry: Arc::new(stored),
                tick,
            },
        );
    }

    fn remove(&self, inner: &mut Inner, id: &str) -> Option<Arc<Stored>> {
        let slot = inner.by_key.remove(id)?;
        inner.recency.remove(&slot.tick);
        inner.bytes = inner.bytes.saturating_sub(slot.entry.bytes);
        Some(slot.entry)
    }

    /// Takes the least recently used entries out until the budget holds.
    fn evict(&self, inner: &mut Inner) -> Vec<Arc<Stored>> {
        let max = self.budget();
        let mut evicted = Vec::new();
        while inner.bytes > max {
            let Some((_, id)) = inner.recency.pop_first() else {
                break;
            };
            if let Some(slot) = inner.by_key.remove(&id) {
                inner.bytes = inner.bytes.saturating_sub(slot.entry.bytes);
                evicted.push(slot.entry);
            }
        }
        self.stats
            .evictions
            .fetch_add(evicted.len() as u64, Ordering::Relaxed);
        evicted
    }

    /// Queues the removal of entries already taken out of memory.
    fn forget(&self, removed: impl IntoIterator<Item = Arc<Stored>>) {
        let keys: Vec<_> = removed
            .into_iter()
            .map(|e| (self.kind, e.namespace.clone(), e.key.clone()))
            .collect();
        if !keys.is_empty() {
            self.writer.submit_cache(CacheOp::Delete(keys));
        }
    }

    /// Removes what `purge` matches from memory (the caller queues the file's purge); returns how
    /// many entries went.
    pub fn purge(&self, purge: &CachePurge) -> usize {
        if purge.kind.is_some_and(|k| k != self.kind) {
            return 0;
        }
        let mut inner = self.lock();
        let ids: Vec<String> = inner
            .by_key
            .iter()
            .filter(|(_, s)| purge.matches(self.kind, &s.entry.namespace, &s.entry.model))
            .map(|(id, _)| id.clone())
            .collect();
        for id in &ids {
            let _ = self.remove(&mut inner, id);
        }
        ids.len()
    }

    pub fn snapshot(&self) -> IndexSnapshot {
        let inner = self.lock();
        IndexSnapshot {
            kind: self.kind,
            entries: inner.by_key.len(),
            bytes: inner.bytes,
            max_bytes: self.max_bytes.load(Ordering::Relaxed),
            hits: self.stats.hits.load(Ordering::Relaxed),
            misses: self.stats.misses.load(Ordering::Relaxed),
            skips: self.stats.skips.load(Ordering::Relaxed),
            stores: self.stats.stores.load(Ordering::Relaxed),
            evictions: self.stats.evictions.load(Ordering::Relaxed),
            saved_nanos: self.stats.saved_nanos.load(Ordering::Relaxed),
            shared_hits: self.shared.as_ref().map(|s| s.hits.load(Ordering::Relaxed)),
            shared_failures: self
                .shared
                .as_ref()
                .map(|s| s.failures.load(Ordering::Relaxed)),
        }
    }
}

fn stored_from(entry: CacheEntry) -> Stored {
    let bytes = entry.answer.to_string().len() + entry.namespace.len() + entry.key.len();
    Stored {
        namespace: entry.namespace,
        key: entry.key,
        model: entry.model,
        created_ms: entry.created_ms,
        expires_ms: entry.expires_ms,
        saved_nanos: entry.saved_nanos,
        answer: entry.answer,
        bytes,
    }
}
