//! `stockyard traces --last 20 [--model M] [--status S] [--json]`.

use std::process::ExitCode;

use super::args::{Cli, TracesArgs};
use super::{CliError, dollars, load_config, open_reader};
use crate::store::TraceQuery;

pub fn run(cli: &Cli, args: &TracesArgs) -> Result<ExitCode, CliError> {
    let reader = open_reader(&load_config(cli)?)?;
    let query = TraceQuery {
        limit: args.last,
        model: args.model.clone(),
        status: args.status,
    };
    let rows = reader.traces.traces(&query)?;
    if args.json {
        for row in &rows {
            println!("{}", serde_json::to_string(row).unwrap_or_default());
        }
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<36}  {:<24}  {:<10}  {:>6}  {:>7}  {:>7}  {:>14}  {:>9}  error",
        "id", "model", "provider", "status", "in", "out", "cost", "ms"
    );
    for t in rows.iter().rev() {
        let est = if t.usage_estimated { "~" } else { "" };
        println!(
            "{:<36}  {:<24}  {:<10}  {:>6}  {:>7}  {:>7}  {:>14}  {:>9.1}  {}{}",
            t.id,
            t.requested_model,
            t.provider.as_deref().unwrap_or("-"),
            t.status,
            format!("{est}{}", t.tokens.prompt),
            format!("{est}{}", t.tokens.completion),
            dollars(t.cost_nanos),
            t.latency_us as f64 / 1000.0,
            t.error_class.as_deref().unwrap_or(""),
            if t.stream { " (stream)" } else { "" },
        );
    }
    Ok(ExitCode::SUCCESS)
}
