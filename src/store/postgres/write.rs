//! The writer thread's half of the PostgreSQL backend: one connection, owned by that thread, so
//! these methods need no locking of their own. A trace batch is one transaction (with its spend
//! and console roll-ups, `rollups.rs`); an admin change and its ledger entry are one transaction.
//!
//! Several nodes append to one ledger, so an append first takes a transaction-scoped advisory
//! lock ([`super::LOCK_LEDGER`]): the next node's append waits for this commit, then reads the
//! head this one wrote, and the chain stays one chain. A lost connection is replaced at the next
//! call ([`PgWriter::on_conn`]); while the server is out of reach the calls fail with
//! `StoreError::Unreachable` and the writer thread holds its records (`store/writer/hold.rs`).

use std::collections::HashSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Transaction};

use super::conn::{PgRuntime, Target};
use super::{LOCK_LEDGER, read};
use crate::ledger::{self, Head, LedgerDraft, LedgerEntry, LedgerKey};
use crate::store::{LedgerWrites, Persist, StoreError, TraceRecord, TraceWrites};

pub struct PgWriter {
    /// `None` only if a reconnect fails; the next call tries again.
    client: Option<Client>,
    target: Target,
    /// The backend's runtime, where the connection's I/O task runs (shared with the reader).
    runtime: Arc<PgRuntime>,
    pub(super) key: LedgerKey,
    /// Where the head file goes (beside this node's local state path); `None`: only logged.
    head_beside: Option<PathBuf>,
    /// The head last published; the ledger must never fall behind it.
    pub(super) published: Option<Head>,
}

impl PgWriter {
    pub(super) fn new(
        client: Client,
        target: Target,
        runtime: Arc<PgRuntime>,
        key: LedgerKey,
        head_beside: Option<PathBuf>,
        published: Option<Head>,
    ) -> PgWriter {
        PgWriter {
            client: Some(client),
            target,
            runtime,
            key,
            head_beside,
            published,
        }
    }

    /// Runs `f` on the connection, replaced first if the server closed it (a restart, a
    /// network cut). The writer thread drives its loop inside a current-thread runtime (for its
    /// timers), where no future of ours may be blocked on, so `f` runs through
    /// [`PgRuntime::block_on_borrowed`]: one scoped thread per call, tens of microseconds against
    /// a commit's round trip, and the batch is borrowed, not copied.
    pub(super) fn on_conn<T: Send>(
        &mut self,
        f: impl AsyncFnOnce(&mut Client) -> Result<T, StoreError> + Send,
    ) -> Result<T, StoreError> {
        let (client, target) = (&mut self.client, &self.target);
        self.runtime.block_on_borrowed(async move || {
            if client.as_ref().is_none_or(Client::is_closed) {
                // Dropped first: a failed reconnect must not leave the dead one to be tried.
                *client = None;
                *client = Some(target.reconnect().await?);
                tracing::info!(store = %target.shown, "reconnected the writer to postgres");
            }
            match client.as_mut() {
                Some(client) => f(client).await,
                None => Err(StoreError::Backend("no connection".into())),
            }
        })
    }
}

/// The columns of one trace row, in the order [`row_params`] gives them.
const TRACE_COLUMNS: &str = "id, ts_ms, endpoint, requested_model, provider, upstream_model, \
     status, error_class, stream, prompt_tokens, completion_tokens, cached_input_tokens, \
     cache_write_tokens, reasoning_tokens, usage_estimated, cost_nanos, price_known, latency_us, \
     ttft_us, upstream_us, overhead_us, bytes_in, bytes_out, \"user\", request_id, key_id, \
     request_body, response_body, deployment, attempts, variant, answered_by, internal_caller, \
     team_id, key_metadata, cache, saved_nanos, verdicts, tags, route_rule, prompt";
const TRACE_PARAMS: usize = 41;

/// Rows per INSERT statement. A statement is a round trip, and each one costs the writer's
/// process far more CPU (encoding, the backend runtime's threads waking, two syscalls) than a
/// row's values do, so rows go many to a statement: 64 keeps a statement's parameters (2,624)
/// far under PostgreSQL's 65,535.
const ROWS_PER_INSERT: usize = 64;

