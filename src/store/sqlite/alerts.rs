//! SQLite side of `store/alerts.rs`: the `alerts` and `alert_state` tables (migration 0013).

use rusqlite::params;

use super::{SqliteReader, SqliteWriter};
use crate::store::StoreError;
use crate::store::alerts::{AlertRecord, AlertStore, AlertWrites};

impl AlertWrites for SqliteWriter {
    fn record_alert(&mut self, alert: &AlertRecord) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        tx.execute(
            "INSERT INTO alerts (ts_ms, rule, kind, value, threshold, message, delivered) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                alert.ts_ms,
                alert.rule,
                alert.kind,
                alert.value,
                alert.threshold,
                alert.message,
                alert.delivered
            ],
        )?;
        tx.execute(
            "INSERT INTO alert_state (rule, last_fired_ms) VALUES (?1, ?2) \
             ON CONFLICT (rule) DO UPDATE SET last_fired_ms = excluded.last_fired_ms",
            params![alert.rule, alert.ts_ms],
        )?;
        tx.commit()?;
        Ok(())
    }
}

impl AlertStore for SqliteReader {
    fn alerts(&self, since_ms: i64, limit: usize) -> Result<Vec<AlertRecord>, StoreError> {
        self.with(|c| {
            let mut statement = c.prepare_cached(
                "SELECT ts_ms, rule, kind, value, threshold, message, delivered FROM alerts \
                 WHERE ts_ms >= ?1 ORDER BY ts_ms DESC, id DESC LIMIT ?2",
            )?;
            let rows =
                statement.query_map(params![since_ms, limit.clamp(1, 10_000) as i64], |r| {
                    Ok(AlertRecord {
                        ts_ms: r.get(0)?,
                        rule: r.get(1)?,
                        kind: r.get(2)?,
                        value: r.get(3)?,
                        threshold: r.get(4)?,
                        message: r.get(5)?,
                        delivered: r.get(6)?,
                    })
                })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    fn alert_state(&self) -> Result<Vec<(String, i64)>, StoreError> {
        self.with(|c| {
            let mut statement = c.prepare_cached("SELECT rule, last_fired_ms FROM alert_state")?;
            let rows = statement.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }
}
