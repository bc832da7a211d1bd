//! Where an administrative change from the CLI goes, so that it is never recorded without being
//! applied:
//! 1. `--server URL` given: to that server's admin API;
//! 2. a server runs on the database (its runtime file, live pid, answering address): to its admin
//!    API with the per-run token, so the change is in force for its next request;
//! 3. no server, or a stale runtime file: to the database directly ([`super::offline`]);
//! 4. a server seems to run but does not answer: refused, saying how to reach it.

use serde_json::Value;

use super::args::Cli;
use super::local_server::{self, LocalServer};
use super::{CliError, admin_client, load_config, offline};
use crate::admin::AdminChange;

/// What the CLI prints about an applied change.
pub struct Applied {
    pub seq: i64,
    /// The ledger entry's details, when the path that applied it returns them.
    pub details: Value,
}

pub async fn apply(
    cli: &Cli,
    server: Option<&str>,
    admin_key: Option<&str>,
    change: AdminChange,
) -> Result<Applied, CliError> {
    if let Some(server) = server {
        return through_api(server, admin_key, &change).await;
    }
    let config = load_config(cli)?;
    match local_server::find(&config.db_path).await {
        LocalServer::None => {
            let entry = offline::apply(config, change).await?;
            Ok(Applied {
                seq: entry.seq,
                details: entry.details,
            })
        }
        LocalServer::Running { url, token } => {
            tracing::info!(%url, "a server runs on this database; sending the change to it");
            through_api(&url, Some(token.expose()), &change).await.map_err(|e| {
                CliError::Failed(format!(
                    "a server runs on {} at {url}, and it refused the change: {e}",
                    config.db_path.display()
                ))
            })
        }
        LocalServer::Unreachable { pid, addr } => Err(CliError::Failed(format!(
            "a server (pid {pid}) seems to run on {} but http://{addr} does not answer; nothing \
             was changed. Reach it with --server URL --admin-key KEY, or stop it and retry",
            config.db_path.display()
        ))),
    }
}

async fn through_api(
    server: &str,
    admin_key: Option<&str>,
    change: &AdminChange,
) -> Result<Applied, CliError> {
    let (method, path, body) = admin_client::request_for(change);
    let answer = admin_client::call(server, admin_key, method, &path, body).await?;
    Ok(Applied {
        seq: answer["ledger_seq"].as_i64().unwrap_or_default(),
        details: answer["details"].clone(),
    })
}
