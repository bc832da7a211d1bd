//! The floors printed beside Stockyard: nginx, a plain reverse proxy (`nginx.rs`), and bare
//! hyper, our stack with nothing on top (`bare.rs`). Both are optional: a floor that is missing or
//! won't start costs only its column, and the report says why.

use std::net::SocketAddr;
use std::path::Path;

use crate::Binaries;
use crate::procs::{self, Proc};
use crate::stats::Role;
use crate::{bare, nginx};

/// Starts a floor: its program, the scratch dir, the mock, the CPU to pin it to.
type Starter = fn(&Path, &Path, SocketAddr, Option<usize>) -> Result<(Proc, SocketAddr), String>;

/// One floor that is running.
pub struct Floor {
    pub role: Role,
    /// Its column's header and its target's label.
    pub label: &'static str,
    pub proc: Proc,
    pub addr: SocketAddr,
}

/// Starts each floor in front of `mock`, pinned to `cpu`. Returns the ones that run, and a line
/// per floor for the report: where it runs, or why it doesn't.
pub fn start(
    binaries: &Binaries,
    dir: &Path,
    mock: SocketAddr,
    cpu: Option<usize>,
) -> (Vec<Floor>, Vec<String>) {
    let mut floors = Vec::new();
    let mut notes = Vec::new();
    let nginx_path = procs::find_on_path("nginx");
    let candidates: [(Role, &'static str, Option<&Path>, &str, Starter); 2] = [
        (
            Role::Nginx,
            "nginx",
            nginx_path.as_deref(),
            "not on PATH",
            nginx::start,
        ),
        (
            Role::Bare,
            "bare hyper",
            binaries.bare.as_deref(),
            "not built",
            bare::start,
        ),
    ];
    for (role, label, program, absent, start) in candidates {
        let started = match program {
            None => Err(format!("{absent}; floor skipped")),
            Some(program) => start(program, dir, mock, cpu)
                .map(|(proc, addr)| (program, proc, addr))
                .map_err(|e| format!("failed to start, skipped: {e}")),
        };
        notes.push(match started {
            Ok((program, proc, addr)) => {
                floors.push(Floor {
                    role,
                    label,
                    proc,
                    addr,
                });
                format!("{label}: {} on {addr}", program.display())
            }
            Err(why) => format!("{label}: {why}"),
        });
    }
    (floors, notes)
}
