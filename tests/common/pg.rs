//! The real binary on PostgreSQL, for the tests that run nodes of one store: a schema of its
//! own per test (dropped at the end) on the server `STOCKYARD_TEST_PG` (default
//! `postgres://postgres@127.0.0.1:5432/test`), `stockyard serve` children, and the CLI. An
//! unreachable server fails the test; `STOCKYARD_SKIP_PG=1` skips it ([`Schema::new`] says so).

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use hyper::Method;

use super::binary::{listening, stockyard, terminate};
use super::{PROVIDER_KEY, TestClient, chat};

/// A password the server ignores (trust auth) that must never be printed.
pub const PASSWORD: &str = "pg-sekret-9f3a";

/// A schema of its own for one test, dropped when it goes.
pub struct Schema {
    pub base: String,
    pub name: String,
    pub url: String,
}

impl Schema {
    pub fn new() -> Option<Schema> {
        if std::env::var("STOCKYARD_SKIP_PG").is_ok_and(|v| v == "1") {
            eprintln!("skipped: STOCKYARD_SKIP_PG=1 (no PostgreSQL tests)");
            return None;
        }
        let base = std::env::var("STOCKYARD_TEST_PG")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        let name = format!("syit_{}_{:08x}", std::process::id(), fastrand::u32(..));
        sql(&base, &format!("CREATE SCHEMA {name}"));
        let with_password = base.replacen("postgres@", &format!("postgres:{PASSWORD}@"), 1);
        let sep = if base.contains('?') { '&' } else { '?' };
        let url = format!("{with_password}{sep}options=-csearch_path%3D{name}");
        Some(Schema { base, name, url })
    }

    /// The server's `host:port`, from the base URL.
    pub fn server_addr(&self) -> std::net::SocketAddr {
        let after_at = self
            .base
            .split_once('@')
            .map_or(self.base.as_str(), |(_, r)| r);
        let host_port = after_at.split('/').next().unwrap();
        let host_port = if host_port.contains(':') {
            host_port.to_string()
        } else {
            format!("{host_port}:5432")
        };
        let host_port = host_port.replace("localhost", "127.0.0.1");
        host_port.parse().unwrap()
    }

    /// [`Schema::url`] with the server's address replaced by `addr` (a forwarder in front of it).
    pub fn url_through(&self, addr: std::net::SocketAddr) -> String {
        let (user, rest) = self.url.split_once('@').unwrap();
        let (_, path) = rest.split_once('/').unwrap();
        format!("{user}@{addr}/{path}")
    }

    /// One number from the schema (a NULL, such as the sum of no rows, is 0).
    pub fn count(&self, query: &str) -> i64 {
        let base = self.base.clone();
        let query = format!("SET search_path = {}; {query}", self.name);
        std::thread::spawn(move || {
            let mut client = postgres::Client::connect(&base, postgres::NoTls).unwrap();
            let rows = client.simple_query(&query).unwrap();
            rows.iter()
                .find_map(|m| match m {
                    postgres::SimpleQueryMessage::Row(r) => {
                        Some(r.get(0).map_or(0, |v| v.parse().unwrap()))
                    }
                    _ => None,
                })
                .unwrap()
        })
        .join()
        .unwrap()
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        sql(
            &self.base,
            &format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name),
        );
    }
}

pub fn sql(base: &str, statement: &str) {
    let (base, statement) = (base.to_string(), statement.to_string());
    std::thread::spawn(move || {
        let mut client = postgres::Client::connect(&base, postgres::NoTls).unwrap_or_else(|e| {
            panic!(
                "PostgreSQL tests need a server at {base} (set STOCKYARD_TEST_PG, or \
                 STOCKYARD_SKIP_PG=1 to skip them): {e}"
            )
        });
        client.batch_execute(&statement).unwrap();
    })
    .join()
    .unwrap();
}

/// Runs the binary to completion: exit code, stdout, stderr.
pub fn run(db: &Path, args: &[&str]) -> (i32, String, String) {
    let out = stockyard(db).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

pub fn ok(db: &Path, args: &[&str]) -> String {
    ok_with(db, args, &[])
}

pub fn ok_with(db: &Path, args: &[&str], env: &[(&str, &str)]) -> String {
    let out = stockyard(db)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let (code, out, err) = (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    );
    assert_eq!(code, 0, "{args:?}: {out}{err}");
    assert!(
        !out.contains(PASSWORD) && !err.contains(PASSWORD),
        "{out}{err}"
    );
    out
}

/// A `stockyard serve` child, killed if the test fails before it stops.
pub struct Served {
    child: Option<Child>,
    pub url: String,
    log: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Served {
    pub fn start(db: &Path, mock_url: &str, store: &str) -> Served {
        Served::start_with(db, mock_url, store, &[])
    }

    pub fn start_with(db: &Path, mock_url: &str, store: &str, env: &[(&str, &str)]) -> Served {
        Served::spawn(db, None, mock_url, store, env)
    }

    /// A node that also reads the config file `config`.
    pub fn start_configured(
        db: &Path,
        config: &Path,
        mock_url: &str,
        store: &str,
        env: &[(&str, &str)],
    ) -> Served {
        Served::spawn(db, Some(config), mock_url, store, env)
    }

    fn spawn(
        db: &Path,
        config: Option<&Path>,
        mock_url: &str,
        store: &str,
        env: &[(&str, &str)],
    ) -> Served {
        let mut cmd = stockyard(db);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--store", store]);
        if let Some(config) = config {
            cmd.arg("--config").arg(config);
        }
        cmd.env("OPENAI_API_KEY", PROVIDER_KEY)
            .env("OPENAI_BASE_URL", mock_url)
            .env("STOCKYARD_LOG", "debug")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let (url, log) = listening(&mut child);
        Served {
            child: Some(child),
            url,
            log,
        }
    }

    /// SIGTERM, then a bounded wait for a clean exit.
    pub fn stop(&mut self) {
        terminate(self.child.take().unwrap(), &self.log);
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
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

/// Waits (bounded) until `check` holds; the server's log is shown if it never does.
pub fn eventually(what: &str, served: &Served, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check() {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; server log:\n{}",
            served.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A chat request through `client` with the client key `key`: the HTTP status.
pub async fn chat_status(client: &TestClient, key: &str) -> u16 {
    let auth = format!("Bearer {key}");
    client
        .call(
            Method::POST,
            "/v1/chat/completions",
            &chat("gpt-4o-mini", "hi", false),
            &[("authorization", &auth)],
        )
        .await
        .status
        .as_u16()
}
