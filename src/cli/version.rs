//! `stockyard version`: the build's version and the schema version it writes.

use std::process::ExitCode;

use super::args::Cli;
use super::{CliError, load_config};
use crate::store::{SCHEMA_VERSION, file_schema_version};

pub fn run(cli: &Cli) -> Result<ExitCode, CliError> {
    println!("stockyard {}", env!("CARGO_PKG_VERSION"));
    println!("schema version {SCHEMA_VERSION} (supported)");
    let config = load_config(cli)?;
    if config.db_path.exists() {
        // Reports the file's version without migrating it.
        match file_schema_version(&config.db_path) {
            Ok(v) => println!(
                "database {} at schema version {v}",
                config.db_path.display()
            ),
            Err(e) => println!("database {}: {e}", config.db_path.display()),
        }
    }
    Ok(ExitCode::SUCCESS)
}
