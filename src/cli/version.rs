//! `stockyard version`: the build's version and the schema version it writes.

use std::process::ExitCode;

use super::args::Cli;
use super::{CliError, load_config};
use crate::store::{SCHEMA_VERSION, StoreError, schema_version_of};

pub fn run(cli: &Cli) -> Result<ExitCode, CliError> {
    println!("stockyard {}", env!("CARGO_PKG_VERSION"));
    println!("schema version {SCHEMA_VERSION} (supported)");
    let config = load_config(cli)?;
    // Reports the store's version without migrating it; no store yet is nothing to report.
    let url = config.store_url();
    let shown = match &url {
        crate::store::StoreUrl::Sqlite(path) => path.display().to_string(),
        other => other.redacted(),
    };
    match schema_version_of(&url) {
        Ok(v) => println!("database {shown} at schema version {v}"),
        Err(StoreError::Missing { .. }) => {}
        Err(e) => println!("database {shown}: {e}"),
    }
    Ok(ExitCode::SUCCESS)
}
