//! The markdown table `bench` prints: one row per number, one column per target (direct, via
//! Stockyard, and the floors that ran: nginx and bare hyper), plus the Stockyard / direct ratio.
//! A last section, under its own heading row, compares a routing group with the plain model
//! through the same proxy: there the first two columns hold single and group and the ratio is
//! group / single.
//! `main.rs` gathers the inputs; this file only formats them.

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
    /// The routing group's results, aligned with `scenarios`, for the scenarios that ran it;
    /// each is compared with column 1 (Stockyard, plain model) of the same scenario.
    pub group: &'a [Option<Measurement>],
    /// What the group section calls the group: `group of 3`.
    pub group_label: &'a str,
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
    ratio: Ratio,
}

/// What goes in the ratio column: cell 1 / cell 0, nothing, or a heading.
enum Ratio {
    Computed,
    Blank,
    Heading(&'static str),
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
                let ratio = match (&row.ratio, row.cells[0].value(), cell.value()) {
                    (Ratio::Heading(text), _, _) => (*text).to_owned(),
                    (Ratio::Computed, Some(base), Some(other)) if base > 0.0 => {
                        format!("{:.2}", other / base)
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
                        ratio: Ratio::Computed,
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
                ratio: Ratio::Computed,
            }),
        }
    }
    for (i, s) in inputs.scenarios.iter().enumerate() {
        rows.push(Row {
            label: format!("proxy CPU µs/request ({})", s.name),
            cells: per_column(i, &|m, column| match column.proxy {
                Some(_) => Cell::from(m.proxy_us_per_request()),
                None => Cell::NotApplicable,
            }),
            decimals: 1,
            ratio: Ratio::Blank,
        });
    }
    for (i, s) in inputs.scenarios.iter().enumerate() {
        rows.push(Row {
            label: format!("mock CPU µs/request ({})", s.name),
            cells: per_column(i, &|m, _| Cell::from(m.cpu_us_per_request(Role::Mock))),
            decimals: 1,
            ratio: Ratio::Computed,
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
        ratio: Ratio::Blank,
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
        ratio: Ratio::Blank,
    });
    for (i, s) in inputs.scenarios.iter().enumerate() {
        rows.push(Row {
            label: format!("errors ({})", s.name),
            cells: per_column(i, &|m, _| Cell::Num(m.errors as f64)),
            decimals: 0,
            ratio: Ratio::Blank,
        });
    }
    group_rows(inputs, &mut rows);
    rows
}

/// The group-versus-single section: cell 0 is Stockyard with the plain model, cell 1 the group,
/// in the scenarios that ran both.
fn group_rows(inputs: &Inputs<'_>, rows: &mut Vec<Row>) {
    let compared: Vec<(&Scenario, &Measurement, &Measurement)> = inputs
        .scenarios
        .iter()
        .zip(inputs.results)
        .zip(inputs.group)
        .filter_map(|((s, per_column), group)| Some((s, per_column.get(1)?, group.as_ref()?)))
        .collect();
    if compared.is_empty() {
        return;
    }
    let group_label = inputs.group_label;
    let width = inputs.columns.len();
    // Single and group in the first two columns; `rest` fills the others (the floors).
    let pair = |single: Cell, group: Cell, rest: fn() -> Cell| -> Vec<Cell> {
        let mut cells = vec![single, group];
        cells.extend((2..width).map(|_| rest()));
        cells
    };
    let row = |label: String, decimals: usize, ratio: Ratio, single: Cell, group: Cell| Row {
        label: format!("{label}, {group_label} vs single"),
        cells: pair(single, group, || Cell::NotApplicable),
        decimals,
        ratio,
    };
    // One number per side, and the ratio.
    let numbers = |label: String,
                   decimals: usize,
                   (single, group): (&Measurement, &Measurement),
                   f: &dyn Fn(&Measurement) -> Option<f64>| {
        row(
            label,
            decimals,
            Ratio::Computed,
            Cell::from(f(single)),
            Cell::from(f(group)),
        )
    };
    let p50 = |m: &Measurement| m.latency_percentile(50.0).map(|v| v as f64);
    let p99 = |m: &Measurement| m.latency_percentile(99.0).map(|v| v as f64);

    rows.push(Row {
        label: format!("**{group_label} vs single model** (same proxy, same rounds)"),
        cells: pair(
            Cell::Text("**single**".to_owned()),
            Cell::Text("**group**".to_owned()),
            || Cell::Text(String::new()),
        ),
        decimals: 0,
        ratio: Ratio::Heading("**group / single**"),
    });
    for &(s, single, group) in &compared {
        let name = &s.name;
        let both = (single, group);
        match s.kind {
            Kind::Latency => {
                rows.push(numbers(format!("{name} p50 µs"), 0, both, &p50));
                rows.push(numbers(format!("{name} p99 µs"), 0, both, &p99));
            }
            Kind::Throughput => {
                rows.push(numbers(format!("{name} req/s"), 0, both, &|m| {
                    m.requests_per_s()
                }));
                rows.push(numbers(format!("{name} p50 µs"), 0, both, &p50));
            }
        }
    }
    for &(s, single, group) in &compared {
        let label = format!("proxy CPU µs/request ({})", s.name);
        rows.push(numbers(label, 1, (single, group), &|m| {
            m.proxy_us_per_request()
        }));
    }
    for &(s, single, group) in &compared {
        rows.push(row(
            format!("served by ({})", s.name),
            0,
            Ratio::Blank,
            Cell::Text(split_text(single)),
            Cell::Text(split_text(group)),
        ));
    }
    for &(s, single, group) in &compared {
        rows.push(row(
            format!("errors ({})", s.name),
            0,
            Ratio::Blank,
            Cell::Num(single.errors as f64),
            Cell::Num(group.errors as f64),
        ));
    }
}

