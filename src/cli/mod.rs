//! The command line: [`main`] parses arguments, starts logging and a runtime, and dispatches to one
//! file per subcommand. Exit codes: 0 success, 1 failure, 2 bad usage.

mod admin_client;
mod admin_keys_cmd;
mod alerts_cmd;
pub mod args;
mod audit;
mod backup;
mod cache_cmd;
mod change;
mod config_cmd;
mod db_cmd;
pub mod dev_seed;
mod governance_args;
mod keys_api;
mod keys_cmd;
mod limits;
mod local_server;
mod mcp_cmd;
mod migrate_store;
mod modules_cmd;
mod offline;
mod prices;
mod prompts_cmd;
mod providers_cmd;
mod restore;
mod routing_cmd;
mod secrets_cmd;
mod serve;
mod spend;
mod teams_cmd;
mod traces;
mod version;

use std::process::ExitCode;

use clap::Parser;
use thiserror::Error;

pub use args::Cli;
use args::Command;

use crate::config::{self, ConfigError, ValidConfig};

#[derive(Debug, Error)]
pub enum CliError {
    #[error("{0}")]
    Config(#[from] ConfigError),
    #[error("{0}")]
    Start(#[from] crate::server::app::StartError),
    #[error("{0}")]
    Store(#[from] crate::store::StoreError),
    #[error("{0}")]
    Admin(#[from] crate::admin::AdminError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    LedgerKey(#[from] crate::ledger::key::KeyError),
    #[error("{0}")]
    LedgerHead(#[from] crate::ledger::head::HeadError),
    #[error("{0}")]
    Failed(String),
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    crate::telemetry::init_with(cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

pub async fn run(cli: Cli) -> Result<ExitCode, CliError> {
    match &cli.command {
        Command::Serve(args) => serve::run(&cli, args).await,
        Command::Config(cmd) => config_cmd::run(cmd),
        Command::Traces(args) => traces::run(&cli, args),
        Command::Spend(args) => spend::run(&cli, args),
        Command::Audit(cmd) => audit::run(&cli, cmd),
        Command::Modules(args) => modules_cmd::run(&cli, args).await,
        Command::Prices(cmd) => prices::run(&cli, cmd).await,
        Command::Routing(args) => routing_cmd::run(&cli, args).await,
        Command::Prompts(args) => prompts_cmd::run(&cli, args).await,
        Command::Keys(args) => keys_cmd::run(&cli, args).await,
        Command::Teams(args) => teams_cmd::run(&cli, args).await,
        Command::AdminKeys(args) => admin_keys_cmd::run(&cli, args).await,
        Command::Providers(args) => providers_cmd::run(&cli, args).await,
        Command::Mcp(args) => mcp_cmd::run(&cli, args).await,
        Command::Secrets(args) => secrets_cmd::run(&cli, args).await,
        Command::Version => version::run(&cli),
        Command::Backup { file } => backup::run(&cli, file),
        Command::Cache(args) => cache_cmd::run(&cli, args).await,
        Command::Restore {
            file,
            accept_unanchored_ledger,
        } => restore::run(&cli, file, *accept_unanchored_ledger).await,
        Command::Db(cmd) => db_cmd::run(&cli, cmd).await,
        Command::MigrateStore { from, to } => migrate_store::run(&cli, from, to).await,
        Command::Dev(cmd) => dev_seed::run(&cli, cmd),
        Command::Alerts(args) => alerts_cmd::run(&cli, args),
    }
}

/// Loads and validates the config named by `--config`, with `--db` applied over it.
pub fn load_config(cli: &Cli) -> Result<ValidConfig, CliError> {
    let raw = config::load(cli.config.as_deref())?;
    let mut valid =
        config::validate(&raw, &|name| std::env::var(name).ok()).map_err(ConfigError::Invalid)?;
    if let Some(db) = &cli.db {
        valid.db_path = db.clone();
    }
    if let Some(text) = &cli.store {
        match crate::store::StoreUrl::parse(text) {
            // A SQLite URL is another way to write `--db`: one source of the path.
            Ok(crate::store::StoreUrl::Sqlite(path)) => {
                valid.db_path = path;
                valid.store_url = None;
            }
            Ok(url) => valid.store_url = Some(url),
            Err(problem) => {
                return Err(CliError::Failed(format!("--store: {problem}")));
            }
        }
    }
    Ok(valid)
}

/// Opens the database for a command that only reads: read-only, never created, never migrated.
pub fn open_reader(config: &ValidConfig) -> Result<crate::store::Store, CliError> {
    Ok(crate::store::open_read_only(&config.store_url())?)
}

/// Nano-dollars as `$0.000123456`.
pub fn dollars(nanos: i64) -> String {
    let sign = if nanos < 0 { "-" } else { "" };
    let n = nanos.unsigned_abs();
    format!("{sign}${}.{:09}", n / 1_000_000_000, n % 1_000_000_000)
}
