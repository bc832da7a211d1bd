//! Provider credentials with the real binary: `providers add` beside a running server goes
//! through it and the key is used on the next request; `secrets rotate` (offline and through the
//! server) keeps every credential usable, before and after a restart with the new key file; a
//! wrong master key stops `serve` with a clear error and leaves the database as it was; with
//! `STOCKYARD_MASTER_KEY`, rotation needs the new key.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::{PROVIDER_KEY, TestClient, chat};
use mock_upstream::MockUpstream;

use common::binary::{listening, stockyard, terminate};

/// Runs `args` (with `stdin` fed in), bounded; returns (exit code, stdout, stderr).
fn run(db: &Path, args: &[&str], stdin: &str, env: &[(&str, &str)]) -> (i32, String, String) {
    let mut cmd = stockyard(db);
    cmd.args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("stockyard {args:?} still running after 60 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

fn ok(db: &Path, args: &[&str], stdin: &str, env: &[(&str, &str)]) -> String {
    let (code, out, err) = run(db, args, stdin, env);
    assert_eq!(code, 0, "stockyard {args:?}: {out}{err}");
    out
}

/// A `stockyard serve` child, killed if the test fails before it stops.
struct Served {
    child: Option<Child>,
    client: TestClient,
}

impl Served {
    fn start(db: &Path, mock: &MockUpstream, env: &[(&str, &str)]) -> Served {
        let mut cmd = stockyard(db);
        cmd.args(["serve", "--listen", "127.0.0.1:0"])
            .env("OPENAI_API_KEY", PROVIDER_KEY)
            .env("OPENAI_BASE_URL", mock.base_url())
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut child = cmd.spawn().unwrap();
        let (url, _) = listening(&mut child);
        Served {
            child: Some(child),
            client: TestClient::new(url),
        }
    }

    /// SIGTERM, then a bounded wait for a clean exit.
    fn stop(mut self) {
        terminate(self.child.take().unwrap(), &Mutex::default());
    }

    async fn ask(&self, model: &str) -> u16 {
        let answer = self
            .client
            .post("/v1/chat/completions", &chat(model, "hi", false))
            .await;
        answer.status.as_u16()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn sibling(db: &Path, suffix: &str) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(suffix);
    name.into()
}

fn last_key_sent(mock: &MockUpstream) -> String {
    let requests = mock.requests();
    let last = requests.last().expect("nothing went upstream");
    last.header("authorization").unwrap_or_default().to_string()
}

/// Which of the database's files hold `needle`.
fn db_files_contain(db: &Path, needle: &str) -> Vec<String> {
    ["", "-wal", "-shm"]
        .into_iter()
        .filter(|suffix| {
            std::fs::read(sibling(db, suffix))
                .is_ok_and(|b| b.windows(needle.len()).any(|w| w == needle.as_bytes()))
        })
        .map(String::from)
        .collect()
}

/// Every file beside the database with its bytes: what "changes nothing" is checked against.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect();
    files.sort();
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_added_with_the_cli_is_used_survives_rotation_and_restart_and_a_wrong_key_stops_the_start()
 {
    let mock = MockUpstream::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("creds.db");
    let key = "sk-cli-stored-5e0a77c4";
    let served = Served::start(&db, &mock, &[]);
    let key_file = sibling(&db, ".master-key");
    assert!(
        key_file.exists(),
        "no master key file made at the first start"
    );

    // No --server: the CLI finds the running server and the key is in force in it at once.
    let url = mock.base_url();
    let args = [
        "providers",
        "add",
        "clip",
        "--kind",
        "openai_compatible",
        "--base-url",
        &url,
        "--key-stdin",
        "--label",
        "main",
    ];
    let out = ok(&db, &args, &format!("{key}\n"), &[]);
    assert!(out.contains("added credential cred_"), "{out}");
    assert_eq!(served.ask("clip/gpt-4o-mini").await, 200);
    assert_eq!(last_key_sent(&mock), format!("Bearer {key}"));
    let listed = ok(&db, &["providers", "list"], "", &[]);
    assert!(listed.contains("clip") && listed.contains("sha256:") && listed.contains("main"));
    assert!(!listed.contains(key), "{listed}");
    assert!(db_files_contain(&db, key).is_empty());
    served.stop();

    // Offline rotation: a new key file, every record re-sealed, nothing staged left behind.
    let old_key = std::fs::read_to_string(&key_file).unwrap();
    let out = ok(&db, &["secrets", "rotate"], "", &[]);
    assert!(out.contains("1 credential(s) re-encrypted"), "{out}");
    let new_key = std::fs::read_to_string(&key_file).unwrap();
    assert_ne!(old_key, new_key);
    assert!(!sibling(&db, ".master-key.new").exists());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    assert!(db_files_contain(&db, key).is_empty());

    // After a restart with the new key file, the stored key still goes upstream.
    let served = Served::start(&db, &mock, &[]);
    assert_eq!(served.ask("clip/gpt-4o-mini").await, 200);
    assert_eq!(last_key_sent(&mock), format!("Bearer {key}"));
    served.stop();
    let ledger = ok(&db, &["audit", "export"], "", &[]);
    assert!(ledger.contains("provider.credential.add") && ledger.contains("secrets.rotate"));
    assert!(!ledger.contains(key), "{ledger}");
    assert!(!ledger.contains(new_key.trim()) && !ledger.contains(old_key.trim()));

    // The old key, given in the environment, stops the start and changes nothing.
    let before = snapshot(dir.path());
    let (code, out, err) = run(
        &db,
        &["serve", "--listen", "127.0.0.1:0"],
        "",
        &[("STOCKYARD_MASTER_KEY", old_key.trim())],
    );
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains("STOCKYARD_MASTER_KEY does not open the provider credentials")
            && err.contains("nothing was changed"),
        "{err}"
    );
    assert!(
        !err.contains(old_key.trim()),
        "the error shows the key: {err}"
    );
    assert_eq!(
        snapshot(dir.path()),
        before,
        "a refused start changed a file"
    );
    // So does a lost key file, without making a new one.
    std::fs::rename(&key_file, dir.path().join("kept")).unwrap();
    let (code, _, err) = run(&db, &["serve", "--listen", "127.0.0.1:0"], "", &[]);
    assert_eq!(code, 1);
    assert!(err.contains("master key that is not here"), "{err}");
    assert!(!key_file.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_beside_a_running_server_goes_through_it_and_every_key_stays_usable() {
    let mock = MockUpstream::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("live.db");
    let url = mock.base_url();
    let served = Served::start(&db, &mock, &[]);
    let add = |name: &str, key: &str| {
        let args = [
            "providers",
            "add",
            name,
            "--kind",
            "openai_compatible",
            "--base-url",
            &url,
            "--key-stdin",
        ];
        ok(&db, &args, key, &[]);
    };
    add("live", "sk-live-one-0001");
    let key_file = sibling(&db, ".master-key");
    let before = std::fs::read_to_string(&key_file).unwrap();
    let out = ok(&db, &["secrets", "rotate"], "", &[]);
    assert!(out.contains("1 credential(s) re-encrypted"), "{out}");
    assert_ne!(std::fs::read_to_string(&key_file).unwrap(), before);
    // The server sealed this one under the key it swapped in.
    add("live", "sk-live-two-0002");
    let mut seen = Vec::new();
    for _ in 0..2 {
        assert_eq!(served.ask("live/gpt-4o-mini").await, 200);
        seen.push(last_key_sent(&mock));
    }
    seen.sort();
    assert_eq!(seen, ["Bearer sk-live-one-0001", "Bearer sk-live-two-0002"]);
    served.stop();

    let served = Served::start(&db, &mock, &[]);
    let mut seen = Vec::new();
    for _ in 0..2 {
        assert_eq!(served.ask("live/gpt-4o-mini").await, 200);
        seen.push(last_key_sent(&mock));
    }
    seen.sort();
    assert_eq!(seen, ["Bearer sk-live-one-0001", "Bearer sk-live-two-0002"]);
    let out = ok(&db, &["providers", "remove", "live"], "", &[]);
    assert!(out.contains("removed 2 credential(s)"), "{out}");
    assert_eq!(served.ask("live/gpt-4o-mini").await, 404);
    served.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_master_key_in_the_environment_rotation_needs_the_new_key() {
    let mock = MockUpstream::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("env.db");
    let old = "11".repeat(32);
    let new = "22".repeat(32);
    let env_old = [("STOCKYARD_MASTER_KEY", old.as_str())];
    let url = mock.base_url();
    let args = [
        "providers",
        "add",
        "envp",
        "--kind",
        "openai_compatible",
        "--base-url",
        &url,
        "--key-stdin",
    ];
    ok(&db, &args, "sk-env-sealed-9999", &env_old);
    assert!(
        !sibling(&db, ".master-key").exists(),
        "a key file beside an env key"
    );

    let (code, _, err) = run(&db, &["secrets", "rotate"], "", &env_old);
    assert_eq!(code, 1);
    assert!(err.contains("--new-key-file"), "{err}");
    let new_file = dir.path().join("new-key");
    std::fs::write(&new_file, &new).unwrap();
    let new_path = new_file.to_str().unwrap();
    let out = ok(
        &db,
        &["secrets", "rotate", "--new-key-file", new_path],
        "",
        &env_old,
    );
    assert!(out.contains("set it to the new key"), "{out}");

    let (code, _, err) = run(&db, &["serve", "--listen", "127.0.0.1:0"], "", &env_old);
    assert_eq!(code, 1, "the old key still opens the records: {err}");
    let served = Served::start(&db, &mock, &[("STOCKYARD_MASTER_KEY", &new)]);
    assert_eq!(served.ask("envp/gpt-4o-mini").await, 200);
    assert_eq!(last_key_sent(&mock), "Bearer sk-env-sealed-9999");
    served.stop();

    let (code, _, err) = run(
        &db,
        &["providers", "list"],
        "",
        &[("STOCKYARD_MASTER_KEY", "not-a-key")],
    );
    assert_eq!(code, 1);
    assert!(
        err.contains("STOCKYARD_MASTER_KEY: must be hex or base64"),
        "{err}"
    );
}
