//! `stockyard prices update FILE`: load a newer price file into the database, through the admin
//! path (validated, stored, in the ledger). With a server running on the database the file goes
//! through its admin API (`PUT /admin/prices`), so it is in force at once.

use std::process::ExitCode;

use super::args::{Cli, PricesCommand};
use super::{CliError, change};
use crate::admin::AdminChange;

pub async fn run(cli: &Cli, cmd: &PricesCommand) -> Result<ExitCode, CliError> {
    let PricesCommand::Update { file } = cmd;
    let body = std::fs::read_to_string(file)?;
    let entry = change::apply(cli, None, None, AdminChange::LoadPrices { body }).await?;
    println!(
        "loaded {} priced models from {} (ledger entry {})",
        entry.details["models"],
        file.display(),
        entry.seq
    );
    Ok(ExitCode::SUCCESS)
}
