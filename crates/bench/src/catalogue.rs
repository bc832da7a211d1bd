//! `bench catalogue`: what the catalogue modules cost when they are on but leave the request as
//! it is. Two Stockyard processes run side by side on the same mock, identical but for the
//! modules in [`CATALOGUE`], each enabled with a configuration that does its per-request work
//! (matching rules, estimating cost, counting the session, checking the address, looking for a
//! fixture, deciding whether to log, tagging, counting the context) without changing what goes upstream or comes back. Both get
//! the same requests at concurrency 64 in alternating (ABBA) rounds, non-streamed then streamed,
//! each carrying an `x-stockyard-session` header; the table gives each proxy's CPU per request
//! (its whole process, trace writer included), its throughput and p50, and the ratio.
//!
//! To add a module, add a `(name, config)` row to [`CATALOGUE`]: the config is the TOML under
//! its `[modules.NAME]` table (without `enabled`, which the run adds).

use std::fmt::Write as _;
use std::process::ExitCode;
use std::sync::Arc;

use crate::load::{self, Mode, Target};
use crate::metrics::{Side, compare};
use crate::procs::Scratch;
use crate::{Binaries, SHUTDOWN_TIMEOUT, group};

pub const USAGE: &str = "usage: bench catalogue [--requests N] [--rounds R]

Sends N requests per mode (default 40000; non-stream, then stream) at concurrency 64 to two
Stockyard processes, one with the catalogue modules on (configured not to change the request)
and one without them, in R alternating rounds (default 8), and prints each proxy's CPU per
request and the ratio (aim: within 1.2).";

const DEFAULT_REQUESTS: usize = 40_000;
const DEFAULT_ROUNDS: usize = 8;

/// The modules the "on" proxy enables, each with a config that leaves the request unchanged.
pub const CATALOGUE: &[(&str, &str)] = &[
    (
        "defaults_and_overrides",
        // The rule applies to every request; it strips a parameter the request does not carry.
        "[[modules.defaults_and_overrides.rules]]\nmodels = [\"gpt-4o-mini\"]\nstrip = [\"logit_bias\"]\n",
    ),
    (
        "cost_guard",
        // $1 a request and a stream: far above what a bench request costs, so never hit, but
        // every request is estimated and every stream's running cost counted.
        "max_request_nanos = 1000000000\nmax_stream_nanos = 1000000000\n",
    ),
    (
        "session_limits",
        "max_requests = 1000000000\nmax_tokens = 1000000000000\nmax_cost_nanos = 1000000000000\n",
    ),
    (
        "ip_filter",
        "allow = [\"127.0.0.0/8\", \"::1\"]\ndeny = [\"203.0.113.0/24\"]\n",
    ),
    (
        "fixtures",
        // Looked up on every request, matched by none: every request goes upstream.
        "[[modules.fixtures.fixtures]]\nprompt = \"a prompt the bench never sends\"\nanswer = \"unused\"\n",
    ),
    (
        "request_log",
        // Opted in for a key the bench does not use: decided per request, nothing stored.
        "keys = [\"not-the-bench-key\"]\n",
    ),
    (
        "tags",
        // Every request gets a tag from a rule: it goes in the trace, not upstream.
        "[[modules.tags.rules]]\ntag = \"bench\"\nmodel = \"gpt-4o-mini\"\n",
    ),
    (
        "route_rules",
        // Evaluated on every request (a regex on the last user message), matched by none.
        "[[modules.route_rules.rules]]\nname = \"never\"\nmodel = \"gpt-4o\"\nlast_user_matches = \"a phrase the bench never sends\"\n",
    ),
    (
        "context_fit",
        // Every conversation is counted against the model's window; none exceeds it.
        "strategy = \"drop_oldest\"\n",
    ),
    ("prompt_templates", ""),
    (
        "fan_out",
        // A group the bench never asks for: looked up per request, never taken.
        "[modules.fan_out.groups.unused]\nmodels = [\"gpt-4o-mini\", \"gpt-4o\"]\n",
    ),
];

/// The TOML that enables every module of [`CATALOGUE`].
pub fn catalogue_toml() -> String {
    let mut toml = String::new();
    for (name, config) in CATALOGUE {
        // `enabled` first: a config that opens a sub-table (`[[...rules]]`) must come after it.
        let _ = writeln!(toml, "\n[modules.{name}]\nenabled = true\n{config}");
    }
    toml
}

fn parse(args: &[String]) -> Result<(usize, usize), String> {
    let [requests, rounds] = crate::args::counts(
        args,
        [
            ("--requests", DEFAULT_REQUESTS),
            ("--rounds", DEFAULT_ROUNDS),
        ],
        USAGE,
    )?;
    Ok((requests, rounds.clamp(2, requests)))
}

pub fn main(args: &[String], binaries: Binaries) -> ExitCode {
    let (requests, rounds) = match parse(args) {
        Ok(parsed) => parsed,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    match run(requests, rounds, &binaries) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(message) => {
            eprintln!("bench catalogue: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Both sides send the same session header, so only the "on" side's modules differ.
fn with_session(side: &mut Side) -> Result<(), String> {
    let target = Target::for_model(
        side.label,
        side.addr,
        None,
        Some(group::SINGLE_ROUTE),
        load::MODEL,
    )?
    .with_bearer(crate::governance::STATIC_KEY)?
    .with_header("x-stockyard-session", "bench-session")?;
    side.target = Arc::new(target);
    Ok(())
}

fn run(requests: usize, rounds: usize, binaries: &Binaries) -> Result<bool, String> {
    let scratch = Scratch::create(false)?;
    let (mut mock, mock_addr) = crate::start_mock(&binaries.mock, &scratch.path, None)?;
    let base = std::fs::read_to_string(group::write_config(&scratch.path, mock_addr)?)
        .map_err(|e| format!("could not read the group config: {e}"))?;
    let mut off = Side::start("catalogue-off", binaries, &scratch, &base, mock_addr)?;
    let on_config = format!("{base}\n{}", catalogue_toml());
    let mut on = Side::start("catalogue-on", binaries, &scratch, &on_config, mock_addr)?;
    with_session(&mut off)?;
    with_session(&mut on)?;
    let names: Vec<&str> = CATALOGUE.iter().map(|(name, _)| *name).collect();
    eprintln!(
        "bench catalogue: modules on: {}; CPU from {} (proxy pids {} and {})",
        names.join(", "),
        on.cpu.describe(),
        off.proc.pid(),
        on.proc.pid()
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("could not start the tokio runtime: {e}"))?;
    let mut report = String::new();
    let _ = writeln!(
        report,
        "Catalogue modules on: {}\n\n| c={}, same mock, alternating rounds | without | with | with / without |",
        names.join(", "),
        crate::THROUGHPUT_CONCURRENCY
    );
    let _ = writeln!(report, "|---|---:|---:|---:|");
    let mut failed = false;
    for mode in [Mode::NonStream, Mode::Stream] {
        failed |= compare(&runtime, [&off, &on], mode, requests, rounds, &mut report)?;
        mock.check_alive()?;
        on.proc.check_alive()?;
        off.proc.check_alive()?;
    }
    on.proc.terminate(SHUTDOWN_TIMEOUT)?;
    off.proc.terminate(SHUTDOWN_TIMEOUT)?;
    print!("{report}");
    Ok(!failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_catalogue_module_gets_its_own_enabled_table() {
        let toml = catalogue_toml();
        for (name, _) in CATALOGUE {
            assert!(
                toml.contains(&format!("[modules.{name}]\nenabled = true")),
                "{toml}"
            );
        }
    }
}