/// `INSERT INTO traces ... VALUES (...), (...)` for `rows` rows; a row already stored (a retried
/// batch) is skipped, and the ids of those inserted come back.
fn insert_sql(rows: usize) -> String {
    let mut sql = format!("INSERT INTO traces ({TRACE_COLUMNS}) VALUES ");
    for r in 0..rows {
        sql.push_str(if r == 0 { "(" } else { ", (" });
        for c in 0..TRACE_PARAMS {
            if c > 0 {
                sql.push_str(", ");
            }
            let _ = write!(sql, "${}", r * TRACE_PARAMS + c + 1);
        }
        sql.push(')');
    }
    sql.push_str(" ON CONFLICT (id) DO NOTHING RETURNING id");
    sql
}

/// A row's values that are not fields of the record as they are (widened to BIGINT).
struct Widened {
    tokens: [i64; 5],
    status: i64,
    attempts: i64,
}

impl Widened {
    fn of(t: &TraceRecord) -> Widened {
        Widened {
            tokens: [
                t.tokens.prompt as i64,
                t.tokens.completion as i64,
                t.tokens.cached_input as i64,
                t.tokens.cache_write as i64,
                t.tokens.reasoning as i64,
            ],
            status: i64::from(t.status),
            attempts: i64::from(t.attempts),
        }
    }
}

fn row_params<'a>(t: &'a TraceRecord, w: &'a Widened) -> [&'a (dyn ToSql + Sync); TRACE_PARAMS] {
    [
        &t.id,
        &t.ts_ms,
        &t.endpoint,
        &t.requested_model,
        &t.provider,
        &t.upstream_model,
        &w.status,
        &t.error_class,
        &t.stream,
        &w.tokens[0],
        &w.tokens[1],
        &w.tokens[2],
        &w.tokens[3],
        &w.tokens[4],
        &t.usage_estimated,
        &t.cost_nanos,
        &t.price_known,
        &t.latency_us,
        &t.ttft_us,
        &t.upstream_us,
        &t.overhead_us,
        &t.bytes_in,
        &t.bytes_out,
        &t.user,
        &t.request_id,
        &t.key_id,
        &t.request_body,
        &t.response_body,
        &t.deployment,
        &w.attempts,
        &t.variant,
        &t.answered_by,
        &t.internal_caller,
        &t.team_id,
        &t.key_metadata,
        &t.cache,
        &t.saved_nanos,
        &t.verdicts,
        &t.tags,
        &t.route_rule,
        &t.prompt,
    ]
}

impl TraceWrites for PgWriter {
    fn append_traces(&mut self, traces: &[TraceRecord]) -> Result<(), StoreError> {
        self.on_conn(async |c| append_traces(c, traces).await)
    }
}

async fn append_traces(client: &mut Client, traces: &[TraceRecord]) -> Result<(), StoreError> {
    let tx = client.transaction().await?;
    let widened: Vec<Widened> = traces.iter().map(Widened::of).collect();
    let full = if traces.len() >= ROWS_PER_INSERT {
        Some(tx.prepare(&insert_sql(ROWS_PER_INSERT)).await?)
    } else {
        None
    };
    let mut inserted: HashSet<String> = HashSet::with_capacity(traces.len());
    for (rows, widened) in traces
        .chunks(ROWS_PER_INSERT)
        .zip(widened.chunks(ROWS_PER_INSERT))
    {
        let params: Vec<&(dyn ToSql + Sync)> = rows
            .iter()
            .zip(widened)
            .flat_map(|(t, w)| row_params(t, w))
            .collect();
        let returned = match &full {
            Some(statement) if rows.len() == ROWS_PER_INSERT => {
                tx.query(statement, &params).await?
            }
            _ => tx.query(insert_sql(rows.len()).as_str(), &params).await?,
        };
        for row in returned {
            inserted.insert(read::get(&row, 0)?);
        }
    }
    // A row already stored (a retried batch) was counted when it first went in.
    let stored: Vec<&TraceRecord> = traces.iter().filter(|t| inserted.remove(&t.id)).collect();
    add_spend(&tx, &stored).await?;
    super::rollups::add(&tx, &stored).await?;
    tx.commit().await?;
    Ok(())
}

