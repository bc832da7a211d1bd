//! `bench metrics`: the proxy's CPU per request with the `metrics` module on and off. Two
//! Stockyard processes run side by side on the same mock, identical but for
//! `[modules.metrics] enabled`, and get the same requests at concurrency 64 in alternating
//! (ABBA) rounds, non-streamed then streamed. Each round's CPU is read from that round's own
//! proxy process (its pid, through the kernel's per-process CPU clock or `/proc/PID/stat`),
//! from just before the round to a settle pause after it, so work the proxy defers (the batched
//! trace writer) is charged too. At the end, `/metrics` of the proxy with metrics on is scraped
//! and its request counter checked against the requests sent.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::load::{self, Mode, Target};
use crate::procs::{CpuSource, Proc, Scratch, parse_addr};
use crate::stats::{CpuCharge, CpuSnapshot, Measurement};
use crate::{
    Binaries, READY_TIMEOUT, SHUTDOWN_TIMEOUT, THROUGHPUT_CONCURRENCY, group, stockyard_command,
};

pub const USAGE: &str = "usage: bench metrics [--requests N] [--rounds R]

Sends N requests per mode (default 40000; non-stream, then stream) at concurrency 64 to two
Stockyard processes, one with the metrics module on and one with it off, in R alternating rounds
(default 8), and prints each proxy's CPU per request and the ratio.";

const DEFAULT_REQUESTS: usize = 40_000;
const DEFAULT_ROUNDS: usize = 8;
const WARM_UP: usize = 1_000;
/// After each round, before the CPU is read again: well over the writer's batch interval.
const SETTLE: Duration = Duration::from_millis(200);

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
            eprintln!("bench metrics: {message}");
            ExitCode::FAILURE
        }
    }
}

/// One proxy under test: its process, its target, its CPU source and what it was charged.
pub(crate) struct Side {
    pub label: &'static str,
    pub proc: Proc,
    pub addr: SocketAddr,
    pub target: Arc<Target>,
    pub cpu: CpuSource,
}

impl Side {
    pub(crate) fn start(
        label: &'static str,
        binaries: &Binaries,
        scratch: &Scratch,
        config_text: &str,
        mock: SocketAddr,
    ) -> Result<Side, String> {
        let config = scratch.path.join(format!("{label}.toml"));
        std::fs::write(&config, config_text)
            .map_err(|e| format!("could not write {}: {e}", config.display()))?;
        let db = scratch.path.join(format!("{label}.db"));
        let (proc, line) = Proc::start(
            "stockyard",
            stockyard_command(&binaries.stockyard, None, &db, &config, mock),
            &scratch.path,
            Some("listening on http://"),
            READY_TIMEOUT,
        )?;
        let addr = parse_addr(line.as_deref(), "", "stockyard")?;
        let target = Arc::new(
            Target::for_model(label, addr, None, Some(group::SINGLE_ROUTE), load::MODEL)?
                .with_bearer(crate::governance::STATIC_KEY)?,
        );
        // The proxy's own pid: the CPU read is this process's, never the generator's or the mock's.
        let cpu = CpuSource::detect(proc.pid());
        Ok(Side {
            label,
            proc,
            addr,
            target,
            cpu,
        })
    }
}

fn run(requests: usize, rounds: usize, binaries: &Binaries) -> Result<bool, String> {
    let scratch = Scratch::create(false)?;
    let (mut mock, mock_addr) = crate::start_mock(&binaries.mock, &scratch.path, None)?;
    let base = std::fs::read_to_string(group::write_config(&scratch.path, mock_addr)?)
        .map_err(|e| format!("could not read the group config: {e}"))?;
    let mut on = Side::start("metrics-on", binaries, &scratch, &base, mock_addr)?;
    let off_config = format!("{base}\n[modules.metrics]\nenabled = false\n");
    let mut off = Side::start("metrics-off", binaries, &scratch, &off_config, mock_addr)?;
    eprintln!(
        "bench metrics: CPU from {} (proxy pids {} and {})",
        on.cpu.describe(),
        on.proc.pid(),
        off.proc.pid()
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("could not start the tokio runtime: {e}"))?;
    let mut report = String::new();
    let _ = writeln!(
        report,
        "| c={THROUGHPUT_CONCURRENCY}, same mock, alternating rounds | metrics off | metrics on | on / off |"
    );
    let _ = writeln!(report, "|---|---:|---:|---:|");
    let mut failed = false;
    for mode in [Mode::NonStream, Mode::Stream] {
        failed |= compare(&runtime, [&off, &on], mode, requests, rounds, &mut report)?;
        mock.check_alive()?;
        on.proc.check_alive()?;
        off.proc.check_alive()?;
    }
    let counted = scrape_requests(on.addr)?;
    let sent = on.target.sent.load(Ordering::Relaxed);
    let _ = writeln!(
        report,
        "\n`/metrics` of the proxy with metrics on: stockyard_requests_total = {counted}, requests sent = {sent}"
    );
    failed |= counted != sent;
    on.proc.terminate(SHUTDOWN_TIMEOUT)?;
    off.proc.terminate(SHUTDOWN_TIMEOUT)?;
    print!("{report}");
    Ok(!failed)
}

