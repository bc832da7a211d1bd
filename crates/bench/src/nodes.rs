//! `bench nodes`: what sharing a store costs. One run starts three set-ups on the same mock and
//! gives them the same requests at concurrency 64 in rotating rounds (ABC, CBA, ...):
//!
//! - one Stockyard node on SQLite (its own file);
//! - one node on PostgreSQL (a schema of its own);
//! - three nodes on PostgreSQL (one schema, the ledger key shared as a deployment must), with
//!   each round's requests and clients split evenly over the three at once;
//! - for reference, one more PostgreSQL node given what each of the three gets: a third of the
//!   clients and requests. A process serving less load spends more CPU per request (fewer
//!   requests per wake-up, per batch), so this row tells that effect from sharing a store.
//!
//! Each node's CPU is read from its own pid over every round plus a settle pause (so the batched
//! trace writer is charged), and divided by the requests that node served. PostgreSQL's CPU is
//! the sum over every `postgres` process in `/proc` (backends, WAL writer, checkpointer), so the
//! server should have no other clients while this runs. The report ends with the two stated
//! aims: each of three nodes within 10% of one PostgreSQL node's proxy CPU per request, and
//! PostgreSQL at most 20% above SQLite.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::load::{self, Mode, Target};
use crate::procs::{CpuSource, Proc, Scratch, parse_addr, stat_ticks, ticks_per_second};
use crate::stats::{CpuCharge, CpuSnapshot, Measurement};
use crate::{Binaries, READY_TIMEOUT, SHUTDOWN_TIMEOUT, THROUGHPUT_CONCURRENCY, group};

pub const USAGE: &str = "usage: bench nodes [--requests N] [--rounds R]

Runs one Stockyard node on SQLite, one on PostgreSQL and three on PostgreSQL (load spread over
the three), N non-stream requests each (default 24000) at concurrency 64 in R rotating rounds
(default 6), plus one PostgreSQL node given a third of that (what each of the three gets) and,
as a control, three SQLite nodes that share nothing, loaded like the three; it
prints each set-up's throughput, each node's CPU per request and PostgreSQL's
CPU per request. The server is STOCKYARD_BENCH_PG (default
postgres://postgres@127.0.0.1:5432/test); each set-up gets a schema of its own, dropped after.";

const DEFAULT_REQUESTS: usize = 24_000;
const DEFAULT_ROUNDS: usize = 6;
const WARM_UP: usize = 1_000;
/// After each round, before CPU is read again: well over the writer's batch interval.
const SETTLE: Duration = Duration::from_millis(200);
/// Every node of one store must share it (it also hashes virtual keys).
const LEDGER_KEY: &str = "00112233445566778899aabbccddeeff";

pub fn main(args: &[String], binaries: Binaries) -> ExitCode {
    let parsed = crate::args::counts(
        args,
        [
            ("--requests", DEFAULT_REQUESTS),
            ("--rounds", DEFAULT_ROUNDS),
        ],
        USAGE,
    );
    let [requests, rounds] = match parsed {
        Ok(values) => values,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let base = std::env::var("STOCKYARD_BENCH_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    match run(&base, requests, rounds.clamp(1, requests), &binaries) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(message) => {
            eprintln!("bench nodes: {message}");
            ExitCode::FAILURE
        }
    }
}

/// A schema of its own on the server, dropped when it goes.
struct PgSchema {
    base: String,
    name: String,
}

impl PgSchema {
    fn create(base: &str, tag: &str) -> Result<PgSchema, String> {
        let name = format!("bench_nodes_{}_{tag}", std::process::id());
        sql(
            base,
            &format!("DROP SCHEMA IF EXISTS {name} CASCADE; CREATE SCHEMA {name}"),
        )?;
        Ok(PgSchema {
            base: base.to_string(),
            name,
        })
    }

    fn url(&self) -> String {
        let sep = if self.base.contains('?') { '&' } else { '?' };
        format!("{}{sep}options=-csearch_path%3D{}", self.base, self.name)
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let _ = sql(
            &self.base,
            &format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name),
        );
    }
}

fn sql(base: &str, statements: &str) -> Result<(), String> {
    // The bench's own schema work goes without TLS: the driver here knows neither `verify-*`
    // nor `sslrootcert`, which the nodes themselves read from the same URL.
    let (address, query) = base.split_once('?').unwrap_or((base, ""));
    let kept: Vec<&str> = query
        .split('&')
        .filter(|p| !p.is_empty() && !p.starts_with("sslmode=") && !p.starts_with("sslrootcert="))
        .collect();
    let plain = if kept.is_empty() {
        address.to_string()
    } else {
        format!("{address}?{}", kept.join("&"))
    };
    let mut client = postgres::Client::connect(&plain, postgres::NoTls).map_err(|e| {
        format!(
            "cannot reach PostgreSQL at {} (set STOCKYARD_BENCH_PG): {e}",
            without_credentials(address)
        )
    })?;
    client
        .batch_execute(statements)
        .map_err(|e| format!("{statements}: {e}"))
}

