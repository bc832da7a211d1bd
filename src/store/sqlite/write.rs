//! The writer thread's half of the SQLite backend: one connection, owned by that thread alone,
//! so these methods need no locking. A trace batch is one transaction; an admin change and its
//! ledger entry are one transaction.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, params};

use crate::ledger::{self, Head, LedgerDraft, LedgerEntry, LedgerKey};
use crate::store::{
    AuthFailureCount, AuthFailureWrites, BreakerRecord, BreakerWrites, BudgetAlert, LedgerWrites,
    Persist, RateCount, RateLimitWrites, ResponseWrites, SpendWrites, StoreError, StoredResponse,
    WriteBackend,
};

pub struct SqliteWriter {
    pub(super) conn: Connection,
    pub(super) key: LedgerKey,
    pub(super) db_path: PathBuf,
    /// The head last published beside the database; the ledger must never fall behind it.
    pub(super) published: Option<Head>,
    /// The console's roll-up sums of stored traces, written about once a second.
    pub(super) rollups: super::dashboard::PendingRollups,
    /// The trace rows' numbering (`trace_rows.rs`).
    pub(super) trace_rows: super::trace_rows::TraceRows,
}

impl SqliteWriter {
    pub(super) fn flush_pending_rollups(&mut self) -> Result<(), StoreError> {
        self.rollups.flush(&mut self.conn)
    }
}

impl LedgerWrites for SqliteWriter {
    fn apply_admin(
        &mut self,
        change: Option<&Persist>,
        draft: &LedgerDraft,
        ts_ms: i64,
    ) -> Result<LedgerEntry, StoreError> {
        let tx = self.conn.transaction()?;
        match change {
            Some(Persist::ModuleState(state)) => save_module_state(&tx, state, ts_ms)?,
            Some(Persist::Breaker(record)) => save_breaker(&tx, record)?,
            Some(Persist::Prompt(write)) => super::prompts::write(&tx, write, ts_ms)?,
            Some(Persist::Keys(writes)) => super::keys::write(&tx, writes)?,
            Some(Persist::Prices { body }) => {
                tx.execute(
                    "INSERT INTO price_files (loaded_ms, body) VALUES (?1, ?2)",
                    params![ts_ms, body],
                )?;
            }
            Some(Persist::AddCredential { record, check }) => {
                tx.execute(
                    "INSERT OR IGNORE INTO secrets_meta (name, value) VALUES ('check', ?1)",
                    params![check],
                )?;
                tx.execute(
                    "INSERT INTO provider_credentials (id, provider, kind, base_url, sealed, \
                     fingerprint, label, created_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    params![
                        record.id,
                        record.provider,
                        record.kind,
                        record.base_url,
                        record.sealed,
                        record.fingerprint,
                        record.label,
                        record.created_ms
                    ],
                )?;
            }
            Some(Persist::RemoveCredentials { ids }) => {
                for id in ids {
                    let removed =
                        tx.execute("DELETE FROM provider_credentials WHERE id = ?1", [id])?;
                    if removed != 1 {
                        return Err(StoreError::Constraint(format!("no credential {id}")));
                    }
                }
            }
            Some(Persist::Reseal {
                records,
                check,
                modules,
            }) => {
                reseal(&tx, records, check)?;
                for state in modules {
                    save_module_state(&tx, state, ts_ms)?;
                }
            }
            None => {}
        }
        let entry = append_entry(&tx, &self.key, self.published.as_ref(), draft, ts_ms)?;
        tx.commit()?;
        Ok(entry)
    }

    fn publish_head(&mut self, head: &Head) -> Result<(), StoreError> {
        head.write(&self.db_path, &self.key)
            .map_err(|e| StoreError::Head(e.to_string()))?;
        // The log is a second copy of the head, out of reach of whoever edits the files.
        tracing::info!("ledger head seq={} hash={}", head.seq, head.hash);
        self.published = Some(head.clone());
        Ok(())
    }
}

