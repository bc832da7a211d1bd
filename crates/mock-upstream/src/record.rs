//! What the mock received: one [`Recorded`] per request, in arrival order, so tests can check the
//! request the proxy sent upstream and how many it sent. The server records every request unless
//! recording was turned off (the binary and long benchmarks do, so memory stays flat).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

use bytes::Bytes;

/// One request as the mock received it.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    /// The path including the query string, e.g. `/v1/chat/completions?x=1`.
    pub path: String,
    /// Header names are lowercase (as hyper gives them); values that aren't UTF-8 are converted
    /// lossily.
    pub headers: Vec<(String, String)>,
    /// The body parsed as JSON, or `Null` if it isn't JSON (or is empty).
    pub body: serde_json::Value,
    pub raw_body: Bytes,
}

impl Recorded {
    /// The first value of header `name` (case-insensitive), if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug)]
pub(crate) struct Recorder {
    enabled: AtomicBool,
    count: AtomicUsize,
    requests: Mutex<Vec<Recorded>>,
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder {
            enabled: AtomicBool::new(true),
            count: AtomicUsize::new(0),
            requests: Mutex::new(Vec::new()),
        }
    }
}

impl Recorder {
    /// Counts a request as received and returns its number, from 1. The count is kept even
    /// when recording is off.
    pub(crate) fn count_one(&self) -> usize {
        self.count.fetch_add(1, Ordering::Relaxed) + 1
    }

    pub(crate) fn count(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }

    pub(crate) fn enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    pub(crate) fn set_enabled(&self, on: bool) {
        self.enabled.store(on, Ordering::Relaxed);
    }

    pub(crate) fn push(&self, r: Recorded) {
        self.lock().push(r);
    }

    pub(crate) fn all(&self) -> Vec<Recorded> {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Recorded>> {
        // The only mutation is `push`, which can't leave the vector half-updated.
        self.requests.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
