//! The master key: AES-256-GCM over provider credentials, kept out of the database.
//!
//! It comes from `STOCKYARD_MASTER_KEY` (hex or base64 of 32 bytes) or from the file beside the
//! database (`<db>.master-key`, hex, mode 0600), created at the first writing open when neither
//! exists and nothing in the database is sealed yet. The database holds a check value (a known
//! text sealed under the key), so [`MasterKey::for_writing`] refuses a key that is not the one
//! the credentials were sealed with, before anything is opened for writing: a wrong key stops the
//! start and changes nothing.
//!
//! Rotation writes the new key to `<db>.master-key.new` before the transaction that re-seals the
//! records, and renames it over the key file after the commit. A crash in between leaves the
//! database under the new key and the staged file beside it; the next writing open finds that
//! the staged key opens the check value and finishes the rename, so no record is ever under a
//! key that is nowhere.

use std::path::{Path, PathBuf};

use aes_gcm::Aes256Gcm;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use thiserror::Error;

use super::key_file;
use crate::secret::Secret;

pub const KEY_BYTES: usize = 32;
const NONCE_BYTES: usize = 12;
/// The associated data and text of the check value: fixed, so any key can test itself on it.
const CHECK_ID: &str = "secrets_meta/check";
const CHECK_TEXT: &[u8] = b"stockyard master key check v1";

#[derive(Debug, Error)]
pub enum MasterKeyError {
    /// Named by the caller (config validation says `STOCKYARD_MASTER_KEY: ...`).
    #[error("must be hex or base64 of exactly {KEY_BYTES} bytes")]
    BadEnv,
    #[error("master key file {path}: must hold hex of exactly {KEY_BYTES} bytes")]
    BadFile { path: String },
    #[error("master key file {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot draw random bytes for a new master key: {0}")]
    Random(String),
    #[error(
        "provider credentials in the database are sealed with a master key that is not here: \
         restore {key_file} or set STOCKYARD_MASTER_KEY to that key; nothing was changed"
    )]
    Absent { key_file: String },
    #[error(
        "the master key from {found_in} does not open the provider credentials in the database: \
         restore the key they were sealed with ({key_file}, or STOCKYARD_MASTER_KEY; after \
         `stockyard secrets rotate`, the new one); nothing was changed"
    )]
    Mismatch { found_in: String, key_file: String },
}

/// A record that does not open: altered, or sealed under another key. Never carries plaintext.
#[derive(Debug, Error)]
pub enum SealError {
    #[error("record {id} does not open under the master key (altered, or sealed with another key)")]
    Open { id: String },
    #[error("cannot seal record {id}")]
    Seal { id: String },
    #[error("cannot draw a random nonce: {0}")]
    Random(String),
}

/// Where the key in force came from: rotation writes a file only for a key from a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeySource {
    Env,
    File(PathBuf),
}

impl KeySource {
    pub fn describe(&self) -> String {
        match self {
            KeySource::Env => "STOCKYARD_MASTER_KEY".into(),
            KeySource::File(path) => path.display().to_string(),
        }
    }
}

/// Holds the cipher state, not the raw bytes, so the key is never at hand to print.
#[derive(Clone)]
pub struct MasterKey(Aes256Gcm);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey([redacted])")
    }
}

impl MasterKey {
    /// `<db>.master-key`.
    pub fn path_for(db: &Path) -> PathBuf {
        key_file::sibling(db, ".master-key")
    }

    /// `<db>.master-key.new`: a rotation's new key until its transaction is committed.
    pub fn staged_path_for(db: &Path) -> PathBuf {
        key_file::sibling(db, ".master-key.new")
    }

    pub fn from_bytes(bytes: &[u8]) -> Option<MasterKey> {
        if bytes.len() != KEY_BYTES {
            return None;
        }
        Aes256Gcm::new_from_slice(bytes).ok().map(MasterKey)
    }

    /// Parses `STOCKYARD_MASTER_KEY` (or a `--new-key-file`'s text).
    pub fn from_env_value(value: &str) -> Result<MasterKey, MasterKeyError> {
        key_file::decode_hex_or_base64(value)
            .and_then(|b| MasterKey::from_bytes(&b))
            .ok_or(MasterKeyError::BadEnv)
    }

    /// A new random key and its bytes (for the key file a rotation writes).
    pub fn generate() -> Result<(MasterKey, Secret<Vec<u8>>), MasterKeyError> {
        let bytes = key_file::random_bytes(KEY_BYTES).map_err(MasterKeyError::Random)?;
        let key = MasterKey::from_bytes(&bytes).ok_or(MasterKeyError::BadEnv)?;
        Ok((key, Secret::new(bytes)))
    }

    /// The key from `env` if given, else from the key file beside `db`; `None` if neither exists.
    pub fn find(
        db: &Path,
        env: Option<&str>,
    ) -> Result<Option<(MasterKey, KeySource)>, MasterKeyError> {
        if let Some(value) = env {
            return MasterKey::from_env_value(value).map(|k| Some((k, KeySource::Env)));
        }
        let path = MasterKey::path_for(db);
        if !path.exists() {
            return Ok(None);
        }
        MasterKey::read_file(&path).map(|k| Some((k, KeySource::File(path))))
    }

