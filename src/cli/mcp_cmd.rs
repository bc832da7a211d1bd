//! `stockyard mcp servers|tools|allow|deny|unrule`: the MCP gateway's servers and rules. Changes
//! go through `Admin::apply` like every other (the running server's, found on the database or
//! named with `--server`, else offline), so each bumps the rules' revision and is in the ledger.
//! `tools` asks the running server (tools live on the upstream servers); `servers` reads the
//! running server, else the database and config.

use std::io::Read;
use std::process::ExitCode;

use bytes::Bytes;
use hyper::Method;
use serde_json::{Value, json};

use super::args::{Cli, McpArgs, McpCommand, McpRuleArgs, McpServersAction};
use super::local_server::{self, LocalServer};
use super::{CliError, admin_client, change, load_config, open_reader};
use crate::admin::AdminChange;
use crate::admin::mcp::McpChange;
use crate::secret::Secret;

pub async fn run(cli: &Cli, args: &McpArgs) -> Result<ExitCode, CliError> {
    let change = match &args.command {
        McpCommand::Servers { action: None }
        | McpCommand::Servers {
            action: Some(McpServersAction::List { json: false }),
        } => return servers(cli, args, false).await,
        McpCommand::Servers {
            action: Some(McpServersAction::List { json: true }),
        } => return servers(cli, args, true).await,
        McpCommand::Tools { json } => return tools(cli, args, *json).await,
        McpCommand::Servers {
            action:
                Some(McpServersAction::Add {
                    name,
                    url,
                    command,
                    token_stdin,
                    timeout_ms,
                }),
        } => {
            let token = if *token_stdin {
                let mut token = String::new();
                std::io::stdin().read_to_string(&mut token)?;
                Some(Secret::new(token.trim().to_string()))
            } else {
                None
            };
            let mut server = json!({});
            if let Some(url) = url {
                server["url"] = json!(url);
            }
            if !command.is_empty() {
                server["command"] = json!(command);
            }
            if let Some(ms) = timeout_ms {
                server["timeout_ms"] = json!(ms);
            }
            McpChange::SetServer {
                name: name.clone(),
                server,
                token,
            }
        }
        McpCommand::Servers {
            action: Some(McpServersAction::Remove { name }),
        } => McpChange::RemoveServer { name: name.clone() },
        McpCommand::Allow(rule) => McpChange::SetRule {
            rule: rule_json(rule, "allow")?,
        },
        McpCommand::Deny(rule) => McpChange::SetRule {
            rule: rule_json(rule, "deny")?,
        },
        McpCommand::Unrule { id } => McpChange::RemoveRule { id: id.clone() },
    };
    let applied = change::apply(
        cli,
        args.server.server.as_deref(),
        args.server.admin_key.as_deref(),
        AdminChange::Mcp(change),
    )
    .await?;
    let revision = &applied.details["after"]["config"]["revision"];
    if revision.is_null() {
        println!("done (ledger entry {})", applied.seq);
    } else {
        println!(
            "done: rules revision {revision} (ledger entry {})",
            applied.seq
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn rule_json(rule: &McpRuleArgs, effect: &str) -> Result<Value, CliError> {
    let mut out = json!({
        "id": rule.id,
        "effect": effect,
        "keys": rule.keys,
        "teams": rule.teams,
        "servers": rule.servers,
        "tools": rule.tools,
    });
    if let Some(schema) = &rule.arguments {
        let schema: Value = serde_json::from_str(schema)
            .map_err(|e| CliError::Failed(format!("--arguments: not JSON: {e}")))?;
        out["arguments"] = schema;
    }
    Ok(out)
}

/// The admin API of the server to ask: `--server`, else one running on the database.
async fn running(cli: &Cli, args: &McpArgs) -> Result<Option<(String, String)>, CliError> {
    if let Some(server) = &args.server.server {
        let key = args.server.admin_key.clone().ok_or_else(|| {
            CliError::Failed(
                "--server needs an admin key (--admin-key or STOCKYARD_ADMIN_KEY)".into(),
            )
        })?;
        return Ok(Some((server.clone(), key)));
    }
    let config = load_config(cli)?;
    Ok(match local_server::find(&config.db_path).await {
        LocalServer::Running { url, token } => Some((url, token.expose().clone())),
        _ => None,
    })
}

async fn servers(cli: &Cli, args: &McpArgs, as_json: bool) -> Result<ExitCode, CliError> {
    let overview = match running(cli, args).await? {
        Some((url, key)) => {
            admin_client::call(&url, Some(&key), Method::GET, "/admin/mcp", Bytes::new()).await?
        }
        None => offline_overview(cli)?,
    };
    if as_json {
        println!("{overview}");
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "gateway {}, rules revision {}",
        if overview["enabled"] == json!(true) {
            "on"
        } else {
            "off"
        },
        overview["revision"]
    );
    for s in overview["servers"].as_array().into_iter().flatten() {
        let target = match s["url"].as_str() {
            Some(url) => url.to_string(),
            None => s["command"]
                .as_array()
                .map(|c| {
                    c.iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .unwrap_or_default(),
        };
        println!(
            "{:<20}  {:<5}  {}{}",
            s["name"].as_str().unwrap_or("?"),
            s["transport"].as_str().unwrap_or("?"),
            target,
            if s["has_token"] == json!(true) {
                "  (token)"
            } else {
                ""
            }
        );
    }
    for r in overview["rules"].as_array().into_iter().flatten() {
        println!("rule {}", r);
    }
    Ok(ExitCode::SUCCESS)
}

/// The module's config from the database (what admin changes stored), else the config file.
fn offline_overview(cli: &Cli) -> Result<Value, CliError> {
    let config = load_config(cli)?;
    let stored = match open_reader(&config) {
        Ok(store) => store
            .modules
            .module_states()?
            .into_iter()
            .find(|s| s.name == "mcp" && s.scope == "global"),
        Err(_) => None,
    };
    let (enabled, module) = match stored {
        Some(state) => (state.enabled, state.config),
        None => {
            let file = config.module_config.get("mcp");
            (
                file.and_then(|f| f.enabled).unwrap_or(false),
                file.map(|f| f.config.clone()).unwrap_or_else(|| json!({})),
            )
        }
    };
    let servers: Vec<Value> = module["servers"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(name, s)| {
            json!({
                "name": name,
                "transport": if s.get("url").is_some() { "http" } else { "stdio" },
                "url": s.get("url"),
                "command": s.get("command"),
                "has_token": s.get("sealed_token").is_some() || s.get("bearer_env").is_some(),
            })
        })
        .collect();
    Ok(json!({
        "enabled": enabled,
        "revision": module.get("revision").cloned().unwrap_or(json!(1)),
        "servers": servers,
        "rules": module.get("rules").cloned().unwrap_or(json!([])),
    }))
}

async fn tools(cli: &Cli, args: &McpArgs, as_json: bool) -> Result<ExitCode, CliError> {
    let Some((url, key)) = running(cli, args).await? else {
        return Err(CliError::Failed(
            "no server runs on this database; tools are listed by a running server (start \
             `stockyard serve`, or pass --server)"
                .into(),
        ));
    };
    let listing = admin_client::call(
        &url,
        Some(&key),
        Method::GET,
        "/admin/mcp/tools",
        Bytes::new(),
    )
    .await?;
    if as_json {
        println!("{listing}");
        return Ok(ExitCode::SUCCESS);
    }
    for server in listing["servers"].as_array().into_iter().flatten() {
        let name = server["server"].as_str().unwrap_or("?");
        if let Some(error) = server["error"].as_str() {
            println!("{name}: unavailable: {error}");
            continue;
        }
        for tool in server["tools"].as_array().into_iter().flatten() {
            println!("{name}__{}", tool.as_str().unwrap_or("?"));
        }
    }
    Ok(ExitCode::SUCCESS)
}
