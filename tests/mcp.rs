//! The MCP gateway (`/mcp`) over real sockets, in front of two instances of the in-repo MCP test
//! server (`crates/mock-mcp`): one as a child process over stdio (this test binary run again as
//! the server, see [`mock_stdio_server`]), one over Streamable HTTP. Clients see and call only
//! what the rules allow their key or team; a refusal names its rule; every call leaves a
//! `mcp_calls` row and a ledger entry with the rules' revision, and the ledger still verifies;
//! guardrails redact results; a stalled server times out (and opens its breaker) without holding
//! up the others; sealed tokens reach remote servers and nowhere else.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::{ADMIN_KEY, Answer, Harness};
use hyper::Method;
use mock_mcp::{MockMcp, SECRET};
use serde_json::{Value, json};

/// Not a test of its own: when this binary is started with `MOCK_MCP_STDIO` set (as the gateway
/// starts its stdio server), it becomes that server and never returns. Otherwise it passes at
/// once.
#[test]
fn mock_stdio_server() {
    if let Ok(name) = std::env::var("MOCK_MCP_STDIO") {
        mock_mcp::run_stdio(&name);
    }
}

/// The TOML table of a stdio server named `name` (this binary in its server role).
fn stdio_server(name: &str, extra: &str) -> String {
    let exe = std::env::current_exe().unwrap();
    format!(
        "[modules.mcp.servers.{name}]\ncommand = [{exe:?}, \"--exact\", \"mock_stdio_server\", \"--nocapture\", \"--quiet\"]\nenv = {{ MOCK_MCP_STDIO = \"{name}\" }}\n{extra}"
    )
}

fn http_server(name: &str, url: &str) -> String {
    format!("[modules.mcp.servers.{name}]\nurl = \"{url}\"\n")
}

/// The admin key, the module on with `settings`, then `tables` (servers and rules).
fn toml(settings: &str, tables: &str) -> String {
    format!("[admin]\nkey = \"{ADMIN_KEY}\"\n[modules.mcp]\nenabled = true\n{settings}\n{tables}")
}

/// A session with the gateway as one client key.
struct Client<'a> {
    h: &'a Harness,
    key: Option<String>,
    session: Option<String>,
    next_id: i64,
}

impl<'a> Client<'a> {
    fn new(h: &'a Harness, key: Option<&str>) -> Client<'a> {
        Client {
            h,
            key: key.map(str::to_string),
            session: None,
            next_id: 1,
        }
    }

    async fn post(&self, body: &Value, extra: &[(&str, &str)]) -> Answer {
        let auth = self.key.as_ref().map(|k| format!("Bearer {k}"));
        let mut headers: Vec<(&str, &str)> =
            vec![("accept", "application/json, text/event-stream")];
        if let Some(auth) = &auth {
            headers.push(("authorization", auth));
        }
        if let Some(session) = &self.session {
            headers.push(("mcp-session-id", session));
        }
        headers.extend_from_slice(extra);
        self.h
            .client
            .call(Method::POST, "/mcp", &body.to_string(), &headers)
            .await
    }

    /// One request; returns the whole JSON-RPC reply.
    async fn rpc(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let answer = self
            .post(
                &json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}),
                &[],
            )
            .await;
        assert_eq!(answer.status, 200, "{method}: {}", answer.text());
        let reply = answer.json();
        assert_eq!(reply["id"], json!(id));
        reply
    }

    async fn initialize(&mut self) -> Value {
        let answer = self
            .post(
                &json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
                    "protocolVersion": "2025-06-18", "capabilities": {},
                    "clientInfo": {"name": "test", "version": "1"}}}),
                &[],
            )
            .await;
        assert_eq!(answer.status, 200, "{}", answer.text());
        self.session = answer.header("mcp-session-id").map(str::to_string);
        assert!(self.session.is_some(), "initialize opens a session");
        let note = self
            .post(
                &json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
                &[],
            )
            .await;
        assert_eq!(note.status, 202);
        answer.json()["result"].clone()
    }

    async fn tool_names(&mut self) -> Vec<String> {
        let reply = self.rpc("tools/list", json!({})).await;
        let mut names: Vec<String> = reply["result"]["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_string())
            .collect();
        names.sort();
        names
    }

    async fn call(&mut self, tool: &str, arguments: Value) -> Value {
        self.rpc("tools/call", json!({"name": tool, "arguments": arguments}))
            .await
    }
}

