//! The ledger key: the secret that anchors the ledger, kept out of the database.
//!
//! The chain hash alone proves nothing against someone who can write the database: they can
//! rewrite an entry and recompute every later hash. Each entry therefore also carries
//! `HMAC-SHA256(key, hash)`, and the key lives where the database does not: in
//! `STOCKYARD_LEDGER_KEY` (hex or base64) or in a file beside the database
//! (`<db>.ledger-key`, 32 random bytes as hex, mode 0600, created at first start).
//! A writing open (the server, an offline CLI change) takes the key through
//! [`LedgerKey::for_writing`], which creates the file only for a ledger that has no MAC yet, and
//! otherwise insists that the key found is the one the newest MAC was made with: a lost key file
//! or another `STOCKYARD_LEDGER_KEY` must stop the start, not fork the ledger under a new key.
//! Readers only look for the key ([`LedgerKey::find`]).

use std::path::{Path, PathBuf};

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use thiserror::Error;

use crate::secrets::key_file;

/// Shorter keys than this are refused: a guessable key anchors nothing.
const MIN_KEY_BYTES: usize = 16;
const NEW_KEY_BYTES: usize = 32;

#[derive(Debug, Error)]
pub enum KeyError {
    /// Named by the caller (config validation says `STOCKYARD_LEDGER_KEY: ...`).
    #[error("must be hex or base64 of at least {MIN_KEY_BYTES} bytes")]
    BadEnv,
    #[error("ledger key file {path}: must hold hex of at least {MIN_KEY_BYTES} bytes")]
    BadFile { path: String },
    #[error("ledger key file {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot draw random bytes for a new ledger key: {0}")]
    Random(String),
    #[error(
        "the ledger is anchored with a key that is not here: restore {key_file} or set \
         STOCKYARD_LEDGER_KEY (no key was found, and a new one would fork the ledger)"
    )]
    Absent { key_file: String },
    #[error(
        "the ledger is anchored with a key that is not here: the key from {found_in} does not \
         match the MAC of entry {seq}; restore {key_file} or set STOCKYARD_LEDGER_KEY to the key \
         the ledger was written with (if the key is right, entry {seq} was altered: run \
         `stockyard audit verify`)"
    )]
    Mismatch {
        found_in: String,
        key_file: String,
        seq: i64,
    },
}

/// The newest entry that carries a MAC: what a writing open checks the key it found against.
#[derive(Clone, Debug)]
pub struct NewestMac {
    pub seq: i64,
    pub hash: String,
    pub mac: String,
}

/// Holds the keyed HMAC state, not the raw bytes, so the key is never at hand to print.
#[derive(Clone)]
pub struct LedgerKey(Hmac<Sha256>);

impl std::fmt::Debug for LedgerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LedgerKey([redacted])")
    }
}

impl LedgerKey {
    /// `<db>.ledger-key`.
    pub fn path_for(db: &Path) -> PathBuf {
        key_file::sibling(db, ".ledger-key")
    }

    /// Parses `STOCKYARD_LEDGER_KEY`: hex first (a hex string is also valid base64), then base64.
    pub fn from_env_value(value: &str) -> Result<LedgerKey, KeyError> {
        key_file::decode_hex_or_base64(value)
            .and_then(|b| LedgerKey::from_bytes(&b))
            .ok_or(KeyError::BadEnv)
    }

    /// The key from `env` if given, else from the key file beside `db`, creating the file (mode
    /// 0600) with a new random key when it does not exist.
    pub fn open_or_create(db: &Path, env: Option<&str>) -> Result<LedgerKey, KeyError> {
        if let Some(found) = LedgerKey::find(db, env)? {
            return Ok(found);
        }
        let path = LedgerKey::path_for(db);
        let bytes = key_file::random_bytes(NEW_KEY_BYTES).map_err(KeyError::Random)?;
        match key_file::create_new_private(&path, &bytes) {
            Ok(()) => {
                tracing::info!(path = %path.display(), "created a new ledger key file");
                LedgerKey::from_bytes(&bytes).ok_or_else(|| KeyError::BadFile {
                    path: path.display().to_string(),
                })
            }
            // Lost the race to another process: use the key it wrote.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => LedgerKey::read_file(&path),
            Err(source) => Err(KeyError::Io {
                path: path.display().to_string(),
                source,
            }),
        }
    }

    /// The key for a process that appends to the ledger of `db`, whose newest MACed entry is
    /// `newest`: the key found must have made that MAC; a new key file is created only while no
    /// entry carries a MAC.
    pub fn for_writing(
        db: &Path,
        env: Option<&str>,
        newest: Option<&NewestMac>,
    ) -> Result<LedgerKey, KeyError> {
        let key_file = || LedgerKey::path_for(db).display().to_string();
        match (LedgerKey::find(db, env)?, newest) {
            (Some(key), Some(newest)) if !key.check(&newest.hash, &newest.mac) => {
                Err(KeyError::Mismatch {
                    found_in: match env {
                        Some(_) => "STOCKYARD_LEDGER_KEY".to_string(),
                        None => key_file(),
                    },
                    key_file: key_file(),
                    seq: newest.seq,
                })
            }
            (Some(key), _) => Ok(key),
            (None, Some(_)) => Err(KeyError::Absent {
                key_file: key_file(),
            }),
            (None, None) => LedgerKey::open_or_create(db, env),
        }
    }

    /// The key from `env` if given, else from the key file beside `db`; `None` if neither exists.
    /// Never creates anything.
    pub fn find(db: &Path, env: Option<&str>) -> Result<Option<LedgerKey>, KeyError> {
        if let Some(value) = env {
            return LedgerKey::from_env_value(value).map(Some);
        }
        let path = LedgerKey::path_for(db);
        if !path.exists() {
            return Ok(None);
        }
        LedgerKey::read_file(&path).map(Some)
    }

