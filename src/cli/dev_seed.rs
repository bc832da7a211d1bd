//! `stockyard dev seed --traces N [--days D]`: fills a database with N synthetic but plausible
//! traces (keys in teams, several models and providers, mostly successes with some 429s and 5xx,
//! streams with a time to first token, cache hits, a few captured bodies), spread over the last D
//! days, for trying the console and timing its queries at scale (`bench dashboard`).
//!
//! Rows go in through the writer backend's own `append_traces`, in large batches (one
//! transaction each), so the spend and hourly roll-ups are exactly the ones a server keeps. No
//! server may run on the file meanwhile (the database lock is taken).

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use super::CliError;
use super::args::{Cli, DevCommand};
use crate::cost::Tokens;
use crate::ledger::LedgerKey;
use crate::server::db_lock::DbLock;
use crate::store::{StoreUrl, TraceRecord, now_ms};

/// Rows per transaction: large enough that commits cost nothing, small enough to report progress.
const BATCH: usize = 50_000;

/// `(model, provider, upstream ms at p50, price in nanos per million tokens in, out)`.
const MODELS: &[(&str, &str, f64, i64, i64)] = &[
    ("gpt-4o-mini", "openai", 450.0, 150_000_000, 600_000_000),
    ("gpt-4o", "openai", 900.0, 2_500_000_000, 10_000_000_000),
    (
        "claude-sonnet-4-5",
        "anthropic",
        1_100.0,
        3_000_000_000,
        15_000_000_000,
    ),
    (
        "claude-haiku-4-5",
        "anthropic",
        500.0,
        1_000_000_000,
        5_000_000_000,
    ),
    (
        "gemini-2.0-flash",
        "gemini",
        380.0,
        100_000_000,
        400_000_000,
    ),
    ("llama-3.3-70b", "groq", 250.0, 590_000_000, 790_000_000),
];

const TEAMS: &[&str] = &["search", "support", "growth", "research", "platform"];
const KEYS: usize = 40;

