//! The `mock-upstream` binary: serves the mock on one address until Ctrl-C, for the benchmark and
//! for poking at by hand. Faults come from each request's `"mock"` object, since there is no
//! library handle to script it with; recording is off so memory stays flat under load.
//!
//! Usage: `mock-upstream [--listen 127.0.0.1:9000] [--threads N]`

#![deny(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::process::ExitCode;

use mock_upstream::MockUpstream;

const USAGE: &str = "usage: mock-upstream [--listen ADDR] [--threads N]

  --listen ADDR   address to serve on (default 127.0.0.1:9000; port 0 picks a free one)
  --threads N     tokio worker threads (default: one per CPU)";

struct Args {
    listen: SocketAddr,
    threads: Option<usize>,
}

/// Why parsing stopped: a usage error (exit 2), or `--help` (print usage, exit 0).
enum Stop {
    Help,
    Usage(String),
}

fn parse_args() -> Result<Args, Stop> {
    let mut args = Args {
        listen: SocketAddr::from(([127, 0, 0, 1], 9000)),
        threads: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        // Accept both `--flag value` and `--flag=value`.
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) => (flag.to_owned(), Some(value.to_owned())),
            None => (arg, None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| it.next())
                .ok_or_else(|| Stop::Usage(format!("{flag} needs a value\n\n{USAGE}")))
        };
        match flag.as_str() {
            "--listen" => {
                let v = value()?;
                args.listen = v.parse().map_err(|e| {
                    Stop::Usage(format!("--listen {v:?}: {e}; expected e.g. 127.0.0.1:9000"))
                })?;
            }
            "--threads" => {
                let v = value()?;
                let n: usize = v.parse().map_err(|e| {
                    Stop::Usage(format!("--threads {v:?}: {e}; expected a positive integer"))
                })?;
                if n == 0 {
                    return Err(Stop::Usage("--threads must be at least 1".to_owned()));
                }
                args.threads = Some(n);
            }
            "-h" | "--help" => return Err(Stop::Help),
            other => {
                return Err(Stop::Usage(format!(
                    "unknown argument {other:?}\n\n{USAGE}"
                )));
            }
        }
    }
    Ok(args)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(Stop::Help) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(Stop::Usage(message)) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    runtime.enable_all();
    if let Some(n) = args.threads {
        runtime.worker_threads(n);
    }
    let runtime = match runtime.build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("could not start the tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let mock = match MockUpstream::start_on(args.listen).await {
            Ok(mock) => mock,
            Err(e) => {
                eprintln!("could not listen on {}: {e}", args.listen);
                return ExitCode::FAILURE;
            }
        };
        mock.set_recording(false);
        // Scripts wait for this exact line to learn the port.
        println!("listening on {}", mock.base_url());
        if let Err(e) = tokio::signal::ctrl_c().await {
            eprintln!("could not wait for Ctrl-C: {e}");
            return ExitCode::FAILURE;
        }
        mock.shutdown().await;
        ExitCode::SUCCESS
    })
}
