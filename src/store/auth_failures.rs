//! Refused authentications, counted per minute, source and reason, so a flood shows in reports
//! without a row per refusal. Counts for the same bucket add up (merge), whoever submits them.

use serde::Serialize;

use super::StoreError;

/// Refused authentications of one minute from one source for one reason.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AuthFailureCount {
    pub minute_ms: i64,
    pub source: String,
    pub reason: String,
    pub count: i64,
}

/// Auth-failure reads. Methods block; async callers use `spawn_blocking`.
pub trait AuthFailureStore: Send + Sync {
    /// Counts from minutes starting at or after `since_ms`, by minute, source, reason.
    fn auth_failures(&self, since_ms: i64) -> Result<Vec<AuthFailureCount>, StoreError>;
}

/// Called only by the writer thread.
pub trait AuthFailureWrites {
    /// Adds `counts` to their buckets (a new bucket starts at the count given).
    fn add_auth_failures(&mut self, counts: &[AuthFailureCount]) -> Result<(), StoreError>;
}
