//! `KeyHasher`: the keyed hash under which virtual keys and admin keys are stored and looked up,
//! and the generator of new keys.
//!
//! The hash is `HMAC-SHA256(ledger key, "virtual-key|" + key)` (or `"admin-key|"`), hex. Keyed,
//! so a copy of the database alone cannot be used to test guesses offline; a plain SHA-256 of a
//! 256-bit random key would resist that too, but a keyed hash also covers any key an operator
//! chooses badly. The secret is the ledger key ([`crate::ledger::LedgerKey`]), for two reasons:
//! it lives outside the database (environment or `<db>.ledger-key`), and it never changes: a
//! writing open refuses to start when the key found does not match the ledger's newest MAC, and
//! every key change writes a MACed ledger entry, so a stored hash always meets the key it was
//! made with. The master key that encrypts provider credentials is not used: `secrets rotate`
//! replaces it, which would orphan every stored hash (they cannot be re-hashed without the keys).
//! The domain separators keep these MACs apart from the ledger's own (an entry's MAC is over a
//! 64-hex chain hash, a head's over `head|...`), so no stored hash is ever a valid ledger MAC.
//!
//! Built once at start-up and shared through `ModuleDeps::shared` (inside
//! [`super::table::KeyTable`]); it holds the keyed HMAC state only and never prints it.

use crate::ledger::LedgerKey;
use crate::secret::Secret;

/// Every generated key starts with this, so a leaked one is easy to recognise (and scan for).
pub const KEY_PREFIX: &str = "sk-sy-";
/// Admin keys add this after [`KEY_PREFIX`].
pub const ADMIN_MARK: &str = "admin-";
/// Base62 characters after the prefix: 43 of them carry 256 bits.
const RANDOM_CHARS: usize = 43;
/// Characters of the random part kept visible in the store, to tell keys apart in listings.
const VISIBLE_RANDOM: usize = 6;
const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

#[derive(Clone)]
pub struct KeyHasher(LedgerKey);

impl std::fmt::Debug for KeyHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyHasher([redacted])")
    }
}

impl KeyHasher {
    pub fn new(key: LedgerKey) -> KeyHasher {
        KeyHasher(key)
    }

    /// The stored hash of a client (virtual) key.
    pub fn virtual_key(&self, presented: &str) -> String {
        self.0.mac_of(&["virtual-key|", presented])
    }

    /// The stored hash of an admin key.
    pub fn admin_key(&self, presented: &str) -> String {
        self.0.mac_of(&["admin-key|", presented])
    }
}

/// A new key: [`KEY_PREFIX`] (then [`ADMIN_MARK`] for an admin key) and 43 base62 characters
/// from the operating system's random source (256 bits).
pub fn generate(admin: bool) -> Result<Secret<String>, String> {
    let mut key = String::from(KEY_PREFIX);
    if admin {
        key.push_str(ADMIN_MARK);
    }
    let mut chars = 0;
    while chars < RANDOM_CHARS {
        let mut bytes = [0u8; 64];
        getrandom::fill(&mut bytes).map_err(|e| format!("cannot draw random bytes: {e}"))?;
        // Only bytes below 248 (4 x 62) are used, so every character is equally likely.
        for b in bytes.iter().filter(|b| **b < 248) {
            if chars == RANDOM_CHARS {
                break;
            }
            key.push(BASE62[(*b % 62) as usize] as char);
            chars += 1;
        }
    }
    Ok(Secret::new(key))
}

/// The visible prefix stored beside a key's hash: the marker and the first few random characters.
pub fn visible_prefix(key: &str) -> String {
    let marker = if key.starts_with(&format!("{KEY_PREFIX}{ADMIN_MARK}")) {
        KEY_PREFIX.len() + ADMIN_MARK.len()
    } else if key.starts_with(KEY_PREFIX) {
        KEY_PREFIX.len()
    } else {
        0
    };
    key.chars().take(marker + VISIBLE_RANDOM).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hasher(hex: &str) -> KeyHasher {
        KeyHasher::new(LedgerKey::from_env_value(hex).unwrap_or_else(|e| panic!("{e}")))
    }

    #[test]
    fn keys_are_long_random_and_prefixed() {
        let a = generate(false).unwrap_or_else(|e| panic!("{e}"));
        let b = generate(false).unwrap_or_else(|e| panic!("{e}"));
        assert_ne!(a.expose(), b.expose());
        assert_eq!(a.expose().len(), KEY_PREFIX.len() + RANDOM_CHARS);
        assert!(
            a.expose()[KEY_PREFIX.len()..]
                .bytes()
                .all(|c| c.is_ascii_alphanumeric())
        );
        let admin = generate(true).unwrap_or_else(|e| panic!("{e}"));
        assert!(admin.expose().starts_with("sk-sy-admin-"));
        assert_eq!(visible_prefix(a.expose()), a.expose()[..12]);
        assert_eq!(visible_prefix(admin.expose()).len(), 18);
    }

    #[test]
    fn hashes_are_keyed_and_separated_by_kind() {
        let one = hasher("00112233445566778899aabbccddeeff");
        let two = hasher("ff112233445566778899aabbccddeeff");
        assert_eq!(one.virtual_key("k"), one.virtual_key("k"));
        assert_ne!(one.virtual_key("k"), two.virtual_key("k"));
        assert_ne!(one.virtual_key("k"), one.admin_key("k"));
        assert!(!one.virtual_key("sk-secret").contains("sk-secret"));
        assert_eq!(format!("{one:?}"), "KeyHasher([redacted])");
    }
}
