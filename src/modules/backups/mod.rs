//! `backups`: verified copies of the database on a schedule, keeping the newest `keep` in `dir`,
//! and on demand (`POST /admin/backup`). Each copy is read from one snapshot on a read
//! connection (the writer never waits for it) and passes `PRAGMA integrity_check` before it
//! counts; a copy that fails is removed and never prunes a good one.
//!
//! Like `retention`, one task per proxy in `Shared`, following the newest chain that holds the
//! module through weak handles: disable the module and the schedule stops.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::background::Policies;
use super::registry::{ModuleConfig, ModuleSpec};
use super::retention::config::parse_age;
use super::{Hooks, Module, ModuleDeps, ModuleError};
use crate::store::StoreError;
use crate::store::backup::BackupDone;
use crate::store::maintenance::MaintenanceStore;

pub const SPEC: ModuleSpec = ModuleSpec {
    name: "backups",
    description: "verified database backups on a schedule, keeping the newest N",
    order: 97,
    finish_order: 97,
    enabled_by_default: true,
    required: super::registry::never_required,
    default_config: BackupsConfig::default_json,
    check: BackupsConfig::check,
    build,
};

/// File names of scheduled copies: `stockyard-backup-<UTC time>.db`, so names sort by age.
const PREFIX: &str = "stockyard-backup-";

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct BackupsConfig {
    /// Directory for scheduled copies; empty (the default): no schedule.
    pub dir: String,
    /// Time between scheduled copies (`6h`, `1d`). Default `24h`.
    pub interval: String,
    /// Scheduled copies kept; older ones are deleted after a new one verifies. Default 7.
    pub keep: usize,
}

impl Default for BackupsConfig {
    fn default() -> Self {
        BackupsConfig {
            dir: String::new(),
            interval: "24h".into(),
            keep: 7,
        }
    }
}

impl ModuleConfig for BackupsConfig {
    fn validate(&self) -> Result<(), String> {
        let mut problems = Vec::new();
        if parse_age(&self.interval).is_none_or(|d| d < Duration::from_secs(1)) {
            problems.push(format!(
                "interval: {:?} is not a duration of at least 1s like 6h or 1d",
                self.interval
            ));
        }
        if self.keep == 0 {
            problems.push("keep: must be at least 1".to_string());
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("\n"))
        }
    }
}

#[derive(Default)]
pub struct BackupRunner {
    policies: Policies<BackupsConfig>,
    /// One copy at a time.
    running: tokio::sync::Mutex<()>,
}

impl BackupRunner {
    fn current(&self) -> Option<Arc<BackupsConfig>> {
        self.policies.current()
    }
}

fn build(config: &serde_json::Value, deps: &ModuleDeps) -> Result<Arc<dyn Module>, ModuleError> {
    let config = Arc::new(BackupsConfig::parse(config).map_err(ModuleError::Config)?);
    let runner = deps.shared.get_or_init(BackupRunner::default);
    runner.policies.register(&config);
    start_task(&runner, deps);
    Ok(Arc::new(Backups { _config: config }))
}

fn start_task(runner: &Arc<BackupRunner>, deps: &ModuleDeps) {
    let Ok(handle) = tokio::runtime::Handle::try_current() else {
        return;
    };
    if !runner.policies.first_start() {
        return;
    }
    let runner = Arc::downgrade(runner);
    let writer = Arc::downgrade(&deps.writer);
    let store = deps.store.maintenance.clone();
    handle.spawn(async move {
        let mut wait = Duration::from_secs(60);
        loop {
            tokio::time::sleep(wait).await;
            let (Some(runner), Some(_alive)) = (runner.upgrade(), writer.upgrade()) else {
                return;
            };
            wait = Duration::from_secs(60);
            let Some(config) = runner.current().filter(|c| !c.dir.is_empty()) else {
                continue;
            };
            wait = parse_age(&config.interval).unwrap_or(Duration::from_secs(86_400));
            let _one = runner.running.lock().await;
            match scheduled(store.clone(), &config).await {
                Ok(done) => tracing::info!(path = %done.path, bytes = done.bytes, "backup taken"),
                Err(e) => tracing::error!(error = %e, "scheduled backup failed"),
            }
        }
    });
}

/// Why an on-demand backup did not run.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error(
        "no backup path: give {{\"path\": \"...\"}}, or set [modules.backups] dir for scheduled copies"
    )]
    NoPath,
    #[error("{0} already exists; choose a new file")]
    Exists(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One verified copy now (`POST /admin/backup`): into `path`, or as a scheduled copy into the
/// configured directory (pruning the oldest beyond `keep`).
pub async fn take_now(deps: &ModuleDeps, path: Option<PathBuf>) -> Result<BackupDone, BackupError> {
    let runner = deps.shared.get_or_init(BackupRunner::default);
    let _one = runner.running.lock().await;
    let store = deps.store.maintenance.clone();
    match path {
        Some(path) => {
            if path.exists() {
                return Err(BackupError::Exists(path.display().to_string()));
            }
            Ok(copy(store, path).await?)
        }
        None => {
            let config = runner
                .current()
                .filter(|c| !c.dir.is_empty())
                .ok_or(BackupError::NoPath)?;
            Ok(scheduled(store, &config).await?)
        }
    }
}

async fn copy(store: Arc<dyn MaintenanceStore>, path: PathBuf) -> Result<BackupDone, StoreError> {
    tokio::task::spawn_blocking(move || crate::store::backup::take_from(store.as_ref(), &path))
        .await
        .map_err(|e| StoreError::Backend(format!("backup task: {e}")))?
}

async fn scheduled(
    store: Arc<dyn MaintenanceStore>,
    config: &BackupsConfig,
) -> Result<BackupDone, StoreError> {
    let dir = PathBuf::from(&config.dir);
    std::fs::create_dir_all(&dir).map_err(|e| StoreError::Io(format!("{}: {e}", dir.display())))?;
    let done = copy(store, dir.join(file_name())).await?;
    prune(&dir, config.keep);
    Ok(done)
}

fn file_name() -> String {
    let format = time::macros::format_description!(
        "[year][month][day]T[hour][minute][second].[subsecond digits:3]Z"
    );
    let stamp = time::OffsetDateTime::now_utc()
        .format(&format)
        .unwrap_or_else(|_| crate::store::now_ms().to_string());
    format!("{PREFIX}{stamp}.db")
}

/// Deletes the oldest scheduled copies in `dir` beyond the newest `keep` (other files are left).
fn prune(dir: &Path, keep: usize) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut copies: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(PREFIX) && n.ends_with(".db"))
        })
        .collect();
    copies.sort();
    let excess = copies.len().saturating_sub(keep);
    for old in &copies[..excess] {
        if let Err(e) = std::fs::remove_file(old) {
            tracing::warn!(path = %old.display(), error = %e, "old backup not removed");
        }
    }
}

pub struct Backups {
    _config: Arc<BackupsConfig>,
}

#[async_trait]
impl Module for Backups {
    fn name(&self) -> &'static str {
        "backups"
    }

    fn hooks(&self) -> Hooks {
        Hooks::NONE
    }

    fn fail_policy(&self) -> super::FailPolicy {
        super::FailPolicy::Open
    }
}
