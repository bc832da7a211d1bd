//! The read half of the PostgreSQL backend: every concern's read trait on one [`PgReader`],
//! each query run on a pooled connection on the backend's own runtime (`conn.rs`). Rows are read with
//! [`get`], which reports a column of the wrong type as corrupt instead of panicking.

use deadpool_postgres::Object;
use tokio_postgres::types::FromSql;
use tokio_postgres::{Client, Row};

use super::SCHEMA_VERSION;
use super::conn::ReadPool;
use crate::cost::Tokens;
use crate::ledger::LedgerEntry;
use crate::store::alerts::{AlertRecord, AlertStore};
use crate::store::mcp::{McpCallRecord, McpCallStore};
use crate::store::prompts::{PromptStore, PromptVersion};
use crate::store::{
    AuthFailureCount, AuthFailureStore, BreakerPhase, BreakerRecord, BreakerStore, BudgetAlert,
    CredentialStore, LedgerStore, ModuleState, ModuleStateStore, RateCount, RateLimitStore,
    ResponseStore, SpendBy, SpendRow, SpendStore, StoreError, StoreHealth, StoredCredential,
    StoredResponse, TraceQuery, TraceRecord, TraceStore,
};

pub struct PgReader {
    pub(super) pool: ReadPool,
}

impl PgReader {
    /// Runs `f`'s future on a pooled connection (on the backend's runtime) and waits for it.
    pub(super) fn with<T, F, Fut>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(Object) -> Fut + Clone + Send + 'static,
        Fut: Future<Output = Result<T, StoreError>> + Send + 'static,
    {
        self.pool.with(f)
    }
}

/// Column `i` of `row`; a value of another type is corrupt data, not a panic.
pub(super) fn get<'a, T: FromSql<'a>>(row: &'a Row, i: usize) -> Result<T, StoreError> {
    row.try_get(i).map_err(|e| StoreError::Corrupt {
        table: "row",
        detail: format!("column {i}: {e}"),
    })
}

/// An integer column kept as BIGINT that the record holds narrower.
pub(super) fn narrow<T: TryFrom<i64>>(row: &Row, i: usize) -> Result<T, StoreError> {
    let wide: i64 = get(row, i)?;
    T::try_from(wide).map_err(|_| StoreError::Corrupt {
        table: "row",
        detail: format!("column {i}: {wide} out of range"),
    })
}

pub(super) const TRACE_COLUMNS: &str = "id, ts_ms, endpoint, requested_model, provider, upstream_model, status, error_class, \
     stream, prompt_tokens, completion_tokens, cached_input_tokens, cache_write_tokens, reasoning_tokens, \
     usage_estimated, cost_nanos, price_known, latency_us, ttft_us, upstream_us, overhead_us, bytes_in, \
     bytes_out, \"user\", request_id, key_id, request_body, response_body, deployment, attempts, variant, \
     answered_by, internal_caller, team_id, key_metadata, cache, saved_nanos, verdicts, tags, route_rule, \
     prompt";

pub(super) fn trace_from_row(r: &Row) -> Result<TraceRecord, StoreError> {
    let u = |i: usize| -> Result<u64, StoreError> { Ok(get::<i64>(r, i)?.max(0) as u64) };
    Ok(TraceRecord {
        id: get(r, 0)?,
        ts_ms: get(r, 1)?,
        endpoint: get(r, 2)?,
        requested_model: get(r, 3)?,
        provider: get(r, 4)?,
        upstream_model: get(r, 5)?,
        status: narrow(r, 6)?,
        error_class: get(r, 7)?,
        stream: get(r, 8)?,
        tokens: Tokens {
            prompt: u(9)?,
            completion: u(10)?,
            cached_input: u(11)?,
            cache_write: u(12)?,
            reasoning: u(13)?,
        },
        usage_estimated: get(r, 14)?,
        cost_nanos: get(r, 15)?,
        price_known: get(r, 16)?,
        latency_us: get(r, 17)?,
        ttft_us: get(r, 18)?,
        upstream_us: get(r, 19)?,
        overhead_us: get(r, 20)?,
        bytes_in: get(r, 21)?,
        bytes_out: get(r, 22)?,
        user: get(r, 23)?,
        request_id: get(r, 24)?,
        key_id: get(r, 25)?,
        request_body: get(r, 26)?,
        response_body: get(r, 27)?,
        deployment: get(r, 28)?,
        attempts: narrow(r, 29)?,
        variant: get(r, 30)?,
        answered_by: get(r, 31)?,
        internal_caller: get(r, 32)?,
        team_id: get(r, 33)?,
        key_metadata: get(r, 34)?,
        cache: get(r, 35)?,
        saved_nanos: get(r, 36)?,
        verdicts: get(r, 37)?,
        tags: get(r, 38)?,
        route_rule: get(r, 39)?,
        prompt: get(r, 40)?,
    })
}

