//! `stockyard prompts put|get|list|rollback`: prompt templates. Changes go through
//! `Admin::apply` (on the database directly, or through the running server's admin API, see
//! `change.rs`), so each is validated and in the ledger; `get` and `list` read the database, or
//! the server given with `--server`.

use std::process::ExitCode;

use bytes::Bytes;
use hyper::Method;
use serde_json::Value;

use super::args::{Cli, PromptsArgs, PromptsCommand};
use super::{CliError, admin_client, change, load_config, open_reader};
use crate::admin::AdminChange;
use crate::admin::prompts::{get, list};
use crate::modules::prompt_templates::book::PromptBook;

pub async fn run(cli: &Cli, args: &PromptsArgs) -> Result<ExitCode, CliError> {
    let change = match &args.command {
        PromptsCommand::Put { name, file } => {
            let text = std::fs::read_to_string(file)?;
            let definition: Value = serde_json::from_str(&text)
                .map_err(|e| CliError::Failed(format!("{}: not JSON: {e}", file.display())))?;
            AdminChange::PutPrompt {
                name: name.clone(),
                definition,
            }
        }
        PromptsCommand::Rollback { name, version } => AdminChange::RollbackPrompt {
            name: name.clone(),
            version: *version,
        },
        PromptsCommand::Get { name, version } => {
            let path = match version {
                Some(v) => format!("/admin/prompts/{name}?version={v}"),
                None => format!("/admin/prompts/{name}"),
            };
            let found = read(cli, args, &path, |book| {
                get(book, name, *version).map_err(CliError::Failed)
            })
            .await?;
            println!(
                "{}",
                serde_json::to_string_pretty(&found).unwrap_or_default()
            );
            return Ok(ExitCode::SUCCESS);
        }
        PromptsCommand::List => {
            let found = read(cli, args, "/admin/prompts", |book| Ok(list(book))).await?;
            println!(
                "{:<32}  {:>7}  {:>7}  {:>8}",
                "name", "active", "latest", "versions"
            );
            for p in found["prompts"].as_array().into_iter().flatten() {
                println!(
                    "{:<32}  {:>7}  {:>7}  {:>8}",
                    p["name"].as_str().unwrap_or_default(),
                    p["active"],
                    p["latest"],
                    p["versions"]
                );
            }
            return Ok(ExitCode::SUCCESS);
        }
    };
    let applied = change::apply(
        cli,
        args.server.server.as_deref(),
        args.server.admin_key.as_deref(),
        change,
    )
    .await?;
    match applied.details.get("version") {
        Some(version) => println!("version {version} (ledger entry {})", applied.seq),
        None => println!("done (ledger entry {})", applied.seq),
    }
    Ok(ExitCode::SUCCESS)
}

/// From the server given with `--server` (its admin API at `path`), else from the database.
async fn read(
    cli: &Cli,
    args: &PromptsArgs,
    path: &str,
    local: impl FnOnce(&PromptBook) -> Result<Value, CliError>,
) -> Result<Value, CliError> {
    match &args.server.server {
        Some(server) => {
            admin_client::call(
                server,
                args.server.admin_key.as_deref(),
                Method::GET,
                path,
                Bytes::new(),
            )
            .await
        }
        None => {
            let store = open_reader(&load_config(cli)?)?;
            local(&PromptBook::load(store.prompts.as_ref()))
        }
    }
}
