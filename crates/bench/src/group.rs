//! The routing-group scenario's setup: the config file Stockyard is started with, which adds
//! three OpenAI-compatible providers (all pointing at the one mock) and a group [`GROUP`] of one
//! deployment on each. The plain model still comes from the `openai` preset that
//! `OPENAI_API_KEY`/`OPENAI_BASE_URL` set up, so one proxy serves both and the two targets
//! alternate in the same rounds. `main.rs` writes the file and names the [`Route`]s.
//!
//! Keep the file valid for `stockyard config check`: a bad one only shows up as Stockyard failing
//! to start.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::load::{MODEL, Route};

/// The group's name, which clients send as the model.
pub const GROUP: &str = "pool3";
/// One deployment per provider, all serving [`MODEL`].
pub const PROVIDERS: &[&str] = &["d1", "d2", "d3"];

/// What the group's answers must name in `x-stockyard-deployment`.
pub const GROUP_ROUTE: Route = Route {
    group: Some(GROUP),
    providers: PROVIDERS,
};

/// What the plain model's answers must name: the preset built from `OPENAI_*`.
pub const SINGLE_ROUTE: Route = Route {
    group: None,
    providers: &["openai"],
};

/// Writes the config into `dir` and returns its path.
pub fn write_config(dir: &Path, mock: SocketAddr) -> Result<PathBuf, String> {
    let path = dir.join("stockyard.toml");
    std::fs::write(&path, config(mock))
        .map_err(|e| format!("could not write {}: {e}", path.display()))?;
    Ok(path)
}

fn config(mock: SocketAddr) -> String {
    let mut toml = String::new();
    // A key per provider, so the mock could tell the deployments apart if it were asked to.
    for (i, provider) in PROVIDERS.iter().enumerate() {
        let _ = writeln!(
            toml,
            "[providers.{provider}]\n\
             kind = \"openai_compatible\"\n\
             base_url = \"http://{mock}/v1\"\n\
             api_key = \"sk-bench-{n}\"\n",
            n = i + 1
        );
    }
    // weighted_random with the default weight of 1: each deployment should get about a third.
    let _ = writeln!(
        toml,
        "[modules.routing.groups.{GROUP}]\nstrategy = \"weighted_random\"\n"
    );
    for provider in PROVIDERS {
        let _ = writeln!(
            toml,
            "[[modules.routing.groups.{GROUP}.deployments]]\n\
             provider = \"{provider}\"\n\
             model = \"{MODEL}\"\n"
        );
    }
    toml
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_declares_each_provider_and_deployment() {
        let toml = config(SocketAddr::from(([127, 0, 0, 1], 4010)));
        for (i, provider) in PROVIDERS.iter().enumerate() {
            assert!(toml.contains(&format!(
                "[providers.{provider}]\nkind = \"openai_compatible\"\n\
                 base_url = \"http://127.0.0.1:4010/v1\"\napi_key = \"sk-bench-{}\"\n",
                i + 1
            )));
            assert!(toml.contains(&format!(
                "[[modules.routing.groups.pool3.deployments]]\nprovider = \"{provider}\"\n\
                 model = \"gpt-4o-mini\"\n"
            )));
        }
        assert!(toml.contains("[modules.routing.groups.pool3]\nstrategy = \"weighted_random\"\n"));
    }
}
