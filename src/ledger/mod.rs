//! The audit ledger: an append-only, hash-chained list of administrative changes.
//!
//! Entry `n` stores `hash = SHA-256(hash of entry n-1 || canonical JSON of entry n)`, with 64 zeros
//! before the first entry. The canonical JSON is the entry's fields (not its hashes) as a JSON
//! object with keys sorted and no white space, so the same entry always hashes the same. Editing,
//! deleting, inserting or reordering rows breaks the chain at the first row touched, and
//! [`verify`] names it.
//!
//! The chain alone can be recomputed by anyone who can write the database, so it is anchored
//! outside it twice: each entry carries an HMAC of its hash under a key kept out of the database
//! ([`key`]), and the newest entry's sequence and hash are published after each write ([`head`]),
//! which is how a cut tail shows. Entries written before MACs existed verify as "unanchored" (a
//! warning); once one entry is anchored, every later one must be.

pub mod head;
pub mod key;

pub use head::Head;
pub use key::LedgerKey;

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
    /// `HMAC-SHA256(ledger key, hash)`; `None` on entries written before the ledger was anchored.
    pub mac: Option<String>,
}

impl LedgerEntry {
    /// Seals `draft` as the entry after `prev` (`None` for the first entry), MACed under `key`.
    pub fn seal(
        draft: &LedgerDraft,
        prev: Option<(i64, &str)>,
        ts_ms: i64,
        key: &LedgerKey,
    ) -> LedgerEntry {
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
        let hash = chain_hash(prev_hash, &canonical);
        LedgerEntry {
            seq,
            ts_ms,
            actor: draft.actor.clone(),
            action: draft.action.clone(),
            target: draft.target.clone(),
            details: draft.details.clone(),
            prev_hash: prev_hash.to_string(),
            mac: Some(key.mac(&hash)),
            hash,
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
    #[error(
        "entry {seq}: its MAC does not match under the ledger key (rewritten, or the chain was \
         recomputed without the key)"
    )]
    BadMac { seq: i64 },
    #[error("entry {seq}: has no MAC, but an earlier entry is anchored (its MAC was removed)")]
    MacRemoved { seq: i64 },
    #[error(
        "entry {seq}: anchored, but no ledger key was found to check it; set STOCKYARD_LEDGER_KEY \
         or put the key file beside the database"
    )]
    NoKey { seq: i64 },
    #[error("{missing} entries missing after {after} (the published head is entry {head_seq})")]
    Cut {
        missing: i64,
        after: i64,
        head_seq: i64,
    },
    #[error("entry {seq}: its hash differs from the published head (history rewritten)")]
    HeadMismatch { seq: i64 },
}

/// What a successful walk found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    /// The newest entry (sequence 0 and the genesis hash for an empty ledger).
    pub head: Head,
    /// Leading entries written before the ledger was anchored: they chain, but carry no MAC.
    pub unanchored: usize,
}

/// Walks entries in stored order, checking the chain and, under `key`, each MAC.
pub fn verify<'a>(
    entries: impl IntoIterator<Item = &'a LedgerEntry>,
    key: Option<&LedgerKey>,
) -> Result<Verified, VerifyError> {
    let mut prev_seq = 0;
    let mut prev_hash = GENESIS_HASH.to_string();
    let mut unanchored = 0;
    let mut anchored = false;
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
        match (&entry.mac, key) {
            (None, _) if anchored => return Err(VerifyError::MacRemoved { seq: entry.seq }),
            (None, _) => unanchored += 1,
            (Some(_), None) => return Err(VerifyError::NoKey { seq: entry.seq }),
            (Some(mac), Some(key)) if key.check(&entry.hash, mac) => anchored = true,
            (Some(_), Some(_)) => return Err(VerifyError::BadMac { seq: entry.seq }),
        }
        prev_seq = entry.seq;
        prev_hash = entry.hash.clone();
    }
    Ok(Verified {
        head: Head {
            seq: prev_seq,
            hash: prev_hash,
        },
        unanchored,
    })
}

