//! The console's hourly and daily roll-ups (`trace_rollup`), kept in each trace batch's own
//! transaction. SQLite sums them in memory and writes them about once a second behind a cursor
//! over its rowids; with several nodes appending, no one node's cursor can say which traces the
//! table holds, so here the roll-ups simply commit with the rows they count (a retried batch adds
//! nothing, since only rows newly inserted are passed in).

use std::collections::BTreeMap;

use tokio_postgres::Transaction;

use super::read::get;
use crate::store::dashboard::{HOUR_MS, Stats};
use crate::store::{StoreError, TraceRecord};

const DAY_MS: i64 = 24 * HOUR_MS;

/// A roll-up row's key: grain, start, key, team, model, provider.
type RollupKey = (i64, i64, String, String, String, String);

/// Adds `stored` (the rows this batch inserted) to the roll-ups. Rows are touched in key order
/// and locked before their histograms are merged (SQL cannot add the sparse histograms), so
/// nodes writing the same hour at once neither lose an update nor deadlock.
pub(super) async fn add(tx: &Transaction<'_>, stored: &[&TraceRecord]) -> Result<(), StoreError> {
    let mut groups: BTreeMap<RollupKey, Stats> = BTreeMap::new();
    for t in stored {
        for grain in [HOUR_MS, DAY_MS] {
            let key = (
                grain,
                t.ts_ms - t.ts_ms.rem_euclid(grain),
                t.key_id.clone().unwrap_or_default(),
                t.team_id.clone().unwrap_or_default(),
                t.requested_model.clone(),
                t.provider.clone().unwrap_or_default(),
            );
            groups.entry(key).or_default().add(t);
        }
    }
    if groups.is_empty() {
        return Ok(());
    }
    let claim = tx.prepare(
        "INSERT INTO trace_rollup (grain_ms, start_ms, key_id, team_id, model, provider, requests, \
         errors, cache_hits, prompt_tokens, completion_tokens, cost_nanos, saved_nanos, \
         latency_us_sum, ttft_us_sum, ttft_count, latency_hist, ttft_hist) \
         VALUES ($1, $2, $3, $4, $5, $6, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, ''::BYTEA, ''::BYTEA) \
         ON CONFLICT DO NOTHING",
    ).await?;
    let lock = tx.prepare(
        "SELECT latency_hist, ttft_hist FROM trace_rollup WHERE grain_ms = $1 AND start_ms = $2 \
         AND key_id = $3 AND team_id = $4 AND model = $5 AND provider = $6 FOR UPDATE",
    ).await?;
    let update = tx
        .prepare(
            "UPDATE trace_rollup SET requests = requests + $7, errors = errors + $8, \
         cache_hits = cache_hits + $9, prompt_tokens = prompt_tokens + $10, \
         completion_tokens = completion_tokens + $11, cost_nanos = cost_nanos + $12, \
         saved_nanos = saved_nanos + $13, latency_us_sum = latency_us_sum + $14, \
         ttft_us_sum = ttft_us_sum + $15, ttft_count = ttft_count + $16, latency_hist = $17, \
         ttft_hist = $18 WHERE grain_ms = $1 AND start_ms = $2 AND key_id = $3 AND team_id = $4 \
         AND model = $5 AND provider = $6",
        )
        .await?;
    for ((grain, start, key, team, model, provider), s) in &groups {
        tx.execute(&claim, &[grain, start, key, team, model, provider])
            .await?;
        let row = tx
            .query_one(&lock, &[grain, start, key, team, model, provider])
            .await?;
        let mut latency = s.latency.clone();
        let mut ttft = s.ttft.clone();
        latency.merge_encoded(&get::<Vec<u8>>(&row, 0)?);
        ttft.merge_encoded(&get::<Vec<u8>>(&row, 1)?);
        tx.execute(
            &update,
            &[
                grain,
                start,
                key,
                team,
                model,
                provider,
                &s.requests,
                &s.errors,
                &s.cache_hits,
                &s.prompt_tokens,
                &s.completion_tokens,
                &s.cost_nanos,
                &s.saved_nanos,
                &s.latency_us_sum,
                &s.ttft_us_sum,
                &s.ttft_count,
                &latency.encode(),
                &ttft.encode(),
            ],
        )
        .await?;
    }
    Ok(())
}