/// `scheme://user:password@host/db` as `scheme://***@host/db`, for messages.
fn without_credentials(url: &str) -> String {
    match (url.split_once("://"), url.rsplit_once('@')) {
        (Some((scheme, _)), Some((_, rest))) => format!("{scheme}://***@{rest}"),
        _ => url.to_string(),
    }
}

/// One node: its process, its target and the CPU and requests charged to it.
struct Node {
    proc: Proc,
    target: Arc<Target>,
    cpu: CpuSource,
    charge: CpuCharge,
}

impl Node {
    fn start(
        name: &'static str,
        binaries: &Binaries,
        scratch: &Path,
        config: &Path,
        mock: SocketAddr,
        store: Option<&str>,
    ) -> Result<Node, String> {
        let db = scratch.join(format!("{name}.db"));
        let mut cmd = crate::stockyard_command(&binaries.stockyard, None, &db, config, mock);
        if let Some(url) = store {
            cmd.args(["--store", url]);
        }
        cmd.env("STOCKYARD_LEDGER_KEY", LEDGER_KEY);
        let (proc, line) = Proc::start(
            name,
            cmd,
            scratch,
            Some("listening on http://"),
            READY_TIMEOUT,
        )?;
        let addr = parse_addr(line.as_deref(), "", "stockyard")?;
        let target = Arc::new(
            Target::for_model(name, addr, None, Some(group::SINGLE_ROUTE), load::MODEL)?
                .with_bearer(crate::governance::STATIC_KEY)?,
        );
        let cpu = CpuSource::detect(proc.pid());
        Ok(Node {
            proc,
            target,
            cpu,
            charge: CpuCharge::default(),
        })
    }
}

/// One set-up: its nodes, what they measured together, and PostgreSQL's CPU during its rounds.
struct Setup {
    label: &'static str,
    nodes: Vec<Node>,
    /// The clients and the share of each round's requests this set-up gets (1 or 3 of 3).
    clients: usize,
    thirds: usize,
    measured: Vec<Measurement>,
    wall: Duration,
    ok: u64,
    pg: Option<CpuCharge>,
}

fn run(base: &str, requests: usize, rounds: usize, binaries: &Binaries) -> Result<bool, String> {
    let scratch = Scratch::create(false)?;
    let one_schema = PgSchema::create(base, "one")?;
    let three_schema = PgSchema::create(base, "three")?;
    let third_schema = PgSchema::create(base, "third")?;
    let (mut mock, mock_addr) = crate::start_mock(&binaries.mock, &scratch.path, None)?;
    let config = group::write_config(&scratch.path, mock_addr)?;
    let start = |name, store: Option<&str>| {
        Node::start(name, binaries, &scratch.path, &config, mock_addr, store)
    };
    let three_url = three_schema.url();
    let mut setups = [
        Setup::new("1 node, SQLite", vec![start("sqlite-node", None)?], false),
        Setup::new(
            "1 node, PostgreSQL",
            vec![start("pg-node", Some(&one_schema.url()))?],
            true,
        ),
        Setup::new(
            "3 nodes, PostgreSQL",
            vec![
                start("pg3-node-1", Some(&three_url))?,
                start("pg3-node-2", Some(&three_url))?,
                start("pg3-node-3", Some(&three_url))?,
            ],
            true,
        ),
        Setup::new(
            "1 node, PostgreSQL, a third of the load",
            vec![start("pg-third-node", Some(&third_schema.url()))?],
            true,
        )
        .third(),
        // The control: three nodes that share nothing (a SQLite file each), loaded as the three
        // PostgreSQL nodes are. What they cost over one SQLite node is what running three
        // proxies on these cores costs, whatever the store.
        Setup::new(
            "3 nodes, SQLite each (nothing shared)",
            vec![
                start("sqlite3-node-1", None)?,
                start("sqlite3-node-2", None)?,
                start("sqlite3-node-3", None)?,
            ],
            false,
        ),
    ];
    let postgres_seen = postgres_pids().len();
    eprintln!(
        "bench nodes: {requests} requests per set-up in {rounds} rounds; PostgreSQL CPU from {} \
         postgres processes in /proc",
        postgres_seen
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("could not start the tokio runtime: {e}"))?;
    for setup in &setups {
        for node in &setup.nodes {
            let mut warm = Measurement::default();
            runtime.block_on(load::throughput(
                node.target.clone(),
                Mode::NonStream,
                WARM_UP,
                THROUGHPUT_CONCURRENCY,
                &CpuSnapshot::default,
                &mut warm,
            ));
        }
    }
    let per_round = requests / rounds;
    for round in 0..rounds {
        // ABCD, DCBA, ...: a noisy moment falls on every set-up alike over the run.
        let mut order = [0, 1, 2, 3, 4];
        if round % 2 == 1 {
            order.reverse();
        }
        for i in order {
            let share = per_round * setups[i].thirds / 3;
            setups[i].round(&runtime, share)?;
        }
        mock.check_alive()?;
    }
    let report = report(&setups, postgres_seen > 0);
    for setup in &mut setups {
        for node in &mut setup.nodes {
            node.proc.terminate(SHUTDOWN_TIMEOUT)?;
        }
    }
    print!("{report}");
    Ok(setups
        .iter()
        .all(|s| s.measured.iter().all(|m| m.errors == 0)))
}

