//! Counter shares on PostgreSQL (`store/counters/shares.rs`): each step is one call of
//! `stockyard_counter_sync` (migration 0020), which takes the bucket's advisory lock for its own
//! transaction, so a step is atomic across nodes and costs one round trip. A batch of steps (the
//! flusher's reports) runs on one pooled connection, one call after another.

use super::read::{PgReader, get};
use crate::store::StoreError;
use crate::store::counters::shares::{CounterStore, SEED_NODE, ShareSync, Synced};

const SYNC_SQL: &str = "SELECT granted, total FROM stockyard_counter_sync(\
    $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)";

impl CounterStore for PgReader {
    fn is_shared(&self) -> bool {
        true
    }

    fn sync(&self, steps: Vec<ShareSync>) -> Result<Vec<Synced>, StoreError> {
        self.with(move |c| async move {
            // Cached on the connection: the flusher syncs every few hundred milliseconds.
            let statement = c.prepare_cached(SYNC_SQL).await?;
            let mut out = Vec::with_capacity(steps.len());
            for s in &steps {
                let row = c
                    .query_one(
                        &statement,
                        &[
                            &s.counter,
                            &s.node,
                            &s.bucket_start_ms,
                            &s.bucket_end_ms,
                            &s.sliding_ms,
                            &s.used_delta,
                            &s.keep_leased,
                            &s.need,
                            &s.slice_of,
                            &s.limit,
                            &s.now_ms,
                            &s.lease_until_ms,
                        ],
                    )
                    .await?;
                out.push(Synced {
                    granted: get(&row, 0)?,
                    total: get(&row, 1)?,
                });
            }
            Ok(out)
        })
    }

    fn seed(
        &self,
        counter: &str,
        bucket_start_ms: i64,
        bucket_end_ms: i64,
        value: i64,
    ) -> Result<bool, StoreError> {
        let counter = counter.to_string();
        self.with(move |c| async move {
            // Two nodes seeding at once both insert the seed node's row: the second conflicts
            // and adds nothing.
            let n = c.execute(
                "INSERT INTO counter_shares (counter, bucket_start_ms, node, bucket_end_ms, used) \
                 SELECT $1, $2, $3, $4, $5 WHERE NOT EXISTS (SELECT 1 FROM counter_shares \
                 WHERE counter = $1 AND bucket_start_ms = $2) ON CONFLICT DO NOTHING",
                &[
                    &counter,
                    &bucket_start_ms,
                    &SEED_NODE,
                    &bucket_end_ms,
                    &value,
                ],
            ).await?;
            Ok(n > 0)
        })
    }

    fn prune(&self, now_ms: i64) -> Result<u64, StoreError> {
        self.with(move |c| async move {
            // `ended_for_good`: a window after the bucket's own ended too.
            let n = c
                .execute(
                    "DELETE FROM counter_shares WHERE bucket_end_ms <> $2 \
                 AND bucket_end_ms + (bucket_end_ms - bucket_start_ms) <= $1",
                    &[&now_ms, &i64::MAX],
                )
                .await?;
            Ok(n)
        })
    }
}
