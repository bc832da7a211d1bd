//! Logging: lines on stderr, filtered by `STOCKYARD_LOG` (e.g. `debug`,
//! `stockyard=debug,hyper=warn`), default `info`; human-readable, or one JSON object per line
//! with `--log-format json` (`STOCKYARD_LOG_FORMAT=json`), for a log collector. Each proxied
//! request runs in a `request` span carrying its `request_id`, so every line it logs, in either
//! format, names the request. Nothing logged carries a key: keys live in `Secret` and headers
//! carrying them are marked sensitive.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

pub fn init() {
    init_with(LogFormat::Text);
}

pub fn init_with(format: LogFormat) {
    let filter =
        EnvFilter::try_from_env("STOCKYARD_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        // Colour codes only for a person at a terminal: in a file or a log collector they are noise.
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
        // The current span's fields (the request id) go on every line, flattened beside the
        // event's own, so a collector can filter on `span.request_id`.
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    };
}
