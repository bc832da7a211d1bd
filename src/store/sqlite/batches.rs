//! SQLite side of `store/batches.rs`: the `batch_objects` table (migration 0019).

use rusqlite::{OptionalExtension, params};

use super::{SqliteReader, SqliteWriter};
use crate::store::StoreError;
use crate::store::batches::{BatchObject, BatchStore, BatchWrites};

impl BatchWrites for SqliteWriter {
    fn save_batch_object(&mut self, r: &BatchObject) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO batch_objects (id, kind, provider, credential, key_id, team_id, created_ms, \
             batch_id, costed_ms, deleted) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) \
             ON CONFLICT (id) DO UPDATE SET \
               batch_id = COALESCE(batch_objects.batch_id, excluded.batch_id), \
               costed_ms = COALESCE(batch_objects.costed_ms, excluded.costed_ms), \
               deleted = MAX(batch_objects.deleted, excluded.deleted)",
            params![
                r.id,
                r.kind,
                r.provider,
                r.credential,
                r.key_id,
                r.team_id,
                r.created_ms,
                r.batch_id,
                r.costed_ms,
                r.deleted
            ],
        )?;
        Ok(())
    }
}

impl BatchStore for SqliteReader {
    fn batch_object(&self, id: &str) -> Result<Option<BatchObject>, StoreError> {
        self.with(|c| {
            Ok(c.query_row(
                "SELECT id, kind, provider, credential, key_id, team_id, created_ms, batch_id, \
                 costed_ms, deleted FROM batch_objects WHERE id = ?1",
                [id],
                |r| {
                    Ok(BatchObject {
                        id: r.get(0)?,
                        kind: r.get(1)?,
                        provider: r.get(2)?,
                        credential: r.get(3)?,
                        key_id: r.get(4)?,
                        team_id: r.get(5)?,
                        created_ms: r.get(6)?,
                        batch_id: r.get(7)?,
                        costed_ms: r.get(8)?,
                        deleted: r.get(9)?,
                    })
                },
            )
            .optional()?)
        })
    }
}
