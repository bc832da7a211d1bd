//! `[modules.mcp]`: the upstream MCP servers, the rules deciding which key or team may call which
//! tool, and the gateway's limits. The rules carry a `revision`, bumped by every change made
//! through `admin::apply` (`stockyard mcp allow|deny`, `/admin/mcp`), and each tool call records
//! the revision that decided it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::modules::registry::ModuleConfig;

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct McpConfig {
    /// Upstream MCP servers by name; the name prefixes their tools (`name__tool`).
    pub servers: BTreeMap<String, ServerConfig>,
    /// Evaluated in order; the first rule matching the caller, server and tool decides. No match
    /// refuses (`default`).
    pub rules: Vec<Rule>,
    /// The rules' revision; each administrative change bumps it.
    pub revision: i64,
    /// How long one upstream request may take unless its server says otherwise.
    pub timeout_ms: u64,
    /// Tool calls per key per minute (0: no limit).
    pub calls_per_minute: u64,
    /// Consecutive failures (errors, timeouts) that open a server's breaker.
    pub breaker_failures: u32,
    /// How long an open breaker refuses calls before letting one through.
    pub breaker_open_ms: u64,
    /// How long a server's tool list is reused before it is asked again.
    pub tools_ttl_ms: u64,
    /// Keep the (redacted) arguments and result of each call in its trace row.
    pub capture: bool,
    /// Guardrails on tool results before they reach the client.
    pub guard: GuardSettings,
}

impl Default for McpConfig {
    fn default() -> Self {
        McpConfig {
            servers: BTreeMap::new(),
            rules: Vec::new(),
            revision: 1,
            timeout_ms: 30_000,
            calls_per_minute: 0,
            breaker_failures: 5,
            breaker_open_ms: 30_000,
            tools_ttl_ms: 60_000,
            capture: false,
            guard: GuardSettings::default(),
        }
    }
}

/// Which detectors run on tool results, and what a match does.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct GuardSettings {
    /// Credentials (the `guard_secrets` detectors).
    pub secrets: bool,
    /// Personal data (the `guard_pii` detectors).
    pub pii: bool,
    /// `redact` (the default: the match becomes a placeholder) or `block` (the call fails).
    pub action: GuardAction,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum GuardAction {
    #[default]
    Redact,
    Block,
}

/// One upstream server: a child process over stdio (`command`) or a remote one over Streamable
/// HTTP (`url`).
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// The program and its arguments, for a local server over stdio.
    pub command: Vec<String>,
    /// Environment variables for the child process.
    pub env: BTreeMap<String, String>,
    /// The MCP endpoint of a remote server (Streamable HTTP).
    pub url: Option<String>,
    /// The environment variable holding a bearer token for a remote server.
    pub bearer_env: Option<String>,
    /// A bearer token sealed under the master key (hex), as the admin path stores it
    /// (`stockyard mcp servers add NAME --url URL --token ...`); never written by hand.
    pub sealed_token: Option<String>,
    /// Overrides the module's `timeout_ms` for this server.
    pub timeout_ms: Option<u64>,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Effect {
    #[default]
    Allow,
    Deny,
}

/// Who may (or may not) call what. Empty `keys` and `teams` match every caller.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Rule {
    /// Named in refusals and in the ledger.
    pub id: String,
    pub effect: Effect,
    /// Key ids this rule is for.
    pub keys: Vec<String>,
    /// Team ids this rule is for.
    pub teams: Vec<String>,
    /// Server name globs (`*`, `?`).
    pub servers: Vec<String>,
    /// Tool name globs (the server's own names, without the prefix).
    pub tools: Vec<String>,
    /// A JSON Schema the arguments must satisfy (allow rules only).
    pub arguments: Option<Value>,
}

/// Server names become tool prefixes before `__`, so they can't hold it (or be empty).
fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && !name.contains("__")
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "must be letters, digits, '-' or '_' without \"__\" (got {name:?})"
        ))
    }
}

impl ModuleConfig for McpConfig {
    fn validate(&self) -> Result<(), String> {
        let mut problems = Vec::new();
        for (name, server) in &self.servers {
            if let Err(e) = check_name(name) {
                problems.push(format!("servers.{name}: name {e}"));
            }
            match (server.command.is_empty(), &server.url) {
                (true, None) => problems.push(format!(
                    "servers.{name}: needs a command (stdio) or a url (Streamable HTTP)"
                )),
                (false, Some(_)) => problems.push(format!(
                    "servers.{name}: has both a command and a url; give one"
                )),
                (true, Some(url)) => {
                    if let Err(e) = url::Url::parse(url) {
                        problems.push(format!("servers.{name}.url: {e} (got {url:?})"));
                    }
                }
                (false, None) => {}
            }
            if server.timeout_ms == Some(0) {
                problems.push(format!("servers.{name}.timeout_ms: must be above 0"));
            }
        }
        let mut seen = std::collections::HashSet::new();
        for (i, rule) in self.rules.iter().enumerate() {
            if rule.id.is_empty() {
                problems.push(format!("rules[{i}].id: must not be empty"));
            } else if !seen.insert(rule.id.as_str()) {
                problems.push(format!("rules[{i}].id: {:?} is used twice", rule.id));
            }
            if let Some(schema) = &rule.arguments {
                if rule.effect == Effect::Deny {
                    problems.push(format!(
                        "rules[{i}].arguments: only allow rules take an argument schema"
                    ));
                } else if let Err(e) = jsonschema::validator_for(schema) {
                    problems.push(format!(
                        "rules[{i}].arguments: not a valid JSON Schema: {e}"
                    ));
                }
            }
        }
        if self.timeout_ms == 0 {
            problems.push("timeout_ms: must be above 0".into());
        }
        if self.breaker_failures == 0 {
            problems.push("breaker_failures: must be above 0".into());
        }
        if self.revision < 0 {
            problems.push(format!(
                "revision: must be 0 or more (got {})",
                self.revision
            ));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("\n"))
        }
    }
}
