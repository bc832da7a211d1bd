//! The read half of the SQLite backend: every concern's read trait on one [`SqliteReader`],
//! whose queries each take a connection from the pool (see `pool.rs`), so a long report and a
//! request-path lookup run side by side.

use rusqlite::{Connection, OptionalExtension, params};

use super::SCHEMA_VERSION;
use super::pool::ReadPool;
use crate::cost::Tokens;
use crate::ledger::LedgerEntry;
use crate::store::{
    AuthFailureCount, AuthFailureStore, BreakerPhase, BreakerRecord, BreakerStore, BudgetAlert,
    CredentialStore, LedgerStore, ModuleState, ModuleStateStore, RateCount, RateLimitStore,
    ResponseStore, SpendBy, SpendRow, SpendStore, StoreError, StoreHealth, StoredCredential,
    StoredResponse, TraceQuery, TraceRecord, TraceStore,
};

/// The read half: a pool of connections shared by every concern's read trait.
pub struct SqliteReader {
    pub(super) pool: ReadPool,
}

impl SqliteReader {
    /// Runs `f` on a pooled connection; other callers meanwhile use the pool's other connections.
    pub(super) fn with<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let conn = self.pool.get()?;
        f(&conn)
    }
}

pub(super) fn trace_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<TraceRecord> {
    let u = |i: usize| -> rusqlite::Result<u64> { Ok(r.get::<_, i64>(i)?.max(0) as u64) };
    Ok(TraceRecord {
        id: r.get(0)?,
        ts_ms: r.get(1)?,
        endpoint: r.get(2)?,
        requested_model: r.get(3)?,
        provider: r.get(4)?,
        upstream_model: r.get(5)?,
        status: r.get(6)?,
        error_class: r.get(7)?,
        stream: r.get(8)?,
        tokens: Tokens {
            prompt: u(9)?,
            completion: u(10)?,
            cached_input: u(11)?,
            cache_write: u(12)?,
            reasoning: u(13)?,
        },
        usage_estimated: r.get(14)?,
        cost_nanos: r.get(15)?,
        price_known: r.get(16)?,
        latency_us: r.get(17)?,
        ttft_us: r.get(18)?,
        upstream_us: r.get(19)?,
        overhead_us: r.get(20)?,
        bytes_in: r.get(21)?,
        bytes_out: r.get(22)?,
        user: r.get(23)?,
        request_id: r.get(24)?,
        key_id: r.get(25)?,
        request_body: r.get(26)?,
        response_body: r.get(27)?,
        deployment: r.get(28)?,
        attempts: r.get(29)?,
        variant: r.get(30)?,
        answered_by: r.get(31)?,
        internal_caller: r.get(32)?,
        team_id: r.get(33)?,
        key_metadata: r.get(34)?,
        cache: r.get(35)?,
        saved_nanos: r.get(36)?,
        verdicts: r.get(37)?,
        tags: r.get(38)?,
        route_rule: r.get(39)?,
        prompt: r.get(40)?,
    })
}

pub(super) const TRACE_COLUMNS: &str = "id, ts_ms, endpoint, requested_model, provider, upstream_model, status, error_class, \
     stream, prompt_tokens, completion_tokens, cached_input_tokens, cache_write_tokens, reasoning_tokens, \
     usage_estimated, cost_nanos, price_known, latency_us, ttft_us, upstream_us, overhead_us, bytes_in, \
     bytes_out, user, request_id, key_id, request_body, response_body, deployment, attempts, variant, \
     answered_by, internal_caller, team_id, key_metadata, cache, saved_nanos, verdicts, tags, route_rule, \
     prompt";

impl StoreHealth for SqliteReader {
    fn ping(&self) -> Result<(), StoreError> {
        self.with(|c| Ok(c.query_row("SELECT 1", [], |_| Ok(()))?))
    }

    fn schema_version(&self) -> Result<i64, StoreError> {
        self.with(|c| Ok(c.query_row("PRAGMA user_version", [], |r| r.get(0))?))
    }

    fn expected_schema_version(&self) -> i64 {
        SCHEMA_VERSION
    }

    fn backend(&self) -> &'static str {
        "sqlite"
    }
}

impl ModuleStateStore for SqliteReader {
    fn module_states(&self) -> Result<Vec<ModuleState>, StoreError> {
        self.with(|c| {
            let mut stmt =
                c.prepare("SELECT name, scope, enabled, config FROM module_state ORDER BY name")?;
            let rows = stmt.query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, bool>(2)?,
                    r.get::<_, String>(3)?,
                ))
            })?;
            let mut states = Vec::new();
            for row in rows {
                let (name, scope, enabled, config) = row?;
                let config = serde_json::from_str(&config).map_err(|e| StoreError::Corrupt {
                    table: "module_state",
                    detail: format!("{name}: {e}"),
                })?;
                states.push(ModuleState {
                    name,
                    enabled,
                    config,
                    scope,
                });
            }
            Ok(states)
        })
    }

    fn stored_prices(&self) -> Result<Option<String>, StoreError> {
        self.with(|c| {
            Ok(c.query_row(
                "SELECT body FROM price_files ORDER BY id DESC LIMIT 1",
                [],
                |r| r.get(0),
            )
            .optional()?)
        })
    }
}