fn json(table: &'static str, text: &str) -> Result<serde_json::Value, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt {
        table,
        detail: e.to_string(),
    })
}

impl StoreHealth for PgReader {
    fn ping(&self) -> Result<(), StoreError> {
        self.with(|c| async move { Ok(c.simple_query("SELECT 1").await.map(|_| ())?) })
    }

    fn schema_version(&self) -> Result<i64, StoreError> {
        self.with(move |c| async move {
            get(
                &c.query_one("SELECT version FROM stockyard_schema", &[])
                    .await?,
                0,
            )
        })
    }

    fn expected_schema_version(&self) -> i64 {
        SCHEMA_VERSION
    }

    fn backend(&self) -> &'static str {
        "postgres"
    }
}

impl ModuleStateStore for PgReader {
    fn module_states(&self) -> Result<Vec<ModuleState>, StoreError> {
        self.with(move |c| async move {
            let rows = c.query(
                "SELECT name, scope, enabled, config FROM module_state ORDER BY name COLLATE \"C\"",
                &[],
            ).await?;
            rows.iter()
                .map(|r| {
                    let config: String = get(r, 3)?;
                    Ok(ModuleState {
                        name: get(r, 0)?,
                        scope: get(r, 1)?,
                        enabled: get(r, 2)?,
                        config: json("module_state", &config)?,
                    })
                })
                .collect()
        })
    }

    fn stored_prices(&self) -> Result<Option<String>, StoreError> {
        self.with(move |c| async move {
            c.query_opt("SELECT body FROM price_files ORDER BY id DESC LIMIT 1", &[])
                .await?
                .map(|r| get(&r, 0))
                .transpose()
        })
    }
}

impl TraceStore for PgReader {
    fn traces(&self, query: &TraceQuery) -> Result<Vec<TraceRecord>, StoreError> {
        let model = query.model.clone();
        let status = query.status.map(i64::from);
        let limit = query.limit.clamp(1, 10_000) as i64;
        self.with(move |c| async move {
            let sql = format!(
                "SELECT {TRACE_COLUMNS} FROM traces WHERE ($1::TEXT IS NULL OR requested_model = $1) \
                 AND ($2::BIGINT IS NULL OR status = $2) ORDER BY id DESC LIMIT $3"
            );
            let rows = c.query(&sql, &[&model, &status, &limit]).await?;
            rows.iter().map(trace_from_row).collect()
        })
    }

    fn trace_count(&self) -> Result<i64, StoreError> {
        self.with(
            |c| async move { get(&c.query_one("SELECT COUNT(*) FROM traces", &[]).await?, 0) },
        )
    }
}

