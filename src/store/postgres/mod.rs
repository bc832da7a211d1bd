//! The PostgreSQL backend: the same traits and the same suite as SQLite (`store/suite.rs`), for
//! several nodes sharing one database.
//!
//! [`PgStore::open`] migrates (once, however many nodes start together: see [`migrate`]) and
//! hands out a [`PgWriter`] (`write.rs`, the writer thread's connection) and a [`PgReader`]
//! (`read.rs` and siblings, a pool of connections), both driven by `tokio-postgres` on a small
//! runtime of the backend's own: `conn.rs` says why.
//! The schema version is the one row of `stockyard_schema`, numbered as SQLite's `user_version`
//! is. Which schema the tables live in is the connection's `search_path` (set with
//! `?options=-csearch_path%3DNAME` in the URL), so tests and tenants can share a server. Only
//! `crate::store` sees this module.

mod admin;
mod batches;
mod cache;
mod conn;
mod counters;
mod dashboard;
mod error;
mod import;
mod keys;
mod listen;
mod maintenance;
mod read;
mod rollups;
mod tls;
mod write;
mod write_misc;

use std::path::Path;
use std::sync::Arc;

use tokio_postgres::Client;

pub use import::copy_sqlite;
pub use listen::watch;
pub use read::PgReader;
pub use write::PgWriter;

use self::conn::{PgRuntime, ReadPool, Target, once};
use super::{StoreError, StoreUrl};
use crate::ledger::LedgerKey;
use crate::ledger::key::NewestMac;

/// Migrations in order, each with the schema version it produces. PostgreSQL starts at 18, the
/// version SQLite had reached when this backend was written, with the whole schema at once.
const MIGRATIONS: &[(i64, &str)] = &[
    (18, include_str!("migrations/0018_init.sql")),
    (19, include_str!("migrations/0019_batches.sql")),
    (20, include_str!("migrations/0020_counter_shares.sql")),
    (21, include_str!("migrations/0021_trace_indexes.sql")),
    (22, include_str!("migrations/0022_trace_row_ids.sql")),
];

/// The version the newest migration produces.
pub const SCHEMA_VERSION: i64 = MIGRATIONS[MIGRATIONS.len() - 1].0;

// Both backends must be at the same version for one build: a schema change lands in both.
const _: () = assert!(SCHEMA_VERSION == super::sqlite::SCHEMA_VERSION);

/// Advisory lock classes (the first key of `pg_advisory_xact_lock(int, int)`); the second key
/// is the schema's name hashed, so stores in different schemas never wait on each other.
pub(super) const LOCK_MIGRATE: i32 = 0x5359_0001;
pub(super) const LOCK_LEDGER: i32 = 0x5359_0002;

/// Read connections a server's pool keeps at most.
const READ_POOL_SIZE: usize = 4;
const READ_ONLY_POOL_SIZE: usize = 2;

pub struct PgStore;

impl PgStore {
    /// Connects, migrates, and returns the writer's connection and the read pool, both on one
    /// runtime of the backend's own (`conn.rs` says why). The writer seals ledger entries under
    /// `key` and publishes the ledger head beside `head_beside` when given (a node's local state
    /// path); without one the head is only logged.
    pub fn open(
        url: &StoreUrl,
        key: LedgerKey,
        head_beside: Option<&Path>,
    ) -> Result<(PgWriter, Arc<PgReader>), StoreError> {
        let target = Target::parse(url)?;
        let runtime = PgRuntime::start()?;
        let head_beside = head_beside.map(Path::to_path_buf);
        let (client, published) = runtime.block_on_borrowed(async || {
            let mut client = target.connect().await?;
            migrate(&mut client).await?;
            let published =
                write::anchor_at_open(&mut client, &key, head_beside.as_deref()).await?;
            Ok((client, published))
        })?;
        let pool = ReadPool::new(runtime.clone(), &target, READ_POOL_SIZE)?;
        Ok((
            PgWriter::new(client, target, runtime, key, head_beside, published),
            Arc::new(PgReader { pool }),
        ))
    }

