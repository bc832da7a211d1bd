//! Trace batches on the writer's connection: each row under its number (`trace_rows.rs`), the
//! spend roll-ups in the same transaction, the console's roll-ups once it committed.

use rusqlite::{CachedStatement, Connection, params};

use super::SqliteWriter;
use super::trace_rows::{self, Placement, TraceRows};
use crate::store::{StoreError, TraceRecord, TraceWrites};

impl TraceWrites for SqliteWriter {
    fn flush_rollups(&mut self) -> Result<(), StoreError> {
        self.flush_pending_rollups()
    }

    fn append_traces(&mut self, traces: &[TraceRecord]) -> Result<(), StoreError> {
        let stored = match append_batch(&mut self.conn, &mut self.trace_rows, traces) {
            Ok(stored) => stored,
            Err(e) => {
                // Its numbers are free again, unless a commit reported as failed went in after
                // all: the numbering starts again from the highest row the file holds.
                if let Ok(rows) = TraceRows::read(&self.conn) {
                    self.trace_rows = rows;
                }
                return Err(e);
            }
        };
        // Counted only once their batch is in: a failed batch, retried, is not counted twice.
        for (row, t) in stored {
            self.rollups.add(t, row);
        }
        if self.rollups.due() {
            self.rollups.flush(&mut self.conn)?;
        }
        Ok(())
    }
}

/// A trace row, its number first; [`RowBinder`] binds the parameters in this order.
const INSERT_TRACE: &str = "INSERT OR IGNORE INTO traces (row_id, id, ts_ms, endpoint, \
     requested_model, provider, upstream_model, status, error_class, stream, prompt_tokens, completion_tokens, \
     cached_input_tokens, cache_write_tokens, reasoning_tokens, usage_estimated, cost_nanos, \
     price_known, latency_us, ttft_us, upstream_us, overhead_us, bytes_in, bytes_out, user, \
     request_id, key_id, request_body, response_body, deployment, attempts, variant, \
     answered_by, internal_caller, team_id, key_metadata, cache, saved_nanos, verdicts, tags, \
     route_rule, prompt) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, \
     ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29, ?30, ?31, ?32, ?33, ?34, ?35, ?36, \
     ?37, ?38, ?39, ?40, ?41, ?42)";

/// One batch in one transaction; the rows it stored, with their numbers.
fn append_batch<'t>(
    conn: &mut Connection,
    rows: &mut TraceRows,
    traces: &'t [TraceRecord],
) -> Result<Vec<(i64, &'t TraceRecord)>, StoreError> {
    // Immediate, as every transaction of the writer's connection (`mod.rs`).
    let tx = conn.transaction()?;
    let now_ms = crate::store::now_ms();
    let mut stored: Vec<(i64, &TraceRecord)> = Vec::with_capacity(traces.len());
    {
        let mut rows_out = RowWriter {
            insert: tx.prepare_cached(INSERT_TRACE)?,
            list: tx
                .prepare_cached("INSERT OR REPLACE INTO trace_ids (id, row_id) VALUES (?1, ?2)")?,
            binder: RowBinder::default(),
        };
        let mut rollup = tx.prepare_cached(
            "INSERT INTO spend_daily (day_ms, key_id, team_id, user, model, provider, requests, \
             prompt_tokens, completion_tokens, cost_nanos, saved_nanos) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) \
             ON CONFLICT (day_ms, key_id, team_id, user, model, provider) DO UPDATE SET \
             requests = requests + excluded.requests, prompt_tokens = prompt_tokens + excluded.prompt_tokens, \
             completion_tokens = completion_tokens + excluded.completion_tokens, \
             cost_nanos = cost_nanos + excluded.cost_nanos, \
             saved_nanos = saved_nanos + excluded.saved_nanos",
        )?;
        let mut spend = crate::store::spend::BatchSpend::default();
        for t in traces {
            // A row already stored (a retried batch) was counted when it first went in.
            let Some(row) = rows_out.store(&tx, rows, t, now_ms)? else {
                continue;
            };
            stored.push((row, t));
            spend.add(t);
        }
        let (sums, tag_sums) = (spend.groups, spend.tags);
        // One upsert per group of the batch, not per row: a batch of a busy second is mostly
        // one key, model and provider.
        for ((day, key, team, user, model, provider), sum) in &sums {
            rollup.execute(params![
                day,
                key,
                team,
                user,
                model,
                provider,
                sum.requests,
                sum.prompt,
                sum.completion,
                sum.cost_nanos,
                sum.saved_nanos,
            ])?;
        }
        if !tag_sums.is_empty() {
            let mut tag_rollup = tx.prepare_cached(
                "INSERT INTO spend_tag_daily (day_ms, tag, requests, prompt_tokens, \
                 completion_tokens, cost_nanos, saved_nanos) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
                 ON CONFLICT (day_ms, tag) DO UPDATE SET requests = requests + excluded.requests, \
                 prompt_tokens = prompt_tokens + excluded.prompt_tokens, \
                 completion_tokens = completion_tokens + excluded.completion_tokens, \
                 cost_nanos = cost_nanos + excluded.cost_nanos, \
                 saved_nanos = saved_nanos + excluded.saved_nanos",
            )?;
            for ((day, tag), sum) in &tag_sums {
                tag_rollup.execute(params![
                    day,
                    tag,
                    sum.requests,
                    sum.prompt,
                    sum.completion,
                    sum.cost_nanos,
                    sum.saved_nanos,
                ])?;
            }
        }
    }
    tx.commit()?;
    Ok(stored)
}