fn text_of(reply: &Value) -> String {
    reply["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("no text in {reply}"))
        .to_string()
}

async fn admin(h: &Harness, method: Method, path: &str, body: Value) -> Value {
    let body = if body.is_null() {
        String::new()
    } else {
        body.to_string()
    };
    let answer = h.client.admin(method, path, &body).await;
    assert_eq!(answer.status, 200, "{path}: {}", answer.text());
    answer.json()
}

/// The `mcp.call` ledger entries, after the writer committed what is queued; asserts the whole
/// ledger still verifies.
async fn call_entries(h: &Harness) -> Vec<Value> {
    h.server.app.writer.flush().await.unwrap();
    let audit = admin(h, Method::GET, "/admin/audit", Value::Null).await;
    assert_eq!(audit["verify"]["ok"], json!(true), "{}", audit["verify"]);
    audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "mcp.call")
        .cloned()
        .collect()
}

#[tokio::test]
async fn a_key_sees_and_calls_only_what_its_rules_allow() {
    let remote = MockMcp::start("remote").await.unwrap();
    let rules = "[[modules.mcp.rules]]\nid = \"no-stall\"\neffect = \"deny\"\ntools = [\"stall\"]\n\
                 [[modules.mcp.rules]]\nid = \"ops-all\"\nteams = [\"ops\"]\n";
    let tables = format!(
        "{}{}{rules}",
        stdio_server("local", ""),
        http_server("remote", &remote.url())
    );
    let h = Harness::start_with(&toml("", &tables)).await;
    admin(&h, Method::POST, "/admin/teams", json!({"name": "ops"})).await;
    let ops = admin(
        &h,
        Method::POST,
        "/admin/keys",
        json!({"name": "ops-bot", "team": "ops"}),
    )
    .await;
    let ci = admin(&h, Method::POST, "/admin/keys", json!({"name": "ci"})).await;
    let (ops_key, ci_key) = (ops["key"].as_str().unwrap(), ci["key"].as_str().unwrap());
    let ci_id = ci["id"].as_str().unwrap().to_string();

    // The team's key sees both servers' tools but the denied one; the other key sees none.
    let mut a = Client::new(&h, Some(ops_key));
    let init = a.initialize().await;
    assert_eq!(init["protocolVersion"], "2025-06-18");
    assert_eq!(
        a.tool_names().await,
        [
            "local__count",
            "local__echo",
            "local__leak_secret",
            "remote__count",
            "remote__echo",
            "remote__leak_secret"
        ]
    );
    let mut b = Client::new(&h, Some(ci_key));
    b.initialize().await;
    assert!(b.tool_names().await.is_empty());

    // A rule for the second key, through the admin API: revision 1 -> 2.
    let changed = admin(
        &h,
        Method::PUT,
        "/admin/mcp/rules/ci-echo",
        json!({"keys": [ci_id], "servers": ["remote"], "tools": ["echo"],
               "arguments": {"type": "object", "properties": {"text": {"maxLength": 20}}}}),
    )
    .await;
    assert_eq!(changed["revision"], json!(2));
    assert_eq!(b.tool_names().await, ["remote__echo"]);

    // Allowed: answered by the named server.
    assert_eq!(
        text_of(&b.call("remote__echo", json!({"text": "hi"})).await),
        "remote: hi"
    );
    assert_eq!(
        text_of(&a.call("local__echo", json!({"text": "yo"})).await),
        "local: yo"
    );
    // Refused, naming the rule: no rule for this key on `local`; a denied tool; arguments
    // outside the rule's schema.
    let refused = b.call("local__echo", json!({"text": "hi"})).await;
    assert_eq!(refused["error"]["code"], json!(-32001), "{refused}");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("\"default\""),
        "{refused}"
    );
    let stall = a.call("local__stall", json!({"ms": 1})).await;
    assert_eq!(stall["error"]["data"]["rule"], "no-stall", "{stall}");
    let long = b
        .call("remote__echo", json!({"text": "far too long for the rule"}))
        .await;
    assert_eq!(long["error"]["data"]["rule"], "ci-echo", "{long}");
    assert!(
        long["error"]["message"]
            .as_str()
            .unwrap()
            .contains("schema")
    );
    // Unknown tools are named as such.
    let unknown = a.call("nowhere__echo", json!({})).await;
    assert_eq!(unknown["error"]["code"], json!(-32602));

    // Every call is in the ledger with its decision, rule and revision; the ledger verifies.
    let entries = call_entries(&h).await;
    let summary: Vec<(String, String, String, i64)> = entries
        .iter()
        .map(|e| {
            let d = &e["details"];
            (
                d["tool"].as_str().unwrap().to_string(),
                d["decision"].as_str().unwrap().to_string(),
                d["rule"].as_str().unwrap().to_string(),
                d["rule_revision"].as_i64().unwrap(),
            )
        })
        .collect();
    let expect =
        |t: &str, d: &str, r: &str, v: i64| (t.to_string(), d.to_string(), r.to_string(), v);
    assert_eq!(
        summary,
        [
            expect("echo", "allow", "ci-echo", 2),
            expect("echo", "allow", "ops-all", 2),
            expect("echo", "deny", "default", 2),
            expect("stall", "deny", "no-stall", 2),
            expect("echo", "deny", "ci-echo", 2),
        ]
    );
    assert_eq!(entries[0]["details"]["key_id"], json!(ci_id));
    assert_eq!(entries[1]["details"]["team_id"], "ops");
    let hash = entries[0]["details"]["args_sha256"].as_str().unwrap();
    assert_eq!(hash.len(), 64);

    // And a trace row per call, tied to its ledger entry.
    let calls = admin(&h, Method::GET, "/admin/mcp/calls?limit=10", Value::Null).await;
    let rows = calls["calls"].as_array().unwrap();
    assert_eq!(rows.len(), 5);
    let ok = rows.iter().find(|r| r["rule"] == "ops-all").unwrap();
    assert_eq!(
        (ok["server"].as_str(), ok["outcome"].as_str()),
        (Some("local"), Some("ok"))
    );
    assert!(ok["bytes_out"].as_i64().unwrap() > 0 && ok["duration_us"].as_i64().unwrap() > 0);
    assert_eq!(ok["ledger_seq"], entries[1]["seq"]);
    let denied = rows.iter().find(|r| r["rule"] == "no-stall").unwrap();
    assert_eq!(denied["outcome"], "denied");
    assert!(
        rows.iter().all(|r| r["arguments"].is_null()),
        "no capture unless asked"
    );
}

