//! The SQLite backend: one file, WAL, versioned forward-only migrations at open.
//!
//! [`SqliteStore::open`] migrates and hands out a [`SqliteWriter`] (`write.rs`, for the writer
//! thread) and a [`SqliteReader`] (`read.rs`, a pool of read connections, `pool.rs`). The schema
//! version is `PRAGMA user_version`; a file written by a newer build is refused before anything
//! is changed. [`SqliteStore::open_read_only`] is for commands that only look: it never creates,
//! writes or migrates the file. Only `crate::store` sees this module; everything above it goes
//! through the traits and [`crate::store::StoreUrl`].

mod alerts;
mod batches;
mod cache;
mod dashboard;
mod error;
mod files;
mod keys;
mod maintenance;
mod mcp;
mod pool;
mod prompts;
mod read;
mod trace_rows;
mod trace_write;
mod write;

use std::path::Path;
use std::sync::Arc;

use rusqlite::{Connection, OpenFlags, OptionalExtension};

pub use read::SqliteReader;
pub use write::SqliteWriter;

use self::pool::ReadPool;
use super::StoreError;
use crate::ledger::LedgerKey;
use crate::ledger::key::NewestMac;

/// Migrations in order, each with the schema version it produces. Versions are explicit, not
/// positions, so numbers reserved by parallel work can be merged in any order.
const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("migrations/0001_init.sql")),
    (2, include_str!("migrations/0002_routing.sql")),
    (3, include_str!("migrations/0003_responses.sql")),
    (4, include_str!("migrations/0004_response_owner.sql")),
    (5, include_str!("migrations/0005_ledger_mac.sql")),
    (6, include_str!("migrations/0006_auth_failures.sql")),
    (7, include_str!("migrations/0007_trace_origin.sql")),
    (8, include_str!("migrations/0008_keys.sql")),
    (9, include_str!("migrations/0009_credentials.sql")),
    (10, include_str!("migrations/0010_spend.sql")),
    (11, include_str!("migrations/0011_cache.sql")),
    (12, include_str!("migrations/0012_guard_verdicts.sql")),
    (13, include_str!("migrations/0013_ops.sql")),
    (14, include_str!("migrations/0014_catalogue.sql")),
    (16, include_str!("migrations/0016_dashboard.sql")),
    (18, include_str!("migrations/0018_mcp_calls.sql")),
    (19, include_str!("migrations/0019_batches.sql")),
    (20, include_str!("migrations/0020_counter_shares.sql")),
    (21, include_str!("migrations/0021_trace_indexes.sql")),
    (22, include_str!("migrations/0022_trace_row_ids.sql")),
];

/// The version the newest migration produces.
pub const SCHEMA_VERSION: i64 = MIGRATIONS[MIGRATIONS.len() - 1].0;

/// Read connections a server keeps: enough that a slow report never holds up a request-path
/// lookup, few enough that WAL readers don't pin an old snapshot forever.
const READ_POOL_SIZE: usize = 4;

/// Read connections for a command that only reads: it runs one query at a time.
const READ_ONLY_POOL_SIZE: usize = 2;

pub struct SqliteStore;

/// The writer connection's page cache, in KiB (SQLite takes a negative `cache_size` as KiB).
const WRITER_CACHE_KIB: i64 = -1024;

impl SqliteStore {
    /// Opens (creating if needed) and migrates the database; returns the writer's and a reader's
    /// connections. The writer seals ledger entries under `key`.
    pub fn open(
        path: &Path,
        key: LedgerKey,
    ) -> Result<(SqliteWriter, Arc<SqliteReader>), StoreError> {
        let mut conn = connect(path, true)?;
        // Every transaction of the writer's takes the write lock as it begins, where the busy
        // timeout applies. A deferred one that reads first (a trace row's number, a ledger head)
        // is refused at once, without waiting, when it turns into a write while another
        // connection writes (a CLI command, a tool holding the file).
        conn.set_transaction_behavior(rusqlite::TransactionBehavior::Immediate);
        migrate(&mut conn)?;
        dashboard::catch_up(&mut conn)?;
        // The writer thread checkpoints (store/writer.rs); SQLite's own auto-checkpoint would run
        // inside a trace batch's commit, on the request load's clock. The size limit truncates a
        // WAL that a burst grew once it is reset.
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        conn.pragma_update(None, "journal_size_limit", 16 * 1024 * 1024)?;
        // The writer mostly appends: what it revisits is the right edge of each trace index and
        // the small roll-up tables. A megabyte of page cache holds that (SQLite's default is
        // two); a page that falls out is read back from the OS's cache, not the disk.
        conn.pragma_update(None, "cache_size", WRITER_CACHE_KIB)?;
        let published = write::anchor_at_open(&mut conn, &key, path)?;
        let trace_rows = trace_rows::TraceRows::read(&conn)?;
        let pool = ReadPool::new(path, READ_POOL_SIZE, |p| connect(p, false))?;
        Ok((
            SqliteWriter {
                conn,
                key,
                db_path: path.to_path_buf(),
                published,
                rollups: dashboard::PendingRollups::default(),
                trace_rows,
            },
            Arc::new(SqliteReader { pool }),
        ))
    }

