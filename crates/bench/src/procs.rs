//! The child processes (mock, Stockyard, nginx, bare-proxy) and what the benchmark reads about them from the
//! kernel: CPU time, peak RSS, the CPUs we may pin to.
//!
//! Invariant: every child lives in a [`Proc`], whose `Drop` kills and reaps it, and is started
//! with `PR_SET_PDEATHSIG` so it dies even if the benchmark itself is killed with SIGKILL. Every
//! wait here has a deadline. Children are spawned from the main thread only: the death signal
//! fires when the *thread* that forked exits, not the process.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

/// A temp directory for the database, configs and the children's stderr; removed on drop unless
/// kept. Made by hand to keep `tempfile` out of the dependencies.
pub struct Scratch {
    pub path: PathBuf,
    pub keep: bool,
}

impl Scratch {
    pub fn create(keep: bool) -> Result<Scratch, String> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path =
            std::env::temp_dir().join(format!("stockyard-bench-{}-{nanos}", std::process::id()));
        // `create_dir`, not `create_dir_all`: failing on an existing path guarantees the
        // directory is ours before `Drop` deletes it.
        std::fs::create_dir(&path)
            .map_err(|e| format!("could not create temp dir {}: {e}", path.display()))?;
        Ok(Scratch { path, keep })
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if !self.keep {
            // Best effort: a leftover directory in /tmp is not worth failing the run over.
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// A started child. Dropping it kills (SIGKILL) and reaps it.
pub struct Proc {
    pub name: &'static str,
    child: Child,
    stderr_path: PathBuf,
    exited: Option<ExitStatus>,
}

impl Proc {
    /// Spawns `cmd` with stdout piped and stderr to `<dir>/<name>.stderr`. With `ready_prefix`,
    /// waits up to `timeout` for a stdout line starting with it and returns the rest of the line.
    pub fn start(
        name: &'static str,
        mut cmd: Command,
        dir: &Path,
        ready_prefix: Option<&'static str>,
        timeout: Duration,
    ) -> Result<(Proc, Option<String>), String> {
        let stderr_path = dir.join(format!("{name}.stderr"));
        let stderr = File::create(&stderr_path)
            .map_err(|e| format!("could not create {}: {e}", stderr_path.display()))?;
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr));
        die_with_parent(&mut cmd);
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("could not start {name} ({cmd:?}): {e}"))?;
        let stdout = child.stdout.take();
        let mut proc = Proc {
            name,
            child,
            stderr_path,
            exited: None,
        };
        let (Some(prefix), Some(stdout)) = (ready_prefix, stdout) else {
            return Ok((proc, None));
        };
        let (tx, rx) = mpsc::channel();
        // The thread keeps draining stdout after the ready line so that a chatty child can never
        // block on a full pipe; it ends when the child's stdout closes.
        std::thread::Builder::new()
            .name(format!("{name}-stdout"))
            .spawn(move || {
                let mut tx = Some(tx);
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    if let Some(rest) = line.strip_prefix(prefix)
                        && let Some(tx) = tx.take()
                    {
                        // The receiver may have timed out and gone; nothing to do then.
                        let _ = tx.send(rest.to_owned());
                    }
                }
            })
            .map_err(|e| format!("could not start a thread to read {name}'s stdout: {e}"))?;
        match rx.recv_timeout(timeout) {
            Ok(rest) => Ok((proc, Some(rest))),
            Err(RecvTimeoutError::Timeout) => Err(format!(
                "{name} did not print {prefix:?} within {}s{}",
                timeout.as_secs(),
                proc.stderr_report(40)
            )),
            Err(RecvTimeoutError::Disconnected) => {
                // stdout closed without the line: the child is exiting. Give it a moment so the
                // status (and its last stderr) can be reported.
                let status = proc.wait_exit(Duration::from_secs(2));
                Err(format!(
                    "{name} closed stdout without printing {prefix:?} ({}){}",
                    status.map_or("still running".to_owned(), |s| s.to_string()),
                    proc.stderr_report(40)
                ))
            }
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `Err` with the exit status and stderr if the child has exited.
    pub fn check_alive(&mut self) -> Result<(), String> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => {
                self.exited = Some(status);
                Err(format!(
                    "{} exited unexpectedly ({status}){}",
                    self.name,
                    self.stderr_report(40)
                ))
            }
            Err(e) => Err(format!("could not check on {}: {e}", self.name)),
        }
    }

    /// Sends SIGTERM and waits up to `timeout` for the child to exit.
    pub fn terminate(&mut self, timeout: Duration) -> Result<ExitStatus, String> {
        let pid = libc::pid_t::try_from(self.pid())
            .map_err(|_| format!("{} has a pid out of range", self.name))?;
        // SAFETY: kill(2) takes plain integers, so it has no memory-safety preconditions. The pid
        // is our own child, not yet reaped (we only reap in `wait_exit`/`Drop`), so it can't have
        // been recycled for another process.
        if self.exited.is_none() && unsafe { libc::kill(pid, libc::SIGTERM) } != 0 {
            return Err(format!(
                "could not send SIGTERM to {}: {}",
                self.name,
                std::io::Error::last_os_error()
            ));
        }
        self.wait_exit(timeout).ok_or_else(|| {
            format!(
                "{} did not exit within {}s of SIGTERM",
                self.name,
                timeout.as_secs()
            )
        })
    }

    /// Polls for exit until `timeout`; `None` if still running.
    fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.exited {
                return Some(status);
            }
            match self.child.try_wait() {
                Ok(Some(status)) => self.exited = Some(status),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Ok(None) | Err(_) => return None,
            }
        }
    }

    /// The last `lines` lines of the child's stderr, formatted to append to a message; empty if
    /// it wrote nothing.
    pub fn stderr_report(&self, lines: usize) -> String {
        let tail = self.stderr_tail(lines);
        if tail.is_empty() {
            String::new()
        } else {
            format!("\n--- {} stderr (last lines) ---\n{tail}", self.name)
        }
    }

    pub fn stderr_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.stderr_path).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    pub fn stderr_line_count(&self) -> usize {
        std::fs::read_to_string(&self.stderr_path)
            .map(|t| t.lines().count())
            .unwrap_or(0)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.exited.is_none() {
            // Errors mean it is already gone; SIGKILL can't be ignored, so the wait is short.
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Makes the child get SIGKILL when the benchmark dies, however it dies.
#[cfg(target_os = "linux")]
fn die_with_parent(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs between fork and exec, where only async-signal-safe calls are
    // allowed; prctl(2) is a bare syscall that neither allocates nor takes locks, and
    // `last_os_error` only reads errno. The setting survives `taskset`'s exec of the real binary.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn die_with_parent(_cmd: &mut Command) {}

/// A command that runs `program`, under `taskset -c CPU` when `cpu` is given.
pub fn command_on(program: &Path, cpu: Option<usize>) -> Command {
    match cpu {
        Some(cpu) => {
            let mut cmd = Command::new("taskset");
            cmd.arg("-c").arg(cpu.to_string()).arg(program);
            cmd
        }
        None => Command::new(program),
    }
}

/// Where the mock and the proxies run.
pub struct Pinning {
    pub mock_cpu: Option<usize>,
    pub proxy_cpu: Option<usize>,
    pub note: String,
}

impl Pinning {
    /// Pins to the first two CPUs this process may use (0 and 1 on a plain machine), when there
    /// are two and `taskset` works; otherwise leaves everything to the scheduler.
    pub fn choose() -> Pinning {
        let cpus = allowed_cpus().unwrap_or_default();
        let unpinned = |why: String| Pinning {
            mock_cpu: None,
            proxy_cpu: None,
            note: format!("unpinned ({why})"),
        };
        let [a, b, ..] = cpus[..] else {
            return unpinned(format!("{} allowed CPU(s)", cpus.len()));
        };
        let works = |cpu: usize| {
            Command::new("taskset")
                .arg("-c")
                .arg(cpu.to_string())
                .arg("true")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        if !(works(a) && works(b)) {
            return unpinned("taskset missing or not permitted".to_owned());
        }
        Pinning {
            mock_cpu: Some(a),
            proxy_cpu: Some(b),
            note: format!(
                "pinned with taskset: mock on CPU {a}, proxy (stockyard, nginx or bare-proxy) on CPU {b}; \
                 load generator unpinned"
            ),
        }
    }
}

/// The CPUs this process may run on, from `Cpus_allowed_list` in `/proc/self/status`.
fn allowed_cpus() -> Option<Vec<usize>> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let list = status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))?;
    parse_cpu_list(list.trim())
}

/// Parses a kernel CPU list such as `0-3,5,7-8`.
fn parse_cpu_list(list: &str) -> Option<Vec<usize>> {
    let mut cpus = Vec::new();
    for part in list.split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((lo, hi)) => cpus.extend(lo.parse::<usize>().ok()?..=hi.parse::<usize>().ok()?),
            None => cpus.push(part.parse().ok()?),
        }
    }
    Some(cpus)
}

