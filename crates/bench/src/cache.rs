//! `bench cache`: what the caches cost and save.
//!
//! - Exact cache, through a real Stockyard with `[modules.cache]` on: latency (p50, p99) of a
//!   non-streamed hit and of a miss (a new prompt each time, stored as it passes) at
//!   concurrency 1 on one keep-alive connection, and the proxy's CPU per request of each.
//! - Semantic cache, in process: the lookup (a scan of one partition of unit vectors, 256
//!   dimensions, as the module does it) at 10k and 100k entries.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use stockyard::modules::semantic_cache::vectors::{Partition, normalise};

use crate::procs::{CpuSource, Proc, Scratch, parse_addr};
use crate::stats::percentile;
use crate::{Binaries, READY_TIMEOUT, SHUTDOWN_TIMEOUT, stockyard_command};

pub const USAGE: &str = "usage: bench cache [--requests N] [--queries N]

Exact cache: N hits and N misses (default 5000 each) through Stockyard at concurrency 1, with
latency p50/p99 and proxy CPU per request. Semantic cache: N lookups (default 1000) in a
partition of 10k and of 100k 256-dimension vectors, p50/p99.";

const DIMS: usize = 256;

fn parse(args: &[String]) -> Result<(usize, usize), String> {
    let [requests, queries] =
        crate::args::counts(args, [("--requests", 5000), ("--queries", 1000)], USAGE)?;
    Ok((requests, queries))
}

pub fn main(args: &[String], binaries: Binaries) -> ExitCode {
    let (requests, queries) = match parse(args) {
        Ok(parsed) => parsed,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let exact = exact(requests, &binaries);
    println!();
    semantic(queries);
    match exact {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("bench cache: {message}");
            ExitCode::FAILURE
        }
    }
}

/// One keep-alive HTTP/1 connection, one request at a time.
struct Conn {
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    addr: SocketAddr,
}

impl Conn {
    async fn open(addr: SocketAddr) -> Result<Conn, String> {
        let stream = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect {addr}: {e}"))?;
        let _ = stream.set_nodelay(true);
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("handshake: {e}"))?;
        tokio::spawn(conn);
        Ok(Conn { sender, addr })
    }

    /// Sends one chat request; returns its latency and `x-stockyard-cache`.
    async fn chat(&mut self, prompt: &str) -> Result<(Duration, String), String> {
        let body = format!(
            r#"{{"model":"gpt-4o-mini","messages":[{{"role":"user","content":"{prompt}"}}]}}"#
        );
        let request = Request::post("/v1/chat/completions")
            .header("host", self.addr.to_string())
            .header("content-type", "application/json")
            .header(
                "authorization",
                format!("Bearer {}", crate::governance::STATIC_KEY),
            )
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| e.to_string())?;
        let started = Instant::now();
        let response = self
            .sender
            .send_request(request)
            .await
            .map_err(|e| format!("request: {e}"))?;
        let status = response.status();
        let outcome = response
            .headers()
            .get("x-stockyard-cache")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("none")
            .to_string();
        response
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("body: {e}"))?;
        let took = started.elapsed();
        if !status.is_success() {
            return Err(format!("status {status}"));
        }
        Ok((took, outcome))
    }
}

struct Run {
    latencies_us: Vec<u64>,
    cpu_us_per_request: Option<f64>,
    wrong_outcome: usize,
}

async fn measure(
    conn: &mut Conn,
    pid: u32,
    cpu: CpuSource,
    count: usize,
    prompt: impl Fn(usize) -> String,
    expect: &str,
) -> Result<Run, String> {
    let before = cpu.read_ns(pid);
    let mut latencies_us = Vec::with_capacity(count);
    let mut wrong_outcome = 0;
    for i in 0..count {
        let (took, outcome) = conn.chat(&prompt(i)).await?;
        latencies_us.push(took.as_micros() as u64);
        wrong_outcome += usize::from(outcome != expect);
    }
    // Let deferred work (trace batches, cache writes) land in this window.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let after = cpu.read_ns(pid);
    latencies_us.sort_unstable();
    Ok(Run {
        latencies_us,
        cpu_us_per_request: before
            .zip(after)
            .map(|(b, a)| a.saturating_sub(b) as f64 / 1000.0 / count as f64),
        wrong_outcome,
    })
}