impl Setup {
    fn new(label: &'static str, nodes: Vec<Node>, on_postgres: bool) -> Setup {
        let measured = nodes.iter().map(|_| Measurement::default()).collect();
        Setup {
            label,
            nodes,
            clients: THROUGHPUT_CONCURRENCY,
            thirds: 3,
            measured,
            wall: Duration::ZERO,
            ok: 0,
            pg: on_postgres.then(CpuCharge::default),
        }
    }

    /// A third of the clients and of each round's requests.
    fn third(mut self) -> Setup {
        self.clients = THROUGHPUT_CONCURRENCY / 3;
        self.thirds = 1;
        self
    }

    /// `requests` split over the nodes, the clients too, all at once; each node charged its
    /// own CPU from before the round to a settle pause after it.
    fn round(&mut self, runtime: &tokio::runtime::Runtime, requests: usize) -> Result<(), String> {
        let n = self.nodes.len();
        let before: Vec<Option<u64>> = self
            .nodes
            .iter()
            .map(|node| node.cpu.read_ns(node.proc.pid()))
            .collect();
        let sent_before: Vec<u64> = self.nodes.iter().map(|node| sent(&node.target)).collect();
        let pg_before = postgres_cpu();
        let ok_before: u64 = self.measured.iter().map(|m| m.ok).sum();
        let started = Instant::now();
        let mut parts = std::mem::take(&mut self.measured);
        runtime.block_on(async {
            let mut tasks = tokio::task::JoinSet::new();
            for (i, (node, mut m)) in self.nodes.iter().zip(parts.drain(..)).enumerate() {
                let target = node.target.clone();
                let count = share(requests, n, i);
                let clients = share(self.clients, n, i);
                tasks.spawn(async move {
                    load::throughput(
                        target,
                        Mode::NonStream,
                        count,
                        clients,
                        &CpuSnapshot::default,
                        &mut m,
                    )
                    .await;
                    (i, m)
                });
            }
            let mut back: Vec<(usize, Measurement)> = tasks.join_all().await;
            back.sort_by_key(|(i, _)| *i);
            parts.extend(back.into_iter().map(|(_, m)| m));
        });
        self.measured = parts;
        self.wall += started.elapsed();
        self.ok += self.measured.iter().map(|m| m.ok).sum::<u64>() - ok_before;
        std::thread::sleep(SETTLE);
        let pg_after = postgres_cpu();
        let round_requests: u64 = self
            .nodes
            .iter()
            .zip(&sent_before)
            .map(|(node, b)| sent(&node.target) - b)
            .sum();
        if let Some(pg) = &mut self.pg {
            pg.ns += pg_delta(&pg_before, &pg_after);
            pg.requests += round_requests;
        }
        for (node, (b, sent_b)) in self
            .nodes
            .iter_mut()
            .zip(before.into_iter().zip(sent_before))
        {
            let after = node.cpu.read_ns(node.proc.pid());
            let (Some(b), Some(a)) = (b, after) else {
                return Err(format!("{}: CPU time could not be read", node.target.label));
            };
            node.charge.ns += a.saturating_sub(b);
            node.charge.requests += sent(&node.target) - sent_b;
            node.proc.check_alive()?;
        }
        Ok(())
    }
}

fn sent(target: &Target) -> u64 {
    target.sent.load(std::sync::atomic::Ordering::Relaxed)
}

/// Part `i` of `total` split into `n` near-equal parts.
fn share(total: usize, n: usize, i: usize) -> usize {
    total / n + usize::from(i < total % n)
}

/// Every process whose command name is `postgres`.
fn postgres_pids() -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|comm| comm.trim() == "postgres")
        })
        .collect()
}