    /// The key for a process that writes the database of `db`, whose stored check value is
    /// `check`: the key found must open it. A new key file is created only while nothing is
    /// sealed; a rotation interrupted after its commit is finished here.
    pub fn for_writing(
        db: &Path,
        env: Option<&str>,
        check: Option<&[u8]>,
    ) -> Result<(MasterKey, KeySource), MasterKeyError> {
        let key_file = || MasterKey::path_for(db).display().to_string();
        match (MasterKey::find(db, env)?, check) {
            (Some((key, source)), Some(check)) if !key.opens_check(check) => {
                if source != KeySource::Env
                    && let Some(found) = MasterKey::finish_rotation(db, check)?
                {
                    return Ok(found);
                }
                Err(MasterKeyError::Mismatch {
                    found_in: source.describe(),
                    key_file: key_file(),
                })
            }
            (Some(found), _) => Ok(found),
            (None, Some(check)) => {
                MasterKey::finish_rotation(db, check)?.ok_or_else(|| MasterKeyError::Absent {
                    key_file: key_file(),
                })
            }
            (None, None) => MasterKey::create(db),
        }
    }

    /// A staged key that opens `check` is the one a committed rotation left: make it the key file.
    fn finish_rotation(
        db: &Path,
        check: &[u8],
    ) -> Result<Option<(MasterKey, KeySource)>, MasterKeyError> {
        let staged = MasterKey::staged_path_for(db);
        if !staged.exists() {
            return Ok(None);
        }
        let key = MasterKey::read_file(&staged)?;
        if !key.opens_check(check) {
            return Ok(None);
        }
        let path = MasterKey::path_for(db);
        key_file::promote(&staged, &path).map_err(|source| MasterKeyError::Io {
            path: path.display().to_string(),
            source,
        })?;
        tracing::warn!(
            path = %path.display(),
            "finished a master key rotation that was interrupted after its commit"
        );
        Ok(Some((key, KeySource::File(path))))
    }

