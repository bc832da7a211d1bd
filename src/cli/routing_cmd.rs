//! `stockyard routing show|alias|unalias|group|ungroup|breakers|open|reset`, on the database
//! directly or through a running server's admin API (`--server`, or the server found running on
//! the database). Changes go through `Admin::apply` either way, so each is validated and in the
//! ledger; `show` only reads the file.

use std::process::ExitCode;

use bytes::Bytes;
use hyper::Method;
use serde_json::{Value, json};

use super::args::{Cli, RoutingArgs, RoutingCommand};
use super::{CliError, admin_client, change, load_config, open_reader};
use crate::admin::AdminChange;
use crate::modules::registry::Catalogue;
use crate::server::app::initial_states;

pub async fn run(cli: &Cli, args: &RoutingArgs) -> Result<ExitCode, CliError> {
    let change = match &args.command {
        RoutingCommand::Show => return show(cli, args).await,
        RoutingCommand::Breakers => return breakers(args).await,
        RoutingCommand::Alias { name, target } => AdminChange::SetAlias {
            name: name.clone(),
            target: Some(target.clone()),
        },
        RoutingCommand::Unalias { name } => AdminChange::SetAlias {
            name: name.clone(),
            target: None,
        },
        RoutingCommand::Group { name, file } => {
            let text = std::fs::read_to_string(file)?;
            let group: Value = serde_json::from_str(&text)
                .map_err(|e| CliError::Failed(format!("{}: not JSON: {e}", file.display())))?;
            AdminChange::SetGroup {
                name: name.clone(),
                group: Some(group),
            }
        }
        RoutingCommand::Ungroup { name } => AdminChange::SetGroup {
            name: name.clone(),
            group: None,
        },
        RoutingCommand::Open { deployment, for_ms } => AdminChange::Breaker {
            deployment: deployment.clone(),
            open_for_ms: Some(*for_ms),
        },
        RoutingCommand::Reset { deployment } => AdminChange::Breaker {
            deployment: deployment.clone(),
            open_for_ms: None,
        },
    };
    let applied = change::apply(
        cli,
        args.server.server.as_deref(),
        args.server.admin_key.as_deref(),
        change,
    )
    .await?;
    println!("done (ledger entry {})", applied.seq);
    Ok(ExitCode::SUCCESS)
}

async fn show(cli: &Cli, args: &RoutingArgs) -> Result<ExitCode, CliError> {
    let routing = match &args.server.server {
        Some(server) => admin_client::call(
            server,
            args.server.admin_key.as_deref(),
            Method::GET,
            "/admin/routing",
            Bytes::new(),
        )
        .await?["routing"]
            .clone(),
        None => {
            let config = load_config(cli)?;
            let stored = open_reader(&config)?.modules.module_states()?;
            initial_states(&config, &Catalogue::builtin(), stored)
                .into_iter()
                .find(|s| s.name == "routing")
                .map(|s| s.config)
                .unwrap_or_else(|| json!({}))
        }
    };
    println!(
        "{}",
        serde_json::to_string_pretty(&routing).unwrap_or_default()
    );
    Ok(ExitCode::SUCCESS)
}

async fn breakers(args: &RoutingArgs) -> Result<ExitCode, CliError> {
    let Some(server) = &args.server.server else {
        return Err(CliError::Failed(
            "breaker state lives in the running server: pass --server URL".into(),
        ));
    };
    let answer = admin_client::call(
        server,
        args.server.admin_key.as_deref(),
        Method::GET,
        "/admin/breakers",
        Bytes::new(),
    )
    .await?;
    println!(
        "{:<40}  {:<10}  {:<16}  reason",
        "deployment", "phase", "until_ms"
    );
    for b in answer["breakers"].as_array().into_iter().flatten() {
        println!(
            "{:<40}  {:<10}  {:<16}  {}",
            b["deployment"].as_str().unwrap_or_default(),
            b["state"]["phase"].as_str().unwrap_or_default(),
            b["state"]["until_ms"]
                .as_i64()
                .map(|v| v.to_string())
                .unwrap_or_default(),
            b["reason"].as_str().unwrap_or_default()
        );
    }
    Ok(ExitCode::SUCCESS)
}
