//! The `stockyard` binary: parse arguments, start logging, hand over to `cli::run`.
//! Everything else lives in the library so tests can drive it in-process.

use std::process::ExitCode;

fn main() -> ExitCode {
    stockyard::cli::main()
}
