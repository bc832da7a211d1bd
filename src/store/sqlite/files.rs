//! Whole-file operations on a SQLite database that no server holds open for writing, or that is
//! a copy: verifying a backup, checkpointing before a file is moved, and converting an existing
//! file to incremental auto-vacuum (`stockyard db compact`).

use std::path::Path;

use super::{SqliteStore, connect, connect_read_only};
use crate::store::StoreError;

impl SqliteStore {
    /// Checks a copy: `PRAGMA integrity_check` must say `ok`, and its schema version must be one
    /// this build can read or migrate. Returns that version.
    pub fn verify_copy(path: &Path) -> Result<i64, StoreError> {
        let conn = connect_read_only(path)?;
        let mut problems: Vec<String> = conn
            .prepare("PRAGMA integrity_check")?
            .query_map([], |r| r.get::<_, String>(0))?
            .collect::<Result<_, _>>()?;
        if problems != ["ok"] {
            problems.truncate(5);
            return Err(StoreError::Corrupt {
                table: "file",
                detail: format!(
                    "{}: integrity check: {}",
                    path.display(),
                    problems.join("; ")
                ),
            });
        }
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if version > super::SCHEMA_VERSION {
            return Err(StoreError::SchemaTooNew {
                found: version,
                supported: super::SCHEMA_VERSION,
            });
        }
        Ok(version)
    }

    /// The audit ledger of a copy checked by [`Self::verify_copy`], read as it is: an older
    /// schema is fine (the ledger's columns have been the same since migration 0005, and a file
    /// from before it reads as entries without MACs).
    pub fn ledger_of_copy(path: &Path) -> Result<Vec<crate::ledger::LedgerEntry>, StoreError> {
        let conn = connect_read_only(path)?;
        let has_macs: bool = conn.query_row(
            "SELECT count(*) > 0 FROM pragma_table_info('ledger') WHERE name = 'mac'",
            [],
            |r| r.get(0),
        )?;
        if has_macs {
            super::read::ledger_entries(&conn)
        } else {
            super::read::ledger_entries_before_macs(&conn)
        }
    }

    /// Copies every WAL frame into the database and empties the WAL, so the file alone holds
    /// everything (before it is moved or copied by hand).
    pub fn checkpoint_file(path: &Path) -> Result<(), StoreError> {
        let conn = connect(path, false)?;
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(())
    }

    /// Switches the file to `auto_vacuum=INCREMENTAL` (which takes a full `VACUUM` on a file that
    /// has tables) and returns its size before and after. The caller holds the database's lock.
    pub fn compact(path: &Path) -> Result<(u64, u64), StoreError> {
        let size = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len());
        let before = size(path);
        let conn = connect(path, false)?;
        conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")?;
        conn.execute_batch("VACUUM")?;
        super::dashboard::reset_cursor(&conn)?;
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        drop(conn);
        Ok((before, size(path)))
    }
}
