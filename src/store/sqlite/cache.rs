//! Cache entries on SQLite: one table, loaded whole at start-up, written by the writer thread.

use rusqlite::params;

use super::read::SqliteReader;
use super::write::SqliteWriter;
use crate::store::{CacheEntry, CacheKind, CachePurge, CacheStore, CacheWrites, StoreError};

impl CacheStore for SqliteReader {
    fn cache_entries(&self, now_ms: i64) -> Result<Vec<CacheEntry>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT kind, namespace, key, model, partition, created_ms, expires_ms, \
                 saved_nanos, answer, embedding FROM cache_entries WHERE expires_ms > ?1 \
                 ORDER BY created_ms",
            )?;
            let rows = stmt.query_map([now_ms], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, i64>(5)?,
                    r.get::<_, i64>(6)?,
                    r.get::<_, i64>(7)?,
                    r.get::<_, String>(8)?,
                    r.get::<_, Option<Vec<u8>>>(9)?,
                ))
            })?;
            let mut entries = Vec::new();
            for row in rows {
                let (kind, namespace, key, model, partition, created, expires, saved, answer, blob) =
                    row?;
                let corrupt = |detail: String| StoreError::Corrupt {
                    table: "cache_entries",
                    detail,
                };
                let kind =
                    CacheKind::parse(&kind).ok_or_else(|| corrupt(format!("kind {kind:?}")))?;
                entries.push(CacheEntry {
                    kind,
                    namespace,
                    key,
                    model,
                    partition,
                    created_ms: created,
                    expires_ms: expires,
                    saved_nanos: saved,
                    answer: serde_json::from_str(&answer).map_err(|e| corrupt(e.to_string()))?,
                    embedding: blob.map(|b| decode_vector(&b)),
                });
            }
            Ok(entries)
        })
    }
}

impl CacheWrites for SqliteWriter {
    fn save_cache_entry(&mut self, e: &CacheEntry) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT OR REPLACE INTO cache_entries (kind, namespace, key, model, partition, \
             created_ms, expires_ms, saved_nanos, answer, embedding) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                e.kind.as_str(),
                e.namespace,
                e.key,
                e.model,
                e.partition,
                e.created_ms,
                e.expires_ms,
                e.saved_nanos,
                e.answer.to_string(),
                e.embedding.as_deref().map(encode_vector),
            ],
        )?;
        Ok(())
    }

    fn delete_cache_entries(
        &mut self,
        keys: &[(CacheKind, String, String)],
    ) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached(
                "DELETE FROM cache_entries WHERE kind = ?1 AND namespace = ?2 AND key = ?3",
            )?;
            for (kind, namespace, key) in keys {
                stmt.execute(params![kind.as_str(), namespace, key])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn drop_expired_cache(&mut self, now_ms: i64) -> Result<u64, StoreError> {
        let removed = self
            .conn
            .execute("DELETE FROM cache_entries WHERE expires_ms <= ?1", [now_ms])?;
        Ok(removed as u64)
    }

    fn purge_cache(&mut self, purge: &CachePurge) -> Result<u64, StoreError> {
        let namespace_under = purge.namespace.as_ref().map(|n| format!("{n}/%"));
        let removed = self.conn.execute(
            "DELETE FROM cache_entries WHERE (?1 IS NULL OR kind = ?1) \
             AND (?2 IS NULL OR model = ?2) \
             AND (?3 IS NULL OR namespace = ?3 OR namespace LIKE ?4)",
            params![
                purge.kind.map(CacheKind::as_str),
                purge.model,
                purge.namespace,
                namespace_under
            ],
        )?;
        Ok(removed as u64)
    }
}

fn encode_vector(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn decode_vector(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}
