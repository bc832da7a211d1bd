//! Storage, by concern, behind traits so a PostgreSQL backend can satisfy the same tests.
//!
//! - [`WriteBackend`]: what the one writer thread ([`writer::Writer`]) calls, in batches.
//! - [`ReadStore`]: queries for the CLI, the admin API and start-up; on connections of its own.
//! - [`HotCounters`]: in-memory state that later features (limits, breakers, budgets) keep on the
//!   request path, behind a trait so a shared backend can replace it.
//!
//! The request path only ever calls [`writer::Writer::submit_trace`], which never waits on disk.

pub mod hot;
pub mod sqlite;
pub mod writer;

use serde::Serialize;
use serde_json::Value;
use thiserror::Error;

pub use hot::{
    BreakerBook, BreakerPhase, BreakerState, HotCounters, MemoryBreakers, MemoryCounters,
};

use crate::cost::Tokens;
use crate::ledger::{Head, LedgerDraft, LedgerEntry};

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error(
        "database schema version {found} is newer than this build supports ({supported}); \
         run a newer stockyard, the file was not touched"
    )]
    NewerSchema { found: i64, supported: i64 },
    #[error("cannot open database {path}: {source}")]
    Open {
        path: String,
        source: rusqlite::Error,
    },
    #[error("database {path} does not exist (nothing was created); check --db or STOCKYARD_DB")]
    Missing { path: String },
    #[error(
        "database {path} is at schema version {found}, older than this build's ({supported}); \
         this command only reads, so it did not migrate the file: run `stockyard serve` once \
         (it migrates at start-up), then retry"
    )]
    OlderSchema {
        path: String,
        found: i64,
        supported: i64,
    },
    #[error("ledger head: {0}")]
    Head(String),
    #[error(
        "the ledger ends at entry {newest} but its published head is entry {published}: entries \
         were cut; refusing to append over them (run `stockyard audit verify`)"
    )]
    LedgerBehindHead { newest: i64, published: i64 },
    #[error("the writer thread has stopped")]
    WriterGone,
    #[error("corrupt row in {table}: {detail}")]
    Corrupt { table: &'static str, detail: String },
}

/// One row per proxied request.
#[derive(Clone, Debug, Default, Serialize)]
pub struct TraceRecord {
    /// UUIDv7: sorts by time.
    pub id: String,
    pub ts_ms: i64,
    pub endpoint: String,
    pub requested_model: String,
    pub provider: Option<String>,
    pub upstream_model: Option<String>,
    pub status: u16,
    /// `None` on success; otherwise what failed (`upstream_timeout`, `cancelled`, ...).
    pub error_class: Option<String>,
    pub stream: bool,
    pub tokens: Tokens,
    /// Tokens were counted by Stockyard's tokenizer because the upstream reported none.
    pub usage_estimated: bool,
    pub cost_nanos: i64,
    /// False when the model has no price (its cost is recorded as 0).
    pub price_known: bool,
    pub latency_us: i64,
    pub ttft_us: Option<i64>,
    pub upstream_us: Option<i64>,
    pub overhead_us: i64,
    pub bytes_in: i64,
    pub bytes_out: i64,
    pub user: Option<String>,
    /// The deployment that answered (or was tried last), `group/provider/model`.
    pub deployment: Option<String>,
    /// Upstream calls made (retries and fallbacks included).
    pub attempts: u32,
    /// A/B variant under a tag-split group.
    pub variant: Option<String>,
    pub request_id: String,
    /// Short, non-reversible id of the client key (a hash prefix), never the key.
    pub key_id: Option<String>,
    pub request_body: Option<String>,
    pub response_body: Option<String>,
    /// The module that answered in place of the upstream, if one did.
    pub answered_by: Option<String>,
    /// For a model call a module made itself: that module.
    pub internal_caller: Option<String>,
}

/// A module's stored state; `scope` is `global` for now (per key/team/model later).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ModuleState {
    pub name: String,
    pub enabled: bool,
    pub config: Value,
    pub scope: String,
}

/// A breaker's phase as stored, so a restart inside a cool-down keeps the deployment closed off.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BreakerRecord {
    pub deployment: String,
    pub phase: BreakerPhase,
    pub reason: String,
    pub updated_ms: i64,
}

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

