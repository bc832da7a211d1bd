//! `bench guardrails`: what the full guardrail set (`guard_policy`, `guard_injection`,
//! `guard_secrets`, `guard_pii`) costs, end to end through the real proxy. Two Stockyard
//! processes on the same mock, one with every guardrail on and one with none, take the same
//! requests in alternating (ABBA) rounds at concurrency 1: a chat with a 2 KB prompt, and a
//! streamed 2 KB answer in 100 chunks (the mock is told what to answer through the request's
//! `mock` object, which the proxy forwards). The table gives each proxy's CPU per request (its
//! whole process, trace writer included) and the latency, and the difference is what the
//! guardrails add. Then every line of each labelled corpus (tests/fixtures/guardrails/) goes
//! through the guarded proxy, and a 400 naming the family counts as a detection: precision and
//! recall per detector, measured through HTTP.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use crate::load::{self, Mode, Target};
use crate::procs::{CpuSource, Proc, Scratch, parse_addr};
use crate::stats::{CpuSnapshot, Measurement};
use crate::{Binaries, READY_TIMEOUT, SHUTDOWN_TIMEOUT, stockyard_command};

pub const USAGE: &str = "usage: bench guardrails [--requests N] [--corpus DIR]

Runs Stockyard twice on one mock, once with every guardrail on and once with none, sends each
N requests per scenario (default 2000) at concurrency 1 in alternating rounds (a 2 KB prompt;
a streamed 2 KB answer), prints proxy CPU and latency side by side, then precision and recall
per detector over the corpora in DIR (default tests/fixtures/guardrails) through the proxy.";

const DEFAULT_REQUESTS: usize = 2000;
const ROUNDS: usize = 4;
const SETTLE: Duration = Duration::from_millis(200);
const FAMILIES: &[(&str, &str)] = &[
    ("pii", "guard_pii"),
    ("secrets", "guard_secrets"),
    ("injection", "guard_injection"),
    ("policy", "guard_policy"),
];

/// Every guardrail on; the policy is the one the policy corpus is labelled for (the same as in
/// tests/guardrails_corpus.rs); personal data blocks so a detection is visible as a 400.
pub const GUARDED: &str = r#"
[modules.guard_policy]
enabled = true
detector = { deny = ["project falcon", "payroll export"], deny_regex = ['(?i)\binternal[-_ ]only\b'], allow = ["project falcon press release"], topics = { weapons = ["explosive", "detonator", "gunpowder", "shrapnel"], medical_advice = ["diagnose", "dosage", "prescription"] } }
[modules.guard_injection]
enabled = true
[modules.guard_secrets]
enabled = true
[modules.guard_pii]
enabled = true
action = "block"
"#;

fn parse(args: &[String]) -> Result<(usize, PathBuf), String> {
    let mut requests = DEFAULT_REQUESTS;
    let mut corpus = PathBuf::from("tests/fixtures/guardrails");
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        match flag.as_str() {
            "--requests" => {
                requests = it
                    .next()
                    .and_then(|v| v.parse::<usize>().ok())
                    .filter(|n| *n >= ROUNDS)
                    .ok_or_else(|| format!("--requests needs an integer >= {ROUNDS}"))?;
            }
            "--corpus" => {
                corpus = it
                    .next()
                    .map(PathBuf::from)
                    .ok_or_else(|| "--corpus needs a directory".to_string())?;
            }
            "-h" | "--help" => return Err(USAGE.to_string()),
            other => return Err(format!("unknown argument {other:?}\n\n{USAGE}")),
        }
    }
    Ok((requests, corpus))
}

pub fn main(args: &[String], binaries: Binaries) -> ExitCode {
    let (requests, corpus) = match parse(args) {
        Ok(parsed) => parsed,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    match run(requests, &corpus, &binaries) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(message) => {
            eprintln!("bench guardrails: {message}");
            ExitCode::FAILURE
        }
    }
}

