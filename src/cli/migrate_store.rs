//! `stockyard migrate-store --from sqlite:PATH --to postgres://…`: moves a single node onto
//! PostgreSQL. The file must be free (no server on it: its lock is taken for the copy), and the
//! target empty. Ledger entries keep their MACs, so every node on the new store must run with
//! this file's ledger key (`STOCKYARD_LEDGER_KEY`, or the key file beside `--db`); the command
//! says so, and where the key is, never what it is.

use std::process::ExitCode;

use super::args::Cli;
use super::{CliError, load_config};
use crate::ledger::LedgerKey;
use crate::server::db_lock::DbLock;
use crate::store::StoreUrl;

pub async fn run(cli: &Cli, from: &str, to: &str) -> Result<ExitCode, CliError> {
    let config = load_config(cli)?;
    let parse = |flag: &str, text: &str| {
        StoreUrl::parse(text).map_err(|problem| CliError::Failed(format!("--{flag}: {problem}")))
    };
    let (from, to) = (parse("from", from)?, parse("to", to)?);
    let StoreUrl::Sqlite(path) = &from else {
        return Err(CliError::Failed("--from must be a sqlite:PATH file".into()));
    };
    let Some(_lock) = DbLock::try_acquire(path)? else {
        return Err(CliError::Failed(format!(
            "a running stockyard process holds {}; stop the server, then migrate",
            path.display()
        )));
    };
    let env_key = config.ledger_key.as_ref().map(|k| k.expose().as_str());
    let newest = crate::store::newest_mac(&from)?;
    let key = LedgerKey::for_writing(path, env_key, newest.as_ref())?;
    let (from_c, to_c) = (from.clone(), to.clone());
    let report = tokio::task::spawn_blocking(move || crate::store::copy_into(&from_c, &to_c, key))
        .await
        .map_err(|e| CliError::Failed(e.to_string()))??;
    let total: u64 = report.iter().map(|(_, n)| n).sum();
    for (table, rows) in &report {
        if *rows > 0 {
            println!("{table:<22} {rows:>10}");
        }
    }
    println!("copied {total} rows from {from} into {to}");
    let key_file = LedgerKey::path_for(path);
    if env_key.is_none() {
        println!(
            "run every node on {to} with this ledger key: set STOCKYARD_LEDGER_KEY to the key in \
             {}, or keep that file beside --db",
            key_file.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}
