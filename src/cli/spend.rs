//! `stockyard spend --by key|team|user|model|provider|day|tag --since 7d`: sums from the daily spend
//! rollups the writer keeps (never a scan of the traces), read from the database read-only.

use std::process::ExitCode;

use super::args::{Cli, SpendArgs, SpendGroup};
use super::{CliError, dollars, load_config, open_reader};
use crate::store::{SpendBy, now_ms};

fn parse_since(text: &str) -> Result<i64, CliError> {
    crate::admin::spend::parse_since(text).map_err(|m| CliError::Failed(format!("--{m}")))
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
        SpendGroup::Tag => SpendBy::Tag,
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
        "{:<32}  {:>9}  {:>12}  {:>12}  {:>16}  {:>16}",
        "key", "requests", "prompt", "completion", "cost", "saved by cache"
    );
    let (mut total, mut saved) = (0i64, 0i64);
    for row in &rows {
        total += row.cost_nanos;
        saved += row.saved_nanos;
        println!(
            "{:<32}  {:>9}  {:>12}  {:>12}  {:>16}  {:>16}",
            row.key,
            row.requests,
            row.prompt_tokens,
            row.completion_tokens,
            dollars(row.cost_nanos),
            dollars(row.saved_nanos)
        );
    }
    println!(
        "{:<32}  {:>9}  {:>12}  {:>12}  {:>16}  {:>16}",
        "total",
        "",
        "",
        "",
        dollars(total),
        dollars(saved)
    );
    Ok(ExitCode::SUCCESS)
}