#[tokio::test]
async fn a_guardrail_redacts_a_secret_in_a_tool_result() {
    let tables = format!(
        "{}[[modules.mcp.rules]]\nid = \"all\"\n",
        stdio_server("local", "")
    );
    let h = Harness::start_with(&toml("capture = true\nguard = { secrets = true }", &tables)).await;
    let mut c = Client::new(&h, None);
    c.initialize().await;
    let reply = c.call("local__leak_secret", json!({})).await;
    let text = text_of(&reply);
    assert!(!text.contains(SECRET), "{text}");
    assert!(
        text.starts_with("the deploy key is [") && text.ends_with("] keep it safe"),
        "{text}"
    );

    h.server.app.writer.flush().await.unwrap();
    let rows = h.store().mcp.mcp_calls(5).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].redactions, 1);
    let captured = rows[0].result.as_deref().unwrap();
    assert!(captured.contains("the deploy key is [") && !captured.contains(SECRET));

    // With `block`, the result does not reach the client at all.
    admin(
        &h,
        Method::PUT,
        "/admin/modules/mcp",
        json!({"config": {"guard": {"secrets": true, "action": "block"}}}),
    )
    .await;
    let blocked = c.call("local__leak_secret", json!({})).await;
    assert_eq!(blocked["error"]["code"], json!(-32005), "{blocked}");
    assert!(!blocked.to_string().contains(SECRET));
}