/// Adds the stored rows to the daily spend rollups, one upsert per group, in key order: nodes
/// committing batches at once lock shared rows in the same order and never deadlock.
async fn add_spend(tx: &Transaction<'_>, stored: &[&TraceRecord]) -> Result<(), StoreError> {
    let mut spend = crate::store::spend::BatchSpend::default();
    for t in stored {
        spend.add(t);
    }
    let (sums, tag_sums) = (spend.groups, spend.tags);
    if !sums.is_empty() {
        let upsert = tx
            .prepare(
                "INSERT INTO spend_daily AS s (day_ms, key_id, team_id, \"user\", model, provider, \
             requests, prompt_tokens, completion_tokens, cost_nanos, saved_nanos) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
             ON CONFLICT (day_ms, key_id, team_id, \"user\", model, provider) DO UPDATE SET \
             requests = s.requests + excluded.requests, \
             prompt_tokens = s.prompt_tokens + excluded.prompt_tokens, \
             completion_tokens = s.completion_tokens + excluded.completion_tokens, \
             cost_nanos = s.cost_nanos + excluded.cost_nanos, \
             saved_nanos = s.saved_nanos + excluded.saved_nanos",
            )
            .await?;
        for ((day, key, team, user, model, provider), s) in &sums {
            tx.execute(
                &upsert,
                &[
                    day,
                    key,
                    team,
                    user,
                    model,
                    provider,
                    &s.requests,
                    &s.prompt,
                    &s.completion,
                    &s.cost_nanos,
                    &s.saved_nanos,
                ],
            )
            .await?;
        }
    }
    if !tag_sums.is_empty() {
        let upsert = tx
            .prepare(
                "INSERT INTO spend_tag_daily AS s (day_ms, tag, requests, prompt_tokens, \
             completion_tokens, cost_nanos, saved_nanos) VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (day_ms, tag) DO UPDATE SET requests = s.requests + excluded.requests, \
             prompt_tokens = s.prompt_tokens + excluded.prompt_tokens, \
             completion_tokens = s.completion_tokens + excluded.completion_tokens, \
             cost_nanos = s.cost_nanos + excluded.cost_nanos, \
             saved_nanos = s.saved_nanos + excluded.saved_nanos",
            )
            .await?;
        for ((day, tag), s) in &tag_sums {
            tx.execute(
                &upsert,
                &[
                    day,
                    tag,
                    &s.requests,
                    &s.prompt,
                    &s.completion,
                    &s.cost_nanos,
                    &s.saved_nanos,
                ],
            )
            .await?;
        }
    }
    Ok(())
}

impl LedgerWrites for PgWriter {
    fn apply_admin(
        &mut self,
        change: Option<&Persist>,
        draft: &LedgerDraft,
        ts_ms: i64,
    ) -> Result<LedgerEntry, StoreError> {
        let key = self.key.clone();
        let published = self.published.clone();
        self.on_conn(async |c| {
            in_tx(c, async |tx| {
                if let Some(change) = change {
                    super::admin::persist(tx, change, ts_ms).await?;
                }
                append_entry(tx, &key, published.as_ref(), draft, ts_ms).await
            })
            .await
        })
    }

    fn publish_head(&mut self, head: &Head) -> Result<(), StoreError> {
        if let Some(beside) = &self.head_beside {
            head.write(beside, &self.key)
                .map_err(|e| StoreError::Head(e.to_string()))?;
        }
        // The log is a second copy of the head, out of reach of whoever edits the database.
        tracing::info!("ledger head seq={} hash={}", head.seq, head.hash);
        self.published = Some(head.clone());
        Ok(())
    }
}

/// Seals `draft` as the entry after the newest one and inserts it inside `tx`, which holds
/// whatever the entry records. The advisory lock, held to the end of `tx`, makes appends from
/// every node take turns, so two never seal over the same predecessor.
pub(super) async fn append_entry(
    tx: &Transaction<'_>,
    key: &LedgerKey,
    published: Option<&Head>,
    draft: &LedgerDraft,
    ts_ms: i64,
) -> Result<LedgerEntry, StoreError> {
    tx.execute(
        "SELECT pg_advisory_xact_lock($1, hashtext(current_schema()))",
        &[&LOCK_LEDGER],
    )
    .await?;
    // Read after the lock: under READ COMMITTED this statement sees the last holder's commit.
    let prev: Option<(i64, String)> = match tx
        .query_opt(
            "SELECT seq, hash FROM ledger ORDER BY seq DESC LIMIT 1",
            &[],
        )
        .await?
    {
        Some(r) => Some((read::get(&r, 0)?, read::get(&r, 1)?)),
        None => None,
    };
    // Appending after a cut tail would publish a new head over the cut and hide it.
    if let Some(published) = published {
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
        key,
    );
    tx.execute(
        "INSERT INTO ledger (seq, ts_ms, actor, action, target, details, prev_hash, hash, mac) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        &[
            &entry.seq,
            &entry.ts_ms,
            &entry.actor,
            &entry.action,
            &entry.target,
            &entry.details.to_string(),
            &entry.prev_hash,
            &entry.hash,
            &entry.mac,
        ],
    )
    .await?;
    Ok(entry)
}

