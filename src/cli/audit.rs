//! `stockyard audit verify [--expect-head SEQ:HASH]` and `stockyard audit export`. Both only read:
//! the database read-only, the ledger key and the head file beside it (none is created). Verify
//! exits 1 naming the first problem: an entry altered, missing, out of place, without a MAC or
//! with a wrong one, a cut tail, or a head file missing or not MACed under the key.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use super::args::{AuditCommand, Cli};
use super::{CliError, load_config, open_reader};
use crate::ledger::{self, Head, LedgerEntry, LedgerKey, PublishedHead, VerifyError};

pub fn run(cli: &Cli, cmd: &AuditCommand) -> Result<ExitCode, CliError> {
    let config = load_config(cli)?;
    // The head file is read before the ledger: the writer publishes a head only after committing
    // its entries, so a head read first is always covered by the snapshot read second.
    let published = Head::read(&config.db_path)?;
    let entries = open_reader(&config)?.ledger.ledger()?;
    match cmd {
        AuditCommand::Verify { expect_head } => {
            let env_key = config.ledger_key.as_ref().map(|k| k.expose().as_str());
            let key = LedgerKey::find(&config.db_path, env_key)?;
            match verify(
                &config.db_path,
                &entries,
                key.as_ref(),
                published,
                expect_head.as_ref(),
            ) {
                Ok(head) => {
                    println!("ok: {} entries; head {head}", entries.len());
                    Ok(ExitCode::SUCCESS)
                }
                Err(err) => {
                    println!("FAILED: {err}");
                    Ok(ExitCode::FAILURE)
                }
            }
        }
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

/// The chain and MACs, then `--expect-head`, then the head file; warnings go to standard output
/// with the result so a log of the run has both. With a key, every entry must carry a valid MAC
/// and a ledger with entries must have an authenticated head file; with none (a ledger that never
/// had a key), only the chain and the head file's position are checked, with a warning.
fn verify(
    db: &Path,
    entries: &[LedgerEntry],
    key: Option<&LedgerKey>,
    published: Option<PublishedHead>,
    expected: Option<&Head>,
) -> Result<Head, VerifyError> {
    let verified = ledger::verify(entries, key)?;
    if verified.unanchored > 0 {
        println!(
            "warning: no ledger key found (STOCKYARD_LEDGER_KEY or {}); entries 1..={} carry no \
             MAC, so only their hash chain is checked",
            LedgerKey::path_for(db).display(),
            verified.unanchored
        );
    }
    // A head kept elsewhere first: when the tail was cut, it names the cut, whatever became of
    // the head file.
    if let Some(head) = expected {
        ledger::check_head(entries, head)?;
    }
    let path = Head::path_for(db);
    let compared = ledger::check_published(entries, published.as_ref(), key, &path)?;
    if !compared && !entries.is_empty() {
        println!(
            "warning: no head file at {}; a cut tail cannot be detected without --expect-head",
            path.display()
        );
    }
    Ok(verified.head)
}
