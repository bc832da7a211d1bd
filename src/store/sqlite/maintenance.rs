//! SQLite upkeep: WAL checkpoints, retention deletes in small transactions, incremental vacuum
//! (the writer's connection), and the size report from `dbstat` (a read connection).

use rusqlite::{Connection, params};

use super::{SqliteReader, SqliteWriter};
use crate::store::StoreError;
use crate::store::maintenance::{
    DbStats, MaintenanceStore, MaintenanceWrites, RetentionKind, TableStats, WalCheckpoint,
};

/// How long a truncating checkpoint waits for readers to finish.
const TRUNCATE_WAIT: std::time::Duration = std::time::Duration::from_millis(200);
/// The busy timeout every connection has otherwise (`connect`).
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(5000);

impl MaintenanceWrites for SqliteWriter {
    fn checkpoint_wal(&mut self, truncate: bool) -> Result<WalCheckpoint, StoreError> {
        let sql = if truncate {
            "PRAGMA wal_checkpoint(TRUNCATE)"
        } else {
            "PRAGMA wal_checkpoint(PASSIVE)"
        };
        // A truncating checkpoint waits for readers through the busy handler; the writer thread
        // must not stall its queue for the full 5 s busy timeout, so it waits briefly and tries
        // again after a later batch.
        if truncate {
            self.conn.busy_timeout(TRUNCATE_WAIT)?;
        }
        let result = self
            .conn
            .query_row(sql, [], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)));
        if truncate {
            self.conn.busy_timeout(BUSY_TIMEOUT)?;
        }
        let (busy, log, done): (i64, i64, i64) = result?;
        Ok(WalCheckpoint {
            busy: busy != 0,
            // -1 when the database is not in WAL mode.
            wal_frames: log.max(0) as u64,
            checkpointed_frames: done.max(0) as u64,
        })
    }

    fn wal_bytes(&self) -> u64 {
        let mut wal = self.db_path.as_os_str().to_owned();
        wal.push("-wal");
        std::fs::metadata(std::path::PathBuf::from(wal)).map_or(0, |m| m.len())
    }

    fn delete_older(
        &mut self,
        kind: RetentionKind,
        cutoff_ms: i64,
        limit: usize,
    ) -> Result<usize, StoreError> {
        // Each statement picks its batch by rowid through the time index, so one call touches
        // at most `limit` rows however much is due.
        let sql = match kind {
            RetentionKind::Traces => {
                "DELETE FROM traces WHERE rowid IN \
                 (SELECT rowid FROM traces WHERE ts_ms < ?1 LIMIT ?2)"
            }
            RetentionKind::Bodies => {
                "UPDATE traces SET request_body = NULL, response_body = NULL WHERE rowid IN \
                 (SELECT rowid FROM traces WHERE ts_ms < ?1 \
                  AND (request_body IS NOT NULL OR response_body IS NOT NULL) LIMIT ?2)"
            }
            RetentionKind::Responses => {
                "DELETE FROM responses WHERE rowid IN \
                 (SELECT rowid FROM responses WHERE created_ms < ?1 LIMIT ?2)"
            }
            RetentionKind::McpCalls => {
                "DELETE FROM mcp_calls WHERE rowid IN \
                 (SELECT rowid FROM mcp_calls WHERE ts_ms < ?1 LIMIT ?2)"
            }
        };
        if kind != RetentionKind::Traces {
            return Ok(self.conn.execute(sql, params![cutoff_ms, limit as i64])?);
        }
        // A listed row's `trace_ids` entry goes with it: the same batch, picked the same way
        // within one transaction, so both statements see the same rows.
        let tx = self.conn.transaction()?;
        tx.execute(
            "DELETE FROM trace_ids WHERE row_id IN \
             (SELECT rowid FROM traces WHERE ts_ms < ?1 LIMIT ?2)",
            params![cutoff_ms, limit as i64],
        )?;
        let changed = tx.execute(sql, params![cutoff_ms, limit as i64])?;
        tx.commit()?;
        Ok(changed)
    }

    fn incremental_vacuum(&mut self, max_pages: Option<u32>) -> Result<u64, StoreError> {
        let before = free_pages(&self.conn)?;
        let sql = match max_pages {
            Some(n) => format!("PRAGMA incremental_vacuum({n})"),
            None => "PRAGMA incremental_vacuum".to_string(),
        };
        // The pragma frees one page per step: it must be stepped to the end, not run once.
        let mut statement = self.conn.prepare(&sql)?;
        let mut rows = statement.query([])?;
        while rows.next()?.is_some() {}
        let after = free_pages(&self.conn)?;
        Ok(before.saturating_sub(after) as u64)
    }
}

fn free_pages(conn: &Connection) -> Result<i64, StoreError> {
    Ok(conn.query_row("PRAGMA freelist_count", [], |r| r.get(0))?)
}

impl MaintenanceStore for SqliteReader {
    fn backup_into(&self, out: &std::path::Path) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute("VACUUM INTO ?1", [out.to_string_lossy()])?;
            super::dashboard::reset_cursor(&Connection::open(out)?)?;
            Ok(())
        })
    }

    fn db_stats(&self) -> Result<DbStats, StoreError> {
        let path = self.pool.path().to_path_buf();
        self.with(|c| {
            let pragma = |name: &str| -> Result<i64, StoreError> {
                Ok(c.query_row(&format!("PRAGMA {name}"), [], |r| r.get(0))?)
            };
            let page_size = pragma("page_size")?;
            let page_count = pragma("page_count")?;
            let free_pages = pragma("freelist_count")?;
            let auto_vacuum = match pragma("auto_vacuum")? {
                1 => "full",
                2 => "incremental",
                _ => "none",
            };
            let mut tables = Vec::new();
            let names: Vec<String> = c
                .prepare(
                    "SELECT name FROM sqlite_master WHERE type = 'table' \
                     AND name NOT LIKE 'sqlite_%' ORDER BY name",
                )?
                .query_map([], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            for name in names {
                let rows: i64 =
                    c.query_row(&format!("SELECT COUNT(*) FROM \"{name}\""), [], |r| {
                        r.get(0)
                    })?;
                // dbstat counts the pages of the table and of each of its indexes.
                let bytes: i64 = c
                    .query_row(
                        "SELECT COALESCE(SUM(d.pgsize), 0) FROM dbstat d \
                         JOIN sqlite_master m ON m.name = d.name WHERE m.tbl_name = ?1",
                        [&name],
                        |r| r.get(0),
                    )
                    .unwrap_or(0);
                tables.push(TableStats { name, rows, bytes });
            }
            let size_of =
                |p: std::path::PathBuf| std::fs::metadata(p).map_or(0, |m| m.len() as i64);
            let mut wal = path.as_os_str().to_owned();
            wal.push("-wal");
            Ok(DbStats {
                file_bytes: size_of(path.clone()),
                page_size,
                page_count,
                free_pages,
                wal_bytes: size_of(wal.into()),
                auto_vacuum: auto_vacuum.to_string(),
                tables,
            })
        })
    }
}