#[tokio::test]
async fn a_stalled_server_times_out_without_holding_up_others() {
    let remote = MockMcp::start("remote").await.unwrap();
    let tables = format!(
        "{}{}[[modules.mcp.rules]]\nid = \"all\"\n",
        stdio_server("local", "timeout_ms = 400\n"),
        http_server("remote", &remote.url())
    );
    let h = Harness::start_with(&toml(
        "breaker_failures = 2\nbreaker_open_ms = 60000",
        &tables,
    ))
    .await;
    let mut c = Client::new(&h, None);
    c.initialize().await;
    // Warm both connections (the child process starts on first use).
    assert_eq!(
        text_of(&c.call("local__echo", json!({"text": "up"})).await),
        "local: up"
    );

    let mut stalled_client = Client::new(&h, None);
    stalled_client.session = c.session.clone();
    let started = Instant::now();
    let stalled = async {
        let reply = stalled_client
            .call("local__stall", json!({"ms": 30000}))
            .await;
        (reply, Instant::now())
    };
    // While the stall waits, the other server answers at once, and so does the same server's
    // other tool (its requests are independent).
    let others = async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let remote_reply = c.call("remote__echo", json!({"text": "fast"})).await;
        assert_eq!(text_of(&remote_reply), "remote: fast");
        let local_reply = c.call("local__echo", json!({"text": "also"})).await;
        assert_eq!(text_of(&local_reply), "local: also");
        assert!(
            started.elapsed() < Duration::from_millis(380),
            "others were held up"
        );
    };
    let ((reply, at), ()) = tokio::join!(stalled, others);
    assert_eq!(reply["error"]["code"], json!(-32004), "{reply}");
    let waited = at - started;
    assert!(
        waited >= Duration::from_millis(400) && waited < Duration::from_secs(5),
        "{waited:?}"
    );

    // A second timeout opens the breaker: the next call is refused at once, the other server
    // still answers.
    let second = c.call("local__stall", json!({"ms": 30000})).await;
    assert_eq!(second["error"]["code"], json!(-32004));
    let quick = Instant::now();
    let refused = c.call("local__echo", json!({"text": "x"})).await;
    assert_eq!(refused["error"]["code"], json!(-32003), "{refused}");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("circuit open")
    );
    assert!(quick.elapsed() < Duration::from_millis(200));
    assert_eq!(
        text_of(&c.call("remote__echo", json!({"text": "ok"})).await),
        "remote: ok"
    );
    let tools = admin(&h, Method::GET, "/admin/mcp/tools", Value::Null).await;
    let local = tools["servers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["server"] == "local")
        .unwrap();
    assert_eq!(local["breaker_open"], json!(true));

    let outcomes: Vec<String> = call_entries(&h)
        .await
        .iter()
        .map(|e| e["details"]["outcome"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        outcomes.iter().filter(|o| *o == "timeout").count(),
        2,
        "{outcomes:?}"
    );
    assert!(outcomes.contains(&"unavailable".to_string()));
}

#[tokio::test]
async fn tool_calls_past_the_rate_limit_are_refused() {
    let tables = format!(
        "{}[[modules.mcp.rules]]\nid = \"all\"\n",
        stdio_server("local", "")
    );
    let h = Harness::start_with(&toml("calls_per_minute = 2", &tables)).await;
    let mut c = Client::new(&h, None);
    c.initialize().await;
    for _ in 0..2 {
        assert!(c.call("local__echo", json!({"text": "a"})).await["result"].is_object());
    }
    let limited = c.call("local__echo", json!({"text": "a"})).await;
    assert_eq!(limited["error"]["code"], json!(-32002), "{limited}");
    let entries = call_entries(&h).await;
    assert_eq!(
        entries.last().unwrap()["details"]["outcome"],
        "rate_limited"
    );
}

#[tokio::test]
async fn the_transport_refuses_misuse_with_json_rpc_errors() {
    let tables = format!(
        "{}[[modules.mcp.rules]]\nid = \"all\"\n",
        stdio_server("local", "")
    );
    let h = Harness::start_with(&toml("", &tables)).await;
    let mut c = Client::new(&h, None);
    c.initialize().await;
    let ping = json!({"jsonrpc": "2.0", "id": 9, "method": "ping"});

    // An unknown session: 404, so the client starts again.
    let mut stranger = Client::new(&h, None);
    stranger.session = Some("no-such-session".into());
    let answer = stranger.post(&ping, &[]).await;
    assert_eq!(answer.status, 404);
    assert_eq!(answer.json()["error"]["code"], json!(-32600));
    // An unsupported protocol revision: 400.
    let answer = c
        .post(&ping, &[("mcp-protocol-version", "1900-01-01")])
        .await;
    assert_eq!(answer.status, 400, "{}", answer.text());
    // Not JSON: a parse error.
    let answer = h
        .client
        .call(
            Method::POST,
            "/mcp",
            "{not json",
            &[("accept", "application/json")],
        )
        .await;
    assert_eq!(
        (
            answer.status.as_u16(),
            answer.json()["error"]["code"].clone()
        ),
        (400, json!(-32700))
    );
    // GET: no server stream here.
    let answer = h.client.get("/mcp").await;
    assert_eq!(answer.status, 405);
    // Unknown method, inside a good session.
    let reply = c.rpc("sampling/createMessage", json!({})).await;
    assert_eq!(reply["error"]["code"], json!(-32601));
    // A client that accepts only event streams gets its answer as one event.
    let answer = c.post(&ping, &[]).await;
    assert_eq!(answer.header("content-type"), Some("application/json"));
    let auth_free = h
        .client
        .call(
            Method::POST,
            "/mcp",
            &ping.to_string(),
            &[("accept", "text/event-stream")],
        )
        .await;
    assert_eq!(auth_free.header("content-type"), Some("text/event-stream"));
    assert!(auth_free.text().starts_with("event: message\ndata: {"));
    // Resources and prompts, namespaced like tools.
    let resources = c.rpc("resources/list", json!({})).await;
    assert_eq!(
        resources["result"]["resources"][0]["uri"],
        "local__mock://readme"
    );
    let read = c
        .rpc("resources/read", json!({"uri": "local__mock://readme"}))
        .await;
    assert_eq!(read["result"]["contents"][0]["text"], "readme of local");
    let prompt = c.rpc("prompts/get", json!({"name": "local__greet"})).await;
    assert_eq!(
        prompt["result"]["messages"][0]["content"]["text"],
        "hello from local"
    );
    // Ending the session: it is gone afterwards.
    let session = c.session.clone().unwrap();
    let end = h
        .client
        .call(Method::DELETE, "/mcp", "", &[("mcp-session-id", &session)])
        .await;
    assert_eq!(end.status, 204);
    assert_eq!(c.post(&ping, &[]).await.status, 404);

    // Switched off at runtime: the endpoint says so, without a restart.
    admin(
        &h,
        Method::PUT,
        "/admin/modules/mcp",
        json!({"enabled": false}),
    )
    .await;
    let off = h
        .client
        .call(Method::POST, "/mcp", &ping.to_string(), &[])
        .await;
    assert_eq!(off.status, 404);
    assert!(
        off.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("off")
    );
}

#[tokio::test]
async fn a_remote_server_gets_its_sealed_token_and_nothing_stores_it_in_clear() {
    let remote = MockMcp::start("remote").await.unwrap();
    let h = Harness::start_with(&toml("", "[[modules.mcp.rules]]\nid = \"all\"\n")).await;
    let token = "mcp-token-4242-secret-value";
    admin(
        &h,
        Method::PUT,
        "/admin/mcp/servers/remote",
        json!({"url": remote.url(), "token": token}),
    )
    .await;
    let mut c = Client::new(&h, None);
    c.initialize().await;
    assert_eq!(c.tool_names().await.len(), 4);
    assert_eq!(
        text_of(&c.call("remote__echo", json!({"text": "t"})).await),
        "remote: t"
    );
    let seen = remote.authorizations();
    assert!(!seen.is_empty());
    assert!(
        seen.iter()
            .all(|a| a.as_deref() == Some(&format!("Bearer {token}")[..])),
        "{seen:?}"
    );

    let overview = admin(&h, Method::GET, "/admin/mcp", Value::Null).await;
    assert_eq!(overview["servers"][0]["has_token"], json!(true));
    assert!(!overview.to_string().contains(token));
    let audit = admin(&h, Method::GET, "/admin/audit", Value::Null).await;
    assert!(!audit.to_string().contains(token));
    h.server.app.writer.flush().await.unwrap();
    for entry in std::fs::read_dir(h.dir.path()).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap_or_default();
        assert!(
            !bytes.windows(token.len()).any(|w| w == token.as_bytes()),
            "the token is in a file in clear"
        );
    }
    // Rotating the master key re-seals the token: the server still gets it, and the ledger
    // entry counts it.
    let rotated = admin(&h, Method::POST, "/admin/secrets/rotate", json!({})).await;
    let audit = admin(&h, Method::GET, "/admin/audit", Value::Null).await;
    let rotation = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["seq"] == rotated["ledger_seq"])
        .unwrap();
    assert_eq!(rotation["details"]["mcp_tokens"], json!(1), "{rotation}");
    let before = remote.authorizations().len();
    assert_eq!(
        text_of(&c.call("remote__echo", json!({"text": "r"})).await),
        "remote: r"
    );
    let after = remote.authorizations();
    assert!(after.len() > before);
    assert!(
        after[before..]
            .iter()
            .all(|a| a.as_deref() == Some(&format!("Bearer {token}")[..]))
    );

    // Removing the server removes its tools at once.
    admin(&h, Method::DELETE, "/admin/mcp/servers/remote", Value::Null).await;
    assert!(c.tool_names().await.is_empty());
}

