//! `bench`: the side-by-side benchmark. It starts the release builds of `mock-upstream` and
//! `stockyard` (found next to its own executable), sends the same requests straight to the mock
//! and through the proxy, and prints a markdown table: latency at concurrency 1, throughput at
//! concurrency 64, the proxy's CPU per request and peak RSS, and whether every request left a
//! trace row. With `nginx` on `PATH`, a plain nginx reverse proxy runs too, as a floor; and
//! `bare-proxy` (`bare.rs`), hyper forwarding with nothing on top, as the floor of our stack.
//!
//! Stockyard is started with a config file (`group.rs`) that adds a routing group of three
//! deployments on the same mock. In the non-stream scenarios a fourth target sends the group's
//! name as the model, alternating in the same rounds with the plain model, and the table ends
//! with group-versus-single rows and how the group's requests were split. A last scenario
//! (`governance.rs`) compares, at c=64, a virtual key with a budget and rate limits on against
//! a static key, through the same proxy.
//!
//! Run it through `scripts/bench`, which builds first. Progress goes to stderr, the report to
//! stdout. The exit status is 1 if any request failed or a trace row went missing, so
//! `scripts/bench --quick` works as a smoke test.
//!
//! Start reading at [`run`]; `load.rs` is the HTTP side, `children.rs` the programs every mode
//! starts, `floors.rs` nginx and bare hyper, `procs.rs` the child processes and `/proc`,
//! `report.rs` the table, `group.rs` the routing group's config.
//!
//! Noise control: scenarios are split into rounds that alternate the targets in ABBA order, so a
//! noisy moment hits every target alike, and the mock and proxy are pinned to separate CPUs
//! where `taskset` allows.

#![deny(clippy::unwrap_used, clippy::expect_used)]

mod args;
mod bare;
mod cache;
mod catalogue;
mod children;
mod dashboard;
mod floors;
mod governance;
mod group;
mod guardrails;
mod icount;
mod load;
mod metrics;
mod nginx;
mod nodes;
mod procs;
mod report;
mod scan;
mod soak;
mod stats;

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

pub(crate) use children::{
    Binaries, locate_binaries, proxy_env, start_mock, start_stockyard, stockyard_command,
};
use load::{Mode, Target};
use procs::{CpuSource, Pinning, Scratch, count_traces};
use report::{Column, Kind, Scenario};
use stats::{CpuSnapshot, Measurement, Role};

/// Bound on waiting for a child's "listening on" line.
pub(crate) const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// Bound on Stockyard's graceful shutdown, which includes flushing queued trace rows.
pub(crate) const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);
/// Untimed requests per target before each latency scenario, so caches, allocator pools and the
/// proxy's upstream connection are warm.
const WARM_UP_REQUESTS: usize = 200;
pub(crate) const THROUGHPUT_CONCURRENCY: usize = 64;
/// Each scenario's requests are split into this many rounds, alternating targets between rounds.
const ROUNDS: usize = 4;
/// The pause after each section against a proxy before its CPU is read, so work it deferred
/// lands in that section's window. Well over Stockyard's trace-writer batch interval (50 ms by
/// default).
const SETTLE: Duration = Duration::from_millis(200);

