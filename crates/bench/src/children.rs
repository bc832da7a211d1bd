//! The programs every mode of the benchmark starts: where their binaries are, and how the mock
//! and Stockyard are started, in an environment of their own.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::READY_TIMEOUT;
use crate::governance;
use crate::procs::{Proc, command_on, parse_addr};

/// The release binaries this benchmark drives.
pub(crate) struct Binaries {
    pub stockyard: PathBuf,
    pub mock: PathBuf,
    /// The second floor; optional, so a benchmark built without it still runs.
    pub bare: Option<PathBuf>,
}

pub(crate) fn locate_binaries() -> Result<Binaries, String> {
    let exe = std::env::current_exe()
        .map_err(|e| format!("could not find this executable's path: {e}"))?;
    let dir = exe
        .parent()
        .ok_or_else(|| format!("{} has no parent directory", exe.display()))?;
    let find = |name: &str| {
        let path = dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
        if path.is_file() {
            Ok(path)
        } else {
            Err(format!(
                "{} not found; run `cargo build --release --workspace` first (or use scripts/bench)",
                path.display()
            ))
        }
    };
    Ok(Binaries {
        stockyard: find("stockyard")?,
        mock: find("mock-upstream")?,
        bare: find("bare-proxy").ok(),
    })
}

/// The mock upstream on a free loopback port with one worker thread (on `cpu` when given), and
/// the address it listens on.
pub(crate) fn start_mock(
    program: &Path,
    dir: &Path,
    cpu: Option<usize>,
) -> Result<(Proc, SocketAddr), String> {
    let mut cmd = command_on(program, cpu);
    cmd.args(["--listen", "127.0.0.1:0", "--threads", "1"]);
    let (mock, line) = Proc::start(
        "mock-upstream",
        cmd,
        dir,
        Some("listening on http://"),
        READY_TIMEOUT,
    )?;
    Ok((mock, parse_addr(line.as_deref(), "/v1", "mock-upstream")?))
}

/// `stockyard serve` as [`stockyard_command`] makes it, started and ready, and the address it
/// listens on.
pub(crate) fn start_stockyard(
    binaries: &Binaries,
    cpu: Option<usize>,
    dir: &Path,
    db: &Path,
    config: &Path,
    mock: SocketAddr,
) -> Result<(Proc, SocketAddr), String> {
    let (stockyard, line) = Proc::start(
        "stockyard",
        stockyard_command(&binaries.stockyard, cpu, db, config, mock),
        dir,
        Some("listening on http://"),
        READY_TIMEOUT,
    )?;
    Ok((stockyard, parse_addr(line.as_deref(), "", "stockyard")?))
}

/// `stockyard serve` on a free loopback port with its own database and the group's config file,
/// pointed at the mock, with no `STOCKYARD_*` settings leaking in from the caller's environment.
/// The plain model still comes from the `openai` preset that `OPENAI_*` configures.
pub(crate) fn stockyard_command(
    program: &Path,
    cpu: Option<usize>,
    db: &Path,
    config: &Path,
    mock: SocketAddr,
) -> std::process::Command {
    let mut cmd = command_on(program, cpu);
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--db"])
        .arg(db)
        .arg("--config")
        .arg(config);
    proxy_env(&mut cmd, mock);
    cmd
}

/// The environment Stockyard runs in: no `STOCKYARD_*` from the caller's shell, the OpenAI
/// provider pointed at the mock, and logging at warn.
pub(crate) fn proxy_env(cmd: &mut std::process::Command, mock: SocketAddr) {
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("STOCKYARD_") {
            cmd.env_remove(key);
        }
    }
    cmd.env("OPENAI_API_KEY", "sk-bench")
        .env("STOCKYARD_API_KEYS", governance::STATIC_KEY)
        .env("OPENAI_BASE_URL", format!("http://{mock}/v1"))
        .env("STOCKYARD_LOG", "warn");
}
