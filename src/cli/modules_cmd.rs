//! `stockyard modules list|enable|disable|set`. `list` only reads the database (or asks
//! `--server`); a change goes to a running server's admin API (`--server URL`, or the server found
//! running on the database) or, with none, to the database directly. Either way it goes through
//! `Admin::apply`.

use std::process::ExitCode;

use bytes::Bytes;
use serde_json::{Map, Value};

use super::args::{Cli, ModulesArgs, ModulesCommand};
use super::{CliError, admin_client, change, load_config, open_reader};
use crate::admin::AdminChange;
use crate::modules::chain::listing_of;
use crate::modules::registry::Catalogue;
use crate::server::app::initial_states;

pub async fn run(cli: &Cli, args: &ModulesArgs) -> Result<ExitCode, CliError> {
    let (name, enabled, config) = match &args.command {
        ModulesCommand::List => return list(cli, args).await,
        ModulesCommand::Enable { name } => (name.clone(), Some(true), None),
        ModulesCommand::Disable { name } => (name.clone(), Some(false), None),
        ModulesCommand::Set { name, pairs } => (name.clone(), None, Some(parse_pairs(pairs)?)),
    };
    let change = AdminChange::UpdateModule {
        name: name.clone(),
        enabled,
        config,
    };
    let applied = change::apply(
        cli,
        args.server.server.as_deref(),
        args.server.admin_key.as_deref(),
        change,
    )
    .await?;
    println!("{name}: updated (ledger entry {})", applied.seq);
    Ok(ExitCode::SUCCESS)
}

/// `key=value` pairs into a JSON object; a value that parses as JSON is taken as JSON.
fn parse_pairs(pairs: &[String]) -> Result<Value, CliError> {
    let mut map = Map::new();
    for pair in pairs {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| CliError::Failed(format!("{pair:?} is not KEY=VALUE")))?;
        let value =
            serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_string()));
        map.insert(key.to_string(), value);
    }
    Ok(Value::Object(map))
}

async fn list(cli: &Cli, args: &ModulesArgs) -> Result<ExitCode, CliError> {
    let modules: Value = match &args.server.server {
        Some(server) => admin_client::call(
            server,
            args.server.admin_key.as_deref(),
            hyper::Method::GET,
            "/admin/modules",
            Bytes::new(),
        )
        .await?["modules"]
            .clone(),
        None => {
            let config = load_config(cli)?;
            let stored = open_reader(&config)?.modules.module_states()?;
            let catalogue = Catalogue::builtin();
            let states = initial_states(&config, &catalogue, stored);
            serde_json::to_value(listing_of(&states, &catalogue)).unwrap_or_default()
        }
    };
    println!(
        "{:<16}  {:<8}  {:<48}  description",
        "name", "enabled", "config"
    );
    for m in modules.as_array().into_iter().flatten() {
        println!(
            "{:<16}  {:<8}  {:<48}  {}",
            m["name"].as_str().unwrap_or_default(),
            m["enabled"].as_bool().unwrap_or_default(),
            m["config"].to_string(),
            m["description"].as_str().unwrap_or_default()
        );
    }
    Ok(ExitCode::SUCCESS)
}
