//! Key, team and admin-key changes, as `Admin::apply` runs them (`AdminChange::Keys`): validate
//! against the in-memory key table, persist the rows with their ledger entry in one writer
//! transaction, then swap the table so the next request sees the change.
//!
//! A new key's secret is drawn by the caller (the admin API handler, or the offline CLI) and
//! handed in, because `apply` returns only the ledger entry: the caller prints or returns it once.
//! Only its keyed hash and visible prefix are stored; ledger details never hold either secret or
//! hash (the records' `hash` is not serialized).

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Value, json};

use super::{Admin, AdminError};
use crate::ledger::{LedgerDraft, LedgerEntry};
use crate::modules::auth::hasher::visible_prefix;
use crate::modules::auth::table::{self, KeyState, KeyTable};
use crate::request::grant::{Budget, Limits};
use crate::secret::Secret;
use crate::store::{
    AdminKeyRecord, AdminRole, KeyWrite, Persist, TeamRecord, VirtualKeyRecord, now_ms,
};

#[derive(Clone, Debug)]
pub enum KeyOp {
    CreateKey {
        key: NewKey,
        secret: Secret<String>,
    },
    UpdateKey {
        id: String,
        patch: KeyPatch,
    },
    RevokeKey {
        id: String,
    },
    /// A new secret for the key's limits; the old key is revoked at once.
    RotateKey {
        id: String,
        secret: Secret<String>,
    },
    CreateTeam {
        name: String,
        limits: Limits,
    },
    UpdateTeam {
        name: String,
        patch: LimitsPatch,
    },
    DeleteTeam {
        name: String,
    },
    CreateAdminKey {
        name: String,
        role: AdminRole,
        secret: Secret<String>,
    },
    /// By id or by name.
    RevokeAdminKey {
        id: String,
    },
}

impl KeyOp {
    /// The secret this change issues, which its caller shows once.
    pub fn issued_secret(&self) -> Option<&Secret<String>> {
        match self {
            KeyOp::CreateKey { secret, .. }
            | KeyOp::RotateKey { secret, .. }
            | KeyOp::CreateAdminKey { secret, .. } => Some(secret),
            _ => None,
        }
    }
}

/// A key to create, as the admin API takes it.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewKey {
    pub name: String,
    #[serde(default)]
    pub team: Option<String>,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    #[serde(default)]
    pub expires_ms: Option<i64>,
}

/// Changes to a key: an absent field stays, `null` clears it.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyPatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub team: Option<Option<String>>,
    #[serde(default)]
    pub limits: LimitsPatch,
    /// Replaces the metadata as a whole.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<BTreeMap<String, String>>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub expires_ms: Option<Option<i64>>,
}

/// Changes to limits: an absent field stays, `null` clears it (unlimited; every model).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsPatch {
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub budget: Option<Option<Budget>>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub rpm: Option<Option<u64>>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub tpm: Option<Option<u64>>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub models: Option<Option<Vec<String>>>,
}

/// A field that is present, even as `null`, is `Some`: `Some(None)` clears.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Ok(Some(Option::deserialize(d)?))
}

impl LimitsPatch {
    pub fn is_empty(&self) -> bool {
        self.budget.is_none() && self.rpm.is_none() && self.tpm.is_none() && self.models.is_none()
    }

    fn apply(&self, limits: &mut Limits) {
        if let Some(budget) = &self.budget {
            limits.budget = budget.clone();
        }
        if let Some(rpm) = self.rpm {
            limits.rpm = rpm;
        }
        if let Some(tpm) = self.tpm {
            limits.tpm = tpm;
        }
        if let Some(models) = &self.models {
            limits.models = models.clone().unwrap_or_default();
        }
    }
}

/// Names of teams and admin keys go in URLs and ledger actors: a conservative character set.
fn check_name(what: &str, name: &str) -> Result<(), AdminError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(AdminError::Invalid(format!(
            "{what} name {name:?}: use 1 to 64 letters, digits, '-', '_' or '.'"
        )))
    }
}