/// CPU nanoseconds each postgres process has used so far.
fn postgres_cpu() -> BTreeMap<u32, u64> {
    let ticks = ticks_per_second().max(1);
    postgres_pids()
        .into_iter()
        .filter_map(|pid| Some((pid, stat_ticks(pid)? * 1_000_000_000 / ticks)))
        .collect()
}

/// CPU used between two readings; a backend that started meanwhile counts from zero, one that
/// ended meanwhile is lost (our nodes keep their connections, so theirs never end mid-run).
fn pg_delta(before: &BTreeMap<u32, u64>, after: &BTreeMap<u32, u64>) -> u64 {
    after
        .iter()
        .map(|(pid, ns)| ns.saturating_sub(before.get(pid).copied().unwrap_or(0)))
        .sum()
}

fn report(setups: &[Setup], postgres_visible: bool) -> String {
    let mut out = String::new();
    let cell = |v: Option<f64>, d: usize| v.map_or("n/a".into(), |v| format!("{v:.d$}"));
    let _ = writeln!(
        out,
        "| non-stream, rotating rounds | req/s (all nodes) | proxy CPU µs/request, each node | PostgreSQL CPU µs/request |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|");
    for s in setups {
        let secs = s.wall.as_secs_f64();
        let rps = (secs > 0.0).then(|| s.ok as f64 / secs);
        let nodes: Vec<String> = s
            .nodes
            .iter()
            .map(|n| cell(n.charge.us_per_request(), 1))
            .collect();
        let pg = match (&s.pg, postgres_visible) {
            (None, _) => "–".to_string(),
            (Some(_), false) => "n/a (no postgres process in /proc)".to_string(),
            (Some(pg), true) => cell(pg.us_per_request(), 1),
        };
        let _ = writeln!(
            out,
            "| {}, c={} | {} | {} | {} |",
            s.label,
            s.clients,
            cell(rps, 0),
            nodes.join(" / "),
            pg
        );
        for (node, m) in s.nodes.iter().zip(&s.measured) {
            if let Some(first) = &m.first_error {
                eprintln!(
                    "bench nodes: {}: {} errors; first: {first}",
                    node.target.label, m.errors
                );
            }
        }
    }
    let per_node = |s: &Setup, i: usize| s.nodes.get(i)?.charge.us_per_request();
    let (sqlite, one, three, third, control) =
        (&setups[0], &setups[1], &setups[2], &setups[3], &setups[4]);
    let worst_of = |setup: &Setup, against: f64| {
        (0..setup.nodes.len())
            .filter_map(|i| per_node(setup, i))
            .map(|v| v / against)
            .fold(0.0_f64, f64::max)
    };
    if let (Some(one_pg), Some(lite)) = (per_node(one, 0), per_node(sqlite, 0)) {
        let worst = worst_of(three, one_pg);
        let _ = writeln!(
            out,
            "\nEach of three nodes against one PostgreSQL node (proxy CPU per request): worst \
             {worst:.3} (aim: at most 1.10, {}).",
            if worst <= 1.10 { "met" } else { "not met" }
        );
        if let Some(alone) = per_node(third, 0) {
            let worst = worst_of(three, alone);
            let _ = writeln!(
                out,
                "Each of three nodes against one node given the same third of the load: worst \
                 {worst:.3} (what sharing the store costs, apart from the lighter load)."
            );
        }
        let _ = writeln!(
            out,
            "Control, three SQLite nodes that share nothing against one SQLite node: worst {:.3} \
             (what three proxies on these cores cost without any shared store).",
            worst_of(control, lite)
        );
        // Three proxies on two cores cost more per request than one whatever they share (the
        // control says how much); nodes on machines of their own would not pay that. What is
        // left once it is divided out is what sharing the store costs: the worst shared node
        // against the control nodes' mean.
        let control_ratios: Vec<f64> = (0..control.nodes.len())
            .filter_map(|i| per_node(control, i))
            .map(|v| v / lite)
            .collect();
        if !control_ratios.is_empty() {
            let co_location = control_ratios.iter().sum::<f64>() / control_ratios.len() as f64;
            let _ = writeln!(
                out,
                "Sharing the store, apart from co-location: worst of three PostgreSQL nodes \
                 against one, divided by the control's mean: {:.3} (what a node on a machine of \
                 its own would pay; at most 1.10 keeps nodes scaling linearly).",
                worst / co_location
            );
        }
        let ratio = one_pg / lite;
        let _ = writeln!(
            out,
            "One node, PostgreSQL against SQLite (proxy CPU per request): {ratio:.3} (aim: at \
             most 1.20, {}).",
            if ratio <= 1.20 { "met" } else { "not met" }
        );
    }
    out
}
