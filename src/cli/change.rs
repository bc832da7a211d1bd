//! Where an administrative change from the CLI goes, so that it is never recorded without being
//! applied:
//! 1. `--server URL` given: to that server's admin API;
//! 2. the database's lock (`server::db_lock`) is free: no server runs on it, so to the database
//!    directly ([`super::offline`]), holding the lock for the length of the change;
//! 3. the lock is held and a server answers at its runtime file's address: to its admin API with
//!    the per-run token, so the change is in force for its next request;
//! 4. the lock is held and the server does not answer: refused, saying how to reach it. While
//!    the holder publishes no address (a server starting, another offline change), the lock is
//!    tried again for a few seconds, then the change is refused.
//!
//! Never offline beside a live server: a change written there would be recorded but not applied.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::args::Cli;
use super::local_server::{self, LocalServer};
use super::{CliError, admin_client, load_config, offline};
use crate::admin::AdminChange;
use crate::secret::Secret;
use crate::server::db_lock::DbLock;

/// What the CLI prints about an applied change.
pub struct Applied {
    pub seq: i64,
    /// The ledger entry's details, when the path that applied it returns them.
    pub details: Value,
    /// The key the change issued (a key created or rotated), to be shown once.
    pub key: Option<Secret<String>>,
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
    // A backend this build lacks is refused before any file (the lock's) is made beside it.
    crate::store::ensure_built(&config.store_url())?;
    let db = config.db_path.clone();
    let deadline = Instant::now() + LOCK_WAIT;
    loop {
        if let Some(_lock) = DbLock::try_acquire(&db)? {
            let key = match &change {
                AdminChange::Keys(op) => op.issued_secret().cloned(),
                _ => None,
            };
            let entry = offline::apply(config, change).await?;
            return Ok(Applied {
                seq: entry.seq,
                details: entry.details,
                key,
            });
        }
        match local_server::find(&db).await {
            LocalServer::Running { url, token } => {
                tracing::info!(%url, "a server runs on this database; sending the change to it");
                return through_api(&url, Some(token.expose()), &change)
                    .await
                    .map_err(|e| {
                        CliError::Failed(format!(
                            "a server runs on {} at {url}, and it refused the change: {e}",
                            db.display()
                        ))
                    });
            }
            LocalServer::Unreachable { pid, addr } => {
                return Err(CliError::Failed(format!(
                    "a server (pid {pid}) runs on {} but http://{addr} does not answer; nothing \
                     was changed. Reach it with --server URL --admin-key KEY, or stop it and retry",
                    db.display()
                )));
            }
            LocalServer::None if Instant::now() >= deadline => {
                return Err(CliError::Failed(held_without_server(&db)));
            }
            LocalServer::None => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// How long a change waits for a lock holder that publishes no address: long enough for a server
/// to open its database and start listening, or for another offline change to finish.
const LOCK_WAIT: Duration = Duration::from_secs(5);

fn held_without_server(db: &Path) -> String {
    format!(
        "another stockyard process holds {} and no server answers for it yet (a server starting \
         up, or another offline change); nothing was changed. Retry, or reach the server with \
         --server URL --admin-key KEY",
        DbLock::path_for(db).display()
    )
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
        // The server drew the key; one the CLI drew for an offline change was never sent.
        key: answer["key"].as_str().map(|k| Secret::new(k.to_string())),
    })
}
