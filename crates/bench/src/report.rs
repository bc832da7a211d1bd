//! The markdown table `bench` prints: one row per number, one column per target (direct, via
//! Stockyard, and nginx when it ran), plus the Stockyard / direct ratio. `main.rs` gathers the
//! inputs; this file only formats them.

use std::fmt::Write as _;

use crate::stats::{Measurement, Role};

/// Whether a scenario measures latency (concurrency 1) or throughput.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Latency,
    Throughput,
}

pub struct Scenario {
    /// `c=1 non-stream`, `c=64 stream`, ...
    pub name: String,
    pub kind: Kind,
    pub stream: bool,
}

/// One column: a target and the proxy process in front of the mock for it, if any.
pub struct Column {
    pub header: &'static str,
    pub proxy: Option<Role>,
    pub peak_rss_kb: Option<u64>,
}

pub struct Inputs<'a> {
    pub columns: &'a [Column],
    pub scenarios: &'a [Scenario],
    /// `results[scenario][column]`.
    pub results: &'a [Vec<Measurement>],
    /// Stockyard's trace rows after shutdown and the requests sent through it, or why unknown.
    pub traces: Result<(u64, u64), String>,
}

enum Cell {
    Num(f64),
    Text(String),
    /// Doesn't apply to this column (no proxy on the direct path).
    NotApplicable,
    /// Applies but couldn't be measured.
    Missing,
}

struct Row {
    label: String,
    cells: Vec<Cell>,
    decimals: usize,
    ratio: bool,
}

impl Cell {
    fn from(value: Option<f64>) -> Cell {
        value.map_or(Cell::Missing, Cell::Num)
    }

    fn value(&self) -> Option<f64> {
        match self {
            Cell::Num(v) => Some(*v),
            _ => None,
        }
    }

    fn render(&self, decimals: usize) -> String {
        match self {
            Cell::Num(v) => format!("{v:.decimals$}"),
            Cell::Text(t) => t.clone(),
            Cell::NotApplicable => "–".to_owned(),
            Cell::Missing => "n/a".to_owned(),
        }
    }
}

/// Renders the table. Column 0 must be the direct target and column 1 Stockyard.
pub fn table(inputs: &Inputs<'_>) -> String {
    let rows = rows(inputs);
    let mut out = String::new();
    let mut header = vec!["scenario", inputs.columns[0].header];
    let mut rule = vec!["---", "---:"];
    for (i, column) in inputs.columns.iter().enumerate().skip(1) {
        header.push(column.header);
        rule.push("---:");
        if i == 1 {
            header.push("ratio");
            rule.push("---:");
        }
    }
    let _ = writeln!(out, "| {} |", header.join(" | "));
    let _ = writeln!(out, "|{}|", rule.join("|"));
    for row in rows {
        let mut cells = vec![row.label.clone()];
        for (i, cell) in row.cells.iter().enumerate() {
            cells.push(cell.render(row.decimals));
            if i == 1 {
                let ratio = match (row.cells[0].value(), cell.value()) {
                    (Some(direct), Some(via)) if row.ratio && direct > 0.0 => {
                        format!("{:.2}", via / direct)
                    }
                    _ => "–".to_owned(),
                };
                cells.push(ratio);
            }
        }
        let _ = writeln!(out, "| {} |", cells.join(" | "));
    }
    out
}