/// Where a child's CPU time comes from. Both sources count every thread the process ever ran,
/// exited ones included, which matters because Stockyard's blocking pool comes and goes.
#[derive(Clone, Copy, Debug)]
pub enum CpuSource {
    /// The kernel's per-process CPU clock (`clock_getcpuclockid`): nanosecond resolution.
    Clock,
    /// utime + stime from `/proc/PID/stat`, in clock ticks (10 ms at the usual 100 Hz), which
    /// makes short runs coarse.
    ProcStat { ticks_per_s: u64 },
}

impl CpuSource {
    /// The clock if the kernel lets us read `pid`'s, else `/proc/PID/stat`.
    pub fn detect(pid: u32) -> CpuSource {
        if process_clock_ns(pid).is_some() {
            CpuSource::Clock
        } else {
            CpuSource::ProcStat {
                ticks_per_s: ticks_per_second(),
            }
        }
    }

    /// CPU time `pid` has used so far, in nanoseconds.
    pub fn read_ns(self, pid: u32) -> Option<u64> {
        match self {
            CpuSource::Clock => process_clock_ns(pid),
            CpuSource::ProcStat { ticks_per_s } => {
                let ticks = stat_ticks(pid)?;
                Some(ticks.saturating_mul(1_000_000_000) / ticks_per_s.max(1))
            }
        }
    }

