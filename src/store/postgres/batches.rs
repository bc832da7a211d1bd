//! PostgreSQL side of `store/batches.rs`: the `batch_objects` table (migration 0019). A second
//! save of an object keeps its first costing and its batch link, as on SQLite, so two nodes
//! fetching one batch's output cannot both mark it.

use super::read::PgReader;
use super::read::get;
use super::write::PgWriter;
use crate::store::StoreError;
use crate::store::batches::{BatchObject, BatchStore, BatchWrites};

impl BatchWrites for PgWriter {
    fn save_batch_object(&mut self, r: &BatchObject) -> Result<(), StoreError> {
        self.on_conn(async |c| {
            c.execute(
                "INSERT INTO batch_objects (id, kind, provider, credential, key_id, team_id, \
                 created_ms, batch_id, costed_ms, deleted) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
                 ON CONFLICT (id) DO UPDATE SET \
                   batch_id = COALESCE(batch_objects.batch_id, excluded.batch_id), \
                   costed_ms = COALESCE(batch_objects.costed_ms, excluded.costed_ms), \
                   deleted = batch_objects.deleted OR excluded.deleted",
                &[
                    &r.id,
                    &r.kind,
                    &r.provider,
                    &r.credential,
                    &r.key_id,
                    &r.team_id,
                    &r.created_ms,
                    &r.batch_id,
                    &r.costed_ms,
                    &r.deleted,
                ],
            )
            .await?;
            Ok(())
        })
    }
}

impl BatchStore for PgReader {
    fn batch_object(&self, id: &str) -> Result<Option<BatchObject>, StoreError> {
        let id = id.to_string();
        self.with(move |c| async move {
            let row = c
                .query_opt(
                    "SELECT id, kind, provider, credential, key_id, team_id, created_ms, batch_id, \
                 costed_ms, deleted FROM batch_objects WHERE id = $1",
                    &[&id],
                )
                .await?;
            row.map(|r| {
                Ok(BatchObject {
                    id: get(&r, 0)?,
                    kind: get(&r, 1)?,
                    provider: get(&r, 2)?,
                    credential: get(&r, 3)?,
                    key_id: get(&r, 4)?,
                    team_id: get(&r, 5)?,
                    created_ms: get(&r, 6)?,
                    batch_id: get(&r, 7)?,
                    costed_ms: get(&r, 8)?,
                    deleted: get(&r, 9)?,
                })
            })
            .transpose()
        })
    }
}
