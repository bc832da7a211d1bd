//! The audit ledger: an append-only, hash-chained list of administrative changes.
//!
//! Entry `n` stores `hash = SHA-256(hash of entry n-1 || canonical JSON of entry n)`, with 64 zeros
//! before the first entry. The canonical JSON is the entry's fields (not its hashes) as a JSON
//! object with keys sorted and no white space, so the same entry always hashes the same. Editing,
//! deleting, inserting or reordering rows breaks the chain at the first row touched, and
//! [`verify`] names it. The head hash, kept elsewhere, anchors the whole history.

use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use thiserror::Error;

pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// An entry before the writer gives it a sequence number, time and hashes.
#[derive(Clone, Debug, Serialize)]
pub struct LedgerDraft {
    pub actor: String,
    pub action: String,
    pub target: String,
    pub details: Value,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LedgerEntry {
    pub seq: i64,
    pub ts_ms: i64,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub details: Value,
    pub prev_hash: String,
    pub hash: String,
}

impl LedgerEntry {
    /// Seals `draft` as the entry after `prev` (`None` for the first entry).
    pub fn seal(draft: &LedgerDraft, prev: Option<(i64, &str)>, ts_ms: i64) -> LedgerEntry {
        let (prev_seq, prev_hash) = prev.unwrap_or((0, GENESIS_HASH));
        let seq = prev_seq + 1;
        let canonical = canonical_json(
            seq,
            ts_ms,
            &draft.actor,
            &draft.action,
            &draft.target,
            &draft.details,
        );
        LedgerEntry {
            seq,
            ts_ms,
            actor: draft.actor.clone(),
            action: draft.action.clone(),
            target: draft.target.clone(),
            details: draft.details.clone(),
            prev_hash: prev_hash.to_string(),
            hash: chain_hash(prev_hash, &canonical),
        }
    }

    fn recompute_hash(&self, prev_hash: &str) -> String {
        let canonical = canonical_json(
            self.seq,
            self.ts_ms,
            &self.actor,
            &self.action,
            &self.target,
            &self.details,
        );
        chain_hash(prev_hash, &canonical)
    }
}

/// Keys sorted (serde_json's map is ordered), no white space.
fn canonical_json(
    seq: i64,
    ts_ms: i64,
    actor: &str,
    action: &str,
    target: &str,
    details: &Value,
) -> String {
    json!({
        "action": action,
        "actor": actor,
        "details": details,
        "seq": seq,
        "target": target,
        "ts_ms": ts_ms,
    })
    .to_string()
}

fn chain_hash(prev_hash: &str, canonical: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(prev_hash.as_bytes());
    hasher.update(canonical.as_bytes());
    hex::encode(hasher.finalize())
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum VerifyError {
    #[error("entry {seq}: altered (its content no longer matches its hash)")]
    Altered { seq: i64 },
    #[error("entry {expected}: missing (deleted); the next entry found is {found}")]
    Missing { expected: i64, found: i64 },
    #[error("entry {seq}: out of place (inserted or reordered); it does not follow entry {prev}")]
    OutOfPlace { seq: i64, prev: i64 },
}

/// Walks entries in stored order; returns the head hash (the genesis hash for an empty ledger).
pub fn verify<'a>(
    entries: impl IntoIterator<Item = &'a LedgerEntry>,
) -> Result<String, VerifyError> {
    let mut prev_seq = 0;
    let mut prev_hash = GENESIS_HASH.to_string();
    for entry in entries {
        if entry.seq > prev_seq + 1 {
            return Err(VerifyError::Missing {
                expected: prev_seq + 1,
                found: entry.seq,
            });
        }
        if entry.seq <= prev_seq {
            return Err(VerifyError::OutOfPlace {
                seq: entry.seq,
                prev: prev_seq,
            });
        }
        if entry.recompute_hash(&entry.prev_hash) != entry.hash {
            return Err(VerifyError::Altered { seq: entry.seq });
        }
        if entry.prev_hash != prev_hash {
            return Err(VerifyError::OutOfPlace {
                seq: entry.seq,
                prev: prev_seq,
            });
        }
        prev_seq = entry.seq;
        prev_hash = entry.hash.clone();
    }
    Ok(prev_hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: usize) -> Vec<LedgerEntry> {
        let mut entries: Vec<LedgerEntry> = Vec::new();
        for i in 0..n {
            let draft = LedgerDraft {
                actor: "admin".into(),
                action: "module.update".into(),
                target: format!("m{i}"),
                details: json!({"enabled": i % 2 == 0}),
            };
            let prev = entries.last().map(|e| (e.seq, e.hash.as_str()));
            let entry = LedgerEntry::seal(&draft, prev, 1_700_000_000_000 + i as i64);
            entries.push(entry);
        }
        entries
    }

    #[test]
    fn intact_chain_verifies_to_its_head() {
        let entries = chain(5);
        assert_eq!(verify(&entries), Ok(entries[4].hash.clone()));
        assert_eq!(verify(&[]), Ok(GENESIS_HASH.to_string()));
    }

    #[test]
    fn edited_entry_is_named() {
        let mut entries = chain(5);
        entries[2].details = json!({"enabled": false, "sneaky": true});
        assert_eq!(verify(&entries), Err(VerifyError::Altered { seq: 3 }));
    }

    #[test]
    fn deleted_entry_is_named() {
        let mut entries = chain(5);
        entries.remove(1);
        assert_eq!(
            verify(&entries),
            Err(VerifyError::Missing {
                expected: 2,
                found: 3
            })
        );
    }

    #[test]
    fn reordered_entries_are_named() {
        let mut entries = chain(5);
        entries.swap(1, 2);
        assert_eq!(
            verify(&entries),
            Err(VerifyError::Missing {
                expected: 2,
                found: 3
            })
        );
        // Renumbering the swapped rows to hide the gap breaks their hashes instead.
        let mut entries = chain(5);
        entries.swap(1, 2);
        entries[1].seq = 2;
        entries[2].seq = 3;
        assert_eq!(verify(&entries), Err(VerifyError::Altered { seq: 2 }));
    }

    #[test]
    fn forged_insertion_with_a_valid_own_hash_is_named() {
        let mut entries = chain(3);
        // A forger appends a well-formed entry, but chains it to the wrong predecessor.
        let draft = LedgerDraft {
            actor: "x".into(),
            action: "y".into(),
            target: "z".into(),
            details: json!({}),
        };
        let forged = LedgerEntry::seal(&draft, Some((3, &entries[0].hash)), 1);
        entries.push(forged);
        assert_eq!(
            verify(&entries),
            Err(VerifyError::OutOfPlace { seq: 4, prev: 3 })
        );
    }
}