fn exact(requests: usize, binaries: &Binaries) -> Result<(), String> {
    let scratch = Scratch::create(false)?;
    let (mut mock, mock_addr) = crate::start_mock(&binaries.mock, &scratch.path, None)?;
    let db = scratch.path.join("cache.db");
    let config = scratch.path.join("stockyard.toml");
    std::fs::write(&config, "[modules.cache]\nenabled = true\n")
        .map_err(|e| format!("could not write {}: {e}", config.display()))?;
    let (mut stockyard, line) = Proc::start(
        "stockyard",
        stockyard_command(&binaries.stockyard, None, &db, &config, mock_addr),
        &scratch.path,
        Some("listening on http://"),
        READY_TIMEOUT,
    )?;
    let proxy = parse_addr(line.as_deref(), "", "stockyard")?;
    let pid = stockyard.pid();
    let cpu = CpuSource::detect(pid);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("could not start the tokio runtime: {e}"))?;
    let (hits, misses) = runtime.block_on(async {
        let mut conn = Conn::open(proxy).await?;
        // Warm-up: the connection, the upstream pool, the allocator.
        for i in 0..200 {
            conn.chat(&format!("warm up {i}")).await?;
        }
        conn.chat("the repeated question").await?;
        let hits = measure(
            &mut conn,
            pid,
            cpu,
            requests,
            |_| "the repeated question".to_string(),
            "hit",
        )
        .await?;
        let misses = measure(
            &mut conn,
            pid,
            cpu,
            requests,
            |i| format!("question number {i}"),
            "miss",
        )
        .await?;
        Ok::<_, String>((hits, misses))
    })?;
    mock.check_alive()?;
    stockyard.terminate(SHUTDOWN_TIMEOUT)?;

    println!("Exact cache, non-streamed chat, concurrency 1, {requests} requests each");
    println!("(proxy CPU from {})", cpu.describe());
    println!();
    println!("| | hit | miss (upstream call, stored) |");
    println!("|---|---:|---:|");
    let cell = |run: &Run, p: f64| {
        percentile(&run.latencies_us, p).map_or("n/a".into(), |v| v.to_string())
    };
    println!(
        "| p50 µs | {} | {} |",
        cell(&hits, 50.0),
        cell(&misses, 50.0)
    );
    println!(
        "| p99 µs | {} | {} |",
        cell(&hits, 99.0),
        cell(&misses, 99.0)
    );
    let cpu_cell = |run: &Run| {
        run.cpu_us_per_request
            .map_or("n/a".into(), |v| format!("{v:.1}"))
    };
    println!(
        "| proxy CPU µs/request | {} | {} |",
        cpu_cell(&hits),
        cpu_cell(&misses)
    );
    println!(
        "| unexpected x-stockyard-cache | {} | {} |",
        hits.wrong_outcome, misses.wrong_outcome
    );
    if hits.wrong_outcome + misses.wrong_outcome > 0 {
        return Err("some requests did not hit or miss as expected".into());
    }
    Ok(())
}

/// Deterministic unit vectors (an LCG), so runs compare.
fn unit_vector(seed: u64) -> Vec<f32> {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut v: Vec<f32> = (0..DIMS)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect();
    normalise(&mut v);
    v
}

/// This thread's CPU time, in nanoseconds: what a lookup costs, whatever else the machine runs
/// (wall time on a busy machine includes waiting for a core).
fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the duration of the call.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return 0;
    }
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn semantic(queries: usize) {
    println!("Semantic lookup, one partition, {DIMS} dimensions, {queries} queries, one thread");
    println!("(wall time, and this thread's CPU time, which leaves out waiting for a busy core)");
    println!();
    println!("| entries | p50 µs | p99 µs | max µs | CPU p50 µs | CPU p99 µs | found itself |");
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    for entries in [10_000usize, 100_000] {
        let mut partition = Partition::default();
        for i in 0..entries {
            partition.push(format!("k{i}"), &unit_vector(i as u64));
        }
        let mut took = Vec::with_capacity(queries);
        let mut cpu = Vec::with_capacity(queries);
        let mut found = 0;
        for q in 0..queries {
            let target = (q * 7919) % entries;
            let query = unit_vector(target as u64);
            let (started, cpu_started) = (Instant::now(), thread_cpu_ns());
            let nearest = partition.nearest(&query);
            took.push(started.elapsed().as_micros() as u64);
            cpu.push(thread_cpu_ns().saturating_sub(cpu_started) / 1000);
            found += usize::from(nearest.is_some_and(|n| n.key == format!("k{target}")));
        }
        took.sort_unstable();
        cpu.sort_unstable();
        let p = |v: &[u64], p: f64| percentile(v, p).map_or("n/a".into(), |v| v.to_string());
        println!(
            "| {entries} | {} | {} | {} | {} | {} | {found}/{queries} |",
            p(&took, 50.0),
            p(&took, 99.0),
            took.last().copied().unwrap_or(0),
            p(&cpu, 50.0),
            p(&cpu, 99.0),
        );
    }
}
