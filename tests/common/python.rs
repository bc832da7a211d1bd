//! A Python virtual environment holding pinned packages, for the tests that drive an official
//! Python SDK against the proxy. Made under the target directory on first use and reused while
//! it holds the pins; `Err` (the test is skipped, reason printed) only when `python3` is missing
//! or can't make a venv. A failed `pip install` panics: with a working Python that is a failure
//! to report. Every child process runs under a time limit.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const VENV_TIMEOUT: Duration = Duration::from_secs(120);
const PIP_TIMEOUT: Duration = Duration::from_secs(300);
const PROBE_TIMEOUT: Duration = Duration::from_secs(30);

/// Exits non-zero, naming the first difference, unless every `name==version` line of the
/// requirements file (argv[1]) is installed at exactly that version.
const PINS_HELD: &str = r##"
import sys
from importlib import metadata
for line in open(sys.argv[1]):
    spec = line.split("#")[0].strip()
    if not spec:
        continue
    name, _, version = spec.partition("==")
    try:
        have = metadata.version(name)
    except metadata.PackageNotFoundError:
        have = None
    if have != version:
        sys.exit(f"{name}: pinned {version or '(unpinned)'}, installed {have}")
"##;

/// The interpreter of the venv `name` (under the target directory's tmp) with `requirements`
/// (relative to the crate root) installed.
pub fn venv(name: &str, requirements: &str) -> Result<PathBuf, String> {
    match run(Command::new("python3").arg("--version"), PROBE_TIMEOUT) {
        Ok(ran) if ran.success() => {}
        Ok(ran) => return Err(format!("`python3 --version` failed: {ran}")),
        Err(e) => return Err(format!("python3 is not on PATH ({e})")),
    }
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let python = venv.join("bin").join("python");
    if !python.exists() {
        match run(
            Command::new("python3").arg("-m").arg("venv").arg(&venv),
            VENV_TIMEOUT,
        ) {
            Ok(ran) if ran.success() => {}
            failed => {
                let _ = std::fs::remove_dir_all(&venv);
                let why = match failed {
                    Ok(ran) => ran.to_string(),
                    Err(e) => e.to_string(),
                };
                return Err(format!(
                    "`python3 -m venv {}` failed: {why}",
                    venv.display()
                ));
            }
        }
    }
    let requirements = Path::new(env!("CARGO_MANIFEST_DIR")).join(requirements);
    let pins_held = || {
        run(
            Command::new(&python)
                .arg("-c")
                .arg(PINS_HELD)
                .arg(&requirements),
            PROBE_TIMEOUT,
        )
        .unwrap_or_else(|e| panic!("could not run {}: {e}", python.display()))
    };
    if pins_held().success() {
        return Ok(python);
    }
    let installed = run(
        Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--disable-pip-version-check",
                "-q",
                "-r",
            ])
            .arg(&requirements),
        PIP_TIMEOUT,
    )
    .unwrap_or_else(|e| panic!("could not run pip: {e}"));
    assert!(
        installed.success(),
        "pip install -r {} failed: {installed}",
        requirements.display()
    );
    let after = pins_held();
    assert!(
        after.success(),
        "pip install succeeded but the pins don't hold: {after}"
    );
    Ok(python)
}

/// What a child process did: its exit status (`None` when killed at the time limit) and output.
pub struct Ran {
    pub status: Option<ExitStatus>,
    pub limit: Duration,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    pub fn success(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }
}

impl std::fmt::Display for Ran {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.status {
            Some(status) => write!(f, "{status}")?,
            None => write!(f, "killed after {} s", self.limit.as_secs())?,
        }
        write!(
            f,
            "\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.stdout.trim_end(),
            self.stderr.trim_end()
        )
    }
}

/// Runs `command` to its end, or kills it once `limit` has passed. `Err` only when it can't start.
pub fn run(command: &mut Command, limit: Duration) -> std::io::Result<Ran> {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let collect = |rx: mpsc::Receiver<Vec<u8>>| {
        let bytes = rx.recv_timeout(Duration::from_secs(5)).unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    };
    Ok(Ran {
        status,
        limit,
        stdout: collect(stdout),
        stderr: collect(stderr),
    })
}

fn drain(pipe: Option<impl Read + Send + 'static>) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut bytes);
        }
        let _ = tx.send(bytes);
    });
    rx
}
