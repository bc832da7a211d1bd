//! The real `stockyard` binary, for the tests that run it as an operator would.

use std::path::Path;
use std::process::Command;

pub const BIN: &str = env!("CARGO_BIN_EXE_stockyard");

/// A command with no inherited STOCKYARD_* or OPENAI_* variables, on `db`.
pub fn stockyard(db: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    for (key, _) in std::env::vars() {
        if key.starts_with("STOCKYARD_") || key.starts_with("OPENAI_") {
            cmd.env_remove(key);
        }
    }
    cmd.env("STOCKYARD_DB", db).env("USER", "tester");
    cmd
}
