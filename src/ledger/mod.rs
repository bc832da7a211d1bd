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
//! ([`key`]), and the newest entry's sequence and hash are published, with their own MAC, after
//! each write ([`head`]), which is how a cut tail shows.
//!
//! With a key, every entry must carry a valid MAC: there is no "unanchored" leniency a forger
//! could use by clearing every MAC and recomputing the chain. Entries written before MACs existed
//! are anchored once, by the next writing open ([`to_anchor`] says which may be). Only with no key
//! anywhere (a ledger that never had one) does a MAC-less entry pass, as "unanchored", and then
//! only its hash chain is checked.

pub mod head;
pub mod key;

pub use head::{Head, PublishedHead};
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
    #[error(
        "entry {seq}: has no MAC, but a ledger key exists, so every entry must carry one (its MAC \
         was removed)"
    )]
    MacMissing { seq: i64 },
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
    #[error(
        "the ledger head file {path} is missing, but the ledger is anchored; a cut tail cannot be \
         ruled out (pass a head kept elsewhere with --expect-head to check it)"
    )]
    HeadMissing { path: String },
    #[error(
        "the ledger head file {path} carries no valid MAC under the ledger key (it was rewritten, \
         or written by a build before heads carried one: `stockyard serve` republishes it once)"
    )]
    HeadUnauthenticated { path: String },
}