/// Seals `draft` as the entry after the newest one and inserts it, inside `tx` (the caller's
/// transaction, which holds whatever the entry records). Refuses when the stored ledger ends
/// before the published head `published`.
pub(super) fn append_entry(
    tx: &rusqlite::Transaction<'_>,
    key: &LedgerKey,
    published: Option<&Head>,
    draft: &LedgerDraft,
    ts_ms: i64,
) -> Result<LedgerEntry, StoreError> {
    let prev: Option<(i64, String)> = tx
        .query_row(
            "SELECT seq, hash FROM ledger ORDER BY seq DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    // Appending after a cut tail would publish a new head over the cut and hide it; refuse
    // the change (nothing is applied) until someone looks at `audit verify`.
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
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            entry.seq,
            entry.ts_ms,
            entry.actor,
            entry.action,
            entry.target,
            entry.details.to_string(),
            entry.prev_hash,
            entry.hash,
            entry.mac
        ],
    )?;
    Ok(entry)
}

/// The writing open's ledger step, before the writer thread starts: MAC the entries written
/// before the ledger was anchored (once: [`ledger::to_anchor`] decides which), then, when the
/// ledger verifies under `key`, publish its head with a MAC if the head file lacks a valid one and
/// the ledger still reaches the head it names (never over a cut). Returns the head the writer must
/// never fall behind. A ledger that does not verify is left as it is, for `audit verify` to name.
pub(super) fn anchor_at_open(
    conn: &mut Connection,
    key: &LedgerKey,
    db_path: &Path,
) -> Result<Option<Head>, StoreError> {
    let published = Head::read(db_path).map_err(|e| StoreError::Head(e.to_string()))?;
    let mut entries = super::read::ledger_entries(conn)?;
    let seqs = ledger::to_anchor(&entries, key, published.is_some());
    if !seqs.is_empty() {
        let tx = conn.transaction()?;
        {
            let mut update =
                tx.prepare("UPDATE ledger SET mac = ?1 WHERE seq = ?2 AND mac IS NULL")?;
            for entry in entries.iter_mut().filter(|e| seqs.contains(&e.seq)) {
                let mac = key.mac(&entry.hash);
                update.execute(params![mac, entry.seq])?;
                entry.mac = Some(mac);
            }
        }
        tx.commit()?;
        tracing::warn!(
            entries = seqs.len(),
            first = seqs.first().copied().unwrap_or_default(),
            last = seqs.last().copied().unwrap_or_default(),
            "anchored ledger entries written before the ledger carried MACs"
        );
    }
    match ledger::verify(&entries, Some(key)) {
        Ok(verified) if !entries.is_empty() => {
            let reaches = published
                .as_ref()
                .is_none_or(|p| ledger::check_head(&entries, &p.head).is_ok());
            let authentic = published.as_ref().is_some_and(|p| p.is_authentic(key));
            // With no head file, only a ledger anchored just now gets one here: an anchored
            // ledger whose head file went missing keeps failing verify until someone looks.
            let due = match &published {
                Some(_) => !authentic,
                None => !seqs.is_empty(),
            };
            if published.is_none() && !due {
                tracing::warn!(
                    path = %Head::path_for(db_path).display(),
                    "the ledger is anchored but its head file is missing; `stockyard audit verify` \
                     fails until it is restored"
                );
            }
            if due && reaches {
                verified
                    .head
                    .write(db_path, key)
                    .map_err(|e| StoreError::Head(e.to_string()))?;
                tracing::info!(
                    "ledger head seq={} hash={} (published with its MAC)",
                    verified.head.seq,
                    verified.head.hash
                );
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

/// Every record under the new key, or nothing: a record the caller did not re-seal would be left
/// under a key that is about to be gone.
fn save_module_state(
    tx: &rusqlite::Transaction<'_>,
    state: &crate::store::ModuleState,
    ts_ms: i64,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO module_state (name, scope, enabled, config, updated_ms) VALUES (?1, ?2, ?3, ?4, ?5) \
         ON CONFLICT (name, scope) DO UPDATE SET enabled = excluded.enabled, config = excluded.config, \
         updated_ms = excluded.updated_ms",
        params![state.name, state.scope, state.enabled, state.config.to_string(), ts_ms],
    )?;
    Ok(())
}

fn reseal(
    tx: &rusqlite::Transaction<'_>,
    records: &[(String, Vec<u8>)],
    check: &[u8],
) -> Result<(), StoreError> {
    let stored: i64 = tx.query_row("SELECT COUNT(*) FROM provider_credentials", [], |r| {
        r.get(0)
    })?;
    if stored != records.len() as i64 {
        return Err(StoreError::Constraint(format!(
            "re-sealing {} credentials, but {stored} are stored",
            records.len()
        )));
    }
    for (id, sealed) in records {
        let updated = tx.execute(
            "UPDATE provider_credentials SET sealed = ?1 WHERE id = ?2",
            params![sealed, id],
        )?;
        if updated != 1 {
            return Err(StoreError::Constraint(format!("no credential {id}")));
        }
    }
    tx.execute(
        "INSERT INTO secrets_meta (name, value) VALUES ('check', ?1) \
         ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        params![check],
    )?;
    Ok(())
}

impl BreakerWrites for SqliteWriter {
    fn save_breaker(&mut self, record: &BreakerRecord) -> Result<(), StoreError> {
        save_breaker(&self.conn, record)
    }
}

impl ResponseWrites for SqliteWriter {
    fn save_response(&mut self, record: &StoredResponse) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT OR REPLACE INTO responses (id, created_ms, response, history, owner) \
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                record.id,
                record.created_ms,
                record.response.to_string(),
                record.history.to_string(),
                record.owner
            ],
        )?;
        Ok(())
    }
}

