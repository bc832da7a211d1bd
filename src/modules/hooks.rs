//! Which asynchronous hooks a module implements, so the chain calls only those.
//!
//! Each async hook is an `async_trait` method: calling one boxes its future, even the default that
//! does nothing. With some twenty modules on the chain, calling every hook of every module cost a
//! request a few thousand instructions of allocation and dispatch for no work. A module declares
//! its hooks in [`super::Module::hooks`]; the chain keeps one list per hook.
//! `declarations_match_implementations` (below) reads the module sources and fails when a module
//! implements a hook it does not declare, so a declaration cannot silently switch a hook off.

use std::ops::BitOr;

/// A set of async hooks (`on_request`, `on_response`, `on_stream_end`, `on_finish`,
/// `on_shutdown`). The synchronous ones (`on_headers`, `on_event`) cost a plain call and need no
/// declaration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hooks(u8);

impl Hooks {
    pub const NONE: Hooks = Hooks(0);
    pub const REQUEST: Hooks = Hooks(1);
    pub const RESPONSE: Hooks = Hooks(1 << 1);
    pub const STREAM_END: Hooks = Hooks(1 << 2);
    pub const FINISH: Hooks = Hooks(1 << 3);
    pub const SHUTDOWN: Hooks = Hooks(1 << 4);
    /// What a module that declares nothing gets: every hook is called.
    pub const ALL: Hooks = Hooks((1 << 5) - 1);

    pub const fn has(self, hook: Hooks) -> bool {
        self.0 & hook.0 == hook.0
    }
}

impl BitOr for Hooks {
    type Output = Hooks;

    fn bitor(self, other: Hooks) -> Hooks {
        Hooks(self.0 | other.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_combine_and_answer() {
        let set = Hooks::REQUEST | Hooks::FINISH;
        assert!(set.has(Hooks::REQUEST) && set.has(Hooks::FINISH));
        assert!(!set.has(Hooks::RESPONSE) && !set.has(Hooks::SHUTDOWN));
        assert!(Hooks::ALL.has(set) && Hooks::ALL.has(Hooks::STREAM_END));
        assert!(!Hooks::NONE.has(Hooks::REQUEST));
    }

    /// Every built-in module (one `impl Module for` per folder's `mod.rs`, `guard` generic over
    /// its families) declares its hooks,
    /// and declares exactly those it implements: a hook implemented but not declared would never
    /// run, one declared but not implemented would cost the boxed call this set saves.
    #[test]
    fn declarations_match_implementations() {
        let names = [
            ("request", "REQUEST"),
            ("response", "RESPONSE"),
            ("stream_end", "STREAM_END"),
            ("finish", "FINISH"),
            ("shutdown", "SHUTDOWN"),
        ];
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/modules");
        let mut checked = 0;
        for entry in std::fs::read_dir(&root).unwrap_or_else(|e| panic!("{root:?}: {e}")) {
            let path = entry.map(|e| e.path().join("mod.rs")).unwrap_or_default();
            let Ok(source) = std::fs::read_to_string(&path) else {
                continue;
            };
            let impl_line = source
                .lines()
                .find(|l| l.starts_with("impl") && l.contains(" Module for "));
            let Some(start) = impl_line.and_then(|line| source.find(line)) else {
                continue;
            };
            // The impl ends at the first closing brace in column 0 after it.
            let block = &source[start..];
            let block = &block[..block.find("\n}").map_or(block.len(), |end| end + 2)];
            let declared = block
                .find("fn hooks(&self) -> Hooks {")
                .map(|at| &block[at..at + block[at..].find('}').unwrap_or(0)])
                .unwrap_or_else(|| panic!("{path:?}: the module declares no `fn hooks`"));
            for (hook, constant) in names {
                let implemented = block.contains(&format!("async fn on_{hook}("));
                let listed = declared.contains(&format!("Hooks::{constant}"));
                assert_eq!(
                    implemented, listed,
                    "{path:?}: on_{hook} implemented: {implemented}, declared: {listed}"
                );
            }
            checked += 1;
        }
        assert!(checked >= 30, "only {checked} modules found under {root:?}");
    }
}
