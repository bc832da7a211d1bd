//! `bench dashboard`: the web console at scale. Seeds a temp database with N synthetic traces
//! (default 1,000,000, over 30 days; the same generator as `stockyard dev seed`), starts the
//! release Stockyard on it, logs in to `/ui`, and times each page's query: the overview over
//! several ranges and breakdowns, the trace list with each filter, a page deep into the list
//! (keyset: it should cost what the first does), a text search and a trace's detail. Each is
//! asked R times; the report gives the median and worst of the whole HTTP answer and of the query
//! as the page reports it. The aim is under 200 ms each.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use crate::procs::{Proc, Scratch, parse_addr};
use crate::{Binaries, READY_TIMEOUT, SHUTDOWN_TIMEOUT, stockyard_command};

pub const USAGE: &str = "usage: bench dashboard [--traces N] [--runs R]

Seeds a temp database with N synthetic traces over 30 days (default 1000000), starts the release
Stockyard on it and times each console page R times (default 7): the median and worst of the whole
answer and of the store query as the page reports it. Aim: under 200 ms each.";

const ADMIN_KEY: &str = "bench-dashboard-admin-key-0123456789";
const AIM_MS: f64 = 200.0;

pub fn main(args: &[String], binaries: Binaries) -> ExitCode {
    let [traces, runs] =
        match crate::args::counts(args, [("--traces", 1_000_000), ("--runs", 7)], USAGE) {
            Ok(parsed) => parsed,
            Err(message) => {
                eprintln!("{message}");
                return ExitCode::from(2);
            }
        };
    match run(traces as u64, runs, &binaries) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(message) => {
            eprintln!("bench dashboard: {message}");
            ExitCode::FAILURE
        }
    }
}

/// One answer: status, headers (lowercased names), body.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    cookie: &str,
    body: &str,
) -> Result<Answer, String> {
    let mut stream = TcpStream::connect(addr).map_err(|e| format!("{path}: {e}"))?;
    let _ = stream.set_read_timeout(Some(Duration::from_secs(60)));
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if !cookie.is_empty() {
        let _ = write!(request, "Cookie: {cookie}\r\n");
    }
    if !body.is_empty() {
        let _ = write!(
            request,
            "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
            body.len()
        );
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("{path}: {e}"))?;
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .map_err(|e| format!("{path}: {e}"))?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("{path}: no status line"))?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Ok(Answer {
        status,
        headers,
        body: body.to_string(),
    })
}

