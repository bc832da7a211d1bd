//! Stored Responses answers: recent ones in memory (most recent `capacity`), all of them in the
//! database through the writer. A lookup that misses the memory (after a restart, or an old id)
//! reads the database on a blocking thread. On a store several nodes share, an id another node
//! handed out may not be committed yet (its writer commits in batches, about every 50 ms), so a
//! miss there is read again a few times, for at most [`SHARED_RETRY`] in all.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::store::writer::Writer;
use crate::store::{self, StoredResponse};

/// How long a miss on a shared store keeps reading: a few of the other writer's batch intervals.
pub const SHARED_RETRY: Duration = Duration::from_millis(400);
/// The pause between those reads.
const RETRY_PAUSE: Duration = Duration::from_millis(40);

pub struct ResponseStore {
    recent: Mutex<Recent>,
    capacity: AtomicUsize,
    writer: Arc<Writer>,
    /// Where every answer lives; only read on a miss in `recent`.
    stored: Arc<dyn store::ResponseStore>,
}

#[derive(Default)]
struct Recent {
    by_id: HashMap<String, Arc<StoredResponse>>,
    order: VecDeque<String>,
}

impl ResponseStore {
    pub fn new(writer: Arc<Writer>, stored: Arc<dyn store::ResponseStore>) -> ResponseStore {
        ResponseStore {
            recent: Mutex::default(),
            capacity: AtomicUsize::new(10_000),
            writer,
            stored,
        }
    }

    pub fn set_capacity(&self, capacity: usize) {
        self.capacity.store(capacity.max(1), Ordering::Relaxed);
    }

    fn remember(&self, record: Arc<StoredResponse>) {
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        if recent
            .by_id
            .insert(record.id.clone(), record.clone())
            .is_none()
        {
            recent.order.push_back(record.id.clone());
        }
        let capacity = self.capacity.load(Ordering::Relaxed);
        while recent.order.len() > capacity {
            if let Some(oldest) = recent.order.pop_front() {
                recent.by_id.remove(&oldest);
            }
        }
    }

    pub async fn put(&self, record: StoredResponse) {
        self.remember(Arc::new(record.clone()));
        self.writer.submit_response(record).await;
    }

    /// The answer stored under `id` if the client key `owner` (`None` in local mode) created it;
    /// `None` when it is unknown or another key's, which callers must not tell apart.
    pub async fn get_owned(&self, id: &str, owner: Option<&str>) -> Option<Arc<StoredResponse>> {
        self.get(id)
            .await
            .filter(|stored| stored.owner.as_deref() == owner)
    }

    async fn get(&self, id: &str) -> Option<Arc<StoredResponse>> {
        if let Some(found) = self
            .recent
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .by_id
            .get(id)
        {
            return Some(found.clone());
        }
        let deadline = Instant::now() + SHARED_RETRY;
        let loaded = loop {
            match self.read(id).await {
                Some(found) => break found,
                None if self.stored.is_shared() && Instant::now() + RETRY_PAUSE < deadline => {
                    tokio::time::sleep(RETRY_PAUSE).await;
                }
                None => return None,
            }
        };
        let loaded = Arc::new(loaded);
        self.remember(loaded.clone());
        Some(loaded)
    }

    /// One read of the database; an error is logged and counts as not found.
    async fn read(&self, id: &str) -> Option<StoredResponse> {
        let stored = self.stored.clone();
        let key = id.to_string();
        match tokio::task::spawn_blocking(move || stored.response(&key)).await {
            Ok(Ok(found)) => found,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "stored response not read");
                None
            }
            Err(_) => None,
        }
    }
}
