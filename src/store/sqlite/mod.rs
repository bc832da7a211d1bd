//! The SQLite backend: one file, WAL, versioned forward-only migrations at open.
//!
//! [`SqliteStore::open`] migrates and hands out a [`SqliteWriter`] (for the writer thread) and a
//! [`SqliteReader`] (its own connection, for queries). The schema version is `PRAGMA user_version`;
//! a file written by a newer build is refused before anything is changed.
//! [`SqliteStore::open_read_only`] is for commands that only look: it never creates, writes or
//! migrates the file.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use super::{
    AuthFailureCount, BreakerPhase, BreakerRecord, ModuleState, Persist, ReadStore, SpendBy,
    SpendRow, StoreError, StoredResponse, TraceQuery, TraceRecord, WriteBackend,
};
use crate::cost::Tokens;
use crate::ledger::{Head, LedgerDraft, LedgerEntry, LedgerKey};

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
];

/// The version the newest migration produces.
pub const SCHEMA_VERSION: i64 = MIGRATIONS[MIGRATIONS.len() - 1].0;

pub struct SqliteStore;

impl SqliteStore {
    /// Opens (creating if needed) and migrates the database; returns the writer's and a reader's
    /// connections. The writer seals ledger entries under `key`.
    pub fn open(path: &Path, key: LedgerKey) -> Result<(SqliteWriter, SqliteReader), StoreError> {
        let mut conn = connect(path, true)?;
        migrate(&mut conn)?;
        let reader = connect(path, false)?;
        let published = Head::read(path).map_err(|e| StoreError::Head(e.to_string()))?;
        Ok((
            SqliteWriter {
                conn,
                key,
                db_path: path.to_path_buf(),
                published,
            },
            SqliteReader {
                conn: Mutex::new(reader),
                path: path.to_path_buf(),
            },
        ))
    }

