//! Configuration errors. Every message names the field (`store.batch_size`) and what is wrong with
//! it, so `stockyard config check` can print them one per line.

use std::fmt;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    /// The file or an environment variable did not fit the schema (unknown field, wrong type).
    #[error("{0}")]
    Parse(String),
    #[error("{0}")]
    Invalid(ConfigErrors),
}

/// Every validation problem found, not just the first.
#[derive(Debug, Default)]
pub struct ConfigErrors(pub Vec<String>);

impl ConfigErrors {
    pub fn push(&mut self, field: &str, problem: impl fmt::Display) {
        self.0.push(format!("{field}: {problem}"));
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join("\n"))
    }
}
