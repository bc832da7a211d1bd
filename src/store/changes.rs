//! Changes made by other nodes of a shared store. An administrative change is applied to this
//! node's hot state by `Admin::apply` as it is committed; another node learns of it through a
//! [`Watch`]: the backend calls `on_change` with the concern that changed, and the caller reloads
//! that concern from the store. A SQLite store has one node, so it has nothing to watch.
//!
//! Delivery is at least once and may be late or repeated (a reconnect reports [`Changed::All`],
//! since notifications sent meanwhile are lost), so a reload must read the whole concern, not
//! apply a delta.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// What changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Changed {
    /// Virtual keys, teams, admin keys.
    Keys,
    /// Module state (settings, aliases, routing), prices.
    Modules,
    /// Provider credentials.
    Credentials,
    /// Routing breakers' phases (a breaker opened, probed or closed on another node).
    Breakers,
    /// Cache entries purged (an operator's purge on another node).
    Cache,
    /// Anything: the watch could not tell (it reconnected and may have missed notifications).
    All,
}

impl Changed {
    pub fn as_str(self) -> &'static str {
        match self {
            Changed::Keys => "keys",
            Changed::Modules => "modules",
            Changed::Credentials => "credentials",
            Changed::Breakers => "breakers",
            Changed::Cache => "cache",
            Changed::All => "all",
        }
    }

    pub fn parse(text: &str) -> Changed {
        match text {
            "keys" => Changed::Keys,
            "modules" => Changed::Modules,
            "credentials" => Changed::Credentials,
            "breakers" => Changed::Breakers,
            "cache" => Changed::Cache,
            _ => Changed::All,
        }
    }

    /// Whether a reload of `concern` is due on this notice.
    pub fn covers(self, concern: Changed) -> bool {
        self == concern || self == Changed::All
    }
}

/// Called on the watch's own thread, never on a runtime worker: it may read the store.
pub type OnChange = Arc<dyn Fn(Changed) + Send + Sync>;

/// A running watch; it stops (within about a second) when dropped.
pub struct Watch {
    stop: Arc<AtomicBool>,
}

impl Watch {
    pub(super) fn new(stop: Arc<AtomicBool>) -> Watch {
        Watch { stop }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
