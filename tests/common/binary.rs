//! The real `stockyard` binary, for the tests that run it as an operator would.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_stockyard");

/// A command with no inherited STOCKYARD_* or OPENAI_* variables, on `db`.
pub fn stockyard(db: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    for (key, _) in std::env::vars() {
        if key.starts_with("STOCKYARD_") || key.starts_with("OPENAI_") {
            cmd.env_remove(key);
        }
    }
    cmd.env("STOCKYARD_DB", db).env("USER", "tester");
    cmd
}

/// The address a `serve` child prints on stdout, and its stderr as it comes (empty when stderr
/// is not piped), each read on a thread of its own; panics with the log when no address comes
/// within 30 s. The child's stdout must be piped.
pub fn listening(child: &mut Child) -> (String, Arc<Mutex<String>>) {
    let stdout = child.stdout.take().expect("serve's stdout is piped");
    let log = Arc::new(Mutex::new(String::new()));
    if let Some(stderr) = child.stderr.take() {
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push_str(&(line + "\n"));
            }
        });
    }
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(url) = line.strip_prefix("listening on ") {
                let _ = tx.send(url.to_string());
            }
        }
    });
    let url = rx
        .recv_timeout(Duration::from_secs(30))
        .unwrap_or_else(|_| panic!("server did not start: {}", log.lock().unwrap()));
    (url, log)
}

/// SIGTERM, then a bounded wait (20 s) for the child to exit with status 0; `log` is shown when
/// it does not.
pub fn terminate(mut child: Child, log: &Mutex<String>) {
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert_eq!(status.code(), Some(0), "{}", log.lock().unwrap());
            return;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("server did not exit within 20 s: {}", log.lock().unwrap());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
