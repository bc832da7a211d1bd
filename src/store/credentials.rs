//! Provider credentials at rest: each key sealed under the master key (`crate::secrets`), with
//! what a listing shows beside it (provider, kind, base URL, fingerprint, label), and the check
//! value that tells a wrong master key at start-up. Nothing here ever holds a plaintext key:
//! sealing and opening happen above the store. Writes go through [`super::Persist`], in the same
//! transaction as their ledger entry; a rotation re-seals every record in one transaction.

use serde::Serialize;

use super::StoreError;

/// One stored provider credential.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StoredCredential {
    /// `cred_` + a UUIDv7; also the associated data of its sealed key.
    pub id: String,
    /// The provider it belongs to (a configured one, or one these records define).
    pub provider: String,
    /// `openai`, `openai_compatible`, `anthropic`, `gemini`, `vertex`.
    pub kind: String,
    /// Only for a provider the config does not define, when not the kind's default.
    pub base_url: Option<String>,
    /// `nonce || ciphertext+tag` (AES-256-GCM); never printed.
    #[serde(skip)]
    pub sealed: Vec<u8>,
    /// `sha256:` + 12 hex digits of the key: tells keys apart, reveals nothing.
    pub fingerprint: String,
    pub label: Option<String>,
    pub created_ms: i64,
}

/// Credential reads. Methods block; async callers use `spawn_blocking`.
pub trait CredentialStore: Send + Sync {
    /// Every stored credential, oldest first.
    fn credentials(&self) -> Result<Vec<StoredCredential>, StoreError>;
    /// The sealed check value, `None` while nothing was ever sealed.
    fn secrets_check(&self) -> Result<Option<Vec<u8>>, StoreError>;
}
