//! `stockyard keys create|list|show|update|revoke|rotate`. Changes go to a running server's admin
//! API (`--server URL`, or the server found running on the database) or, with none, to the
//! database directly, through `Admin::apply` either way. A created or rotated key is printed
//! once; `list` and `show` read the database (or `--server`) and never see a key.

use std::process::ExitCode;

use serde_json::{Value, json};

use super::args::{ClearField, Cli, KeysArgs, KeysCommand, ServerArgs};
use super::limits::{expires_at, limits_from, metadata, patch_from, print_issued};
use super::{CliError, admin_client, change, dollars, load_config, open_reader};
use crate::admin::AdminChange;
use crate::admin::keys::{KeyOp, KeyPatch, NewKey, key_json};
use crate::modules::auth::hasher;
use crate::store::now_ms;

pub async fn run(cli: &Cli, args: &KeysArgs) -> Result<ExitCode, CliError> {
    let new_secret = || hasher::generate(false).map_err(CliError::Failed);
    let (op, json_out) = match &args.command {
        KeysCommand::List { json } => return list(cli, &args.server, *json).await,
        KeysCommand::Show { id } => return show(cli, &args.server, id).await,
        KeysCommand::Create {
            name,
            team,
            limits,
            expires,
            metadata: pairs,
            json,
        } => {
            let key = NewKey {
                name: name.clone(),
                team: team.clone(),
                limits: limits_from(limits)?,
                metadata: metadata(pairs)?,
                expires_ms: expires.as_deref().map(expires_at).transpose()?,
            };
            let secret = new_secret()?;
            (KeyOp::CreateKey { key, secret }, *json)
        }
        KeysCommand::Update {
            id,
            name,
            team,
            limits,
            expires,
            metadata: pairs,
            clear,
        } => {
            let cleared = |f| clear.contains(&f);
            let patch = KeyPatch {
                name: name.clone(),
                team: if cleared(ClearField::Team) {
                    Some(None)
                } else {
                    team.clone().map(Some)
                },
                limits: patch_from(limits, clear)?,
                metadata: if cleared(ClearField::Metadata) {
                    Some(Default::default())
                } else if pairs.is_empty() {
                    None
                } else {
                    Some(metadata(pairs)?)
                },
                expires_ms: if cleared(ClearField::Expires) {
                    Some(None)
                } else {
                    expires.as_deref().map(expires_at).transpose()?.map(Some)
                },
            };
            let op = KeyOp::UpdateKey {
                id: id.clone(),
                patch,
            };
            (op, false)
        }
        KeysCommand::Revoke { id } => (KeyOp::RevokeKey { id: id.clone() }, false),
        KeysCommand::Rotate { id, json } => {
            let secret = new_secret()?;
            let op = KeyOp::RotateKey {
                id: id.clone(),
                secret,
            };
            (op, *json)
        }
    };
    let action = match &op {
        KeyOp::CreateKey { .. } => "created",
        KeyOp::RotateKey { .. } => "rotated: new key",
        KeyOp::RevokeKey { .. } => "revoked",
        _ => "updated",
    };
    let target = match &op {
        KeyOp::UpdateKey { id, .. } | KeyOp::RevokeKey { id } => id.clone(),
        _ => String::new(),
    };
    let rotated = matches!(op, KeyOp::RotateKey { .. });
    let applied = change::apply(
        cli,
        args.server.server.as_deref(),
        args.server.admin_key.as_deref(),
        AdminChange::Keys(op),
    )
    .await?;
    if applied.key.is_some() {
        let record = if rotated {
            applied.details["new"].clone()
        } else {
            applied.details.clone()
        };
        print_issued(
            &applied,
            &record,
            &format!("{action} virtual key"),
            json_out,
        );
    } else {
        println!("{target}: {action} (ledger entry {})", applied.seq);
    }
    Ok(ExitCode::SUCCESS)
}

/// Every key, from `--server` or the database.
async fn keys(cli: &Cli, server: &ServerArgs) -> Result<Vec<Value>, CliError> {
    if let Some(url) = &server.server {
        return admin_client::list(url, server.admin_key.as_deref(), "/admin/keys", "keys").await;
    }
    let config = load_config(cli)?;
    let now = now_ms();
    Ok(open_reader(&config)?
        .keys
        .virtual_keys()?
        .iter()
        .map(|k| key_json(k, now))
        .collect())
}

async fn list(cli: &Cli, server: &ServerArgs, json: bool) -> Result<ExitCode, CliError> {
    let keys = keys(cli, server).await?;
    if json {
        println!("{}", json!(keys));
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<40}  {:<16}  {:<18}  {:<12}  {:<8}  limits",
        "id", "name", "prefix", "team", "status"
    );
    for k in &keys {
        println!(
            "{:<40}  {:<16}  {:<18}  {:<12}  {:<8}  {}",
            k["id"].as_str().unwrap_or_default(),
            k["name"].as_str().unwrap_or_default(),
            k["prefix"].as_str().unwrap_or_default(),
            k["team"].as_str().unwrap_or("-"),
            k["status"].as_str().unwrap_or_default(),
            describe_limits(&k["limits"])
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn show(cli: &Cli, server: &ServerArgs, id: &str) -> Result<ExitCode, CliError> {
    let found = keys(cli, server)
        .await?
        .into_iter()
        .find(|k| k["id"] == id)
        .ok_or_else(|| CliError::Failed(format!("no virtual key with id {id:?}")))?;
    println!(
        "{}",
        serde_json::to_string_pretty(&found).unwrap_or_default()
    );
    Ok(ExitCode::SUCCESS)
}

/// `budget $12.500000000/month, rpm 60, models gpt-4o*` from a limits object.
pub fn describe_limits(limits: &Value) -> String {
    let mut parts = Vec::new();
    if let Some(nanos) = limits["budget"]["limit_nanos"].as_i64() {
        let period = limits["budget"]["period"].as_str().unwrap_or_default();
        parts.push(format!("budget {}/{period}", dollars(nanos)));
    }
    for field in ["rpm", "tpm"] {
        if let Some(n) = limits[field].as_u64() {
            parts.push(format!("{field} {n}"));
        }
    }
    let models: Vec<&str> = limits["models"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if !models.is_empty() {
        parts.push(format!("models {}", models.join(",")));
    }
    if parts.is_empty() {
        "-".to_string()
    } else {
        parts.join(", ")
    }
}
