//! Storage, one trait per concern, so a PostgreSQL backend can slot in beside SQLite and pass the
//! same suite (`suite.rs`).
//!
//! | concern | file | reads (any thread) | writes (writer thread only) |
//! |---|---|---|---|
//! | traces | `traces.rs` | [`TraceStore`] | [`TraceWrites`] (+ spend rollups) |
//! | spend rollups, budget alerts | `spend.rs` | [`SpendStore`] | [`SpendWrites`] |
//! | rate-limit counts | `rate_limits.rs` | [`RateLimitStore`] | [`RateLimitWrites`] |
//! | audit ledger | `ledger.rs` | [`LedgerStore`] | [`LedgerWrites`] (+ [`Persist`]) |
//! | module state, prices | `modules.rs` | [`ModuleStateStore`] | through [`LedgerWrites`] |
//! | routing breakers | `breakers.rs` | [`BreakerStore`]; hot: [`BreakerBook`] | [`BreakerWrites`] |
//! | Responses answers | `responses.rs` | [`ResponseStore`] | [`ResponseWrites`] |
//! | auth-failure counts | `auth_failures.rs` | [`AuthFailureStore`] | [`AuthFailureWrites`] |
//! | virtual keys, teams, admin keys | `keys.rs` | [`KeyStore`]; hot: `modules::auth::table` | through [`LedgerWrites`] ([`Persist::Keys`]) |
//! | provider credentials (sealed) | `credentials.rs` | [`CredentialStore`] | through [`LedgerWrites`] |
//! | liveness, schema | `health.rs` | [`StoreHealth`] | |
//! | prompt templates, versions | `prompts.rs` | [`prompts::PromptStore`] (start-up only) | through [`LedgerWrites`] ([`Persist::Prompt`]) |
//! | fired alerts, cool-downs | `alerts.rs` | [`alerts::AlertStore`] | [`alerts::AlertWrites`] |
//! | size, WAL, retention, vacuum | `maintenance.rs` | [`maintenance::MaintenanceStore`] | [`maintenance::MaintenanceWrites`] |
//! | console trace list, overview (hourly roll-up) | `dashboard.rs` | [`DashboardStore`] | with [`TraceWrites`] |
//! | changes from other nodes | `changes.rs` | [`watch`] (PostgreSQL: LISTEN/NOTIFY) | sent with [`LedgerWrites::apply_admin`] |
//! | hot counters | `counters/` | [`HotCounters`] (async: in memory, or leased from shared rows) | |
//! | counter shares between nodes | `counters/shares.rs` | [`CounterStore`] (its own steps, atomic) | |
//!
//! | files and batches held upstream | `batches.rs` | [`batches::BatchStore`] | [`batches::BatchWrites`] |
//! | cache entries (exact, semantic, embeddings) | `cache.rs` | [`CacheStore`] (start-up only) | [`CacheWrites`] |
//!
//! [`open`] picks the backend from a [`StoreUrl`] and returns a [`Store`] (the read traits, each
//! behind its own `Arc`, so a caller takes only the concern it needs) and the [`WriteBackend`]
//! that [`writer::Writer`] drives. The request path only ever queues writes through the writer,
//! which never waits on disk; reads run on a pool of connections beside it.

pub mod alerts;
mod auth_failures;
pub mod backup;
pub mod batches;
mod breakers;
mod cache;
pub mod changes;
pub mod counters;
mod credentials;
pub mod dashboard;
mod error;
mod health;
mod keys;
mod ledger;
pub mod maintenance;
pub mod mcp;
mod modules;
mod postgres;
pub mod prompts;
mod rate_limits;
mod responses;
mod spend;
mod sqlite;
#[cfg(test)]
mod suite;
#[cfg(test)]
mod suite_batches;
#[cfg(test)]
mod suite_counters;
#[cfg(test)]
mod suite_dashboard;
#[cfg(test)]
mod suite_governance;
#[cfg(test)]
mod suite_spend;
#[cfg(test)]
mod suite_trace_ids;
mod traces;
mod url;
pub mod writer;

use std::path::Path;
#[cfg(test)]
use std::path::PathBuf;
use std::sync::Arc;

pub use auth_failures::{AuthFailureCount, AuthFailureStore, AuthFailureWrites};
pub use breakers::{
    ABSENT, BreakerBook, BreakerPhase, BreakerRecord, BreakerState, BreakerStore, BreakerWrites,
    Conflict, MemoryBreakers,
};
pub use cache::{CacheEntry, CacheKind, CachePurge, CacheStore, CacheWrites};