pub fn run(cli: &Cli, command: &DevCommand) -> Result<ExitCode, CliError> {
    match command {
        DevCommand::Seed { traces, days } => {
            let config = super::load_config(cli)?;
            let db = config.db_path.clone();
            let Some(_lock) = DbLock::try_acquire(&db)? else {
                return Err(CliError::Failed(format!(
                    "a running stockyard process holds {}; stop it, then seed",
                    db.display()
                )));
            };
            let started = Instant::now();
            seed(&db, *traces, *days, &mut |done| {
                eprintln!("seeded {done} of {traces} traces");
            })?;
            println!(
                "seeded {traces} traces over {days} days into {} in {:.1} s",
                db.display(),
                started.elapsed().as_secs_f64()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Appends `n` synthetic traces spread over the last `days` days to the database at `db`
/// (created and migrated if new), calling `progress` after each batch.
pub fn seed(db: &Path, n: u64, days: u32, progress: &mut dyn FnMut(u64)) -> Result<(), CliError> {
    let url = StoreUrl::Sqlite(db.to_path_buf());
    let newest = crate::store::newest_mac(&url)?;
    let key = LedgerKey::for_writing(db, None, newest.as_ref())?;
    let mut opened = crate::store::open(&url, key)?;
    let now = now_ms();
    let span = i64::from(days.max(1)) * 86_400_000;
    let mut rng = fastrand::Rng::with_seed(n ^ 0x5eed);
    // Time order, as a server writes them.
    let mut times: Vec<i64> = (0..n).map(|_| now - rng.i64(0..span)).collect();
    times.sort_unstable();
    let mut done = 0u64;
    for chunk in times.chunks(BATCH) {
        let batch: Vec<TraceRecord> = chunk.iter().map(|ts| synthetic(&mut rng, *ts)).collect();
        opened.writes.append_traces(&batch)?;
        done += batch.len() as u64;
        progress(done);
    }
    opened.writes.checkpoint()?;
    Ok(())
}

/// One plausible trace at `ts_ms`.
pub fn synthetic(rng: &mut fastrand::Rng, ts_ms: i64) -> TraceRecord {
    // Popular models are asked more: a skewed pick.
    let m = (rng.f64().powf(1.8) * MODELS.len() as f64) as usize;
    let (model, provider, p50_ms, price_in, price_out) = MODELS[m.min(MODELS.len() - 1)];
    let k = (rng.f64().powf(2.0) * KEYS as f64) as usize;
    let key_id = format!("vk_seed{k:02}");
    let team = (k % 7 < TEAMS.len()).then(|| TEAMS[k % 7].to_string());
    let roll = rng.f64();
    let (status, error_class) = match roll {
        r if r < 0.93 => (200, None),
        r if r < 0.955 => (429, Some("rate_limited")),
        r if r < 0.97 => (400, Some("invalid_request")),
        r if r < 0.98 => (500, Some("upstream_error")),
        r if r < 0.99 => (502, Some("upstream_error")),
        r if r < 0.995 => (503, Some("upstream_unavailable")),
        _ => (504, Some("upstream_timeout")),
    };
    let ok = status < 400;
    let stream = rng.bool();
    let cache = match rng.f64() {
        c if c < 0.5 => None,
        c if c < 0.85 => Some("miss"),
        c if c < 0.95 => Some("hit"),
        c if c < 0.98 => Some("semantic-hit"),
        _ => Some("skip"),
    };
    let hit = matches!(cache, Some("hit" | "semantic-hit"));
    // Log-normal-ish latency around the model's median.
    let spread = (rng.f64() + rng.f64() + rng.f64() - 1.5) * 1.2;
    let upstream_ms = if hit { 0.0 } else { p50_ms * spread.exp() };
    let overhead_us = 150 + rng.i64(0..400);
    let latency_us = (upstream_ms * 1000.0) as i64 + overhead_us;
    let prompt = if ok { rng.u64(20..4_000) } else { 0 };
    let completion = if ok { rng.u64(5..1_200) } else { 0 };
    let tokens = Tokens {
        prompt,
        completion,
        cached_input: if rng.u8(0..5) == 0 { prompt / 2 } else { 0 },
        ..Tokens::default()
    };
    let cost = (prompt as i64 * price_in + completion as i64 * price_out) / 1_000_000;
    let captured = rng.u8(0..10) == 0;
    let topic = ["invoice", "refund", "weather", "poem", "SQL", "translate"][rng.usize(0..6)];
    let id = uuid::Uuid::new_v7(uuid::Timestamp::from_unix(
        uuid::NoContext,
        (ts_ms / 1000) as u64,
        ((ts_ms % 1000) * 1_000_000) as u32 + rng.u32(0..1_000_000),
    ));
    TraceRecord {
        id: id.to_string(),
        ts_ms,
        endpoint: "/v1/chat/completions".into(),
        requested_model: model.into(),
        provider: Some(provider.into()),
        upstream_model: Some(model.into()),
        status,
        error_class: error_class.map(String::from),
        stream,
        tokens,
        usage_estimated: false,
        cost_nanos: if ok && !hit { cost } else { 0 },
        price_known: true,
        latency_us,
        ttft_us: (stream && ok).then(|| latency_us / 4 + rng.i64(0..50_000)),
        upstream_us: (!hit).then_some(latency_us - overhead_us),
        overhead_us,
        bytes_in: prompt as i64 * 4 + 120,
        bytes_out: completion as i64 * 4 + 200,
        user: None,
        deployment: None,
        attempts: if status >= 500 { 2 } else { 1 },
        variant: None,
        request_id: format!("req_{}", id.simple()),
        key_id: Some(key_id),
        team_id: team,
        key_metadata: None,
        tags: None,
        route_rule: None,
        prompt: None,
        request_body: captured.then(|| {
            format!(
                "{{\"model\":\"{model}\",\"messages\":[{{\"role\":\"user\",\"content\":\"help me with a {topic}\"}}]}}"
            )
        }),
        response_body: captured.then(|| {
            format!("{{\"choices\":[{{\"message\":{{\"content\":\"Here is your {topic}.\"}}}}]}}")
        }),
        answered_by: hit.then(|| "cache".to_string()),
        internal_caller: None,
        cache: cache.map(String::from),
        saved_nanos: if hit { cost } else { 0 },
        verdicts: None,
    }
}
