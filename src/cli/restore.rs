//! `stockyard restore FILE`: replaces the database with a backup.
//!
//! 1. Refused while anything holds the database's lock (a running server, an offline change):
//!    replacing a file under a live server would lose its writes and confuse its readers.
//! 2. The backup must pass `PRAGMA integrity_check`, be at a schema version this build knows, and
//!    hold an audit ledger that verifies under this database's key (every entry MACed).
//! 3. The current file is checkpointed and kept as `<db>.pre-restore` (so a restore can be
//!    undone by hand); the backup is copied into place.
//! 4. The restored file is opened as a server would, which migrates it forward if it is older,
//!    and the restore is appended to the audit ledger. The old head file belonged to the ledger
//!    being replaced, so it is set aside too and the new entry publishes the restored chain's
//!    head: `stockyard audit verify` passes afterwards, and the ledger says a restore happened.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde_json::json;

use super::args::Cli;
use super::{CliError, load_config, offline};
use crate::ledger::{Head, LedgerDraft, LedgerKey, VerifyError};
use crate::server::App;
use crate::server::db_lock::DbLock;
use crate::store::StoreUrl;

pub async fn run(
    cli: &Cli,
    backup: &Path,
    accept_unanchored_ledger: bool,
) -> Result<ExitCode, CliError> {
    let config = load_config(cli)?;
    let db = config.db_path.clone();
    crate::store::ensure_built(&config.store_url())?;
    let Some(_lock) = DbLock::try_acquire(&db)? else {
        return Err(CliError::Failed(format!(
            "a running stockyard process holds {} (its lock {} is taken); stop the server, then \
             restore. Nothing was changed",
            db.display(),
            DbLock::path_for(&db).display()
        )));
    };
    let version = crate::store::verify_copy(&StoreUrl::Sqlite(backup.to_path_buf()))
        .map_err(|e| CliError::Failed(format!("{}: not restored: {e}", backup.display())))?;
    let unanchored = check_ledger(&config, backup, accept_unanchored_ledger)?;

    // Copy first, beside the database, so a failed copy leaves the current file untouched.
    let incoming = with_suffix(&db, ".restoring");
    std::fs::copy(backup, &incoming)?;
    std::fs::File::open(&incoming)?.sync_all()?;

    let kept = with_suffix(&db, ".pre-restore");
    let previous_head = Head::read(&db).ok().flatten().map(|p| p.head.to_string());
    if db.exists() {
        crate::store::checkpoint_file(&config.store_url())?;
        std::fs::rename(&db, &kept)?;
    }
    for companion in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(with_suffix(&db, companion));
    }
    let head_file = Head::path_for(&db);
    if head_file.exists() {
        std::fs::rename(&head_file, with_suffix(&kept, ".ledger-head"))?;
    }
    std::fs::rename(&incoming, &db)?;

    // Opening migrates forward and anchors; the ledger entry publishes the new head.
    let app = App::open(config)?;
    let draft = LedgerDraft {
        actor: offline::actor(),
        action: "restore".into(),
        target: "database".into(),
        details: json!({
            "from": backup.display().to_string(),
            "backup_schema_version": version,
            "previous_head": previous_head,
            "accepted_unanchored_ledger": unanchored,
        }),
    };
    let recorded = app.writer.admin(None, draft).await;
    app.writer.shutdown().await?;
    let entry = recorded?;
    println!(
        "restored {} from {} (schema version {version}{}); ledger entry {}; the previous \
         database is kept as {}",
        db.display(),
        backup.display(),
        if version < crate::store::SCHEMA_VERSION {
            format!(", migrated to {}", crate::store::SCHEMA_VERSION)
        } else {
            String::new()
        },
        entry.seq,
        kept.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// The backup's ledger must verify under this database's ledger key before it replaces anything:
/// every entry chained and carrying a valid MAC, or without one only before the first MACed entry
/// (whose MAC covers them: a ledger from a build that anchored only new entries). Opening the
/// restored file anchors MAC-less entries, and the head file that could have told a cleared MAC
/// from a ledger never anchored is set aside by the restore, so a chain recomputed without the
/// key, its MACs cleared, would otherwise come out signed. A ledger with no MAC at all (a build
/// from before MACs) passes only with `--accept-unanchored-ledger`; the answer says whether it
/// did. Without a key to check with, an anchored backup is refused.
fn check_ledger(
    config: &crate::config::ValidConfig,
    backup: &Path,
    accept_unanchored: bool,
) -> Result<bool, CliError> {
    let refused = |why: String| {
        CliError::Failed(format!(
            "{}: not restored: its audit ledger does not verify: {why}. Nothing was changed",
            backup.display()
        ))
    };
    let entries = crate::store::ledger_of_copy(&StoreUrl::Sqlite(backup.to_path_buf()))
        .map_err(|e| refused(e.to_string()))?;
    let env_key = config.ledger_key.as_ref().map(|k| k.expose().as_str());
    let key = LedgerKey::find(&config.db_path, env_key).map_err(|e| refused(e.to_string()))?;
    let Some(key) = key else {
        return match crate::ledger::verify(&entries, None) {
            Ok(_) => Ok(false),
            Err(VerifyError::NoKey { .. }) => Err(refused(format!(
                "its entries carry MACs and no ledger key was found to check them (set \
                 STOCKYARD_LEDGER_KEY or put the key file at {})",
                LedgerKey::path_for(&config.db_path).display()
            ))),
            Err(e) => Err(refused(e.to_string())),
        };
    };
    let none_maced = entries.iter().all(|e| e.mac.is_none());
    if none_maced && !entries.is_empty() {
        return match crate::ledger::verify(&entries, None) {
            Ok(_) if accept_unanchored => Ok(true),
            Ok(_) => Err(refused(
                "no entry carries a MAC: a ledger from a build before MACs, or one whose MACs \
                 were cleared; if the backup is known to be from such a build, restore it with \
                 --accept-unanchored-ledger"
                    .into(),
            )),
            Err(e) => Err(refused(e.to_string())),
        };
    }
    // The MAC-less prefix its first MACed entry vouches for counts as MACed.
    let vouched = crate::ledger::to_anchor(&entries, &key, true);
    let mut checked = entries;
    for entry in checked.iter_mut().filter(|e| vouched.contains(&e.seq)) {
        entry.mac = Some(key.mac(&entry.hash));
    }
    crate::ledger::verify(&checked, Some(&key))
        .map(|_| false)
        .map_err(|e| refused(e.to_string()))
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}
