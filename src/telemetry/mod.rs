//! Logging: human-readable lines on stderr, filtered by `STOCKYARD_LOG` (e.g. `debug`,
//! `stockyard=debug,hyper=warn`), default `info`. Nothing logged carries a key: keys live in
//! `Secret` and headers carrying them are marked sensitive.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

pub fn init() {
    let filter =
        EnvFilter::try_from_env("STOCKYARD_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal: in a file or a log collector they are noise.
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}
