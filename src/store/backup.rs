//! A backup that can be trusted: a consistent online copy ([`super::backup_into`], one snapshot,
//! safe while a server writes), then an integrity check of the copy before anyone is told it
//! worked. Used by `stockyard backup`, `POST /admin/backup` and the `backups` module's schedule.
//! Blocking: async callers use `spawn_blocking`.

use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use super::{StoreError, StoreUrl};

/// What a finished, verified backup reports.
#[derive(Clone, Debug, Serialize)]
pub struct BackupDone {
    pub path: String,
    pub bytes: u64,
    pub schema_version: i64,
    pub millis: u64,
}

/// Copies the store at `url` into the new file `out` and checks the copy. `progress` is called
/// every ~250 ms during the copy with the bytes written so far and the source's size (the copy
/// is compacted, so it usually ends below it). A copy that fails its check is removed.
pub fn take(
    url: &StoreUrl,
    out: &Path,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<BackupDone, StoreError> {
    let started = std::time::Instant::now();
    let source_bytes = match url {
        StoreUrl::Sqlite(path) => std::fs::metadata(path).map_or(0, |m| m.len()),
        StoreUrl::Postgres(_) => 0,
    };
    let copy = std::thread::scope(|scope| {
        let worker = scope.spawn(|| super::backup_into(url, out));
        while !worker.is_finished() {
            std::thread::sleep(Duration::from_millis(250));
            if !worker.is_finished() {
                let written = std::fs::metadata(out).map_or(0, |m| m.len());
                progress(written, source_bytes);
            }
        }
        worker
            .join()
            .unwrap_or_else(|_| Err(StoreError::Backend("the backup thread panicked".into())))
    });
    copy?;
    verified(out, started)
}

/// Copies through a store's read side (a server's own pool) into the new file `out` and checks
/// the copy: what `POST /admin/backup` and the schedule use.
pub fn take_from(
    store: &dyn super::maintenance::MaintenanceStore,
    out: &Path,
) -> Result<BackupDone, StoreError> {
    let started = std::time::Instant::now();
    store.backup_into(out)?;
    verified(out, started)
}

fn verified(out: &Path, started: std::time::Instant) -> Result<BackupDone, StoreError> {
    let copied = StoreUrl::Sqlite(out.to_path_buf());
    let schema_version = match super::verify_copy(&copied) {
        Ok(version) => version,
        Err(e) => {
            let _ = std::fs::remove_file(out);
            return Err(e);
        }
    };
    Ok(BackupDone {
        path: out.display().to_string(),
        bytes: std::fs::metadata(out).map_or(0, |m| m.len()),
        schema_version,
        millis: started.elapsed().as_millis() as u64,
    })
}
