//! Keys, teams and admin keys on SQLite: the reads of [`KeyStore`] and the rows an admin change
//! writes inside its ledger transaction ([`write`], called by `write.rs`). Limits and metadata
//! are JSON columns; a column that does not parse back is reported as corrupt, by table.

use std::collections::BTreeMap;

use rusqlite::{Connection, params};

use super::read::SqliteReader;
use crate::request::grant::Limits;
use crate::store::{
    AdminKeyRecord, AdminRole, KeyStore, KeyWrite, StoreError, TeamRecord, VirtualKeyRecord,
};

/// Writes `writes` in order on `conn` (the open ledger transaction).
pub(super) fn write(conn: &Connection, writes: &[KeyWrite]) -> Result<(), StoreError> {
    for w in writes {
        match w {
            KeyWrite::Team(t) => {
                conn.execute(
                    "INSERT INTO teams (name, limits, created_ms, updated_ms) VALUES (?1, ?2, ?3, ?4) \
                     ON CONFLICT (name) DO UPDATE SET limits = excluded.limits, \
                     updated_ms = excluded.updated_ms",
                    params![t.name, to_json(&t.limits)?, t.created_ms, t.updated_ms],
                )?;
            }
            KeyWrite::DeleteTeam { name } => {
                conn.execute("DELETE FROM teams WHERE name = ?1", [name])?;
            }
            KeyWrite::Key(k) => {
                conn.execute(
                    "INSERT INTO virtual_keys (id, name, prefix, hash, team, limits, metadata, \
                     expires_ms, revoked_ms, created_ms, updated_ms, rotated_from) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12) \
                     ON CONFLICT (id) DO UPDATE SET name = excluded.name, team = excluded.team, \
                     limits = excluded.limits, metadata = excluded.metadata, \
                     expires_ms = excluded.expires_ms, revoked_ms = excluded.revoked_ms, \
                     updated_ms = excluded.updated_ms",
                    params![
                        k.id,
                        k.name,
                        k.prefix,
                        k.hash,
                        k.team,
                        to_json(&k.limits)?,
                        to_json(&k.metadata)?,
                        k.expires_ms,
                        k.revoked_ms,
                        k.created_ms,
                        k.updated_ms,
                        k.rotated_from
                    ],
                )?;
            }
            KeyWrite::AdminKey(a) => {
                conn.execute(
                    "INSERT INTO admin_keys (id, name, role, prefix, hash, created_ms, revoked_ms) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
                     ON CONFLICT (id) DO UPDATE SET revoked_ms = excluded.revoked_ms",
                    params![
                        a.id,
                        a.name,
                        a.role.as_str(),
                        a.prefix,
                        a.hash,
                        a.created_ms,
                        a.revoked_ms
                    ],
                )?;
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

impl KeyStore for SqliteReader {
    fn teams(&self) -> Result<Vec<TeamRecord>, StoreError> {
        self.with(|c| {
            let mut stmt =
                c.prepare("SELECT name, limits, created_ms, updated_ms FROM teams ORDER BY name")?;
            let rows = stmt.query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, i64>(3)?,
                ))
            })?;
            let mut teams = Vec::new();
            for row in rows {
                let (name, limits, created_ms, updated_ms) = row?;
                teams.push(TeamRecord {
                    name,
                    limits: from_json::<Limits>("teams", &limits)?,
                    created_ms,
                    updated_ms,
                });
            }
            Ok(teams)
        })
    }

    fn virtual_keys(&self) -> Result<Vec<VirtualKeyRecord>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT id, name, prefix, hash, team, limits, metadata, expires_ms, revoked_ms, \
                 created_ms, updated_ms, rotated_from FROM virtual_keys ORDER BY created_ms, id",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok((
                    VirtualKeyRecord {
                        id: r.get(0)?,
                        name: r.get(1)?,
                        prefix: r.get(2)?,
                        hash: r.get(3)?,
                        team: r.get(4)?,
                        limits: Limits::default(),
                        metadata: BTreeMap::new(),
                        expires_ms: r.get(7)?,
                        revoked_ms: r.get(8)?,
                        created_ms: r.get(9)?,
                        updated_ms: r.get(10)?,
                        rotated_from: r.get(11)?,
                    },
                    r.get::<_, String>(5)?,
                    r.get::<_, String>(6)?,
                ))
            })?;
            let mut keys = Vec::new();
            for row in rows {
                let (mut key, limits, metadata) = row?;
                key.limits = from_json("virtual_keys", &limits)?;
                key.metadata = from_json("virtual_keys", &metadata)?;
                keys.push(key);
            }
            Ok(keys)
        })
    }

    fn admin_keys(&self) -> Result<Vec<AdminKeyRecord>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT id, name, role, prefix, hash, created_ms, revoked_ms FROM admin_keys \
                 ORDER BY created_ms, id",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok((
                    r.get::<_, String>(2)?,
                    AdminKeyRecord {
                        id: r.get(0)?,
                        name: r.get(1)?,
                        role: AdminRole::Admin,
                        prefix: r.get(3)?,
                        hash: r.get(4)?,
                        created_ms: r.get(5)?,
                        revoked_ms: r.get(6)?,
                    },
                ))
            })?;
            let mut keys = Vec::new();
            for row in rows {
                let (role, mut key) = row?;
                key.role = AdminRole::parse(&role).ok_or_else(|| StoreError::Corrupt {
                    table: "admin_keys",
                    detail: format!("unknown role {role:?}"),
                })?;
                keys.push(key);
            }
            Ok(keys)
        })
    }
}
