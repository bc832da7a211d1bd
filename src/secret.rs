//! `Secret<T>`: a value that never prints. Provider keys, client keys and the admin key are held in
//! it so that a stray `{:?}` in a log line, an error or a panic message shows `[redacted]` instead.

use std::fmt;

use subtle::ConstantTimeEq;

#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    pub fn new(value: T) -> Self {
        Secret(value)
    }

    /// The one way to read the value; grep for it to audit where secrets go.
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl Secret<String> {
    /// Compares in constant time so that response timing does not reveal how much of a guess matched.
    pub fn matches(&self, candidate: &str) -> bool {
        let ours = self.0.as_bytes();
        let theirs = candidate.as_bytes();
        ours.len() == theirs.len() && bool::from(ours.ct_eq(theirs))
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl<T> fmt::Display for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl<T> serde::Serialize for Secret<T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str("[redacted]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_never_prints_its_value() {
        let key = Secret::new("sk-very-secret".to_string());
        assert_eq!(format!("{key:?} {key}"), "[redacted] [redacted]");
        assert_eq!(
            serde_json::to_string(&key).ok().as_deref(),
            Some("\"[redacted]\"")
        );
    }

    #[test]
    fn matches_only_the_exact_value() {
        let key = Secret::new("abc".to_string());
        assert!(key.matches("abc"));
        assert!(!key.matches("abd"));
        assert!(!key.matches("abcd"));
        assert!(!key.matches(""));
    }
}