impl TraceStore for SqliteReader {
    fn traces(&self, query: &TraceQuery) -> Result<Vec<TraceRecord>, StoreError> {
        self.with(|c| {
            let sql = format!(
                "SELECT {TRACE_COLUMNS} FROM traces WHERE (?1 IS NULL OR requested_model = ?1) \
                 AND (?2 IS NULL OR status = ?2) ORDER BY row_id DESC LIMIT ?3"
            );
            // Newest written first: row numbers grow in the order rows are written
            // (`trace_rows.rs`), and walking the table backwards needs no index on `id`.
            let mut stmt = c.prepare(&sql)?;
            let limit = query.limit.clamp(1, 10_000) as i64;
            let rows = stmt.query_map(params![query.model, query.status, limit], trace_from_row)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    fn trace_count(&self) -> Result<i64, StoreError> {
        self.with(|c| Ok(c.query_row("SELECT COUNT(*) FROM traces", [], |r| r.get(0))?))
    }
}

impl SpendStore for SqliteReader {
    fn spend(&self, by: SpendBy, since_ms: i64) -> Result<Vec<SpendRow>, StoreError> {
        let none = crate::store::spend::NONE;
        let key = match by {
            SpendBy::Key => format!("COALESCE(NULLIF(key_id, ''), '{none}')"),
            SpendBy::Team => format!("COALESCE(NULLIF(team_id, ''), '{none}')"),
            SpendBy::User => format!("COALESCE(NULLIF(user, ''), '{none}')"),
            SpendBy::Model => "model".to_string(),
            SpendBy::Provider => format!("COALESCE(NULLIF(provider, ''), '{none}')"),
            SpendBy::Day => "strftime('%Y-%m-%d', day_ms / 1000, 'unixepoch')".to_string(),
            SpendBy::Tag => "tag".to_string(),
        };
        // Tags have rollups of their own: a request counts once under each of its tags.
        let table = match by {
            SpendBy::Tag => "spend_tag_daily",
            _ => "spend_daily",
        };
        self.with(|c| {
            let sql = format!(
                "SELECT {key} AS k, SUM(requests), SUM(prompt_tokens), SUM(completion_tokens), \
                 SUM(cost_nanos), SUM(saved_nanos) FROM {table} WHERE day_ms >= ?1 GROUP BY k \
                 ORDER BY SUM(cost_nanos) DESC, k"
            );
            let mut stmt = c.prepare(&sql)?;
            let rows = stmt.query_map([crate::store::day_start(since_ms)], |r| {
                Ok(SpendRow {
                    key: r.get(0)?,
                    requests: r.get(1)?,
                    prompt_tokens: r.get(2)?,
                    completion_tokens: r.get(3)?,
                    cost_nanos: r.get(4)?,
                    saved_nanos: r.get(5)?,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    fn budget_alerts(&self, since_ms: i64) -> Result<Vec<BudgetAlert>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT ts_ms, scope, subject, period, period_start_ms, percent, spend_nanos, \
                 limit_nanos FROM budget_alerts WHERE period_start_ms >= ?1 ORDER BY ts_ms, rowid",
            )?;
            let rows = stmt.query_map([since_ms], |r| {
                Ok(BudgetAlert {
                    ts_ms: r.get(0)?,
                    scope: r.get(1)?,
                    subject: r.get(2)?,
                    period: r.get(3)?,
                    period_start_ms: r.get(4)?,
                    percent: r.get(5)?,
                    spend_nanos: r.get(6)?,
                    limit_nanos: r.get(7)?,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }
}

impl RateLimitStore for SqliteReader {
    fn rate_counts(&self, now_ms: i64) -> Result<Vec<RateCount>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT counter, window_start_ms, window_ms, value FROM rate_counts \
                 WHERE window_start_ms + window_ms > ?1 ORDER BY counter, window_start_ms",
            )?;
            let rows = stmt.query_map([now_ms], |r| {
                Ok(RateCount {
                    counter: r.get(0)?,
                    window_start_ms: r.get(1)?,
                    window_ms: r.get(2)?,
                    value: r.get(3)?,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }
}

impl ResponseStore for SqliteReader {
    fn response(&self, id: &str) -> Result<Option<StoredResponse>, StoreError> {
        self.with(|c| {
            let row: Option<(String, i64, String, String, Option<String>)> = c
                .query_row(
                    "SELECT id, created_ms, response, history, owner FROM responses WHERE id = ?1",
                    [id],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
                )
                .optional()?;
            let Some((id, created_ms, response, history, owner)) = row else {
                return Ok(None);
            };
            let corrupt = |e: serde_json::Error| StoreError::Corrupt {
                table: "responses",
                detail: e.to_string(),
            };
            Ok(Some(StoredResponse {
                id,
                created_ms,
                response: serde_json::from_str(&response).map_err(corrupt)?,
                history: serde_json::from_str(&history).map_err(corrupt)?,
                owner,
            }))
        })
    }
}

impl BreakerStore for SqliteReader {
    fn breakers(&self) -> Result<Vec<BreakerRecord>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT deployment, phase, reason, updated_ms FROM breakers ORDER BY deployment",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, i64>(3)?,
                ))
            })?;
            let mut records = Vec::new();
            for row in rows {
                let (deployment, phase, reason, updated_ms) = row?;
                let phase = parse_phase(&phase).ok_or_else(|| StoreError::Corrupt {
                    table: "breakers",
                    detail: format!("{deployment}: bad phase {phase}"),
                })?;
                records.push(BreakerRecord {
                    deployment,
                    phase,
                    reason,
                    updated_ms,
                });
            }
            Ok(records)
        })
    }
}

impl AuthFailureStore for SqliteReader {
    fn auth_failures(&self, since_ms: i64) -> Result<Vec<AuthFailureCount>, StoreError> {
        self.with(|conn| {
            let mut stmt = conn.prepare(
                "SELECT minute_ms, source, reason, count FROM auth_failures WHERE minute_ms >= ?1
                 ORDER BY minute_ms, source, reason",
            )?;
            let rows = stmt.query_map([since_ms], |r| {
                Ok(AuthFailureCount {
                    minute_ms: r.get(0)?,
                    source: r.get(1)?,
                    reason: r.get(2)?,
                    count: r.get(3)?,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }
}

impl LedgerStore for SqliteReader {
    fn ledger(&self) -> Result<Vec<LedgerEntry>, StoreError> {
        self.with(ledger_entries)
    }
}

/// Every ledger entry in stored order; the writer's open reads them the same way.
pub(super) fn ledger_entries(c: &Connection) -> Result<Vec<LedgerEntry>, StoreError> {
    ledger_rows(c, "mac")
}

/// [`ledger_entries`] of a file from before MACs (schema 4 or older: no `mac` column).
pub(super) fn ledger_entries_before_macs(c: &Connection) -> Result<Vec<LedgerEntry>, StoreError> {
    ledger_rows(c, "NULL")
}

fn ledger_rows(c: &Connection, mac: &str) -> Result<Vec<LedgerEntry>, StoreError> {
    let mut stmt = c.prepare(&format!(
        "SELECT seq, ts_ms, actor, action, target, details, prev_hash, hash, {mac} FROM ledger \
         ORDER BY rowid"
    ))?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, String>(4)?,
            r.get::<_, String>(5)?,
            r.get::<_, String>(6)?,
            r.get::<_, String>(7)?,
            r.get::<_, Option<String>>(8)?,
        ))
    })?;
    let mut entries = Vec::new();
    for row in rows {
        let (seq, ts_ms, actor, action, target, details, prev_hash, hash, mac) = row?;
        // Details that no longer parse still verify as altered rather than failing the walk.
        let details = crate::ledger::details_from_stored(details);
        entries.push(LedgerEntry {
            seq,
            ts_ms,
            actor,
            action,
            target,
            details,
            prev_hash,
            hash,
            mac,
        });
    }
    Ok(entries)
}

fn parse_phase(text: &str) -> Option<BreakerPhase> {
    let value: serde_json::Value = serde_json::from_str(text).ok()?;
    match value["phase"].as_str()? {
        "closed" => Some(BreakerPhase::Closed),
        "open" => Some(BreakerPhase::Open {
            until_ms: value["until_ms"].as_i64()?,
        }),
        "half_open" => Some(BreakerPhase::HalfOpen { probes: 0 }),
        _ => None,
    }
}

impl CredentialStore for SqliteReader {
    fn credentials(&self) -> Result<Vec<StoredCredential>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT id, provider, kind, base_url, sealed, fingerprint, label, created_ms \
                 FROM provider_credentials ORDER BY created_ms, id",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok(StoredCredential {
                    id: r.get(0)?,
                    provider: r.get(1)?,
                    kind: r.get(2)?,
                    base_url: r.get(3)?,
                    sealed: r.get(4)?,
                    fingerprint: r.get(5)?,
                    label: r.get(6)?,
                    created_ms: r.get(7)?,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    fn secrets_check(&self) -> Result<Option<Vec<u8>>, StoreError> {
        self.with(|c| {
            Ok(c.query_row(
                "SELECT value FROM secrets_meta WHERE name = 'check'",
                [],
                |r| r.get(0),
            )
            .optional()?)
        })
    }
}
