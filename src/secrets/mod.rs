//! Secrets at rest: the master key that seals provider credentials with AES-256-GCM
//! ([`master_key`]), the key files beside the database it shares with the ledger key
//! ([`key_file`]), and the fingerprint shown in listings instead of a key.
//!
//! The request path never reads anything here: credentials are opened once (at start-up, or when
//! an admin change adds one) and live in memory in the providers' key pools.

pub mod key_file;
pub mod master_key;

use sha2::{Digest, Sha256};

pub use master_key::{KeySource, MasterKey, MasterKeyError, SealError};

/// A short, non-reversible name for a key, for listings and the ledger: `sha256:` and the first
/// 12 hex digits of its SHA-256. Enough to tell two keys apart, far too little to find one.
pub fn fingerprint(key: &str) -> String {
    let digest = Sha256::digest(key.as_bytes());
    format!("sha256:{}", &hex::encode(digest)[..12])
}

#[cfg(test)]
mod tests {
    #[test]
    fn fingerprints_are_short_and_stable() {
        let a = super::fingerprint("sk-one");
        assert_eq!(a.len(), "sha256:".len() + 12);
        assert_eq!(a, super::fingerprint("sk-one"));
        assert_ne!(a, super::fingerprint("sk-two"));
        assert!(!a.contains("sk-one"));
    }
}
