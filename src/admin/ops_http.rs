//! Operations endpoints of the admin API:
//! - `GET /admin/db/stats`: rows and bytes per table, free pages, WAL size, and the writer's queue
//!   depth and last checkpoint
//! - `POST /admin/retention/run`: one retention pass now, with the config in force
//! - `POST /admin/backup` (`{"path": "/abs/file.db"}`, or no body for a scheduled-style copy into
//!   `[modules.backups] dir`): a verified copy
//!
//! None of these changes configuration, so none goes through `admin::apply`; retention and
//! backups log what they did.

use std::path::PathBuf;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Method, Request};
use serde::Deserialize;
use serde_json::{Value, json};

use super::http::read_bytes;
use crate::modules::backups::{self, BackupError};
use crate::modules::retention::{self, RunError};
use crate::proxy::ApiError;
use crate::server::App;

pub(super) fn serves(path: &str) -> bool {
    matches!(
        path,
        "/admin/db/stats" | "/admin/retention/run" | "/admin/backup"
    )
}

pub(super) async fn route(
    app: &Arc<App>,
    method: &Method,
    path: &str,
    request: Request<Incoming>,
) -> Result<Value, ApiError> {
    match (method, path) {
        (&Method::GET, "/admin/db/stats") => db_stats(app).await,
        (&Method::POST, "/admin/retention/run") => {
            let report = retention::run_now(app.admin.deps())
                .await
                .map_err(|e| match e {
                    RunError::Disabled => ApiError::AdminInvalid {
                        message: e.to_string(),
                    },
                    RunError::Store(e) => internal(e),
                })?;
            Ok(json!({ "retention": report }))
        }
        (&Method::POST, "/admin/backup") => backup(app, request).await,
        _ => Err(ApiError::MethodNotAllowed {
            method: method.to_string(),
            path: path.to_string(),
        }),
    }
}

async fn db_stats(app: &Arc<App>) -> Result<Value, ApiError> {
    let store = app.store.maintenance.clone();
    let stats = tokio::task::spawn_blocking(move || store.db_stats())
        .await
        .map_err(internal)?
        .map_err(internal)?;
    Ok(json!({ "db": stats, "writer": app.writer.snapshot() }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BackupBody {
    path: Option<PathBuf>,
}

async fn backup(app: &Arc<App>, request: Request<Incoming>) -> Result<Value, ApiError> {
    let bytes = read_bytes(request).await?;
    let body: BackupBody = if bytes.iter().all(u8::is_ascii_whitespace) {
        BackupBody { path: None }
    } else {
        serde_json::from_slice(&bytes).map_err(|e| ApiError::AdminInvalid {
            message: format!("invalid body: {e}"),
        })?
    };
    if let Some(path) = &body.path
        && !path.is_absolute()
    {
        return Err(ApiError::AdminInvalid {
            message: format!(
                "path: {:?} must be absolute (the server's working directory is not yours)",
                path.display().to_string()
            ),
        });
    }
    // A directory that is not there is the caller's mistake, named as such, not the server's.
    if let Some(parent) = body.path.as_deref().and_then(std::path::Path::parent)
        && !parent.is_dir()
    {
        return Err(ApiError::AdminInvalid {
            message: format!(
                "path: directory {:?} does not exist on the server",
                parent.display().to_string()
            ),
        });
    }
    let done = backups::take_now(app.admin.deps(), body.path)
        .await
        .map_err(|e| match e {
            BackupError::Store(e) => internal(e),
            other => ApiError::AdminInvalid {
                message: other.to_string(),
            },
        })?;
    Ok(json!({ "backup": done }))
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::Internal {
        message: e.to_string(),
    }
}
