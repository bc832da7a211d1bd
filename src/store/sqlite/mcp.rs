//! SQLite side of `store/mcp.rs`: the `mcp_calls` table (migration 0018), each row committed
//! with its ledger entry.

use rusqlite::params;

use super::{SqliteReader, SqliteWriter};
use crate::ledger::LedgerEntry;
use crate::store::StoreError;
use crate::store::mcp::{McpCallRecord, McpCallStore, McpCallWrite, McpCallWrites};

impl McpCallWrites for SqliteWriter {
    fn append_mcp_calls(&mut self, calls: &[McpCallWrite]) -> Result<Vec<LedgerEntry>, StoreError> {
        let now = crate::store::now_ms();
        let tx = self.conn.transaction()?;
        let mut entries = Vec::with_capacity(calls.len());
        for call in calls {
            let entry = super::write::append_entry(
                &tx,
                &self.key,
                self.published.as_ref(),
                &call.draft,
                now,
            )?;
            let r = &call.record;
            tx.execute(
                "INSERT OR IGNORE INTO mcp_calls (id, ts_ms, key_id, team_id, server, tool, decision, rule, \
                 rule_revision, outcome, duration_us, bytes_in, bytes_out, args_sha256, arguments, result, \
                 redactions, ledger_seq) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)",
                params![
                    r.id,
                    r.ts_ms,
                    r.key_id,
                    r.team_id,
                    r.server,
                    r.tool,
                    r.decision,
                    r.rule,
                    r.rule_revision,
                    r.outcome,
                    r.duration_us,
                    r.bytes_in,
                    r.bytes_out,
                    r.args_sha256,
                    r.arguments,
                    r.result,
                    r.redactions,
                    entry.seq
                ],
            )?;
            entries.push(entry);
        }
        tx.commit()?;
        Ok(entries)
    }
}

impl McpCallStore for SqliteReader {
    fn mcp_calls(&self, limit: usize) -> Result<Vec<McpCallRecord>, StoreError> {
        self.with(|c| {
            let mut statement = c.prepare_cached(
                "SELECT id, ts_ms, key_id, team_id, server, tool, decision, rule, rule_revision, outcome, \
                 duration_us, bytes_in, bytes_out, args_sha256, arguments, result, redactions, ledger_seq \
                 FROM mcp_calls ORDER BY ts_ms DESC, rowid DESC LIMIT ?1",
            )?;
            let rows = statement.query_map([limit as i64], |row| {
                Ok(McpCallRecord {
                    id: row.get(0)?,
                    ts_ms: row.get(1)?,
                    key_id: row.get(2)?,
                    team_id: row.get(3)?,
                    server: row.get(4)?,
                    tool: row.get(5)?,
                    decision: row.get(6)?,
                    rule: row.get(7)?,
                    rule_revision: row.get(8)?,
                    outcome: row.get(9)?,
                    duration_us: row.get(10)?,
                    bytes_in: row.get(11)?,
                    bytes_out: row.get(12)?,
                    args_sha256: row.get(13)?,
                    arguments: row.get(14)?,
                    result: row.get(15)?,
                    redactions: row.get(16)?,
                    ledger_seq: row.get(17)?,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }
}
