//! Console sessions, in memory: logging in with an admin key makes a random session token (the
//! cookie) and a random CSRF token (a hidden field in every form). A restart logs everyone out,
//! which is the price of keeping no session state on disk.
//!
//! A session remembers which admin key opened it by name, and each request checks that the key
//! is still live, so revoking an admin key ends its sessions at once.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// The cookie's name.
pub const COOKIE: &str = "stockyard_session";

/// Sessions held at once; past it the least recently used is dropped.
const MAX_SESSIONS: usize = 10_000;

/// A message for the next page shown (after a change redirects).
#[derive(Clone, Debug)]
pub struct Flash {
    pub ok: bool,
    pub text: String,
}

#[derive(Clone, Debug)]
pub struct Session {
    /// The ledger's name for the caller (`admin`, `admin-key:NAME`).
    pub actor: String,
    pub read_only: bool,
    pub csrf: String,
    pub flash: Option<Flash>,
    last_used: Instant,
}

#[derive(Default)]
pub struct Sessions {
    map: Mutex<HashMap<String, Session>>,
}

/// 32 random bytes as hex.
pub fn random_token() -> Result<String, String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| format!("no randomness for a session token: {e}"))?;
    Ok(hex::encode(bytes))
}

impl Sessions {
    /// A new session; answers its token.
    pub fn open(&self, actor: String, read_only: bool, idle: Duration) -> Result<String, String> {
        let token = random_token()?;
        let csrf = random_token()?;
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        map.retain(|_, s| s.last_used.elapsed() < idle);
        if map.len() >= MAX_SESSIONS
            && let Some(oldest) = map
                .iter()
                .min_by_key(|(_, s)| s.last_used)
                .map(|(k, _)| k.clone())
        {
            map.remove(&oldest);
        }
        map.insert(
            token.clone(),
            Session {
                actor,
                read_only,
                csrf,
                flash: None,
                last_used: Instant::now(),
            },
        );
        Ok(token)
    }

    /// The session of `token` if it is live, marked used; its flash message is taken.
    pub fn touch(&self, token: &str, idle: Duration) -> Option<Session> {
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        let session = map.get_mut(token)?;
        if session.last_used.elapsed() >= idle {
            map.remove(token);
            return None;
        }
        session.last_used = Instant::now();
        let found = session.clone();
        session.flash = None;
        Some(found)
    }

    pub fn flash(&self, token: &str, ok: bool, text: String) {
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(session) = map.get_mut(token) {
            session.flash = Some(Flash { ok, text });
        }
    }

    pub fn close(&self, token: &str) {
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        map.remove(token);
    }
}

/// Compares in constant time (a CSRF token, a session token).
pub fn same(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_expires_after_its_idle_time_and_flash_is_shown_once() {
        let sessions = Sessions::default();
        let idle = Duration::from_secs(60);
        let token = sessions
            .open("admin".into(), false, idle)
            .unwrap_or_default();
        assert_eq!(token.len(), 64);
        sessions.flash(&token, true, "done".into());
        let first = sessions.touch(&token, idle).map(|s| s.flash.is_some());
        assert_eq!(first, Some(true));
        let second = sessions.touch(&token, idle).map(|s| s.flash.is_some());
        assert_eq!(second, Some(false));
        assert!(sessions.touch(&token, Duration::ZERO).is_none());
        assert!(
            sessions.touch(&token, idle).is_none(),
            "an expired session is gone"
        );
        assert!(same("abc", "abc") && !same("abc", "abd") && !same("abc", "ab"));
    }
}