pub use counters::{
    CalendarUnit, Clock, CounterStore, HotCounters, ManualClock, MemoryCounters, Reservation,
    ReserveError, SystemClock, Window,
};
pub use credentials::{CredentialStore, StoredCredential};
pub use dashboard::DashboardStore;
pub use error::StoreError;
pub use health::StoreHealth;
pub use keys::{
    AdminKeyRecord, AdminRole, KeyStore, KeyWrite, TeamRecord, VirtualKeyRecord, first_of_rotations,
};
pub use ledger::{LedgerStore, LedgerWrites, Persist};
pub use modules::{ModuleState, ModuleStateStore};
pub use rate_limits::{RateCount, RateLimitStore, RateLimitWrites};
pub use responses::{ResponseStore, ResponseWrites, StoredResponse};
pub use spend::{
    BudgetAlert, NONE as SPEND_NONE, SpendBy, SpendRow, SpendStore, SpendWrites, day_start,
};
pub use traces::{TraceQuery, TraceRecord, TraceStore, TraceWrites};
pub use url::StoreUrl;

use crate::ledger::LedgerKey;
use crate::ledger::key::NewestMac;

/// The schema version this build writes (every backend numbers its schema the same way).
pub const SCHEMA_VERSION: i64 = sqlite::SCHEMA_VERSION;

/// Everything the writer thread calls, in batches. Implementations are used by that one thread
/// only, so they need no locking of their own.
pub trait WriteBackend:
    TraceWrites
    + LedgerWrites
    + BreakerWrites
    + ResponseWrites
    + AuthFailureWrites
    + SpendWrites
    + RateLimitWrites
    + CacheWrites
    + maintenance::MaintenanceWrites
    + alerts::AlertWrites
    + mcp::McpCallWrites
    + batches::BatchWrites
    + Send
    + 'static
{
    /// Makes everything durable in the main store (the WAL checkpoint on SQLite).
    fn checkpoint(&mut self) -> Result<(), StoreError>;
}

/// The read side of a store, one handle per concern. Cloning copies the `Arc`s; every handle of
/// one store reads the same data (on SQLite, through the same connection pool).
#[derive(Clone)]
pub struct Store {
    pub traces: Arc<dyn TraceStore>,
    pub ledger: Arc<dyn LedgerStore>,
    pub modules: Arc<dyn ModuleStateStore>,
    pub breakers: Arc<dyn BreakerStore>,
    pub responses: Arc<dyn ResponseStore>,
    pub auth_failures: Arc<dyn AuthFailureStore>,
    pub spend: Arc<dyn SpendStore>,
    pub rate_limits: Arc<dyn RateLimitStore>,
    pub keys: Arc<dyn KeyStore>,
    pub credentials: Arc<dyn CredentialStore>,
    pub health: Arc<dyn StoreHealth>,
    pub cache: Arc<dyn CacheStore>,
    pub maintenance: Arc<dyn maintenance::MaintenanceStore>,
    pub alerts: Arc<dyn alerts::AlertStore>,
    pub prompts: Arc<dyn prompts::PromptStore>,
    /// The web console's trace list and overview.
    pub dashboard: Arc<dyn DashboardStore>,
    pub mcp: Arc<dyn mcp::McpCallStore>,
    pub batches: Arc<dyn batches::BatchStore>,
    /// Counter rows shared between nodes: the store's own (PostgreSQL), or memory for a store
    /// only one node uses, whose limits then keep their in-memory counters.
    pub counters: Arc<dyn CounterStore>,
}

impl Store {
    /// One value serving every concern (what a single-database backend has), and its counter
    /// shares.
    fn from_one<T>(all: Arc<T>, counters: Arc<dyn CounterStore>) -> Store
    where
        T: TraceStore
            + LedgerStore
            + ModuleStateStore
            + BreakerStore
            + ResponseStore
            + AuthFailureStore
            + SpendStore
            + RateLimitStore
            + KeyStore
            + CredentialStore
            + StoreHealth
            + CacheStore
            + maintenance::MaintenanceStore
            + alerts::AlertStore
            + prompts::PromptStore
            + DashboardStore
            + mcp::McpCallStore
            + batches::BatchStore
            + 'static,
    {
        Store {
            traces: all.clone(),
            ledger: all.clone(),
            modules: all.clone(),
            breakers: all.clone(),
            responses: all.clone(),
            auth_failures: all.clone(),
            spend: all.clone(),
            rate_limits: all.clone(),
            keys: all.clone(),
            credentials: all.clone(),
            health: all.clone(),
            cache: all.clone(),
            maintenance: all.clone(),
            alerts: all.clone(),
            prompts: all.clone(),
            dashboard: all.clone(),
            mcp: all.clone(),
            batches: all,
            counters,
        }
    }
}

