//! The `stockyard` binary: parse arguments, start logging, hand over to `cli::run`.
//! Everything else lives in the library so tests can drive it in-process.

use std::process::ExitCode;

/// Rust's allocations go to mimalloc: its per-thread free lists take no lock, where glibc's
/// malloc took a sixth of the instructions of a proxied request (callgrind: 147,353 -> 132,875
/// per non-streamed request with it), and worker threads freeing each other's buffers contend on
/// glibc's arena locks under load.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in mimalloc v3's `mi_option_e` (include/mimalloc.h); the Rust
/// bindings do not name it. The test below checks the index against its documented default.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// mimalloc keeps pages it no longer uses for a second before giving them back to the kernel;
/// under load that held about 4 MB more resident (47.5 against 43 MB peak in `scripts/bench`)
/// for no measurable CPU: the extra page faults cost well under a microsecond a request.
fn purge_freed_memory_at_once() {
    // A `MIMALLOC_PURGE_DELAY` the operator set wins.
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some_and(|v| !v.is_empty()) {
        return;
    }
    // SAFETY: sets one integer option; mimalloc reads it each time it schedules a purge.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0) };
}

/// SQLite's allocations still go to glibc, which gives each thread that allocates under
/// contention an arena of its own, up to eight per core, and memory freed in one arena is not
/// reused by another: when all allocations went there, that alone held a third of the proxy's
/// resident memory (42 MB against 30 MB with two arenas, at the same throughput in `bench soak`).
const MALLOC_ARENAS: i32 = 2;

fn main() -> ExitCode {
    purge_freed_memory_at_once();
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

#[cfg(test)]
mod tests {
    #[test]
    fn the_purge_delay_option_is_the_one_set() {
        // SAFETY: reads and sets one integer option.
        unsafe {
            // v3 documents the purge delay's default as 1000 ms; the index is right if the
            // option there has it (and the set below then lands on it).
            assert_eq!(
                libmimalloc_sys::mi_option_get(super::MI_OPTION_PURGE_DELAY),
                1000
            );
            super::purge_freed_memory_at_once();
            assert_eq!(
                libmimalloc_sys::mi_option_get(super::MI_OPTION_PURGE_DELAY),
                0
            );
        }
    }
}