impl SpendStore for PgReader {
    fn spend(&self, by: SpendBy, since_ms: i64) -> Result<Vec<SpendRow>, StoreError> {
        let none = crate::store::spend::NONE;
        let key = match by {
            SpendBy::Key => format!("COALESCE(NULLIF(key_id, ''), '{none}')"),
            SpendBy::Team => format!("COALESCE(NULLIF(team_id, ''), '{none}')"),
            SpendBy::User => format!("COALESCE(NULLIF(\"user\", ''), '{none}')"),
            SpendBy::Model => "model".to_string(),
            SpendBy::Provider => format!("COALESCE(NULLIF(provider, ''), '{none}')"),
            SpendBy::Day => {
                "to_char(to_timestamp(day_ms / 1000) AT TIME ZONE 'UTC', 'YYYY-MM-DD')".to_string()
            }
            SpendBy::Tag => "tag".to_string(),
        };
        let table = match by {
            SpendBy::Tag => "spend_tag_daily",
            _ => "spend_daily",
        };
        // Sorted as SQLite's BINARY collation sorts: by bytes, whatever the database's locale.
        let sql = format!(
            "SELECT {key} AS k, SUM(requests)::BIGINT, SUM(prompt_tokens)::BIGINT, \
             SUM(completion_tokens)::BIGINT, SUM(cost_nanos)::BIGINT, SUM(saved_nanos)::BIGINT \
             FROM {table} WHERE day_ms >= $1 GROUP BY 1 ORDER BY SUM(cost_nanos) DESC, \
             {key} COLLATE \"C\""
        );
        let since = crate::store::day_start(since_ms);
        self.with(move |c| async move {
            let rows = c.query(&sql, &[&since]).await?;
            rows.iter()
                .map(|r| {
                    Ok(SpendRow {
                        key: get(r, 0)?,
                        requests: get(r, 1)?,
                        prompt_tokens: get(r, 2)?,
                        completion_tokens: get(r, 3)?,
                        cost_nanos: get(r, 4)?,
                        saved_nanos: get(r, 5)?,
                    })
                })
                .collect()
        })
    }

    fn budget_alerts(&self, since_ms: i64) -> Result<Vec<BudgetAlert>, StoreError> {
        self.with(move |c| async move {
            let rows = c
                .query(
                    "SELECT ts_ms, scope, subject, period, period_start_ms, percent, spend_nanos, \
                 limit_nanos FROM budget_alerts WHERE period_start_ms >= $1 ORDER BY ts_ms, id",
                    &[&since_ms],
                )
                .await?;
            rows.iter()
                .map(|r| {
                    Ok(BudgetAlert {
                        ts_ms: get(r, 0)?,
                        scope: get(r, 1)?,
                        subject: get(r, 2)?,
                        period: get(r, 3)?,
                        period_start_ms: get(r, 4)?,
                        percent: narrow(r, 5)?,
                        spend_nanos: get(r, 6)?,
                        limit_nanos: get(r, 7)?,
                    })
                })
                .collect()
        })
    }
}

impl RateLimitStore for PgReader {
    fn rate_counts(&self, now_ms: i64) -> Result<Vec<RateCount>, StoreError> {
        self.with(move |c| async move {
            let rows = c
                .query(
                    "SELECT counter, window_start_ms, window_ms, value FROM rate_counts \
                 WHERE window_start_ms + window_ms > $1 \
                 ORDER BY counter COLLATE \"C\", window_start_ms",
                    &[&now_ms],
                )
                .await?;
            rows.iter()
                .map(|r| {
                    Ok(RateCount {
                        counter: get(r, 0)?,
                        window_start_ms: get(r, 1)?,
                        window_ms: get(r, 2)?,
                        value: get(r, 3)?,
                    })
                })
                .collect()
        })
    }
}

impl ResponseStore for PgReader {
    fn response(&self, id: &str) -> Result<Option<StoredResponse>, StoreError> {
        let id = id.to_string();
        self.with(move |c| async move {
            let Some(r) = c
                .query_opt(
                    "SELECT id, created_ms, response, history, owner FROM responses WHERE id = $1",
                    &[&id],
                )
                .await?
            else {
                return Ok(None);
            };
            let response: String = get(&r, 2)?;
            let history: String = get(&r, 3)?;
            Ok(Some(StoredResponse {
                id: get(&r, 0)?,
                created_ms: get(&r, 1)?,
                response: json("responses", &response)?,
                history: json("responses", &history)?,
                owner: get(&r, 4)?,
            }))
        })
    }