    /// Opens an existing database for reading only: a missing file is an error (nothing is
    /// created), and a file at another schema version is refused rather than migrated.
    pub fn open_read_only(path: &Path) -> Result<Arc<SqliteReader>, StoreError> {
        let found = SqliteStore::file_schema_version(path)?;
        if found > SCHEMA_VERSION {
            return Err(StoreError::SchemaTooNew {
                found,
                supported: SCHEMA_VERSION,
            });
        }
        if found < SCHEMA_VERSION {
            return Err(StoreError::SchemaTooOld {
                path: path.display().to_string(),
                found,
                supported: SCHEMA_VERSION,
            });
        }
        let pool = ReadPool::new(path, READ_ONLY_POOL_SIZE, connect_read_only)?;
        Ok(Arc::new(SqliteReader { pool }))
    }

    /// The newest ledger entry that carries a MAC, read without creating or changing anything:
    /// `None` for a missing file, or one from before ledger MACs (no `mac` column).
    pub fn newest_mac(path: &Path) -> Result<Option<NewestMac>, StoreError> {
        if !path.exists() {
            return Ok(None);
        }
        let conn = connect_read_only(path)?;
        let has_mac: bool = conn.query_row(
            "SELECT COUNT(*) > 0 FROM pragma_table_info('ledger') WHERE name = 'mac'",
            [],
            |r| r.get(0),
        )?;
        if !has_mac {
            return Ok(None);
        }
        Ok(conn
            .query_row(
                "SELECT seq, hash, mac FROM ledger WHERE mac IS NOT NULL ORDER BY seq DESC LIMIT 1",
                [],
                |r| {
                    Ok(NewestMac {
                        seq: r.get(0)?,
                        hash: r.get(1)?,
                        mac: r.get(2)?,
                    })
                },
            )
            .optional()?)
    }

    /// The master key's check value, read without creating or changing anything: `None` for a
    /// missing file, one from before credentials (no `secrets_meta` table), or nothing sealed.
    pub fn secrets_check(path: &Path) -> Result<Option<Vec<u8>>, StoreError> {
        if !path.exists() {
            return Ok(None);
        }
        let conn = connect_read_only(path)?;
        let has_table: bool = conn.query_row(
            "SELECT COUNT(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'secrets_meta'",
            [],
            |r| r.get(0),
        )?;
        if !has_table {
            return Ok(None);
        }
        Ok(conn
            .query_row(
                "SELECT value FROM secrets_meta WHERE name = 'check'",
                [],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// The schema version of an existing file, read without changing it.
    pub fn file_schema_version(path: &Path) -> Result<i64, StoreError> {
        let conn = connect_read_only(path)?;
        Ok(conn.query_row("PRAGMA user_version", [], |r| r.get(0))?)
    }

    /// A consistent, compact copy of the database at `out` while a server may be writing it.
    /// `VACUUM INTO` reads one snapshot (WAL readers never block the writer) and writes a
    /// self-contained file with no WAL beside it.
    pub fn backup_into(path: &Path, out: &Path) -> Result<(), StoreError> {
        let conn = connect_read_only(path)?;
        conn.execute("VACUUM INTO ?1", [out.to_string_lossy()])?;
        dashboard::reset_cursor(&Connection::open(out)?)?;
        Ok(())
    }
}

fn connect_read_only(path: &Path) -> Result<Connection, StoreError> {
    // SQLite would report "unable to open database file"; say which file and that it was not made.
    if !path.exists() {
        return Err(StoreError::Missing {
            path: path.display().to_string(),
        });
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(|e| StoreError::Open {
        path: path.display().to_string(),
        detail: e.to_string(),
    })?;
    conn.busy_timeout(std::time::Duration::from_millis(5000))?;
    Ok(conn)
}

fn connect(path: &Path, create: bool) -> Result<Connection, StoreError> {
    let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    if create {
        flags |= OpenFlags::SQLITE_OPEN_CREATE;
    }
    let conn = Connection::open_with_flags(path, flags).map_err(|e| StoreError::Open {
        path: path.display().to_string(),
        detail: e.to_string(),
    })?;
    conn.busy_timeout(std::time::Duration::from_millis(5000))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(conn)
}

fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let found: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            found,
            supported: SCHEMA_VERSION,
        });
    }
    if found == SCHEMA_VERSION {
        return Ok(());
    }
    if found == 0 && !has_tables(conn)? {
        // Only a file with no tables yet can take this; an existing one is converted by
        // `stockyard db compact`. Incremental: retention frees pages, and the writer gives them
        // back in small steps instead of a whole-file VACUUM.
        conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")?;
        // The file already has its first page (WAL mode was set on open): a VACUUM of the empty
        // file is what makes the setting take.
        conn.execute_batch("VACUUM")?;
    }
    // All pending migrations in one transaction: a failure leaves the file as it was.
    let tx = conn.transaction()?;
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > found) {
        tx.execute_batch(sql)?;
        tracing::info!(version, "applied migration");
    }
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    tx.commit()?;
    Ok(())
}

fn has_tables(conn: &Connection) -> Result<bool, StoreError> {
    Ok(conn.query_row(
        "SELECT COUNT(*) > 0 FROM sqlite_master WHERE type = 'table'",
        [],
        |r| r.get(0),
    )?)
}

#[cfg(test)]
mod tests;