impl AuthFailureWrites for SqliteWriter {
    fn add_auth_failures(&mut self, counts: &[AuthFailureCount]) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        {
            let mut upsert = tx.prepare_cached(
                "INSERT INTO auth_failures (minute_ms, source, reason, count) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (minute_ms, source, reason) DO UPDATE SET count = count + excluded.count",
            )?;
            for c in counts {
                upsert.execute(params![c.minute_ms, c.source, c.reason, c.count])?;
            }
        }
        tx.commit()?;
        Ok(())
    }
}

impl SpendWrites for SqliteWriter {
    fn record_budget_alert(&mut self, alert: &BudgetAlert) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT OR IGNORE INTO budget_alerts (scope, subject, period, period_start_ms, percent, \
             ts_ms, spend_nanos, limit_nanos) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                alert.scope,
                alert.subject,
                alert.period,
                alert.period_start_ms,
                alert.percent,
                alert.ts_ms,
                alert.spend_nanos,
                alert.limit_nanos
            ],
        )?;
        Ok(())
    }
}

impl RateLimitWrites for SqliteWriter {
    fn add_rate_counts(&mut self, deltas: &[RateCount], now_ms: i64) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        {
            let mut upsert = tx.prepare_cached(
                "INSERT INTO rate_counts (counter, window_start_ms, window_ms, value) \
                 VALUES (?1, ?2, ?3, ?4) ON CONFLICT (counter, window_start_ms) \
                 DO UPDATE SET value = value + excluded.value",
            )?;
            for d in deltas {
                upsert.execute(params![d.counter, d.window_start_ms, d.window_ms, d.value])?;
            }
            tx.execute(
                "DELETE FROM rate_counts WHERE window_start_ms + window_ms <= ?1",
                [now_ms],
            )?;
        }
        tx.commit()?;
        Ok(())
    }
}

impl WriteBackend for SqliteWriter {
    fn checkpoint(&mut self) -> Result<(), StoreError> {
        self.rollups.flush(&mut self.conn)?;
        self.conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(())
    }
}

fn save_breaker(conn: &Connection, record: &BreakerRecord) -> Result<(), StoreError> {
    let phase = serde_json::to_string(&record.phase).map_err(|e| StoreError::Corrupt {
        table: "breakers",
        detail: e.to_string(),
    })?;
    conn.execute(
        "INSERT INTO breakers (deployment, phase, reason, updated_ms) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT (deployment) DO UPDATE SET phase = excluded.phase, reason = excluded.reason, \
         updated_ms = excluded.updated_ms",
        params![record.deployment, phase, record.reason, record.updated_ms],
    )?;
    Ok(())
}
