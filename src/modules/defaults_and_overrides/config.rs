//! The typed config of `defaults_and_overrides`: rules, each with a scope (keys, teams, models)
//! and what it does to a request in that scope. Checked by field, so an error names
//! `rules[0].force.model`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::super::guard::Scope;
use super::super::registry::ModuleConfig;

/// Parameters no rule may set or strip: they say what the request is, not how to answer it.
pub const RESERVED: &[&str] = &[
    "model",
    "messages",
    "stream",
    "stream_options",
    "prompt",
    "input",
];

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DefaultsConfig {
    /// Applied in order; every rule whose scope covers the request applies, so a later rule's
    /// forced value wins over an earlier one's.
    pub rules: Vec<Rule>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Rule {
    /// Virtual key ids the rule applies to (empty: every key).
    pub keys: Vec<String>,
    /// Team ids the rule applies to (empty: every team, and no team).
    pub teams: Vec<String>,
    /// Models, as the client names them, the rule applies to (empty: every model).
    pub models: Vec<String>,
    /// Parameters set when the request has none (`temperature = 0.2`, `max_tokens = 512`).
    pub defaults: Map<String, Value>,
    /// Parameters always set, replacing the client's.
    pub force: Map<String, Value>,
    /// Parameters removed from the request.
    pub strip: Vec<String>,
    /// A system prompt put before the request's own messages.
    pub system_prompt: Option<String>,
}

impl Rule {
    pub fn scope(&self) -> Scope {
        Scope {
            teams: self.teams.clone(),
            keys: self.keys.clone(),
            models: self.models.clone(),
        }
    }
}

impl ModuleConfig for DefaultsConfig {
    fn validate(&self) -> Result<(), String> {
        for (i, rule) in self.rules.iter().enumerate() {
            let named = |part: &str, name: &str| format!("rules[{i}].{part}.{name}");
            for (part, names) in [
                ("defaults", rule.defaults.keys().collect::<Vec<_>>()),
                ("force", rule.force.keys().collect()),
                ("strip", rule.strip.iter().collect()),
            ] {
                for name in names {
                    if RESERVED.contains(&name.as_str()) {
                        return Err(format!(
                            "{}: {name} cannot be changed by this module",
                            named(part, name)
                        ));
                    }
                    if name.is_empty() {
                        return Err(format!("rules[{i}].{part}: empty parameter name"));
                    }
                }
            }
            for (name, value) in rule.defaults.iter().chain(rule.force.iter()) {
                if value.is_null() {
                    return Err(format!(
                        "rules[{i}].{name}: null is not a value; list the parameter in strip to remove it"
                    ));
                }
            }
            if rule
                .system_prompt
                .as_deref()
                .is_some_and(|p| p.trim().is_empty())
            {
                return Err(format!("rules[{i}].system_prompt: must not be empty"));
            }
            if rule.defaults.is_empty()
                && rule.force.is_empty()
                && rule.strip.is_empty()
                && rule.system_prompt.is_none()
            {
                return Err(format!(
                    "rules[{i}]: does nothing; give defaults, force, strip or system_prompt"
                ));
            }
        }
        Ok(())
    }
}
