//! Virtual keys, teams and admin keys as stored. A key is never stored: only its keyed hash
//! (see `modules::auth::hasher`) and a short visible prefix, so a copy of the database lets no one
//! in. Written only through [`super::LedgerWrites::apply_admin`] with [`super::Persist::Keys`],
//! beside the ledger entry of the change; read once at start-up into the in-memory key table the
//! request path uses (`modules::auth::table`), and by the CLI's listings.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::StoreError;
use crate::request::grant::Limits;

/// A team: limits and allowed models that apply on top of each of its keys'.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeamRecord {
    /// The team's id.
    pub name: String,
    pub limits: Limits,
    pub created_ms: i64,
    pub updated_ms: i64,
}

/// A client (virtual) key. `hash` is the keyed hash of the key; the key itself is nowhere.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VirtualKeyRecord {
    pub id: String,
    pub name: String,
    pub prefix: String,
    /// Never shown by the admin API or the CLI.
    #[serde(skip_serializing)]
    pub hash: String,
    pub team: Option<String>,
    pub limits: Limits,
    pub metadata: BTreeMap<String, String>,
    pub expires_ms: Option<i64>,
    pub revoked_ms: Option<i64>,
    pub created_ms: i64,
    pub updated_ms: i64,
    /// The key this one replaced (`keys rotate`).
    pub rotated_from: Option<String>,
}

/// What an admin key may do: everything, or only read (`GET`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AdminRole {
    Admin,
    ReadOnly,
}

impl AdminRole {
    pub fn as_str(self) -> &'static str {
        match self {
            AdminRole::Admin => "admin",
            AdminRole::ReadOnly => "read-only",
        }
    }

    pub fn parse(text: &str) -> Option<AdminRole> {
        match text {
            "admin" => Some(AdminRole::Admin),
            "read-only" => Some(AdminRole::ReadOnly),
            _ => None,
        }
    }
}

/// A key for the admin API, with its role; hashed the same way as a virtual key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminKeyRecord {
    pub id: String,
    pub name: String,
    pub role: AdminRole,
    pub prefix: String,
    #[serde(skip_serializing)]
    pub hash: String,
    pub created_ms: i64,
    pub revoked_ms: Option<i64>,
}

/// One row written by an administrative change; a change may write several (a rotation saves the
/// revoked key and its successor).
#[derive(Clone, Debug, PartialEq)]
pub enum KeyWrite {
    /// Inserts or replaces the team of that name.
    Team(TeamRecord),
    /// Deletes a team; the caller checked that no live key names it.
    DeleteTeam { name: String },
    /// Inserts or replaces the key of that id.
    Key(VirtualKeyRecord),
    /// Inserts or replaces the admin key of that id.
    AdminKey(AdminKeyRecord),
}

/// Reads of keys and teams. Methods block; async callers use `spawn_blocking`.
pub trait KeyStore: Send + Sync {
    /// Every team, by name.
    fn teams(&self) -> Result<Vec<TeamRecord>, StoreError>;
    /// Every virtual key, revoked ones included, oldest first.
    fn virtual_keys(&self) -> Result<Vec<VirtualKeyRecord>, StoreError>;
    /// Every admin key, revoked ones included, oldest first.
    fn admin_keys(&self) -> Result<Vec<AdminKeyRecord>, StoreError>;
}

/// The first key of each key's rotation chain (`rotated_from`, back to a key made afresh), by
/// id: its limits are counted under that id. Each key is walked once (a chain's keys share the
/// answer), and a walk is at most as long as the keys there are, which also ends a loop a
/// hand-edited database could hold.
pub fn first_of_rotations(
    keys: &std::collections::BTreeMap<String, VirtualKeyRecord>,
) -> std::collections::HashMap<&str, &str> {
    let mut first: std::collections::HashMap<&str, &str> =
        std::collections::HashMap::with_capacity(keys.len());
    for key in keys.values() {
        if first.contains_key(key.id.as_str()) {
            continue;
        }
        let mut path = vec![key];
        let mut at = key;
        let root = loop {
            match at.rotated_from.as_deref().and_then(|id| keys.get(id)) {
                Some(earlier) if path.len() <= keys.len() => {
                    if let Some(known) = first.get(earlier.id.as_str()) {
                        break *known;
                    }
                    path.push(earlier);
                    at = earlier;
                }
                _ => break at.id.as_str(),
            }
        };
        for key in path {
            first.insert(key.id.as_str(), root);
        }
    }
    first
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: &str, from: Option<&str>) -> (String, VirtualKeyRecord) {
        let record = VirtualKeyRecord {
            id: id.into(),
            name: id.into(),
            prefix: String::new(),
            hash: String::new(),
            team: None,
            limits: Limits::default(),
            metadata: BTreeMap::new(),
            expires_ms: None,
            revoked_ms: None,
            created_ms: 0,
            updated_ms: 0,
            rotated_from: from.map(String::from),
        };
        (id.into(), record)
    }

    #[test]
    fn a_rotation_chain_counts_under_its_first_key_and_a_loop_ends() {
        let keys: BTreeMap<String, VirtualKeyRecord> = [
            key("vk_c", Some("vk_b")),
            key("vk_a", None),
            key("vk_b", Some("vk_a")),
            key("vk_d", Some("vk_gone")),
            key("vk_x", Some("vk_y")),
            key("vk_y", Some("vk_x")),
        ]
        .into_iter()
        .collect();
        let first = first_of_rotations(&keys);
        assert_eq!(first["vk_a"], "vk_a");
        assert_eq!(first["vk_b"], "vk_a");
        assert_eq!(first["vk_c"], "vk_a");
        // Rotated from a key no longer there: its own start.
        assert_eq!(first["vk_d"], "vk_d");
        // A loop (a hand-edited database) ends, each key given one of the loop's ids.
        assert!(["vk_x", "vk_y"].contains(&first["vk_x"]));
        assert_eq!(first.len(), keys.len());
    }
}
