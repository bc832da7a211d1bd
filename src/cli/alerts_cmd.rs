//! `stockyard alerts [--since 7d] [--last 50] [--json]`: the alerts the `alerts` module fired,
//! read from the database read-only.

use std::process::ExitCode;

use super::args::{AlertsArgs, Cli};
use super::{CliError, load_config, open_reader};
use crate::store::now_ms;

pub fn run(cli: &Cli, args: &AlertsArgs) -> Result<ExitCode, CliError> {
    let since = crate::admin::spend::parse_since(&args.since)
        .map_err(|m| CliError::Failed(format!("--{m}")))?;
    let reader = open_reader(&load_config(cli)?)?;
    let alerts = reader.alerts.alerts(now_ms() - since, args.last)?;
    if args.json {
        for alert in &alerts {
            println!("{}", serde_json::to_string(alert).unwrap_or_default());
        }
        return Ok(ExitCode::SUCCESS);
    }
    if alerts.is_empty() {
        println!("no alerts in the last {}", args.since);
        return Ok(ExitCode::SUCCESS);
    }
    let format =
        time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]Z");
    println!(
        "{:<20}  {:<16}  {:<14}  {:<9}  message",
        "time (UTC)", "rule", "kind", "delivered"
    );
    for a in &alerts {
        let when = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(a.ts_ms) * 1_000_000)
            .ok()
            .and_then(|t| t.format(&format).ok())
            .unwrap_or_else(|| a.ts_ms.to_string());
        println!(
            "{:<20}  {:<16}  {:<14}  {:<9}  {}",
            when,
            a.rule,
            a.kind,
            if a.delivered { "yes" } else { "no" },
            a.message
        );
    }
    Ok(ExitCode::SUCCESS)
}
