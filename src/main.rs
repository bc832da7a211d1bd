//! The `stockyard` binary: parse arguments, start logging, hand over to `cli::run`.
//! Everything else lives in the library so tests can drive it in-process.

use std::process::ExitCode;

/// Rust's allocations go to mimalloc: its per-thread free lists take no lock, where glibc's
/// malloc took a sixth of the instructions of a proxied request (callgrind: 147,353 -> 134,742
/// per non-streamed request with it), and worker threads freeing each other's buffers contend on
/// glibc's arena locks under load.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// SQLite's allocations still go to glibc, which gives each thread that allocates under contention an arena of its own, up to eight per
/// core, and memory freed in one arena is not reused by another: under load that alone held a
/// third of the proxy's resident memory (42 MB against 30 MB with two arenas, at the same
/// throughput in `bench soak`).
const MALLOC_ARENAS: i32 = 2;

fn main() -> ExitCode {
    limit_malloc_arenas();
    stockyard::cli::main()
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn limit_malloc_arenas() {
    // A `MALLOC_ARENA_MAX` the operator set wins.
    if std::env::var_os("MALLOC_ARENA_MAX").is_some() {
        return;
    }
    // SAFETY: called before any other thread exists; mallopt takes two integers.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, MALLOC_ARENAS);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn limit_malloc_arenas() {}
