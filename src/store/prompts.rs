//! Prompt templates: named, versioned, never edited once put. Each name has the version in
//! force (`active`: the newest unless rolled back). Written through [`super::LedgerWrites`]
//! ([`super::Persist::Prompt`]); read once at start-up into the `prompt_templates` module's
//! memory ([`PromptStore`]), never on the request path.

use serde::Serialize;

use super::StoreError;

/// One stored version of a template.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PromptVersion {
    pub name: String,
    pub version: u32,
    /// The version's definition, JSON (`{"variants": [...]}`).
    pub body: String,
    pub created_ms: i64,
}

/// A change to the templates, persisted with its ledger entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PromptWrite {
    /// A new version, which becomes the one in force.
    Put(PromptVersion),
    /// The version in force moves to `version` (a rollback); it must exist.
    Activate { name: String, version: u32 },
}

/// Template reads. Methods block; async callers use `spawn_blocking`.
pub trait PromptStore: Send + Sync {
    /// Every stored version, by name then version.
    fn prompt_versions(&self) -> Result<Vec<PromptVersion>, StoreError>;
    /// Each template's version in force.
    fn prompt_active(&self) -> Result<Vec<(String, u32)>, StoreError>;
}
