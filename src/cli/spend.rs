//! `stockyard spend --by key|team|user|model|provider|day --since 7d`: sums from the daily spend
//! rollups the writer keeps (never a scan of the traces), read from the database read-only.

use std::process::ExitCode;

use super::args::{Cli, SpendArgs, SpendGroup};
use super::{CliError, dollars, load_config, open_reader};
use crate::store::{SpendBy, now_ms};

/// `90m`, `24h`, `7d`, `30s` as milliseconds.
pub fn parse_since(text: &str) -> Result<i64, CliError> {
    let bad = || {
        CliError::Failed(format!(
            "--since: {text:?} is not a duration like 90m, 24h or 7d"
        ))
    };
    let (number, unit) = text.split_at(text.len().saturating_sub(1));
    let n: i64 = number.parse().map_err(|_| bad())?;
    let unit_ms = match unit {
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(bad()),
    };
    Ok(n.saturating_mul(unit_ms))
}

pub fn run(cli: &Cli, args: &SpendArgs) -> Result<ExitCode, CliError> {
    let since_ms = now_ms() - parse_since(&args.since)?;
    let by = match args.by {
        SpendGroup::Key => SpendBy::Key,
        SpendGroup::Team => SpendBy::Team,
        SpendGroup::User => SpendBy::User,
        SpendGroup::Model => SpendBy::Model,
        SpendGroup::Provider => SpendBy::Provider,
        SpendGroup::Day => SpendBy::Day,
    };
    let reader = open_reader(&load_config(cli)?)?;
    let rows = reader.spend.spend(by, since_ms)?;
    if args.json {
        for row in &rows {
            println!("{}", serde_json::to_string(row).unwrap_or_default());
        }
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<32}  {:>9}  {:>12}  {:>12}  {:>16}",
        "key", "requests", "prompt", "completion", "cost"
    );
    let mut total = 0i64;
    for row in &rows {
        total += row.cost_nanos;
        println!(
            "{:<32}  {:>9}  {:>12}  {:>12}  {:>16}",
            row.key,
            row.requests,
            row.prompt_tokens,
            row.completion_tokens,
            dollars(row.cost_nanos)
        );
    }
    println!(
        "{:<32}  {:>9}  {:>12}  {:>12}  {:>16}",
        "total",
        "",
        "",
        "",
        dollars(total)
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_since("24h").ok(), Some(86_400_000));
        assert_eq!(parse_since("90m").ok(), Some(5_400_000));
        assert!(parse_since("soon").is_err());
    }
}
