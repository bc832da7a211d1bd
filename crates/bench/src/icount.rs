//! `bench instructions`: instructions per request, counted by valgrind's callgrind, so a cost
//! that creeps into the request path shows up as a number that does not depend on how busy the
//! machine is. Stockyard runs under callgrind (the mock runs natively); for each scenario the
//! counters are zeroed after a warm-up, a fixed number of requests go through one at a time, the
//! trace writer gets time to commit them, and the counters are dumped. What the proxy did for
//! those requests, divided by their number, is the figure: parsing, the module chain, the
//! upstream call, the answer and the trace row with its share of the writer's batch. `bare-proxy`
//! is then counted the same way, so the report also gives the floor every hyper proxy pays and
//! Stockyard's own work above it.
//!
//! With `--check FILE` the run fails when a figure is more than [`TOLERANCE_PERCENT`] over the
//! one in FILE (`.ci/run` does this against `crates/bench/instructions.baseline`); `--write FILE`
//! records the figures as the new baseline.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::Arc;
use std::time::Duration;

use crate::load::{self, Mode, Target};
use crate::procs::parse_addr;
use crate::procs::{Proc, Scratch, find_on_path};
use crate::stats::Measurement;
use crate::{Binaries, READY_TIMEOUT, SHUTDOWN_TIMEOUT, group, proxy_env};

pub const USAGE: &str =
    "usage: bench instructions [--requests N] [--check FILE] [--write FILE] [--keep-tmp] [--catalogue]

Counts the instructions Stockyard executes per request (valgrind's callgrind), non-streamed and
streamed chat at concurrency 1 (and non-streamed with a virtual key whose budget and rate limits
are on), and prints them; then the same for bare-proxy (the floor: hyper forwarding, nothing else)
non-streamed and streamed, and Stockyard's own work, the difference. --check FILE fails when a
figure of Stockyard's exceeds FILE's
by more than 10%; --write FILE saves the figures as the baseline; --keep-tmp keeps the callgrind
dumps (for callgrind_annotate) and prints where; --catalogue turns on the catalogue modules
(`bench catalogue`'s set, configured not to change the request) and counts only the non-stream
and stream scenarios, to set beside a run without it.";

const TOLERANCE_PERCENT: u64 = 10;
const DEFAULT_REQUESTS: usize = 300;
const WARM_UP: usize = 50;
/// Longer than the writer's batch interval, so the counted requests' trace rows are committed
/// before the counters are read.
const SETTLE: Duration = Duration::from_millis(400);

struct Options {
    requests: usize,
    check: Option<PathBuf>,
    write: Option<PathBuf>,
    keep_tmp: bool,
    catalogue: bool,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut options = Options {
        requests: DEFAULT_REQUESTS,
        check: None,
        write: None,
        keep_tmp: false,
        catalogue: false,
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{flag} needs a value\n\n{USAGE}"))
        };
        match flag.as_str() {
            "--requests" => {
                options.requests =
                    value()?.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                        format!("--requests: expected a positive integer\n\n{USAGE}")
                    })?
            }
            "--check" => options.check = Some(PathBuf::from(value()?)),
            "--write" => options.write = Some(PathBuf::from(value()?)),
            "--keep-tmp" => options.keep_tmp = true,
            "--catalogue" => options.catalogue = true,
            "-h" | "--help" => return Err(USAGE.to_string()),
            other => return Err(format!("unknown argument {other:?}\n\n{USAGE}")),
        }
    }
    Ok(options)
}

