//! The published head: the newest entry's sequence number and hash, kept outside the database.
//!
//! MACs stop rewriting, but not cutting: deleting the newest rows leaves a shorter chain that is
//! still valid. So after each committed batch that appended entries, the writer writes the head to
//! `<db>.ledger-head` (temp file + rename, so a crash never leaves half a head) and logs it;
//! `audit verify` compares the chain with that file, and with `--expect-head SEQ:HASH` taken from
//! a log or anywhere else the head was published.
//!
//! The file's line is `SEQ:HASH:MAC`, MAC = `HMAC(ledger key, "head|SEQ|HASH")`, so whoever can
//! write the file but lacks the key cannot move the head back over a cut tail. A `SEQ:HASH` line
//! (written by builds before heads carried a MAC) still parses, as unauthenticated.

use std::io::Write;
use std::path::{Path, PathBuf};

use thiserror::Error;

use super::LedgerKey;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Head {
    pub seq: i64,
    pub hash: String,
}

/// The head file's content: the head and the MAC it was published with, if any.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublishedHead {
    pub head: Head,
    pub mac: Option<String>,
}

impl PublishedHead {
    /// Whether the file was written by someone holding `key`.
    pub fn is_authentic(&self, key: &LedgerKey) -> bool {
        self.mac
            .as_deref()
            .is_some_and(|mac| key.check(&self.head.mac_message(), mac))
    }
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
        if seq < 0 || !is_hex_of_len(&hash, 64) {
            return Err(malformed());
        }
        Ok(Head { seq, hash })
    }
}

impl std::str::FromStr for PublishedHead {
    type Err = HeadError;

    /// The head file's line: `SEQ:HASH:MAC`, or `SEQ:HASH` from a build before heads had MACs.
    fn from_str(text: &str) -> Result<PublishedHead, HeadError> {
        let text = text.trim();
        match text.rsplit_once(':') {
            Some((head, mac)) if head.contains(':') => {
                let mac = mac.to_ascii_lowercase();
                if !is_hex_of_len(&mac, 64) {
                    return Err(HeadError::Malformed {
                        text: text.to_string(),
                    });
                }
                Ok(PublishedHead {
                    head: head.parse()?,
                    mac: Some(mac),
                })
            }
            _ => Ok(PublishedHead {
                head: text.parse()?,
                mac: None,
            }),
        }
    }
}

fn is_hex_of_len(text: &str, len: usize) -> bool {
    text.len() == len && text.bytes().all(|b| b.is_ascii_hexdigit())
}

impl Head {
    /// `<db>.ledger-head`.
    pub fn path_for(db: &Path) -> PathBuf {
        let mut name = db.as_os_str().to_owned();
        name.push(".ledger-head");
        PathBuf::from(name)
    }

    /// What the head's MAC is computed over: `head|SEQ|HASH`, which no entry hash (bare hex) can
    /// equal, so an entry's MAC is never a valid head MAC or the reverse.
    fn mac_message(&self) -> String {
        format!("head|{}|{}", self.seq, self.hash)
    }

    /// The head file beside `db`, or `None` if there is none.
    pub fn read(db: &Path) -> Result<Option<PublishedHead>, HeadError> {
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

    /// Replaces the head file beside `db` atomically (a reader sees the old head or the new one),
    /// as `SEQ:HASH:MAC` under `key`.
    pub fn write(&self, db: &Path, key: &LedgerKey) -> Result<(), HeadError> {
        let path = Head::path_for(db);
        let mut temp = path.as_os_str().to_owned();
        temp.push(".tmp");
        let temp = PathBuf::from(temp);
        let io = |source| HeadError::Io {
            path: path.display().to_string(),
            source,
        };
        let mut file = std::fs::File::create(&temp).map_err(io)?;
        let mac = key.mac(&self.mac_message());
        file.write_all(format!("{self}:{mac}\n").as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(io)?;
        std::fs::rename(&temp, &path).map_err(io)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(hex_key: &str) -> LedgerKey {
        LedgerKey::from_env_value(hex_key).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn head_round_trips_through_its_file_and_text() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let db = dir.path().join("s.db");
        assert!(matches!(Head::read(&db), Ok(None)));
        let head = Head {
            seq: 7,
            hash: "ab".repeat(32),
        };
        let ours = key("00112233445566778899aabbccddeeff");
        head.write(&db, &ours).unwrap_or_else(|e| panic!("{e}"));
        let read = Head::read(&db).ok().flatten();
        assert_eq!(read.as_ref().map(|p| &p.head), Some(&head));
        assert!(read.as_ref().is_some_and(|p| p.is_authentic(&ours)));
        assert!(!read.is_some_and(|p| p.is_authentic(&key("ff112233445566778899aabbccddeeff"))));
        assert_eq!(head.to_string().parse::<Head>().ok(), Some(head.clone()));
        assert!("7".parse::<Head>().is_err());
        assert!("x:ab".parse::<Head>().is_err());
        assert!(format!("3:{}", "zz".repeat(32)).parse::<Head>().is_err());
    }

    #[test]
    fn a_head_line_without_a_mac_or_with_a_moved_seq_is_not_authentic() {
        let ours = key("00112233445566778899aabbccddeeff");
        let old: PublishedHead = format!("7:{}", "ab".repeat(32))
            .parse()
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(old.mac, None);
        assert!(!old.is_authentic(&ours));
        let head = Head {
            seq: 7,
            hash: "ab".repeat(32),
        };
        let line = format!("{head}:{}", ours.mac(&head.mac_message()));
        let good: PublishedHead = line.parse().unwrap_or_else(|e| panic!("{e}"));
        assert!(good.is_authentic(&ours));
        // The same MAC on an earlier sequence (a head moved back over a cut) does not check.
        let moved: PublishedHead = line
            .replacen("7:", "5:", 1)
            .parse()
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(!moved.is_authentic(&ours));
        assert!(format!("{head}:nothex").parse::<PublishedHead>().is_err());
    }
}