/// Checks a verified chain against a head published earlier. Entries appended since are fine
/// (they are MACed); fewer entries than the head, or a different hash at its sequence, are not.
pub fn check_head(entries: &[LedgerEntry], published: &Head) -> Result<(), VerifyError> {
    let newest = entries.last().map(|e| e.seq).unwrap_or(0);
    if published.seq > newest {
        return Err(VerifyError::Cut {
            missing: published.seq - newest,
            after: newest,
            head_seq: published.seq,
        });
    }
    let hash_there = match published.seq {
        0 => GENESIS_HASH,
        seq => entries
            .iter()
            .find(|e| e.seq == seq)
            .map(|e| e.hash.as_str())
            .unwrap_or_default(),
    };
    if hash_there != published.hash {
        return Err(VerifyError::HeadMismatch { seq: published.seq });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> LedgerKey {
        LedgerKey::from_env_value("00112233445566778899aabbccddeeff")
            .unwrap_or_else(|e| panic!("{e}"))
    }

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
            let entry = LedgerEntry::seal(&draft, prev, 1_700_000_000_000 + i as i64, &key());
            entries.push(entry);
        }
        entries
    }

    #[test]
    fn intact_chain_verifies_to_its_head() {
        let entries = chain(5);
        let verified = verify(&entries, Some(&key())).map(|v| v.head);
        assert_eq!(
            verified,
            Ok(Head {
                seq: 5,
                hash: entries[4].hash.clone()
            })
        );
        assert_eq!(
            verify(&[], None).map(|v| v.head.hash),
            Ok(GENESIS_HASH.to_string())
        );
    }

    #[test]
    fn edited_entry_is_named() {
        let mut entries = chain(5);
        entries[2].details = json!({"enabled": false, "sneaky": true});
        assert_eq!(
            verify(&entries, Some(&key())),
            Err(VerifyError::Altered { seq: 3 })
        );
    }

    #[test]
    fn deleted_entry_is_named() {
        let mut entries = chain(5);
        entries.remove(1);
        assert_eq!(
            verify(&entries, Some(&key())),
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
            verify(&entries, Some(&key())),
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
        assert_eq!(
            verify(&entries, Some(&key())),
            Err(VerifyError::Altered { seq: 2 })
        );
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
        let forged = LedgerEntry::seal(&draft, Some((3, &entries[0].hash)), 1, &key());
        entries.push(forged);
        assert_eq!(
            verify(&entries, Some(&key())),
            Err(VerifyError::OutOfPlace { seq: 4, prev: 3 })
        );
    }

    /// Re-seals every entry from `from` on, as a forger with database access but no key would.
    fn recompute_from(entries: &mut [LedgerEntry], from: usize, forger_key: Option<&LedgerKey>) {
        for i in from..entries.len() {
            let prev_hash = if i == 0 {
                GENESIS_HASH.to_string()
            } else {
                entries[i - 1].hash.clone()
            };
            entries[i].prev_hash = prev_hash.clone();
            entries[i].hash = entries[i].recompute_hash(&prev_hash);
            if let Some(k) = forger_key {
                entries[i].mac = Some(k.mac(&entries[i].hash));
            }
        }
    }

    #[test]
    fn issue_9_recomputed_chain_without_the_key_names_the_first_rewritten_entry() {
        let mut entries = chain(5);
        entries[1].details = json!({"enabled": true, "rewritten": true});
        recompute_from(&mut entries, 1, None);
        assert_eq!(
            verify(&entries, Some(&key())),
            Err(VerifyError::BadMac { seq: 2 })
        );
        let mut entries = chain(5);
        entries[2].actor = "someone-else".into();
        let wrong = LedgerKey::from_env_value("ffffffffffffffffffffffffffffffff")
            .unwrap_or_else(|e| panic!("{e}"));
        recompute_from(&mut entries, 2, Some(&wrong));
        assert_eq!(
            verify(&entries, Some(&key())),
            Err(VerifyError::BadMac { seq: 3 })
        );
    }

    #[test]
    fn entries_from_before_anchoring_warn_but_a_removed_mac_fails() {
        let mut entries = chain(4);
        for e in &mut entries[..2] {
            e.mac = None;
        }
        assert_eq!(verify(&entries, Some(&key())).map(|v| v.unanchored), Ok(2));
        entries[3].mac = None;
        assert_eq!(
            verify(&entries, Some(&key())),
            Err(VerifyError::MacRemoved { seq: 4 })
        );
        assert_eq!(verify(&chain(2), None), Err(VerifyError::NoKey { seq: 1 }));
    }

    #[test]
    fn issue_9_a_cut_tail_is_named_by_the_published_head() {
        let entries = chain(6);
        let published = Head {
            seq: 6,
            hash: entries[5].hash.clone(),
        };
        assert_eq!(check_head(&entries, &published), Ok(()));
        assert_eq!(
            check_head(&entries[..4], &published),
            Err(VerifyError::Cut {
                missing: 2,
                after: 4,
                head_seq: 6
            })
        );
        assert_eq!(
            VerifyError::Cut {
                missing: 2,
                after: 4,
                head_seq: 6
            }
            .to_string(),
            "2 entries missing after 4 (the published head is entry 6)"
        );
        // An older published head still holds once more entries were appended...
        let older = Head {
            seq: 3,
            hash: entries[2].hash.clone(),
        };
        assert_eq!(check_head(&entries, &older), Ok(()));
        // ...but not if its entry was replaced.
        let forged = Head {
            seq: 3,
            hash: entries[1].hash.clone(),
        };
        assert_eq!(
            check_head(&entries, &forged),
            Err(VerifyError::HeadMismatch { seq: 3 })
        );
    }
}
