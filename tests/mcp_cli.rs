//! `stockyard mcp ...` with the real binary: rules and servers changed offline (each a ledger
//! entry, each bumping the revision, `audit verify` still clean), then `serve` with those
//! servers: `mcp tools` lists the upstream tools through it, a change made beside it takes effect
//! at once, and a client's call is allowed by the rule the CLI wrote.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::TestClient;
use common::binary::{listening, stockyard};
use hyper::Method;
use serde_json::{Value, json};

/// This binary, run again by the gateway as its stdio MCP server (see tests/mcp.rs).
#[test]
fn mock_stdio_server() {
    if let Ok(name) = std::env::var("MOCK_MCP_STDIO") {
        mock_mcp::run_stdio(&name);
    }
}

fn run(db: &Path, args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut child = stockyard(db)
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
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

fn ok(db: &Path, args: &[&str]) -> String {
    let (code, out, err) = run(db, args, &[]);
    assert_eq!(code, 0, "stockyard {args:?}: {out}{err}");
    out
}

struct Served(Child);

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn the_cli_manages_servers_and_rules_offline_and_beside_a_server() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("stockyard.db");
    let exe = std::env::current_exe().unwrap();
    let exe = exe.to_str().unwrap();

    ok(&db, &["modules", "enable", "mcp"]);
    ok(
        &db,
        &[
            "mcp",
            "servers",
            "add",
            "local",
            "--",
            exe,
            "--exact",
            "mock_stdio_server",
            "--nocapture",
        ],
    );
    let out = ok(
        &db,
        &[
            "mcp",
            "allow",
            "echo-only",
            "--mcp-server",
            "local",
            "--tool",
            "echo",
        ],
    );
    assert!(out.contains("revision 3"), "{out}");
    ok(&db, &["mcp", "deny", "nothing", "--tool", "nothing"]);
    ok(&db, &["mcp", "unrule", "nothing"]);
    let listed: Value =
        serde_json::from_str(&ok(&db, &["mcp", "servers", "list", "--json"])).unwrap();
    assert_eq!(listed["enabled"], json!(true));
    assert_eq!(listed["revision"], json!(5));
    assert_eq!(listed["servers"][0]["name"], "local");
    assert_eq!(listed["rules"][0]["id"], "echo-only");
    let (code, _, err) = run(&db, &["mcp", "tools"], &[]);
    assert_ne!(code, 0);
    assert!(err.contains("running server"), "{err}");
    let (code, _, err) = run(&db, &["mcp", "allow", "bad", "--arguments", "{nope"], &[]);
    assert_ne!(code, 0);
    assert!(err.contains("--arguments"), "{err}");
    let verify = ok(&db, &["audit", "verify"]);
    assert!(verify.to_lowercase().contains("ok"), "{verify}");

    // Serve: the stdio server inherits MOCK_MCP_STDIO from the server's environment.
    let mut child = stockyard(&db)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("MOCK_MCP_STDIO", "local")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (url, _) = listening(&mut child);
    let served = Served(child);
    let tools = ok(&db, &["mcp", "tools"]);
    assert_eq!(
        tools.lines().collect::<Vec<_>>(),
        [
            "local__echo",
            "local__leak_secret",
            "local__stall",
            "local__count"
        ]
    );

    let client = TestClient::new(url);
    let call = |tool: &str| {
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
               "params": {"name": tool, "arguments": {"text": "cli"}}})
        .to_string()
    };
    let answer = client
        .call(Method::POST, "/mcp", &call("local__echo"), &[])
        .await;
    assert_eq!(answer.json()["result"]["content"][0]["text"], "local: cli");
    let refused = client
        .call(Method::POST, "/mcp", &call("local__leak_secret"), &[])
        .await;
    assert_eq!(refused.json()["error"]["data"]["rule"], "default");

    // A rule added beside the running server goes through it: in force for the next call.
    let out = ok(&db, &["mcp", "allow", "leak-ok", "--tool", "leak_secret"]);
    assert!(out.contains("revision 6"), "{out}");
    let allowed = client
        .call(Method::POST, "/mcp", &call("local__leak_secret"), &[])
        .await;
    assert!(allowed.json()["result"].is_object(), "{}", allowed.text());
    drop(served);
}
