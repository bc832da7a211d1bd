//! Keys, teams and admin keys on PostgreSQL: the reads of [`KeyStore`] and the rows an admin
//! change writes inside its ledger transaction ([`write`], called by `write.rs`). Limits and
//! metadata are JSON text, as on SQLite; a column that does not parse back is corrupt, by table.

use std::collections::BTreeMap;

use tokio_postgres::Transaction;

use super::read::{PgReader, get};
use crate::request::grant::Limits;
use crate::store::{
    AdminKeyRecord, AdminRole, KeyStore, KeyWrite, StoreError, TeamRecord, VirtualKeyRecord,
};

/// Writes `writes` in order inside `tx` (the open ledger transaction).
pub(super) async fn write(tx: &Transaction<'_>, writes: &[KeyWrite]) -> Result<(), StoreError> {
    for w in writes {
        match w {
            KeyWrite::Team(t) => {
                tx.execute(
                    "INSERT INTO teams (name, limits, created_ms, updated_ms) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (name) DO UPDATE SET limits = excluded.limits, \
                     updated_ms = excluded.updated_ms",
                    &[&t.name, &to_json(&t.limits)?, &t.created_ms, &t.updated_ms],
                ).await?;
            }
            KeyWrite::DeleteTeam { name } => {
                tx.execute("DELETE FROM teams WHERE name = $1", &[name])
                    .await?;
            }
            KeyWrite::Key(k) => {
                tx.execute(
                    "INSERT INTO virtual_keys (id, name, prefix, hash, team, limits, metadata, \
                     expires_ms, revoked_ms, created_ms, updated_ms, rotated_from) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
                     ON CONFLICT (id) DO UPDATE SET name = excluded.name, team = excluded.team, \
                     limits = excluded.limits, metadata = excluded.metadata, \
                     expires_ms = excluded.expires_ms, revoked_ms = excluded.revoked_ms, \
                     updated_ms = excluded.updated_ms",
                    &[
                        &k.id,
                        &k.name,
                        &k.prefix,
                        &k.hash,
                        &k.team,
                        &to_json(&k.limits)?,
                        &to_json(&k.metadata)?,
                        &k.expires_ms,
                        &k.revoked_ms,
                        &k.created_ms,
                        &k.updated_ms,
                        &k.rotated_from,
                    ],
                )
                .await?;
            }
            KeyWrite::AdminKey(a) => {
                tx.execute(
                    "INSERT INTO admin_keys (id, name, role, prefix, hash, created_ms, revoked_ms) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7) \
                     ON CONFLICT (id) DO UPDATE SET revoked_ms = excluded.revoked_ms",
                    &[
                        &a.id,
                        &a.name,
                        &a.role.as_str(),
                        &a.prefix,
                        &a.hash,
                        &a.created_ms,
                        &a.revoked_ms,
                    ],
                )
                .await?;
            }
        }
    }
    Ok(())
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Backend(e.to_string()))
}

fn from_json<T: serde::de::DeserializeOwned>(
    table: &'static str,
    text: &str,
) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt {
        table,
        detail: e.to_string(),
    })
}

impl KeyStore for PgReader {
    fn teams(&self) -> Result<Vec<TeamRecord>, StoreError> {
        self.with(move |c| async move {
            let rows = c.query(
                "SELECT name, limits, created_ms, updated_ms FROM teams ORDER BY name COLLATE \"C\"",
                &[],
            ).await?;
            rows.iter()
                .map(|r| {
                    let limits: String = get(r, 1)?;
                    Ok(TeamRecord {
                        name: get(r, 0)?,
                        limits: from_json::<Limits>("teams", &limits)?,
                        created_ms: get(r, 2)?,
                        updated_ms: get(r, 3)?,
                    })
                })
                .collect()
        })
    }

    fn virtual_keys(&self) -> Result<Vec<VirtualKeyRecord>, StoreError> {
        self.with(move |c| async move {
            let rows = c.query(
                "SELECT id, name, prefix, hash, team, limits, metadata, expires_ms, revoked_ms, \
                 created_ms, updated_ms, rotated_from FROM virtual_keys \
                 ORDER BY created_ms, id COLLATE \"C\"",
                &[],
            ).await?;
            rows.iter()
                .map(|r| {
                    let limits: String = get(r, 5)?;
                    let metadata: String = get(r, 6)?;
                    Ok(VirtualKeyRecord {
                        id: get(r, 0)?,
                        name: get(r, 1)?,
                        prefix: get(r, 2)?,
                        hash: get(r, 3)?,
                        team: get(r, 4)?,
                        limits: from_json("virtual_keys", &limits)?,
                        metadata: from_json::<BTreeMap<String, String>>("virtual_keys", &metadata)?,
                        expires_ms: get(r, 7)?,
                        revoked_ms: get(r, 8)?,
                        created_ms: get(r, 9)?,
                        updated_ms: get(r, 10)?,
                        rotated_from: get(r, 11)?,
                    })
                })
                .collect()
        })
    }

    fn admin_keys(&self) -> Result<Vec<AdminKeyRecord>, StoreError> {
        self.with(move |c| async move {
            let rows = c
                .query(
                    "SELECT id, name, role, prefix, hash, created_ms, revoked_ms FROM admin_keys \
                 ORDER BY created_ms, id COLLATE \"C\"",
                    &[],
                )
                .await?;
            rows.iter()
                .map(|r| {
                    let role: String = get(r, 2)?;
                    Ok(AdminKeyRecord {
                        id: get(r, 0)?,
                        name: get(r, 1)?,
                        role: AdminRole::parse(&role).ok_or_else(|| StoreError::Corrupt {
                            table: "admin_keys",
                            detail: format!("unknown role {role:?}"),
                        })?,
                        prefix: get(r, 3)?,
                        hash: get(r, 4)?,
                        created_ms: get(r, 5)?,
                        revoked_ms: get(r, 6)?,
                    })
                })
                .collect()
        })
    }
}
