//! `<db>.server`: a small file telling the CLI that a server runs on this database, where it
//! listens, and a per-run admin token for it.
//!
//! Without it, `stockyard modules set ...` beside a running server writes the database and the
//! ledger, but the server never loads the change: the record says one thing and the server does
//! another. With it, the CLI sends the change to the server's admin API instead. The token is
//! random per run, the file is mode 0600 (only the user who can read the database's key file can
//! read it), and it is removed on clean shutdown; a file left by a crash is recognised as stale
//! by its pid and address.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::secret::Secret;

/// What the file says. `Debug` shows the token as `[redacted]`: this value is logged and passed
/// around by the CLI, and the token is an admin key for as long as the server runs.
#[derive(Debug)]
pub struct RuntimeInfo {
    pub pid: u32,
    pub addr: SocketAddr,
    /// Accepted by the admin API as a bearer key for as long as this server runs.
    pub token: Secret<String>,
}

/// The file's JSON. Only [`RuntimeFile::publish`] and [`read`] see the token in the clear; a
/// `Secret` serializes as `[redacted]`, so the file needs its own shape.
#[derive(Deserialize, Serialize)]
struct OnDisk<T> {
    pid: u32,
    addr: SocketAddr,
    token: T,
}

/// `<db>.server`.
pub fn path_for(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(".server");
    PathBuf::from(name)
}

/// A new random per-run admin token (32 bytes, hex).
pub fn new_token() -> Result<Secret<String>, std::io::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok(Secret::new(hex::encode(bytes)))
}

/// The runtime file while it exists; dropping it removes the file.
pub struct RuntimeFile {
    path: PathBuf,
}

impl RuntimeFile {
    /// Writes the file (mode 0600), replacing one left behind by a server that did not stop
    /// cleanly.
    pub fn publish(
        db: &Path,
        addr: SocketAddr,
        token: &Secret<String>,
    ) -> Result<RuntimeFile, std::io::Error> {
        let path = path_for(db);
        let info = OnDisk {
            pid: std::process::id(),
            addr,
            token: token.expose().as_str(),
        };
        let body = serde_json::to_vec(&info).map_err(std::io::Error::other)?;
        let _ = std::fs::remove_file(&path);
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&path)?;
        file.write_all(&body)?;
        Ok(RuntimeFile { path })
    }
}

impl Drop for RuntimeFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The runtime file beside `db`, if there is a readable one.
pub fn read(db: &Path) -> Option<RuntimeInfo> {
    let text = std::fs::read(path_for(db)).ok()?;
    let info: OnDisk<String> = serde_json::from_slice(&text).ok()?;
    Some(RuntimeInfo {
        pid: info.pid,
        addr: info.addr,
        token: Secret::new(info.token),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtime_file_is_private_readable_and_removed_on_drop() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let db = dir.path().join("s.db");
        let token = new_token().unwrap_or_else(|e| panic!("{e}"));
        let addr: SocketAddr = "127.0.0.1:4000".parse().unwrap_or_else(|e| panic!("{e}"));
        let file = RuntimeFile::publish(&db, addr, &token).unwrap_or_else(|e| panic!("{e}"));
        let info = read(&db);
        assert!(format!("{info:?}").contains("[redacted]"), "{info:?}");
        assert!(!format!("{info:?}").contains(token.expose().as_str()));
        assert_eq!(
            info.map(|i| (i.pid, i.addr, i.token.expose().clone())),
            Some((std::process::id(), addr, token.expose().clone()))
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(path_for(&db))
                .map(|m| m.permissions().mode() & 0o777)
                .unwrap_or(0);
            assert_eq!(mode, 0o600);
        }
        drop(file);
        assert!(!path_for(&db).exists());
    }
}
