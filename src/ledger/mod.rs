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

/// An entry's details as read back from their stored text. The writer stores exactly the
/// value's compact form, so text that is not that form (a key given twice, white space added)
/// was altered, though it may parse to the same value: it is kept as a string, which hashes
/// differently, so `verify` names the entry. Otherwise a duplicated key that serde_json reads
/// last-wins could say something else to a reader that takes the first (SQLite's
/// `json_extract`) while the chain still verified.
pub fn details_from_stored(text: String) -> Value {
    match serde_json::from_str::<Value>(&text) {
        Ok(value) if serde_json::to_string(&value).ok().as_deref() == Some(text.as_str()) => value,
        _ => Value::String(text),
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
mod tests;
