//! The writer's smaller writes on PostgreSQL, each its own statement or transaction: breaker
//! phases, stored responses, auth-failure and rate-limit counts (added up, whichever node sends
//! them), budget alerts, fired alerts, MCP calls with their ledger entries, and the no-op
//! checkpoint (PostgreSQL makes a commit durable itself).

use super::write::{PgWriter, append_entry, in_tx};
use crate::ledger::LedgerEntry;
use crate::store::alerts::{AlertRecord, AlertWrites};
use crate::store::mcp::{McpCallWrite, McpCallWrites};
use crate::store::{
    AuthFailureCount, AuthFailureWrites, BreakerRecord, BreakerWrites, BudgetAlert, RateCount,
    RateLimitWrites, ResponseWrites, SpendWrites, StoreError, StoredResponse, WriteBackend,
};

impl BreakerWrites for PgWriter {
    fn save_breaker(&mut self, record: &BreakerRecord) -> Result<(), StoreError> {
        // Newest wins on the shared row, and the other nodes hear of it when the row commits
        // (`server/follow.rs` adopts it), so a breaker opened here is open there within moments.
        self.on_conn(async |c| {
            super::admin::save_breaker(&*c, record).await?;
            c.execute(
                &format!("SELECT pg_notify({}, $1)", super::listen::CHANNEL_SQL),
                &[&crate::store::changes::Changed::Breakers.as_str()],
            )
            .await?;
            Ok(())
        })
    }
}

impl ResponseWrites for PgWriter {
    fn save_response(&mut self, r: &StoredResponse) -> Result<(), StoreError> {
        self.on_conn(async |c| {
            c.execute(
                "INSERT INTO responses (id, created_ms, response, history, owner) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO UPDATE SET \
             created_ms = excluded.created_ms, response = excluded.response, \
             history = excluded.history, owner = excluded.owner",
                &[
                    &r.id,
                    &r.created_ms,
                    &r.response.to_string(),
                    &r.history.to_string(),
                    &r.owner,
                ],
            )
            .await?;
            Ok(())
        })
    }
}

impl AuthFailureWrites for PgWriter {
    fn add_auth_failures(&mut self, counts: &[AuthFailureCount]) -> Result<(), StoreError> {
        let mut sorted: Vec<&AuthFailureCount> = counts.iter().collect();
        // Key order, so two nodes adding to the same buckets never deadlock.
        sorted.sort_by(|a, b| {
            (a.minute_ms, &a.source, &a.reason).cmp(&(b.minute_ms, &b.source, &b.reason))
        });
        self.on_conn(async |c| {
            in_tx(c, async |tx| {
                let upsert = tx
                    .prepare(
                        "INSERT INTO auth_failures AS a (minute_ms, source, reason, count) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (minute_ms, source, reason) \
                 DO UPDATE SET count = a.count + excluded.count",
                    )
                    .await?;
                for c in sorted {
                    tx.execute(&upsert, &[&c.minute_ms, &c.source, &c.reason, &c.count])
                        .await?;
                }
                Ok(())
            })
            .await
        })
    }
}

impl SpendWrites for PgWriter {
    fn record_budget_alert(&mut self, a: &BudgetAlert) -> Result<(), StoreError> {
        let percent = i64::from(a.percent);
        self.on_conn(async |c| {
            c.execute(
            "INSERT INTO budget_alerts (scope, subject, period, period_start_ms, percent, ts_ms, \
             spend_nanos, limit_nanos) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (scope, subject, period, period_start_ms, percent) DO NOTHING",
            &[
                &a.scope,
                &a.subject,
                &a.period,
                &a.period_start_ms,
                &percent,
                &a.ts_ms,
                &a.spend_nanos,
                &a.limit_nanos,
            ],
        ).await?;
            Ok(())
        })
    }
}

impl RateLimitWrites for PgWriter {
    fn add_rate_counts(&mut self, deltas: &[RateCount], now_ms: i64) -> Result<(), StoreError> {
        let mut sorted: Vec<&RateCount> = deltas.iter().collect();
        sorted
            .sort_by(|a, b| (&a.counter, a.window_start_ms).cmp(&(&b.counter, b.window_start_ms)));
        self.on_conn(async |c| {
            in_tx(c, async |tx| {
                let upsert = tx
                    .prepare(
                        "INSERT INTO rate_counts AS r (counter, window_start_ms, window_ms, value) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (counter, window_start_ms) \
                 DO UPDATE SET value = r.value + excluded.value",
                    )
                    .await?;
                for d in sorted {
                    tx.execute(
                        &upsert,
                        &[&d.counter, &d.window_start_ms, &d.window_ms, &d.value],
                    )
                    .await?;
                }
                tx.execute(
                    "DELETE FROM rate_counts WHERE window_start_ms + window_ms <= $1",
                    &[&now_ms],
                )
                .await?;
                Ok(())
            })
            .await
        })
    }
}

impl AlertWrites for PgWriter {
    fn record_alert(&mut self, a: &AlertRecord) -> Result<(), StoreError> {
        self.on_conn(async |c| {
            in_tx(c, async |tx| {
                tx.execute(
                    "INSERT INTO alerts (ts_ms, rule, kind, value, threshold, message, delivered) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    &[
                        &a.ts_ms,
                        &a.rule,
                        &a.kind,
                        &a.value,
                        &a.threshold,
                        &a.message,
                        &a.delivered,
                    ],
                )
                .await?;
                tx.execute(
                    "INSERT INTO alert_state (rule, last_fired_ms) VALUES ($1, $2) \
                 ON CONFLICT (rule) DO UPDATE SET last_fired_ms = excluded.last_fired_ms",
                    &[&a.rule, &a.ts_ms],
                )
                .await?;
                Ok(())
            })
            .await
        })
    }
}

impl McpCallWrites for PgWriter {
    fn append_mcp_calls(&mut self, calls: &[McpCallWrite]) -> Result<Vec<LedgerEntry>, StoreError> {
        let now = crate::store::now_ms();
        let key = self.key.clone();
        let published = self.published.clone();
        self.on_conn(async |c| {
            in_tx(c, async |tx| {
                let mut entries = Vec::with_capacity(calls.len());
                for call in calls {
                    let entry =
                        append_entry(tx, &key, published.as_ref(), &call.draft, now).await?;
                    let r = &call.record;
                    tx.execute(
                    "INSERT INTO mcp_calls (id, ts_ms, key_id, team_id, server, tool, decision, \
                     rule, rule_revision, outcome, duration_us, bytes_in, bytes_out, args_sha256, \
                     arguments, result, redactions, ledger_seq) VALUES ($1, $2, $3, $4, $5, $6, \
                     $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18) \
                     ON CONFLICT (id) DO NOTHING",
                    &[
                        &r.id,
                        &r.ts_ms,
                        &r.key_id,
                        &r.team_id,
                        &r.server,
                        &r.tool,
                        &r.decision,
                        &r.rule,
                        &r.rule_revision,
                        &r.outcome,
                        &r.duration_us,
                        &r.bytes_in,
                        &r.bytes_out,
                        &r.args_sha256,
                        &r.arguments,
                        &r.result,
                        &r.redactions,
                        &entry.seq,
                    ],
                ).await?;
                    entries.push(entry);
                }
                Ok(entries)
            })
            .await
        })
    }
}

impl WriteBackend for PgWriter {
    /// Nothing to do: a committed transaction is already durable on the server.
    fn checkpoint(&mut self) -> Result<(), StoreError> {
        Ok(())
    }
}
