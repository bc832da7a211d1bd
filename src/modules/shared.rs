//! `Shared`: state a feature keeps beyond one chain, reached by its type. A module asks for its
//! state when it is built (`deps.shared.get_or_init(|| ...)`), so a rebuilt chain finds the same
//! counters, caches and books as the one it replaces, and adding a feature adds no field anywhere
//! else.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

#[derive(Default)]
pub struct Shared {
    states: Mutex<HashMap<TypeId, Arc<dyn Any + Send + Sync>>>,
}

impl Shared {
    /// The state of type `T`, made by `init` the first time it is asked for.
    pub fn get_or_init<T: Any + Send + Sync>(&self, init: impl FnOnce() -> T) -> Arc<T> {
        let mut states = self.states.lock().unwrap_or_else(PoisonError::into_inner);
        let id = TypeId::of::<T>();
        if let Some(found) = states.get(&id).and_then(|s| s.clone().downcast::<T>().ok()) {
            return found;
        }
        let state = Arc::new(init());
        states.insert(id, state.clone());
        state
    }

    /// The state of type `T`, if a module made it.
    pub fn get<T: Any + Send + Sync>(&self) -> Option<Arc<T>> {
        let states = self.states.lock().unwrap_or_else(PoisonError::into_inner);
        states.get(&TypeId::of::<T>())?.clone().downcast::<T>().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[test]
    fn each_type_is_made_once_and_found_again() {
        let shared = Shared::default();
        let a = shared.get_or_init(|| AtomicU32::new(1));
        a.fetch_add(1, Ordering::Relaxed);
        let b = shared.get_or_init(|| AtomicU32::new(100));
        assert_eq!(b.load(Ordering::Relaxed), 2);
        assert!(shared.get::<String>().is_none());
        assert!(shared.get::<AtomicU32>().is_some());
    }
}
