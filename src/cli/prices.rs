//! `stockyard prices update FILE`: load a newer price file into the database, through the admin
//! path (validated, stored, in the ledger). A running server picks it up at its next start, or at
//! once through `PUT /admin/prices`.

use std::process::ExitCode;

use super::args::{Cli, PricesCommand};
use super::{CliError, offline};
use crate::admin::AdminChange;

pub async fn run(cli: &Cli, cmd: &PricesCommand) -> Result<ExitCode, CliError> {
    let PricesCommand::Update { file } = cmd;
    let body = std::fs::read_to_string(file)?;
    let entry = offline::apply(cli, AdminChange::LoadPrices { body }).await?;
    println!(
        "loaded {} priced models from {} (ledger entry {})",
        entry.details["models"],
        file.display(),
        entry.seq
    );
    Ok(ExitCode::SUCCESS)
}