/// The writing open's ledger step, as SQLite's (`sqlite/write.rs`): MAC entries written before
/// the ledger was anchored, then publish the head with a MAC if the head file (when this node
/// keeps one) lacks a valid one and the ledger reaches it. Returns the head the writer must never
/// fall behind.
pub(super) async fn anchor_at_open(
    client: &mut Client,
    key: &LedgerKey,
    head_beside: Option<&Path>,
) -> Result<Option<Head>, StoreError> {
    let published = match head_beside {
        Some(beside) => Head::read(beside).map_err(|e| StoreError::Head(e.to_string()))?,
        None => None,
    };
    let mut entries = read::ledger_entries(&*client).await?;
    let seqs = ledger::to_anchor(&entries, key, published.is_some());
    if !seqs.is_empty() {
        let tx = client.transaction().await?;
        for entry in entries.iter_mut().filter(|e| seqs.contains(&e.seq)) {
            let mac = key.mac(&entry.hash);
            tx.execute(
                "UPDATE ledger SET mac = $1 WHERE seq = $2 AND mac IS NULL",
                &[&mac, &entry.seq],
            )
            .await?;
            entry.mac = Some(mac);
        }
        tx.commit().await?;
        tracing::warn!(
            entries = seqs.len(),
            "anchored ledger entries written before the ledger carried MACs"
        );
    }
    match ledger::verify(&entries, Some(key)) {
        Ok(verified) if !entries.is_empty() => {
            let reaches = published
                .as_ref()
                .is_none_or(|p| ledger::check_head(&entries, &p.head).is_ok());
            let authentic = published.as_ref().is_some_and(|p| p.is_authentic(key));
            // A node joining a ledger other nodes wrote has no head file yet: it starts one.
            let due = !authentic;
            if let (Some(beside), true, true) = (head_beside, due, reaches) {
                verified
                    .head
                    .write(beside, key)
                    .map_err(|e| StoreError::Head(e.to_string()))?;
                return Ok(Some(verified.head));
            }
        }
        Ok(_) => {}
        Err(e) => tracing::error!(
            error = %e,
            "the audit ledger does not verify; run `stockyard audit verify`"
        ),
    }
    Ok(published.map(|p| p.head))
}

/// Runs the closure's statements in one transaction of `client` (for the small writes).
pub(super) async fn in_tx<T>(
    client: &mut Client,
    f: impl AsyncFnOnce(&Transaction<'_>) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let tx = client.transaction().await?;
    let value = f(&tx).await?;
    tx.commit().await?;
    Ok(value)
}
