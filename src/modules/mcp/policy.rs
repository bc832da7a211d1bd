//! Who may call which tool: the rules of `[modules.mcp]`, compiled once per config (argument
//! schemas included) and evaluated first-match-wins. The same evaluation decides what
//! `tools/list` shows and whether `tools/call` runs, so a client never sees a tool it can't call
//! (argument rules aside, which only a call can check).

use std::sync::Arc;

use serde_json::Value;

use super::config::{Effect, McpConfig, Rule};
use crate::modules::auth::models::glob_match;

/// The caller as the rules name it.
#[derive(Clone, Debug, Default)]
pub struct Caller {
    pub key_id: Option<String>,
    pub team_id: Option<String>,
}

/// What decided a call, as the refusal, the trace row and the ledger entry name it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// The deciding rule's id, or `default` when no rule matched.
    pub rule: String,
    pub revision: i64,
    /// Why a call was refused, when it was.
    pub reason: Option<String>,
}

/// The rule id recorded when no rule matched (and the call was refused).
pub const DEFAULT_RULE: &str = "default";

struct Compiled {
    rule: Rule,
    arguments: Option<Arc<jsonschema::Validator>>,
}

pub struct Policy {
    rules: Vec<Compiled>,
    revision: i64,
}

impl Policy {
    pub fn new(config: &McpConfig) -> Result<Policy, String> {
        let rules = config
            .rules
            .iter()
            .map(|rule| {
                let arguments = match &rule.arguments {
                    Some(schema) => Some(Arc::new(
                        jsonschema::validator_for(schema)
                            .map_err(|e| format!("rules {}: arguments: {e}", rule.id))?,
                    )),
                    None => None,
                };
                Ok(Compiled {
                    rule: rule.clone(),
                    arguments,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Policy {
            rules,
            revision: config.revision,
        })
    }

    pub fn revision(&self) -> i64 {
        self.revision
    }

    fn first_match(&self, caller: &Caller, server: &str, tool: &str) -> Option<&Compiled> {
        self.rules
            .iter()
            .find(|c| matches(&c.rule, caller, server, tool))
    }

    /// Whether `tools/list` shows this tool to `caller`.
    pub fn may_see(&self, caller: &Caller, server: &str, tool: &str) -> bool {
        self.first_match(caller, server, tool)
            .is_some_and(|c| c.rule.effect == Effect::Allow)
    }

    /// Whether some rule allows `caller` some tool of `server` (resources and prompts are shown
    /// per server).
    pub fn may_use_server(&self, caller: &Caller, server: &str) -> bool {
        self.rules
            .iter()
            .any(|c| c.rule.effect == Effect::Allow && matches_server(&c.rule, caller, server))
    }

    /// Whether `caller` may call `server`'s `tool` with `arguments`, and which rule said so.
    pub fn decide(&self, caller: &Caller, server: &str, tool: &str, arguments: &Value) -> Decision {
        let revision = self.revision;
        let Some(found) = self.first_match(caller, server, tool) else {
            return Decision {
                allowed: false,
                rule: DEFAULT_RULE.into(),
                revision,
                reason: Some("no rule allows this tool for this key".into()),
            };
        };
        let rule = found.rule.id.clone();
        if found.rule.effect == Effect::Deny {
            return Decision {
                allowed: false,
                rule,
                revision,
                reason: Some("denied by rule".into()),
            };
        }
        if let Some(validator) = &found.arguments
            && let Err(error) = validator.validate(arguments)
        {
            return Decision {
                allowed: false,
                rule,
                revision,
                reason: Some(format!(
                    "arguments do not satisfy the rule's schema: {error} at {}",
                    error.instance_path
                )),
            };
        }
        Decision {
            allowed: true,
            rule,
            revision,
            reason: None,
        }
    }
}

/// The rule is for this caller and this server (whatever the tool).
fn matches_server(rule: &Rule, caller: &Caller, server: &str) -> bool {
    let everyone = rule.keys.is_empty() && rule.teams.is_empty();
    let by_key = caller
        .key_id
        .as_deref()
        .is_some_and(|k| rule.keys.iter().any(|r| r == k));
    let by_team = caller
        .team_id
        .as_deref()
        .is_some_and(|t| rule.teams.iter().any(|r| r == t));
    (everyone || by_key || by_team) && any_glob(&rule.servers, server)
}

fn any_glob(globs: &[String], name: &str) -> bool {
    globs.is_empty() || globs.iter().any(|g| glob_match(g, name))
}

fn matches(rule: &Rule, caller: &Caller, server: &str, tool: &str) -> bool {
    matches_server(rule, caller, server) && any_glob(&rule.tools, tool)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn policy(rules: Value) -> Policy {
        let config: McpConfig =
            serde_json::from_value(json!({"rules": rules, "revision": 7})).unwrap_or_default();
        Policy::new(&config).unwrap_or_else(|e| panic!("{e}"))
    }

    fn caller(key: &str, team: Option<&str>) -> Caller {
        Caller {
            key_id: Some(key.into()),
            team_id: team.map(str::to_string),
        }
    }

    #[test]
    fn first_matching_rule_decides_and_names_itself() {
        let p = policy(json!([
            {"id": "no-stall", "effect": "deny", "tools": ["stall"]},
            {"id": "team-a", "teams": ["a"], "servers": ["mock*"]},
            {"id": "k1-echo", "keys": ["k1"], "tools": ["echo"],
             "arguments": {"type": "object", "properties": {"text": {"maxLength": 5}}}},
        ]));
        let d = p.decide(&caller("k9", Some("a")), "mock", "stall", &json!({}));
        assert_eq!(
            (d.allowed, d.rule.as_str(), d.revision),
            (false, "no-stall", 7)
        );
        assert!(
            p.decide(&caller("k9", Some("a")), "mock2", "echo", &json!({}))
                .allowed
        );
        assert!(
            p.decide(&caller("k1", None), "x", "echo", &json!({"text": "hi"}))
                .allowed
        );
        let long = p.decide(
            &caller("k1", None),
            "x",
            "echo",
            &json!({"text": "too long"}),
        );
        assert_eq!((long.allowed, long.rule.as_str()), (false, "k1-echo"));
        assert!(long.reason.unwrap_or_default().contains("schema"));
        let none = p.decide(&caller("k2", None), "x", "echo", &json!({}));
        assert_eq!((none.allowed, none.rule.as_str()), (false, DEFAULT_RULE));
        assert!(p.may_see(&caller("k1", None), "x", "echo"));
        assert!(!p.may_see(&caller("k1", None), "x", "leak"));
    }
}