    fn create(db: &Path) -> Result<(MasterKey, KeySource), MasterKeyError> {
        let path = MasterKey::path_for(db);
        let bytes = key_file::random_bytes(KEY_BYTES).map_err(MasterKeyError::Random)?;
        match key_file::create_new_private(&path, &bytes) {
            Ok(()) => {
                tracing::info!(
                    path = %path.display(),
                    "created a new master key file (it seals provider credentials; back it up \
                     apart from the database)"
                );
                let key = MasterKey::from_bytes(&bytes).ok_or(MasterKeyError::BadEnv)?;
                Ok((key, KeySource::File(path)))
            }
            // Lost the race to another process: use the key it wrote.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                MasterKey::read_file(&path).map(|k| (k, KeySource::File(path)))
            }
            Err(source) => Err(MasterKeyError::Io {
                path: path.display().to_string(),
                source,
            }),
        }
    }

    fn read_file(path: &Path) -> Result<MasterKey, MasterKeyError> {
        let bad = || MasterKeyError::BadFile {
            path: path.display().to_string(),
        };
        key_file::read_hex(path)
            .map_err(|source| MasterKeyError::Io {
                path: path.display().to_string(),
                source,
            })?
            .and_then(|b| MasterKey::from_bytes(&b))
            .ok_or_else(bad)
    }

    /// Writes a rotation's new key to the staged file (private, whole or not at all).
    pub fn stage(db: &Path, bytes: &Secret<Vec<u8>>) -> Result<(), MasterKeyError> {
        let path = MasterKey::staged_path_for(db);
        key_file::replace_private(&path, bytes.expose()).map_err(|source| MasterKeyError::Io {
            path: path.display().to_string(),
            source,
        })
    }

    /// After the commit: the staged key becomes the key file (one rename).
    pub fn promote_staged(db: &Path) -> Result<(), MasterKeyError> {
        let path = MasterKey::path_for(db);
        key_file::promote(&MasterKey::staged_path_for(db), &path).map_err(|source| {
            MasterKeyError::Io {
                path: path.display().to_string(),
                source,
            }
        })
    }

    /// `nonce || ciphertext+tag`, a fresh random 96-bit nonce per call, `id` as associated data
    /// (so a sealed value moved to another record no longer opens).
    pub fn seal(&self, id: &str, plaintext: &[u8]) -> Result<Vec<u8>, SealError> {
        let nonce = key_file::random_bytes(NONCE_BYTES).map_err(SealError::Random)?;
        let sealed = self
            .0
            .encrypt(
                nonce
                    .as_slice()
                    .try_into()
                    .map_err(|_| SealError::Seal { id: id.to_string() })?,
                Payload {
                    msg: plaintext,
                    aad: id.as_bytes(),
                },
            )
            .map_err(|_| SealError::Seal { id: id.to_string() })?;
        let mut out = nonce;
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    pub fn open(&self, id: &str, sealed: &[u8]) -> Result<Vec<u8>, SealError> {
        let fail = || SealError::Open { id: id.to_string() };
        if sealed.len() < NONCE_BYTES {
            return Err(fail());
        }
        let (nonce, body) = sealed.split_at(NONCE_BYTES);
        self.0
            .decrypt(
                nonce.try_into().map_err(|_| fail())?,
                Payload {
                    msg: body,
                    aad: id.as_bytes(),
                },
            )
            .map_err(|_| fail())
    }

    /// The value stored beside the records so a later open can tell a wrong key at once.
    pub fn check_value(&self) -> Result<Vec<u8>, SealError> {
        self.seal(CHECK_ID, CHECK_TEXT)
    }

    pub fn opens_check(&self, check: &[u8]) -> bool {
        self.open(CHECK_ID, check)
            .is_ok_and(|text| text.as_slice() == CHECK_TEXT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> MasterKey {
        MasterKey::from_bytes(&[byte; KEY_BYTES]).unwrap_or_else(|| panic!("key"))
    }

    #[test]
    fn sealed_records_open_only_under_their_key_and_id() {
        let k = key(1);
        let a = k.seal("cred_1", b"sk-secret").unwrap_or_default();
        let b = k.seal("cred_1", b"sk-secret").unwrap_or_default();
        assert_ne!(a, b, "a fresh nonce per record");
        assert!(!a.windows(9).any(|w| w == b"sk-secret"));
        assert_eq!(k.open("cred_1", &a).ok(), Some(b"sk-secret".to_vec()));
        assert!(k.open("cred_2", &a).is_err(), "the id is associated data");
        assert!(key(2).open("cred_1", &a).is_err());
        let mut flipped = a.clone();
        flipped[20] ^= 1;
        assert!(k.open("cred_1", &flipped).is_err());
        let message = k.open("cred_2", &a).err().map(|e| e.to_string());
        assert!(message.is_some_and(|m| !m.contains("sk-secret")));
    }

    #[test]
    fn env_values_must_be_exactly_32_bytes() {
        let hex_key = "ab".repeat(32);
        let b64_key =
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [0xab_u8; 32]);
        let a = MasterKey::from_env_value(&hex_key).unwrap_or_else(|e| panic!("{e}"));
        let b = MasterKey::from_env_value(&b64_key).unwrap_or_else(|e| panic!("{e}"));
        let check = a.check_value().unwrap_or_default();
        assert!(b.opens_check(&check));
        assert!(MasterKey::from_env_value(&"ab".repeat(16)).is_err());
        assert!(MasterKey::from_env_value("nonsense").is_err());
        assert_eq!(format!("{a:?}"), "MasterKey([redacted])");
    }

    #[test]
    fn a_writing_open_creates_once_and_refuses_a_key_that_does_not_open_the_check() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let db = dir.path().join("s.db");
        let (first, source) =
            MasterKey::for_writing(&db, None, None).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(source, KeySource::File(MasterKey::path_for(&db)));
        let check = first.check_value().unwrap_or_default();
        let (again, _) =
            MasterKey::for_writing(&db, None, Some(&check)).unwrap_or_else(|e| panic!("{e}"));
        assert!(again.opens_check(&check));

        let other = "cd".repeat(32);
        let err = MasterKey::for_writing(&db, Some(&other), Some(&check)).err();
        assert!(
            err.as_ref()
                .is_some_and(|e| e.to_string().contains("STOCKYARD_MASTER_KEY does not open")),
            "{err:?}"
        );
        std::fs::remove_file(MasterKey::path_for(&db)).unwrap_or_else(|e| panic!("{e}"));
        let err = MasterKey::for_writing(&db, None, Some(&check)).err();
        assert!(
            matches!(err, Some(MasterKeyError::Absent { .. })),
            "{err:?}"
        );
        assert!(
            !MasterKey::path_for(&db).exists(),
            "a new key file was made"
        );
    }

    #[test]
    fn a_rotation_interrupted_after_its_commit_is_finished_by_the_next_open() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let db = dir.path().join("s.db");
        let (_old, _) = MasterKey::for_writing(&db, None, None).unwrap_or_else(|e| panic!("{e}"));
        let (new, bytes) = MasterKey::generate().unwrap_or_else(|e| panic!("{e}"));
        MasterKey::stage(&db, &bytes).unwrap_or_else(|e| panic!("{e}"));
        // The commit happened (the database holds the new check), the rename did not.
        let check = new.check_value().unwrap_or_default();
        let (found, _) =
            MasterKey::for_writing(&db, None, Some(&check)).unwrap_or_else(|e| panic!("{e}"));
        assert!(found.opens_check(&check));
        assert!(!MasterKey::staged_path_for(&db).exists());
        let (reread, _) = MasterKey::find(&db, None)
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("no key file"));
        assert!(reread.opens_check(&check));
    }
}
