//! The governance scenario: proxy CPU per request at c=64 with a virtual key whose budget and
//! rate limits are on (the `budgets` and `rate_limits` modules reserve and settle on every
//! request), beside the same run with a static key (which carries no grant, so both modules
//! pass it untouched). Both targets hit the same Stockyard in the same alternating rounds.
//!
//! Once a virtual key exists the proxy leaves local mode, so every Stockyard target sends a key:
//! the others send [`STATIC_KEY`], given to the server in `STOCKYARD_API_KEYS`.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use crate::stats::Measurement;

/// The static client key every non-governed Stockyard target sends.
pub const STATIC_KEY: &str = "sk-bench-static-0123456789abcdef";

/// Limits high enough never to refuse a benchmark request, yet checked on every one: a budget
/// of $1M a month, a billion requests and a quadrillion tokens per minute.
const BUDGET_USD: &str = "1000000";
const RPM: &str = "1000000000";
const TPM: &str = "1000000000000000";

/// Creates the governed virtual key offline in `db` (before the server starts) with the
/// `stockyard keys create` CLI; returns the key.
pub fn create_key(stockyard: &Path, db: &Path) -> Result<String, String> {
    let mut cmd = Command::new(stockyard);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("STOCKYARD_") {
            cmd.env_remove(key);
        }
    }
    cmd.env("STOCKYARD_DB", db).args([
        "keys",
        "create",
        "bench-governed",
        "--budget",
        BUDGET_USD,
        "--period",
        "month",
        "--rpm",
        RPM,
        "--tpm",
        TPM,
        "--json",
    ]);
    let out = cmd
        .output()
        .map_err(|e| format!("could not run `stockyard keys create`: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "`stockyard keys create` failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let created: serde_json::Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("`stockyard keys create --json` printed no JSON object: {e}"))?;
    created["key"]
        .as_str()
        .map(String::from)
        .ok_or_else(|| format!("`stockyard keys create --json` gave no key: {created}"))
}

/// The section comparing the two targets in `scenario` (c=64 non-stream).
pub fn table(scenario: &str, plain: &Measurement, governed: &Measurement) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| {scenario}, same proxy, same rounds | static key | virtual key + budget + rate limit | ratio |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|");
    let mut row = |label: &str, decimals: usize, f: &dyn Fn(&Measurement) -> Option<f64>| {
        let (a, b) = (f(plain), f(governed));
        let cell = |v: Option<f64>| v.map_or("n/a".to_owned(), |v| format!("{v:.decimals$}"));
        let ratio = match (a, b) {
            (Some(a), Some(b)) if a > 0.0 => format!("{:.2}", b / a),
            _ => "–".to_owned(),
        };
        let _ = writeln!(out, "| {label} | {} | {} | {ratio} |", cell(a), cell(b));
    };
    row("proxy CPU µs/request", 1, &|m| m.proxy_us_per_request());
    row("req/s", 0, &|m| m.requests_per_s());
    row("p50 µs", 0, &|m| {
        m.latency_percentile(50.0).map(|v| v as f64)
    });
    row("errors", 0, &|m| Some(m.errors as f64));
    out
}
