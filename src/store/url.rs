//! `StoreUrl`: which backend holds the state, from one string.
//!
//! `sqlite:PATH` (also `sqlite://PATH`) is the default, built from `db`/`--db` when no URL is
//! given. `postgres://…` (or `postgresql://…`) names a PostgreSQL database (`store/postgres/`);
//! `?options=-csearch_path%3DNAME` picks the schema. A URL may carry a password: only
//! [`StoreUrl::redacted`] is ever shown.

use std::fmt;
use std::path::PathBuf;

#[derive(Clone, PartialEq, Eq)]
pub enum StoreUrl {
    Sqlite(PathBuf),
    /// Kept as written; validated to parse, with a host.
    Postgres(String),
}

impl StoreUrl {
    /// Parses a store URL; the error names what is wrong, never the password.
    pub fn parse(text: &str) -> Result<StoreUrl, String> {
        let text = text.trim();
        if let Some(rest) = text.strip_prefix("sqlite:") {
            let path = rest.strip_prefix("//").unwrap_or(rest);
            if path.is_empty() {
                return Err("sqlite: needs a file path, like sqlite:stockyard.db".into());
            }
            return Ok(StoreUrl::Sqlite(PathBuf::from(path)));
        }
        let scheme = text.split_once("://").map(|(s, _)| s).unwrap_or("");
        if scheme == "postgres" || scheme == "postgresql" {
            let parsed =
                url::Url::parse(text).map_err(|e| format!("not a valid {scheme} URL ({e})"))?;
            if parsed.host_str().is_none_or(str::is_empty) {
                return Err(format!(
                    "{scheme} URL needs a host, like postgres://user@127.0.0.1:5432/db"
                ));
            }
            return Ok(StoreUrl::Postgres(text.to_string()));
        }
        let shown = if scheme.is_empty() {
            text.split(':').next().unwrap_or("")
        } else {
            scheme
        };
        Err(format!(
            "unknown store {shown:?}; expected sqlite:PATH or postgres://USER@HOST:PORT/DB"
        ))
    }

    /// The backend's name, for messages and `/ready`.
    pub fn backend(&self) -> &'static str {
        match self {
            StoreUrl::Sqlite(_) => "sqlite",
            StoreUrl::Postgres(_) => "postgres",
        }
    }

    /// The URL with any password replaced by `***`, safe for logs and errors.
    pub fn redacted(&self) -> String {
        match self {
            StoreUrl::Sqlite(path) => format!("sqlite:{}", path.display()),
            StoreUrl::Postgres(text) => match url::Url::parse(text) {
                Ok(mut url) if url.password().is_some() => {
                    // Only fails for URLs that cannot have a password, which this one has.
                    let _ = url.set_password(Some("***"));
                    url.to_string()
                }
                _ => text.clone(),
            },
        }
    }
}

/// Debug and Display both redact, so a derived `Debug` on a config never leaks the password.
impl fmt::Debug for StoreUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StoreUrl({})", self.redacted())
    }
}

impl fmt::Display for StoreUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_name_a_path() {
        assert_eq!(
            StoreUrl::parse("sqlite:data/s.db"),
            Ok(StoreUrl::Sqlite("data/s.db".into()))
        );
        assert_eq!(
            StoreUrl::parse("sqlite:///tmp/s.db"),
            Ok(StoreUrl::Sqlite("/tmp/s.db".into()))
        );
        assert!(StoreUrl::parse("sqlite:").is_err());
    }

    #[test]
    fn postgres_urls_parse_and_hide_their_password() {
        let url = StoreUrl::parse("postgres://postgres:hunter2@127.0.0.1:5432/test");
        let url = url.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(url.backend(), "postgres");
        assert!(!format!("{url} {url:?}").contains("hunter2"));
        assert!(StoreUrl::parse("postgres://").is_err());
    }

    #[test]
    fn unknown_schemes_are_named_without_the_rest() {
        let err = StoreUrl::parse("mysql://root:pw@h/db")
            .err()
            .unwrap_or_default();
        assert!(err.contains("\"mysql\"") && !err.contains("pw"), "{err}");
    }
}
