//! The `bench` command line. Hand-parsed like `mock-upstream`'s, so the benchmark's build stays
//! small; `main.rs` calls [`parse`] once and everything else reads [`Args`].

pub const USAGE: &str =
    "usage: bench [--quick] [--latency-requests N] [--throughput-requests N] [--keep-tmp]

Starts the mock upstream and Stockyard (the release builds next to this binary; run
`cargo build --release --workspace` first, or use scripts/bench) and prints a markdown table
comparing requests sent straight to the mock with the same requests sent through Stockyard.

  --quick                    a short smoke run: 200 latency and 2000 throughput requests
  --latency-requests N       timed requests per target in each c=1 scenario (default 2000)
  --throughput-requests N    timed requests per target in each c=64 scenario (default 20000)
  --keep-tmp                 keep the temp dir (database, children's stderr) and print its path";

const DEFAULT_LATENCY_REQUESTS: usize = 2000;
const DEFAULT_THROUGHPUT_REQUESTS: usize = 20_000;
const QUICK_LATENCY_REQUESTS: usize = 200;
const QUICK_THROUGHPUT_REQUESTS: usize = 2000;

#[derive(Debug, PartialEq, Eq)]
pub struct Args {
    pub latency_requests: usize,
    pub throughput_requests: usize,
    pub keep_tmp: bool,
}

/// Why parsing stopped: `--help` (print usage, exit 0) or a usage error (exit 2).
#[derive(Debug, PartialEq, Eq)]
pub enum Stop {
    Help,
    Usage(String),
}

/// Parses the arguments after the program name. An explicit count wins over `--quick` whatever
/// their order, so `--quick --latency-requests 50` means what it says.
pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Args, Stop> {
    let mut quick = false;
    let mut latency = None;
    let mut throughput = None;
    let mut keep_tmp = false;
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        // Accept both `--flag value` and `--flag=value`.
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) => (flag.to_owned(), Some(value.to_owned())),
            None => (arg, None),
        };
        let mut count = || {
            let v = inline
                .clone()
                .or_else(|| it.next())
                .ok_or_else(|| Stop::Usage(format!("{flag} needs a value\n\n{USAGE}")))?;
            match v.parse::<usize>() {
                Ok(n) if n > 0 => Ok(n),
                _ => Err(Stop::Usage(format!(
                    "{flag} {v:?}: expected a positive integer"
                ))),
            }
        };
        match flag.as_str() {
            "--quick" => quick = true,
            "--latency-requests" => latency = Some(count()?),
            "--throughput-requests" => throughput = Some(count()?),
            "--keep-tmp" => keep_tmp = true,
            "-h" | "--help" => return Err(Stop::Help),
            other => {
                return Err(Stop::Usage(format!(
                    "unknown argument {other:?}\n\n{USAGE}"
                )));
            }
        }
    }
    let (default_latency, default_throughput) = if quick {
        (QUICK_LATENCY_REQUESTS, QUICK_THROUGHPUT_REQUESTS)
    } else {
        (DEFAULT_LATENCY_REQUESTS, DEFAULT_THROUGHPUT_REQUESTS)
    };
    Ok(Args {
        latency_requests: latency.unwrap_or(default_latency),
        throughput_requests: throughput.unwrap_or(default_throughput),
        keep_tmp,
    })
}

/// A mode's flags that each take a positive count (`--requests 5000`), in the order of `flags`,
/// each starting at its default; an unknown flag, a bad count or `--help` is an error carrying
/// `usage` to print.
pub fn counts<const N: usize>(
    args: &[String],
    flags: [(&str, usize); N],
    usage: &str,
) -> Result<[usize; N], String> {
    let mut values = flags.map(|(_, default)| default);
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        if flag == "-h" || flag == "--help" {
            return Err(usage.to_string());
        }
        let Some(slot) = flags.iter().position(|(name, _)| name == flag) else {
            return Err(format!("unknown argument {flag:?}\n\n{usage}"));
        };
        values[slot] = it
            .next()
            .and_then(|v| v.parse::<usize>().ok())
            .filter(|n| *n > 0)
            .ok_or_else(|| format!("{flag} needs a positive integer\n\n{usage}"))?;
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_strs(args: &[&str]) -> Result<Args, Stop> {
        parse(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn no_flags_give_the_full_run() {
        assert_eq!(
            parse_strs(&[]),
            Ok(Args {
                latency_requests: 2000,
                throughput_requests: 20_000,
                keep_tmp: false
            })
        );
    }

    #[test]
    fn an_explicit_count_beats_quick_in_either_order() {
        for args in [
            &["--latency-requests", "50", "--quick"][..],
            &["--quick", "--latency-requests=50"][..],
        ] {
            assert_eq!(
                parse_strs(args),
                Ok(Args {
                    latency_requests: 50,
                    throughput_requests: 2000,
                    keep_tmp: false
                })
            );
        }
    }

    #[test]
    fn zero_and_unknown_flags_are_usage_errors() {
        assert!(matches!(
            parse_strs(&["--throughput-requests", "0"]),
            Err(Stop::Usage(_))
        ));
        assert!(matches!(parse_strs(&["--fast"]), Err(Stop::Usage(_))));
        assert!(matches!(
            parse_strs(&["--latency-requests"]),
            Err(Stop::Usage(_))
        ));
    }
}
