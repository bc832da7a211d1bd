//! Reading what other nodes cached. On a store several nodes share (PostgreSQL) an entry stored
//! by another node is in the store but not in this node's memory, which was loaded at start-up;
//! a miss in memory then asks the store once. A store one node uses (SQLite) holds nothing the
//! memory lacks, so there is no [`SharedReads`] and a miss stays free.
//!
//! The read runs on a blocking thread (the store's client is synchronous) and is bounded by
//! [`TIMEOUT`]: a slow or failed read is a miss, counted and logged, never an error to the client.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::store::{CacheStore, StoreError};

/// The longest a request waits for the store on a miss. An indexed read on a healthy server takes
/// a millisecond or two; past this the store is in trouble and the upstream call is the better bet.
pub const TIMEOUT: Duration = Duration::from_millis(150);

pub struct SharedReads {
    store: Arc<dyn CacheStore>,
    /// Misses in memory the store answered.
    pub hits: AtomicU64,
    /// Reads that failed or timed out (each then a miss).
    pub failures: AtomicU64,
}

impl SharedReads {
    /// Reads of `store` when other nodes write to it; `None` when it is this node's alone.
    pub fn of(store: &Arc<dyn CacheStore>) -> Option<SharedReads> {
        store.is_shared().then(|| SharedReads {
            store: store.clone(),
            hits: AtomicU64::new(0),
            failures: AtomicU64::new(0),
        })
    }

    /// Runs `read` on a blocking thread, waiting at most [`TIMEOUT`]; `None` on failure.
    pub async fn read<T, F>(&self, what: &'static str, read: F) -> Option<T>
    where
        T: Send + 'static,
        F: FnOnce(&dyn CacheStore) -> Result<T, StoreError> + Send + 'static,
    {
        let store = self.store.clone();
        let task = tokio::task::spawn_blocking(move || read(store.as_ref()));
        let failed = match tokio::time::timeout(TIMEOUT, task).await {
            Ok(Ok(Ok(found))) => return Some(found),
            Ok(Ok(Err(e))) => e.to_string(),
            Ok(Err(e)) => e.to_string(),
            // The read goes on on its thread; its answer is dropped.
            Err(_) => format!("no answer within {} ms", TIMEOUT.as_millis()),
        };
        self.failures.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(error = %failed, what, "shared cache read failed; treated as a miss");
        None
    }
}
