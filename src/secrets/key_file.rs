//! Key files beside the database, shared by the ledger key and the master key: 32 random bytes
//! as hex, mode 0600, created with `create_new` so two processes starting at once cannot each
//! write a different key, and replaced only by write-to-temp + rename so a crash never leaves a
//! half-written key.

use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine;

/// A key given in an environment variable: hex first (a hex string is also valid base64), then
/// base64.
pub fn decode_hex_or_base64(value: &str) -> Option<Vec<u8>> {
    let value = value.trim();
    hex::decode(value)
        .ok()
        .or_else(|| base64::engine::general_purpose::STANDARD.decode(value).ok())
}

/// The bytes of a hex key file; `None` when it is not hex.
pub fn read_hex(path: &Path) -> std::io::Result<Option<Vec<u8>>> {
    let text = std::fs::read_to_string(path)?;
    Ok(hex::decode(text.trim()).ok())
}

/// `n` random bytes from the operating system.
pub fn random_bytes(n: usize) -> Result<Vec<u8>, String> {
    let mut bytes = vec![0u8; n];
    getrandom::fill(&mut bytes).map_err(|e| e.to_string())?;
    Ok(bytes)
}

/// Creates `path` holding `bytes` as hex, mode 0600, synced. Fails with `AlreadyExists` when
/// another process made it first (the caller then reads theirs).
pub fn create_new_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(hex::encode(bytes).as_bytes())?;
    file.sync_all()
}

/// Writes `bytes` as hex to `path` whole or not at all: a private temp file beside it, synced,
/// then renamed over it (and the directory synced, so the rename survives a power cut).
pub fn replace_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let temp = sibling(path, ".tmp");
    let _ = std::fs::remove_file(&temp);
    create_new_private(&temp, bytes)?;
    std::fs::rename(&temp, path)?;
    sync_dir(path);
    Ok(())
}

/// Renames `from` over `to` (atomic on one file system), then syncs the directory.
pub fn promote(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::rename(from, to)?;
    sync_dir(to);
    Ok(())
}

/// `path` with `suffix` appended to its file name.
pub fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn sync_dir(path: &Path) {
    // Best effort: not every platform lets a directory be opened and synced.
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && let Ok(dir) = std::fs::File::open(dir)
    {
        let _ = dir.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaced_files_are_whole_and_private() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("k");
        create_new_private(&path, &[1, 2]).unwrap_or_else(|e| panic!("{e}"));
        assert!(create_new_private(&path, &[3]).is_err());
        replace_private(&path, &[0xab; 4]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(read_hex(&path).ok().flatten(), Some(vec![0xab; 4]));
        assert!(!sibling(&path, ".tmp").exists());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path)
                .map(|m| m.permissions().mode() & 0o777)
                .unwrap_or(0);
            assert_eq!(mode, 0o600);
        }
    }
}
