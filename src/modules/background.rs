//! What a module's background task (retention passes, scheduled backups, alert evaluation) knows
//! of the chains: the config each built copy of the module holds, by weak handle, so that the one
//! task a proxy runs follows the newest chain's settings and sees when none holds the module any
//! more; and whether the task was started.

use std::sync::{Arc, Mutex, PoisonError, Weak};

pub struct Policies<C> {
    configs: Mutex<Vec<Weak<C>>>,
    started: Mutex<bool>,
}

impl<C> Default for Policies<C> {
    fn default() -> Self {
        Policies {
            configs: Mutex::new(Vec::new()),
            started: Mutex::new(false),
        }
    }
}

impl<C> Policies<C> {
    /// Notes the config a newly built copy of the module holds.
    pub fn register(&self, config: &Arc<C>) {
        self.configs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Arc::downgrade(config));
    }

    /// The config of the newest chain that still holds the module.
    pub fn current(&self) -> Option<Arc<C>> {
        let mut configs = self.configs.lock().unwrap_or_else(PoisonError::into_inner);
        configs.retain(|w| w.strong_count() > 0);
        configs.iter().rev().find_map(Weak::upgrade)
    }

    /// True the first time only: the caller starts its task then, and never again.
    pub fn first_start(&self) -> bool {
        let mut started = self.started.lock().unwrap_or_else(PoisonError::into_inner);
        !std::mem::replace(&mut *started, true)
    }
}
