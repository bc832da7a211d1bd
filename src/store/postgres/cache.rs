//! Cache entries on PostgreSQL: one table, loaded whole at start-up, written by the writer, and
//! read by key (or by semantic partition) when a node misses what another node stored.
//! Embeddings are little-endian f32s in a BYTEA, as SQLite keeps them in a BLOB.

use super::read::{PgReader, get};
use super::write::PgWriter;
use crate::store::{CacheEntry, CacheKind, CachePurge, CacheStore, CacheWrites, StoreError};

const COLUMNS: &str = "kind, namespace, key, model, partition, created_ms, expires_ms, \
                       saved_nanos, answer, embedding";

impl CacheStore for PgReader {
    fn cache_entries(&self, now_ms: i64) -> Result<Vec<CacheEntry>, StoreError> {
        self.with(move |c| async move {
            let rows = c.query(
                &format!(
                    "SELECT {COLUMNS} FROM cache_entries WHERE expires_ms > $1 ORDER BY created_ms"
                ),
                &[&now_ms],
            ).await?;
            rows.iter().map(entry_from).collect()
        })
    }

    /// Other nodes of the store write here too: a miss in memory may be their entry.
    fn is_shared(&self) -> bool {
        true
    }

    fn cache_entry(
        &self,
        kind: CacheKind,
        namespace: &str,
        key: &str,
        now_ms: i64,
    ) -> Result<Option<CacheEntry>, StoreError> {
        let (namespace, key) = (namespace.to_string(), key.to_string());
        self.with(move |c| async move {
            let row = c
                .query_opt(
                    &format!(
                        "SELECT {COLUMNS} FROM cache_entries WHERE kind = $1 AND namespace = $2 \
                     AND key = $3 AND expires_ms > $4"
                    ),
                    &[&kind.as_str(), &namespace, &key, &now_ms],
                )
                .await?;
            row.as_ref().map(entry_from).transpose()
        })
    }

    fn semantic_since(
        &self,
        namespace: &str,
        partition: &str,
        since_ms: i64,
        now_ms: i64,
    ) -> Result<Vec<CacheEntry>, StoreError> {
        let (namespace, partition) = (namespace.to_string(), partition.to_string());
        // Kind and namespace lead the primary key, so this reads one namespace's entries only.
        self.with(move |c| async move {
            let rows = c
                .query(
                    &format!(
                        "SELECT {COLUMNS} FROM cache_entries WHERE kind = 'semantic' \
                     AND namespace = $1 AND partition = $2 AND created_ms > $3 \
                     AND expires_ms > $4 ORDER BY created_ms"
                    ),
                    &[&namespace, &partition, &since_ms, &now_ms],
                )
                .await?;
            rows.iter().map(entry_from).collect()
        })
    }

    fn cache_keys(&self) -> Result<Vec<(CacheKind, String, String)>, StoreError> {
        self.with(move |c| async move {
            let rows = c
                .query("SELECT kind, namespace, key FROM cache_entries", &[])
                .await?;
            rows.iter()
                .filter_map(|r| {
                    let kind: String = match get(r, 0) {
                        Ok(kind) => kind,
                        Err(e) => return Some(Err(e)),
                    };
                    // A kind this build does not know is no entry of its indexes.
                    let kind = CacheKind::parse(&kind)?;
                    Some(get(r, 1).and_then(|n| Ok((kind, n, get(r, 2)?))))
                })
                .collect()
        })
    }
}

fn entry_from(r: &tokio_postgres::Row) -> Result<CacheEntry, StoreError> {
    let corrupt = |detail: String| StoreError::Corrupt {
        table: "cache_entries",
        detail,
    };
    let kind: String = get(r, 0)?;
    let answer: String = get(r, 8)?;
    let blob: Option<Vec<u8>> = get(r, 9)?;
    Ok(CacheEntry {
        kind: CacheKind::parse(&kind).ok_or_else(|| corrupt(format!("kind {kind:?}")))?,
        namespace: get(r, 1)?,
        key: get(r, 2)?,
        model: get(r, 3)?,
        partition: get(r, 4)?,
        created_ms: get(r, 5)?,
        expires_ms: get(r, 6)?,
        saved_nanos: get(r, 7)?,
        answer: serde_json::from_str(&answer).map_err(|e| corrupt(e.to_string()))?,
        embedding: blob.map(|b| decode_vector(&b)),
    })
}

impl CacheWrites for PgWriter {
    fn save_cache_entry(&mut self, e: &CacheEntry) -> Result<(), StoreError> {
        let embedding = e.embedding.as_deref().map(encode_vector);
        self.on_conn(async |c| {
            c.execute(
                "INSERT INTO cache_entries (kind, namespace, key, model, partition, created_ms, \
             expires_ms, saved_nanos, answer, embedding) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
             ON CONFLICT (kind, namespace, key) DO UPDATE SET model = excluded.model, \
             partition = excluded.partition, created_ms = excluded.created_ms, \
             expires_ms = excluded.expires_ms, saved_nanos = excluded.saved_nanos, \
             answer = excluded.answer, embedding = excluded.embedding",
                &[
                    &e.kind.as_str(),
                    &e.namespace,
                    &e.key,
                    &e.model,
                    &e.partition,
                    &e.created_ms,
                    &e.expires_ms,
                    &e.saved_nanos,
                    &e.answer.to_string(),
                    &embedding,
                ],
            )
            .await?;
            Ok(())
        })
    }

    fn delete_cache_entries(
        &mut self,
        keys: &[(CacheKind, String, String)],
    ) -> Result<(), StoreError> {
        self.on_conn(async |c| {
            super::write::in_tx(c, async |tx| {
                let stmt = tx
                    .prepare(
                        "DELETE FROM cache_entries WHERE kind = $1 AND namespace = $2 AND key = $3",
                    )
                    .await?;
                for (kind, namespace, key) in keys {
                    tx.execute(&stmt, &[&kind.as_str(), namespace, key]).await?;
                }
                Ok(())
            })
            .await
        })
    }

    fn drop_expired_cache(&mut self, now_ms: i64) -> Result<u64, StoreError> {
        self.on_conn(async |c| {
            Ok(c.execute(
                "DELETE FROM cache_entries WHERE expires_ms <= $1",
                &[&now_ms],
            )
            .await?)
        })
    }

    fn purge_cache(&mut self, purge: &CachePurge) -> Result<u64, StoreError> {
        // LIKE's wildcards in the namespace are escaped: a namespace matches only itself and
        // what is under it.
        let under = purge.namespace.as_ref().map(|n| {
            format!(
                "{}/%",
                n.replace('\\', "\\\\")
                    .replace('%', "\\%")
                    .replace('_', "\\_")
            )
        });
        let kind = purge.kind.map(CacheKind::as_str);
        let model = purge.model.clone();
        let namespace = purge.namespace.clone();
        // The other nodes hear of it once the rows are gone and drop what they hold in memory
        // that the store no longer has (`server/follow.rs`).
        self.on_conn(async |c| {
            let removed = c
                .execute(
                    "DELETE FROM cache_entries WHERE ($1::TEXT IS NULL OR kind = $1) \
             AND ($2::TEXT IS NULL OR model = $2) \
             AND ($3::TEXT IS NULL OR namespace = $3 OR namespace LIKE $4)",
                    &[&kind, &model, &namespace, &under],
                )
                .await?;
            c.execute(
                &format!("SELECT pg_notify({}, $1)", super::listen::CHANNEL_SQL),
                &[&crate::store::changes::Changed::Cache.as_str()],
            )
            .await?;
            Ok(removed)
        })
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
