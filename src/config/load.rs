//! Layering: defaults, then the TOML file, then `STOCKYARD_*` variables.
//!
//! Nested fields take `STOCKYARD_<SECTION>__<FIELD>` (`STOCKYARD_STORE__BATCH_SIZE=256`). Short
//! aliases: `STOCKYARD_DB`, `STOCKYARD_STORE` (`store.url`), `STOCKYARD_LISTEN`,
//! `STOCKYARD_ALLOW_OPEN`, and, read verbatim so a
//! key made of digits is not parsed as a number, `STOCKYARD_API_KEYS` (comma-separated) and
//! `STOCKYARD_ADMIN_KEY`. `STOCKYARD_CONFIG` and `STOCKYARD_LOG` belong to the command line, and
//! `STOCKYARD_LEDGER_KEY` and `STOCKYARD_MASTER_KEY` are read by validation only: a secret that
//! anchors the ledger or seals credentials has no place in a config file.

use std::path::Path;

use figment::Figment;
use figment::error::Kind;
use figment::providers::{Env, Format, Serialized, Toml};
use figment::value::Value;

use super::{ConfigError, RawConfig};

/// Variables that are not config fields, or that are read verbatim below.
const NOT_FIELDS: &[&str] = &[
    "config",
    "log",
    "api_keys",
    "admin_key",
    "ledger_key",
    "master_key",
    "store",
];

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
    // Blank is unset (`${VAR:-}` in a compose file); empty entries (a trailing comma) are
    // dropped. A value with separators but no key at all is kept as one empty key for validation
    // to refuse: dropped, `STOCKYARD_API_KEYS=","` would start without client keys (local mode)
    // while its operator believes keys are required.
    if let Ok(keys) = std::env::var("STOCKYARD_API_KEYS")
        && !keys.trim().is_empty()
    {
        let mut keys: Vec<String> = keys
            .split(',')
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .map(String::from)
            .collect();
        if keys.is_empty() {
            keys.push(String::new());
        }
        figment = figment.merge(Serialized::default("auth.keys", keys));
    }
    // `store` is a table in the file, so the short alias fills its `url` rather than replacing it.
    if let Ok(url) = std::env::var("STOCKYARD_STORE") {
        figment = figment.merge(Serialized::default("store.url", url));
    }
    if let Ok(key) = std::env::var("STOCKYARD_ADMIN_KEY") {
        figment = figment.merge(Serialized::default("admin.key", key));
    }
    figment
        .extract::<RawConfig>()
        .map_err(|err| ConfigError::Parse(every_error(&figment, err).join("\n")))
}

/// Most problems reported from one file; past it the rest are left for the next check.
const MAX_PARSE_ERRORS: usize = 100;

/// Every field that does not fit the schema, not only the first: serde stops at the first error,
/// so the offending field is taken out of the merged data and the rest read again, until it
/// reads (or the error names nothing that can be taken out, such as a missing field).
fn every_error(figment: &Figment, first: figment::Error) -> Vec<String> {
    let mut lines = Vec::new();
    let mut data = figment.extract::<Value>().ok();
    let mut err = first;
    loop {
        let path = offending_path(&err);
        lines.extend(err.into_iter().map(describe));
        let Some(data) = data.as_mut() else {
            break;
        };
        if lines.len() >= MAX_PARSE_ERRORS || !path.as_deref().is_some_and(|p| remove(data, p)) {
            break;
        }
        match Figment::from(Serialized::defaults(&*data)).extract::<RawConfig>() {
            Ok(_) => break,
            Err(next) => {
                // Name where the field came from (file or environment) as the first pass did.
                let mut next = next;
                next.metadata = figment.find_metadata(&next.path.join(".")).cloned();
                err = next;
            }
        }
    }
    lines
}

/// The path of the value an error is about, if taking it out could let the rest read.
fn offending_path(err: &figment::Error) -> Option<Vec<String>> {
    let mut path = err.path.clone();
    match &err.kind {
        // Figment names an unknown field in the path already, serde alone does not.
        Kind::UnknownField(name, _) if path.last() != Some(name) => path.push(name.clone()),
        Kind::MissingField(_) => return None,
        _ => {}
    }
    (!path.is_empty()).then_some(path)
}

/// Removes the value at `path`; false when there is none.
fn remove(value: &mut Value, path: &[String]) -> bool {
    let Value::Dict(_, dict) = value else {
        return false;
    };
    match path {
        [] => false,
        [last] => dict.remove(last).is_some(),
        [first, rest @ ..] => dict.get_mut(first).is_some_and(|v| remove(v, rest)),
    }
}