    pub fn describe(self) -> String {
        match self {
            CpuSource::Clock => "the kernel's per-process CPU clock (ns resolution)".to_owned(),
            CpuSource::ProcStat { ticks_per_s } => {
                format!("/proc/PID/stat utime+stime at {ticks_per_s} ticks/s")
            }
        }
    }
}

/// All threads' CPU time of `pid` from its process CPU-time clock, in nanoseconds.
fn process_clock_ns(pid: u32) -> Option<u64> {
    let pid = libc::pid_t::try_from(pid).ok()?;
    let mut clock: libc::clockid_t = 0;
    // SAFETY: `clock` is a live, writable clockid_t for the whole call.
    if unsafe { libc::clock_getcpuclockid(pid, &mut clock) } != 0 {
        return None;
    }
    // SAFETY: timespec is plain integers (plus padding on some targets), so all-zero is valid.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    // SAFETY: `ts` is a live, writable timespec for the whole call.
    if unsafe { libc::clock_gettime(clock, &mut ts) } != 0 {
        return None;
    }
    let secs = u64::try_from(ts.tv_sec).ok()?;
    let nanos = u64::try_from(ts.tv_nsec).ok()?;
    Some(secs.saturating_mul(1_000_000_000).saturating_add(nanos))
}

/// utime + stime of every thread of `pid`, in clock ticks: fields 14 and 15 of `/proc/PID/stat`.
pub fn stat_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat_ticks(&stat)
}

