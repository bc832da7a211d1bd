//! `stockyard cache stats|purge [--model M] [--key K] [--all]`. `stats` asks `--server` (the
//! figures of its memory) or reads the file (entries and bytes per cache; hits and savings from
//! the traces). `purge` is an admin change, applied like any other (see `change.rs`).

use std::process::ExitCode;

use bytes::Bytes;
use serde_json::{Value, json};

use super::args::{CacheArgs, CacheCommand, Cli};
use super::{CliError, admin_client, change, dollars, load_config, open_reader};
use crate::admin::AdminChange;
use crate::admin::cache_http::PurgeRequest;

pub async fn run(cli: &Cli, args: &CacheArgs) -> Result<ExitCode, CliError> {
    match &args.command {
        CacheCommand::Stats => stats(cli, args).await,
        CacheCommand::Purge { model, key, all } => {
            let purge = PurgeRequest {
                model: model.clone(),
                key: key.clone(),
                all: *all,
                ..PurgeRequest::default()
            }
            .into_purge()
            .map_err(|e| CliError::Failed(format!("{e} (--model, --key or --all)")))?;
            let applied = change::apply(
                cli,
                args.server.server.as_deref(),
                args.server.admin_key.as_deref(),
                AdminChange::PurgeCache(purge),
            )
            .await?;
            let removed = &applied.details["removed"];
            println!(
                "cache purged: {} entries in memory (ledger entry {})",
                removed.as_u64().unwrap_or(0),
                applied.seq
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn stats(cli: &Cli, args: &CacheArgs) -> Result<ExitCode, CliError> {
    let figures: Value = match &args.server.server {
        Some(server) => {
            admin_client::call(
                server,
                args.server.admin_key.as_deref(),
                hyper::Method::GET,
                "/admin/cache",
                Bytes::new(),
            )
            .await?
        }
        None => {
            let config = load_config(cli)?;
            let store = open_reader(&config)?;
            let entries = store.cache.cache_entries(crate::store::now_ms())?;
            let mut out = json!({});
            for entry in &entries {
                let slot = &mut out[entry.kind.as_str()];
                let count = slot["entries"].as_u64().unwrap_or(0) + 1;
                let bytes =
                    slot["bytes"].as_u64().unwrap_or(0) + entry.answer.to_string().len() as u64;
                *slot = json!({"entries": count, "bytes": bytes});
            }
            out
        }
    };
    println!(
        "{:<10}  {:>8}  {:>12}  {:>8}  {:>8}  {:>14}",
        "cache", "entries", "bytes", "hits", "misses", "saved"
    );
    for (name, f) in figures.as_object().into_iter().flatten() {
        println!(
            "{:<10}  {:>8}  {:>12}  {:>8}  {:>8}  {:>14}",
            name,
            f["entries"].as_u64().unwrap_or(0),
            f["bytes"].as_u64().unwrap_or(0),
            f["hits"].as_u64().map_or("-".into(), |n| n.to_string()),
            f["misses"].as_u64().map_or("-".into(), |n| n.to_string()),
            f["saved_nanos"].as_i64().map_or("-".into(), dollars),
        );
    }
    Ok(ExitCode::SUCCESS)
}