    /// Opens an existing database for reading only: a missing file is an error (nothing is
    /// created), and a file at another schema version is refused rather than migrated.
    pub fn open_read_only(path: &Path) -> Result<SqliteReader, StoreError> {
        let found = SqliteStore::file_schema_version(path)?;
        if found > SCHEMA_VERSION {
            return Err(StoreError::NewerSchema {
                found,
                supported: SCHEMA_VERSION,
            });
        }
        if found < SCHEMA_VERSION {
            return Err(StoreError::OlderSchema {
                path: path.display().to_string(),
                found,
                supported: SCHEMA_VERSION,
            });
        }
        Ok(SqliteReader {
            conn: Mutex::new(connect_read_only(path)?),
            path: path.to_path_buf(),
        })
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
    let conn = Connection::open_with_flags(path, flags).map_err(|source| StoreError::Open {
        path: path.display().to_string(),
        source,
    })?;
    conn.busy_timeout(std::time::Duration::from_millis(5000))?;
    Ok(conn)
}

fn connect(path: &Path, create: bool) -> Result<Connection, StoreError> {
    let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    if create {
        flags |= OpenFlags::SQLITE_OPEN_CREATE;
    }
    let conn = Connection::open_with_flags(path, flags).map_err(|source| StoreError::Open {
        path: path.display().to_string(),
        source,
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
        return Err(StoreError::NewerSchema {
            found,
            supported: SCHEMA_VERSION,
        });
    }
    if found == SCHEMA_VERSION {
        return Ok(());
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

pub struct SqliteWriter {
    conn: Connection,
    key: LedgerKey,
    db_path: PathBuf,
    /// The head last published beside the database; the ledger must never fall behind it.
    published: Option<Head>,
}

impl WriteBackend for SqliteWriter {
    fn append_traces(&mut self, traces: &[TraceRecord]) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        {
            let mut insert = tx.prepare_cached(
                "INSERT OR IGNORE INTO traces (id, ts_ms, endpoint, requested_model, provider, upstream_model, \
                 status, error_class, stream, prompt_tokens, completion_tokens, cached_input_tokens, \
                 cache_write_tokens, reasoning_tokens, usage_estimated, cost_nanos, price_known, latency_us, \
                 ttft_us, upstream_us, overhead_us, bytes_in, bytes_out, user, request_id, key_id, \
                 request_body, response_body, deployment, attempts, variant, answered_by, internal_caller) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, \
                 ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29, ?30, ?31, ?32, ?33)",
            )?;
            for t in traces {
                insert.execute(params![
                    t.id,
                    t.ts_ms,
                    t.endpoint,
                    t.requested_model,
                    t.provider,
                    t.upstream_model,
                    t.status,
                    t.error_class,
                    t.stream,
                    t.tokens.prompt as i64,
                    t.tokens.completion as i64,
                    t.tokens.cached_input as i64,
                    t.tokens.cache_write as i64,
                    t.tokens.reasoning as i64,
                    t.usage_estimated,
                    t.cost_nanos,
                    t.price_known,
                    t.latency_us,
                    t.ttft_us,
                    t.upstream_us,
                    t.overhead_us,
                    t.bytes_in,
                    t.bytes_out,
                    t.user,
                    t.request_id,
                    t.key_id,
                    t.request_body,
                    t.response_body,
                    t.deployment,
                    t.attempts,
                    t.variant,
                    t.answered_by,
                    t.internal_caller,
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn apply_admin(
        &mut self,
        change: Option<&Persist>,
        draft: &LedgerDraft,
        ts_ms: i64,
    ) -> Result<LedgerEntry, StoreError> {
        let tx = self.conn.transaction()?;
        match change {
            Some(Persist::ModuleState(state)) => {
                tx.execute(
                    "INSERT INTO module_state (name, scope, enabled, config, updated_ms) VALUES (?1, ?2, ?3, ?4, ?5) \
                     ON CONFLICT (name, scope) DO UPDATE SET enabled = excluded.enabled, config = excluded.config, \
                     updated_ms = excluded.updated_ms",
                    params![state.name, state.scope, state.enabled, state.config.to_string(), ts_ms],
                )?;
            }
            Some(Persist::Breaker(record)) => save_breaker(&tx, record)?,
            Some(Persist::Prices { body }) => {
                tx.execute(
                    "INSERT INTO price_files (loaded_ms, body) VALUES (?1, ?2)",
                    params![ts_ms, body],
                )?;
            }
            None => {}
        }
        let prev: Option<(i64, String)> = tx
            .query_row(
                "SELECT seq, hash FROM ledger ORDER BY seq DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        // Appending after a cut tail would publish a new head over the cut and hide it; refuse
        // the change (nothing is applied) until someone looks at `audit verify`.
        if let Some(published) = &self.published {
            let newest = prev.as_ref().map(|(s, _)| *s).unwrap_or(0);
            if newest < published.seq {
                return Err(StoreError::LedgerBehindHead {
                    newest,
                    published: published.seq,
                });
            }
        }
        let entry = LedgerEntry::seal(
            draft,
            prev.as_ref().map(|(s, h)| (*s, h.as_str())),
            ts_ms,
            &self.key,
        );
        tx.execute(
            "INSERT INTO ledger (seq, ts_ms, actor, action, target, details, prev_hash, hash, mac) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                entry.seq,
                entry.ts_ms,
                entry.actor,
                entry.action,
                entry.target,
                entry.details.to_string(),
                entry.prev_hash,
                entry.hash,
                entry.mac
            ],
        )?;
        tx.commit()?;
        Ok(entry)
    }

    fn publish_head(&mut self, head: &Head) -> Result<(), StoreError> {
        head.write(&self.db_path)
            .map_err(|e| StoreError::Head(e.to_string()))?;
        // The log is a second copy of the head, out of reach of whoever edits the files.
        tracing::info!("ledger head seq={} hash={}", head.seq, head.hash);
        self.published = Some(head.clone());
        Ok(())
    }

    fn save_breaker(&mut self, record: &BreakerRecord) -> Result<(), StoreError> {
        save_breaker(&self.conn, record)
    }

    fn save_response(&mut self, record: &StoredResponse) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT OR REPLACE INTO responses (id, created_ms, response, history, owner) \
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                record.id,
                record.created_ms,
                record.response.to_string(),
                record.history.to_string(),
                record.owner
            ],
        )?;
        Ok(())
    }

    fn add_auth_failures(&mut self, counts: &[AuthFailureCount]) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        {
            let mut upsert = tx.prepare_cached(
                "INSERT INTO auth_failures (minute_ms, source, reason, count) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (minute_ms, source, reason) DO UPDATE SET count = count + excluded.count",
            )?;
            for c in counts {
                upsert.execute(params![c.minute_ms, c.source, c.reason, c.count])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn checkpoint(&mut self) -> Result<(), StoreError> {
        self.conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(())
    }
}

fn save_breaker(conn: &Connection, record: &BreakerRecord) -> Result<(), StoreError> {
    let phase = serde_json::to_string(&record.phase).map_err(|e| StoreError::Corrupt {
        table: "breakers",
        detail: e.to_string(),
    })?;
    conn.execute(
        "INSERT INTO breakers (deployment, phase, reason, updated_ms) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT (deployment) DO UPDATE SET phase = excluded.phase, reason = excluded.reason, \
         updated_ms = excluded.updated_ms",
        params![record.deployment, phase, record.reason, record.updated_ms],
    )?;
    Ok(())
}

pub struct SqliteReader {
    conn: Mutex<Connection>,
    path: PathBuf,
}

impl SqliteReader {
    fn with<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        f(&conn)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn trace_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<TraceRecord> {
    let u = |i: usize| -> rusqlite::Result<u64> { Ok(r.get::<_, i64>(i)?.max(0) as u64) };
    Ok(TraceRecord {
        id: r.get(0)?,
        ts_ms: r.get(1)?,
        endpoint: r.get(2)?,
        requested_model: r.get(3)?,
        provider: r.get(4)?,
        upstream_model: r.get(5)?,
        status: r.get(6)?,
        error_class: r.get(7)?,
        stream: r.get(8)?,
        tokens: Tokens {
            prompt: u(9)?,
            completion: u(10)?,
            cached_input: u(11)?,
            cache_write: u(12)?,
            reasoning: u(13)?,
        },
        usage_estimated: r.get(14)?,
        cost_nanos: r.get(15)?,
        price_known: r.get(16)?,
        latency_us: r.get(17)?,
        ttft_us: r.get(18)?,
        upstream_us: r.get(19)?,
        overhead_us: r.get(20)?,
        bytes_in: r.get(21)?,
        bytes_out: r.get(22)?,
        user: r.get(23)?,
        request_id: r.get(24)?,
        key_id: r.get(25)?,
        request_body: r.get(26)?,
        response_body: r.get(27)?,
        deployment: r.get(28)?,
        attempts: r.get(29)?,
        variant: r.get(30)?,
        answered_by: r.get(31)?,
        internal_caller: r.get(32)?,
    })
}

const TRACE_COLUMNS: &str = "id, ts_ms, endpoint, requested_model, provider, upstream_model, status, error_class, \
     stream, prompt_tokens, completion_tokens, cached_input_tokens, cache_write_tokens, reasoning_tokens, \
     usage_estimated, cost_nanos, price_known, latency_us, ttft_us, upstream_us, overhead_us, bytes_in, \
     bytes_out, user, request_id, key_id, request_body, response_body, deployment, attempts, variant, \
     answered_by, internal_caller";

impl ReadStore for SqliteReader {
    fn ping(&self) -> Result<(), StoreError> {
        self.with(|c| Ok(c.query_row("SELECT 1", [], |_| Ok(()))?))
    }

    fn schema_version(&self) -> Result<i64, StoreError> {
        self.with(|c| Ok(c.query_row("PRAGMA user_version", [], |r| r.get(0))?))
    }

    fn module_states(&self) -> Result<Vec<ModuleState>, StoreError> {
        self.with(|c| {
            let mut stmt =
                c.prepare("SELECT name, scope, enabled, config FROM module_state ORDER BY name")?;
            let rows = stmt.query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, bool>(2)?,
                    r.get::<_, String>(3)?,
                ))
            })?;
            let mut states = Vec::new();
            for row in rows {
                let (name, scope, enabled, config) = row?;
                let config = serde_json::from_str(&config).map_err(|e| StoreError::Corrupt {
                    table: "module_state",
                    detail: format!("{name}: {e}"),
                })?;
                states.push(ModuleState {
                    name,
                    enabled,
                    config,
                    scope,
                });
            }
            Ok(states)
        })
    }

    fn stored_prices(&self) -> Result<Option<String>, StoreError> {
        self.with(|c| {
            Ok(c.query_row(
                "SELECT body FROM price_files ORDER BY id DESC LIMIT 1",
                [],
                |r| r.get(0),
            )
            .optional()?)
        })
    }

    fn traces(&self, query: &TraceQuery) -> Result<Vec<TraceRecord>, StoreError> {
        self.with(|c| {
            let sql = format!(
                "SELECT {TRACE_COLUMNS} FROM traces WHERE (?1 IS NULL OR requested_model = ?1) \
                 AND (?2 IS NULL OR status = ?2) ORDER BY id DESC LIMIT ?3"
            );
            let mut stmt = c.prepare(&sql)?;
            let limit = query.limit.clamp(1, 10_000) as i64;
            let rows = stmt.query_map(params![query.model, query.status, limit], trace_from_row)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    fn trace_count(&self) -> Result<i64, StoreError> {
        self.with(|c| Ok(c.query_row("SELECT COUNT(*) FROM traces", [], |r| r.get(0))?))
    }

    fn spend(&self, by: SpendBy, since_ms: i64) -> Result<Vec<SpendRow>, StoreError> {
        let key = match by {
            SpendBy::Model => "requested_model",
            SpendBy::Provider => "COALESCE(provider, '(none)')",
            SpendBy::Day => "strftime('%Y-%m-%d', ts_ms / 1000, 'unixepoch')",
        };
        self.with(|c| {
            let sql = format!(
                "SELECT {key} AS k, COUNT(*), SUM(prompt_tokens), SUM(completion_tokens), SUM(cost_nanos) \
                 FROM traces WHERE ts_ms >= ?1 GROUP BY k ORDER BY SUM(cost_nanos) DESC, k"
            );
            let mut stmt = c.prepare(&sql)?;
            let rows = stmt.query_map([since_ms], |r| {
                Ok(SpendRow {
                    key: r.get(0)?,
                    requests: r.get(1)?,
                    prompt_tokens: r.get(2)?,
                    completion_tokens: r.get(3)?,
                    cost_nanos: r.get(4)?,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    fn response(&self, id: &str) -> Result<Option<StoredResponse>, StoreError> {
        self.with(|c| {
            let row: Option<(String, i64, String, String, Option<String>)> = c
                .query_row(
                    "SELECT id, created_ms, response, history, owner FROM responses WHERE id = ?1",
                    [id],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
                )
                .optional()?;
            let Some((id, created_ms, response, history, owner)) = row else {
                return Ok(None);
            };
            let corrupt = |e: serde_json::Error| StoreError::Corrupt {
                table: "responses",
                detail: e.to_string(),
            };
            Ok(Some(StoredResponse {
                id,
                created_ms,
                response: serde_json::from_str(&response).map_err(corrupt)?,
                history: serde_json::from_str(&history).map_err(corrupt)?,
                owner,
            }))
        })
    }

    fn breakers(&self) -> Result<Vec<BreakerRecord>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT deployment, phase, reason, updated_ms FROM breakers ORDER BY deployment",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, i64>(3)?,
                ))
            })?;
            let mut records = Vec::new();
            for row in rows {
                let (deployment, phase, reason, updated_ms) = row?;
                let phase = parse_phase(&phase).ok_or_else(|| StoreError::Corrupt {
                    table: "breakers",
                    detail: format!("{deployment}: bad phase {phase}"),
                })?;
                records.push(BreakerRecord {
                    deployment,
                    phase,
                    reason,
                    updated_ms,
                });
            }
            Ok(records)
        })
    }

    fn auth_failures(&self, since_ms: i64) -> Result<Vec<AuthFailureCount>, StoreError> {
        self.with(|conn| {
            let mut stmt = conn.prepare(
                "SELECT minute_ms, source, reason, count FROM auth_failures WHERE minute_ms >= ?1
                 ORDER BY minute_ms, source, reason",
            )?;
            let rows = stmt.query_map([since_ms], |r| {
                Ok(AuthFailureCount {
                    minute_ms: r.get(0)?,
                    source: r.get(1)?,
                    reason: r.get(2)?,
                    count: r.get(3)?,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    fn ledger(&self) -> Result<Vec<LedgerEntry>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT seq, ts_ms, actor, action, target, details, prev_hash, hash, mac FROM ledger ORDER BY rowid",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, String>(5)?,
                    r.get::<_, String>(6)?,
                    r.get::<_, String>(7)?,
                    r.get::<_, Option<String>>(8)?,
                ))
            })?;
            let mut entries = Vec::new();
            for row in rows {
                let (seq, ts_ms, actor, action, target, details, prev_hash, hash, mac) = row?;
                // Details that no longer parse still verify as altered rather than failing the walk.
                let details = serde_json::from_str(&details).unwrap_or(serde_json::Value::String(details));
                entries.push(LedgerEntry { seq, ts_ms, actor, action, target, details, prev_hash, hash, mac });
            }
            Ok(entries)
        })
    }
}

fn parse_phase(text: &str) -> Option<BreakerPhase> {
    let value: serde_json::Value = serde_json::from_str(text).ok()?;
    match value["phase"].as_str()? {
        "closed" => Some(BreakerPhase::Closed),
        "open" => Some(BreakerPhase::Open {
            until_ms: value["until_ms"].as_i64()?,
        }),
        "half_open" => Some(BreakerPhase::HalfOpen { probes: 0 }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger;
    use serde_json::json;

    fn test_key() -> LedgerKey {
        LedgerKey::from_env_value("00112233445566778899aabbccddeeff")
            .unwrap_or_else(|e| panic!("{e}"))
    }

    fn temp_db() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let path = dir.path().join("t.db");
        (dir, path)
    }

    #[test]
    fn migrates_from_empty_and_reopens() {
        let (_dir, path) = temp_db();
        let (_, reader) = SqliteStore::open(&path, test_key()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(reader.schema_version().ok(), Some(SCHEMA_VERSION));
        drop(reader);
        let (_, reader) = SqliteStore::open(&path, test_key()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(reader.schema_version().ok(), Some(SCHEMA_VERSION));
    }

    #[test]
    fn newer_schema_is_refused_and_untouched() {
        let (_dir, path) = temp_db();
        let conn = Connection::open(&path).unwrap_or_else(|e| panic!("{e}"));
        conn.pragma_update(None, "user_version", 99)
            .unwrap_or_else(|e| panic!("{e}"));
        drop(conn);
        let err = SqliteStore::open(&path, test_key()).err();
        assert!(matches!(
            err,
            Some(StoreError::NewerSchema { found: 99, .. })
        ));
        let conn = Connection::open(&path).unwrap_or_else(|e| panic!("{e}"));
        let tables: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table'",
                [],
                |r| r.get(0),
            )
            .unwrap_or(-1);
        assert_eq!(tables, 0);
    }

    #[test]
    fn pragmas_are_set() {
        let (_dir, path) = temp_db();
        let (writer, _) = SqliteStore::open(&path, test_key()).unwrap_or_else(|e| panic!("{e}"));
        let mode: String = writer
            .conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap_or_default();
        let sync: i64 = writer
            .conn
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .unwrap_or(-1);
        let fk: i64 = writer
            .conn
            .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
            .unwrap_or(-1);
        let busy: i64 = writer
            .conn
            .query_row("PRAGMA busy_timeout", [], |r| r.get(0))
            .unwrap_or(-1);
        assert_eq!((mode.as_str(), sync, fk, busy), ("wal", 1, 1, 5000));
    }

    #[test]
    fn admin_changes_chain_in_the_ledger() {
        let (_dir, path) = temp_db();
        let (mut writer, reader) =
            SqliteStore::open(&path, test_key()).unwrap_or_else(|e| panic!("{e}"));
        for enabled in [true, false, true] {
            let state = ModuleState {
                name: "cost".into(),
                enabled,
                config: json!({}),
                scope: "global".into(),
            };
            let draft = LedgerDraft {
                actor: "t".into(),
                action: "module.update".into(),
                target: "cost".into(),
                details: json!({"enabled": enabled}),
            };
            writer
                .apply_admin(Some(&Persist::ModuleState(state)), &draft, 1)
                .unwrap_or_else(|e| panic!("{e}"));
        }
        let entries = reader.ledger().unwrap_or_default();
        assert_eq!(entries.len(), 3);
        let verified = ledger::verify(&entries, Some(&test_key())).map(|v| v.head.hash);
        assert_eq!(verified.ok(), Some(entries[2].hash.clone()));
        assert!(reader.module_states().unwrap_or_default()[0].enabled);
    }

    fn draft() -> LedgerDraft {
        LedgerDraft {
            actor: "t".into(),
            action: "module.update".into(),
            target: "cost".into(),
            details: json!({}),
        }
    }

    #[test]
    fn issue_9_read_only_open_never_creates_or_migrates() {
        let (_dir, path) = temp_db();
        let err = SqliteStore::open_read_only(&path).err();
        assert!(matches!(err, Some(StoreError::Missing { .. })), "{err:?}");
        assert!(!path.exists());

        let conn = Connection::open(&path).unwrap_or_else(|e| panic!("{e}"));
        conn.execute_batch(MIGRATIONS[0].1)
            .and_then(|()| conn.pragma_update(None, "user_version", 1))
            .unwrap_or_else(|e| panic!("{e}"));
        drop(conn);
        let err = SqliteStore::open_read_only(&path).err();
        assert!(
            matches!(err, Some(StoreError::OlderSchema { found: 1, .. })),
            "{err:?}"
        );
        assert_eq!(SqliteStore::file_schema_version(&path).ok(), Some(1));

        let (_, _) = SqliteStore::open(&path, test_key()).unwrap_or_else(|e| panic!("{e}"));
        let reader = SqliteStore::open_read_only(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(reader.schema_version().ok(), Some(SCHEMA_VERSION));
    }

    #[test]
    fn entries_from_before_the_mac_column_read_as_unanchored() {
        let (_dir, path) = temp_db();
        let conn = Connection::open(&path).unwrap_or_else(|e| panic!("{e}"));
        for (_, sql) in MIGRATIONS.iter().filter(|(v, _)| *v <= 3) {
            conn.execute_batch(sql).unwrap_or_else(|e| panic!("{e}"));
        }
        // An entry as a build before MACs wrote it: chained, but with no mac column at all.
        let old = LedgerEntry::seal(&draft(), None, 1, &test_key());
        conn.execute(
            "INSERT INTO ledger (seq, ts_ms, actor, action, target, details, prev_hash, hash) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                old.seq,
                old.ts_ms,
                old.actor,
                old.action,
                old.target,
                old.details.to_string(),
                old.prev_hash,
                old.hash
            ],
        )
        .and_then(|_| conn.pragma_update(None, "user_version", 3))
        .unwrap_or_else(|e| panic!("{e}"));
        drop(conn);
        let (mut writer, reader) =
            SqliteStore::open(&path, test_key()).unwrap_or_else(|e| panic!("{e}"));
        writer
            .apply_admin(None, &draft(), 2)
            .unwrap_or_else(|e| panic!("{e}"));
        let entries = reader.ledger().unwrap_or_default();
        let verified = ledger::verify(&entries, Some(&test_key()));
        assert_eq!(verified.map(|v| (v.head.seq, v.unanchored)), Ok((2, 1)));
    }

    #[test]
    fn issue_9_no_entry_is_appended_over_a_cut_tail() {
        let (_dir, path) = temp_db();
        Head {
            seq: 5,
            hash: "ab".repeat(32),
        }
        .write(&path)
        .unwrap_or_else(|e| panic!("{e}"));
        let (mut writer, reader) =
            SqliteStore::open(&path, test_key()).unwrap_or_else(|e| panic!("{e}"));
        let err = writer.apply_admin(None, &draft(), 1).err();
        assert!(
            matches!(
                err,
                Some(StoreError::LedgerBehindHead {
                    newest: 0,
                    published: 5
                })
            ),
            "{err:?}"
        );
        assert_eq!(reader.ledger().map(|e| e.len()).ok(), Some(0));
    }
}
