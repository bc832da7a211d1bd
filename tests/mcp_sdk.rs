//! The official MCP Python SDK (`mcp`, pinned in `tests/sdk/mcp-requirements.txt`) runs a session
//! through `/mcp` unchanged but for URL and key: it connects (its own negotiation, falling back
//! to the `initialize` handshake), lists the tools its key may see, calls an allowed one and gets
//! a refusal naming the rule for another; then the same over the older SSE transport
//! (`/mcp/sse`). Then the calls are in the ledger. Skipped, reason
//! printed, without a usable `python3`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;
use std::time::Duration;

use common::{ADMIN_KEY, Harness};
use hyper::Method;
use serde_json::{Value, json};

const SCRIPT_TIMEOUT: Duration = Duration::from_secs(120);

/// This binary, run again by the gateway as its stdio MCP server (see tests/mcp.rs).
#[test]
fn mock_stdio_server() {
    if let Ok(name) = std::env::var("MOCK_MCP_STDIO") {
        mock_mcp::run_stdio(&name);
    }
}

#[tokio::test]
async fn the_official_python_sdk_runs_a_session_through_the_gateway() {
    let python = match tokio::task::spawn_blocking(|| {
        common::python::venv("mcp-venv", "tests/sdk/mcp-requirements.txt")
    })
    .await
    .unwrap()
    {
        Ok(python) => python,
        Err(why) => {
            eprintln!("skipped: {why}");
            return;
        }
    };
    let exe = std::env::current_exe().unwrap();
    let toml = format!(
        "[admin]\nkey = \"{ADMIN_KEY}\"\n[modules.mcp]\nenabled = true\n\
         [modules.mcp.servers.local]\ncommand = [{exe:?}, \"--exact\", \"mock_stdio_server\", \"--nocapture\"]\n\
         env = {{ MOCK_MCP_STDIO = \"local\" }}\n\
         [[modules.mcp.rules]]\nid = \"python-echo\"\ntools = [\"echo\"]\n"
    );
    let h = Harness::start_with(&toml).await;
    let created = h
        .client
        .admin(
            Method::POST,
            "/admin/keys",
            &json!({"name": "py"}).to_string(),
        )
        .await
        .json();
    let key = created["key"].as_str().unwrap().to_string();
    let url = format!("{}/mcp", h.server.url());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sdk/mcp_e2e.py");
    let ran = tokio::task::spawn_blocking(move || {
        common::python::run(
            Command::new(python).arg(script).arg(url).arg(key),
            SCRIPT_TIMEOUT,
        )
    })
    .await
    .unwrap()
    .unwrap();
    assert!(ran.success(), "the SDK session failed: {ran}");
    let seen: Value = serde_json::from_str(ran.stdout.trim().lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("not JSON ({e}): {ran}"));
    assert_eq!(seen["tools"], json!(["local__echo"]), "{seen}");
    assert_eq!(seen["echo"], json!(["local: from python"]), "{seen}");
    assert_eq!(seen["sse_echo"], json!(["local: over sse"]), "{seen}");
    let refusal = seen["refusal"].to_string();
    assert!(refusal.contains("default"), "{refusal}");

    h.server.app.writer.flush().await.unwrap();
    let calls = h.store().mcp.mcp_calls(10).unwrap();
    let mut decided: Vec<(String, String)> = calls
        .iter()
        .map(|c| (c.tool.clone(), c.rule.clone()))
        .collect();
    decided.sort();
    assert_eq!(
        decided,
        [
            ("echo".to_string(), "python-echo".to_string()),
            ("echo".to_string(), "python-echo".to_string()),
            ("leak_secret".to_string(), "default".to_string())
        ]
    );
}
