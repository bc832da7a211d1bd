//! Which asynchronous hooks a module implements, so the chain calls only those.
//!
//! Each async hook is an `async_trait` method: calling one boxes its future, even the default that
//! does nothing. With some twenty modules on the chain, calling every hook of every module cost a
//! request a few thousand instructions of allocation and dispatch for no work. A module declares
//! its hooks in [`super::Module::hooks`]; the chain keeps one list per hook.
//!
//! Most modules never wait in `on_request`, `on_response` or `on_finish`. They implement the plain
//! twin instead (`on_request_now`, ...), declared with `REQUEST_NOW` and so on: the chain calls it
//! in the same place of the same list, without the boxed future (an allocation, a copy of the
//! future's state and an indirect poll per module per request). A module that does wait, but only
//! for some requests (those under a virtual key, or on one endpoint), answers `has_work` for the
//! others, and the chain skips its waiting hook for them.
//! `declarations_match_implementations` (below) reads the module sources and fails when a module
//! implements a hook it does not declare, so a declaration cannot silently switch a hook off.

use std::ops::BitOr;

/// A set of hooks: the async ones (`on_request`, `on_response`, `on_stream_end`, `on_finish`,
/// `on_shutdown`) and the plain twins of three of them (`on_request_now`, `on_response_now`,
/// `on_finish_now`). `on_headers` and `on_event` are plain calls on every module and need no
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
    pub const REQUEST_NOW: Hooks = Hooks(1 << 5);
    pub const RESPONSE_NOW: Hooks = Hooks(1 << 6);
    pub const FINISH_NOW: Hooks = Hooks(1 << 7);
    /// What a module that declares nothing gets: every async hook is called. The plain twins'
    /// defaults do nothing, so leaving them out keeps a module that declares nothing correct.
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
        assert!(!Hooks::ALL.has(Hooks::REQUEST_NOW) && !Hooks::ALL.has(Hooks::FINISH_NOW));
        assert!(!Hooks::REQUEST_NOW.has(Hooks::REQUEST));
    }

    /// Every built-in module (one `impl Module for` per folder's `mod.rs`, `guard` generic over
    /// its families) declares its hooks,
    /// and declares exactly those it implements: a hook implemented but not declared would never
    /// run, one declared but not implemented would cost the boxed call this set saves. A module
    /// implements at most one of a hook's two forms, and a plain one that waits cannot compile.
    #[test]
    fn declarations_match_implementations() {
        let names = [
            ("async fn on_request(", "REQUEST"),
            ("async fn on_response(", "RESPONSE"),
            ("async fn on_stream_end(", "STREAM_END"),
            ("async fn on_finish(", "FINISH"),
            ("async fn on_shutdown(", "SHUTDOWN"),
            ("fn on_request_now(", "REQUEST_NOW"),
            ("fn on_response_now(", "RESPONSE_NOW"),
            ("fn on_finish_now(", "FINISH_NOW"),
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
            // Whole names: `REQUEST` must not be read out of `REQUEST_NOW`.
            let listed: Vec<&str> = declared
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .collect();
            for (signature, constant) in names {
                let implemented = block.contains(signature);
                let listed = listed.contains(&constant);
                assert_eq!(
                    implemented, listed,
                    "{path:?}: `{signature}` implemented: {implemented}, declared: {listed}"
                );
            }
            let twins = [
                ("REQUEST", "REQUEST_NOW"),
                ("RESPONSE", "RESPONSE_NOW"),
                ("FINISH", "FINISH_NOW"),
            ];
            for (hook, plain) in twins {
                assert!(
                    !(listed.contains(&hook) && listed.contains(&plain)),
                    "{path:?}: both forms of {hook} declared"
                );
            }
            checked += 1;
        }
        assert!(checked >= 30, "only {checked} modules found under {root:?}");
    }
}