/// Refused authentications of one minute from one source for one reason.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AuthFailureCount {
    pub minute_ms: i64,
    pub source: String,
    pub reason: String,
    pub count: i64,
}

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
}

#[derive(Clone, Debug, Default)]
pub struct TraceQuery {
    pub limit: usize,
    pub model: Option<String>,
    pub status: Option<u16>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpendBy {
    Model,
    Provider,
    Day,
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct SpendRow {
    pub key: String,
    pub requests: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub cost_nanos: i64,
}

/// Called only by the writer thread, so implementations need no locking of their own.
pub trait WriteBackend: Send + 'static {
    fn append_traces(&mut self, traces: &[TraceRecord]) -> Result<(), StoreError>;
    /// Persists `change` and appends the ledger entry for it in one transaction.
    fn apply_admin(
        &mut self,
        change: Option<&Persist>,
        draft: &LedgerDraft,
        ts_ms: i64,
    ) -> Result<LedgerEntry, StoreError>;
    /// Stores a Responses API answer and its conversation.
    fn save_response(&mut self, record: &StoredResponse) -> Result<(), StoreError>;
    /// Stores a breaker's phase (newest wins).
    fn save_breaker(&mut self, record: &BreakerRecord) -> Result<(), StoreError>;
    /// Adds refused-authentication counts to their minute's buckets.
    fn add_auth_failures(&mut self, counts: &[AuthFailureCount]) -> Result<(), StoreError>;
    /// Publishes the ledger's newest entry outside the store (after the commit that wrote it), so
    /// a later cut of the tail shows.
    fn publish_head(&mut self, head: &Head) -> Result<(), StoreError>;
    /// Makes everything durable in the main file (the WAL checkpoint on SQLite).
    fn checkpoint(&mut self) -> Result<(), StoreError>;
}

/// Read-side queries. Methods block; async callers use `spawn_blocking`.
pub trait ReadStore: Send + Sync {
    fn ping(&self) -> Result<(), StoreError>;
    fn schema_version(&self) -> Result<i64, StoreError>;
    fn module_states(&self) -> Result<Vec<ModuleState>, StoreError>;
    fn stored_prices(&self) -> Result<Option<String>, StoreError>;
    fn traces(&self, query: &TraceQuery) -> Result<Vec<TraceRecord>, StoreError>;
    fn trace_count(&self) -> Result<i64, StoreError>;
    fn spend(&self, by: SpendBy, since_ms: i64) -> Result<Vec<SpendRow>, StoreError>;
    fn breakers(&self) -> Result<Vec<BreakerRecord>, StoreError>;
    fn response(&self, id: &str) -> Result<Option<StoredResponse>, StoreError>;
    /// Refused-authentication counts from minutes starting at or after `since_ms`.
    fn auth_failures(&self, since_ms: i64) -> Result<Vec<AuthFailureCount>, StoreError>;
    /// Entries in stored order (by sequence number).
    fn ledger(&self) -> Result<Vec<LedgerEntry>, StoreError>;
}

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = sqlite::SCHEMA_VERSION;

/// What a writing process gets: the writer thread's backend and a reader.
pub type Opened = (Box<dyn WriteBackend>, std::sync::Arc<dyn ReadStore>);

/// Opens (creating and migrating if needed) the database for a process that writes; the backend
/// seals ledger entries under `key`.
pub fn open(path: &std::path::Path, key: crate::ledger::LedgerKey) -> Result<Opened, StoreError> {
    let (writer, reader) = sqlite::SqliteStore::open(path, key)?;
    Ok((Box::new(writer), std::sync::Arc::new(reader)))
}

/// Opens an existing database for commands that only read: never creates, writes or migrates.
pub fn open_read_only(path: &std::path::Path) -> Result<Box<dyn ReadStore>, StoreError> {
    Ok(Box::new(sqlite::SqliteStore::open_read_only(path)?))
}

/// The schema version of an existing database file, read without changing it.
pub fn file_schema_version(path: &std::path::Path) -> Result<i64, StoreError> {
    sqlite::SqliteStore::file_schema_version(path)
}

/// A consistent copy of the database at `out`, safe while a server writes it.
pub fn backup_into(path: &std::path::Path, out: &std::path::Path) -> Result<(), StoreError> {
    sqlite::SqliteStore::backup_into(path, out)
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
