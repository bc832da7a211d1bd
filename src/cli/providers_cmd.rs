//! `stockyard providers add|list|remove`: provider credentials sealed in the database. Changes go
//! through `Admin::apply` (the running server's, found on the database or named with `--server`,
//! else offline), so each is validated, in the ledger (by fingerprint, never the key) and in force
//! on the next request. `list` reads the file, or the server with `--server`; it never prints a
//! key, and needs no master key.

use std::io::Read;
use std::process::ExitCode;

use bytes::Bytes;
use hyper::Method;
use serde_json::{Value, json};

use super::args::{Cli, ProvidersArgs, ProvidersCommand};
use super::{CliError, admin_client, change, load_config, open_reader};
use crate::admin::AdminChange;
use crate::secret::Secret;
use crate::store::StoreError;

pub async fn run(cli: &Cli, args: &ProvidersArgs) -> Result<ExitCode, CliError> {
    let change = match &args.command {
        ProvidersCommand::List { json } => return list(cli, args, *json).await,
        ProvidersCommand::Add {
            name,
            kind,
            base_url,
            key_stdin,
            label,
        } => {
            if !key_stdin {
                return Err(CliError::Failed(
                    "the key is read from standard input only: pass --key-stdin (a key on the \
                     command line ends up in shell history)"
                        .into(),
                ));
            }
            let mut key = String::new();
            std::io::stdin().read_to_string(&mut key)?;
            AdminChange::AddCredential {
                provider: name.clone(),
                kind: kind.clone(),
                base_url: base_url.clone(),
                key: Secret::new(key.trim().to_string()),
                label: label.clone(),
            }
        }
        ProvidersCommand::Remove { target } => AdminChange::RemoveCredential {
            target: target.clone(),
        },
    };
    let applied = change::apply(
        cli,
        args.server.server.as_deref(),
        args.server.admin_key.as_deref(),
        change,
    )
    .await?;
    let d = &applied.details;
    match &args.command {
        ProvidersCommand::Add { name, .. } => println!(
            "added credential {} to provider {name} ({}; ledger entry {})",
            d["id"].as_str().unwrap_or("?"),
            d["fingerprint"].as_str().unwrap_or("?"),
            applied.seq
        ),
        _ => println!(
            "removed {} credential(s) of provider {} (ledger entry {})",
            d["ids"].as_array().map_or(0, Vec::len),
            d["provider"].as_str().unwrap_or("?"),
            applied.seq
        ),
    }
    Ok(ExitCode::SUCCESS)
}

async fn list(cli: &Cli, args: &ProvidersArgs, as_json: bool) -> Result<ExitCode, CliError> {
    let listing = match &args.server.server {
        Some(server) => {
            admin_client::call(
                server,
                args.server.admin_key.as_deref(),
                Method::GET,
                "/admin/providers",
                Bytes::new(),
            )
            .await?
        }
        None => offline_listing(cli)?,
    };
    if as_json {
        println!(
            "{}",
            serde_json::to_string_pretty(&listing).unwrap_or_default()
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<34}  {:<16}  {:<18}  {:<36}  {:<19}  label",
        "id", "provider", "kind", "base url", "fingerprint"
    );
    let text = |v: &Value| v.as_str().unwrap_or("-").to_string();
    for p in listing["providers"].as_array().into_iter().flatten() {
        if p["key_from_config_or_env"].as_bool() == Some(true) {
            println!(
                "{:<34}  {:<16}  {:<18}  {:<36}  {:<19}  -",
                "(config or environment)",
                text(&p["name"]),
                text(&p["kind"]),
                text(&p["base_url"]),
                "-"
            );
        }
        for c in p["credentials"].as_array().into_iter().flatten() {
            let base = c["base_url"]
                .as_str()
                .or(p["base_url"].as_str())
                .unwrap_or("(the kind's default)");
            println!(
                "{:<34}  {:<16}  {:<18}  {:<36}  {:<19}  {}",
                text(&c["id"]),
                text(&c["provider"]),
                text(&c["kind"]),
                base,
                text(&c["fingerprint"]),
                text(&c["label"])
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The listing from the config and the database, read-only: configured providers with a key from
/// the config or the environment, and every stored credential grouped under its provider.
fn offline_listing(cli: &Cli) -> Result<Value, CliError> {
    let config = load_config(cli)?;
    let stored = match open_reader(&config) {
        Ok(store) => store.credentials.credentials()?,
        Err(CliError::Store(StoreError::Missing { .. })) => Vec::new(),
        Err(e) => return Err(e),
    };
    let mut providers: Vec<Value> = config
        .providers
        .iter()
        .map(|p| {
            json!({
                "name": p.name,
                "kind": p.kind.as_str(),
                "base_url": p.base_url.as_str().trim_end_matches('/'),
                "configured": true,
                "key_from_config_or_env": p.api_key.is_some(),
                "credentials": stored.iter().filter(|c| c.provider == p.name).collect::<Vec<_>>(),
            })
        })
        .collect();
    let mut seen: Vec<&str> = config.providers.iter().map(|p| p.name.as_str()).collect();
    for c in &stored {
        if seen.contains(&c.provider.as_str()) {
            continue;
        }
        seen.push(&c.provider);
        providers.push(json!({
            "name": c.provider,
            "kind": c.kind,
            "base_url": c.base_url,
            "configured": false,
            "key_from_config_or_env": false,
            "credentials": stored.iter().filter(|o| o.provider == c.provider).collect::<Vec<_>>(),
        }));
    }
    Ok(json!({"providers": providers}))
}