/// `d1 6700 (33.5%), d2 ...`: successful timed requests per provider in the deployment header.
fn split_text(m: &Measurement) -> String {
    let total: u64 = m.served_by.values().sum();
    if total == 0 {
        return "n/a".to_owned();
    }
    let parts: Vec<String> = m
        .served_by
        .iter()
        .map(|(provider, n)| format!("{provider} {n} ({:.1}%)", *n as f64 * 100.0 / total as f64))
        .collect();
    parts.join(", ")
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
            group: &[None],
            group_label: "group of 3",
        });
        assert!(text.starts_with("| scenario | direct | via stockyard | ratio |\n"));
        assert!(text.contains("| c=1 non-stream p50 µs | 100 | 150 | 1.50 |"));
        assert!(text.contains("| proxy peak RSS MB | – | 2.0 | – |"));
        assert!(text.contains("| trace rows written / requests | – | 9 / 10 (lost 1) | – |"));
        assert!(!text.contains("group of 3"));
    }

    #[test]
    fn group_rows_put_single_then_group_then_their_ratio() {
        let column = |header, proxy| Column {
            header,
            proxy,
            peak_rss_kb: None,
        };
        let columns = [
            column("direct", None),
            column("via stockyard", Some(Role::Stockyard)),
            column("nginx", Some(Role::Nginx)),
        ];
        let scenarios = [Scenario {
            name: "c=64 non-stream".to_owned(),
            kind: Kind::Throughput,
            stream: false,
        }];
        let mut single = Measurement::default();
        let mut group = Measurement::default();
        single.add_proxy_cpu(Some(40_000), 1);
        group.add_proxy_cpu(Some(50_000), 1);
        for provider in ["d1", "d1", "d2", "d3"] {
            group.tally_provider(provider);
        }
        single.tally_provider("openai");
        let results = [vec![Measurement::default(), single, Measurement::default()]];
        let text = table(&Inputs {
            columns: &columns,
            scenarios: &scenarios,
            results: &results,
            traces: Ok((0, 0)),
            group: &[Some(group)],
            group_label: "group of 3",
        });
        assert!(text.contains(
            "| **group of 3 vs single model** (same proxy, same rounds) | **single** | \
             **group** | **group / single** |  |\n"
        ));
        assert!(text.contains(
            "| proxy CPU µs/request (c=64 non-stream), group of 3 vs single | 40.0 | 50.0 | 1.25 | – |"
        ));
        assert!(text.contains(
            "| served by (c=64 non-stream), group of 3 vs single | openai 1 (100.0%) | \
             d1 2 (50.0%), d2 1 (25.0%), d3 1 (25.0%) | – | – |"
        ));
        assert!(
            text.contains("| errors (c=64 non-stream), group of 3 vs single | 0 | 0 | – | – |")
        );
    }
}
