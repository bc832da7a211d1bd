//! Administrative changes from the CLI with no server running: open the database as the server
//! would, apply the change through the same `Admin::apply`, then flush and close.

use super::args::Cli;
use super::{CliError, load_config};
use crate::admin::AdminChange;
use crate::ledger::LedgerEntry;
use crate::server::App;

pub async fn apply(cli: &Cli, change: AdminChange) -> Result<LedgerEntry, CliError> {
    let app = App::open(load_config(cli)?)?;
    let result = app.admin.apply(&actor(), change).await;
    app.writer.shutdown().await?;
    Ok(result?)
}

/// `cli:USER` from the environment, so the ledger says who ran the command.
pub fn actor() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .unwrap_or_else(|_| "unknown".into());
    format!("cli:{user}")
}
