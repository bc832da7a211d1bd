//! Layering: defaults, then the TOML file, then `STOCKYARD_*` variables.
//!
//! Nested fields take `STOCKYARD_<SECTION>__<FIELD>` (`STOCKYARD_STORE__BATCH_SIZE=256`). Short
//! aliases: `STOCKYARD_DB`, `STOCKYARD_LISTEN`, `STOCKYARD_ALLOW_OPEN`, and, read verbatim so a
//! key made of digits is not parsed as a number, `STOCKYARD_API_KEYS` (comma-separated) and
//! `STOCKYARD_ADMIN_KEY`. `STOCKYARD_CONFIG` and `STOCKYARD_LOG` belong to the command line, and
//! `STOCKYARD_LEDGER_KEY` is read by validation only: a secret that anchors the ledger has no
//! place in a config file.

use std::path::Path;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};

use super::{ConfigError, RawConfig};

/// Variables that are not config fields, or that are read verbatim below.
const NOT_FIELDS: &[&str] = &["config", "log", "api_keys", "admin_key", "ledger_key"];

/// Reads `path` (if any) and the process environment.
pub fn load(path: Option<&Path>) -> Result<RawConfig, ConfigError> {
    let text = match path {
        Some(path) => std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?,
        None => String::new(),
    };
    load_from_str(&text)
}

/// Same as [`load`] with the file's text given.
pub fn load_from_str(toml_text: &str) -> Result<RawConfig, ConfigError> {
    let mut figment = Figment::new().merge(Toml::string(toml_text)).merge(
        Env::prefixed("STOCKYARD_")
            .filter(|key| {
                !NOT_FIELDS
                    .iter()
                    .any(|skip| key.as_str().eq_ignore_ascii_case(skip))
            })
            .split("__"),
    );
    if let Ok(keys) = std::env::var("STOCKYARD_API_KEYS") {
        let keys: Vec<String> = keys
            .split(',')
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .map(String::from)
            .collect();
        figment = figment.merge(Serialized::default("auth.keys", keys));
    }
    if let Ok(key) = std::env::var("STOCKYARD_ADMIN_KEY") {
        figment = figment.merge(Serialized::default("admin.key", key));
    }
    figment.extract::<RawConfig>().map_err(|err| {
        let lines: Vec<String> = err.into_iter().map(describe).collect();
        ConfigError::Parse(lines.join("\n"))
    })
}

/// `store.batch_size: invalid type: found string "x", expected usize (in STOCKYARD_ environment)`.
fn describe(err: figment::Error) -> String {
    let field = err.path.join(".");
    let origin = err
        .metadata
        .as_ref()
        .map(|m| format!(" (in {})", m.name))
        .unwrap_or_default();
    if field.is_empty() {
        format!("{}{origin}", err.kind)
    } else {
        format!("{field}: {}{origin}", err.kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_text_is_a_valid_config() {
        assert!(load_from_str("").is_ok());
    }

    #[test]
    fn unknown_field_is_named() {
        let err = load_from_str("[store]\nbatch_sise = 3\n").err();
        let message = err.map(|e| e.to_string()).unwrap_or_default();
        assert!(message.contains("batch_sise"), "{message}");
    }

    #[test]
    fn wrong_type_names_the_path() {
        let err = load_from_str("[store]\nbatch_size = \"many\"\n").err();
        let message = err.map(|e| e.to_string()).unwrap_or_default();
        assert!(message.contains("store.batch_size"), "{message}");
    }
}
