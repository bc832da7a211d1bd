//! Module state and the stored price file: what administrative changes leave behind for the next
//! start-up. Written only through [`super::LedgerWrites::apply_admin`], beside a ledger entry.

use serde::Serialize;
use serde_json::Value;

use super::StoreError;

/// A module's stored state; `scope` is `global` for now (per key/team/model later).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ModuleState {
    pub name: String,
    pub enabled: bool,
    pub config: Value,
    pub scope: String,
}

/// Reads of administrative state. Methods block; async callers use `spawn_blocking`.
pub trait ModuleStateStore: Send + Sync {
    /// Every stored module state, by name.
    fn module_states(&self) -> Result<Vec<ModuleState>, StoreError>;
    /// The newest price file stored by `stockyard prices update`, as written.
    fn stored_prices(&self) -> Result<Option<String>, StoreError>;
}
