//! Administrative changes from the CLI with no server running: open the database as the server
//! would, apply the change through the same `Admin::apply`, then flush and close. Only
//! [`super::change::apply`] calls this, holding the database's lock (so no server runs on the
//! file, and none starts until the change is in).

use crate::admin::AdminChange;
use crate::config::ValidConfig;
use crate::ledger::LedgerEntry;
use crate::server::App;

use super::CliError;

pub async fn apply(config: ValidConfig, change: AdminChange) -> Result<LedgerEntry, CliError> {
    let app = App::open(config)?;
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