fn rows(inputs: &Inputs<'_>) -> Vec<Row> {
    let columns = inputs.columns;
    let mut rows = Vec::new();
    let per_column = |scenario: usize, f: &dyn Fn(&Measurement, &Column) -> Cell| -> Vec<Cell> {
        columns
            .iter()
            .zip(&inputs.results[scenario])
            .map(|(column, m)| f(m, column))
            .collect()
    };
    for (i, s) in inputs.scenarios.iter().enumerate() {
        match s.kind {
            Kind::Latency => {
                let mut push = |label: &str, f: &dyn Fn(&Measurement) -> Option<u64>| {
                    rows.push(Row {
                        label: format!("{} {label}", s.name),
                        cells: per_column(i, &|m, _| Cell::from(f(m).map(|v| v as f64))),
                        decimals: 0,
                        ratio: true,
                    });
                };
                push("p50 µs", &|m| m.latency_percentile(50.0));
                push("p99 µs", &|m| m.latency_percentile(99.0));
                if s.stream {
                    push("TTFB p50 µs", &|m| m.ttfb_percentile(50.0));
                }
            }
            Kind::Throughput => rows.push(Row {
                label: format!("{} req/s", s.name),
                cells: per_column(i, &|m, _| Cell::from(m.requests_per_s())),
                decimals: 0,
                ratio: true,
            }),
        }
    }
    for (i, s) in inputs.scenarios.iter().enumerate() {
        rows.push(Row {
            label: format!("proxy CPU µs/request ({})", s.name),
            cells: per_column(i, &|m, column| match column.proxy {
                Some(_) => Cell::from(m.proxy_cpu.and_then(|c| c.us_per_request())),
                None => Cell::NotApplicable,
            }),
            decimals: 1,
            ratio: false,
        });
    }
    for (i, s) in inputs.scenarios.iter().enumerate() {
        rows.push(Row {
            label: format!("mock CPU µs/request ({})", s.name),
            cells: per_column(i, &|m, _| Cell::from(m.cpu_us_per_request(Role::Mock))),
            decimals: 1,
            ratio: true,
        });
    }
    rows.push(Row {
        label: "proxy peak RSS MB".to_owned(),
        cells: columns
            .iter()
            .map(|c| match c.proxy {
                Some(_) => Cell::from(c.peak_rss_kb.map(|kb| kb as f64 / 1024.0)),
                None => Cell::NotApplicable,
            })
            .collect(),
        decimals: 1,
        ratio: false,
    });
    rows.push(Row {
        label: "trace rows written / requests".to_owned(),
        cells: columns
            .iter()
            .map(|c| match (c.proxy, &inputs.traces) {
                (Some(Role::Stockyard), Ok((rows, sent))) => Cell::Text(traces_text(*rows, *sent)),
                (Some(Role::Stockyard), Err(_)) => Cell::Missing,
                _ => Cell::NotApplicable,
            })
            .collect(),
        decimals: 0,
        ratio: false,
    });
    for (i, s) in inputs.scenarios.iter().enumerate() {
        rows.push(Row {
            label: format!("errors ({})", s.name),
            cells: per_column(i, &|m, _| Cell::Num(m.errors as f64)),
            decimals: 0,
            ratio: false,
        });
    }
    rows
}

/// `X / Y (lost Z)`; more rows than requests is reported as such rather than as a negative loss.
pub fn traces_text(rows: u64, sent: u64) -> String {
    if rows > sent {
        format!("{rows} / {sent} ({} extra)", rows - sent)
    } else {
        format!("{rows} / {sent} (lost {})", sent - rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn table_has_a_ratio_after_the_stockyard_column() {
        let mut direct = Measurement::default();
        let mut via = Measurement::default();
        direct.record(Duration::from_micros(100), None);
        via.record(Duration::from_micros(150), None);
        let columns = [
            Column {
                header: "direct",
                proxy: None,
                peak_rss_kb: None,
            },
            Column {
                header: "via stockyard",
                proxy: Some(Role::Stockyard),
                peak_rss_kb: Some(2048),
            },
        ];
        let scenarios = [Scenario {
            name: "c=1 non-stream".to_owned(),
            kind: Kind::Latency,
            stream: false,
        }];
        let results = [vec![direct, via]];
        let text = table(&Inputs {
            columns: &columns,
            scenarios: &scenarios,
            results: &results,
            traces: Ok((9, 10)),
        });
        assert!(text.starts_with("| scenario | direct | via stockyard | ratio |\n"));
        assert!(text.contains("| c=1 non-stream p50 µs | 100 | 150 | 1.50 |"));
        assert!(text.contains("| proxy peak RSS MB | – | 2.0 | – |"));
        assert!(text.contains("| trace rows written / requests | – | 9 / 10 (lost 1) | – |"));
    }
}