    /// Opens for reading only: nothing is created or migrated, and a schema at another version
    /// is refused.
    pub fn open_read_only(url: &StoreUrl) -> Result<Arc<PgReader>, StoreError> {
        let found = PgStore::schema_version(url)?;
        if found > SCHEMA_VERSION {
            return Err(StoreError::SchemaTooNew {
                found,
                supported: SCHEMA_VERSION,
            });
        }
        if found < SCHEMA_VERSION {
            return Err(StoreError::SchemaTooOld {
                path: url.redacted(),
                found,
                supported: SCHEMA_VERSION,
            });
        }
        let pool = ReadPool::new(
            PgRuntime::start()?,
            &Target::parse(url)?,
            READ_ONLY_POOL_SIZE,
        )?;
        Ok(Arc::new(PgReader { pool }))
    }

    /// The schema version of an existing store; [`StoreError::Missing`] when it has none.
    pub fn schema_version(url: &StoreUrl) -> Result<i64, StoreError> {
        let target = Target::parse(url)?;
        once(async || {
            let client = target.connect().await?;
            stored_version(&client)
                .await?
                .ok_or_else(|| StoreError::Missing {
                    path: target.shown.clone(),
                })
        })
    }

    /// The newest MAC'd ledger entry, read without creating anything (`None` with no schema).
    pub fn newest_mac(url: &StoreUrl) -> Result<Option<NewestMac>, StoreError> {
        let target = Target::parse(url)?;
        once(async || {
            let client = target.connect().await?;
            if !has_table(&client, "ledger").await? {
                return Ok(None);
            }
            let row = client
                .query_opt(
                    "SELECT seq, hash, mac FROM ledger WHERE mac IS NOT NULL \
                     ORDER BY seq DESC LIMIT 1",
                    &[],
                )
                .await?;
            row.map(|r| {
                Ok(NewestMac {
                    seq: read::get(&r, 0)?,
                    hash: read::get(&r, 1)?,
                    mac: read::get(&r, 2)?,
                })
            })
            .transpose()
        })
    }

    /// The master key's check value, read without creating anything.
    pub fn secrets_check(url: &StoreUrl) -> Result<Option<Vec<u8>>, StoreError> {
        let target = Target::parse(url)?;
        once(async || {
            let client = target.connect().await?;
            if !has_table(&client, "secrets_meta").await? {
                return Ok(None);
            }
            let row = client
                .query_opt("SELECT value FROM secrets_meta WHERE name = 'check'", &[])
                .await?;
            row.map(|r| read::get(&r, 0)).transpose()
        })
    }
}

/// Whether `table` exists on the connection's search path.
async fn has_table(client: &Client, table: &str) -> Result<bool, StoreError> {
    let row = client
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&table])
        .await?;
    read::get(&row, 0)
}

async fn stored_version(client: &Client) -> Result<Option<i64>, StoreError> {
    if !has_table(client, "stockyard_schema").await? {
        return Ok(None);
    }
    let row = client
        .query_opt("SELECT version FROM stockyard_schema", &[])
        .await?;
    row.map(|r| read::get(&r, 0)).transpose()
}

/// Applies the pending migrations in one transaction, under a transaction-scoped advisory lock:
/// nodes starting together queue on the lock, the first migrates, the others then find the
/// version current and change nothing. PostgreSQL's DDL is transactional, so a failure leaves
/// the schema as it was.
async fn migrate(client: &mut Client) -> Result<(), StoreError> {
    let tx = client.transaction().await?;
    let schema: Option<String> =
        read::get(&tx.query_one("SELECT current_schema()", &[]).await?, 0)?;
    let Some(schema) = schema else {
        return Err(StoreError::Backend(
            "no schema to create tables in: the search_path names none that exists".into(),
        ));
    };
    tx.execute(
        "SELECT pg_advisory_xact_lock($1, hashtext($2))",
        &[&LOCK_MIGRATE, &schema],
    )
    .await?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS stockyard_schema (version BIGINT NOT NULL)")
        .await?;
    let found: i64 = tx
        .query_opt("SELECT version FROM stockyard_schema", &[])
        .await?
        .map(|r| read::get(&r, 0))
        .transpose()?
        .unwrap_or(0);
    if found > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            found,
            supported: SCHEMA_VERSION,
        });
    }
    if found == SCHEMA_VERSION {
        return Ok(());
    }
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > found) {
        tx.batch_execute(sql).await?;
        tracing::info!(version, schema = %schema, "applied postgres migration");
    }
    tx.execute("DELETE FROM stockyard_schema", &[]).await?;
    tx.execute(
        "INSERT INTO stockyard_schema (version) VALUES ($1)",
        &[&SCHEMA_VERSION],
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
pub mod testing;

#[cfg(test)]
mod tests;