/// What the page says its query took (`id="query-ms">N rows in M ms`).
fn query_ms(body: &str) -> Option<f64> {
    let at = body.find("id=\"query-ms\">")?;
    let text = body[at..].split('<').next()?;
    let ms = text.rsplit(" in ").next()?.trim_end_matches(" ms");
    ms.trim().parse().ok()
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

/// The `href` of the element with `id`.
fn link(body: &str, id: &str) -> Option<String> {
    let at = body.find(&format!("id=\"{id}\""))?;
    let href = body[..at].rsplit("href=\"").next()?.split('"').next()?;
    Some(href.replace("&amp;", "&"))
}

fn run(traces: u64, runs: usize, binaries: &Binaries) -> Result<bool, String> {
    let scratch = Scratch::create(false)?;
    let db = scratch.path.join("dashboard.db");
    let started = Instant::now();
    stockyard::cli::dev_seed::seed(&db, traces, 30, &mut |done| {
        if done % 200_000 == 0 || done == traces {
            eprintln!("seeded {done} of {traces} traces");
        }
    })
    .map_err(|e| format!("seed: {e}"))?;
    let seed_s = started.elapsed().as_secs_f64();
    let size = std::fs::metadata(&db).map(|m| m.len()).unwrap_or(0);
    let config = scratch.path.join("dashboard.toml");
    std::fs::write(&config, format!("[admin]\nkey = \"{ADMIN_KEY}\"\n"))
        .map_err(|e| format!("could not write {}: {e}", config.display()))?;
    // No request goes upstream: the mock's address is a placeholder.
    let unused: SocketAddr = ([127, 0, 0, 1], 9).into();
    let (mut proc, line) = Proc::start(
        "stockyard",
        stockyard_command(&binaries.stockyard, None, &db, &config, unused),
        &scratch.path,
        Some("listening on http://"),
        READY_TIMEOUT,
    )?;
    let addr = parse_addr(line.as_deref(), "", "stockyard")?;
    let login = http(addr, "POST", "/ui/login", "", &format!("key={ADMIN_KEY}"))?;
    let cookie = login
        .headers
        .iter()
        .find(|(k, _)| k == "set-cookie")
        .and_then(|(_, v)| v.split(';').next())
        .map(String::from)
        .ok_or_else(|| format!("login refused ({})", login.status))?;

    // A page 20 deep, and a trace id, for the keyset and detail rows.
    let mut deep = "/ui/traces?range=30d".to_string();
    for _ in 0..20 {
        let page = http(addr, "GET", &deep, &cookie, "")?;
        deep = link(&page.body, "next-page").ok_or("the trace list ran out of pages")?;
    }
    let first = http(addr, "GET", "/ui/traces?range=30d", &cookie, "")?;
    let id = first
        .body
        .split("data-id=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .ok_or("no trace in the list")?
        .to_string();
    let detail = format!("/ui/traces/{id}");
    let pages: Vec<(&str, String)> = vec![
        ("overview, 24 h, by model", "/ui?range=24h".into()),
        ("overview, 7 days, by key", "/ui?range=7d&by=key".into()),
        ("overview, 30 days, by model", "/ui?range=30d".into()),
        (
            "overview, 30 days, by team, one model",
            "/ui?range=30d&by=team&model=gpt-4o".into(),
        ),
        (
            "overview, all time, by provider",
            "/ui?range=all&by=provider".into(),
        ),
        ("traces, newest page", "/ui/traces?range=30d".into()),
        ("traces, 21st page (keyset)", deep.clone()),
        (
            "traces, one key",
            "/ui/traces?range=30d&key=vk_seed07".into(),
        ),
        (
            "traces, one team and model",
            "/ui/traces?range=30d&team=growth&model=gpt-4o".into(),
        ),
        (
            "traces, one provider",
            "/ui/traces?range=30d&provider=groq".into(),
        ),
        (
            "traces, errors",
            "/ui/traces?range=30d&status=errors".into(),
        ),
        (
            "traces, status 504",
            "/ui/traces?range=30d&status=504".into(),
        ),
        (
            "traces, semantic cache hits",
            "/ui/traces?range=30d&cache=semantic-hit".into(),
        ),
        ("traces, last hour", "/ui/traces?range=1h".into()),
        (
            "traces, text in bodies",
            "/ui/traces?range=30d&q=refund".into(),
        ),
        ("trace detail", detail),
    ];
    let mut report = format!(
        "\n## Console at {} traces ({:.0} MiB database, seeded in {seed_s:.0} s)\n\n\
         | page | answer median ms | answer worst ms | query median ms | under {AIM_MS} ms |\n|---|---:|---:|---:|---|\n",
        traces,
        size as f64 / (1024.0 * 1024.0)
    );
    let mut all_fast = true;
    for (label, path) in &pages {
        let mut totals = Vec::new();
        let mut queries = Vec::new();
        for _ in 0..runs {
            let t = Instant::now();
            let answer = http(addr, "GET", path, &cookie, "")?;
            totals.push(t.elapsed().as_secs_f64() * 1000.0);
            if answer.status != 200 {
                return Err(format!("{path}: status {}", answer.status));
            }
            if let Some(ms) = query_ms(&answer.body) {
                queries.push(ms);
            }
        }
        let worst = totals.iter().copied().fold(0.0, f64::max);
        let med = median(&mut totals);
        let query = if queries.is_empty() {
            "–".to_string()
        } else {
            format!("{:.0}", median(&mut queries))
        };
        let fast = med < AIM_MS;
        all_fast &= fast;
        let _ = writeln!(
            report,
            "| {label} | {med:.1} | {worst:.1} | {query} | {} |",
            if fast { "yes" } else { "**no**" }
        );
        eprintln!("{label}: {med:.1} ms");
    }
    proc.terminate(SHUTDOWN_TIMEOUT)?;
    print!("{report}");
    Ok(all_fast)
}
