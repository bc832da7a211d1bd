//! `stockyard backup FILE`: a consistent copy of the database while the server keeps running.
//! The store reads one snapshot (WAL readers never block the writer) and writes a compact,
//! self-contained file; the source is opened read-only.

use std::path::Path;
use std::process::ExitCode;

use super::args::Cli;
use super::{CliError, load_config};

pub fn run(cli: &Cli, out: &Path) -> Result<ExitCode, CliError> {
    if out.exists() {
        return Err(CliError::Failed(format!(
            "{} already exists; choose a new file",
            out.display()
        )));
    }
    let config = load_config(cli)?;
    crate::store::backup_into(&config.store_url(), out)
        .map_err(|e| CliError::Failed(format!("backup failed: {e}")))?;
    println!(
        "backed up {} to {}",
        config.db_path.display(),
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}