fn parse_stat_ticks(stat: &str) -> Option<u64> {
    // Field 2 is the command name in parentheses and may itself hold spaces or ')', so count
    // fields from the last ')': the next field is 3 (state), making utime the 12th after it.
    let (_, rest) = stat.rsplit_once(')')?;
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// Peak resident set size (`VmHWM`) of `pid`, in kB.
pub fn peak_rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let value = status.lines().find_map(|l| l.strip_prefix("VmHWM:"))?;
    value.trim().trim_end_matches("kB").trim().parse().ok()
}

/// Kernel clock ticks per second, the unit of `/proc/PID/stat` times.
pub fn ticks_per_second() -> u64 {
    // SAFETY: sysconf(3) takes an integer and returns one; no pointers are involved.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    // -1 means unknown; 100 is what Linux has reported to user space on every architecture.
    u64::try_from(ticks).ok().filter(|&t| t > 0).unwrap_or(100)
}

/// `name` in one of the `PATH` directories, if it is there.
pub fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// The address in the rest of a `listening on http://` line, minus `suffix`.
pub fn parse_addr(
    rest: Option<&str>,
    suffix: &str,
    name: &str,
) -> Result<std::net::SocketAddr, String> {
    let rest = rest.unwrap_or_default().trim();
    let addr = rest.strip_suffix(suffix).unwrap_or(rest);
    addr.parse().map_err(|e| {
        format!("{name} printed `listening on http://{rest}`: {addr:?} is not an address ({e})")
    })
}

pub fn count_traces(db: &Path) -> Result<u64, String> {
    let conn = rusqlite::Connection::open(db)
        .map_err(|e| format!("could not open {}: {e}", db.display()))?;
    // The proxy has exited, so nothing should hold a lock; the timeout only bounds the unexpected.
    conn.busy_timeout(Duration::from_secs(5))
        .map_err(|e| format!("could not set a busy timeout: {e}"))?;
    let rows: i64 = conn
        .query_row("SELECT COUNT(*) FROM traces", [], |row| row.get(0))
        .map_err(|e| format!("could not count traces in {}: {e}", db.display()))?;
    u64::try_from(rows).map_err(|_| format!("negative trace count {rows}"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn ready_lines_parse() {
        assert_eq!(
            parse_addr(Some("127.0.0.1:4000/v1"), "/v1", "mock").ok(),
            "127.0.0.1:4000".parse().ok()
        );
        assert_eq!(
            parse_addr(Some("127.0.0.1:4001"), "", "proxy").ok(),
            "127.0.0.1:4001".parse().ok()
        );
        assert!(parse_addr(None, "", "proxy").is_err());
    }

    use super::*;

    #[test]
    fn cpu_lists_expand_ranges() {
        assert_eq!(parse_cpu_list("0-1"), Some(vec![0, 1]));
        assert_eq!(parse_cpu_list("0-2,5,7-8"), Some(vec![0, 1, 2, 5, 7, 8]));
        assert_eq!(parse_cpu_list("3"), Some(vec![3]));
        assert_eq!(parse_cpu_list("x"), None);
    }

    #[test]
    fn stat_ticks_survive_odd_command_names() {
        let stat = "42 (a b) c) S 1 42 42 0 -1 4194560 100 0 0 0 7 5 0 0 20 0 3 0";
        assert_eq!(parse_stat_ticks(stat), Some(12));
    }

    #[test]
    fn own_process_has_readable_stats() {
        let pid = std::process::id();
        assert!(stat_ticks(pid).is_some());
        assert!(peak_rss_kb(pid).is_some_and(|kb| kb > 0));
        // Burn a little CPU so the clock has moved past zero.
        let mut x = 0u64;
        for i in 0..1_000_000u64 {
            x = std::hint::black_box(x.wrapping_add(i));
        }
        assert!(process_clock_ns(pid).is_some_and(|ns| ns > 0));
        let source = CpuSource::ProcStat { ticks_per_s: 100 };
        assert!(source.read_ns(pid).is_some());
    }
}
