//! `KeyTable`: every virtual key, team and admin key in memory, with the lookups the request path
//! and the admin API make, so neither ever reads the disk to authenticate.
//!
//! Loaded once at start-up from the store, then changed only by `Admin::apply` after a change
//! persisted: [`KeyTable::apply`] builds the next [`KeyState`] (grants included) and swaps it in,
//! so the very next request sees a revocation, and a team's change reaches every one of its
//! keys' grants at once. Lives in `ModuleDeps::shared`, so a rebuilt chain keeps it.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use arc_swap::{ArcSwap, Guard};

use super::hasher::{ADMIN_MARK, KEY_PREFIX, KeyHasher};
use crate::modules::ModuleDeps;
use crate::request::grant::{Grant, TeamGrant};
use crate::store::{AdminKeyRecord, KeyWrite, TeamRecord, VirtualKeyRecord};

pub struct KeyTable {
    hasher: KeyHasher,
    state: ArcSwap<KeyState>,
}

/// One consistent view of every key and team, and the indexes built from it.
#[derive(Default)]
pub struct KeyState {
    pub teams: BTreeMap<String, TeamRecord>,
    /// Virtual keys by id, revoked ones included.
    pub keys: BTreeMap<String, VirtualKeyRecord>,
    /// Admin keys by id, revoked ones included.
    pub admin_keys: BTreeMap<String, AdminKeyRecord>,
    /// foldhash: looked up on every request, by MACs no client can choose.
    by_hash: HashMap<String, Arc<KeyEntry>, foldhash::fast::RandomState>,
    admin_by_hash: HashMap<String, Arc<AdminKeyRecord>, foldhash::fast::RandomState>,
}

/// A virtual key as the request path sees it.
pub struct KeyEntry {
    pub grant: Arc<Grant>,
    pub revoked: bool,
    pub expires_ms: Option<i64>,
}

/// What a presented key turned out to be.
pub enum Lookup {
    Valid(Arc<Grant>),
    Revoked,
    Expired,
    Unknown,
}

impl KeyState {
    pub fn new(
        teams: Vec<TeamRecord>,
        keys: Vec<VirtualKeyRecord>,
        admin_keys: Vec<AdminKeyRecord>,
    ) -> KeyState {
        KeyState::index(
            teams.into_iter().map(|t| (t.name.clone(), t)).collect(),
            keys.into_iter().map(|k| (k.id.clone(), k)).collect(),
            admin_keys.into_iter().map(|a| (a.id.clone(), a)).collect(),
        )
    }

    fn index(
        teams: BTreeMap<String, TeamRecord>,
        keys: BTreeMap<String, VirtualKeyRecord>,
        admin_keys: BTreeMap<String, AdminKeyRecord>,
    ) -> KeyState {
        // One grant per team, shared by its keys.
        let team_grants: HashMap<&str, Arc<TeamGrant>> = teams
            .values()
            .map(|t| {
                let grant = TeamGrant {
                    id: t.name.clone(),
                    limits: t.limits.clone(),
                };
                (t.name.as_str(), Arc::new(grant))
            })
            .collect();
        let firsts = crate::store::first_of_rotations(&keys);
        let by_hash = keys
            .values()
            .map(|k| {
                let grant = Grant {
                    key_id: k.id.clone(),
                    limits_id: firsts
                        .get(k.id.as_str())
                        .unwrap_or(&k.id.as_str())
                        .to_string(),
                    key_name: k.name.clone(),
                    team: k.team.as_deref().and_then(|t| team_grants.get(t).cloned()),
                    limits: k.limits.clone(),
                    metadata: k.metadata.clone(),
                };
                let entry = KeyEntry {
                    grant: Arc::new(grant),
                    revoked: k.revoked_ms.is_some(),
                    expires_ms: k.expires_ms,
                };
                (k.hash.clone(), Arc::new(entry))
            })
            .collect();
        let admin_by_hash = admin_keys
            .values()
            .filter(|a| a.revoked_ms.is_none())
            .map(|a| (a.hash.clone(), Arc::new(a.clone())))
            .collect();
        KeyState {
            teams,
            keys,
            admin_keys,
            by_hash,
            admin_by_hash,
        }
    }

    /// This state with `writes` applied, indexes rebuilt.
    pub fn with(&self, writes: &[KeyWrite]) -> KeyState {
        let mut teams = self.teams.clone();
        let mut keys = self.keys.clone();
        let mut admin_keys = self.admin_keys.clone();
        for w in writes {
            match w {
                KeyWrite::Team(t) => {
                    teams.insert(t.name.clone(), t.clone());
                }
                KeyWrite::DeleteTeam { name } => {
                    teams.remove(name);
                }
                KeyWrite::Key(k) => {
                    keys.insert(k.id.clone(), k.clone());
                }
                KeyWrite::AdminKey(a) => {
                    admin_keys.insert(a.id.clone(), a.clone());
                }
            }
        }
        KeyState::index(teams, keys, admin_keys)
    }

    /// Whether any virtual key was ever made. Revoked and expired ones count: revoking the last
    /// key must not turn the proxy back into local mode, open to whoever reaches it.
    pub fn has_virtual_keys(&self) -> bool {
        !self.keys.is_empty()
    }

    pub fn has_admin_keys(&self) -> bool {
        !self.admin_by_hash.is_empty()
    }

    /// The grant of `id` as the request path would see it now.
    pub fn grant(&self, id: &str) -> Option<Arc<Grant>> {
        let key = self.keys.get(id)?;
        self.by_hash.get(&key.hash).map(|e| e.grant.clone())
    }
}

impl KeyTable {
    pub fn new(hasher: KeyHasher, state: KeyState) -> KeyTable {
        KeyTable {
            hasher,
            state: ArcSwap::from_pointee(state),
        }
    }