fn main() -> ExitCode {
    let raw: Vec<String> = std::env::args().skip(1).collect();
    // In process: no server, so no binaries to find.
    if raw.first().map(String::as_str) == Some("scan") {
        return scan::main(&raw[1..]);
    }
    let mode: Option<fn(&[String], Binaries) -> ExitCode> = match raw.first().map(String::as_str) {
        Some("instructions") => Some(icount::main),
        Some("soak") => Some(soak::main),
        Some("cache") => Some(cache::main),
        Some("metrics") => Some(metrics::main),
        Some("guardrails") => Some(guardrails::main),
        Some("catalogue") => Some(catalogue::main),
        Some("dashboard") => Some(dashboard::main),
        Some("nodes") => Some(nodes::main),
        _ => None,
    };
    if let Some(mode) = mode {
        return match locate_binaries() {
            Ok(binaries) => mode(&raw[1..], binaries),
            Err(message) => {
                eprintln!("bench: {message}");
                ExitCode::FAILURE
            }
        };
    }
    let args = match args::parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(args::Stop::Help) => {
            println!("{}", args::USAGE);
            return ExitCode::SUCCESS;
        }
        Err(args::Stop::Usage(message)) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(message) => {
            eprintln!("bench: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Runs everything; `Ok(false)` means the report printed but something failed along the way.
///
/// Children are declared after `scratch`, so they are killed before the temp dir is removed, on
/// every exit path including `?`.
fn run(args: &args::Args) -> Result<bool, String> {
    let binaries = locate_binaries()?;
    let scratch = Scratch::create(args.keep_tmp)?;
    let pinning = Pinning::choose();
    let nproc = std::thread::available_parallelism().map_or(0, |n| n.get());
    eprintln!("bench: nproc={nproc}; {}", pinning.note);

    let (mut mock, mock_addr) = start_mock(&binaries.mock, &scratch.path, pinning.mock_cpu)?;

    let db = scratch.path.join("bench.db");
    let config = group::write_config(&scratch.path, mock_addr)?;
    let governed_key = governance::create_key(&binaries.stockyard, &db)?;
    let (mut stockyard, proxy_addr) = start_stockyard(
        &binaries,
        pinning.proxy_cpu,
        &scratch.path,
        &db,
        &config,
        mock_addr,
    )?;

    let (mut floors, floor_notes) =
        floors::start(&binaries, &scratch.path, mock_addr, pinning.proxy_cpu);
    eprintln!(
        "bench: mock on {mock_addr}, stockyard on {proxy_addr}; {}",
        floor_notes.join("; ")
    );

    let stockyard_target = |label, route, model| {
        Target::for_model(label, proxy_addr, Some(Role::Stockyard), Some(route), model)?
            .with_bearer(governance::STATIC_KEY)
            .map(Arc::new)
    };
    let governed_target = Arc::new(
        Target::for_model(
            "stockyard governed",
            proxy_addr,
            Some(Role::Stockyard),
            Some(group::SINGLE_ROUTE),
            load::MODEL,
        )?
        .with_bearer(&governed_key)?,
    );
    let mut targets = vec![
        Arc::new(Target::new("direct", mock_addr, None, None)?),
        stockyard_target("stockyard", group::SINGLE_ROUTE, load::MODEL)?,
    ];
    // Not a column: it has its own rows, against the plain model, at the end of the table.
    let group_target = stockyard_target("stockyard group", group::GROUP_ROUTE, group::GROUP)?;
    let mut columns = vec![
        Column {
            header: "direct",
            proxy: None,
            peak_rss_kb: None,
        },
        Column {
            header: "via stockyard",
            proxy: Some(Role::Stockyard),
            peak_rss_kb: None,
        },
    ];
    let mut watched = vec![(Role::Mock, mock.pid()), (Role::Stockyard, stockyard.pid())];
    for floor in &floors {
        targets.push(Arc::new(Target::new(
            floor.label,
            floor.addr,
            Some(floor.role),
            None,
        )?));
        columns.push(Column {
            header: floor.label,
            proxy: Some(floor.role),
            peak_rss_kb: None,
        });
        watched.push((floor.role, floor.proc.pid()));
    }
    let cpu_source = CpuSource::detect(mock.pid());
    let probe = move || -> CpuSnapshot {
        watched
            .iter()
            .map(|&(role, pid)| (role, cpu_source.read_ns(pid)))
            .collect()
    };

    // Two workers keep the generator cheap; it shares the machine with what it measures.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("could not start the tokio runtime: {e}"))?;
    // With a virtual key in the database the proxy loads the tokenizer on a thread of its own at
    // start-up (a one-time cost of a few hundred milliseconds of CPU). One governed request waits
    // for that load to end, so that no measured section is charged for it.
    runtime.block_on(load::warm_up(
        Arc::clone(&governed_target),
        Mode::NonStream,
        1,
        &mut Measurement::default(),
    ));

    let scenarios = [
        (Kind::Latency, Mode::NonStream),
        (Kind::Latency, Mode::Stream),
        (Kind::Throughput, Mode::NonStream),
        (Kind::Throughput, Mode::Stream),
    ]
    .map(|(kind, mode)| Scenario {
        name: format!(
            "c={} {}",
            match kind {
                Kind::Latency => 1,
                Kind::Throughput => THROUGHPUT_CONCURRENCY,
            },
            mode.label()
        ),
        kind,
        stream: mode == Mode::Stream,
    });

    let started = Instant::now();
    let mut results = Vec::with_capacity(scenarios.len());
    let mut group_results = Vec::with_capacity(scenarios.len());
    for (i, scenario) in scenarios.iter().enumerate() {
        let count = match scenario.kind {
            Kind::Latency => args.latency_requests,
            Kind::Throughput => args.throughput_requests,
        };
        // The group runs in the non-stream scenarios only, which isolates the cost of picking
        // a deployment. A stream through a group also holds its first frames for late commit
        // (`late_commit_ms`), a separate cost that would need a scenario of its own.
        let with_group = !scenario.stream;
        let mut run_targets = targets.clone();
        if with_group {
            run_targets.push(Arc::clone(&group_target));
        }
        eprintln!(
            "bench: [{}/{}] {}: {count} timed requests per target in {ROUNDS} rounds{}",
            i + 1,
            scenarios.len(),
            scenario.name,
            if with_group {
                format!(" (with {})", group::GROUP)
            } else {
                String::new()
            }
        );
        let mut per_target = run_scenario(&runtime, scenario, count, &run_targets, &probe);
        for (target, m) in run_targets.iter().zip(&per_target) {
            if let Some(first) = &m.first_error {
                eprintln!(
                    "bench:   {}: {} errors; first: {first}",
                    target.label, m.errors
                );
            }
        }
        group_results.push(if with_group { per_target.pop() } else { None });
        results.push(per_target);
        // A child that died mid-run would make every later number meaningless.
        mock.check_alive()?;
        stockyard.check_alive()?;
        for floor in &mut floors {
            floor.proc.check_alive()?;
        }
    }
    // Governance: the plain Stockyard target against the governed one, c=64 non-stream.
    let governance_scenario = Scenario {
        name: format!("c={THROUGHPUT_CONCURRENCY} non-stream"),
        kind: Kind::Throughput,
        stream: false,
    };
    eprintln!(
        "bench: [governance] {}: {} timed requests per target, static key vs governed key",
        governance_scenario.name, args.throughput_requests
    );
    let pair = [Arc::clone(&targets[1]), Arc::clone(&governed_target)];
    let governance_results = run_scenario(
        &runtime,
        &governance_scenario,
        args.throughput_requests,
        &pair,
        &probe,
    );
    stockyard.check_alive()?;
    let load_time = started.elapsed();

    columns[1].peak_rss_kb = procs::peak_rss_kb(stockyard.pid());
    for floor in &floors {
        if let Some(column) = columns.iter_mut().find(|c| c.proxy == Some(floor.role)) {
            column.peak_rss_kb = procs::peak_rss_kb(floor.proc.pid());
        }
    }

    // Stop the proxy the way an operator would, then count what it wrote.
    let sent = [&targets[1], &group_target, &governed_target]
        .iter()
        .map(|t| t.sent.load(Ordering::Relaxed))
        .sum::<u64>();
    let stop_started = Instant::now();
    let shutdown = stockyard.terminate(SHUTDOWN_TIMEOUT);
    let shutdown_note = match &shutdown {
        Ok(status) => format!(
            "stockyard exited {}ms after SIGTERM ({status})",
            stop_started.elapsed().as_millis()
        ),
        Err(e) => e.clone(),
    };
    let traces = match &shutdown {
        Ok(_) => count_traces(&db).map(|rows| (rows, sent)),
        Err(e) => Err(format!("not counted: {e}")),
    };

    let group_label = format!("group of {}", group::PROVIDERS.len());
    let table = report::table(&report::Inputs {
        columns: &columns,
        scenarios: &scenarios,
        results: &results,
        traces: traces.clone(),
        group: &group_results,
        group_label: &group_label,
    });

    println!("## Stockyard benchmark\n");
    println!("- machine: nproc={nproc}; {}", pinning.note);
    for note in &floor_notes {
        println!("- {note}");
    }
    println!(
        "- bare hyper is hyper forwarding with Stockyard's runtime, server and upstream client and \
         nothing else, so the gap above it is Stockyard's own work"
    );
    println!(
        "- requests per target: c=1 scenarios {} timed (+{WARM_UP_REQUESTS} warm-up), \
         c={THROUGHPUT_CONCURRENCY} scenarios {} timed; {ROUNDS} alternating rounds; \
         load phase took {:.1}s",
        args.latency_requests,
        args.throughput_requests,
        load_time.as_secs_f64()
    );
    println!(
        "- {group_label}: stockyard runs with `--config` declaring providers {} (all on the \
         mock) and group `{}` (weighted_random, one `{}` deployment on each); in the non-stream \
         scenarios `\"model\":\"{}\"` and `\"model\":\"{}\"` go to the same proxy in the \
         same rounds",
        group::PROVIDERS.join(", "),
        group::GROUP,
        load::MODEL,
        group::GROUP,
        load::MODEL
    );
    println!(
        "- ratio = via stockyard / direct; in the {group_label} rows, group / single; \
         \"served by\" counts the provider named in each answer's x-stockyard-deployment header"
    );
    println!(
        "- CPU time from {}; proxy CPU covers each target's sections (warm-ups included) plus \
         a {}ms settle after each, so deferred work such as trace writes is charged to the \
         target that caused it, over every request sent in them; mock CPU covers the timed \
         sections only\n",
        cpu_source.describe(),
        SETTLE.as_millis()
    );
    print!("{table}");
    println!();
    print!(
        "{}",
        governance::table(
            &governance_scenario.name,
            &governance_results[0],
            &governance_results[1],
        )
    );
    println!();
    match &traces {
        Ok((rows, sent)) => println!(
            "trace rows written / requests sent: {}",
            report::traces_text(*rows, *sent)
        ),
        Err(e) => println!("trace rows written / requests sent: unknown ({e})"),
    }
    println!("{shutdown_note}");

    let mut clean = shutdown.as_ref().is_ok_and(|s| s.success());
    if let Ok((rows, sent)) = traces {
        clean &= rows == sent;
    }
    for ((scenario, per_target), group_m) in scenarios.iter().zip(&results).zip(&group_results) {
        let all = targets.iter().zip(per_target);
        let all = all.chain(group_m.iter().map(|m| (&group_target, m)));
        for (target, m) in all {
            if let Some(first) = &m.first_error {
                clean = false;
                println!(
                    "errors in {} via {}: {}; first: {first}",
                    scenario.name, target.label, m.errors
                );
            }
        }
        // Thousands of requests with equal weights: a deployment that got none means routing
        // is broken, not unlucky.
        if let Some(m) = group_m {
            let idle: Vec<&str> = group::PROVIDERS
                .iter()
                .copied()
                .filter(|p| !m.served_by.contains_key(p))
                .collect();
            if !idle.is_empty() {
                clean = false;
                println!(
                    "in {}, group {} sent no request to {}",
                    scenario.name,
                    group::GROUP,
                    idle.join(", ")
                );
            }
        }
    }
    for (target, m) in pair.iter().zip(&governance_results) {
        if let Some(first) = &m.first_error {
            clean = false;
            println!(
                "errors in the governance run via {}: {}; first: {first}",
                target.label, m.errors
            );
        }
    }
    let stderr_lines = stockyard.stderr_line_count();
    if stderr_lines > 0 {
        println!(
            "\nstockyard wrote {stderr_lines} line(s) to stderr (STOCKYARD_LOG=warn); last ones:\n```\n{}\n```",
            stockyard.stderr_tail(20)
        );
    }
    if args.keep_tmp {
        println!("temp dir kept: {}", scratch.path.display());
    }
    Ok(clean)
}

/// One scenario against every target: warm-ups (latency only), then [`ROUNDS`] rounds in ABBA
/// order. Each target's proxy CPU is charged per section ([`section`]). Returns one measurement
/// per target, in the order of `targets`.
fn run_scenario(
    runtime: &tokio::runtime::Runtime,
    scenario: &Scenario,
    count: usize,
    targets: &[Arc<Target>],
    probe: &load::Probe,
) -> Vec<Measurement> {
    let mode = if scenario.stream {
        Mode::Stream
    } else {
        Mode::NonStream
    };
    let mut per_target: Vec<Measurement> = targets.iter().map(|_| Measurement::default()).collect();
    if scenario.kind == Kind::Latency {
        for (target, m) in targets.iter().zip(per_target.iter_mut()) {
            section(target, m, probe, |m| {
                runtime.block_on(load::warm_up(Arc::clone(target), mode, WARM_UP_REQUESTS, m));
            });
        }
    }
    for (round, round_count) in split(count, ROUNDS).into_iter().enumerate() {
        // ABBA order: the target that went first in one round goes last in the next, so drift
        // over time (thermal, page cache, the trace table growing) is shared out evenly.
        let mut order: Vec<(&Arc<Target>, &mut Measurement)> =
            targets.iter().zip(per_target.iter_mut()).collect();
        if round % 2 == 1 {
            order.reverse();
        }
        for (target, m) in order {
            section(target, m, probe, |m| {
                let target = Arc::clone(target);
                match scenario.kind {
                    Kind::Latency => {
                        runtime.block_on(load::latency(target, mode, round_count, probe, m));
                    }
                    Kind::Throughput => runtime.block_on(load::throughput(
                        target,
                        mode,
                        round_count,
                        THROUGHPUT_CONCURRENCY,
                        probe,
                        m,
                    )),
                }
            });
        }
    }
    per_target
}

/// Runs one stretch of load against `target` and, if it has a proxy, charges that proxy's CPU
/// from the start to [`SETTLE`] after the end to every request sent meanwhile. Sections are
/// charged rather than whole scenarios because one Stockyard serves two targets (the plain
/// model and the group); the proxy is idle between its sections, so little is left out.
fn section(
    target: &Target,
    m: &mut Measurement,
    probe: &load::Probe,
    run: impl FnOnce(&mut Measurement),
) {
    let Some(role) = target.proxy else {
        run(m);
        return;
    };
    let cpu_of = |snapshot: CpuSnapshot| {
        snapshot
            .into_iter()
            .find(|(r, _)| *r == role)
            .and_then(|(_, ns)| ns)
    };
    let sent_before = target.sent.load(Ordering::Relaxed);
    let before = cpu_of(probe());
    run(m);
    std::thread::sleep(SETTLE);
    let after = cpu_of(probe());
    let requests = target
        .sent
        .load(Ordering::Relaxed)
        .saturating_sub(sent_before);
    let ns = before.zip(after).map(|(b, a)| a.saturating_sub(b));
    m.add_proxy_cpu(ns, requests);
}

/// `total` split into `parts` near-equal counts, dropping empty ones.
fn split(total: usize, parts: usize) -> Vec<usize> {
    let parts = parts.max(1);
    (0..parts)
        .map(|i| total / parts + usize::from(i < total % parts))
        .filter(|&n| n > 0)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_keeps_the_total() {
        assert_eq!(split(2000, 4), vec![500, 500, 500, 500]);
        assert_eq!(split(10, 4), vec![3, 3, 2, 2]);
        assert_eq!(split(2, 4), vec![1, 1]);
    }
}
