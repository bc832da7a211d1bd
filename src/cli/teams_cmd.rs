//! `stockyard teams create|list|show|update|delete`: teams whose budget, rate limits and model
//! list apply on top of each of their keys'. Changes go through `Admin::apply` (a running server,
//! else the database); a team's change reaches its keys on their next request.

use std::process::ExitCode;

use serde_json::{Value, json};

use super::args::{Cli, ServerArgs, TeamsArgs, TeamsCommand};
use super::keys_cmd::describe_limits;
use super::limits::{limits_from, patch_from};
use super::{CliError, admin_client, change, load_config, open_reader};
use crate::admin::AdminChange;
use crate::admin::keys::KeyOp;

pub async fn run(cli: &Cli, args: &TeamsArgs) -> Result<ExitCode, CliError> {
    let (op, name, action) = match &args.command {
        TeamsCommand::List => return list(cli, &args.server).await,
        TeamsCommand::Show { name } => return show(cli, &args.server, name).await,
        TeamsCommand::Create { name, limits } => {
            let op = KeyOp::CreateTeam {
                name: name.clone(),
                limits: limits_from(limits)?,
            };
            (op, name, "created")
        }
        TeamsCommand::Update {
            name,
            limits,
            clear,
        } => {
            let op = KeyOp::UpdateTeam {
                name: name.clone(),
                patch: patch_from(limits, clear)?,
            };
            (op, name, "updated")
        }
        TeamsCommand::Delete { name } => {
            (KeyOp::DeleteTeam { name: name.clone() }, name, "deleted")
        }
    };
    let applied = change::apply(
        cli,
        args.server.server.as_deref(),
        args.server.admin_key.as_deref(),
        AdminChange::Keys(op),
    )
    .await?;
    println!("team {name}: {action} (ledger entry {})", applied.seq);
    Ok(ExitCode::SUCCESS)
}

/// Every team with its live keys, from `--server` or the database.
async fn teams(cli: &Cli, server: &ServerArgs) -> Result<Vec<Value>, CliError> {
    if let Some(url) = &server.server {
        return admin_client::list(url, server.admin_key.as_deref(), "/admin/teams", "teams").await;
    }
    let store = open_reader(&load_config(cli)?)?;
    let keys = store.keys.virtual_keys()?;
    Ok(store
        .keys
        .teams()?
        .into_iter()
        .map(|t| {
            let members: Vec<&str> = keys
                .iter()
                .filter(|k| k.revoked_ms.is_none() && k.team.as_deref() == Some(t.name.as_str()))
                .map(|k| k.id.as_str())
                .collect();
            let mut value = json!(t);
            value["keys"] = json!(members);
            value
        })
        .collect())
}

async fn list(cli: &Cli, server: &ServerArgs) -> Result<ExitCode, CliError> {
    println!("{:<20}  {:>5}  limits", "team", "keys");
    for t in teams(cli, server).await? {
        println!(
            "{:<20}  {:>5}  {}",
            t["name"].as_str().unwrap_or_default(),
            t["keys"].as_array().map_or(0, Vec::len),
            describe_limits(&t["limits"])
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn show(cli: &Cli, server: &ServerArgs, name: &str) -> Result<ExitCode, CliError> {
    let found = teams(cli, server)
        .await?
        .into_iter()
        .find(|t| t["name"] == name)
        .ok_or_else(|| CliError::Failed(format!("no team named {name:?}")))?;
    println!(
        "{}",
        serde_json::to_string_pretty(&found).unwrap_or_default()
    );
    Ok(ExitCode::SUCCESS)
}
