//! Upkeep on PostgreSQL. There is no WAL file of ours to checkpoint and no free-page list to give
//! back (autovacuum reclaims dead rows), so those writes are no-ops that report nothing done;
//! retention deletes run in small batches as on SQLite, each its own statement. The size report
//! reads PostgreSQL's own relation sizes. A hot copy is `pg_dump`'s job, not ours.

use super::read::{PgReader, get};
use super::write::PgWriter;
use crate::store::StoreError;
use crate::store::maintenance::{
    DbStats, MaintenanceStore, MaintenanceWrites, RetentionKind, TableStats, WalCheckpoint,
};

impl MaintenanceWrites for PgWriter {
    fn checkpoint_wal(&mut self, _truncate: bool) -> Result<WalCheckpoint, StoreError> {
        Ok(WalCheckpoint::default())
    }

    fn wal_bytes(&self) -> u64 {
        0
    }

    fn delete_older(
        &mut self,
        kind: RetentionKind,
        cutoff_ms: i64,
        limit: usize,
    ) -> Result<usize, StoreError> {
        // Each statement picks its batch through the time index, so one call touches at most
        // `limit` rows however much is due.
        let sql = match kind {
            RetentionKind::Traces => {
                "DELETE FROM traces WHERE row_id IN \
                 (SELECT row_id FROM traces WHERE ts_ms < $1 LIMIT $2)"
            }
            RetentionKind::Bodies => {
                "UPDATE traces SET request_body = NULL, response_body = NULL WHERE row_id IN \
                 (SELECT row_id FROM traces WHERE ts_ms < $1 \
                  AND (request_body IS NOT NULL OR response_body IS NOT NULL) LIMIT $2)"
            }
            RetentionKind::Responses => {
                "DELETE FROM responses WHERE id IN \
                 (SELECT id FROM responses WHERE created_ms < $1 LIMIT $2)"
            }
            RetentionKind::McpCalls => {
                "DELETE FROM mcp_calls WHERE row_id IN \
                 (SELECT row_id FROM mcp_calls WHERE ts_ms < $1 LIMIT $2)"
            }
        };
        let limit = limit as i64;
        self.on_conn(async |c| Ok(c.execute(sql, &[&cutoff_ms, &limit]).await? as usize))
    }

    fn incremental_vacuum(&mut self, _max_pages: Option<u32>) -> Result<u64, StoreError> {
        Ok(0)
    }
}

impl MaintenanceStore for PgReader {
    fn backup_into(&self, _out: &std::path::Path) -> Result<(), StoreError> {
        Err(StoreError::Backend(
            "a postgres store is backed up with pg_dump (or the server's own replication), \
             not `stockyard backup`"
                .into(),
        ))
    }

    fn db_stats(&self) -> Result<DbStats, StoreError> {
        self.with(move |c| async move {
            let tables = c.query(
                "SELECT c.relname::TEXT, c.reltuples::BIGINT, pg_total_relation_size(c.oid)::BIGINT \
                 FROM pg_class c WHERE c.relkind = 'r' AND c.relnamespace = current_schema()::regnamespace \
                 ORDER BY c.relname COLLATE \"C\"",
                &[],
            ).await?;
            let tables = tables
                .iter()
                .map(|r| {
                    Ok(TableStats {
                        name: get(r, 0)?,
                        rows: get::<i64>(r, 1)?.max(0),
                        bytes: get(r, 2)?,
                    })
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            let page_size: i64 = get(
                &c.query_one("SELECT current_setting('block_size')::BIGINT", &[]).await?,
                0,
            )?;
            let total: i64 = tables.iter().map(|t| t.bytes).sum();
            Ok(DbStats {
                file_bytes: total,
                page_size,
                page_count: total / page_size.max(1),
                free_pages: 0,
                wal_bytes: 0,
                auto_vacuum: "postgres".into(),
                tables,
            })
        })
    }
}
