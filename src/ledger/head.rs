//! The published head: the newest entry's sequence number and hash, kept outside the database.
//!
//! MACs stop rewriting, but not cutting: deleting the newest rows leaves a shorter chain that is
//! still valid. So after each committed batch that appended entries, the writer writes the head to
//! `<db>.ledger-head` (temp file + rename, so a crash never leaves half a head) and logs it;
//! `audit verify` compares the chain with that file, and with `--expect-head SEQ:HASH` taken from
//! a log or anywhere else the head was published.

use std::io::Write;
use std::path::{Path, PathBuf};

use thiserror::Error;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Head {
    pub seq: i64,
    pub hash: String,
}

#[derive(Debug, Error)]
pub enum HeadError {
    #[error("{text:?} is not a ledger head like 12:3f5a... (SEQ:HASH, hash as 64 hex digits)")]
    Malformed { text: String },
    #[error("ledger head file {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

impl std::fmt::Display for Head {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.seq, self.hash)
    }
}

impl std::str::FromStr for Head {
    type Err = HeadError;

    /// `SEQ:HASH`, as printed by `audit verify` and written to the head file.
    fn from_str(text: &str) -> Result<Head, HeadError> {
        let malformed = || HeadError::Malformed {
            text: text.to_string(),
        };
        let (seq, hash) = text.trim().split_once(':').ok_or_else(malformed)?;
        let seq: i64 = seq.parse().map_err(|_| malformed())?;
        let hash = hash.to_ascii_lowercase();
        if seq < 0 || hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(malformed());
        }
        Ok(Head { seq, hash })
    }
}

impl Head {
    /// `<db>.ledger-head`.
    pub fn path_for(db: &Path) -> PathBuf {
        let mut name = db.as_os_str().to_owned();
        name.push(".ledger-head");
        PathBuf::from(name)
    }

    /// The head file beside `db`, or `None` if there is none.
    pub fn read(db: &Path) -> Result<Option<Head>, HeadError> {
        let path = Head::path_for(db);
        match std::fs::read_to_string(&path) {
            Ok(text) => text.parse().map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(HeadError::Io {
                path: path.display().to_string(),
                source,
            }),
        }
    }

    /// Replaces the head file beside `db` atomically: a reader sees the old head or the new one.
    pub fn write(&self, db: &Path) -> Result<(), HeadError> {
        let path = Head::path_for(db);
        let mut temp = path.as_os_str().to_owned();
        temp.push(".tmp");
        let temp = PathBuf::from(temp);
        let io = |source| HeadError::Io {
            path: path.display().to_string(),
            source,
        };
        let mut file = std::fs::File::create(&temp).map_err(io)?;
        file.write_all(format!("{self}\n").as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(io)?;
        std::fs::rename(&temp, &path).map_err(io)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_round_trips_through_its_file_and_text() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let db = dir.path().join("s.db");
        assert!(matches!(Head::read(&db), Ok(None)));
        let head = Head {
            seq: 7,
            hash: "ab".repeat(32),
        };
        head.write(&db).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(Head::read(&db).ok().flatten(), Some(head.clone()));
        assert_eq!(head.to_string().parse::<Head>().ok(), Some(head));
        assert!("7".parse::<Head>().is_err());
        assert!("x:ab".parse::<Head>().is_err());
        assert!(format!("3:{}", "zz".repeat(32)).parse::<Head>().is_err());
    }
}