/// About 2 KB of ordinary prose that no guardrail objects to.
/// A non-streamed chat for `model` whose prompt is the 2 KB text.
pub fn prompt_2kb_body(model: &str) -> String {
    let prompt = serde_json::Value::from(prompt_2kb());
    format!(r#"{{"model":"{model}","messages":[{{"role":"user","content":{prompt}}}]}}"#)
}

pub(crate) fn prompt_2kb() -> String {
    let sentence = "Please summarise the quarterly planning notes for the team, keeping the \
                    section headings, and list the open questions at the end. ";
    sentence.repeat(2048 / sentence.len() + 1)[..2048].to_string()
}

fn bodies() -> (String, String) {
    let non_stream = prompt_2kb_body(load::MODEL);
    let answer = serde_json::Value::from(prompt_2kb());
    let stream = format!(
        r#"{{"model":"{}","messages":[{{"role":"user","content":"Summarise the notes."}}],"stream":true,"mock":{{"content":{answer},"chunks":100}}}}"#,
        load::MODEL
    );
    (non_stream, stream)
}

struct Proxy {
    proc: Proc,
    addr: SocketAddr,
    cpu: CpuSource,
}

fn start_proxy(
    binaries: &Binaries,
    dir: &Path,
    name: &'static str,
    toml: &str,
    mock: SocketAddr,
) -> Result<Proxy, String> {
    let config = dir.join(format!("{name}.toml"));
    std::fs::write(&config, toml).map_err(|e| format!("writing {}: {e}", config.display()))?;
    let db = dir.join(format!("{name}.db"));
    let (proc, line) = Proc::start(
        name,
        stockyard_command(&binaries.stockyard, None, &db, &config, mock),
        dir,
        Some("listening on http://"),
        READY_TIMEOUT,
    )?;
    let addr = parse_addr(line.as_deref(), "", name)?;
    let cpu = CpuSource::detect(proc.pid());
    Ok(Proxy { proc, addr, cpu })
}

/// One target's results: latency and the proxy's CPU over its sections.
#[derive(Default)]
struct Side {
    m: Measurement,
    cpu_ns: u64,
    requests: u64,
}

fn run(requests: usize, corpus: &Path, binaries: &Binaries) -> Result<bool, String> {
    let scratch = Scratch::create(false)?;
    let (mut mock, mock_addr) = crate::start_mock(&binaries.mock, &scratch.path, None)?;
    let mut off = start_proxy(binaries, &scratch.path, "stockyard-off", "", mock_addr)?;
    let mut on = start_proxy(binaries, &scratch.path, "stockyard-on", GUARDED, mock_addr)?;
    let (non_stream, stream) = bodies();
    let target = |proxy: &Proxy, label: &'static str| -> Result<Arc<Target>, String> {
        Ok(Arc::new(
            Target::new(label, proxy.addr, None, None)?
                .with_bearer(crate::governance::STATIC_KEY)?
                .with_bodies(non_stream.clone(), stream.clone()),
        ))
    };
    let targets = [target(&off, "off")?, target(&on, "on")?];
    let proxies = [&off, &on];
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("could not start the tokio runtime: {e}"))?;
    let probe = || CpuSnapshot::default();
    let mut report = String::new();
    let mut ok = true;
    for mode in [Mode::NonStream, Mode::Stream] {
        eprintln!(
            "bench guardrails: {}: {requests} requests per target",
            mode.label()
        );
        let mut sides = [Side::default(), Side::default()];
        for (i, t) in targets.iter().enumerate() {
            runtime.block_on(load::warm_up(t.clone(), mode, 100, &mut sides[i].m));
        }
        for round in 0..ROUNDS {
            // ABBA: off, on, on, off, ...
            let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
            for i in order {
                let before = proxies[i].cpu.read_ns(proxies[i].proc.pid());
                runtime.block_on(load::latency(
                    targets[i].clone(),
                    mode,
                    requests / ROUNDS,
                    &probe,
                    &mut sides[i].m,
                ));
                std::thread::sleep(SETTLE);
                let after = proxies[i].cpu.read_ns(proxies[i].proc.pid());
                if let (Some(b), Some(a)) = (before, after) {
                    sides[i].cpu_ns += a.saturating_sub(b);
                    sides[i].requests += (requests / ROUNDS) as u64 + 1;
                }
            }
        }
        for side in &sides {
            if side.m.errors > 0 {
                ok = false;
                eprintln!(
                    "bench guardrails: {} errors; first: {}",
                    side.m.errors,
                    side.m.first_error.as_deref().unwrap_or_default()
                );
            }
        }
        table(&mut report, mode, &sides);
    }
    mock.check_alive()?;
    let _ = writeln!(
        report,
        "\n| detector (through the proxy) | positives | negatives | precision | recall |"
    );
    let _ = writeln!(report, "|---|---:|---:|---:|---:|");
    for (file, module) in FAMILIES {
        let path = corpus.join(format!("{file}.jsonl"));
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("reading {}: {e}", path.display()))?;
        let score = score(on.addr, module, &text)?;
        let _ = writeln!(
            report,
            "| {module} | {} | {} | {:.3} | {:.3} |",
            score.positives, score.negatives, score.precision, score.recall
        );
    }
    println!("{report}");
    off.proc.terminate(SHUTDOWN_TIMEOUT)?;
    on.proc.terminate(SHUTDOWN_TIMEOUT)?;
    Ok(ok)
}