/// What a process that writes gets: the read handles and the writer thread's backend.
pub struct Opened {
    pub store: Store,
    pub writes: Box<dyn WriteBackend>,
}

/// A store one node uses shares no counters: its limits count in memory, and these rows (which
/// nothing reads then) are the same arithmetic in memory.
fn local_counters() -> Arc<dyn CounterStore> {
    Arc::new(counters::LocalShares::default())
}

/// Opens (creating and migrating if needed) the store for a process that writes; the backend
/// seals ledger entries under `key`. A server's own state path for the ledger head is given by
/// [`open_node`]; here a PostgreSQL store only logs the head it publishes.
pub fn open(url: &StoreUrl, key: LedgerKey) -> Result<Opened, StoreError> {
    open_with_head(url, key, None)
}

/// A fresh SQLite store in a temporary folder, for unit tests: the folder, the file's path and
/// the opened store. Keep the folder alive as long as anything writes to the file.
#[cfg(test)]
pub(crate) fn open_temp_sqlite() -> (tempfile::TempDir, PathBuf, Opened) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("t.db");
    let key = LedgerKey::from_env_value(&"07".repeat(32)).unwrap_or_else(|e| panic!("{e}"));
    let opened =
        open(&StoreUrl::Sqlite(path.clone()), key).unwrap_or_else(|e| panic!("store: {e}"));
    (dir, path, opened)
}

/// [`open`] for a server: `local` is its local state path (`db`), beside which the ledger head
/// is published. SQLite keeps the head beside its file, which is that path.
pub fn open_node(url: &StoreUrl, key: LedgerKey, local: &Path) -> Result<Opened, StoreError> {
    open_with_head(url, key, Some(local))
}

fn open_with_head(
    url: &StoreUrl,
    key: LedgerKey,
    head_beside: Option<&Path>,
) -> Result<Opened, StoreError> {
    match url {
        StoreUrl::Sqlite(path) => {
            let (writes, reader) = sqlite::SqliteStore::open(path, key)?;
            Ok(Opened {
                store: Store::from_one(reader, local_counters()),
                writes: Box::new(writes),
            })
        }
        StoreUrl::Postgres(_) => {
            let (writes, reader) = postgres::PgStore::open(url, key, head_beside)?;
            Ok(Opened {
                store: Store::from_one(reader.clone(), reader),
                writes: Box::new(writes),
            })
        }
    }
}

/// Opens an existing store for commands that only read: never creates, writes or migrates.
pub fn open_read_only(url: &StoreUrl) -> Result<Store, StoreError> {
    match url {
        StoreUrl::Sqlite(path) => Ok(Store::from_one(
            sqlite::SqliteStore::open_read_only(path)?,
            local_counters(),
        )),
        StoreUrl::Postgres(_) => {
            let reader = postgres::PgStore::open_read_only(url)?;
            Ok(Store::from_one(reader.clone(), reader))
        }
    }
}

/// The newest ledger entry carrying a MAC, read without creating, migrating or changing anything
/// (`None` when there is no store yet): a writing open checks its ledger key against it before it
/// opens the store for writing.
pub fn newest_mac(url: &StoreUrl) -> Result<Option<NewestMac>, StoreError> {
    match url {
        StoreUrl::Sqlite(path) => sqlite::SqliteStore::newest_mac(path),
        StoreUrl::Postgres(_) => postgres::PgStore::newest_mac(url),
    }
}

/// The sealed check value of the master key, read without creating, migrating or changing
/// anything (`None` when there is no store, or nothing was sealed yet): a writing open checks its
/// master key against it before it opens the store for writing.
pub fn secrets_check(url: &StoreUrl) -> Result<Option<Vec<u8>>, StoreError> {
    match url {
        StoreUrl::Sqlite(path) => sqlite::SqliteStore::secrets_check(path),
        StoreUrl::Postgres(_) => postgres::PgStore::secrets_check(url),
    }
}