/// What a successful walk found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    /// The newest entry (sequence 0 and the genesis hash for an empty ledger).
    pub head: Head,
    /// Entries that chain but carry no MAC, checked with no ledger key to be found (a ledger
    /// that was never anchored). Always 0 when a key was given.
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
    for entry in entries {
        check_link(entry, prev_seq, &prev_hash)?;
        match (&entry.mac, key) {
            (None, Some(_)) => return Err(VerifyError::MacMissing { seq: entry.seq }),
            (None, None) => unanchored += 1,
            (Some(_), None) => return Err(VerifyError::NoKey { seq: entry.seq }),
            (Some(mac), Some(key)) if key.check(&entry.hash, mac) => {}
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

/// The chain alone: numbering, each entry's own hash, and its link to the one before.
fn check_chain(entries: &[LedgerEntry]) -> Result<(), VerifyError> {
    let mut prev = (0, GENESIS_HASH);
    for entry in entries {
        check_link(entry, prev.0, prev.1)?;
        prev = (entry.seq, &entry.hash);
    }
    Ok(())
}

fn check_link(entry: &LedgerEntry, prev_seq: i64, prev_hash: &str) -> Result<(), VerifyError> {
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
    Ok(())
}

/// The entries a writing open may MAC under `key`: those written before the ledger was anchored,
/// once. Two cases, both limited to a chain that holds:
/// - MAC-less entries before the first MACed one, when that one's MAC checks: its hash covers
///   theirs, so the key already vouches for them (a ledger from a build that anchored only new
///   entries);
/// - every entry, when none carries a MAC and no head file was ever published (a ledger from a
///   build before MACs, meeting its first key). A published head means some build anchored this
///   ledger, so a ledger with no MAC left had its MACs cleared: it is not re-anchored.
///
/// A MAC-less entry after a MACed one is never anchored: that is a removed MAC, for
/// [`verify`] to name.
pub fn to_anchor(entries: &[LedgerEntry], key: &LedgerKey, head_published: bool) -> Vec<i64> {
    let first_maced = entries.iter().position(|e| e.mac.is_some());
    let prefix = match first_maced {
        Some(i) => {
            let vouched = entries[i]
                .mac
                .as_deref()
                .is_some_and(|mac| key.check(&entries[i].hash, mac));
            if !vouched {
                return Vec::new();
            }
            &entries[..=i]
        }
        None if head_published => return Vec::new(),
        None => entries,
    };
    if check_chain(prefix).is_err() {
        return Vec::new();
    }
    prefix
        .iter()
        .filter(|e| e.mac.is_none())
        .map(|e| e.seq)
        .collect()
}

/// What the head file adds to a chain that [`verify`] passed. With a key, a ledger with entries
/// must have a head file whose MAC checks (else a cut tail and a rewritten head go unseen), and
/// the chain must reach it. With no key, a head file is only compared with the chain. `Ok(false)`
/// when there was no head file to compare with.
pub fn check_published(
    entries: &[LedgerEntry],
    published: Option<&PublishedHead>,
    key: Option<&LedgerKey>,
    path: &std::path::Path,
) -> Result<bool, VerifyError> {
    let path = || path.display().to_string();
    match (published, key) {
        (Some(published), Some(key)) if !published.is_authentic(key) => {
            Err(VerifyError::HeadUnauthenticated { path: path() })
        }
        (Some(published), _) => check_head(entries, &published.head).map(|()| true),
        (None, Some(_)) if !entries.is_empty() => Err(VerifyError::HeadMissing { path: path() }),
        (None, _) => Ok(false),
    }
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
    fn with_a_key_every_entry_needs_a_mac_and_without_one_a_macless_ledger_only_chains() {
        let mut entries = chain(4);
        entries[0].mac = None;
        assert_eq!(
            verify(&entries, Some(&key())),
            Err(VerifyError::MacMissing { seq: 1 })
        );
        entries[0].mac = Some(key().mac(&entries[0].hash));
        entries[3].mac = None;
        assert_eq!(
            verify(&entries, Some(&key())),
            Err(VerifyError::MacMissing { seq: 4 })
        );
        for e in &mut entries {
            e.mac = None;
        }
        assert_eq!(verify(&entries, None).map(|v| v.unanchored), Ok(4));
        assert_eq!(verify(&chain(2), None), Err(VerifyError::NoKey { seq: 1 }));
    }

    #[test]
    fn every_mac_cleared_and_the_chain_recomputed_fails_under_the_key() {
        let mut entries = chain(4);
        entries[1].actor = "forger".into();
        for e in &mut entries {
            e.mac = None;
        }
        recompute_from(&mut entries, 0, None);
        assert_eq!(
            verify(&entries, Some(&key())),
            Err(VerifyError::MacMissing { seq: 1 })
        );
        // Nor is such a ledger re-anchored by a writing open once a head was published.
        assert_eq!(to_anchor(&entries, &key(), true), Vec::<i64>::new());
    }

    #[test]
    fn entries_from_before_anchoring_are_anchored_once_and_only_when_vouched_for() {
        // A build that MACed only new entries: the MAC-less prefix is covered by entry 3's MAC.
        let mut entries = chain(4);
        for e in &mut entries[..2] {
            e.mac = None;
        }
        assert_eq!(to_anchor(&entries, &key(), true), vec![1, 2]);
        // Under another key, entry 3 vouches for nothing.
        let other = LedgerKey::from_env_value("ffffffffffffffffffffffffffffffff")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(to_anchor(&entries, &other, true), Vec::<i64>::new());
        // A removed MAC after an anchored entry is tampering, not history.
        let mut gap = chain(4);
        gap[2].mac = None;
        assert_eq!(to_anchor(&gap, &key(), true), Vec::<i64>::new());
        // A ledger from before MACs, never published: all of it, if it chains.
        let mut old = chain(3);
        for e in &mut old {
            e.mac = None;
        }
        assert_eq!(to_anchor(&old, &key(), false), vec![1, 2, 3]);
        old[1].target = "edited".into();
        assert_eq!(to_anchor(&old, &key(), false), Vec::<i64>::new());
    }

    #[test]
    fn a_missing_or_unauthenticated_head_file_fails_an_anchored_ledger() {
        let entries = chain(3);
        let path = std::path::Path::new("s.db.ledger-head");
        let head = Head {
            seq: 3,
            hash: entries[2].hash.clone(),
        };
        let unsigned = PublishedHead {
            head: head.clone(),
            mac: None,
        };
        assert_eq!(
            check_published(&entries, None, Some(&key()), path),
            Err(VerifyError::HeadMissing {
                path: "s.db.ledger-head".into()
            })
        );
        assert_eq!(
            check_published(&entries, Some(&unsigned), Some(&key()), path),
            Err(VerifyError::HeadUnauthenticated {
                path: "s.db.ledger-head".into()
            })
        );
        let line = format!("{head}:{}", key().mac(&format!("head|3|{}", head.hash)));
        let signed: PublishedHead = line.parse().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            check_published(&entries, Some(&signed), Some(&key()), path),
            Ok(true)
        );
        assert_eq!(check_published(&[], None, Some(&key()), path), Ok(false));
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
