//! `stockyard backup FILE`: a consistent copy of the database while the server keeps running.
//! `VACUUM INTO` reads one snapshot (WAL readers never block the writer) and writes a compact,
//! self-contained file with no WAL beside it.

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
    let conn = rusqlite::Connection::open_with_flags(
        &config.db_path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE,
    )
    .map_err(|e| CliError::Failed(format!("cannot open {}: {e}", config.db_path.display())))?;
    conn.busy_timeout(std::time::Duration::from_millis(5000))
        .and_then(|_| conn.execute("VACUUM INTO ?1", [out.to_string_lossy()]))
        .map_err(|e| CliError::Failed(format!("backup failed: {e}")))?;
    println!(
        "backed up {} to {}",
        config.db_path.display(),
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}