/// The statements a batch stores its rows with.
struct RowWriter<'c, 't> {
    insert: CachedStatement<'c>,
    list: CachedStatement<'c>,
    binder: RowBinder<'t>,
}

impl<'t> RowWriter<'_, 't> {
    /// Stores one row and returns its number; `None` when it was already stored.
    fn store(
        &mut self,
        tx: &Connection,
        rows: &mut TraceRows,
        t: &'t TraceRecord,
        now_ms: i64,
    ) -> Result<Option<i64>, StoreError> {
        let last = rows.last();
        let mut placement = rows.place(&t.id, now_ms);
        // A row placed off its number may be one a retried batch already stored.
        if let Placement::Listed(_) = placement
            && let Some(stored) = trace_rows::row_of(tx, &t.id)?
        {
            rows.set_last(last.max(stored));
            return Ok(None);
        }
        if self.binder.insert(&mut self.insert, placement.row(), t)? == 0 {
            // The number is taken. By this very row, when a batch whose commit was reported as
            // failed went in after all; otherwise the row goes past the highest number stored.
            if let Some(stored) = trace_rows::row_of(tx, &t.id)? {
                rows.set_last(last.max(stored));
                return Ok(None);
            }
            *rows = TraceRows::read(tx)?;
            placement = rows.listed();
            if self.binder.insert(&mut self.insert, placement.row(), t)? == 0 {
                return Err(StoreError::Constraint(format!(
                    "trace row number {} is taken although it is past the highest stored",
                    placement.row()
                )));
            }
        }
        if let Placement::Listed(row) = placement {
            self.list.execute(params![t.id, row])?;
        }
        Ok(Some(placement.row()))
    }
}

/// Binds each row's values into the batch's insert statement, skipping every parameter that
/// already holds the value: SQLite keeps a statement's bindings from one execution to the next
/// (and rusqlite clears them when it hands out the cached statement, so a batch starts from all
/// `NULL`). The endpoint, model, provider, key, flags and the many empty columns mostly repeat from
/// one row to the next; a text binding is copied, an unchanged one costs a comparison.
#[derive(Default)]
struct RowBinder<'t> {
    /// The row whose values the statement holds.
    bound: Option<&'t TraceRecord>,
}

impl<'t> RowBinder<'t> {
    /// Binds `t` under `row` and executes; the number of rows inserted (0: the number is taken).
    fn insert(
        &mut self,
        insert: &mut CachedStatement<'_>,
        row: i64,
        t: &'t TraceRecord,
    ) -> Result<usize, StoreError> {
        let bound = self.bound.replace(t);
        // Parameter `$index` takes `$value` of the row `$r`, unless the bound row has it already.
        macro_rules! set {
            ($index:literal, $r:ident => $value:expr) => {{
                let changed = match bound {
                    Some($r) => {
                        let before = $value;
                        let $r = t;
                        before != $value
                    }
                    None => true,
                };
                if changed {
                    let $r = t;
                    insert.raw_bind_parameter($index, $value)?;
                }
            }};
        }
        insert.raw_bind_parameter(1, row)?;
        insert.raw_bind_parameter(2, &t.id)?;
        set!(3, r => r.ts_ms);
        set!(4, r => &r.endpoint);
        set!(5, r => &r.requested_model);
        set!(6, r => &r.provider);
        set!(7, r => &r.upstream_model);
        set!(8, r => r.status);
        set!(9, r => &r.error_class);
        set!(10, r => r.stream);
        set!(11, r => r.tokens.prompt as i64);
        set!(12, r => r.tokens.completion as i64);
        set!(13, r => r.tokens.cached_input as i64);
        set!(14, r => r.tokens.cache_write as i64);
        set!(15, r => r.tokens.reasoning as i64);
        set!(16, r => r.usage_estimated);
        set!(17, r => r.cost_nanos);
        set!(18, r => r.price_known);
        set!(19, r => r.latency_us);
        set!(20, r => r.ttft_us);
        set!(21, r => r.upstream_us);
        set!(22, r => r.overhead_us);
        set!(23, r => r.bytes_in);
        set!(24, r => r.bytes_out);
        set!(25, r => &r.user);
        insert.raw_bind_parameter(26, &t.request_id)?;
        set!(27, r => &r.key_id);
        set!(28, r => &r.request_body);
        set!(29, r => &r.response_body);
        set!(30, r => &r.deployment);
        set!(31, r => r.attempts);
        set!(32, r => &r.variant);
        set!(33, r => &r.answered_by);
        set!(34, r => &r.internal_caller);
        set!(35, r => &r.team_id);
        set!(36, r => &r.key_metadata);
        set!(37, r => &r.cache);
        set!(38, r => r.saved_nanos);
        set!(39, r => &r.verdicts);
        set!(40, r => &r.tags);
        set!(41, r => &r.route_rule);
        set!(42, r => &r.prompt);
        Ok(insert.raw_execute()?)
    }
}