#[test]
fn config_errors_name_the_field() {
    let bad = "[modules.mcp]\nenabled = true\n[modules.mcp.servers.\"a__b\"]\ncommand = [\"x\"]\n\
               [modules.mcp.servers.neither]\n[[modules.mcp.rules]]\nid = \"r\"\neffect = \"deny\"\narguments = { type = \"object\" }\n";
    let raw = stockyard::config::load_from_str(bad).unwrap();
    let err = stockyard::config::validate(&raw, &|_: &str| None)
        .expect_err("invalid config")
        .to_string();
    assert!(err.contains("modules.mcp: servers.a__b: name"), "{err}");
    assert!(err.contains("servers.neither: needs a command"), "{err}");
    assert!(
        err.contains("rules[0].arguments: only allow rules"),
        "{err}"
    );
}

#[tokio::test]
async fn the_older_sse_transport_answers_on_its_stream() {
    use http_body_util::BodyExt;
    let tables = format!(
        "{}[[modules.mcp.rules]]\nid = \"all\"\n",
        stdio_server("local", "")
    );
    let h = Harness::start_with(&toml("", &tables)).await;
    let response = h.client.send(Method::GET, "/mcp/sse", "", &[]).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers().get("content-type").unwrap(),
        "text/event-stream"
    );
    let mut body = response.into_body();
    let mut next_event = async || {
        let frame = tokio::time::timeout(Duration::from_secs(10), body.frame())
            .await
            .expect("no event within 10 s")
            .unwrap()
            .unwrap();
        String::from_utf8(frame.into_data().unwrap().to_vec()).unwrap()
    };
    let endpoint = next_event().await;
    let path = endpoint
        .strip_prefix("event: endpoint\ndata: ")
        .unwrap()
        .trim()
        .to_string();
    assert!(path.starts_with("/mcp/messages?session_id="), "{endpoint}");
    let call = json!({"jsonrpc": "2.0", "id": 5, "method": "tools/call",
                      "params": {"name": "local__echo", "arguments": {"text": "old"}}});
    let posted = h.client.post(&path, &call.to_string()).await;
    assert_eq!(posted.status, 202);
    let event = next_event().await;
    let data: Value =
        serde_json::from_str(event.strip_prefix("event: message\ndata: ").unwrap().trim()).unwrap();
    assert_eq!(data["id"], json!(5));
    assert_eq!(text_of(&data), "local: old");
    // A made-up session is refused.
    let stray = h
        .client
        .post("/mcp/messages?session_id=nope", &call.to_string())
        .await;
    assert_eq!(stray.status, 404);
}