    fn is_shared(&self) -> bool {
        true
    }
}

impl BreakerStore for PgReader {
    fn breakers(&self) -> Result<Vec<BreakerRecord>, StoreError> {
        self.with(move |c| async move {
            let rows = c
                .query(
                    "SELECT deployment, phase, reason, updated_ms FROM breakers \
                 ORDER BY deployment COLLATE \"C\"",
                    &[],
                )
                .await?;
            rows.iter()
                .map(|r| {
                    let deployment: String = get(r, 0)?;
                    let phase: String = get(r, 1)?;
                    let parsed = parse_phase(&phase).ok_or_else(|| StoreError::Corrupt {
                        table: "breakers",
                        detail: format!("{deployment}: bad phase {phase}"),
                    })?;
                    Ok(BreakerRecord {
                        deployment,
                        phase: parsed,
                        reason: get(r, 2)?,
                        updated_ms: get(r, 3)?,
                    })
                })
                .collect()
        })
    }
}

pub(super) fn parse_phase(text: &str) -> Option<BreakerPhase> {
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

impl AuthFailureStore for PgReader {
    fn auth_failures(&self, since_ms: i64) -> Result<Vec<AuthFailureCount>, StoreError> {
        self.with(move |c| async move {
            let rows = c.query(
                "SELECT minute_ms, source, reason, count FROM auth_failures WHERE minute_ms >= $1 \
                 ORDER BY minute_ms, source COLLATE \"C\", reason COLLATE \"C\"",
                &[&since_ms],
            ).await?;
            rows.iter()
                .map(|r| {
                    Ok(AuthFailureCount {
                        minute_ms: get(r, 0)?,
                        source: get(r, 1)?,
                        reason: get(r, 2)?,
                        count: get(r, 3)?,
                    })
                })
                .collect()
        })
    }
}

impl LedgerStore for PgReader {
    fn ledger(&self) -> Result<Vec<LedgerEntry>, StoreError> {
        self.with(|c| async move { ledger_entries(&c).await })
    }
}

/// Every ledger entry by sequence number; the writer's open reads them the same way.
pub(super) async fn ledger_entries(c: &Client) -> Result<Vec<LedgerEntry>, StoreError> {
    let rows = c
        .query(
            "SELECT seq, ts_ms, actor, action, target, details, prev_hash, hash, mac FROM ledger \
         ORDER BY seq",
            &[],
        )
        .await?;
    rows.iter()
        .map(|r| {
            let details: String = get(r, 5)?;
            // Details that no longer parse still verify as altered rather than failing the walk.
            let details = crate::ledger::details_from_stored(details);
            Ok(LedgerEntry {
                seq: get(r, 0)?,
                ts_ms: get(r, 1)?,
                actor: get(r, 2)?,
                action: get(r, 3)?,
                target: get(r, 4)?,
                details,
                prev_hash: get(r, 6)?,
                hash: get(r, 7)?,
                mac: get(r, 8)?,
            })
        })
        .collect()
}

impl CredentialStore for PgReader {
    fn credentials(&self) -> Result<Vec<StoredCredential>, StoreError> {
        self.with(move |c| async move {
            let rows = c
                .query(
                    "SELECT id, provider, kind, base_url, sealed, fingerprint, label, created_ms \
                 FROM provider_credentials ORDER BY created_ms, id COLLATE \"C\"",
                    &[],
                )
                .await?;
            rows.iter()
                .map(|r| {
                    Ok(StoredCredential {
                        id: get(r, 0)?,
                        provider: get(r, 1)?,
                        kind: get(r, 2)?,
                        base_url: get(r, 3)?,
                        sealed: get(r, 4)?,
                        fingerprint: get(r, 5)?,
                        label: get(r, 6)?,
                        created_ms: get(r, 7)?,
                    })
                })
                .collect()
        })
    }

    fn secrets_check(&self) -> Result<Option<Vec<u8>>, StoreError> {
        self.with(move |c| async move {
            c.query_opt("SELECT value FROM secrets_meta WHERE name = 'check'", &[])
                .await?
                .map(|r| get(&r, 0))
                .transpose()
        })
    }
}

impl PromptStore for PgReader {
    fn prompt_versions(&self) -> Result<Vec<PromptVersion>, StoreError> {
        self.with(move |c| async move {
            let rows = c
                .query(
                    "SELECT name, version, body, created_ms FROM prompt_versions \
                 ORDER BY name COLLATE \"C\", version",
                    &[],
                )
                .await?;
            rows.iter()
                .map(|r| {
                    Ok(PromptVersion {
                        name: get(r, 0)?,
                        version: narrow(r, 1)?,
                        body: get(r, 2)?,
                        created_ms: get(r, 3)?,
                    })
                })
                .collect()
        })
    }

    fn prompt_active(&self) -> Result<Vec<(String, u32)>, StoreError> {
        self.with(move |c| async move {
            let rows = c
                .query(
                    "SELECT name, active FROM prompt_templates ORDER BY name COLLATE \"C\"",
                    &[],
                )
                .await?;
            rows.iter()
                .map(|r| Ok((get(r, 0)?, narrow(r, 1)?)))
                .collect()
        })
    }
}

impl AlertStore for PgReader {
    fn alerts(&self, since_ms: i64, limit: usize) -> Result<Vec<AlertRecord>, StoreError> {
        let limit = limit.clamp(1, 10_000) as i64;
        self.with(move |c| async move {
            let rows = c
                .query(
                    "SELECT ts_ms, rule, kind, value, threshold, message, delivered FROM alerts \
                 WHERE ts_ms >= $1 ORDER BY ts_ms DESC, id DESC LIMIT $2",
                    &[&since_ms, &limit],
                )
                .await?;
            rows.iter()
                .map(|r| {
                    Ok(AlertRecord {
                        ts_ms: get(r, 0)?,
                        rule: get(r, 1)?,
                        kind: get(r, 2)?,
                        value: get(r, 3)?,
                        threshold: get(r, 4)?,
                        message: get(r, 5)?,
                        delivered: get(r, 6)?,
                    })
                })
                .collect()
        })
    }

    fn alert_state(&self) -> Result<Vec<(String, i64)>, StoreError> {
        self.with(move |c| async move {
            let rows = c
                .query("SELECT rule, last_fired_ms FROM alert_state", &[])
                .await?;
            rows.iter().map(|r| Ok((get(r, 0)?, get(r, 1)?))).collect()
        })
    }
}

impl McpCallStore for PgReader {
    fn mcp_calls(&self, limit: usize) -> Result<Vec<McpCallRecord>, StoreError> {
        let limit = limit as i64;
        self.with(move |c| async move {
            let rows = c.query(
                "SELECT id, ts_ms, key_id, team_id, server, tool, decision, rule, rule_revision, \
                 outcome, duration_us, bytes_in, bytes_out, args_sha256, arguments, result, \
                 redactions, ledger_seq FROM mcp_calls ORDER BY ts_ms DESC, row_id DESC LIMIT $1",
                &[&limit],
            ).await?;
            rows.iter()
                .map(|r| {
                    Ok(McpCallRecord {
                        id: get(r, 0)?,
                        ts_ms: get(r, 1)?,
                        key_id: get(r, 2)?,
                        team_id: get(r, 3)?,
                        server: get(r, 4)?,
                        tool: get(r, 5)?,
                        decision: get(r, 6)?,
                        rule: get(r, 7)?,
                        rule_revision: get(r, 8)?,
                        outcome: get(r, 9)?,
                        duration_us: get(r, 10)?,
                        bytes_in: get(r, 11)?,
                        bytes_out: get(r, 12)?,
                        args_sha256: get(r, 13)?,
                        arguments: get(r, 14)?,
                        result: get(r, 15)?,
                        redactions: get(r, 16)?,
                        ledger_seq: get(r, 17)?,
                    })
                })
                .collect()
        })
    }
}
