//! `stockyard db stats` and `stockyard db compact`.
//!
//! `stats` asks a server running on the database first (`GET /admin/db/stats`, which adds its
//! writer's queue depth and last checkpoint), and reads the file itself when none runs.
//! `compact` needs the file to itself: it takes the database's lock like an offline change.

use std::process::ExitCode;

use serde_json::Value;

use super::args::{Cli, DbCommand};
use super::local_server::{self, LocalServer};
use super::{CliError, admin_client, load_config, open_reader};
use crate::server::db_lock::DbLock;

pub async fn run(cli: &Cli, command: &DbCommand) -> Result<ExitCode, CliError> {
    let config = load_config(cli)?;
    match command {
        DbCommand::Stats { json } => {
            let stats = match local_server::find(&config.db_path).await {
                LocalServer::Running { url, token } => {
                    admin_client::call(
                        &url,
                        Some(token.expose()),
                        hyper::Method::GET,
                        "/admin/db/stats",
                        bytes::Bytes::new(),
                    )
                    .await?
                }
                _ => {
                    let store = open_reader(&config)?;
                    let stats = tokio::task::spawn_blocking(move || store.maintenance.db_stats())
                        .await
                        .map_err(|e| CliError::Failed(e.to_string()))??;
                    serde_json::json!({ "db": stats })
                }
            };
            if *json {
                println!("{stats}");
            } else {
                print_stats(&stats);
            }
            Ok(ExitCode::SUCCESS)
        }
        DbCommand::Compact => {
            let db = config.db_path.clone();
            let Some(_lock) = DbLock::try_acquire(&db)? else {
                return Err(CliError::Failed(format!(
                    "a running stockyard process holds {}; stop the server, then compact",
                    db.display()
                )));
            };
            let (before, after) = crate::store::compact(&config.store_url())?;
            println!(
                "compacted {}: {before} -> {after} bytes; auto_vacuum is now incremental",
                db.display()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn print_stats(stats: &Value) {
    let db = &stats["db"];
    let mib = |v: &Value| v.as_f64().unwrap_or(0.0) / (1024.0 * 1024.0);
    println!(
        "file {:.1} MiB, WAL {:.1} MiB, {} pages of {} bytes, {} free, auto_vacuum {}",
        mib(&db["file_bytes"]),
        mib(&db["wal_bytes"]),
        db["page_count"],
        db["page_size"],
        db["free_pages"],
        db["auto_vacuum"].as_str().unwrap_or("?")
    );
    if let Some(writer) = stats.get("writer") {
        println!(
            "writer: queue {}/{}, {} written, {} dropped, {} checkpoints, last at {} ms",
            writer["queue_depth"],
            writer["queue_capacity"],
            writer["written"],
            writer["dropped"],
            writer["checkpoints"],
            writer["last_checkpoint_ms"]
        );
    }
    println!("{:<24}  {:>12}  {:>14}", "table", "rows", "bytes");
    for table in db["tables"].as_array().into_iter().flatten() {
        println!(
            "{:<24}  {:>12}  {:>14}",
            table["name"].as_str().unwrap_or("?"),
            table["rows"].as_i64().unwrap_or(0),
            table["bytes"].as_i64().unwrap_or(0)
        );
    }
}