/// `store.batch_size: invalid type: found string "x", expected usize (in STOCKYARD_ environment)`.
/// A field that holds a secret is named with the shape of its problem only, never its value:
/// `auth.keys = "sk-..."` is a wrong type, and the message must not hand the key to a terminal,
/// a CI log or a bug report.
fn describe(err: figment::Error) -> String {
    let field = err.path.join(".");
    let origin = err
        .metadata
        .as_ref()
        .map(|m| format!(" (in {})", m.name))
        .unwrap_or_default();
    let problem = if holds_secret(&err.path) {
        redacted(&err.kind)
    } else {
        err.kind.to_string()
    };
    if field.is_empty() {
        format!("{problem}{origin}")
    } else {
        format!("{field}: {problem}{origin}")
    }
}

/// `auth.*` (client keys; also `STOCKYARD_API_KEYS`), `admin.*` (also `STOCKYARD_ADMIN_KEY`) and
/// `providers.NAME.api_key`. `STOCKYARD_LEDGER_KEY` never reaches here: validation reads it, and
/// its message names the variable only.
fn holds_secret(path: &[String]) -> bool {
    match path {
        [section, ..] if section == "auth" || section == "admin" => true,
        [section, _, field, ..] => section == "providers" && field == "api_key",
        _ => false,
    }
}

/// The problem without the value: `invalid type: found a string, expected a sequence`.
fn redacted(kind: &Kind) -> String {
    match kind {
        Kind::InvalidType(actual, expected) => {
            format!("invalid type: found {}, expected {expected}", shape(actual))
        }
        Kind::InvalidValue(actual, expected) => {
            format!(
                "invalid value: found {}, expected {expected}",
                shape(actual)
            )
        }
        Kind::Unsupported(actual) => format!("unsupported type {}", shape(actual)),
        Kind::UnknownVariant(_, expected) => {
            format!("unknown variant, expected one of {}", expected.join(", "))
        }
        // A custom message may quote the value; say only that the value is wrong.
        Kind::Message(_) => "invalid value (not shown: this field holds a secret)".into(),
        other => other.to_string(),
    }
}

/// What kind of value was found, without the value itself.
fn shape(actual: &figment::error::Actual) -> &'static str {
    use figment::error::Actual;
    match actual {
        Actual::Bool(_) => "a bool",
        Actual::Unsigned(_) | Actual::Signed(_) => "an integer",
        Actual::Float(_) => "a float",
        Actual::Char(_) => "a char",
        Actual::Str(_) => "a string",
        Actual::Bytes(_) => "bytes",
        Actual::Unit => "nothing",
        Actual::Option => "an option",
        Actual::Seq => "a sequence",
        Actual::Map => "a table",
        Actual::NewtypeStruct
        | Actual::Enum
        | Actual::UnitVariant
        | Actual::NewtypeVariant
        | Actual::TupleVariant
        | Actual::StructVariant
        | Actual::Other(_) => "another type",
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
    fn every_wrong_type_is_reported_not_only_the_first() {
        let text = "listen = [4000]\n[store]\nbatch_size = \"many\"\nbatch_interval_ms = \"soon\"\n\
                    [admin]\nkey = 12\nnope = 1\n";
        let message = load_from_str(text)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        for field in [
            "listen",
            "store.batch_size",
            "store.batch_interval_ms",
            "admin.key",
            "nope",
        ] {
            assert!(message.contains(field), "{field} missing from:\n{message}");
        }
        assert_eq!(message.lines().count(), 5, "{message}");
    }

    #[test]
    fn wrong_types_in_secret_fields_are_named_without_their_values() {
        let text = "[auth]\nkeys = \"sk-live-4242-client\"\n[admin]\nkey = 98765432109876\n\
                    [providers.openai]\napi_key = 31415926535\n[store]\nbatch_size = \"many\"\n";
        let message = load_from_str(text)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        for secret in ["sk-live-4242-client", "98765432109876", "31415926535"] {
            assert!(!message.contains(secret), "{secret} shown in:\n{message}");
        }
        for line in [
            "auth.keys: invalid type: found a string, expected a sequence",
            "admin.key: invalid type: found an integer, expected a string",
            "providers.openai.api_key: invalid type: found an integer",
        ] {
            assert!(message.contains(line), "{line:?} missing from:\n{message}");
        }
        // A field that holds no secret still shows what it got, to help fix it.
        assert!(message.contains("\"many\""), "{message}");
    }

    #[test]
    fn wrong_type_names_the_path() {
        let err = load_from_str("[store]\nbatch_size = \"many\"\n").err();
        let message = err.map(|e| e.to_string()).unwrap_or_default();
        assert!(message.contains("store.batch_size"), "{message}");
    }
}
