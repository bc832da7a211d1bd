//! `bench scan`: each guardrail family's scanner alone, in this process, over the 2 KB prompt
//! that `bench guardrails` sends, with the same detector settings. It prints the median time
//! per scan for each family, so a change that makes one detector dearer shows up by name, which
//! the end-to-end figure cannot do. Under callgrind (`valgrind --tool=callgrind bench scan
//! --scans 1000`) the instruction counts per family are repeatable whatever the machine does.

use std::process::ExitCode;
use std::time::Instant;

use serde_json::Value;
use stockyard::modules::guard::{Family, GuardConfig, Scanner};
use stockyard::modules::guard_injection::Injection;
use stockyard::modules::guard_pii::Pii;
use stockyard::modules::guard_policy::Policy;
use stockyard::modules::guard_secrets::Secrets;
use stockyard::modules::registry::ModuleConfig;

use crate::guardrails::{GUARDED, prompt_2kb};

pub const USAGE: &str = "usage: bench scan [--scans N]

Runs each guardrail family's scanner (policy, injection, secrets, personal data, configured as
in `bench guardrails`) over its 2 KB prompt N times per round (default 20000), five rounds, and
prints the median nanoseconds per scan for each. Needs no server.";

const ROUNDS: usize = 5;

pub fn main(args: &[String]) -> ExitCode {
    let mut scans = 20_000usize;
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        match (flag.as_str(), it.next().and_then(|v| v.parse().ok())) {
            ("--scans", Some(n)) if n > 0 => scans = n,
            _ => {
                eprintln!("{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    match run(scans) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("bench scan: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(scans: usize) -> Result<(), String> {
    let config: toml::Table = toml::from_str(GUARDED).map_err(|e| e.to_string())?;
    let modules = config
        .get("modules")
        .and_then(|m| m.as_table())
        .ok_or("GUARDED has no [modules]")?;
    let settings = |name: &str| -> Result<Value, String> {
        let mut table = modules
            .get(name)
            .and_then(|m| m.as_table())
            .cloned()
            .ok_or_else(|| format!("GUARDED has no [modules.{name}]"))?;
        table.remove("enabled");
        serde_json::to_value(table).map_err(|e| e.to_string())
    };
    let scanners: Vec<(&str, Box<dyn Scanner>)> = vec![
        ("policy", scanner::<Policy>(&settings("guard_policy")?)?),
        (
            "injection",
            scanner::<Injection>(&settings("guard_injection")?)?,
        ),
        ("secrets", scanner::<Secrets>(&settings("guard_secrets")?)?),
        ("pii", scanner::<Pii>(&settings("guard_pii")?)?),
    ];
    let text = prompt_2kb();
    println!(
        "{:<10} {:>12}  (2 KB prompt, median of {ROUNDS} rounds of {scans})",
        "family", "ns/scan"
    );
    let mut total = 0.0;
    for (name, scanner) in &scanners {
        let mut found = Vec::new();
        let mut rounds = Vec::with_capacity(ROUNDS);
        for _ in 0..ROUNDS {
            let started = Instant::now();
            for _ in 0..scans {
                found.clear();
                scanner.scan(std::hint::black_box(&text), &mut found);
            }
            rounds.push(started.elapsed().as_nanos() as f64 / scans as f64);
        }
        if !found.is_empty() {
            return Err(format!("{name} objects to the clean prompt: {found:?}"));
        }
        rounds.sort_by(f64::total_cmp);
        let median = rounds[ROUNDS / 2];
        total += median;
        println!("{name:<10} {median:>12.0}");
    }
    println!("{:<10} {total:>12.0}", "all");
    Ok(())
}

fn scanner<F: Family>(settings: &Value) -> Result<Box<dyn Scanner>, String> {
    let config = GuardConfig::<F>::parse(settings)?;
    Ok(Box::new(F::scanner(&config.detector)?))
}