    fn read_file(path: &Path) -> Result<LedgerKey, KeyError> {
        key_file::read_hex(path)
            .map_err(|source| KeyError::Io {
                path: path.display().to_string(),
                source,
            })?
            .and_then(|b| LedgerKey::from_bytes(&b))
            .ok_or_else(|| KeyError::BadFile {
                path: path.display().to_string(),
            })
    }

    fn from_bytes(bytes: &[u8]) -> Option<LedgerKey> {
        if bytes.len() < MIN_KEY_BYTES {
            return None;
        }
        <Hmac<Sha256> as KeyInit>::new_from_slice(bytes)
            .ok()
            .map(LedgerKey)
    }

    /// `HMAC-SHA256(key, message)` as hex. An entry's message is its chain hash, which already
    /// covers its content and its predecessor, so MACing it anchors both; the head's is
    /// `head|SEQ|HASH` ([`super::Head`]).
    pub fn mac(&self, message: &str) -> String {
        self.mac_of(&[message])
    }

    /// The MAC of `parts` joined, fed in turn: a virtual key's MAC is made on every request, and
    /// joining its parts first cost a `format!`.
    pub fn mac_of(&self, parts: &[&str]) -> String {
        let mut mac = self.0.clone();
        for part in parts {
            mac.update(part.as_bytes());
        }
        hex_lower(&mac.finalize().into_bytes())
    }

    /// Constant-time check of a stored MAC.
    pub fn check(&self, message: &str, stored_mac: &str) -> bool {
        let ours = self.mac(message);
        ours.len() == stored_mac.len() && bool::from(ours.as_bytes().ct_eq(stored_mac.as_bytes()))
    }
}

/// Lowercase hex, as `hex::encode` writes it, by table: a MAC is made for every request that
/// presents a virtual key, and `hex::encode` goes through a `char` iterator, several times
/// slower.
pub fn hex_lower(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = Vec::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)]);
        out.push(DIGITS[usize::from(b & 0x0f)]);
    }
    // Only ASCII digits and letters were written.
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    #[test]
    fn key_file_is_created_once_private_and_reused() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let db = dir.path().join("s.db");
        assert!(matches!(LedgerKey::find(&db, None), Ok(None)));
        let first = LedgerKey::open_or_create(&db, None).unwrap_or_else(|e| panic!("{e}"));
        let again = LedgerKey::open_or_create(&db, None).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(first.mac("h"), again.mac("h"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(LedgerKey::path_for(&db))
                .map(|m| m.permissions().mode() & 0o777)
                .unwrap_or(0);
            assert_eq!(mode, 0o600);
        }
    }

    #[test]
    fn env_key_reads_hex_and_base64_and_wins_over_the_file() {
        let hex_key = "00112233445566778899aabbccddeeff";
        let b64_key = base64::engine::general_purpose::STANDARD
            .encode(hex::decode(hex_key).unwrap_or_default());
        let a = LedgerKey::from_env_value(hex_key).unwrap_or_else(|e| panic!("{e}"));
        let b = LedgerKey::from_env_value(&b64_key).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(a.mac("h"), b.mac("h"));
        assert!(LedgerKey::from_env_value("short").is_err());
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let db = dir.path().join("s.db");
        let from_env =
            LedgerKey::open_or_create(&db, Some(hex_key)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(from_env.mac("h"), a.mac("h"));
        assert!(!LedgerKey::path_for(&db).exists());
    }

    #[test]
    fn a_writing_open_never_makes_a_new_key_for_an_anchored_ledger() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let db = dir.path().join("s.db");
        let first = LedgerKey::for_writing(&db, None, None).unwrap_or_else(|e| panic!("{e}"));
        let newest = NewestMac {
            seq: 3,
            hash: "h3".into(),
            mac: first.mac("h3"),
        };
        let again =
            LedgerKey::for_writing(&db, None, Some(&newest)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(again.mac("h"), first.mac("h"));

        let other = "ff".repeat(16);
        let err = LedgerKey::for_writing(&db, Some(&other), Some(&newest)).err();
        let message = err.map(|e| e.to_string()).unwrap_or_default();
        assert!(
            message.contains("anchored with a key that is not here")
                && message.contains("STOCKYARD_LEDGER_KEY does not match the MAC of entry 3"),
            "{message}"
        );

        std::fs::remove_file(LedgerKey::path_for(&db)).unwrap_or_else(|e| panic!("{e}"));
        let err = LedgerKey::for_writing(&db, None, Some(&newest)).err();
        assert!(matches!(err, Some(KeyError::Absent { .. })), "{err:?}");
        assert!(
            !LedgerKey::path_for(&db).exists(),
            "a new key file was made"
        );
    }

    #[test]
    fn hex_is_lowercase_and_matches_the_hex_crate() {
        let bytes: Vec<u8> = (0..=255).collect();
        assert_eq!(hex_lower(&bytes), hex::encode(&bytes));
        assert_eq!(hex_lower(&[]), "");
    }

    #[test]
    fn macs_differ_by_key_and_check_in_constant_time() {
        let a = LedgerKey::from_env_value("00112233445566778899aabbccddeeff")
            .unwrap_or_else(|e| panic!("{e}"));
        let b = LedgerKey::from_env_value("ff112233445566778899aabbccddeeff")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_ne!(a.mac("h"), b.mac("h"));
        assert!(a.check("h", &a.mac("h")));
        assert!(!a.check("h", &b.mac("h")));
    }
}
