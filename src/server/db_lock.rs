//! `<db>.lock`: one writing process at a time on a database.
//!
//! `stockyard serve` holds an exclusive lock on it from before it reads the database until it
//! exits, and an offline CLI change takes it for the length of the change. Without it, an offline
//! change made while a server was starting (after it read the module states, before it published
//! its runtime file) was recorded but never applied, and a second `serve` on the same file
//! replaced the first one's runtime file. The lock is the kernel's (`flock` on Unix), so it goes
//! with the process however it ends; the file is left in place, since removing a lock file races
//! with whoever opens it next.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

/// Held until dropped.
#[derive(Debug)]
pub struct DbLock {
    _file: File,
}

impl DbLock {
    /// `<db>.lock`.
    pub fn path_for(db: &Path) -> PathBuf {
        let mut name = db.as_os_str().to_owned();
        name.push(".lock");
        PathBuf::from(name)
    }

    /// Takes the lock without waiting; `Ok(None)` when another process holds it.
    pub fn try_acquire(db: &Path) -> Result<Option<DbLock>, std::io::Error> {
        let path = DbLock::path_for(db);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        match file.try_lock() {
            Ok(()) => Ok(Some(DbLock { _file: file })),
            Err(TryLockError::WouldBlock) => Ok(None),
            Err(TryLockError::Error(e)) => Err(std::io::Error::new(
                e.kind(),
                format!("{}: {e}", path.display()),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lock_is_exclusive_until_dropped() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let db = dir.path().join("s.db");
        let held = DbLock::try_acquire(&db).unwrap_or_else(|e| panic!("{e}"));
        assert!(held.is_some());
        assert!(matches!(DbLock::try_acquire(&db), Ok(None)));
        drop(held);
        assert!(matches!(DbLock::try_acquire(&db), Ok(Some(_))));
    }
}
