//! `stockyard backup FILE`: a consistent copy of the database while the server keeps running.
//! The store reads one snapshot (WAL readers never block the writer) and writes a compact,
//! self-contained file; the source is opened read-only. The copy passes `PRAGMA integrity_check`
//! before success is reported; on a large file, progress goes to stderr while it is written.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use super::args::Cli;
use super::{CliError, load_config};

/// Below this size a backup takes well under a second: no progress lines.
const PROGRESS_FROM_BYTES: u64 = 64 * 1024 * 1024;

pub fn run(cli: &Cli, out: &Path) -> Result<ExitCode, CliError> {
    if out.exists() {
        return Err(CliError::Failed(format!(
            "{} already exists; choose a new file",
            out.display()
        )));
    }
    let config = load_config(cli)?;
    let mut shown = false;
    let mut progress = |written: u64, total: u64| {
        if total >= PROGRESS_FROM_BYTES {
            shown = true;
            let percent = (written * 100).checked_div(total).unwrap_or(0).min(99);
            eprint!(
                "\rcopying: {} of ~{} MiB ({percent}%)",
                written >> 20,
                total >> 20
            );
            let _ = std::io::stderr().flush();
        }
    };
    let done = crate::store::backup::take(&config.store_url(), out, &mut progress)
        .map_err(|e| CliError::Failed(format!("backup failed: {e}")))?;
    if shown {
        eprintln!();
    }
    println!(
        "backed up {} to {} ({} bytes, schema version {}, integrity ok)",
        config.db_path.display(),
        out.display(),
        done.bytes,
        done.schema_version
    );
    Ok(ExitCode::SUCCESS)
}
