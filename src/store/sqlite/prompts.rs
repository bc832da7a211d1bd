//! Prompt templates on SQLite: reads for start-up, and the write an admin change persists in its
//! ledger transaction.

use rusqlite::{Transaction, params};

use super::SqliteReader;
use crate::store::StoreError;
use crate::store::prompts::{PromptStore, PromptVersion, PromptWrite};

impl PromptStore for SqliteReader {
    fn prompt_versions(&self) -> Result<Vec<PromptVersion>, StoreError> {
        self.with(|c| {
            let mut statement = c.prepare_cached(
                "SELECT name, version, body, created_ms FROM prompt_versions ORDER BY name, version",
            )?;
            let rows = statement.query_map([], |r| {
                Ok(PromptVersion {
                    name: r.get(0)?,
                    version: r.get(1)?,
                    body: r.get(2)?,
                    created_ms: r.get(3)?,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    fn prompt_active(&self) -> Result<Vec<(String, u32)>, StoreError> {
        self.with(|c| {
            let mut statement =
                c.prepare_cached("SELECT name, active FROM prompt_templates ORDER BY name")?;
            let rows = statement.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }
}

/// Persists `write` inside the admin change's transaction.
pub(super) fn write(
    tx: &Transaction<'_>,
    write: &PromptWrite,
    ts_ms: i64,
) -> Result<(), StoreError> {
    match write {
        PromptWrite::Put(version) => {
            tx.execute(
                "INSERT INTO prompt_versions (name, version, body, created_ms) VALUES (?1, ?2, ?3, ?4)",
                params![version.name, version.version, version.body, version.created_ms],
            )?;
            tx.execute(
                "INSERT INTO prompt_templates (name, active, updated_ms) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (name) DO UPDATE SET active = excluded.active, updated_ms = excluded.updated_ms",
                params![version.name, version.version, ts_ms],
            )?;
        }
        PromptWrite::Activate { name, version } => {
            let exists: i64 = tx.query_row(
                "SELECT COUNT(*) FROM prompt_versions WHERE name = ?1 AND version = ?2",
                params![name, version],
                |r| r.get(0),
            )?;
            if exists != 1 {
                return Err(StoreError::Constraint(format!(
                    "no version {version} of prompt {name:?}"
                )));
            }
            tx.execute(
                "UPDATE prompt_templates SET active = ?2, updated_ms = ?3 WHERE name = ?1",
                params![name, version, ts_ms],
            )?;
        }
    }
    Ok(())
}
