//! `stockyard admin-keys create|list|revoke`: keys for the admin API, each with a role (`admin`
//! may change anything, `read-only` may only read). Hashed like virtual keys; a new one is
//! printed once. The ledger names each change made with one as `admin-key:NAME`.

use std::process::ExitCode;

use bytes::Bytes;
use serde_json::{Value, json};

use super::args::{AdminKeysArgs, AdminKeysCommand, Cli, RoleArg};
use super::limits::print_issued;
use super::{CliError, admin_client, change, load_config, open_reader};
use crate::admin::AdminChange;
use crate::admin::keys::KeyOp;
use crate::modules::auth::hasher;
use crate::store::AdminRole;

pub async fn run(cli: &Cli, args: &AdminKeysArgs) -> Result<ExitCode, CliError> {
    let (op, json_out) = match &args.command {
        AdminKeysCommand::List => return list(cli, args).await,
        AdminKeysCommand::Create { name, role, json } => {
            let role = match role {
                RoleArg::Admin => AdminRole::Admin,
                RoleArg::ReadOnly => AdminRole::ReadOnly,
            };
            let secret = hasher::generate(true).map_err(CliError::Failed)?;
            let op = KeyOp::CreateAdminKey {
                name: name.clone(),
                role,
                secret,
            };
            (op, *json)
        }
        AdminKeysCommand::Revoke { id } => (KeyOp::RevokeAdminKey { id: id.clone() }, false),
    };
    let applied = change::apply(
        cli,
        args.server.server.as_deref(),
        args.server.admin_key.as_deref(),
        AdminChange::Keys(op),
    )
    .await?;
    if applied.key.is_some() {
        print_issued(&applied, &applied.details, "created admin key", json_out);
    } else {
        println!(
            "admin key {}: revoked (ledger entry {})",
            applied.details["name"].as_str().unwrap_or_default(),
            applied.seq
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn list(cli: &Cli, args: &AdminKeysArgs) -> Result<ExitCode, CliError> {
    let keys: Vec<Value> = match &args.server.server {
        Some(url) => admin_client::call(
            url,
            args.server.admin_key.as_deref(),
            hyper::Method::GET,
            "/admin/admin-keys",
            Bytes::new(),
        )
        .await?["admin_keys"]
            .as_array()
            .cloned()
            .unwrap_or_default(),
        None => open_reader(&load_config(cli)?)?
            .keys
            .admin_keys()?
            .iter()
            .map(|k| json!(k))
            .collect(),
    };
    println!(
        "{:<40}  {:<16}  {:<10}  {:<20}  status",
        "id", "name", "role", "prefix"
    );
    for k in &keys {
        println!(
            "{:<40}  {:<16}  {:<10}  {:<20}  {}",
            k["id"].as_str().unwrap_or_default(),
            k["name"].as_str().unwrap_or_default(),
            k["role"].as_str().unwrap_or_default(),
            k["prefix"].as_str().unwrap_or_default(),
            if k["revoked_ms"].is_null() {
                "active"
            } else {
                "revoked"
            }
        );
    }
    Ok(ExitCode::SUCCESS)
}