pub fn main(args: &[String], binaries: Binaries) -> ExitCode {
    let options = match parse(args) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    match run(&options, &binaries) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(message) => {
            eprintln!("bench instructions: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(options: &Options, binaries: &Binaries) -> Result<bool, String> {
    let valgrind = find_on_path("valgrind")
        .ok_or("valgrind is not on PATH (Debian: apt-get install valgrind)")?;
    let control = find_on_path("callgrind_control")
        .ok_or("callgrind_control is not on PATH (it comes with valgrind)")?;
    let scratch = Scratch::create(options.keep_tmp)?;
    let (_mock, mock_addr) = crate::start_mock(&binaries.mock, &scratch.path, None)?;
    let config = group::write_config(&scratch.path, mock_addr)?;
    if options.catalogue {
        let base = std::fs::read_to_string(&config)
            .map_err(|e| format!("could not read the group config: {e}"))?;
        std::fs::write(
            &config,
            format!("{base}\n{}", crate::catalogue::catalogue_toml()),
        )
        .map_err(|e| format!("could not write {}: {e}", config.display()))?;
    }
    let db = scratch.path.join("icount.db");
    let governed_key = crate::governance::create_key(&binaries.stockyard, &db)?;
    let out_file = scratch.path.join("callgrind.out");
    let mut cmd = Command::new(&valgrind);
    cmd.arg("--tool=callgrind")
        .arg(format!("--callgrind-out-file={}", out_file.display()))
        .arg(&binaries.stockyard)
        .args(["serve", "--listen", "127.0.0.1:0", "--db"])
        .arg(&db)
        .arg("--config")
        .arg(&config);
    proxy_env(&mut cmd, mock_addr);
    // Under valgrind start-up is some fifty times slower.
    let (mut stockyard, line) = Proc::start(
        "stockyard",
        cmd,
        &scratch.path,
        Some("listening on http://"),
        READY_TIMEOUT * 4,
    )?;
    let proxy_addr = parse_addr(line.as_deref(), "", "stockyard")?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("could not start the tokio runtime: {e}"))?;

    // With a virtual key in the database the proxy loads the tokenizer on a thread of its own
    // at start-up; one governed request waits for that load to finish, so no scenario counts it.
    let first = Arc::new(Target::stockyard(proxy_addr, &governed_key)?);
    runtime.block_on(load::warm_up(
        first,
        Mode::NonStream,
        1,
        &mut Measurement::default(),
    ));

    let mut figures = Vec::new();
    // The governed scenario sends a virtual key with a budget and rate limits, so the budgets and
    // rate_limits modules reserve and settle on every request.
    let scenarios = [
        ("non-stream", Mode::NonStream, crate::governance::STATIC_KEY),
        ("stream", Mode::Stream, crate::governance::STATIC_KEY),
        (
            "governed non-stream",
            Mode::NonStream,
            governed_key.as_str(),
        ),
    ];
    // With the catalogue on, the governed scenario would measure governance, not the catalogue.
    let counted = if options.catalogue {
        2
    } else {
        scenarios.len()
    };
    for (dump, (label, mode, key)) in scenarios.into_iter().take(counted).enumerate() {
        let mut target = Target::stockyard(proxy_addr, key)?;
        if options.catalogue {
            // As `bench catalogue` sends it, so session_limits counts a session.
            target = target.with_header("x-stockyard-session", "bench-session")?;
        }
        let count = Counting {
            control: &control,
            pid: stockyard.pid(),
            dump: PathBuf::from(format!("{}.{}", out_file.display(), dump + 1)),
            requests: options.requests,
        };
        figures.push((label, count.per_request(&runtime, label, target, mode)?));
        stockyard.check_alive()?;
    }
    let _ = stockyard.terminate(SHUTDOWN_TIMEOUT);
    let floor = match &binaries.bare {
        Some(bare) if !options.catalogue => bare_floor(
            bare,
            &valgrind,
            &control,
            &scratch.path,
            mock_addr,
            &runtime,
            options,
        )?,
        _ => Vec::new(),
    };

    let baseline = match &options.check {
        Some(path) => Some(read_baseline(path)?),
        None => None,
    };
    println!("| scenario (c=1) | instructions/request | baseline | ratio |");
    println!("|---|---|---|---|");
    let mut within = true;
    for (label, figure) in &figures {
        let base = baseline
            .as_ref()
            .and_then(|b| b.iter().find(|(l, _)| l == label).map(|(_, n)| *n));
        let (base_text, ratio) = match base {
            Some(base) if base > 0 => {
                if figure * 100 > base * (100 + TOLERANCE_PERCENT) {
                    within = false;
                }
                (
                    base.to_string(),
                    format!("{:.3}", *figure as f64 / base as f64),
                )
            }
            _ => ("–".to_string(), "–".to_string()),
        };
        println!("| {label} | {figure} | {base_text} | {ratio} |");
    }
    // The floor is not checked: it moves only with hyper and tokio, and what it is for is the
    // difference, Stockyard's own work.
    for (label, bare) in &floor {
        if let Some((_, figure)) = figures.iter().find(|(l, _)| l == label) {
            println!(
                "| {label}: bare hyper (the floor) | {bare} | – | – |\n\
                 | {label}: Stockyard's own work (Stockyard − floor) | {} | – | – |",
                figure.saturating_sub(*bare)
            );
        }
    }
    if let Some(path) = &options.write {
        let text: String = figures
            .iter()
            .map(|(label, figure)| format!("{label} {figure}\n"))
            .collect();
        std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))?;
        eprintln!("bench instructions: wrote {}", path.display());
    }
    if !within {
        eprintln!(
            "bench instructions: a figure grew more than {TOLERANCE_PERCENT}% over the baseline; \
             find the cost (callgrind_annotate on a dump) or, if it is meant, rewrite the baseline \
             with --write"
        );
    }
    Ok(within)
}

