//! `stockyard version`: the build's version and the schema version it writes.

use std::process::ExitCode;

use super::args::Cli;
use super::{CliError, load_config};
use crate::store::sqlite::SCHEMA_VERSION;

pub fn run(cli: &Cli) -> Result<ExitCode, CliError> {
    println!("stockyard {}", env!("CARGO_PKG_VERSION"));
    println!("schema version {SCHEMA_VERSION} (supported)");
    let config = load_config(cli)?;
    if config.db_path.exists() {
        // Reports the file's version without migrating it.
        match rusqlite::Connection::open_with_flags(
            &config.db_path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .and_then(|c| c.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0)))
        {
            Ok(v) => println!(
                "database {} at schema version {v}",
                config.db_path.display()
            ),
            Err(e) => println!("database {}: {e}", config.db_path.display()),
        }
    }
    Ok(ExitCode::SUCCESS)
}
