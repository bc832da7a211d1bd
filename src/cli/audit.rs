//! `stockyard audit verify` and `stockyard audit export`.

use std::io::Write;
use std::process::ExitCode;

use super::args::{AuditCommand, Cli};
use super::{CliError, open_reader};
use crate::ledger;
use crate::store::ReadStore;

pub fn run(cli: &Cli, cmd: &AuditCommand) -> Result<ExitCode, CliError> {
    let reader = open_reader(cli)?;
    let entries = reader.ledger()?;
    match cmd {
        AuditCommand::Verify => match ledger::verify(&entries) {
            Ok(head) => {
                println!("ok: {} entries; head {head}", entries.len());
                Ok(ExitCode::SUCCESS)
            }
            Err(err) => {
                println!("FAILED: {err}");
                Ok(ExitCode::FAILURE)
            }
        },
        AuditCommand::Export { out } => {
            let mut sink: Box<dyn Write> = match out {
                Some(path) => Box::new(std::fs::File::create(path)?),
                None => Box::new(std::io::stdout().lock()),
            };
            for entry in &entries {
                let line =
                    serde_json::to_string(entry).map_err(|e| CliError::Failed(e.to_string()))?;
                writeln!(sink, "{line}")?;
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
