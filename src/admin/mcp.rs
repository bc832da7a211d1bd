//! MCP gateway changes (`stockyard mcp ...`, `/admin/mcp`): servers added or removed and rules
//! set or removed, each an edit of the `mcp` module's config through `admin::apply` (validated,
//! persisted with its ledger entry, then swapped in). Every change bumps the rules' `revision`,
//! which each tool call records. A server's bearer token is sealed under the master key here,
//! before it is stored: the config, the database and the ledger only ever hold the sealed value.

use serde_json::{Value, json};

use super::apply::{Admin, AdminError};
use crate::ledger::LedgerEntry;
use crate::modules::mcp::token_id;
use crate::secret::Secret;
use crate::store::ModuleState;

#[derive(Clone, Debug)]
pub enum McpChange {
    /// Adds or replaces a server (a `ServerConfig` as JSON), with an optional bearer token.
    SetServer {
        name: String,
        server: Value,
        token: Option<Secret<String>>,
    },
    RemoveServer {
        name: String,
    },
    /// Adds a rule, or replaces the rule of the same id in place (a `Rule` as JSON).
    SetRule {
        rule: Value,
    },
    RemoveRule {
        id: String,
    },
}

pub(super) async fn apply(
    admin: &Admin,
    actor: &str,
    change: McpChange,
) -> Result<LedgerEntry, AdminError> {
    match change {
        McpChange::SetServer {
            name,
            mut server,
            token,
        } => {
            if !server.is_object() {
                return Err(invalid("the server must be a JSON object"));
            }
            if server.get("sealed_token").is_some() {
                return Err(invalid(
                    "sealed_token is set by the gateway; send the token as \"token\"",
                ));
            }
            if let Some(token) = token {
                let vault = admin
                    .vault()
                    .ok_or_else(|| AdminError::Credential("no master key is open".into()))?;
                let sealed = vault
                    .seal_text(&token_id(&name), token.expose())
                    .map_err(AdminError::Credential)?;
                server["sealed_token"] = Value::String(sealed);
            }
            let target = name.clone();
            admin
                .change_module(actor, "mcp", "mcp.server.set", &target, move |state| {
                    edit(state, |config| {
                        map_of(config, "servers")?.insert(name, server);
                        Ok(())
                    })
                })
                .await
        }
        McpChange::RemoveServer { name } => {
            let target = name.clone();
            admin
                .change_module(actor, "mcp", "mcp.server.remove", &target, move |state| {
                    edit(state, |config| {
                        map_of(config, "servers")?
                            .remove(&name)
                            .map(|_| ())
                            .ok_or_else(|| AdminError::NotFound(format!("no MCP server {name:?}")))
                    })
                })
                .await
        }
        McpChange::SetRule { rule } => {
            let id = rule["id"]
                .as_str()
                .filter(|id| !id.is_empty())
                .ok_or_else(|| invalid("the rule needs an id"))?
                .to_string();
            let target = id.clone();
            admin
                .change_module(actor, "mcp", "mcp.rule.set", &target, move |state| {
                    edit(state, |config| {
                        let rules = list_of(config, "rules")?;
                        match rules
                            .iter_mut()
                            .find(|r| r["id"] == Value::String(id.clone()))
                        {
                            Some(existing) => *existing = rule,
                            None => rules.push(rule),
                        }
                        Ok(())
                    })
                })
                .await
        }
        McpChange::RemoveRule { id } => {
            let target = id.clone();
            admin
                .change_module(actor, "mcp", "mcp.rule.remove", &target, move |state| {
                    edit(state, |config| {
                        let rules = list_of(config, "rules")?;
                        let before = rules.len();
                        rules.retain(|r| r["id"] != Value::String(id.clone()));
                        if rules.len() == before {
                            return Err(AdminError::NotFound(format!("no MCP rule {id:?}")));
                        }
                        Ok(())
                    })
                })
                .await
        }
    }
}

fn invalid(problem: &str) -> AdminError {
    AdminError::InvalidConfig {
        name: "mcp".into(),
        problem: problem.to_string(),
    }
}

/// Applies `change` to the module's config and bumps its revision.
fn edit(
    state: &mut ModuleState,
    change: impl FnOnce(&mut serde_json::Map<String, Value>) -> Result<(), AdminError>,
) -> Result<(), AdminError> {
    if !state.config.is_object() {
        state.config = json!({});
    }
    let Some(config) = state.config.as_object_mut() else {
        return Err(invalid("config must be an object"));
    };
    change(config)?;
    let revision = config.get("revision").and_then(Value::as_i64).unwrap_or(1);
    config.insert("revision".into(), json!(revision + 1));
    Ok(())
}

fn map_of<'a>(
    config: &'a mut serde_json::Map<String, Value>,
    field: &str,
) -> Result<&'a mut serde_json::Map<String, Value>, AdminError> {
    config
        .entry(field)
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .ok_or_else(|| invalid(&format!("{field} must be an object")))
}

fn list_of<'a>(
    config: &'a mut serde_json::Map<String, Value>,
    field: &str,
) -> Result<&'a mut Vec<Value>, AdminError> {
    config
        .entry(field)
        .or_insert_with(|| json!([]))
        .as_array_mut()
        .ok_or_else(|| invalid(&format!("{field} must be a list")))
}
