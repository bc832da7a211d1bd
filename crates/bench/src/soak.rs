//! `bench soak`: a long run at concurrency 64 (1,000,000 requests by default, alternating
//! non-streamed and streamed chat in blocks), reporting Stockyard's resident memory after every
//! block of 100,000 requests and, after a graceful stop, whether every request left a trace row.
//! Memory that grows block after block is a leak; a peak that stays put is the goal.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use crate::load::{self, Mode, Target};
use crate::procs::{Pinning, Scratch, count_traces};
use crate::stats::{CpuSnapshot, Measurement};
use crate::{Binaries, SHUTDOWN_TIMEOUT, THROUGHPUT_CONCURRENCY, group};

pub const USAGE: &str = "usage: bench soak [--requests N] [--block N]

Sends N requests (default 1000000) through Stockyard at concurrency 64, in blocks of --block
(default 100000) alternating non-streamed and streamed chat, and prints the proxy's resident and
peak memory after each block, then the trace rows written against the requests sent.";

const DEFAULT_REQUESTS: usize = 1_000_000;
const DEFAULT_BLOCK: usize = 100_000;

fn parse(args: &[String]) -> Result<(usize, usize), String> {
    let [requests, block] = crate::args::counts(
        args,
        [("--requests", DEFAULT_REQUESTS), ("--block", DEFAULT_BLOCK)],
        USAGE,
    )?;
    Ok((requests, block.min(requests)))
}

pub fn main(args: &[String], binaries: Binaries) -> ExitCode {
    let (requests, block) = match parse(args) {
        Ok(parsed) => parsed,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    match run(requests, block, &binaries) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(message) => {
            eprintln!("bench soak: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Resident memory (`VmRSS`) of `pid`, in kB.
fn rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let value = status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?;
    value.trim().trim_end_matches("kB").trim().parse().ok()
}

fn run(requests: usize, block: usize, binaries: &Binaries) -> Result<bool, String> {
    let scratch = Scratch::create(false)?;
    // Pinned as the main bench pins, so the soak's proxy runs under the same conditions.
    let pinning = Pinning::choose();
    eprintln!("bench soak: {}", pinning.note);
    let (mut mock, mock_addr) = crate::start_mock(&binaries.mock, &scratch.path, pinning.mock_cpu)?;
    let db = scratch.path.join("soak.db");
    let config = group::write_config(&scratch.path, mock_addr)?;
    let (mut stockyard, proxy_addr) = crate::start_stockyard(
        binaries,
        pinning.proxy_cpu,
        &scratch.path,
        &db,
        &config,
        mock_addr,
    )?;
    let target = Arc::new(Target::stockyard(
        proxy_addr,
        crate::governance::STATIC_KEY,
    )?);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("could not start the tokio runtime: {e}"))?;
    let probe = || CpuSnapshot::default();

    println!("| requests sent | mode of block | block req/s | RSS MB | peak RSS MB | errors |");
    println!("|---|---|---|---|---|---|");
    let started = Instant::now();
    let mut done = 0;
    let mut errors = 0;
    let mut index = 0;
    while done < requests {
        let count = block.min(requests - done);
        let mode = if index % 2 == 0 {
            Mode::NonStream
        } else {
            Mode::Stream
        };
        let mut measured = Measurement::default();
        let block_started = Instant::now();
        runtime.block_on(load::throughput(
            target.clone(),
            mode,
            count,
            THROUGHPUT_CONCURRENCY,
            &probe,
            &mut measured,
        ));
        done += count;
        index += 1;
        errors += measured.errors;
        if let Some(first) = &measured.first_error {
            eprintln!("bench soak: {} errors; first: {first}", measured.errors);
        }
        let mb =
            |kb: Option<u64>| kb.map_or("?".to_string(), |kb| format!("{:.1}", kb as f64 / 1024.0));
        println!(
            "| {done} | {} | {:.0} | {} | {} | {} |",
            mode.label(),
            count as f64 / block_started.elapsed().as_secs_f64(),
            mb(rss_kb(stockyard.pid())),
            mb(crate::procs::peak_rss_kb(stockyard.pid())),
            measured.errors
        );
        mock.check_alive()?;
        stockyard.check_alive()?;
    }
    let sent = target.sent.load(Ordering::Relaxed);
    stockyard.terminate(SHUTDOWN_TIMEOUT)?;
    let rows = count_traces(&db)?;
    println!();
    println!(
        "{} requests in {:.0}s; trace rows written / requests sent: {rows} / {sent} (lost {})",
        done,
        started.elapsed().as_secs_f64(),
        sent.saturating_sub(rows)
    );
    Ok(errors == 0 && rows == sent)
}