/// How one scenario is counted: on the process `pid` runs under callgrind, into `dump`.
struct Counting<'a> {
    control: &'a Path,
    pid: u32,
    dump: PathBuf,
    requests: usize,
}

impl Counting<'_> {
    /// Warms up, zeroes the counters, sends the counted requests one at a time, lets the writer
    /// commit them, dumps, and divides.
    fn per_request(
        &self,
        runtime: &tokio::runtime::Runtime,
        label: &str,
        target: Target,
        mode: Mode,
    ) -> Result<u64, String> {
        let target = Arc::new(target);
        let mut measured = Measurement::default();
        runtime.block_on(load::warm_up(target.clone(), mode, WARM_UP, &mut measured));
        std::thread::sleep(SETTLE);
        callgrind(self.control, self.pid, "-z")?;
        runtime.block_on(load::warm_up(target, mode, self.requests, &mut measured));
        std::thread::sleep(SETTLE);
        callgrind(self.control, self.pid, "-d")?;
        if let Some(first) = &measured.first_error {
            return Err(format!(
                "{label}: {} requests failed; first: {first}",
                measured.errors
            ));
        }
        Ok(totals(&self.dump)? / self.requests as u64)
    }
}

/// The same count for `bare-proxy` (hyper forwarding with Stockyard's runtime, server and
/// upstream client, nothing else) in front of the same mock: non-streamed and streamed.
fn bare_floor(
    bare: &Path,
    valgrind: &Path,
    control: &Path,
    dir: &Path,
    mock: std::net::SocketAddr,
    runtime: &tokio::runtime::Runtime,
    options: &Options,
) -> Result<Vec<(&'static str, u64)>, String> {
    let out_file = dir.join("callgrind-bare.out");
    let mut cmd = Command::new(valgrind);
    cmd.arg("--tool=callgrind")
        .arg(format!("--callgrind-out-file={}", out_file.display()))
        .arg(bare)
        .arg(mock.to_string())
        .env("MIMALLOC_PURGE_DELAY", "0");
    let (mut proc, line) = Proc::start(
        "bare-proxy",
        cmd,
        dir,
        Some("listening on http://"),
        READY_TIMEOUT * 4,
    )?;
    let addr = parse_addr(line.as_deref(), "", "bare-proxy")?;
    let mut figures = Vec::new();
    for (dump, (label, mode)) in [("non-stream", Mode::NonStream), ("stream", Mode::Stream)]
        .into_iter()
        .enumerate()
    {
        let count = Counting {
            control,
            pid: proc.pid(),
            dump: PathBuf::from(format!("{}.{}", out_file.display(), dump + 1)),
            requests: options.requests,
        };
        let target = Target::new("bare hyper", addr, None, None)?;
        figures.push((label, count.per_request(runtime, label, target, mode)?));
        proc.check_alive()?;
    }
    let _ = proc.terminate(SHUTDOWN_TIMEOUT);
    Ok(figures)
}

fn callgrind(control: &Path, pid: u32, command: &str) -> Result<(), String> {
    let output = Command::new(control)
        .arg(command)
        .arg(pid.to_string())
        .output()
        .map_err(|e| format!("could not run callgrind_control: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "callgrind_control {command} {pid} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// The `totals:` (or `summary:`) line of a callgrind dump: instructions executed.
fn totals(path: &Path) -> Result<u64, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    text.lines()
        .find_map(|line| {
            line.strip_prefix("totals:")
                .or_else(|| line.strip_prefix("summary:"))
        })
        .and_then(|n| n.split_whitespace().next()?.parse().ok())
        .ok_or_else(|| format!("{}: no totals line", path.display()))
}

/// `LABEL COUNT` lines; `#` starts a comment.
fn read_baseline(path: &Path) -> Result<Vec<(String, u64)>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    text.lines()
        .map(|line| line.split('#').next().unwrap_or("").trim())
        .filter(|line| !line.is_empty())
        .map(|line| {
            let (label, count) = line
                .rsplit_once(' ')
                .ok_or_else(|| format!("{}: bad line {line:?}", path.display()))?;
            let count = count
                .parse()
                .map_err(|_| format!("{}: bad count in {line:?}", path.display()))?;
            Ok((label.trim().to_string(), count))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn baseline_lines_parse_with_comments() {
        let dir = std::env::temp_dir().join(format!("icount-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("baseline");
        let written = std::fs::write(
            &path,
            "# counted on x86_64\nnon-stream 120000\nstream 150000 # c=1\n",
        );
        assert!(written.is_ok());
        let parsed = read_baseline(&path).unwrap_or_default();
        assert_eq!(
            parsed,
            vec![
                ("non-stream".to_string(), 120_000),
                ("stream".to_string(), 150_000)
            ]
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
