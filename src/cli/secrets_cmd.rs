//! `stockyard secrets rotate [--new-key-file F]`: re-seals every stored provider credential under
//! a new master key in one transaction (see `admin/credentials.rs` for the order that keeps every
//! record under a key that exists). Beside a running server it goes through the server, which
//! holds the key in memory and swaps it; otherwise offline through the same `Admin::apply`.

use std::process::ExitCode;

use super::args::{Cli, SecretsArgs, SecretsCommand};
use super::{CliError, change};
use crate::admin::AdminChange;
use crate::secret::Secret;

pub async fn run(cli: &Cli, args: &SecretsArgs) -> Result<ExitCode, CliError> {
    let SecretsCommand::Rotate { new_key_file } = &args.command;
    let new_key = match new_key_file {
        Some(path) => Some(Secret::new(
            std::fs::read_to_string(path)
                .map_err(|e| CliError::Failed(format!("{}: {e}", path.display())))?
                .trim()
                .to_string(),
        )),
        None => None,
    };
    let applied = change::apply(
        cli,
        args.server.server.as_deref(),
        args.server.admin_key.as_deref(),
        AdminChange::RotateSecrets { new_key },
    )
    .await?;
    let d = &applied.details;
    println!(
        "master key rotated: {} credential(s) re-encrypted (ledger entry {})",
        d["credentials"].as_u64().unwrap_or_default(),
        applied.seq
    );
    match d["key_file"].as_str() {
        Some(path) => println!("the new key is in {path}; back it up apart from the database"),
        None => println!(
            "STOCKYARD_MASTER_KEY still holds the old key: set it to the new key before the next \
             start, or the start is refused"
        ),
    }
    Ok(ExitCode::SUCCESS)
}
