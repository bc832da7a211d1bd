//! Stored Responses API answers, for `previous_response_id` and `GET /v1/responses/{id}`.
//! The module keeps recent ones in memory; this is where all of them live.

use serde::Serialize;
use serde_json::Value;

use super::StoreError;

/// A Responses API answer kept for `previous_response_id` and `GET /v1/responses/{id}`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StoredResponse {
    pub id: String,
    pub created_ms: i64,
    /// The Responses object as the client got it.
    pub response: Value,
    /// The conversation up to and including this answer, as canonical chat messages.
    pub history: Value,
    /// Id of the client key that created it (`None` in local mode); only that key may read it.
    pub owner: Option<String>,
}

/// Response lookups. Methods block; async callers use `spawn_blocking`. Ownership is checked by
/// the caller: the store returns the record whoever asks.
pub trait ResponseStore: Send + Sync {
    fn response(&self, id: &str) -> Result<Option<StoredResponse>, StoreError>;

    /// Whether other nodes store answers here too (PostgreSQL): an id unknown here may then be
    /// one another node's writer has not committed yet.
    fn is_shared(&self) -> bool {
        false
    }
}

/// Called only by the writer thread.
pub trait ResponseWrites {
    /// Stores an answer; a second save under the same id replaces the first.
    fn save_response(&mut self, record: &StoredResponse) -> Result<(), StoreError>;
}