/// The most a key's name may hold, and its metadata: both are shown in listings and the metadata
/// is copied into every trace row of the key, so neither may grow without bound.
const MAX_KEY_NAME_CHARS: usize = 200;
const MAX_METADATA_ENTRIES: usize = 64;
const MAX_METADATA_BYTES: usize = 8 * 1024;

/// A virtual key's display name: free text, but not empty, not overlong, and without control
/// characters (a newline or a right-to-left override in a listing fakes rows).
fn check_key_name(name: &str) -> Result<(), AdminError> {
    if name.trim().is_empty() {
        return Err(AdminError::Invalid("key name: must not be empty".into()));
    }
    if name.chars().count() > MAX_KEY_NAME_CHARS {
        return Err(AdminError::Invalid(format!(
            "key name: at most {MAX_KEY_NAME_CHARS} characters"
        )));
    }
    if let Some(c) = name.chars().find(|c| is_disallowed_char(*c)) {
        return Err(AdminError::Invalid(format!(
            "key name: must not contain the control or direction character U+{:04X}",
            u32::from(c)
        )));
    }
    Ok(())
}

fn check_metadata(metadata: &BTreeMap<String, String>) -> Result<(), AdminError> {
    if metadata.len() > MAX_METADATA_ENTRIES {
        return Err(AdminError::Invalid(format!(
            "metadata: at most {MAX_METADATA_ENTRIES} entries"
        )));
    }
    let bytes: usize = metadata.iter().map(|(k, v)| k.len() + v.len()).sum();
    if bytes > MAX_METADATA_BYTES {
        return Err(AdminError::Invalid(format!(
            "metadata: at most {MAX_METADATA_BYTES} bytes of keys and values"
        )));
    }
    for (k, v) in metadata {
        // Values may run over lines (a description); keys are names.
        let bad_in_value = |c: char| is_disallowed_char(c) && !matches!(c, '\n' | '\t');
        if k.is_empty() || k.chars().any(is_disallowed_char) || v.chars().any(bad_in_value) {
            return Err(AdminError::Invalid(format!(
                "metadata {k:?}: keys must not be empty, and neither keys nor values may hold \
                 control or direction characters (values may hold line breaks and tabs)"
            )));
        }
    }
    Ok(())
}

/// Control characters, line and paragraph separators, and the Unicode direction marks,
/// overrides and isolates that reorder text.
fn is_disallowed_char(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{2028}' | '\u{2029}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2066}'..='\u{2069}'
        )
}

fn check_limits(limits: &Limits) -> Result<(), AdminError> {
    if let Some(budget) = &limits.budget {
        if budget.limit_nanos < 0 {
            return Err(AdminError::Invalid(
                "budget: must not be negative".to_string(),
            ));
        }
        if budget.alert_percents.iter().any(|p| *p == 0 || *p > 100) {
            return Err(AdminError::Invalid(
                "budget.alert_percents: each must be 1..=100".to_string(),
            ));
        }
    }
    if limits.rpm == Some(0) || limits.tpm == Some(0) {
        return Err(AdminError::Invalid(
            "rpm and tpm: must be at least 1 (leave unset for no limit)".to_string(),
        ));
    }
    if limits.models.iter().any(|m| m.trim().is_empty()) {
        return Err(AdminError::Invalid(
            "models: a model glob must not be empty".to_string(),
        ));
    }
    Ok(())
}

fn new_id(kind: &str) -> String {
    format!("{kind}_{}", uuid::Uuid::now_v7().simple())
}

/// Runs one key change; the caller (`Admin::apply`) holds the change lock.
pub(super) async fn apply(
    admin: &Admin,
    actor: &str,
    op: KeyOp,
) -> Result<LedgerEntry, AdminError> {
    let table = table::of(admin.deps()).ok_or_else(|| {
        AdminError::Invalid("this proxy has no key table (an App always installs one)".into())
    })?;
    let state = table.load_full();
    let now = now_ms();
    let (writes, action, target, details) = plan(admin, &table, &state, op, now)?;
    let draft = LedgerDraft {
        actor: actor.to_string(),
        action: action.to_string(),
        target,
        details,
    };
    let entry = admin
        .deps()
        .writer
        .admin(Some(Persist::Keys(writes.clone())), draft)
        .await?;
    table.apply(&writes);
    tracing::info!(action, target = %entry.target, seq = entry.seq, "keys changed");
    Ok(entry)
}

