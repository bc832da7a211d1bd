//! The second floor: `bare-proxy` (built from `src/bin/bare-proxy.rs` next to this benchmark),
//! the least a hyper reverse proxy does, run like Stockyard (same CPU pin, same mock). Between
//! nginx and it lies the cost of the stack Stockyard is built on; between it and Stockyard, the
//! cost of Stockyard's own work (parsing, the module chain, costs, the trace row).

use std::net::SocketAddr;
use std::path::Path;

use crate::READY_TIMEOUT;
use crate::procs::{Proc, command_on, parse_addr};

/// Starts `program` in front of `mock` and waits for its "listening on" line.
pub fn start(
    program: &Path,
    dir: &Path,
    mock: SocketAddr,
    cpu: Option<usize>,
) -> Result<(Proc, SocketAddr), String> {
    let mut cmd = command_on(program, cpu);
    // Stockyard's `main` has mimalloc give freed pages back at once; the floor does the same.
    cmd.arg(mock.to_string()).env("MIMALLOC_PURGE_DELAY", "0");
    let (proc, line) = Proc::start(
        "bare-proxy",
        cmd,
        dir,
        Some("listening on http://"),
        READY_TIMEOUT,
    )?;
    Ok((proc, parse_addr(line.as_deref(), "", "bare-proxy")?))
}