#[tokio::test]
async fn progress_notifications_reach_the_client_under_its_own_token() {
    let remote = MockMcp::start("remote").await.unwrap();
    let tables = format!(
        "{}{}[[modules.mcp.rules]]\nid = \"all\"\n",
        stdio_server("local", ""),
        http_server("remote", &remote.url())
    );
    let h = Harness::start_with(&toml("", &tables)).await;
    for (tool, token) in [("local__count", json!("p-1")), ("remote__count", json!(7))] {
        let call = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {
            "name": tool, "arguments": {"n": 3}, "_meta": {"progressToken": token}}});
        let answer = h
            .client
            .call(
                Method::POST,
                "/mcp",
                &call.to_string(),
                &[("accept", "application/json, text/event-stream")],
            )
            .await;
        assert_eq!(
            answer.header("content-type"),
            Some("text/event-stream"),
            "{tool}"
        );
        let events: Vec<Value> = answer
            .text()
            .split("\n\n")
            .filter_map(|e| e.strip_prefix("event: message\ndata: "))
            .map(|d| serde_json::from_str(d).unwrap())
            .collect();
        assert_eq!(events.len(), 4, "{tool}: {}", answer.text());
        for (step, note) in events[..3].iter().enumerate() {
            assert_eq!(note["method"], "notifications/progress");
            assert_eq!(
                note["params"]["progressToken"], token,
                "{tool}: the client's token"
            );
            assert_eq!(note["params"]["progress"], json!(step + 1));
        }
        assert_eq!(events[3]["id"], json!(3));
        assert_eq!(text_of(&events[3]), "counted to 3");
    }
    // Without a token, the same call is one JSON answer.
    let mut c = Client::new(&h, None);
    c.initialize().await;
    assert_eq!(
        text_of(&c.call("local__count", json!({"n": 2})).await),
        "counted to 2"
    );
}