type Planned = (Vec<KeyWrite>, &'static str, String, serde_json::Value);

/// Step 1 of a change: validate against `state` and say what to write and record.
fn plan(
    admin: &Admin,
    table: &KeyTable,
    state: &Arc<KeyState>,
    op: KeyOp,
    now: i64,
) -> Result<Planned, AdminError> {
    let key_of = |id: &str| {
        state
            .keys
            .get(id)
            .cloned()
            .ok_or_else(|| AdminError::NotFound(format!("no virtual key with id {id:?}")))
    };
    let live_key_of = |id: &str| {
        let key = key_of(id)?;
        match key.revoked_ms {
            Some(_) => Err(AdminError::Invalid(format!("key {id} is revoked"))),
            None => Ok(key),
        }
    };
    let team_of = |name: &str| {
        state
            .teams
            .get(name)
            .cloned()
            .ok_or_else(|| AdminError::NotFound(format!("no team named {name:?}")))
    };
    let hasher = table.hasher();
    Ok(match op {
        KeyOp::CreateKey { key, secret } => {
            require_auth_enabled(admin)?;
            check_key_name(&key.name)?;
            check_metadata(&key.metadata)?;
            if let Some(team) = &key.team {
                team_of(team)?;
            }
            check_limits(&key.limits)?;
            let record = VirtualKeyRecord {
                id: new_id("vk"),
                name: key.name,
                prefix: visible_prefix(secret.expose()),
                hash: hasher.virtual_key(secret.expose()),
                team: key.team,
                limits: key.limits,
                metadata: key.metadata,
                expires_ms: key.expires_ms,
                revoked_ms: None,
                created_ms: now,
                updated_ms: now,
                rotated_from: None,
            };
            let details = json!(record);
            let id = record.id.clone();
            (vec![KeyWrite::Key(record)], "key.create", id, details)
        }
        KeyOp::UpdateKey { id, patch } => {
            let mut key = live_key_of(&id)?;
            let before = json!(key);
            if let Some(name) = patch.name {
                check_key_name(&name)?;
                key.name = name;
            }
            if let Some(team) = patch.team {
                if let Some(team) = &team {
                    team_of(team)?;
                }
                key.team = team;
            }
            patch.limits.apply(&mut key.limits);
            check_limits(&key.limits)?;
            if let Some(metadata) = patch.metadata {
                check_metadata(&metadata)?;
                key.metadata = metadata;
            }
            if let Some(expires_ms) = patch.expires_ms {
                key.expires_ms = expires_ms;
            }
            key.updated_ms = now;
            let details = json!({"before": before, "after": key});
            (vec![KeyWrite::Key(key)], "key.update", id, details)
        }
        KeyOp::RevokeKey { id } => {
            let mut key = live_key_of(&id)?;
            key.revoked_ms = Some(now);
            key.updated_ms = now;
            let details = json!({"id": id, "name": key.name, "prefix": key.prefix});
            (vec![KeyWrite::Key(key)], "key.revoke", id, details)
        }
        KeyOp::RotateKey { id, secret } => {
            let old = live_key_of(&id)?;
            let new = VirtualKeyRecord {
                id: new_id("vk"),
                prefix: visible_prefix(secret.expose()),
                hash: hasher.virtual_key(secret.expose()),
                revoked_ms: None,
                created_ms: now,
                updated_ms: now,
                rotated_from: Some(old.id.clone()),
                ..old.clone()
            };
            let revoked = VirtualKeyRecord {
                revoked_ms: Some(now),
                updated_ms: now,
                ..old
            };
            let details = json!({"revoked": id, "new": new});
            (
                vec![KeyWrite::Key(revoked), KeyWrite::Key(new)],
                "key.rotate",
                id,
                details,
            )
        }
        KeyOp::CreateTeam { name, limits } => {
            check_name("team", &name)?;
            if state.teams.contains_key(&name) {
                return Err(AdminError::Invalid(format!("team {name:?} already exists")));
            }
            check_limits(&limits)?;
            let team = TeamRecord {
                name: name.clone(),
                limits,
                created_ms: now,
                updated_ms: now,
            };
            let details = json!(team);
            (vec![KeyWrite::Team(team)], "team.create", name, details)
        }
        KeyOp::UpdateTeam { name, patch } => {
            let mut team = team_of(&name)?;
            let before = json!(team.limits);
            patch.apply(&mut team.limits);
            check_limits(&team.limits)?;
            team.updated_ms = now;
            let details = json!({"before": before, "after": team.limits});
            (vec![KeyWrite::Team(team)], "team.update", name, details)
        }
        KeyOp::DeleteTeam { name } => {
            team_of(&name)?;
            let members: Vec<&str> = state
                .keys
                .values()
                .filter(|k| k.revoked_ms.is_none() && k.team.as_deref() == Some(name.as_str()))
                .map(|k| k.id.as_str())
                .collect();
            if !members.is_empty() {
                return Err(AdminError::Invalid(format!(
                    "team {name:?} still has keys ({}); revoke them or move them to another team first",
                    members.join(", ")
                )));
            }
            let details = json!({"name": name});
            (
                vec![KeyWrite::DeleteTeam { name: name.clone() }],
                "team.delete",
                name,
                details,
            )
        }
        KeyOp::CreateAdminKey { name, role, secret } => {
            check_name("admin key", &name)?;
            if state
                .admin_keys
                .values()
                .any(|a| a.revoked_ms.is_none() && a.name == name)
            {
                return Err(AdminError::Invalid(format!(
                    "an admin key named {name:?} exists; the ledger names actors by it, so names are unique"
                )));
            }
            let record = AdminKeyRecord {
                id: new_id("ak"),
                name,
                role,
                prefix: visible_prefix(secret.expose()),
                hash: hasher.admin_key(secret.expose()),
                created_ms: now,
                revoked_ms: None,
            };
            let details = json!(record);
            let id = record.id.clone();
            (
                vec![KeyWrite::AdminKey(record)],
                "admin_key.create",
                id,
                details,
            )
        }
        KeyOp::RevokeAdminKey { id } => {
            let found = state
                .admin_keys
                .values()
                .find(|a| a.revoked_ms.is_none() && (a.id == id || a.name == id))
                .cloned()
                .ok_or_else(|| AdminError::NotFound(format!("no live admin key {id:?}")))?;
            let details = json!({"id": found.id, "name": found.name, "role": found.role});
            let target = found.id.clone();
            let revoked = AdminKeyRecord {
                revoked_ms: Some(now),
                ..found
            };
            (
                vec![KeyWrite::AdminKey(revoked)],
                "admin_key.revoke",
                target,
                details,
            )
        }
    })
}

/// A key as listed: the record (no hash) and whether it works now.
pub fn key_json(key: &VirtualKeyRecord, now: i64) -> Value {
    let status = if key.revoked_ms.is_some() {
        "revoked"
    } else if key.expires_ms.is_some_and(|at| now >= at) {
        "expired"
    } else {
        "active"
    };
    let mut value = json!(key);
    value["status"] = json!(status);
    value
}

/// A virtual key with the auth module disabled would be handed out and never checked.
fn require_auth_enabled(admin: &Admin) -> Result<(), AdminError> {
    let chain = admin.chain().load();
    let enabled = chain.states().iter().any(|s| s.name == "auth" && s.enabled);
    if enabled {
        Ok(())
    } else {
        Err(AdminError::Invalid(
            "the auth module is disabled, so a key would never be checked; enable it first \
             (`stockyard modules enable auth`)"
                .into(),
        ))
    }
}