/// Runs `mode` on `[off, on]` at concurrency 64 in alternating (ABBA) rounds after a warm-up,
/// charging each round's CPU to that side's process, and adds the rows (CPU per request, req/s,
/// p50) to `report`; whether any request failed.
pub(crate) fn compare(
    runtime: &tokio::runtime::Runtime,
    [off, on]: [&Side; 2],
    mode: Mode,
    requests: usize,
    rounds: usize,
    report: &mut String,
) -> Result<bool, String> {
    let probe = CpuSnapshot::default;
    let mut results = [
        (Measurement::default(), CpuCharge::default()),
        (Measurement::default(), CpuCharge::default()),
    ];
    for side in [on, off] {
        let mut warm = Measurement::default();
        runtime.block_on(load::throughput(
            side.target.clone(),
            mode,
            WARM_UP,
            THROUGHPUT_CONCURRENCY,
            &probe,
            &mut warm,
        ));
    }
    let per_round = requests / rounds;
    for round in 0..rounds {
        // ABBA: off, on, on, off, off, on, ...
        let first_off = round % 2 == 0;
        let order: [(usize, &Side); 2] = if first_off {
            [(0, off), (1, on)]
        } else {
            [(1, on), (0, off)]
        };
        for (slot, side) in order {
            let (measured, charge) = &mut results[slot];
            let sent_before = side.target.sent.load(Ordering::Relaxed);
            let before = side.cpu.read_ns(side.proc.pid());
            runtime.block_on(load::throughput(
                side.target.clone(),
                mode,
                per_round,
                THROUGHPUT_CONCURRENCY,
                &probe,
                measured,
            ));
            std::thread::sleep(SETTLE);
            let after = side.cpu.read_ns(side.proc.pid());
            let sent = side.target.sent.load(Ordering::Relaxed) - sent_before;
            match before.zip(after) {
                Some((b, a)) => {
                    charge.ns += a.saturating_sub(b);
                    charge.requests += sent;
                }
                None => return Err(format!("{}: CPU time could not be read", side.label)),
            }
        }
    }
    let [(off_m, off_cpu), (on_m, on_cpu)] = &results;
    for (m, label) in [(off_m, off.label), (on_m, on.label)] {
        if let Some(first) = &m.first_error {
            eprintln!("bench: {label}: {} errors; first: {first}", m.errors);
        }
    }
    let cell = |v: Option<f64>, d: usize| v.map_or("n/a".into(), |v| format!("{v:.d$}"));
    let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) if a > 0.0 => format!("{:.3}", b / a),
        _ => "–".into(),
    };
    let (a, b) = (off_cpu.us_per_request(), on_cpu.us_per_request());
    let _ = writeln!(
        report,
        "| {} proxy CPU µs/request | {} | {} | {} |",
        mode.label(),
        cell(a, 1),
        cell(b, 1),
        ratio(a, b)
    );
    let (a, b) = (off_m.requests_per_s(), on_m.requests_per_s());
    let _ = writeln!(
        report,
        "| {} req/s | {} | {} | {} |",
        mode.label(),
        cell(a, 0),
        cell(b, 0),
        ratio(a, b)
    );
    let p50 = |m: &Measurement| m.latency_percentile(50.0).map(|v| v as f64);
    let _ = writeln!(
        report,
        "| {} p50 µs | {} | {} | {} |",
        mode.label(),
        cell(p50(off_m), 0),
        cell(p50(on_m), 0),
        ratio(p50(off_m), p50(on_m))
    );
    Ok(off_m.errors + on_m.errors > 0)
}

/// The sum of `stockyard_requests_total` over its label sets, from `GET /metrics`.
fn scrape_requests(addr: SocketAddr) -> Result<u64, String> {
    let mut stream =
        TcpStream::connect(addr).map_err(|e| format!("could not reach /metrics: {e}"))?;
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| format!("/metrics: {e}"))?;
    let mut text = String::new();
    stream
        .read_to_string(&mut text)
        .map_err(|e| format!("/metrics: {e}"))?;
    let total: f64 = text
        .lines()
        .filter(|l| l.starts_with("stockyard_requests_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    Ok(total as u64)
}