fn table(out: &mut String, mode: Mode, sides: &[Side; 2]) {
    let what = match mode {
        Mode::NonStream => "2 KB prompt, non-stream",
        Mode::Stream => "streamed 2 KB answer, 100 chunks",
    };
    let _ = writeln!(
        out,
        "\n| {what}, c=1 | guardrails off | all guardrails on | added |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|");
    let cpu = |s: &Side| (s.requests > 0).then(|| s.cpu_ns as f64 / s.requests as f64 / 1000.0);
    let p = |s: &Side, q: f64| s.m.latency_percentile(q).map(|v| v as f64);
    let ttfb = |s: &Side| s.m.ttfb_percentile(50.0).map(|v| v as f64);
    let rows: [(&str, Option<f64>, Option<f64>); 4] = [
        ("proxy CPU µs/request", cpu(&sides[0]), cpu(&sides[1])),
        ("p50 latency µs", p(&sides[0], 50.0), p(&sides[1], 50.0)),
        ("p99 latency µs", p(&sides[0], 99.0), p(&sides[1], 99.0)),
        (
            "p50 time to first byte µs",
            ttfb(&sides[0]),
            ttfb(&sides[1]),
        ),
    ];
    for (label, a, b) in rows {
        let cell = |v: Option<f64>| v.map_or("n/a".to_string(), |v| format!("{v:.1}"));
        let added = match (a, b) {
            (Some(a), Some(b)) => format!("{:+.1}", b - a),
            _ => "–".to_string(),
        };
        let _ = writeln!(out, "| {label} | {} | {} | {added} |", cell(a), cell(b));
    }
}

struct Score {
    positives: u64,
    negatives: u64,
    precision: f64,
    recall: f64,
}

/// Sends each corpus line as a chat to the guarded proxy; a 400 naming `module` is a detection.
fn score(addr: SocketAddr, module: &str, corpus: &str) -> Result<Score, String> {
    let (mut tp, mut fp, mut fn_, mut positives, mut negatives) = (0u64, 0u64, 0u64, 0u64, 0u64);
    for line in corpus.lines() {
        let row: serde_json::Value =
            serde_json::from_str(line).map_err(|e| format!("corpus line: {e}"))?;
        let positive = row["positive"].as_bool().unwrap_or(false);
        let body = serde_json::json!({
            "model": load::MODEL,
            "messages": [{"role": "user", "content": row["text"]}],
        })
        .to_string();
        let (status, answer) = post(addr, &body)?;
        let detected = status == 400 && answer.contains(module);
        match (positive, detected) {
            (true, true) => tp += 1,
            (true, false) => fn_ += 1,
            (false, true) => fp += 1,
            (false, false) => {}
        }
        if positive {
            positives += 1;
        } else {
            negatives += 1;
        }
    }
    Ok(Score {
        positives,
        negatives,
        precision: tp as f64 / (tp + fp).max(1) as f64,
        recall: tp as f64 / (tp + fn_).max(1) as f64,
    })
}

/// One HTTP/1.1 request on its own connection; the status and the body.
fn post(addr: SocketAddr, body: &str) -> Result<(u16, String), String> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .map_err(|e| format!("connecting to {addr}: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    let request = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\nauthorization: Bearer {}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        crate::governance::STATIC_KEY,
        body.len()
    );
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("sending to {addr}: {e}"))?;
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .map_err(|e| format!("reading from {addr}: {e}"))?;
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Ok((status, response))
}