    pub fn hasher(&self) -> &KeyHasher {
        &self.hasher
    }

    pub fn load(&self) -> Guard<Arc<KeyState>> {
        self.state.load()
    }

    pub fn load_full(&self) -> Arc<KeyState> {
        self.state.load_full()
    }

    /// Swaps in the state with `writes` applied. Called by `Admin::apply` (which serializes
    /// changes) after the writes are committed.
    pub fn apply(&self, writes: &[KeyWrite]) {
        let next = self.state.load().with(writes);
        self.state.store(Arc::new(next));
    }

    /// Swaps in `state` whole: a reload from the store after another node changed keys. A
    /// change this node applies meanwhile is in the store too, so the reload holds it.
    pub fn replace(&self, state: KeyState) {
        self.state.store(Arc::new(state));
    }

    /// The virtual key `presented`, at `now_ms`. Only keys of our own format are hashed: any
    /// other string cannot be one, and costs no HMAC.
    pub fn lookup(&self, presented: &str, now_ms: impl FnOnce() -> i64) -> Lookup {
        if !presented.starts_with(KEY_PREFIX) {
            return Lookup::Unknown;
        }
        let state = self.state.load();
        let Some(entry) = state.by_hash.get(&self.hasher.virtual_key(presented)) else {
            return Lookup::Unknown;
        };
        if entry.revoked {
            Lookup::Revoked
        } else if entry.expires_ms.is_some_and(|at| now_ms() >= at) {
            Lookup::Expired
        } else {
            Lookup::Valid(entry.grant.clone())
        }
    }

    /// The live admin key `presented`, if it is one.
    pub fn admin(&self, presented: &str) -> Option<Arc<AdminKeyRecord>> {
        if !presented.starts_with(&format!("{KEY_PREFIX}{ADMIN_MARK}")) {
            return None;
        }
        let hash = self.hasher.admin_key(presented);
        self.state.load().admin_by_hash.get(&hash).cloned()
    }
}

/// The proxy's key table, if start-up installed one (an `App` always does).
pub fn of(deps: &ModuleDeps) -> Option<Arc<KeyTable>> {
    deps.shared.get::<KeyTable>()
}

/// Installs the key table at start-up, before the first chain is built (the auth module's
/// `required` and `build` read it).
pub fn install(deps: &ModuleDeps, hasher: KeyHasher, state: KeyState) -> Arc<KeyTable> {
    deps.shared.get_or_init(|| KeyTable::new(hasher, state))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::LedgerKey;
    use crate::request::grant::Limits;

    fn hasher() -> KeyHasher {
        KeyHasher::new(
            LedgerKey::from_env_value("00112233445566778899aabbccddeeff")
                .unwrap_or_else(|e| panic!("{e}")),
        )
    }

    fn key(h: &KeyHasher, id: &str, secret: &str, team: Option<&str>) -> VirtualKeyRecord {
        VirtualKeyRecord {
            id: id.into(),
            name: id.into(),
            prefix: secret[..8].into(),
            hash: h.virtual_key(secret),
            team: team.map(String::from),
            limits: Limits::default(),
            metadata: BTreeMap::new(),
            expires_ms: None,
            revoked_ms: None,
            created_ms: 1,
            updated_ms: 1,
            rotated_from: None,
        }
    }

    fn team(name: &str, rpm: u64) -> TeamRecord {
        TeamRecord {
            name: name.into(),
            limits: Limits {
                rpm: Some(rpm),
                ..Limits::default()
            },
            created_ms: 1,
            updated_ms: 1,
        }
    }

    #[test]
    fn lookups_tell_valid_revoked_expired_and_unknown_apart() {
        let h = hasher();
        let mut expiring = key(&h, "vk_2", "sk-sy-two", None);
        expiring.expires_ms = Some(100);
        let table = KeyTable::new(
            h.clone(),
            KeyState::new(
                vec![team("ml", 5)],
                vec![key(&h, "vk_1", "sk-sy-one", Some("ml")), expiring],
                vec![],
            ),
        );
        let Lookup::Valid(grant) = table.lookup("sk-sy-one", || 0) else {
            panic!("valid key refused");
        };
        assert_eq!(grant.key_id, "vk_1");
        assert_eq!(grant.team.as_ref().and_then(|t| t.limits.rpm), Some(5));
        assert!(matches!(table.lookup("sk-sy-two", || 99), Lookup::Valid(_)));
        assert!(matches!(table.lookup("sk-sy-two", || 100), Lookup::Expired));
        assert!(matches!(table.lookup("sk-sy-nope", || 0), Lookup::Unknown));
        assert!(matches!(table.lookup("other", || 0), Lookup::Unknown));

        let mut revoked = key(&h, "vk_1", "sk-sy-one", Some("ml"));
        revoked.revoked_ms = Some(5);
        table.apply(&[KeyWrite::Key(revoked)]);
        assert!(matches!(table.lookup("sk-sy-one", || 0), Lookup::Revoked));
        assert!(table.load().has_virtual_keys());
    }

    #[test]
    fn a_team_change_reaches_its_keys_grants_at_once() {
        let h = hasher();
        let table = KeyTable::new(
            h.clone(),
            KeyState::new(
                vec![team("ml", 5)],
                vec![key(&h, "vk_1", "sk-sy-one", Some("ml"))],
                vec![],
            ),
        );
        table.apply(&[KeyWrite::Team(team("ml", 9))]);
        let rpm = table
            .load()
            .grant("vk_1")
            .and_then(|g| g.team.as_ref().and_then(|t| t.limits.rpm));
        assert_eq!(rpm, Some(9));
    }
}
