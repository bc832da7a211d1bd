//! `stockyard config check FILE`: load and validate, printing every problem with its field.

use std::process::ExitCode;

use super::CliError;
use super::args::ConfigCommand;
use crate::config::{self, ConfigError};

pub fn run(cmd: &ConfigCommand) -> Result<ExitCode, CliError> {
    let ConfigCommand::Check { file } = cmd;
    let result = config::load(Some(file)).and_then(|raw| {
        config::validate(&raw, &|name| std::env::var(name).ok()).map_err(ConfigError::Invalid)
    });
    match result {
        Ok(valid) => {
            println!(
                "{}: ok (listen {}, db {}, {} provider(s), {} model name(s))",
                file.display(),
                valid.listen,
                valid.db_path.display(),
                valid.providers.len(),
                valid.models.len()
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(err) => {
            eprintln!("{}: invalid", file.display());
            for line in err.to_string().lines() {
                eprintln!("  {line}");
            }
            Ok(ExitCode::FAILURE)
        }
    }
}