/// The schema version of an existing store, read without changing it; [`StoreError::Missing`]
/// when there is none.
pub fn schema_version_of(url: &StoreUrl) -> Result<i64, StoreError> {
    match url {
        StoreUrl::Sqlite(path) => sqlite::SqliteStore::file_schema_version(path),
        StoreUrl::Postgres(_) => postgres::PgStore::schema_version(url),
    }
}

/// Copies a single node's SQLite store into an empty PostgreSQL one (`stockyard migrate-store`):
/// every table, the ledger as it is. The caller holds the file's lock; `key` is the file's ledger
/// key, which the PostgreSQL store must then be run with. Returns the rows copied, by table.
pub fn copy_into(
    from: &StoreUrl,
    to: &StoreUrl,
    key: LedgerKey,
) -> Result<Vec<(String, u64)>, StoreError> {
    match (from, to) {
        (StoreUrl::Sqlite(path), StoreUrl::Postgres(_)) => postgres::copy_sqlite(path, to, key),
        _ => Err(StoreError::Backend(format!(
            "migrate-store copies a sqlite file into a postgres store, not {} into {}",
            from.backend(),
            to.backend()
        ))),
    }
}

/// Watches for changes other nodes commit to a shared store, calling `on_change` (on a thread of
/// the watch's own) with the concern that changed; `None` for a store only one node uses
/// (SQLite). Changes are reported from this call on.
pub fn watch(
    url: &StoreUrl,
    on_change: changes::OnChange,
) -> Result<Option<changes::Watch>, StoreError> {
    match url {
        StoreUrl::Sqlite(_) => Ok(None),
        StoreUrl::Postgres(_) => postgres::watch(url, on_change).map(Some),
    }
}

/// A consistent copy of the store into the file `out`, safe while a server writes it.
pub fn backup_into(url: &StoreUrl, out: &Path) -> Result<(), StoreError> {
    match url {
        StoreUrl::Sqlite(path) => sqlite::SqliteStore::backup_into(path, out),
        StoreUrl::Postgres(_) => Err(file_only(url, "backup")),
    }
}

/// Checks a backup copy (integrity, and a schema version this build can migrate); returns the
/// copy's schema version.
pub fn verify_copy(url: &StoreUrl) -> Result<i64, StoreError> {
    match url {
        StoreUrl::Sqlite(path) => sqlite::SqliteStore::verify_copy(path),
        StoreUrl::Postgres(_) => Err(file_only(url, "restore")),
    }
}

/// The audit ledger of a backup [`verify_copy`] accepted, whatever its schema version.
pub fn ledger_of_copy(url: &StoreUrl) -> Result<Vec<crate::ledger::LedgerEntry>, StoreError> {
    match url {
        StoreUrl::Sqlite(path) => sqlite::SqliteStore::ledger_of_copy(path),
        StoreUrl::Postgres(_) => Err(file_only(url, "restore")),
    }
}

/// Makes the main file hold everything (the WAL checkpointed and emptied); for a store no server
/// holds.
pub fn checkpoint_file(url: &StoreUrl) -> Result<(), StoreError> {
    match url {
        StoreUrl::Sqlite(path) => sqlite::SqliteStore::checkpoint_file(path),
        StoreUrl::Postgres(_) => Err(file_only(url, "checkpoint")),
    }
}

/// Converts an existing store so retention's deletes shrink it; returns the size before and
/// after, in bytes. For a store no server holds.
pub fn compact(url: &StoreUrl) -> Result<(u64, u64), StoreError> {
    match url {
        StoreUrl::Sqlite(path) => sqlite::SqliteStore::compact(path),
        StoreUrl::Postgres(_) => Err(file_only(url, "db compact")),
    }
}

/// Refuses a URL whose backend this build lacks, before a caller makes anything for it (the
/// server checks this before creating the ledger key file). Every backend is built now; the
/// check stays so a future optional backend has its place.
pub fn ensure_built(url: &StoreUrl) -> Result<(), StoreError> {
    match url {
        StoreUrl::Sqlite(_) | StoreUrl::Postgres(_) => Ok(()),
    }
}

/// A whole-file operation asked of a store that is not a file.
fn file_only(url: &StoreUrl, what: &'static str) -> StoreError {
    StoreError::FileOnly {
        what,
        url: url.redacted(),
    }
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
