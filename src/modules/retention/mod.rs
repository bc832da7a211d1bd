//! `retention`: deletes what is older than its limit (`config.rs`), in small batches through the
//! writer thread, then gives the freed pages back with incremental vacuum, so the file really
//! shrinks. Off the request path entirely: a background task runs a pass every `interval`, and
//! `POST /admin/retention/run` runs one now.
//!
//! One task per proxy, kept in `Shared`. It follows the chain: each chain's module holds its
//! policy, the task holds only weak handles and uses the newest one still alive, so a disabled
//! module (dropped from the chain) stops the passes and a changed config applies at the next one.

pub mod config;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;

pub use config::RetentionConfig;

use super::background::Policies;
use super::registry::{ModuleConfig, ModuleSpec};
use super::{Hooks, Module, ModuleDeps, ModuleError};
use crate::store::maintenance::RetentionKind;
use crate::store::writer::{MaintenanceJob, Writer};
use crate::store::{StoreError, now_ms};

pub const SPEC: ModuleSpec = ModuleSpec {
    name: "retention",
    description: "deletes traces, bodies and stored responses past their age, then shrinks the file",
    order: 96,
    finish_order: 96,
    enabled_by_default: true,
    required: super::registry::never_required,
    default_config: RetentionConfig::default_json,
    check: RetentionConfig::check,
    build,
};

/// Pages freed per vacuum step: each step is one short write transaction.
const VACUUM_STEP_PAGES: u32 = 2_000;

/// What one pass removed.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RetentionReport {
    pub traces_deleted: u64,
    pub bodies_cleared: u64,
    pub responses_deleted: u64,
    pub mcp_calls_deleted: u64,
    pub pages_freed: u64,
}

/// The task's view of the chains: weak handles to each built module's config.
#[derive(Default)]
pub struct RetentionRunner {
    policies: Policies<RetentionConfig>,
    /// One pass at a time: the admin route and the timer never interleave their batches.
    running: tokio::sync::Mutex<()>,
}

impl RetentionRunner {
    /// The config of the newest chain that still holds this module.
    fn current(&self) -> Option<Arc<RetentionConfig>> {
        self.policies.current()
    }
}

fn build(config: &serde_json::Value, deps: &ModuleDeps) -> Result<Arc<dyn Module>, ModuleError> {
    let config = Arc::new(RetentionConfig::parse(config).map_err(ModuleError::Config)?);
    let runner = deps.shared.get_or_init(RetentionRunner::default);
    runner.policies.register(&config);
    start_task(&runner, &deps.writer);
    // The response cache's size is kept by its own index (least recently used entries go
    // first, from memory and the file alike); this sets the ceiling on it.
    let cap = config
        .cache
        .as_deref()
        .and_then(config::parse_size)
        .map_or(usize::MAX, |bytes| {
            usize::try_from(bytes).unwrap_or(usize::MAX)
        });
    super::cache::entries(deps, cap).0.set_cap_bytes(cap);
    Ok(Arc::new(Retention { _config: config }))
}

/// Starts the background task once per proxy, if there is a runtime to run it on (a config check
/// builds modules without one).
fn start_task(runner: &Arc<RetentionRunner>, writer: &Arc<Writer>) {
    let Ok(handle) = tokio::runtime::Handle::try_current() else {
        return;
    };
    if !runner.policies.first_start() {
        return;
    }
    let runner = Arc::downgrade(runner);
    let writer = Arc::downgrade(writer);
    handle.spawn(async move {
        let mut wait = Duration::from_secs(60);
        loop {
            tokio::time::sleep(wait).await;
            // The proxy is gone once its writer is.
            let (Some(runner), Some(writer)) = (runner.upgrade(), writer.upgrade()) else {
                return;
            };
            let Some(config) = runner.current() else {
                wait = Duration::from_secs(60);
                continue;
            };
            wait = config.interval();
            if config.traces.is_none() && config.bodies.is_none() && config.responses.is_none() {
                continue;
            }
            let _one = runner.running.lock().await;
            match pass(&writer, &config).await {
                Ok(report) => tracing::info!(?report, "retention pass"),
                Err(StoreError::WriterGone) => return,
                Err(e) => tracing::warn!(error = %e, "retention pass failed"),
            }
        }
    });
}

/// Why an on-demand pass did not run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(
        "the retention module is disabled; enable it with `stockyard modules enable retention`"
    )]
    Disabled,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One pass now, with the config in force (`POST /admin/retention/run`).
pub async fn run_now(deps: &ModuleDeps) -> Result<RetentionReport, RunError> {
    let runner = deps.shared.get_or_init(RetentionRunner::default);
    let config = runner.current().ok_or(RunError::Disabled)?;
    let _one = runner.running.lock().await;
    Ok(pass(&deps.writer, &config).await?)
}

/// Deletes in batches of `batch_rows`, kind by kind (bodies first: blanking them frees the most
/// for the least), then vacuums step by step and truncates the WAL.
pub async fn pass(
    writer: &Writer,
    config: &RetentionConfig,
) -> Result<RetentionReport, StoreError> {
    let mut report = RetentionReport::default();
    let now = now_ms();
    for (kind, limit) in [
        (RetentionKind::Bodies, &config.bodies),
        (RetentionKind::Traces, &config.traces),
        (RetentionKind::Responses, &config.responses),
        (RetentionKind::McpCalls, &config.mcp_calls),
    ] {
        let Some(age) = limit.as_deref().and_then(config::parse_age) else {
            continue;
        };
        let cutoff_ms = now.saturating_sub(age.as_millis() as i64);
        let mut total = 0;
        loop {
            let job = MaintenanceJob::Delete {
                kind,
                cutoff_ms,
                limit: config.batch_rows,
            };
            let n = writer.maintain(job).await?;
            total += n;
            if n < config.batch_rows as u64 {
                break;
            }
            // Let queued trace batches in between two deletes.
            tokio::task::yield_now().await;
        }
        match kind {
            RetentionKind::Bodies => report.bodies_cleared = total,
            RetentionKind::Traces => report.traces_deleted = total,
            RetentionKind::Responses => report.responses_deleted = total,
            RetentionKind::McpCalls => report.mcp_calls_deleted = total,
        }
    }
    loop {
        let job = MaintenanceJob::Vacuum {
            max_pages: Some(VACUUM_STEP_PAGES),
        };
        let freed = writer.maintain(job).await?;
        report.pages_freed += freed;
        if freed < u64::from(VACUUM_STEP_PAGES) {
            break;
        }
    }
    // The freed pages were written through the WAL; truncating it gives that space back too.
    writer
        .maintain(MaintenanceJob::Checkpoint { truncate: true })
        .await?;
    Ok(report)
}

pub struct Retention {
    /// Keeps this chain's policy alive for the task (see the module doc).
    _config: Arc<RetentionConfig>,
}

#[async_trait]
impl Module for Retention {
    fn name(&self) -> &'static str {
        "retention"
    }

    fn hooks(&self) -> Hooks {
        Hooks::NONE
    }

    fn fail_policy(&self) -> super::FailPolicy {
        super::FailPolicy::Open
    }
}
