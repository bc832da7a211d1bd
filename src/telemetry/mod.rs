//! Logging: human-readable lines on stderr, filtered by `STOCKYARD_LOG` (e.g. `debug`,
//! `stockyard=debug,hyper=warn`), default `info`. Nothing logged carries a key: keys live in
//! `Secret` and headers carrying them are marked sensitive.

use tracing_subscriber::EnvFilter;

pub fn init() {
    let filter =
        EnvFilter::try_from_env("STOCKYARD_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
