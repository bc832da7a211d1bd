//! `StoreError`: what any backend reports, in terms a caller can act on. No backend's own error
//! type appears here, so code above the store never learns which database it runs on; each backend
//! maps its errors into these variants (SQLite's in `sqlite/error.rs`).

use thiserror::Error;

#[derive(Debug, Error)]
pub enum StoreError {
    /// Another connection or process held a lock past the busy timeout; retrying may succeed.
    #[error("the database is busy (locked by another connection); retry shortly")]
    Busy,
    /// A write broke a uniqueness, foreign-key or check rule.
    #[error("database constraint violated: {0}")]
    Constraint(String),
    /// Stored data that does not read back as what was written: a damaged file or a row edited
    /// by hand. `table` is where it was found (`file` for damage below the table level).
    #[error("corrupt data in {table}: {detail}")]
    Corrupt { table: &'static str, detail: String },
    /// The operating system refused: disk full, permissions, a vanished directory.
    #[error("database i/o error: {0}")]
    Io(String),
    /// A database server that cannot be reached (refused, cut, shutting down): the writer
    /// holds its records and retries instead of dropping them; a later call may succeed.
    #[error("the database cannot be reached: {0}")]
    Unreachable(String),
    /// Anything else the backend reported.
    #[error("database error: {0}")]
    Backend(String),
    #[error(
        "database schema version {found} is newer than this build supports ({supported}); \
         run a newer stockyard, the file was not touched"
    )]
    SchemaTooNew { found: i64, supported: i64 },
    #[error(
        "database {path} is at schema version {found}, older than this build's ({supported}); \
         this command only reads, so it did not migrate the file: run `stockyard serve` once \
         (it migrates at start-up), then retry"
    )]
    SchemaTooOld {
        path: String,
        found: i64,
        supported: i64,
    },
    #[error("cannot open database {path}: {detail}")]
    Open { path: String, detail: String },
    #[error("database {path} does not exist (nothing was created); check --db or STOCKYARD_DB")]
    Missing { path: String },
    /// A store URL naming a backend this build does not contain yet.
    #[error("store {url}: the {backend} backend is not built yet; use sqlite:PATH (the default)")]
    NotBuilt { backend: &'static str, url: String },
    /// A whole-file operation (backup, restore, compact) asked of a server database.
    #[error(
        "store {url}: `stockyard {what}` works on a sqlite file; back up and restore a postgres \
         store with pg_dump and pg_restore"
    )]
    FileOnly { what: &'static str, url: String },
    #[error("ledger head: {0}")]
    Head(String),
    #[error(
        "the ledger ends at entry {newest} but its published head is entry {published}: entries \
         were cut; refusing to append over them (run `stockyard audit verify`)"
    )]
    LedgerBehindHead { newest: i64, published: i64 },
    #[error("the writer thread has stopped")]
    WriterGone,
}

impl StoreError {
    /// Whether the store was out of reach, not wrong: worth holding the work and retrying.
    pub fn is_unreachable(&self) -> bool {
        matches!(self, StoreError::Unreachable(_))
    }
}
